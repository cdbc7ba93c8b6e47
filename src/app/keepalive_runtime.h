// The daemon's side of the NAT keepalive engine (issue 5): the metrics and services every
// worker's EdgeProxy uses, persistence of endpoints in the store (saved on every change, this
// node's UDP endpoints reloaded at start-up) and the admin routes GET /keepalive[/<remote>].
//
// Threads: built and restored on the main thread before the workers run; the persist callback
// runs on worker threads (the store queues without blocking); the admin snapshot runs on the
// admin thread and collects each worker's endpoints on that worker's own thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "app/admin_server.h"
#include "common/metrics.h"
#include "proxy/edge_proxy.h"
#include "proxy/keepalive_services.h"
#include "store/store.h"
#include "transport/transport_layer.h"

namespace spdlog {
class logger;
}

namespace pinhole::app {

class KeepaliveRuntime {
 public:
  // `store`: where endpoints persist (null: nowhere); it must outlive the runtime. `node`: this
  // node's id (each node reloads only its own endpoints).
  KeepaliveRuntime(MetricsRegistry& registry, store::Store* store, std::string node,
                   std::shared_ptr<spdlog::logger> log);

  proxy::KeepaliveServices& services() { return services_; }

  // Reloads this node's persisted UDP endpoints into the engines of the workers that own them.
  // Main thread, after the proxies exist and before the transport runs. A stream flow is not
  // reloaded: its connection did not survive the restart (the client reconnects and registers).
  void restore(const std::vector<proxy::EdgeProxy*>& workers, const transport::TransportLayer& transport);

  // GET /keepalive and GET /keepalive/<remote> (before server.start()).
  void add_routes(AdminServer& server, std::vector<proxy::EdgeProxy*> workers, transport::TransportLayer& transport);

 private:
  void persist(const net::Flow& flow, const std::optional<nat::KeepaliveEngine::EndpointView>& view);

  proxy::KeepaliveMetrics metrics_;
  proxy::KeepaliveServices services_;
  store::Store* store_;
  std::string node_;
  std::shared_ptr<spdlog::logger> log_;
};

}  // namespace pinhole::app
