// A relayed call (or one forked branch of it): two legs, each with its local RTP/RTCP sockets
// from the port pool, the peer its SDP announced, the peer latching learned, and per-stream
// counters. RelaySession::on_packet is the forwarding decision for one datagram (which socket to
// send from, to where) with the statistics it implies; the relay worker does the I/O.
//
// Ownership and threads: a session owns its legs, a leg owns its PortLease (sockets and port
// pair, returned to the pool when the session dies). A session lives on exactly one RelayWorker
// and is only touched on that worker's thread once it was handed over; before that, the creating
// thread may use it freely. No allocation after create().
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/result.h"
#include "media/fast_path.h"
#include "media/latching.h"
#include "media/port_pool.h"
#include "net/address.h"

namespace pinhole::media {

// Call-ID + from-tag, and the via-branch when forks get one session each.
struct SessionKey {
  std::string call_id;
  std::string from_tag;
  std::string via_branch;

  friend bool operator==(const SessionKey&, const SessionKey&) = default;
};

struct SessionKeyHash {
  size_t operator()(const SessionKey& k) const;
};

// RTP sequence numbers of one received stream: extended highest sequence number across wraps and
// the loss estimate of RFC 3550 A.3 (expected - received, never below 0). A jump of more than
// kMaxDropout, or a step back of more than kMaxMisorder, restarts the count (the source
// restarted), as A.1 does after two such packets; we do it at once to stay small.
class SeqTracker {
 public:
  static constexpr uint16_t kMaxDropout = 3000;
  static constexpr uint16_t kMaxMisorder = 100;

  void on_packet(uint16_t seq);
  bool started() const { return started_; }
  uint16_t first() const { return first_; }
  uint16_t highest() const { return static_cast<uint16_t>(max_ext_ & 0xffff); }
  // Extended sequence numbers: cycles * 65536 + seq.
  uint64_t expected() const { return started_ ? max_ext_ - base_ext_ + 1 : 0; }
  uint64_t received() const { return received_; }
  uint64_t lost() const { return expected() > received_ ? expected() - received_ : 0; }

  // The tracker's state, handed to the kernel fast path when it takes the stream over.
  FastPathSeqState state() const { return {started_, first_, base_ext_, max_ext_, received_}; }
  // Folds in what another tracker counted (the kernel's, which started as a copy of this one):
  // it moved from `before` to `after` since the last fold. Packets this tracker saw meanwhile
  // (queued in the socket when the kernel took over) stay counted: the two add up. A restart
  // the other tracker saw replaces the count, as on_packet would.
  void absorb(const FastPathSeqState& before, const FastPathSeqState& after);

 private:
  bool started_ = false;
  uint16_t first_ = 0;
  uint64_t base_ext_ = 0;
  uint64_t max_ext_ = 0;
  uint64_t received_ = 0;
};

// Counters of one direction of one stream (RTP or RTCP) on one leg.
struct StreamStats {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  // RTP only: first and last sequence number seen (no-clipping check: the first forwarded out of
  // the other leg equals the first received here).
  std::optional<uint16_t> first_seq;
  std::optional<uint16_t> last_seq;
  TimePoint last_packet{};

  void count(size_t size, std::optional<uint16_t> seq, TimePoint now);
};

struct LegStats {
  StreamStats rtp_received;  // arrived on this leg from its peer
  StreamStats rtcp_received;
  StreamStats rtp_forwarded;  // of those, sent on out of the other leg
  StreamStats rtcp_forwarded;
  SeqTracker rtp_seq;  // loss of what arrived on this leg
  // Of rtp_forwarded, sent while the other leg had no learned peer yet (to its SDP address: lost
  // when that is a private or NATed one, the unavoidable cost of not holding packets).
  uint64_t forwarded_unlatched = 0;
  uint64_t dropped_foreign = 0;    // latching refused the source (RTP Bleed and friends)
  uint64_t dropped_no_peer = 0;    // the other leg has nowhere to send yet
  uint64_t dropped_malformed = 0;  // not RTP/RTCP (too short, wrong version)
  uint64_t handovers = 0;
  uint64_t send_errors = 0;  // counted by the worker when sendmmsg refuses
};

// What signaling told us about one leg.
struct LegSetup {
  std::optional<net::Endpoint> sdp_rtp;      // c= address and m= port
  std::optional<net::Endpoint> sdp_rtcp;     // a=rtcp or port + 1; unused with rtcp-mux
  std::optional<net::Address> signaling_ip;  // source IP of the SIP message (trusted for latching)
  bool rtcp_mux = false;
  // ng `media-handover` on the command that described this leg: once locked, the leg follows a
  // new source instead of dropping it (on top of LatchConfig::media_handover, the default).
  bool media_handover = false;
  // ng `asymmetric` / `strict-source` (rules in latching.h), on top of the LatchConfig defaults.
  bool asymmetric = false;
  bool strict_source = false;
};

struct SessionConfig {
  LatchConfig latch;
};

class RelayLeg {
 public:
  RelayLeg(PortLease ports, const LegSetup& setup, const LatchConfig& latch, TimePoint now);

