// What the proxy needs in border mode (docs/config.md `border:`): an edge in front of an upstream
// registrar that learns every relayed binding from the upstream's 2xx, gives NATed UDP phones a
// short lease, answers their refreshes in between and follows their NAT rebindings
// (registrar/border_bindings.h). Absent (null in ProxyShared) otherwise.
//
// Threads: built once by the daemon before the workers start; BorderBindings locks internally and
// the counters are atomic, so every worker uses it directly.
#pragma once

#include "common/metrics.h"
#include "registrar/border_bindings.h"

namespace pinhole::proxy {

struct BorderMetrics {
  explicit BorderMetrics(MetricsRegistry& registry);
  Counter& refreshes_answered;   // refreshes answered here within the upstream's interval
  Counter& refreshes_forwarded;  // REGISTERs sent upstream (first, due refresh, change, removal)
  Counter& rebindings;           // refreshes from a new source port that moved a binding
  Counter& expires_restored;     // forwarded refreshes whose expires was set back to the original ask
  Counter& rerouted;             // requests from upstream sent to a binding's newer flow
};

struct BorderServices {
  registrar::BorderBindings& bindings;
  BorderMetrics& metrics;
};

}  // namespace pinhole::proxy
