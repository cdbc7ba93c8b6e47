// The UA's SDP: the simple audio offer it sends (PCMU/8000, PCMA/8000, telephone-event), the
// answer it gives to an offer, and what it reads from the peer's SDP (where to send RTP and with
// which payload type).
//
// Why c= carries the RTP socket's local address and not the public address the registrar taught
// us: the address a NAT maps our RTP port to is not the one it maps the SIP flow to, and we cannot
// learn it without STUN on that port. The server side (the pinhole edge with its relay, or any
// SBC doing latching) sends to where our RTP comes from, since we send from the very port we
// advertise (symmetric RTP); a private c= is what such a relay expects and replaces.
//
// Threads: plain functions over values; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "net/address.h"

namespace pinhole::ua {

inline constexpr uint8_t kPayloadPcmu = 0;
inline constexpr uint8_t kPayloadPcma = 8;
inline constexpr uint8_t kPayloadTelephoneEvent = 101;  // what our offer uses

// Our side of the session: the RTP socket's address and the o= identity.
struct LocalMedia {
  net::Endpoint rtp;        // the RTP socket's local address and port
  uint64_t session_id = 0;  // o= sess-id (random per call)
  uint64_t version = 1;     // o= sess-version; unchanged while the SDP is unchanged
};

// What the peer's SDP says: where to send and what.
struct RemoteMedia {
  std::optional<net::Endpoint> rtp;  // unset when the stream is on hold (c=0.0.0.0 / port 0)
  uint8_t payload_type = kPayloadPcmu;
  std::optional<uint8_t> telephone_event;  // the peer's telephone-event payload type
};

// Our offer: PCMU, PCMA, telephone-event (0-16), ptime 20, sendrecv.
std::string build_offer(const LocalMedia& local);

// Our answer to `offer` (payload type chosen: the first of the offer's we support) and what we
// read from it. Errors (488) when the offer has no audio stream with PCMU or PCMA or is not SDP.
struct Answer {
  std::string sdp;
  RemoteMedia remote;
};
Result<Answer> answer_offer(std::string_view offer, const LocalMedia& local);

// The peer's answer to our offer. Errors (488) when unusable.
Result<RemoteMedia> read_answer(std::string_view answer);

}  // namespace pinhole::ua
