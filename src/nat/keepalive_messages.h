// What the keepalive engine puts on the wire and how it recognises the answers without keeping
// any per-transaction state: SIP OPTIONS/NOTIFY keepalive requests, STUN Binding Requests and the
// RFC 5626 CRLF ping, all carrying a match token that names the endpoint and is signed with the
// engine's secret.
//
// The token: the endpoint's 32-bit index in its engine and a 64-bit SipHash-2-4 tag of (index,
// generation) under a 128-bit per-engine secret. The generation changes each time an index is
// reused, so a late reply to a removed endpoint never matches its successor. A reply is "ours"
// when its tag verifies: an off-path sender would have to guess 64 bits (and each guess is one
// datagram), which is as much protection as a keepalive reply deserves — the worst a forged one
// does is keep a dead endpoint alive for one more interval.
//   SIP:  Via branch "z9hG4bK" "pka" <24 hex> and Call-ID "pka" <24 hex>; both must match.
//   STUN: transaction id = index (4 bytes, big-endian) then the tag (8 bytes).
//
// Threads: KeepaliveSigner and SipKeepaliveBuilder are immutable after construction; use them
// from any thread. The free functions are pure.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nat/stun.h"
#include "net/address.h"
#include "sip/message.h"

namespace pinhole::nat {

// How an endpoint is pinged. kCrlf is for stream flows (TCP/TLS/WS); the others for UDP.
enum class KeepaliveMethod : uint8_t { kOptions, kNotify, kStun, kCrlf };

// RFC 5626 §4.4.1 double-CRLF ping on a stream and the single-CRLF pong.
inline constexpr std::string_view kCrlfPing = "\r\n\r\n";
inline constexpr std::string_view kCrlfPong = "\r\n";

inline constexpr std::string_view kTokenPrefix = "pka";
inline constexpr size_t kTokenHexSize = 24;  // 8 hex index + 16 hex tag

struct KeepaliveToken {
  uint32_t index = 0;
  uint64_t tag = 0;
  friend bool operator==(const KeepaliveToken&, const KeepaliveToken&) = default;
};

// SipHash-2-4 (Aumasson & Bernstein): a keyed PRF, fast on short inputs, so tagging a keepalive
// costs tens of nanoseconds. Also used unkeyed-by-secret (fixed key) for stable hashes.
uint64_t siphash24(const std::array<uint64_t, 2>& key, std::string_view data);

class KeepaliveSigner {
 public:
  explicit KeepaliveSigner(const std::array<uint64_t, 2>& key) : key_(key) {}
  uint64_t tag(uint32_t index, uint32_t generation) const;
  KeepaliveToken token(uint32_t index, uint32_t generation) const { return {index, tag(index, generation)}; }
  bool verify(const KeepaliveToken& t, uint32_t generation) const { return t.tag == tag(t.index, generation); }

 private:
  std::array<uint64_t, 2> key_;
};

// Lower-case hex of the token, exactly kTokenHexSize characters, appended to `out`.
void append_token_hex(std::string& out, const KeepaliveToken& t);
// Reads exactly kTokenHexSize hex digits (either case); nullopt otherwise.
std::optional<KeepaliveToken> parse_token_hex(std::string_view hex);

// Builds OPTIONS or NOTIFY keepalive requests. The constant parts (Max-Forwards, From, extra
// headers, Content-Length) are rendered once at construction; build() appends the per-endpoint
// parts around them, so a keepalive costs one string allocation (none when `out` has capacity).
//
// The request (RFC 3261 §8.1.1):
//   OPTIONS sip:<remote ip>:<port> SIP/2.0
//   Via: SIP/2.0/UDP <sent-by>;branch=z9hG4bKpka<token>;rport
//   Max-Forwards: 70
//   From: <from_uri>;tag=<engine tag>
//   To: <sip:<remote ip>:<port>>
//   Call-ID: pka<token>
//   CSeq: <n> OPTIONS
//   [Event: keep-alive]           (NOTIFY, as Kamailio's nat_traversal sends it)
//   <extra headers>
//   Content-Length: 0
// Max-Forwards is 70, not 0 or 1: the request goes straight to the flow, so the hop limit never
// matters for loops; RFC 3261 §8.1.1.6 says 70, and some SBCs and phones answer an OPTIONS with a
// low Max-Forwards with 483 or treat it as a scanner. (Any response still counts as alive.)
// ;rport (RFC 3581) so a UA behind a NAT answers to the address the request came from.
class SipKeepaliveBuilder {
 public:
  // `notify` picks NOTIFY instead of OPTIONS. `from_uri` is a SIP URI without angle brackets;
  // `extra_headers` are complete "Name: value" lines without CRLF. Lines holding CR or LF (header
  // injection) are dropped here too; validate_keepalive_config refuses them at start-up.
  SipKeepaliveBuilder(bool notify, std::string_view from_uri, std::string_view from_tag,
                      const std::vector<std::string>& extra_headers);

  // Appends the request for `remote`, with `sent_by` ("host:port" the UA can answer to).
  void build(std::string& out, const net::Endpoint& remote, std::string_view sent_by, const KeepaliveToken& token,
             uint32_t cseq) const;
  bool notify() const { return notify_; }

 private:
  bool notify_;
  std::string middle_;  // after the Via line, up to and including "To: <"
  std::string tail_;    // after the CSeq method: Event, extra headers, Content-Length, blank line
};

// The token of a response to one of our SIP keepalives, or nullopt: the top Via branch and the
// Call-ID must both carry the same well-formed token and the CSeq method must be OPTIONS or
// NOTIFY. The tag is not verified here (the engine knows the generation).
std::optional<KeepaliveToken> sip_response_token(const sip::Message& response);

// A Binding Request whose transaction id carries `token`.
void append_stun_keepalive(std::string& out, const KeepaliveToken& token, bool fingerprint = false);
StunTransactionId stun_transaction_id(const KeepaliveToken& token);
KeepaliveToken token_from_stun_id(const StunTransactionId& id);

}  // namespace pinhole::nat
