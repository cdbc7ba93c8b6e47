#include "proxy/proxy_metrics.h"

#include <string>

namespace pinhole::proxy {

std::string_view drop_name(Drop d) {
  switch (d) {
    case Drop::kUnparsable:
      return "unparsable";
    case Drop::kInsane:
      return "insane";
    case Drop::kBadResponse:
      return "bad_response";
    case Drop::kStrayResponse:
      return "stray_response";
    case Drop::kLoop:
      return "loop";
    case Drop::kFlowTokenTampered:
      return "flow_token_tampered";
    case Drop::kFlowFailed:
      return "flow_failed";
    case Drop::kNoRoute:
      return "no_route";
    case Drop::kUpstreamUnavailable:
      return "upstream_unavailable";
    case Drop::kTimerC:
      return "timer_c";
    case Drop::kForbidden:
      return "forbidden";
    case Drop::kAuthFailed:
      return "auth_failed";
    case Drop::kStoreUnavailable:
      return "store_unavailable";
    case Drop::kBadStun:
      return "bad_stun";
    case Drop::kBadSdp:
      return "bad_sdp";
    case Drop::kMediaRelay:
      return "media_relay";
    case Drop::kCount:
      break;
  }
  return "unknown";
}

ProxyMetrics::ProxyMetrics(MetricsRegistry& registry) : registry_(registry) {
  for (size_t i = 0; i < kMethods; ++i) {
    std::string_view name = sip::method_name(static_cast<sip::Method>(i));
    requests_[i] = &registry.counter("pinhole_sip_requests_received_total", "SIP requests received, by method",
                                     {{"method", name.empty() ? "other" : std::string(name)}});
  }
  for (size_t i = 0; i < drops_.size(); ++i) {
    drops_[i] = &registry.counter("pinhole_proxy_rejects_total",
                                  "Requests and responses the proxy refused or dropped, by reason",
                                  {{"reason", std::string(drop_name(static_cast<Drop>(i)))}});
  }
  previous_key_ = &registry.counter("pinhole_flow_tokens_previous_key_total",
                                    "Flow tokens accepted with the previous (rotated-out) key");
  failovers_ = &registry.counter("pinhole_upstream_failovers_total", "Requests retried on the next upstream target");
  cancels_ = &registry.counter("pinhole_cancels_forwarded_total", "CANCELs sent to pending INVITE branches");
  stun_answered_ = &registry.counter("pinhole_stun_binding_answered_total",
                                     "STUN Binding requests answered on a SIP port (RFC 5626 keepalives)");
}

Counter& ProxyMetrics::code(CodeTable& table, std::string_view direction, uint16_t status) {
  size_t i = status < kCodes ? status : 0;
  Counter* c = table[i].load(std::memory_order_acquire);
  if (c == nullptr) {
    // First response with this code: the registry hands out one counter per label set, so two
    // workers racing here store the same pointer.
    c = &registry_.counter("pinhole_sip_responses_total", "SIP responses, by direction and status code",
                           {{"direction", std::string(direction)}, {"code", std::to_string(i)}});
    table[i].store(c, std::memory_order_release);
  }
  return *c;
}

}  // namespace pinhole::proxy
