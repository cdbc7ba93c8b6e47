#include "ua/outbound_keepalive.h"

#include "ua/random.h"

namespace pinhole::ua {

OutboundKeepalive::OutboundKeepalive(net::Transport transport, std::chrono::milliseconds configured_interval,
                                     std::chrono::milliseconds pong_timeout)
    : transport_(transport), configured_interval_(configured_interval), pong_timeout_(pong_timeout) {}

void OutboundKeepalive::start(TimePoint now, std::optional<uint32_t> flow_timer, bool must_answer) {
  using std::chrono::seconds;
  if (flow_timer && *flow_timer > 0) {
    base_interval_ = seconds(*flow_timer);
  } else if (configured_interval_.count() > 0) {
    base_interval_ = configured_interval_;
  } else {
    base_interval_ = net::is_stream(transport_) ? seconds(120) : seconds(30);
  }
  running_ = true;
  must_answer_ = must_answer;
  awaiting_ = false;
  schedule_next_ping(now);
}

void OutboundKeepalive::stop() {
  running_ = false;
  awaiting_ = false;
}

void OutboundKeepalive::schedule_next_ping(TimePoint now) {
  auto ms = static_cast<uint64_t>(base_interval_.count());
  auto jittered = random_between(ms * 8 / 10, ms);
  next_ping_ = now + std::chrono::milliseconds(static_cast<int64_t>(jittered));
}

std::optional<TimePoint> OutboundKeepalive::next_deadline() const {
  if (!running_) return std::nullopt;
  return awaiting_ ? pong_deadline_ : next_ping_;
}

OutboundKeepalive::Tick OutboundKeepalive::on_timer(TimePoint now) {
  Tick tick;
  if (!running_) return tick;
  if (awaiting_) {
    if (now < pong_deadline_) return tick;
    awaiting_ = false;
    ++missed_pongs_;
    if (must_answer_) {
      running_ = false;
      tick.action = Action::kFlowDead;
      return tick;
    }
    schedule_next_ping(now);
    return tick;
  }
  if (now < next_ping_) return tick;
  tick.action = Action::kSendPing;
  if (net::is_stream(transport_)) {
    tick.bytes = "\r\n\r\n";
  } else {
    random_bytes(stun_id_);
    nat::append_binding_request(tick.bytes, stun_id_, /*fingerprint=*/true);
  }
  awaiting_ = true;
  pong_deadline_ = now + pong_timeout_;
  return tick;
}

void OutboundKeepalive::on_pong(TimePoint now) {
  if (!running_ || !awaiting_ || !net::is_stream(transport_)) return;
  awaiting_ = false;
  schedule_next_ping(now);
}

OutboundKeepalive::StunVerdict OutboundKeepalive::on_stun(std::string_view datagram, TimePoint now) {
  auto reply = nat::decode_binding_response(datagram);
  if (!reply || !running_ || !awaiting_ || reply->transaction_id != stun_id_) return StunVerdict::kNotOurs;
  awaiting_ = false;
  schedule_next_ping(now);
  auto reflexive = reply->reflexive();
  if (!reflexive || reply->type != nat::kStunBindingSuccess) return StunVerdict::kAnswered;
  if (mapped_ && *mapped_ != *reflexive) {
    mapped_ = reflexive;
    return StunVerdict::kMappedChanged;
  }
  mapped_ = reflexive;
  return StunVerdict::kAnswered;
}

}  // namespace pinhole::ua
