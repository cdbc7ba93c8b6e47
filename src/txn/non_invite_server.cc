#include "txn/non_invite_server.h"

#include <utility>

namespace pinhole::txn {

NonInviteServer::NonInviteServer(sip::MessagePtr request, Reliability reliability, const TimerConfig& timers)
    : request_(std::move(request)), timers_(timers), reliability_(reliability) {}

Output NonInviteServer::start() {
  Output out;
  out.notify = Notify::kRequest;
  return out;
}

Output NonInviteServer::on_request(const sip::Message& request) {
  if (request.method() == sip::Method::kAck) return Output::with(Verdict::kIgnored);
  switch (state_) {
    case State::kTrying:
      return Output::with(Verdict::kAbsorbed);  // nothing to re-send yet
    case State::kProceeding:
    case State::kCompleted: {
      Output out = Output::with(Verdict::kAbsorbed);
      out.send(last_response_);
      return out;
    }
    case State::kTerminated:
      break;
  }
  return Output::with(Verdict::kIgnored);
}

Output NonInviteServer::respond(uint16_t status, std::string response) {
  if ((state_ != State::kTrying && state_ != State::kProceeding) || (!is_provisional(status) && !is_final(status)))
    return Output::with(Verdict::kIgnored);
  Output out;
  if (is_provisional(status)) {
    state_ = State::kProceeding;
  } else {
    state_ = State::kCompleted;
    out.start(TimerName::kJ, timers_.j(reliability_));
  }
  last_response_ = std::move(response);
  last_status_ = status;
  out.send(last_response_);
  return out;
}

Output NonInviteServer::on_timer(TimerName timer) {
  if (timer != TimerName::kJ || state_ != State::kCompleted) return Output::with(Verdict::kIgnored);
  return terminate(Output{});
}

Output NonInviteServer::on_transport_error() {
  // Figure 8: from Proceeding and Completed; in Trying nothing was sent yet.
  if (state_ != State::kProceeding && state_ != State::kCompleted) return Output::with(Verdict::kIgnored);
  Output out;
  out.notify = Notify::kTransportError;
  return terminate(std::move(out));
}

Output NonInviteServer::terminate(Output out) {
  state_ = State::kTerminated;
  out.terminated = true;
  return out;
}

}  // namespace pinhole::txn
