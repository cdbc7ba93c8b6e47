// Latching decision for one relay leg (rules in latching.h).
#include "media/latching.h"

namespace pinhole::media {

Latch::Latch(LatchConfig config, std::optional<net::Address> trusted_ip, std::optional<net::Endpoint> sdp_peer,
             TimePoint now)
    : config_(config) {
  reset_expected(trusted_ip, sdp_peer, now);
}

void Latch::reset_expected(std::optional<net::Address> trusted_ip, std::optional<net::Endpoint> sdp_peer,
                           TimePoint now) {
  // The same description again (a session refresh, or the other side's re-INVITE answered with
  // an unchanged SDP): the media did not move, so the latched peer stays. Relearning would send
  // the next packets to the SDP's (private) address until the phone speaks again.
  if (peer_ && sdp_peer == sdp_peer_ && trusted_ip == trusted_ip_) return;
  trusted_ip_ = trusted_ip;
  sdp_peer_ = sdp_peer;
  peer_.reset();
  window_end_ = now + config_.learning_window;
  state_ = LatchState::kLearning;
}

void Latch::set_asymmetric(bool on) {
  config_.asymmetric = on;
  if (on) {
    peer_.reset();
    state_ = LatchState::kLearning;
  }
}

void Latch::set_strict_source(bool on) {
  config_.strict_source = on;
  if (on && peer_ && !strict_allowed(*peer_)) {
    peer_.reset();
    state_ = LatchState::kLearning;
  }
}

LatchVerdict Latch::on_packet(const net::Endpoint& source, TimePoint now) {
  if (config_.asymmetric) {
    // Nothing to learn and nothing learned to compare with; strict-source still checks the IP.
    if (config_.strict_source && !strict_allowed(source)) return LatchVerdict::kDropStrict;
    return LatchVerdict::kAcceptUnlatched;
  }
  // A provisional peer that outlived the window is locked before anything else is decided, so
  // a trusted source arriving after the window can no longer take the leg away from it.
  if (state_ == LatchState::kProvisional && now >= window_end_) state_ = LatchState::kLocked;

  if (state_ == LatchState::kLocked) {
    if (source == *peer_) return LatchVerdict::kAccept;
    if (config_.media_handover && !config_.strict_source) {
      peer_ = source;
      return LatchVerdict::kHandover;
    }
    return LatchVerdict::kDropLocked;
  }

  if (trusted(source) || (config_.strict_source && strict_allowed(source))) {
    peer_ = source;
    state_ = LatchState::kLocked;
    return LatchVerdict::kLatchedTrusted;
  }
  if (config_.strict_source) return LatchVerdict::kDropStrict;
  if (now >= window_end_) return LatchVerdict::kDropWindowClosed;
  if (state_ == LatchState::kProvisional) {
    return source == *peer_ ? LatchVerdict::kAccept : LatchVerdict::kDropProvisional;
  }
  peer_ = source;
  state_ = LatchState::kProvisional;
  return LatchVerdict::kLatchedForeign;
}

}  // namespace pinhole::media
