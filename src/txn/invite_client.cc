#include "txn/invite_client.h"

#include <string>
#include <utility>

#include "sip/builder.h"

namespace pinhole::txn {

using sip::HeaderKind;

Result<std::string> build_ack(const sip::Message& invite, const sip::Message& response) {
  auto via = invite.top_via();
  if (!via) return via.error();
  auto cseq = invite.cseq();
  if (!cseq) return cseq.error();
  const sip::HeaderField* from = invite.header(HeaderKind::kFrom);
  const sip::HeaderField* call_id = invite.header(HeaderKind::kCallId);
  const sip::HeaderField* to = response.header(HeaderKind::kTo);
  if (from == nullptr || call_id == nullptr || to == nullptr) return bad_request("ACK needs From, To and Call-ID");
  const sip::HeaderField* max_forwards = invite.header(HeaderKind::kMaxForwards);

  sip::RequestBuilder ack("ACK", invite.request_uri().raw);
  // Only the top Via: the ACK goes to the same next hop as the INVITE and is consumed there.
  ack.header("Via", (*via)->raw);
  // The INVITE's route set, so the ACK follows the INVITE's path (§17.1.1.3).
  for (const auto& h : invite.headers())
    if (h.kind == HeaderKind::kRoute) ack.header("Route", h.value);
  ack.header("Max-Forwards", max_forwards != nullptr ? max_forwards->value : std::string_view("70"));
  ack.header("From", from->value);
  ack.header("To", to->value);  // the response's: it carries the tag the ACK must match
  ack.header("Call-ID", call_id->value);
  ack.header("CSeq", std::to_string(cseq->number) + " ACK");
  return ack.build();
}

std::string_view InviteClient::state_name(State s) {
  switch (s) {
    case State::kCalling:
      return "Calling";
    case State::kProceeding:
      return "Proceeding";
    case State::kCompleted:
      return "Completed";
    case State::kAccepted:
      return "Accepted";
    case State::kTerminated:
      return "Terminated";
  }
  return "?";
}

InviteClient::InviteClient(ClientRequest invite, Reliability reliability, const TimerConfig& timers)
    : invite_(std::move(invite)), timers_(timers), reliability_(reliability) {}

Output InviteClient::start() {
  Output out;
  if (reliability_ == Reliability::kUnreliable) {
    timer_a_ = timers_.t1;
    out.start(TimerName::kA, timer_a_);
  }
  out.start(TimerName::kB, timers_.transaction_timeout());
  out.send(invite_.bytes());
  return out;
}

Output InviteClient::on_response(const sip::Message& response) {
  const uint16_t status = response.status();
  switch (state_) {
    case State::kCalling:
    case State::kProceeding: {
      if (!is_provisional(status) && !is_final(status)) return Output::with(Verdict::kIgnored);
      Output out;
      if (state_ == State::kCalling) {
        // §17.1.1.2: no more retransmissions once anything came back; B guards Calling only.
        out.stop(TimerName::kA);
        out.stop(TimerName::kB);
      }
      if (is_provisional(status)) {
        state_ = State::kProceeding;
      } else if (is_success(status)) {
        state_ = State::kAccepted;  // RFC 6026 §7.2
        out.start(TimerName::kM, timers_.transaction_timeout());
      } else {
        const sip::Message* invite = invite_.parsed();
        if (invite != nullptr) {
          auto ack = build_ack(*invite, response);
          if (!ack) return Output::with(Verdict::kIgnored);
          ack_ = std::move(ack).value();
        }
        // An INVITE given as bytes that do not parse (the table counts it) gets no ACK: the
        // response still completes the transaction and goes to the TU, and the next hop's
        // retransmissions are absorbed until it gives up (Timer H), rather than the call hanging.
        state_ = State::kCompleted;
        out.start(TimerName::kD, timers_.d(reliability_));
        if (!ack_.empty()) out.send(ack_);
      }
      out.notify = Notify::kResponse;
      return out;
    }
    case State::kCompleted: {
      // A retransmission of the final response: the ACK was lost, send it again (§17.1.1.2).
      if (!is_final_non2xx(status)) return Output::with(Verdict::kIgnored);
      Output out = Output::with(Verdict::kAbsorbed);
      if (!ack_.empty()) out.send(ack_);
      return out;
    }
    case State::kAccepted: {
      // RFC 6026 §7.2: every 2xx goes to the TU (retransmissions and other forks alike).
      if (!is_success(status)) return Output::with(Verdict::kIgnored);
      Output out;
      out.notify = Notify::kResponse;
      return out;
    }
    case State::kTerminated:
      break;
  }
  return Output::with(Verdict::kIgnored);
}

Output InviteClient::on_timer(TimerName timer) {
  switch (timer) {
    case TimerName::kA: {
      if (state_ != State::kCalling) break;
      Output out;
      timer_a_ *= 2;  // T1, 2*T1, 4*T1... until B ends it (§17.1.1.2)
      out.start(TimerName::kA, timer_a_);
      out.send(invite_.bytes());
      return out;
    }
    case TimerName::kB: {
      if (state_ != State::kCalling) break;
      Output out;
      out.notify = Notify::kTimeout;
      return terminate(std::move(out));
    }
    case TimerName::kD:
      if (state_ != State::kCompleted) break;
      return terminate(Output{});
    case TimerName::kM:
      if (state_ != State::kAccepted) break;
      return terminate(Output{});
    default:
      break;
  }
  return Output::with(Verdict::kIgnored);
}

Output InviteClient::on_transport_error() {
  // Figure 5: from Calling and Completed (and Proceeding, where a stream can still break).
  if (state_ != State::kCalling && state_ != State::kProceeding && state_ != State::kCompleted)
    return Output::with(Verdict::kIgnored);
  Output out;
  out.notify = Notify::kTransportError;
  return terminate(std::move(out));
}

Output InviteClient::terminate(Output out) {
  state_ = State::kTerminated;
  out.terminated = true;
  return out;
}

}  // namespace pinhole::txn
