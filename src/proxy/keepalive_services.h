// What the proxy needs to keep NATed flows alive (issue 5, docs/config.md `keepalive:`): the
// counters every worker's engine adds to, and where endpoints are persisted so a restart does
// not lose a NATed phone. Absent (null in ProxyShared) when `keepalive.enabled` is false.
//
// Threads: built once by the daemon before the workers start; the counters are atomic and
// `persist` must be callable from any worker thread (the store queues writes without blocking).
#pragma once

#include <array>
#include <functional>
#include <optional>

#include "common/metrics.h"
#include "nat/keepalive_engine.h"

namespace pinhole::proxy {

struct KeepaliveMetrics {
  explicit KeepaliveMetrics(MetricsRegistry& registry);
  Counter& sent;              // keepalives sent (OPTIONS/NOTIFY/STUN/CRLF)
  Counter& replies;           // answers matched to an endpoint
  Counter& timeouts;          // pings not answered in time (a miss)
  Counter& dead;              // endpoints declared dead after max_misses
  Counter& rebindings;        // answers from another address:port than the flow's (NAT rebinding)
  Counter& full;              // endpoints refused because a worker's engine was full
  Counter& bindings_removed;  // registrar bindings removed because their flow died
  // Live endpoints, summed over workers (each adds its own changes): with >= 1 reason of each kind,
  // and by transport.
  std::array<Gauge*, nat::kKeepaliveReasonCount> endpoints_by_reason{};
  Gauge& endpoints_udp;
  Gauge& endpoints_stream;
};

struct KeepaliveServices {
  KeepaliveMetrics& metrics;
  // Called on the owning worker after an endpoint changed: its current view, or nullopt when it
  // is gone (last reason removed or expired, dead). Null: no persistence.
  std::function<void(const net::Flow&, const std::optional<nat::KeepaliveEngine::EndpointView>&)> persist;
};

}  // namespace pinhole::proxy
