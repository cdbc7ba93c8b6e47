// RFC 5626 §5.2 flow tokens: the user part the edge writes into its Path (REGISTER) and
// Record-Route (dialogs) URIs so that a request routed back through it names the flow (the
// transport, the local socket, the peer's address and the connection) it must go out on.
//
// The token is the flow, not a key into a table: the edge keeps no per-token state, and a token
// that comes back is trusted only because it carries an HMAC made with the edge's secret key.
//
// Token format, version 1 (all integers big-endian):
//   byte 0        version (1)
//   byte 1        bits 0-3 transport (net::Transport), bit 4 address family (0 IPv4, 1 IPv6),
//                 bits 5-7 zero
//   bytes 2-5     local socket id
//   bytes 6-13    connection id (0 for UDP)
//   bytes 14-15   remote port
//   bytes 16-     remote address (4 or 16 bytes)
//   last 16 bytes HMAC-SHA256(key, all the bytes above), truncated to 128 bits
// then base32 (RFC 4648 §6 alphabet) in lower case without padding: 58 characters for an IPv4
// flow, 77 for IPv6.
//
// Why these choices:
// - 128-bit tag: forging a token means guessing a tag, and every guess is a SIP request the edge
//   sees and counts; 2^-128 per try is far beyond reach, while the full 256 bits would only
//   lengthen every Path and Record-Route header. Truncating HMAC output is standard (RFC 2104
//   §5, NIST SP 800-107 §5.3.4).
// - base32, lower case: its 32 characters (a-z, 2-7) are all `unreserved` in the SIP URI user
//   part (RFC 3261 §25.1), need no escaping, and survive an intermediary that changes the case of
//   a URI (some normalise whole URIs although the user part is case-sensitive): decoding accepts
//   either case. base64url would be 20% shorter but breaks under case folding.
// - decoding is strict (exact lengths, zero padding bits): one flow has exactly one token
//   spelling per key, so any changed character is refused rather than silently decoding to
//   the same bytes.
// - the version byte lets a later format coexist during an upgrade; it is covered by the MAC.
//
// Keys: at least kMinKeySize bytes of secret (from config). A codec holds the current key and,
// during a rotation, the previous one: tokens are always made with the current key, and both are
// accepted, the result saying which matched (so the proxy can count tokens still on the old key
// before the operator drops it).
//
// Threads: a FlowTokenCodec is immutable after create(); encode/decode may be called from any
// number of threads at once (each call copies the shared keyed state into a work context of
// its own thread). Config reload builds a new codec.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "net/address.h"
#include "net/flow.h"
#include "net/transport.h"

namespace pinhole::nat {

// The flow type lives in the net layer (the transport tags messages with it); the codec seals it.
using Flow = net::Flow;

inline constexpr uint8_t kFlowTokenVersion = 1;
inline constexpr size_t kFlowTokenMacSize = 16;
inline constexpr size_t kMinKeySize = 16;
inline constexpr size_t kMaxFlowTokenLength = 77;  // IPv6 flow

// Why a token was refused. Status 403: RFC 5626 §5.3 has a proxy answer a tampered token with
// 403 (Forbidden); a well-formed token whose flow has died is the proxy's 430, not decided here.
// Distinct values so the proxy can count each reason.
inline constexpr Error kFlowTokenBadEncoding{403, "flow token: not base32 or wrong length"};
inline constexpr Error kFlowTokenBadVersion{403, "flow token: unknown version"};
inline constexpr Error kFlowTokenBadMac{403, "flow token: MAC does not match any key"};
inline constexpr Error kFlowTokenBadField{403, "flow token: invalid field"};
// Encoding fails only when OpenSSL does (out of memory); the request cannot be forwarded.
inline constexpr Error kFlowTokenMacFailed{500, "flow token: MAC computation failed"};
// Start-up (config) error: 16 bytes (128 bits) is the least a MAC key should have.
inline constexpr Error kFlowTokenShortKey{500, "flow token key shorter than 16 bytes"};

enum class KeySlot : uint8_t { kCurrent, kPrevious };

struct DecodedFlow {
  Flow flow;
  KeySlot key = KeySlot::kCurrent;  // which key's MAC matched
};

class FlowTokenCodec {
 public:
  // Keys are raw secret bytes (the config layer decodes them from hex or base64). Refused, as
  // start-up errors in a Result like every other error here (no exception to catch around
  // config loading): kFlowTokenShortKey for a key shorter than kMinKeySize, kFlowTokenMacFailed
  // when OpenSSL cannot set up HMAC-SHA256. The codec keeps no copy of the key bytes beyond
  // OpenSSL's keyed state.
  static Result<FlowTokenCodec> create(std::string_view current_key,
                                       std::optional<std::string_view> previous_key = std::nullopt);

  FlowTokenCodec(FlowTokenCodec&&) noexcept;
  FlowTokenCodec& operator=(FlowTokenCodec&&) noexcept;
  ~FlowTokenCodec();

  bool has_previous_key() const { return previous_ != nullptr; }

  // The token for `flow`, made with the current key (at most kMaxFlowTokenLength characters).
  Result<std::string> encode(const Flow& flow) const;

  // The flow a token names, or why it is refused: kFlowTokenBadEncoding (not base32, a length no
  // version-1 token has, nonzero padding bits), kFlowTokenBadVersion, kFlowTokenBadMac (tampered,
  // or made with a key this codec no longer holds), kFlowTokenBadField (a MAC-valid token with a
  // field this build does not know, e.g. a transport added later). Upper or lower case accepted.
  Result<DecodedFlow> decode(std::string_view token) const;

 private:
  struct KeyState;  // keyed HMAC-SHA256 template (OpenSSL), kept out of this header
  FlowTokenCodec() = default;

  std::unique_ptr<KeyState> current_;
  std::unique_ptr<KeyState> previous_;  // null when not rotating
};

}  // namespace pinhole::nat
