// The vocabulary shared by the four RFC 3261 §17 transaction state machines and the table that
// drives them: timer names and durations, the transport's reliability, and Output, the list of
// actions a machine asks its owner to carry out after one event.
//
// The machines are pure: an event goes in (a message, a response from the TU, a timer firing, a
// transport error), the machine changes state and returns an Output; it never touches a socket
// or a clock. The owner (TransactionTable, or a test) carries the actions out in a fixed order:
// timer changes, then sends, then the one notification for the TU, then termination. That order
// lets the TU call back into the owner from its notification without seeing half-applied work.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "absl/container/inlined_vector.h"

namespace pinhole::txn {

using Millis = std::chrono::milliseconds;

// RFC 3261 §17: whether the transport retransmits for us. Unreliable (UDP) transactions
// retransmit (Timers A, E, G) and linger to absorb retransmissions (D, I, J, K); reliable ones
// (TCP, TLS, WS, SCTP) do neither.
enum class Reliability : uint8_t { kUnreliable, kReliable };

// RFC 3261 Appendix A timers, plus L and M from RFC 6026 §8.11. Timer C is the proxy's (§16.6
// step 11, a TU timer), not a transaction timer.
enum class TimerName : uint8_t { kA, kB, kD, kE, kF, kG, kH, kI, kJ, kK, kL, kM };
inline constexpr size_t kTimerCount = 12;

constexpr std::string_view timer_name(TimerName t) {
  constexpr std::string_view kNames[kTimerCount] = {"A", "B", "D", "E", "F", "G", "H", "I", "J", "K", "L", "M"};
  return kNames[static_cast<size_t>(t)];
}

// T1/T2/T4 and Timer D (RFC 3261 §17.1.1.1, Appendix A). Validated by whoever builds it from the
// config: t1 > 0, t2 >= t1.
struct TimerConfig {
  Millis t1{500};         // round-trip estimate; the first retransmit interval
  Millis t2{4000};        // cap of the retransmit interval for non-INVITE requests and INVITE responses
  Millis t4{5000};        // how long a message may linger in the network
  Millis timer_d{32000};  // "at least 32 seconds" over unreliable transports (§17.1.1.2)

  // 64*T1: Timers B, F, H, L, M, and J over unreliable transports.
  Millis transaction_timeout() const { return 64 * t1; }
  // D, I, J, K are zero over reliable transports (Appendix A).
  Millis d(Reliability r) const { return r == Reliability::kReliable ? Millis{0} : timer_d; }
  Millis i(Reliability r) const { return r == Reliability::kReliable ? Millis{0} : t4; }
  Millis j(Reliability r) const { return r == Reliability::kReliable ? Millis{0} : transaction_timeout(); }
  Millis k(Reliability r) const { return r == Reliability::kReliable ? Millis{0} : t4; }
};

// What the TU is told after an event (at most one thing per event).
enum class Notify : uint8_t {
  kNone,
  kRequest,   // server: the request that created the transaction
  kAck,       // INVITE server in Accepted: an ACK that matched (an RFC 2543 peer ACKing a 2xx)
  kResponse,  // client: the response of this event
  // Client: Timer B or F fired, no final response; the TU acts as if a 408 arrived (RFC 3261
  // §8.1.3.1, §16.7 step 2). INVITE server: Timer H fired, the ACK never came (§17.2.1).
  kTimeout,
  // The transport failed to send; the TU acts as if a 503 arrived (§8.1.3.1, §16.9).
  kTransportError,
};

// How the machine took the event; the owner counts everything but kAccepted.
enum class Verdict : uint8_t {
  kAccepted,  // changed the state, or passed something to the TU
  kAbsorbed,  // a retransmission the machine handled itself (re-sent a response or the ACK, or nothing)
  kIgnored,   // not valid in this state: dropped
};

struct TimerChange {
  TimerName timer = TimerName::kA;
  bool start = false;  // false: stop
  Millis after{0};     // start: fires this long after the event (0: at once)
};

// The actions of one event, carried out in field order (see the file comment).
struct Output {
  Verdict verdict = Verdict::kAccepted;
  absl::InlinedVector<TimerChange, 3> timers;
  // Bytes for the transport, in order. Views into the machine's own storage: valid until the
  // next event is given to the same machine, or the machine is destroyed.
  absl::InlinedVector<std::string_view, 1> sends;
  Notify notify = Notify::kNone;
  bool terminated = false;

  void start(TimerName t, Millis after) { timers.push_back({t, true, after}); }
  void stop(TimerName t) { timers.push_back({t, false, Millis{0}}); }
  void send(std::string_view bytes) { sends.push_back(bytes); }

  static Output with(Verdict v) {
    Output o;
    o.verdict = v;
    return o;
  }
};

// RFC 3261 §7.2 response classes.
constexpr bool is_provisional(uint16_t status) { return status >= 100 && status <= 199; }
constexpr bool is_success(uint16_t status) { return status >= 200 && status <= 299; }
constexpr bool is_final_non2xx(uint16_t status) { return status >= 300 && status <= 699; }
constexpr bool is_final(uint16_t status) { return status >= 200 && status <= 699; }

// The states of both non-INVITE machines (RFC 3261 Figures 6 and 8 use the same four).
enum class NonInviteState : uint8_t { kTrying, kProceeding, kCompleted, kTerminated };
std::string_view non_invite_state_name(NonInviteState s);

}  // namespace pinhole::txn
