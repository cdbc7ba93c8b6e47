// Relay session: legs, latching per stream and the per-packet forwarding decision (see
// relay_session.h).
#include "media/relay_session.h"

#include <algorithm>
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

void SeqTracker::absorb(const FastPathSeqState& before, const FastPathSeqState& after) {
  if (after.received == before.received) return;
  if (!started_ || after.base_ext != before.base_ext || after.base_ext != base_ext_) {
    // The other side restarted the count (or we have none): take its state.
    started_ = after.started;
    first_ = after.first;
    base_ext_ = after.base_ext;
    max_ext_ = after.max_ext;
    received_ = after.received;
    return;
  }
  received_ += after.received - before.received;
  max_ext_ = std::max(max_ext_, after.max_ext);
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

std::optional<FastPathRoute> RelaySession::fast_path_route(size_t leg_index, bool on_rtcp_socket) const {
  const RelayLeg& in = *legs_[leg_index & 1];
  const RelayLeg& out = *legs_[(leg_index + 1) & 1];
  if (on_rtcp_socket && in.rtcp_mux()) return std::nullopt;  // no such socket
  const Latch& latch = on_rtcp_socket ? in.rtcp_latch_ : in.rtp_latch_;
  if (latch.state() != LatchState::kLocked || !latch.peer() || latch.asymmetric()) return std::nullopt;
  // The same choice of outgoing socket and peer as on_packet; RTCP on a muxed port never takes
  // this path (the kernel leaves it to on_packet), so an RTP socket's packets are RTP here.
  bool out_rtcp_socket = on_rtcp_socket && !out.rtcp_mux();
  const Latch& out_latch = out_rtcp_socket ? out.rtcp_latch_ : out.rtp_latch_;
  if (!out_latch.peer()) return std::nullopt;
  uint16_t out_port = out_rtcp_socket ? out.ports_.rtcp_port() : out.ports_.rtp_port();
  return FastPathRoute{*latch.peer(), out_port, *out_latch.peer(), !on_rtcp_socket, in.rtcp_mux()};
}

void RelaySession::add_fast_path_traffic(size_t leg_index, bool on_rtcp_socket, uint64_t packets, uint64_t bytes,
                                         uint16_t last_seq, const FastPathSeqState& seq_before,
                                         const FastPathSeqState& seq_after, TimePoint now) {
  if (packets == 0) return;
  LegStats& stats = legs_[leg_index & 1]->stats_;
  StreamStats& received = on_rtcp_socket ? stats.rtcp_received : stats.rtp_received;
  StreamStats& forwarded = on_rtcp_socket ? stats.rtcp_forwarded : stats.rtp_forwarded;
  for (StreamStats* s : {&received, &forwarded}) {
    s->packets += packets;
    s->bytes += bytes;
    s->last_packet = now;
    // first_seq stays user space's: a stream reaches the kernel only after its first packets.
    if (!on_rtcp_socket) s->last_seq = last_seq;
  }
  if (!on_rtcp_socket) stats.rtp_seq.absorb(seq_before, seq_after);
  last_activity_ = now;
  timeout_reported = false;
}

bool RelaySession::idle(TimePoint now, Duration timeout, Duration hold_timeout) const {
  bool held = legs_[0]->on_hold() || legs_[1]->on_hold();
  return now - last_activity_ >= (held ? hold_timeout : timeout);
}

}  // namespace pinhole::media
