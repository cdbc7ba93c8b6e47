#include "transport/stream_listener.h"

#include <chrono>
#include <utility>

#include "common/startup_error.h"
#include "transport/socket_util.h"
#include "transport/stream_connection.h"
#include "transport/worker.h"

namespace pinhole::transport {

Result<std::unique_ptr<StreamListener>> StreamListener::open(Worker& worker, uint32_t socket_id,
                                                             net::Transport transport, const net::Endpoint& bind) {
  auto listener = std::make_unique<StreamListener>(worker, socket_id, transport);
  if (auto ec = open_bind_listen(listener->acceptor_, bind)) {
    return startup_error(500, "cannot listen on " + std::string(net::transport_name(transport)) + " " +
                                  bind.to_string() + ": " + ec.message());
  }
  return listener;
}

StreamListener::StreamListener(Worker& worker, uint32_t socket_id, net::Transport transport)
    : worker_(worker), socket_id_(socket_id), transport_(transport), acceptor_(worker.io()), retry_(worker.io()) {}

net::Endpoint StreamListener::local() const {
  boost::system::error_code ec;
  auto ep = acceptor_.local_endpoint(ec);
  if (ec) return {};
  auto r = from_asio(ep);
  return r ? *r : net::Endpoint{};
}

void StreamListener::start() { accept(); }

void StreamListener::accept() {
  if (closed_) return;
  // `this`: the listener lives as long as its worker (see UdpEndpoint::wait_readable).
  acceptor_.async_accept(worker_.io(), [this](const boost::system::error_code& ec, boost::asio::ip::tcp::socket s) {
    if (closed_ || ec == boost::asio::error::operation_aborted) return;
    if (ec) {
      retry_.expires_after(std::chrono::milliseconds(50));
      retry_.async_wait([this](const boost::system::error_code& wait_ec) {
        if (!wait_ec) accept();
      });
      return;
    }
    on_accept(std::move(s));
    accept();
  });
}

void StreamListener::on_accept(boost::asio::ip::tcp::socket socket) {
  boost::system::error_code ec;
  auto peer = socket.remote_endpoint(ec);
  if (ec) return;  // already gone
  auto remote = from_asio(peer);
  if (!remote) return;
  LayerShared& shared = worker_.shared();
  if (shared.stopping.load()) return;
  uint64_t id = worker_.next_connection_id();
  net::Flow flow{transport_, socket_id_, *remote, id};
  if (!shared.directory.admit(flow, /*accepted=*/true)) {
    worker_.counters().drop(DropReason::kConnectionLimit);
    socket.close(ec);
    return;
  }
  WorkerCounters::inc(worker_.counters().connections_accepted);
  auto connection = StreamConnection::accepted(worker_, flow, std::move(socket));
  worker_.connections().add(id, connection);
  connection->start();
}

void StreamListener::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ec;
  acceptor_.close(ec);
  retry_.cancel();
}

}  // namespace pinhole::transport
