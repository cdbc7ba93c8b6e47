// What every worker of one TransportLayer shares: the configuration, the bound sockets, the
// connection directory and the TLS contexts. Owned by the layer, outlives its workers; all of it
// is read-only after create() except the directory (its own mutex) and `stopping` (atomic).
#pragma once

#include <atomic>
#include <memory>
#include <vector>

#include "transport/connection_table.h"
#include "transport/tls_context.h"
#include "transport/transport_layer.h"

namespace pinhole::transport {

struct LayerShared {
  explicit LayerShared(const TransportConfig& c) : config(c), directory(c.limits) {}

  TransportConfig config;
  std::vector<LocalSocket> sockets;  // by listener id
  ConnectionDirectory directory;
  std::unique_ptr<TlsContexts> tls;
  // Set by stop(): no new connections (accepted or opened) from then on, so the loops run dry.
  std::atomic<bool> stopping{false};
};

}  // namespace pinhole::transport
