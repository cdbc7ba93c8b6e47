// The REGISTER state machine of one AOR over one flow at a time (RFC 3261 §10.2, RFC 3581,
// RFC 5626 §4.2–§4.5). Pure: the caller passes `now`, starts a client transaction for each
// request it is given (the UserAgent's txn::TransactionTable: retransmission and Timer F live
// there), feeds back the responses and the transaction failures, arms one timer for
// next_deadline() and creates a new flow when asked; nothing here touches a socket or a clock,
// so the unit tests drive it directly and through the UserAgent.
//
// What it does:
// - REGISTER to the AOR's domain with Via/Contact from the flow's real local address and
//   transport, `rport` always, `;alias` on TCP (configurable), RFC 5626 +sip.instance/reg-id/;ob
//   and Supported: path, outbound. Each REGISTER is a non-INVITE client transaction of the
//   caller's table; Timer F (no answer) comes back through on_failure as 408.
// - Digest: a 401/407 is answered once with credentials (again only when the server says
//   stale=true); a second plain challenge is a wrong password.
// - received/rport of any response (401 included) becomes the Contact address; when it changes
//   after a 200, an immediate re-REGISTER also removes the stale binding (old Contact with
//   expires=0). Contact URI parameters are the same on every REGISTER.
// - Our binding is found in a 200 by instance/reg-id or by our Contact URI; others are counted.
// - Refresh at granted − max(granted/10, 5 s); 423 retried with Min-Expires; other failures and
//   flow losses retried with the RFC 5626 §4.5 backoff (the first re-REGISTER after losing a flow
//   that worked goes at once).
//
// Threads: owned by the UserAgent, used on its event-loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "net/transport.h"
#include "sip/message.h"
#include "ua/contact_learning.h"
#include "ua/digest_client.h"
#include "ua/ua_config.h"

namespace pinhole::ua {

// The flow a REGISTER goes out on, as Via and Contact must show it.
struct FlowInfo {
  net::Transport transport = net::Transport::kUdp;
  HostPort local;  // the socket's real local address and port
};

// The transport token of a Via for `t` ("UDP", "TCP"...).
std::string_view via_transport_token(net::Transport t);

enum class RegistrationState : uint8_t {
  kIdle,          // not started, or unregistered
  kWaitingFlow,   // asked for a flow, not there yet
  kRegistering,   // REGISTER in progress (first one, or after a failure)
  kRegistered,    // binding in place; refreshing in the background
  kBackoff,       // failed; retry at next_deadline()
  kUnregistering  // expires=0 in progress
};
std::string_view state_name(RegistrationState state);

enum class RegistrationEventKind : uint8_t {
  kRegistered,      // 200 OK with our binding (first time, refresh, or after a contact change)
  kContactChanged,  // the registrar saw us at another address; re-REGISTER under way
  kAuthFailed,      // credentials refused (second challenge, 403)
  kFailed,          // another final response, a missing binding, an unusable challenge
  kTimeout,         // REGISTER unanswered: the flow is treated as failed
  kUnregistered,    // the expires=0 REGISTER got its final response (or could not be sent)
  kWarning          // the server did something odd, we carry on (foreign Contacts, Flow-Timer: 0)
};

struct RegistrationEvent {
  RegistrationEventKind kind = RegistrationEventKind::kFailed;
  uint16_t status = 0;  // the SIP status that caused it, 0 when none
  std::string text;     // one log line's worth
};

struct RegistrationOutput {
  // Requests for new client transactions on the current flow, in order (each one supersedes
  // the transaction before it: responses and failures for that one are ignored from now on).
  std::vector<std::string> send;
  std::vector<RegistrationEvent> events;
  bool want_flow = false;    // create a new flow and call flow_ready() when it is up
  bool flow_failed = false;  // the current flow is to be treated as dead (close it)
};

// RFC 5626 §4.5: the upper bound of the wait before the next attempt after `failures`
// consecutive failures; the caller takes a random 50–100 % of it.
std::chrono::milliseconds outbound_backoff_bound(uint32_t failures, bool ever_registered,
                                                 std::chrono::milliseconds base,
                                                 std::chrono::milliseconds base_after_success,
                                                 std::chrono::milliseconds max);

// When to refresh a binding granted for `granted` seconds, counted from the 200 OK.
std::chrono::milliseconds refresh_delay(uint32_t granted);

class Registration {
 public:
  // Fails (400) when the AOR is not a sip/sips URI with a user and a host.
  static Result<std::unique_ptr<Registration>> create(const UaConfig& config);

