// SDP rewriting for media anchoring (DESIGN.md §1 "Media"): points each relayed stream of an
// offer or answer at the relay (c=, m= port, a=rtcp), applies the ICE, rtcp-mux, origin and
// direction policies, and keeps the o= version honest across re-INVITEs (RFC 3264 §8).
//
// Connection lines keep the body's structure: a c= is rewritten where it is, a session-level c=
// takes the relay address of the streams that rely on it, and a stream whose address must differ
// from the session one gets a c= line of its own. The alternative, one session c= and no media
// ones, would rewrite lines of streams the relay does not anchor (disabled ones, ones the caller
// leaves alone) and move bytes a peer may compare; this way everything the relay does not own is
// byte-identical and in its original order, and streams may be given different relay addresses
// (IPv4 for one peer, IPv6 for another).
//
// Threads: pure functions on values; call them on any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "common/result.h"
#include "net/address.h"
#include "sdp/session_description.h"

namespace pinhole::sdp {

// Where the relay receives one stream.
struct RelayEndpoint {
  net::Address address;
  uint16_t rtp_port = 0;  // RTCP is on rtp_port + 1, or on rtp_port when the stream keeps rtcp-mux
};

enum class IcePolicy : uint8_t {
  // Strip a=candidate, a=remote-candidates, a=end-of-candidates and every a=ice-* attribute
  // (ufrag, pwd, options, lite...): the peer sends to the relay address without checks.
  kRemove,
  // Keep the peer's candidates and add one host candidate of the relay per component, with the
  // highest host priority, to each relayed stream that uses ICE.
  kKeepAndAdd,
};

enum class RtcpMuxPolicy : uint8_t {
  kKeep,    // a=rtcp-mux stays; RTCP then shares the RTP port
  kRemove,  // a=rtcp-mux and a=rtcp-mux-only go; RTCP on rtp_port + 1
};

struct RewriteOptions {
  IcePolicy ice = IcePolicy::kRemove;
  RtcpMuxPolicy rtcp_mux = RtcpMuxPolicy::kKeep;
  // Replace the o= address (topology hiding) with origin_address, or when that is unset with the
  // first relayed stream's relay address (left alone when no stream is relayed).
  bool replace_origin = false;
  std::optional<net::Address> origin_address;
  // Write this direction on every relayed stream (replacing its direction attributes, adding one
  // where it inherits a different direction from the session). Unset: directions untouched.
  std::optional<Direction> force_direction;
  // A stream held the RFC 2543 way (c=0.0.0.0 or ::) keeps that address by default, so the hold
  // reaches the other side (its m= port and a=rtcp still point at the relay). True replaces it.
  bool replace_zero_address = false;
};

// What the previous rewrite for the same SDP session (the same o= username and sess-id, in the
// same direction) produced: kept by the caller between offers/answers.
struct PreviousRewrite {
  uint64_t version = 0;       // the o= version it wrote
  uint64_t content_hash = 0;  // its RewriteResult::content_hash
};

struct RewriteResult {
  std::string body;  // CRLF line endings throughout
  uint64_t version = 0;
  // Hash of `body` without the o= version digits (FNV-1a, stable across runs and builds): equal
  // hashes mean an unchanged description, which must keep its version (RFC 3264 §8).
  uint64_t content_hash = 0;
};

// Rewrites `sdp` (whose body must still be alive) for the relay. `relays` has one entry per media
// stream, in m= order: the relay endpoint of the stream, or nullopt to leave it as it is. Disabled
// streams (port 0) are always left as they are, whatever their entry. Everything the rewrite does
// not own is copied byte for byte in the original order, line endings becoming CRLF.
//
// o= version: without `previous` the sender's version is kept; with it, it is previous->version
// when the rewritten content equals the previous one and previous->version + 1 otherwise.
//
// Errors (status 500, caller bugs rather than bad input): `relays` not matching the streams in
// number, a relayed stream given port 0, or an RTP port of 65535 where RTCP needs the next one.
Result<RewriteResult> rewrite_sdp(const SessionDescription& sdp, std::span<const std::optional<RelayEndpoint>> relays,
                                  const RewriteOptions& options = {},
                                  std::optional<PreviousRewrite> previous = std::nullopt);

// The priority of the host candidates kKeepAndAdd adds (RFC 8445 §5.1.2.1: type preference 126,
// local preference 65535).
uint32_t relay_candidate_priority(uint16_t component);

}  // namespace pinhole::sdp
