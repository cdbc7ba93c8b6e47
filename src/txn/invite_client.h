// INVITE client transaction (RFC 3261 §17.1.1, with the RFC 6026 §7.2 "Accepted" state), as a
// pure state machine, and the hop-by-hop ACK it sends for a non-2xx final response.
//
//   Calling --1xx--> Proceeding --1xx--> Proceeding
//   Calling/Proceeding --300-699: send ACK--> Completed --Timer D--> Terminated
//   Calling/Proceeding --2xx--> Accepted --2xx to TU--> Accepted --Timer M--> Terminated
//   Calling --Timer B or transport error--> Terminated (TU told)
//
// A proxy keeps the transaction in Accepted so that retransmitted (or forked) 2xx responses still
// match it and are passed to the TU for forwarding; the ACK for a 2xx is the TU's, end to end.
//
// Ownership and threads: the machine owns the request it sends (retransmitted from its bytes,
// read again to build the ACK: see ClientRequest) and the last ACK it built. It is used by the
// one worker thread that owns it (through TransactionTable); it keeps no pointers into anyone
// else's memory.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "common/result.h"
#include "sip/message.h"
#include "txn/actions.h"
#include "txn/client_request.h"

namespace pinhole::txn {

// RFC 3261 §17.1.1.3: the ACK for a non-2xx final response to `invite`: the INVITE's
// Request-URI, its top Via only, its Route fields, Max-Forwards, From, Call-ID, the CSeq number
// with method ACK, and the To of `response` (which carries the tag). Fails only when the
// messages lack those headers (the INVITE is ours; the response passed the client key lookup).
Result<std::string> build_ack(const sip::Message& invite, const sip::Message& response);

class InviteClient {
 public:
  enum class State : uint8_t { kCalling, kProceeding, kCompleted, kAccepted, kTerminated };
  static std::string_view state_name(State s);

  // `invite` is the request as it goes on the wire (parsed from the bytes the transport sends).
  InviteClient(sip::MessagePtr invite, Reliability reliability, const TimerConfig& timers)
      : InviteClient(ClientRequest(std::move(invite)), reliability, timers) {}
  InviteClient(ClientRequest invite, Reliability reliability, const TimerConfig& timers);

  // Sends the INVITE; starts A (unreliable only) and B.
  Output start();
  // A response matched to this transaction by its key (top Via branch + CSeq method).
  Output on_response(const sip::Message& response);
  Output on_timer(TimerName timer);
  Output on_transport_error();

  State state() const { return state_; }
  // The INVITE, until a final response came (then nullptr: see release_request); also nullptr
  // when it was given as bytes that do not parse.
  const sip::Message* request() const { return invite_ ? invite_.parsed() : nullptr; }
  bool request_parse_failed() const { return invite_.parse_failed(); }
  // In Completed the ACK is already built (ack_) and in Accepted nothing is sent: the table takes
  // the INVITE back so it is freed at once, not after Timer D/M (32 s).
  ClientRequest release_request() {
    return state_ == State::kCalling || state_ == State::kProceeding ? ClientRequest() : std::move(invite_);
  }
  // The ACK sent for the non-2xx final response; empty before one arrived.
  std::string_view ack() const { return ack_; }

 private:
  Output terminate(Output out);

  ClientRequest invite_;
  std::string ack_;
  TimerConfig timers_;
  Millis timer_a_{0};  // current A interval: T1, doubling at each retransmission (no T2 cap)
  Reliability reliability_;
  State state_ = State::kCalling;
};

}  // namespace pinhole::txn
