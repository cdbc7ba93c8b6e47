// The proxy's counters, created once at start-up in the shared registry and updated lock-free
// from every worker (DESIGN.md §4: every drop and reject is counted by name).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "common/metrics.h"
#include "sip/method.h"

namespace pinhole::proxy {

enum class Drop : uint8_t {
  kUnparsable,           // bytes the parser refused (answered when a Via could be found)
  kInsane,               // failed the sanity checks (answered 4xx/5xx)
  kBadResponse,          // a response that failed its checks
  kStrayResponse,        // a response for no transaction and not ours to forward
  kLoop,                 // 482
  kFlowTokenTampered,    // 403
  kFlowFailed,           // 430
  kNoRoute,              // 480 / 404: a request from upstream naming no client
  kUpstreamUnavailable,  // 503: no upstream target could be reached
  kTimerC,               // an INVITE branch rang too long without a final answer (408)
  kForbidden,            // 403: relay to a foreign domain, a REGISTER for another's AOR or domain
  kAuthFailed,           // digest credentials that failed (wrong, unknown user, replayed nc)
  kStoreUnavailable,     // the shared store could not be read: served from this node's memory
  kBadStun,              // a STUN datagram on a SIP port that was malformed or not a Binding request
  kBadSdp,               // an SDP offer that does not parse, or that the relay refused (488)
  kMediaRelay,           // the media relay failed or timed out (forwarded unanchored, or 503)
  kCount,
};
std::string_view drop_name(Drop d);

class ProxyMetrics {
 public:
  explicit ProxyMetrics(MetricsRegistry& registry);

  void request_received(sip::Method m) { requests_[static_cast<size_t>(m)]->inc(); }
  void response_received(uint16_t status) { code(responses_received_, "received", status).inc(); }
  void response_sent(uint16_t status) { code(responses_sent_, "sent", status).inc(); }
  void drop(Drop d) { drops_[static_cast<size_t>(d)]->inc(); }
  Counter& flow_token_previous_key() { return *previous_key_; }
  Counter& failovers() { return *failovers_; }
  Counter& cancels() { return *cancels_; }
  Counter& stun_answered() { return *stun_answered_; }

 private:
  static constexpr size_t kMethods = 15;
  static constexpr size_t kCodes = 700;
  using CodeTable = std::array<std::atomic<Counter*>, kCodes>;
  Counter& code(CodeTable& table, std::string_view direction, uint16_t status);

  MetricsRegistry& registry_;
  std::array<Counter*, kMethods> requests_{};
  std::array<Counter*, static_cast<size_t>(Drop::kCount)> drops_{};
  CodeTable responses_received_{};
  CodeTable responses_sent_{};
  Counter* previous_key_;
  Counter* failovers_;
  Counter* cancels_;
  Counter* stun_answered_;
};

}  // namespace pinhole::proxy
