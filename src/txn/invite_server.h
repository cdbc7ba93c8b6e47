// INVITE server transaction (RFC 3261 §17.2.1, with the RFC 6026 §7.1 "Accepted" state) as a
// pure state machine.
//
//   Proceeding --1xx from TU--> Proceeding (retransmitted INVITE: re-send the last 1xx)
//   Proceeding --300-699 from TU--> Completed (G retransmits, unreliable only)
//   Completed --ACK--> Confirmed --Timer I--> Terminated
//   Completed --Timer H (no ACK) or transport error--> Terminated (TU told)
//   Proceeding --2xx from TU--> Accepted --Timer L--> Terminated
//   Accepted: retransmitted INVITEs absorbed, further 2xx from the TU sent, ACKs to the TU.
//
// The ACK for a non-2xx final response is hop-by-hop: the transaction absorbs it and the TU never
// sees it. An ACK for a 2xx carries a new branch and matches no transaction, except from RFC 2543
// peers (matched without branch), which is why Accepted passes ACKs up.
//
// RFC 3261 §17.2.1's 100 Trying is left to the TU: a proxy sends it at once for every INVITE
// (§16.2), with the received/rport parameters only the transport layer knows.
//
// Ownership and threads: the machine owns the INVITE (the TU reads it through the table until the
// final response is sent) and the last response it sent. One worker thread uses it.
#pragma once

#include <string>
#include <string_view>

#include "sip/message.h"
#include "txn/actions.h"

namespace pinhole::txn {

class InviteServer {
 public:
  enum class State : uint8_t { kProceeding, kCompleted, kConfirmed, kAccepted, kTerminated };
  static std::string_view state_name(State s);

  InviteServer(sip::MessagePtr invite, Reliability reliability, const TimerConfig& timers);

  // The INVITE arrived: Proceeding, pass it to the TU.
  Output start();
  // A request matched to this transaction by its key: a retransmitted INVITE, or an ACK.
  Output on_request(const sip::Message& request);
  // A response from the TU, serialized, with its status code.
  Output respond(uint16_t status, std::string response);
  Output on_timer(TimerName timer);
  Output on_transport_error();

  State state() const { return state_; }
  // The INVITE, until a final response was sent (then nullptr: see release_request).
  const sip::Message* request() const { return invite_.get(); }
  // Once a final response was sent the INVITE is not needed any more (retransmissions are
  // answered from last_response_, matching is by the table's key): the table takes it back so
  // the message is freed at once instead of living for Timer H/I/L.
  sip::MessagePtr release_request() { return state_ == State::kProceeding ? nullptr : std::move(invite_); }
  uint16_t last_status() const { return last_status_; }

 private:
  Output terminate(Output out);

  sip::MessagePtr invite_;
  std::string last_response_;  // the latest 1xx, then the final response; re-sent on retransmissions
  uint16_t last_status_ = 0;
  TimerConfig timers_;
  Millis timer_g_{0};  // current G interval: T1, doubling up to T2
  Reliability reliability_;
  State state_ = State::kProceeding;
};

}  // namespace pinhole::txn
