#include "txn/invite_server.h"

#include <algorithm>
#include <utility>

namespace pinhole::txn {

std::string_view InviteServer::state_name(State s) {
  switch (s) {
    case State::kProceeding:
      return "Proceeding";
    case State::kCompleted:
      return "Completed";
    case State::kConfirmed:
      return "Confirmed";
    case State::kAccepted:
      return "Accepted";
    case State::kTerminated:
      return "Terminated";
  }
  return "?";
}

InviteServer::InviteServer(sip::MessagePtr invite, Reliability reliability, const TimerConfig& timers)
    : invite_(std::move(invite)), timers_(timers), reliability_(reliability) {}

Output InviteServer::start() {
  Output out;
  out.notify = Notify::kRequest;
  return out;
}

Output InviteServer::on_request(const sip::Message& request) {
  if (request.method() == sip::Method::kInvite) {
    // A retransmission: re-send what the client missed, in the states that have it.
    Output out = Output::with(Verdict::kAbsorbed);
    switch (state_) {
      case State::kProceeding:
      case State::kCompleted:
        if (!last_response_.empty()) out.send(last_response_);
        return out;
      case State::kConfirmed:
      case State::kAccepted:  // RFC 6026 §7.1: absorbed, not passed to the TU, nothing re-sent
        return out;
      case State::kTerminated:
        break;
    }
    return Output::with(Verdict::kIgnored);
  }
  if (request.method() == sip::Method::kAck) {
    switch (state_) {
      case State::kCompleted: {
        Output out;
        out.stop(TimerName::kG);
        out.stop(TimerName::kH);
        out.start(TimerName::kI, timers_.i(reliability_));
        state_ = State::kConfirmed;
        return out;
      }
      case State::kConfirmed:
        return Output::with(Verdict::kAbsorbed);  // what Confirmed is for
      case State::kAccepted: {
        Output out;
        out.notify = Notify::kAck;
        return out;
      }
      case State::kProceeding:
      case State::kTerminated:
        break;
    }
  }
  return Output::with(Verdict::kIgnored);
}

Output InviteServer::respond(uint16_t status, std::string response) {
  Output out;
  if (state_ == State::kAccepted) {
    // RFC 6026 §7.1: the TU's 2xx retransmissions (or other 2xx) still go out.
    if (!is_success(status)) return Output::with(Verdict::kIgnored);
  } else if (state_ != State::kProceeding || (!is_provisional(status) && !is_final(status))) {
    return Output::with(Verdict::kIgnored);
  } else if (is_success(status)) {
    state_ = State::kAccepted;
    out.start(TimerName::kL, timers_.transaction_timeout());
  } else if (is_final_non2xx(status)) {
    state_ = State::kCompleted;
    if (reliability_ == Reliability::kUnreliable) {
      timer_g_ = timers_.t1;
      out.start(TimerName::kG, timer_g_);
    }
    out.start(TimerName::kH, timers_.transaction_timeout());
  }
  last_response_ = std::move(response);
  last_status_ = status;
  out.send(last_response_);
  return out;
}

Output InviteServer::on_timer(TimerName timer) {
  switch (timer) {
    case TimerName::kG: {
      if (state_ != State::kCompleted) break;
      Output out;
      timer_g_ = std::min(2 * timer_g_, timers_.t2);
      out.start(TimerName::kG, timer_g_);
      out.send(last_response_);
      return out;
    }
    case TimerName::kH: {
      if (state_ != State::kCompleted) break;
      Output out;
      out.notify = Notify::kTimeout;  // the ACK never came (§17.2.1)
      return terminate(std::move(out));
    }
    case TimerName::kI:
      if (state_ != State::kConfirmed) break;
      return terminate(Output{});
    case TimerName::kL:
      if (state_ != State::kAccepted) break;
      return terminate(Output{});
    default:
      break;
  }
  return Output::with(Verdict::kIgnored);
}

Output InviteServer::on_transport_error() {
  Output out;
  out.notify = Notify::kTransportError;
  switch (state_) {
    case State::kProceeding:
    case State::kCompleted:
      return terminate(std::move(out));  // Figure 7
    case State::kAccepted:
      return out;  // RFC 6026 §7.1: the TU is told, Timer L still runs
    case State::kConfirmed:
    case State::kTerminated:
      break;
  }
  return Output::with(Verdict::kIgnored);
}

Output InviteServer::terminate(Output out) {
  state_ = State::kTerminated;
  out.terminated = true;
  return out;
}

}  // namespace pinhole::txn
