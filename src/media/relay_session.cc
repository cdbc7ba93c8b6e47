// Relay session: legs, latching per stream and the per-packet forwarding decision (see
// relay_session.h).
#include "media/relay_session.h"

#include <functional>
#include <utility>

namespace pinhole::media {
namespace {

constexpr size_t kRtpHeader = 12;
constexpr size_t kRtcpHeader = 8;
constexpr uint64_t kSeqSpan = 65536;

bool version2(std::span<const uint8_t> data) { return !data.empty() && (data[0] >> 6) == 2; }

std::optional<net::Endpoint> rtcp_default(const LegSetup& setup) {
  if (setup.sdp_rtcp) return setup.sdp_rtcp;
  // RFC 3550 §11: without a=rtcp the RTCP port is the RTP port + 1.
  if (setup.sdp_rtp && setup.sdp_rtp->port != 0 && setup.sdp_rtp->port != 65535) {
    return net::Endpoint{setup.sdp_rtp->address, static_cast<uint16_t>(setup.sdp_rtp->port + 1)};
  }
  return std::nullopt;
}

}  // namespace

size_t SessionKeyHash::operator()(const SessionKey& k) const {
  std::hash<std::string_view> h;
  size_t seed = h(k.call_id);
  seed ^= h(k.from_tag) + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
  seed ^= h(k.via_branch) + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
  return seed;
}

bool looks_like_rtcp(std::span<const uint8_t> data) { return data.size() >= 2 && data[1] >= 192 && data[1] <= 223; }

void SeqTracker::on_packet(uint16_t seq) {
  if (!started_) {
    started_ = true;
    first_ = seq;
    // Start one cycle up so that a packet reordered before the first cannot go below zero.
    base_ext_ = max_ext_ = kSeqSpan + seq;
    received_ = 1;
    return;
  }
  auto delta = static_cast<uint16_t>(seq - static_cast<uint16_t>(max_ext_ & 0xffff));
  if (delta < kMaxDropout) {
    // In order, possibly with a gap; adding the 16-bit distance carries across the wrap.
    max_ext_ += delta;
    ++received_;
  } else if (delta >= kSeqSpan - kMaxMisorder) {
    // Late (reordered) packet: counts as received, does not move the highest number.
    if (max_ext_ - (kSeqSpan - delta) >= base_ext_) ++received_;
  } else {
    // The source jumped (restarted): count afresh from here.
    max_ext_ = (max_ext_ & ~uint64_t{0xffff}) + 2 * kSeqSpan + seq;
    base_ext_ = max_ext_;
    received_ = 1;
  }
}

void StreamStats::count(size_t size, std::optional<uint16_t> seq, TimePoint now) {
  ++packets;
  bytes += size;
  if (seq) {
    if (!first_seq) first_seq = seq;
    last_seq = seq;
  }
  last_packet = now;
}

RelayLeg::RelayLeg(PortLease ports, const LegSetup& setup, const LatchConfig& latch, TimePoint now)
    : ports_(std::move(ports)),
      rtp_latch_(latch, setup.signaling_ip, setup.sdp_rtp, now),
      rtcp_latch_(latch, setup.signaling_ip, rtcp_default(setup), now),
      defaults_(latch) {
  apply_flags(setup);
}

void RelayLeg::apply_flags(const LegSetup& setup) {
  for (Latch* l : {&rtp_latch_, &rtcp_latch_}) {
    l->set_media_handover(defaults_.media_handover || setup.media_handover);
    l->set_asymmetric(defaults_.asymmetric || setup.asymmetric);
    l->set_strict_source(defaults_.strict_source || setup.strict_source);
  }
}

void RelayLeg::reset_expected(const LegSetup& setup, TimePoint now) {
  rtp_latch_.reset_expected(setup.signaling_ip, setup.sdp_rtp, now);
  rtcp_latch_.reset_expected(setup.signaling_ip, rtcp_default(setup), now);
  apply_flags(setup);
}

Result<std::unique_ptr<RelaySession>> RelaySession::create(SessionKey key, PortPool& pool, const LegSetup& a,
                                                           const LegSetup& b, const SessionConfig& config,
                                                           TimePoint now) {
  auto ports_a = pool.allocate(a.rtcp_mux);
  if (!ports_a) return ports_a.error();
  auto ports_b = pool.allocate(b.rtcp_mux);
  if (!ports_b) return ports_b.error();  // ports_a goes back to the pool here
  std::unique_ptr<RelaySession> session(new RelaySession(std::move(key), now));
  session->legs_[0] = std::make_unique<RelayLeg>(std::move(*ports_a), a, config.latch, now);
  session->legs_[1] = std::make_unique<RelayLeg>(std::move(*ports_b), b, config.latch, now);
  return session;
}

std::optional<ForwardAction> RelaySession::on_packet(size_t leg_index, bool on_rtcp_socket, const net::Endpoint& source,
                                                     std::span<const uint8_t> data, TimePoint now) {
  RelayLeg& in = *legs_[leg_index & 1];
  RelayLeg& out = *legs_[(leg_index + 1) & 1];
  LegStats& stats = in.stats_;

  // On a muxed RTP socket RTCP is told apart by its packet type; on a plain RTCP socket it is
  // RTCP by definition.
  bool rtcp = on_rtcp_socket || (in.rtcp_mux() && looks_like_rtcp(data));
  if (!version2(data) || data.size() < (rtcp ? kRtcpHeader : kRtpHeader)) {
    ++stats.dropped_malformed;
    return std::nullopt;
  }

  Latch& latch = on_rtcp_socket ? in.rtcp_latch_ : in.rtp_latch_;
  LatchVerdict verdict = latch.on_packet(source, now);
  if (!accepted(verdict)) {
    ++stats.dropped_foreign;
    return std::nullopt;
  }
  if (verdict == LatchVerdict::kHandover) ++stats.handovers;

  std::optional<uint16_t> seq;
  if (!rtcp) {
    seq = static_cast<uint16_t>((data[2] << 8) | data[3]);
    stats.rtp_seq.on_packet(*seq);
  }
  (rtcp ? stats.rtcp_received : stats.rtp_received).count(data.size(), seq, now);
  last_activity_ = now;
  timeout_reported = false;

  // RTP goes to the other leg's RTP peer; RTCP to its RTCP peer, or the RTP one when it muxes.
  bool out_rtcp_socket = rtcp && !out.rtcp_mux();
  const Latch& out_latch = out_rtcp_socket ? out.rtcp_latch_ : out.rtp_latch_;
  std::optional<net::Endpoint> destination = out_latch.destination();
  if (!destination) {
    ++stats.dropped_no_peer;
    return std::nullopt;
  }
  (rtcp ? stats.rtcp_forwarded : stats.rtp_forwarded).count(data.size(), seq, now);
  if (!rtcp && !out_latch.peer()) ++stats.forwarded_unlatched;
  return ForwardAction{out_rtcp_socket ? out.ports_.rtcp_fd() : out.ports_.rtp_fd(), *destination};
}

bool RelaySession::idle(TimePoint now, Duration timeout, Duration hold_timeout) const {
  bool held = legs_[0]->on_hold() || legs_[1]->on_hold();
  return now - last_activity_ >= (held ? hold_timeout : timeout);
}

}  // namespace pinhole::media
