// Non-INVITE server transaction (RFC 3261 §17.2.2) as a pure state machine. CANCEL gets one too
// (§9.2); finding the INVITE it cancels is the table's job.
//
//   Trying --1xx from TU--> Proceeding --1xx from TU--> Proceeding
//   Trying/Proceeding --200-699 from TU--> Completed --Timer J--> Terminated
//   Proceeding/Completed --transport error--> Terminated (TU told)
//   Retransmitted request: discarded in Trying, answered with the last response in Proceeding
//   and Completed.
//
// Ownership and threads: the machine owns the request (the TU reads it through the table until
// the final response is sent) and the last response it sent. One worker thread uses it.
#pragma once

#include <string>
#include <string_view>

#include "sip/message.h"
#include "txn/actions.h"

namespace pinhole::txn {

class NonInviteServer {
 public:
  using State = NonInviteState;
  static std::string_view state_name(State s) { return non_invite_state_name(s); }

  NonInviteServer(sip::MessagePtr request, Reliability reliability, const TimerConfig& timers);

  // The request arrived: Trying, pass it to the TU.
  Output start();
  // A retransmission of the request, matched by its key.
  Output on_request(const sip::Message& request);
  // A response from the TU, serialized, with its status code.
  Output respond(uint16_t status, std::string response);
  Output on_timer(TimerName timer);
  Output on_transport_error();

  State state() const { return state_; }
  // The request, until a final response was sent (then nullptr: see release_request).
  const sip::Message* request() const { return request_.get(); }
  // In Completed only the last response is needed (retransmissions are matched by the table's
  // key): the table takes the request back so it is freed at once, not after Timer J (32 s).
  sip::MessagePtr release_request() {
    return state_ == State::kTrying || state_ == State::kProceeding ? nullptr : std::move(request_);
  }
  uint16_t last_status() const { return last_status_; }

 private:
  Output terminate(Output out);

  sip::MessagePtr request_;
  std::string last_response_;
  uint16_t last_status_ = 0;
  TimerConfig timers_;
  Reliability reliability_;
  State state_ = State::kTrying;
};

}  // namespace pinhole::txn
