#include "proxy/keepalive_services.h"

namespace pinhole::proxy {

KeepaliveMetrics::KeepaliveMetrics(MetricsRegistry& registry)
    : sent(registry.counter("pinhole_keepalive_sent_total", "NAT keepalives sent (OPTIONS, NOTIFY, STUN, CRLF)")),
      replies(registry.counter("pinhole_keepalive_replies_total", "NAT keepalive answers matched to an endpoint")),
      timeouts(registry.counter("pinhole_keepalive_timeouts_total", "NAT keepalives not answered in time")),
      dead(registry.counter("pinhole_keepalive_dead_total", "Endpoints declared dead after max_misses misses")),
      rebindings(registry.counter("pinhole_keepalive_rebindings_total",
                                  "Keepalive answers from another address:port than the flow's (NAT rebinding)")),
      full(registry.counter("pinhole_keepalive_refused_total",
                            "Endpoints refused: a worker's keepalive table was full")),
      bindings_removed(registry.counter("pinhole_keepalive_bindings_removed_total",
                                        "Registrar bindings removed because keepalives found their flow dead")),
      endpoints_udp(registry.gauge("pinhole_keepalive_endpoints_by_transport", "Endpoints kept alive, by transport",
                                   {{"transport", "udp"}})),
      endpoints_stream(registry.gauge("pinhole_keepalive_endpoints_by_transport", "Endpoints kept alive, by transport",
                                      {{"transport", "stream"}})) {
  constexpr const char* kReasonNames[nat::kKeepaliveReasonCount] = {"registration", "subscription", "dialog"};
  for (size_t r = 0; r < nat::kKeepaliveReasonCount; ++r) {
    endpoints_by_reason[r] =
        &registry.gauge("pinhole_keepalive_endpoints", "Endpoints kept alive with at least one reason of this kind",
                        {{"reason", kReasonNames[r]}});
  }
}

}  // namespace pinhole::proxy