  const PortLease& ports() const { return ports_; }
  const Latch& rtp_latch() const { return rtp_latch_; }
  const Latch& rtcp_latch() const { return rtcp_latch_; }
  const LegStats& stats() const { return stats_; }
  LegStats& stats() { return stats_; }
  bool on_hold() const { return on_hold_; }
  void set_on_hold(bool on) { on_hold_ = on; }
  bool rtcp_mux() const { return ports_.rtcp_mux(); }

  // New SDP for this leg: learn its peer again from `now` (and take the command's latch flags).
  void reset_expected(const LegSetup& setup, TimePoint now);

 private:
  friend class RelaySession;
  // Each description of the leg says again how it latches: its flags over the session defaults.
  void apply_flags(const LegSetup& setup);

  PortLease ports_;
  Latch rtp_latch_;
  Latch rtcp_latch_;  // unused with rtcp-mux
  LegStats stats_;
  bool on_hold_ = false;
  LatchConfig defaults_;  // the session's LatchConfig the leg was created with
};

// Where one received datagram goes.
struct ForwardAction {
  int fd = -1;  // socket to send from (the other leg's)
  net::Endpoint destination;
};

// Where the kernel may forward one stream of one leg by itself (see fast_path.h): the latched
// peer it comes from, and the other leg's port and peer it goes to.
struct FastPathRoute {
  net::Endpoint source;
  uint16_t out_port = 0;
  net::Endpoint destination;
  bool rtp = true;  // arrives on the leg's RTP socket (false: its RTCP socket)
  bool rtcp_mux = false;

  friend bool operator==(const FastPathRoute&, const FastPathRoute&) = default;
};

class RelaySession {
 public:
  // Allocates both legs' ports from `pool` (which must outlive the session). Port exhaustion:
  // the pool's 503; nothing stays allocated.
  static Result<std::unique_ptr<RelaySession>> create(SessionKey key, PortPool& pool, const LegSetup& a,
                                                      const LegSetup& b, const SessionConfig& config, TimePoint now);

  const SessionKey& key() const { return key_; }
  RelayLeg& leg(size_t i) { return *legs_[i]; }
  const RelayLeg& leg(size_t i) const { return *legs_[i]; }

  // A datagram arrived on leg `leg_index`'s RTP socket (`on_rtcp_socket` false) or RTCP socket.
  // Applies latching and counts; returns where to send it, or nothing when it is dropped.
  std::optional<ForwardAction> on_packet(size_t leg_index, bool on_rtcp_socket, const net::Endpoint& source,
                                         std::span<const uint8_t> data, TimePoint now);

  // The stream arriving on leg `leg_index`'s RTP socket (`on_rtcp_socket` false) or RTCP socket
  // may go through the kernel only when user space would forward every packet from one source
  // to one fixed destination without learning anything more: the leg is locked to a peer (not
  // asymmetric) and the other leg has a learned peer (so the packet would not count as
  // forwarded_unlatched). Otherwise none, and any rule for it must go.
  std::optional<FastPathRoute> fast_path_route(size_t leg_index, bool on_rtcp_socket) const;
  // Counts what the kernel forwarded on that stream since the last call (`packets`, `bytes`, the
  // last sequence number, the RTP tracker's move from `seq_before` to `seq_after`) as user
  // space would have: received and forwarded, activity at `now`.
  void add_fast_path_traffic(size_t leg_index, bool on_rtcp_socket, uint64_t packets, uint64_t bytes, uint16_t last_seq,
                             const FastPathSeqState& seq_before, const FastPathSeqState& seq_after, TimePoint now);

  TimePoint last_activity() const { return last_activity_; }
  // True when no packet arrived for `timeout` (`hold_timeout` if a leg is on hold).
  bool idle(TimePoint now, Duration timeout, Duration hold_timeout) const;

  // Worker bookkeeping: set when the timeout was reported, cleared by new traffic.
  bool timeout_reported = false;

 private:
  RelaySession(SessionKey key, TimePoint now) : key_(std::move(key)), last_activity_(now) {}

  SessionKey key_;
  std::array<std::unique_ptr<RelayLeg>, 2> legs_;
  TimePoint last_activity_;
};

// RFC 5761 §4: on a muxed port, payload types 192..223 in the second byte are RTCP.
bool looks_like_rtcp(std::span<const uint8_t> data);

}  // namespace pinhole::media
