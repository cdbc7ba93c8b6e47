// The TransportLayer behind TransportLayer::create(): owns the workers and what they share, and
// routes calls from any thread to the worker that owns the socket or connection.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "transport/layer_shared.h"
#include "transport/transport_layer.h"
#include "transport/worker.h"

namespace pinhole::transport {

class TransportLayerImpl final : public TransportLayer {
 public:
  explicit TransportLayerImpl(const TransportConfig& config) : shared_(config) {}
  ~TransportLayerImpl() override;

  // Loads TLS material, binds every listener on every worker, arms the first reads and accepts.
  Status init();

  void set_handler(uint32_t worker, MessageHandler* handler) override;
  void run() override;
  void stop() override;
  uint32_t worker_count() const override { return static_cast<uint32_t>(workers_.size()); }
  boost::asio::io_context& io(uint32_t worker) override { return workers_.at(worker)->io(); }
  void post(uint32_t worker, std::function<void()> fn) override;
  const std::vector<LocalSocket>& local_sockets() const override { return shared_.sockets; }
  const LocalSocket* socket_for(net::Transport transport, net::Family family) const override;
  bool send(const net::Flow& flow, std::string_view bytes) override;
  Result<net::Flow> send_to(uint32_t worker, net::Transport transport, const net::Endpoint& destination,
                            std::string_view bytes, std::string_view tls_server_name) override;
  void keep_flow_until(const net::Flow& flow, std::chrono::steady_clock::time_point until) override;
  bool flow_alive(const net::Flow& flow) const override;
  void close_flow(const net::Flow& flow) override;
  uint16_t udp_client_port(uint32_t worker, uint32_t socket_id) const override;
  size_t open_connections() const override { return shared_.directory.size(); }
  TransportCounters counters() const override;

 private:
  // The worker whose thread calls, if it is one of ours.
  Worker* calling_worker() const;
  Worker* owner_of(uint64_t connection_id) const;
  Status bind_listener(uint32_t id, const ListenerSpec& spec);

  LayerShared shared_;  // declared first: the workers refer to it until they are gone
  std::vector<std::unique_ptr<Worker>> workers_;
  std::mutex lifecycle_mu_;
  bool running_ = false;
  bool stopped_ = false;
};

}  // namespace pinhole::transport
