// Conversions between net::Endpoint and Asio endpoints, and the socket set-up shared by the UDP
// sockets and the stream acceptors (SO_REUSEPORT so every worker binds the same address,
// IPV6_V6ONLY so an IPv6 listener never receives IPv4-mapped traffic meant for an IPv4 one).
#pragma once

#include <boost/system/error_code.hpp>
#include <cstring>

#include "common/result.h"
#include "net/address.h"
#include "transport/asio.h"

namespace pinhole::transport {

template <typename AsioEndpoint>
AsioEndpoint to_asio(const net::Endpoint& e) {
  sockaddr_storage storage{};
  socklen_t length = e.to_sockaddr(storage);
  AsioEndpoint out;
  std::memcpy(out.data(), &storage, length);
  out.resize(length);  // length is at most sizeof(sockaddr_in6): never throws
  return out;
}

template <typename AsioEndpoint>
Result<net::Endpoint> from_asio(const AsioEndpoint& e) {
  return net::Endpoint::from_sockaddr(e.data(), static_cast<socklen_t>(e.size()));
}

// Opens `socket` for `bind`'s family with SO_REUSEPORT (and IPV6_V6ONLY for IPv6) and binds it.
boost::system::error_code open_and_bind(boost::asio::ip::udp::socket& socket, const net::Endpoint& bind);
// The same for an acceptor, then listen().
boost::system::error_code open_bind_listen(boost::asio::ip::tcp::acceptor& acceptor, const net::Endpoint& bind);

}  // namespace pinhole::transport
