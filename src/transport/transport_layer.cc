#include "transport/transport_layer.h"

#include <string>
#include <utility>

#include "common/startup_error.h"
#include "transport/asio.h"
#include "transport/stream_connection.h"
#include "transport/stream_listener.h"
#include "transport/transport_layer_impl.h"
#include "transport/udp_endpoint.h"
#include "transport/udp_steering.h"

namespace pinhole::transport {
namespace {

constexpr uint32_t kMaxWorkers = 255;  // the worker index is the top 8 bits of a connection id

bool is_unspecified(const net::Address& a) {
  for (uint8_t b : a.bytes()) {
    if (b != 0) return false;
  }
  return true;
}

std::string host_text(const net::Address& a) { return a.is_v6() ? "[" + a.to_string() + "]" : a.to_string(); }

}  // namespace

std::string_view drop_reason_name(DropReason r) {
  switch (r) {
    case DropReason::kParseError:
      return "parse_error";
    case DropReason::kTooLarge:
      return "too_large";
    case DropReason::kFramingError:
      return "framing_error";
    case DropReason::kConnectionLimit:
      return "connection_limit";
    case DropReason::kTlsHandshake:
      return "tls_handshake";
    case DropReason::kWriteQueueFull:
      return "write_queue_full";
  }
  return "unknown";
}

Result<std::unique_ptr<TransportLayer>> TransportLayer::create(const TransportConfig& config) {
  auto layer = std::make_unique<TransportLayerImpl>(config);
  if (Status s = layer->init(); !s) return s.error();
  return std::unique_ptr<TransportLayer>(std::move(layer));
}

TransportLayerImpl::~TransportLayerImpl() { stop(); }

Status TransportLayerImpl::init() {
  const TransportConfig& config = shared_.config;
  if (config.workers == 0 || config.workers > kMaxWorkers) return Error{500, "workers must be 1..255"};
  bool need_server = false;
  for (const ListenerSpec& spec : config.listeners) {
    if (spec.transport == net::Transport::kTls) need_server = true;
  }
  auto tls = TlsContexts::create(config.tls, need_server);
  if (!tls) return tls.error();
  shared_.tls = std::move(tls).value();

  for (uint32_t w = 0; w < config.workers; ++w) {
    workers_.push_back(std::make_unique<Worker>(w, shared_));
    workers_.back()->udp().resize(config.listeners.size());
    workers_.back()->udp_client().resize(config.listeners.size());
    workers_.back()->listeners().resize(config.listeners.size());
  }
  for (size_t i = 0; i < config.listeners.size(); ++i) {
    PINHOLE_TRY(bind_listener(static_cast<uint32_t>(i), config.listeners[i]));
  }
  for (auto& worker : workers_) {
    for (auto& u : worker->udp()) {
      if (u) u->start();
    }
    for (auto& u : worker->udp_client()) {
      if (u) u->start();
    }
    for (auto& l : worker->listeners()) {
      if (l) l->start();
    }
  }
  return Status::Ok();
}

Status TransportLayerImpl::bind_listener(uint32_t id, const ListenerSpec& spec) {
  if (net::is_websocket(spec.transport)) return Error{501, "WebSocket listeners are not supported yet"};
  net::Endpoint bind = spec.bind;
  for (auto& worker : workers_) {
    // The first worker resolves port 0; the others bind the port it got (SO_REUSEPORT).
    if (spec.transport == net::Transport::kUdp) {
      auto u = UdpEndpoint::open(*worker, id, bind);
      if (!u) return u.error();
      bind = (*u)->local();
      worker->udp()[id] = std::move(u).value();
      auto client = UdpEndpoint::open(*worker, id, net::Endpoint{bind.address, 0});
      if (!client) return client.error();
      worker->udp_client()[id] = std::move(client).value();
    } else {
      auto l = StreamListener::open(*worker, id, spec.transport, bind);
      if (!l) return l.error();
      bind = (*l)->local();
      worker->listeners()[id] = std::move(l).value();
    }
  }
  LocalSocket socket;
  if (spec.transport == net::Transport::kUdp && workers_.size() > 1) {
    // Worker i's socket joined the reuseport group i-th, so the program's index is the worker.
    socket.steered =
        attach_udp_steering(workers_.front()->udp()[id]->native_fd(), workers_.size(), bind.address.is_v6()).ok();
  }
  socket.id = id;
  socket.transport = spec.transport;
  socket.bound = bind;
  if (spec.advertised_host.empty()) {
    socket.advertised_host = host_text(bind.address);
  } else {
    auto literal = net::Address::parse(spec.advertised_host);
    bool bare_v6 = literal && literal->is_v6() && spec.advertised_host.front() != '[';
    socket.advertised_host = bare_v6 ? "[" + spec.advertised_host + "]" : spec.advertised_host;
  }
  socket.advertised_port = spec.advertised_port != 0 ? spec.advertised_port : bind.port;
  shared_.sockets.push_back(std::move(socket));
  return Status::Ok();
}

void TransportLayerImpl::set_handler(uint32_t worker, MessageHandler* handler) {
  workers_.at(worker)->set_handler(handler);
}

void TransportLayerImpl::run() {
  std::lock_guard lock(lifecycle_mu_);
  if (running_ || stopped_) return;
  running_ = true;
  for (auto& worker : workers_) worker->start_thread();
}

void TransportLayerImpl::stop() {
  std::lock_guard lock(lifecycle_mu_);
  if (stopped_) return;
  stopped_ = true;
  shared_.stopping = true;
  if (running_) {
    // Each loop closes what it owns on its own thread, then runs dry and returns.
    for (auto& worker : workers_) worker->request_stop();
    for (auto& worker : workers_) worker->join();
  } else {
    for (auto& worker : workers_) worker->close_all();
  }
}

void TransportLayerImpl::post(uint32_t worker, std::function<void()> fn) {
  boost::asio::post(workers_.at(worker)->io(), std::move(fn));
}

const LocalSocket* TransportLayerImpl::socket_for(net::Transport transport, net::Family family) const {
  for (const LocalSocket& s : shared_.sockets) {
    if (s.transport == transport && s.bound.address.family() == family) return &s;
  }
  return nullptr;
}

Worker* TransportLayerImpl::calling_worker() const {
  Worker* w = Worker::current();
  return w != nullptr && &w->shared() == &shared_ ? w : nullptr;
}

Worker* TransportLayerImpl::owner_of(uint64_t connection_id) const {
  uint32_t w = worker_of(connection_id);
  return w < workers_.size() ? workers_[w].get() : nullptr;
}

uint16_t TransportLayerImpl::udp_client_port(uint32_t worker, uint32_t socket_id) const {
  if (worker >= workers_.size()) return 0;
  const UdpEndpoint* client = workers_[worker]->udp_client(socket_id);
  return client != nullptr ? client->local_port() : 0;
}

bool TransportLayerImpl::send(const net::Flow& flow, std::string_view bytes) {
  if (shared_.stopping.load()) return false;
  if (flow.transport == net::Transport::kUdp) {
    if (Worker* self = calling_worker()) {
      UdpEndpoint* endpoint = self->udp(flow.local_socket_id);
      return endpoint != nullptr && endpoint->send(flow.remote, bytes);
    }
    UdpEndpoint* endpoint = workers_[0]->udp(flow.local_socket_id);
    return endpoint != nullptr && endpoint->send_now(flow.remote, bytes);
  }
  Worker* owner = owner_of(flow.connection_id);
  if (owner == nullptr || !shared_.directory.contains(flow.connection_id)) return false;
  if (owner->on_own_thread()) {
    StreamConnection* connection = owner->connections().find(flow.connection_id);
    return connection != nullptr && connection->send(bytes);
  }
  boost::asio::post(owner->io(), [owner, id = flow.connection_id, data = std::string(bytes)] {
    if (StreamConnection* connection = owner->connections().find(id)) {
      connection->send(data);  // counts its own failure
    } else {
      WorkerCounters::inc(owner->counters().send_failures);
    }
  });
  return true;
}

Result<net::Flow> TransportLayerImpl::send_to(uint32_t worker, net::Transport transport,
                                              const net::Endpoint& destination, std::string_view bytes,
                                              std::string_view tls_server_name) {
  if (worker >= workers_.size()) return Error{500, "no such worker"};
  if (shared_.stopping.load()) return Error{503, "transport stopping"};
  const LocalSocket* local = socket_for(transport, destination.address.family());
  if (local == nullptr) return Error{503, "no listener for this transport and address family"};
  if (transport == net::Transport::kUdp) {
    net::Flow flow{transport, local->id, destination, 0};
    UdpEndpoint* client = workers_[worker]->udp_client(local->id);
    bool sent = false;
    if (client == nullptr) {
      sent = send(flow, bytes);
    } else if (workers_[worker]->on_own_thread()) {
      sent = client->send(destination, bytes);
    } else {
      sent = client->send_now(destination, bytes);
    }
    if (!sent) return Error{503, "UDP send failed"};
    return flow;
  }
  if (auto reuse = shared_.directory.find_reusable(worker, transport, destination)) {
    if (send(*reuse, bytes)) return *reuse;
    // Closed since the lookup: open a new one.
  }
  Worker& owner = *workers_[worker];
  net::Flow flow{transport, local->id, destination, owner.next_connection_id()};
  if (!shared_.directory.admit(flow, /*accepted=*/false)) {
    owner.counters().drop(DropReason::kConnectionLimit);
    return Error{503, "connection limit reached"};
  }
  WorkerCounters::inc(owner.counters().connections_opened);
  std::optional<net::Endpoint> bind;
  // Connect from the listener's address when it has a specific one (multi-homed hosts), so the
  // peer sees the address we advertise; the port is ephemeral.
  if (!is_unspecified(local->bound.address)) bind = net::Endpoint{local->bound.address, 0};
  auto open = [&owner, flow, bind, name = std::string(tls_server_name), data = std::string(bytes)] {
    if (owner.shared().stopping.load()) {
      owner.shared().directory.remove(flow.connection_id);
      return;
    }
    auto connection = StreamConnection::outbound(owner, flow, bind, name);
    owner.connections().add(flow.connection_id, connection);
    connection->send(data);  // waits in the queue until connected
    connection->start();
  };
  if (owner.on_own_thread()) {
    open();
  } else {
    boost::asio::post(owner.io(), std::move(open));
  }
  return flow;
}

void TransportLayerImpl::keep_flow_until(const net::Flow& flow, std::chrono::steady_clock::time_point until) {
  if (!net::is_stream(flow.transport)) return;
  Worker* owner = owner_of(flow.connection_id);
  if (owner == nullptr || !shared_.directory.contains(flow.connection_id)) return;
  auto apply = [owner, id = flow.connection_id, until] {
    if (StreamConnection* connection = owner->connections().find(id)) connection->keep_until(until);
  };
  if (owner->on_own_thread()) {
    apply();
  } else {
    boost::asio::post(owner->io(), apply);
  }
}

bool TransportLayerImpl::flow_alive(const net::Flow& flow) const {
  if (!net::is_stream(flow.transport)) return true;
  return shared_.directory.contains(flow.connection_id);
}

void TransportLayerImpl::close_flow(const net::Flow& flow) {
  if (!net::is_stream(flow.transport)) return;
  Worker* owner = owner_of(flow.connection_id);
  if (owner == nullptr || !shared_.directory.contains(flow.connection_id)) return;
  auto apply = [owner, id = flow.connection_id] {
    if (StreamConnection* connection = owner->connections().find(id)) connection->close();
  };
  if (owner->on_own_thread()) {
    apply();
  } else {
    boost::asio::post(owner->io(), apply);
  }
}

TransportCounters TransportLayerImpl::counters() const {
  TransportCounters out;
  for (const auto& worker : workers_) worker->counters().add_to(out);
  return out;
}

}  // namespace pinhole::transport