  // Begins registering: asks for a flow.
  RegistrationOutput start(TimePoint now);
  // The flow asked for is up: sends the REGISTER (with the stale binding's removal when the
  // contact address moved since the last 200).
  RegistrationOutput flow_ready(TimePoint now, const FlowInfo& flow);
  // The flow died (connect failed, closed, keepalive timeout, mapped address changed). The
  // transaction in progress is abandoned; a new flow is asked for at once when the last one had
  // a working registration, else after the backoff.
  RegistrationOutput flow_lost(TimePoint now, std::string_view why);
  // A response that arrived on the flow; anything not for our current transaction is ignored.
  RegistrationOutput on_response(const sip::Message& response, TimePoint now);
  // The client transaction whose top Via has `branch` gave up: Timer F (408, RFC 5626 §4.4: the
  // flow is treated as dead) or a transport error (503, likewise). Ignored unless it is our
  // current transaction.
  RegistrationOutput on_failure(std::string_view branch, uint16_t status, TimePoint now);
  // Refresh, retry after backoff.
  RegistrationOutput on_timer(TimePoint now);
  // Re-REGISTER now (the application saw the network change); ignored unless registered.
  RegistrationOutput refresh_now(TimePoint now);
  // Unregisters (expires=0) when a binding may exist and the flow is up; kUnregistered comes
  // with the final response, or at once when there is nothing to remove.
  RegistrationOutput stop(TimePoint now);

  std::optional<TimePoint> next_deadline() const;
  RegistrationState state() const { return state_; }

  // From the last 200 OK.
  uint32_t granted_expires() const { return granted_; }
  std::optional<uint32_t> flow_timer() const { return flow_timer_; }
  bool outbound_required() const { return outbound_required_; }
  // The address in our Contact now (the flow's local one, or the learned public one).
  const HostPort& contact_address() const { return contact_; }
  std::string contact_uri() const { return contact_uri_for(contact_); }
  const std::string& call_id() const { return call_id_; }
  uint32_t consecutive_failures() const { return failures_; }

  // Test hook: fixed digest cnonce.
  DigestClient& digest() { return digest_; }

 private:
  Registration(const UaConfig& config, std::string aor_user, std::string domain_uri);

  std::string contact_uri_for(const HostPort& address) const;
  std::string build_register(uint32_t expires);
  void send_register(RegistrationOutput& out, TimePoint now, uint32_t expires);
  void fail(RegistrationOutput& out, TimePoint now, RegistrationEventKind kind, uint16_t status, std::string text);
  void on_success(const sip::Message& response, RegistrationOutput& out, TimePoint now);

  UaConfig config_;
  std::string aor_user_;
  std::string domain_uri_;  // Request-URI: "sip:example.com"
  std::string digest_user_;
  DigestClient digest_;
  std::string call_id_, from_tag_;
  uint32_t cseq_ = 0;

  RegistrationState state_ = RegistrationState::kIdle;
  bool flow_up_ = false;
  FlowInfo flow_;
  HostPort contact_;                       // what our Contact says now
  std::optional<HostPort> registered_at_;  // the address of the binding the last 200 confirmed
  std::optional<HostPort> stale_;          // to remove (expires=0) with the next REGISTER
  uint32_t requested_expires_ = 0;

  // The client transaction in progress (the caller's table runs it; we match by branch).
  bool in_transaction_ = false;
  std::string branch_;
  uint32_t transaction_cseq_ = 0;
  bool unregistering_ = false;
  HostPort sent_contact_;  // the Contact address this request carries
  std::optional<HostPort> sent_stale_;
  int challenges_answered_ = 0;  // in a row, for this registration attempt

  TimePoint refresh_at_{};
  TimePoint retry_at_{};
  uint32_t failures_ = 0;
  bool ever_registered_ = false;
  bool registered_on_this_flow_ = false;
  uint32_t granted_ = 0;
  std::optional<uint32_t> flow_timer_;
  bool outbound_required_ = false;
};

}  // namespace pinhole::ua
