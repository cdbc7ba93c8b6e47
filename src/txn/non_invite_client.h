// Non-INVITE client transaction (RFC 3261 §17.1.2) as a pure state machine.
//
//   Trying --1xx--> Proceeding --1xx--> Proceeding
//   Trying/Proceeding --200-699--> Completed --Timer K--> Terminated
//   Trying/Proceeding --Timer F or transport error--> Terminated (TU told)
//   Timer E (unreliable only): retransmit; T1, doubling up to T2 in Trying, T2 in Proceeding.
//
// Ownership and threads: the machine owns the request it sends (retransmitted from its bytes,
// parsed only if the TU asks for it: see ClientRequest). It is used by the one worker thread that
// owns it (through TransactionTable).
#pragma once

#include <string_view>
#include <utility>

#include "sip/message.h"
#include "txn/actions.h"
#include "txn/client_request.h"

namespace pinhole::txn {

class NonInviteClient {
 public:
  using State = NonInviteState;
  static std::string_view state_name(State s) { return non_invite_state_name(s); }

  // `request` is the request as it goes on the wire (not INVITE, not ACK).
  NonInviteClient(sip::MessagePtr request, Reliability reliability, const TimerConfig& timers)
      : NonInviteClient(ClientRequest(std::move(request)), reliability, timers) {}
  NonInviteClient(ClientRequest request, Reliability reliability, const TimerConfig& timers);

  // Sends the request; starts E (unreliable only) and F.
  Output start();
  Output on_response(const sip::Message& response);
  Output on_timer(TimerName timer);
  Output on_transport_error();

  State state() const { return state_; }
  // The request, until a final response came (then nullptr: see release_request); also nullptr
  // when it was given as bytes that do not parse.
  const sip::Message* request() const { return request_ ? request_.parsed() : nullptr; }
  bool request_parse_failed() const { return request_.parse_failed(); }
  // In Completed nothing is re-sent: the table takes the request back so it is freed at once,
  // not after Timer K.
  ClientRequest release_request() {
    return state_ == State::kTrying || state_ == State::kProceeding ? ClientRequest() : std::move(request_);
  }

 private:
  Output terminate(Output out);

  ClientRequest request_;
  TimerConfig timers_;
  Millis timer_e_{0};  // current E interval
  Reliability reliability_;
  State state_ = State::kTrying;
};

}  // namespace pinhole::txn
