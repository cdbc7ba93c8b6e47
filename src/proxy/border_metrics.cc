// Border mode's counters (declared in border_services.h).
#include "proxy/border_services.h"

namespace pinhole::proxy {

namespace {
Counter& refresh(MetricsRegistry& r, const char* outcome) {
  return r.counter("pinhole_border_registers_total", "REGISTERs from clients in border mode, by what became of them",
                   {{"outcome", outcome}});
}
}  // namespace

BorderMetrics::BorderMetrics(MetricsRegistry& registry)
    : refreshes_answered(refresh(registry, "answered_here")),
      refreshes_forwarded(refresh(registry, "forwarded")),
      rebindings(registry.counter("pinhole_border_rebindings_total",
                                  "Refreshes from a new source port that moved a binding to the new flow")),
      expires_restored(
          registry.counter("pinhole_border_expires_restored_total",
                           "Forwarded refreshes whose expires was set back to what the phone first asked")),
      rerouted(registry.counter("pinhole_border_rerouted_total",
                                "Requests from upstream sent to the newer flow of a binding that moved")) {}

}  // namespace pinhole::proxy
