// Latching (COMEDIA) for one relay leg, without clipping and without RTP Bleed: the pure
// decision of whether a packet arriving from `source` is the leg's media, and where media for the
// leg goes. No sockets, no clock: every call takes `now`, so tests drive time by hand.
//
// The rule (issue 6):
// - The first packet whose source IP equals the IP the leg's signaling came from (the trusted
//   IP) latches the leg at once and locks it: no waiting, so nothing is clipped.
// - Before that, a packet from any other source is accepted only inside the learning window
//   (default 3 s from creation or the last signaled change). The first such source latches
//   provisionally; packets from further foreign sources are dropped while it holds (so an
//   attacker racing the phone cannot steal the leg during the window). A trusted source that
//   appears later overrides the provisional peer and locks the leg.
// - When the window ends with a provisional peer, that peer is locked; with none, the leg keeps
//   waiting for the trusted IP only.
// - Once locked, packets from any other source (another port on the trusted IP included) are
//   dropped and counted, unless media handover is enabled: then the new source takes over (and
//   is counted). A signaled change (new SDP) calls reset_expected() and learning starts again;
//   the same description again (a refresh) keeps the latched peer.
// - Until the leg has a peer, media for it goes to the address its SDP gave. We send rather than
//   hold: a phone with a public or correctly advertised address gets its first packets without
//   delay, and for a NATed phone the packets are lost either way until its first packet arrives
//   (the NAT drops unsolicited packets), so holding would only add latency and buffers.
//
// Per-leg ng flags (rtpengine's ng_control_protocol.md; Kamailio passes them per command, and
// the command describes one leg):
// - `symmetric` is the default above (rtpproxy's `w` flag; rtpengine ignores it too).
// - `asymmetric`: the phone does not send from the port it receives on (rtpproxy's `a` flag;
//   rtpengine: "disables learning of endpoint addresses"). The leg never latches: media to it
//   always goes to its SDP address, and packets arriving on its port are forwarded whatever
//   their source (verdict kAcceptUnlatched), since there is no learned address to check them
//   against. With `strict-source` as well, only sources on the trusted IP or the SDP's IP are
//   forwarded (the port cannot be checked: it is by definition not the one we send to).
// - `strict-source`: rtpengine learns the endpoint during the first seconds and, with this flag,
//   keeps comparing every packet's source with it afterwards and drops a mismatch. Our default
//   already drops a mismatch after the lock, so strict-source closes the remaining gap, the
//   learning window: no foreign source may latch, provisionally or otherwise. Only a packet
//   from the trusted (signaling) IP or from the SDP address's IP latches the leg, and locks it
//   at once; anything else before that is dropped (kDropStrict), without a window deadline. It
//   also overrides `media-handover` (its antithesis in rtpengine's words): a locked strict leg
//   never moves. Setting it on a leg whose current peer it would not have accepted forgets that
//   peer.
//
// Threads: a plain value; owned and used by the relay worker that owns the leg.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "common/clock.h"
#include "net/address.h"

namespace pinhole::media {

struct LatchConfig {
  Duration learning_window = std::chrono::seconds(3);
  // `media-handover`: a locked leg follows a new source instead of dropping it.
  bool media_handover = false;
  // `asymmetric` / `strict-source` (see above); normally set per leg from its ng command.
  bool asymmetric = false;
  bool strict_source = false;
};

enum class LatchState : uint8_t {
  kLearning,     // no peer yet
  kProvisional,  // a foreign source inside the learning window
  kLocked,       // latched for good (until reset_expected)
};

enum class LatchVerdict : uint8_t {
  kAccept,            // from the current peer
  kLatchedTrusted,    // first packet from the trusted IP: latched and locked now
  kLatchedForeign,    // first foreign packet inside the window: provisional peer
  kHandover,          // locked leg moved to a new source (media_handover)
  kAcceptUnlatched,   // asymmetric leg: forwarded, nothing learned
  kDropLocked,        // another source after the lock (RTP Bleed)
  kDropWindowClosed,  // foreign source, no peer, learning window over
  kDropProvisional,   // a second foreign source while a provisional peer holds the leg
  kDropStrict,        // strict-source: neither the trusted IP nor the SDP's IP, before the lock
};

inline bool accepted(LatchVerdict v) {
  return v == LatchVerdict::kAccept || v == LatchVerdict::kLatchedTrusted || v == LatchVerdict::kLatchedForeign ||
         v == LatchVerdict::kHandover || v == LatchVerdict::kAcceptUnlatched;
}

class Latch {
 public:
  // `trusted_ip`: where the leg's signaling came from (none: only the learning window applies).
  // `sdp_peer`: the address the leg's SDP gave, the destination until a peer is learned.
  Latch(LatchConfig config, std::optional<net::Address> trusted_ip, std::optional<net::Endpoint> sdp_peer,
        TimePoint now);

  // Decides about one packet from `source` and updates the state.
  LatchVerdict on_packet(const net::Endpoint& source, TimePoint now);

  // A signaled change (new SDP, re-INVITE): forget the peer, learn again from `now`.
  void reset_expected(std::optional<net::Address> trusted_ip, std::optional<net::Endpoint> sdp_peer, TimePoint now);

  LatchState state() const { return state_; }
  // The learned peer (provisional or locked), if any.
  const std::optional<net::Endpoint>& peer() const { return peer_; }
  // Where media for this leg goes now: the learned peer, else the SDP address, else nowhere.
  std::optional<net::Endpoint> destination() const { return peer_ ? peer_ : sdp_peer_; }
  const std::optional<net::Endpoint>& sdp_peer() const { return sdp_peer_; }
  void set_media_handover(bool on) { config_.media_handover = on; }
  // Turning it on forgets any learned peer (media goes to the SDP address from now on).
  void set_asymmetric(bool on);
  // Turning it on forgets a peer that strict-source would not have latched.
  void set_strict_source(bool on);
  bool asymmetric() const { return config_.asymmetric; }
  bool strict_source() const { return config_.strict_source; }

 private:
  bool trusted(const net::Endpoint& source) const {
    return trusted_ip_ && source.address.unmapped() == trusted_ip_->unmapped();
  }
  // What strict-source lets latch: the trusted IP or the SDP's IP (any port: a NAT may map it).
  bool strict_allowed(const net::Endpoint& source) const {
    return trusted(source) || (sdp_peer_ && source.address.unmapped() == sdp_peer_->address.unmapped());
  }

  LatchConfig config_;
  std::optional<net::Address> trusted_ip_;
  std::optional<net::Endpoint> sdp_peer_;
  std::optional<net::Endpoint> peer_;
  TimePoint window_end_;
  LatchState state_ = LatchState::kLearning;
};

}  // namespace pinhole::media
