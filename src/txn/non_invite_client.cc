#include "txn/non_invite_client.h"

#include <algorithm>
#include <utility>

namespace pinhole::txn {

NonInviteClient::NonInviteClient(ClientRequest request, Reliability reliability, const TimerConfig& timers)
    : request_(std::move(request)), timers_(timers), reliability_(reliability) {}

Output NonInviteClient::start() {
  Output out;
  if (reliability_ == Reliability::kUnreliable) {
    timer_e_ = timers_.t1;
    out.start(TimerName::kE, timer_e_);
  }
  out.start(TimerName::kF, timers_.transaction_timeout());
  out.send(request_.bytes());
  return out;
}

Output NonInviteClient::on_response(const sip::Message& response) {
  const uint16_t status = response.status();
  if (state_ == State::kCompleted) {
    // Retransmitted final responses are absorbed (§17.1.2.2); nothing to send back.
    return Output::with(is_final(status) ? Verdict::kAbsorbed : Verdict::kIgnored);
  }
  if (state_ == State::kTerminated || (!is_provisional(status) && !is_final(status)))
    return Output::with(Verdict::kIgnored);
  Output out;
  out.notify = Notify::kResponse;
  if (is_provisional(status)) {
    state_ = State::kProceeding;  // E keeps running, at T2 from its next firing on
    return out;
  }
  out.stop(TimerName::kE);
  out.stop(TimerName::kF);
  out.start(TimerName::kK, timers_.k(reliability_));
  state_ = State::kCompleted;
  return out;
}

Output NonInviteClient::on_timer(TimerName timer) {
  const bool pending = state_ == State::kTrying || state_ == State::kProceeding;
  switch (timer) {
    case TimerName::kE: {
      if (!pending) break;
      Output out;
      // §17.1.2.2: min(2*E, T2) in Trying; T2 once a provisional response came.
      timer_e_ = state_ == State::kTrying ? std::min(2 * timer_e_, timers_.t2) : timers_.t2;
      out.start(TimerName::kE, timer_e_);
      out.send(request_.bytes());
      return out;
    }
    case TimerName::kF: {
      if (!pending) break;
      Output out;
      out.notify = Notify::kTimeout;
      return terminate(std::move(out));
    }
    case TimerName::kK:
      if (state_ != State::kCompleted) break;
      return terminate(Output{});
    default:
      break;
  }
  return Output::with(Verdict::kIgnored);
}

Output NonInviteClient::on_transport_error() {
  // Figure 6: from Trying and Proceeding; in Completed nothing is sent any more.
  if (state_ != State::kTrying && state_ != State::kProceeding) return Output::with(Verdict::kIgnored);
  Output out;
  out.notify = Notify::kTransportError;
  return terminate(std::move(out));
}

Output NonInviteClient::terminate(Output out) {
  state_ = State::kTerminated;
  out.terminated = true;
  return out;
}

}  // namespace pinhole::txn
