#include "transport/socket_util.h"

#include <sys/socket.h>

#include "transport/asio.h"

namespace pinhole::transport {
namespace {

using ReusePort = boost::asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;

template <typename Socket, typename Protocol>
boost::system::error_code prepare(Socket& socket, const net::Endpoint& bind, Protocol protocol) {
  boost::system::error_code ec;
  socket.open(protocol, ec);
  if (ec) return ec;
  socket.set_option(ReusePort(true), ec);
  if (ec) return ec;
  if (bind.address.is_v6()) {
    socket.set_option(boost::asio::ip::v6_only(true), ec);
    if (ec) return ec;
  }
  return ec;
}

// A signaling socket's buffers: a burst (registrations after a router reboot, a call storm)
// must wait in the kernel while the worker is busy rather than be dropped. The kernel's default
// (~208 KiB) overflowed in the 2,000 calls/s benchmark. SO_RCVBUFFORCE lets root go past
// net.core.rmem_max; without the privilege the plain option is capped at rmem_max, which is
// still better than the default. Best effort: a refused size is not a start-up error.
void enlarge_buffers(int fd) {
  constexpr int kBytes = 8 * 1024 * 1024;
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &kBytes, sizeof(kBytes)) != 0) {
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &kBytes, sizeof(kBytes));
  }
  if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &kBytes, sizeof(kBytes)) != 0) {
    (void)::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &kBytes, sizeof(kBytes));
  }
}

}  // namespace

boost::system::error_code open_and_bind(boost::asio::ip::udp::socket& socket, const net::Endpoint& bind) {
  auto protocol = bind.address.is_v6() ? boost::asio::ip::udp::v6() : boost::asio::ip::udp::v4();
  auto ec = prepare(socket, bind, protocol);
  if (!ec) socket.bind(to_asio<boost::asio::ip::udp::endpoint>(bind), ec);
  if (!ec) socket.non_blocking(true, ec);
  if (!ec) enlarge_buffers(socket.native_handle());
  if (ec) {
    boost::system::error_code ignored;
    socket.close(ignored);
  }
  return ec;
}

boost::system::error_code open_bind_listen(boost::asio::ip::tcp::acceptor& acceptor, const net::Endpoint& bind) {
  auto protocol = bind.address.is_v6() ? boost::asio::ip::tcp::v6() : boost::asio::ip::tcp::v4();
  auto ec = prepare(acceptor, bind, protocol);
  if (!ec) acceptor.set_option(boost::asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(to_asio<boost::asio::ip::tcp::endpoint>(bind), ec);
  if (!ec) acceptor.listen(boost::asio::socket_base::max_listen_connections, ec);
  if (ec) {
    boost::system::error_code ignored;
    acceptor.close(ignored);
  }
  return ec;
}

}  // namespace pinhole::transport
