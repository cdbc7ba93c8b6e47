// STUN (RFC 8489, formerly RFC 5389) as the keepalive engine and the UDP receive path need it:
// encode a Binding Request, decode a Binding response (success with XOR-MAPPED-ADDRESS or the
// legacy MAPPED-ADDRESS, or an error response), optional FINGERPRINT, and `looks_like_stun` so the
// UDP socket can tell a STUN datagram from SIP before handing it to the SIP parser.
//
// Decoding is for untrusted datagrams: every length is checked against the bytes present and
// nothing is asserted. No MESSAGE-INTEGRITY: keepalive Binding Requests carry no credentials
// (RFC 5626 §4.4.2 uses unauthenticated STUN), and replies are recognised by their transaction id,
// which the keepalive engine makes unguessable.
//
// Threads: plain functions on values, no shared state; call them from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "net/address.h"

namespace pinhole::nat {

inline constexpr uint32_t kStunMagicCookie = 0x2112A442;
inline constexpr size_t kStunHeaderSize = 20;
inline constexpr size_t kStunTransactionIdSize = 12;
// Bigger than any datagram the edge accepts; a length field above it is refused early.
inline constexpr size_t kStunMaxMessageSize = 65535;

// Message types (RFC 8489 §5: method bits interleaved with the class bits C1 C0).
inline constexpr uint16_t kStunBindingRequest = 0x0001;
inline constexpr uint16_t kStunBindingIndication = 0x0011;
inline constexpr uint16_t kStunBindingSuccess = 0x0101;
inline constexpr uint16_t kStunBindingError = 0x0111;

// Attribute types used here (RFC 8489 §18.3).
inline constexpr uint16_t kStunAttrMappedAddress = 0x0001;
inline constexpr uint16_t kStunAttrErrorCode = 0x0009;
inline constexpr uint16_t kStunAttrXorMappedAddress = 0x0020;
inline constexpr uint16_t kStunAttrSoftware = 0x8022;
inline constexpr uint16_t kStunAttrFingerprint = 0x8028;
inline constexpr uint32_t kStunFingerprintXor = 0x5354554e;

using StunTransactionId = std::array<uint8_t, kStunTransactionIdSize>;

// Errors (status is "drop": a STUN datagram is never answered with SIP).
inline constexpr Error kStunTooShort{400, "stun: shorter than the 20-byte header"};
inline constexpr Error kStunNotStun{400, "stun: top bits or magic cookie wrong"};
inline constexpr Error kStunBadLength{400, "stun: length field does not match the datagram"};
inline constexpr Error kStunBadAttribute{400, "stun: attribute overruns the message"};
inline constexpr Error kStunBadFingerprint{400, "stun: FINGERPRINT does not match"};
inline constexpr Error kStunBadAddress{400, "stun: malformed (XOR-)MAPPED-ADDRESS"};
inline constexpr Error kStunNotBindingResponse{400, "stun: not a Binding response"};

// True when `bytes` can be a STUN message: at least the header, the two top bits zero (a SIP
// message starts with a letter, so its first byte has bit 6 set), the magic cookie at offset 4 and
// a length field that is a multiple of 4 and fits in the datagram. Cheap: no attribute walk. A
// classic RFC 3489 message (no cookie) is not recognised; pinhole never sends one.
bool looks_like_stun(std::string_view bytes);

// CRC-32 (ISO-HDLC, the zlib/Ethernet one) as FINGERPRINT uses it, before the XOR.
uint32_t stun_crc32(std::string_view bytes);

// A Binding Request with the given transaction id, no attributes but an optional FINGERPRINT
// (RFC 8489 §14.7; lets a receiver multiplexing STUN with other protocols confirm it). Appends to
// `out` (20 bytes, 28 with FINGERPRINT) so the caller can reuse a buffer.
void append_binding_request(std::string& out, const StunTransactionId& id, bool fingerprint = false);

// A Binding Success Response carrying XOR-MAPPED-ADDRESS = `mapped` (and FINGERPRINT when asked):
// what a STUN responder answers. pinhole does not answer STUN on its SIP sockets today; tests,
// the bench and the lab's fake UAs use it.
void append_binding_success(std::string& out, const StunTransactionId& id, const net::Endpoint& mapped,
                            bool fingerprint = false);

// A decoded STUN header plus the attributes the keepalive path reads.
struct StunMessage {
  uint16_t type = 0;
  StunTransactionId transaction_id{};
  std::optional<net::Endpoint> xor_mapped;  // XOR-MAPPED-ADDRESS, decoded
  std::optional<net::Endpoint> mapped;      // MAPPED-ADDRESS (RFC 3489 servers)
  std::optional<uint16_t> error_code;       // ERROR-CODE as class*100+number
  bool has_fingerprint = false;             // present and verified (a wrong one is an error)

  // XOR-MAPPED-ADDRESS when present, else MAPPED-ADDRESS.
  std::optional<net::Endpoint> reflexive() const { return xor_mapped ? xor_mapped : mapped; }
};

// Decodes any STUN message: header, then the attributes in order. Unknown attributes are skipped
// (comprehension-required ones too: only a server must refuse those, and we only read replies).
// Attributes after FINGERPRINT are refused (it must be last). Address attributes with a bad
// family or length are refused (kStunBadAddress) rather than skipped, so a reply is either fully
// understood or dropped.
Result<StunMessage> decode_stun(std::string_view bytes);

// decode_stun, then checks it is a Binding Success or Binding Error response.
Result<StunMessage> decode_binding_response(std::string_view bytes);

}  // namespace pinhole::nat
