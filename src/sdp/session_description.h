// SDP session descriptions (RFC 8866, formerly RFC 4566): the parsed model the edge and the media
// relay read (media streams, their connection addresses, RTCP ports, directions, ICE candidates)
// and the parser that builds it from a SIP message body.
//
// Ownership: a SessionDescription holds views into the body it was parsed from (the SIP message
// owns those bytes); it must not outlive them. The vectors of lines and media streams are its own.
// Threads: plain values, no shared state; parse and read them on any thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "net/address.h"

namespace pinhole::sdp {

// Bounds that keep the work on one body bounded whatever a peer sends. Beyond them: 488.
struct SdpLimits {
  size_t max_body = size_t{64} * 1024;
  size_t max_lines = 1000;
  size_t max_media = 32;
};

// One "<type>=<value>" line, without its line ending (CRLF or bare LF).
struct Line {
  char type = 0;           // 'v', 'o', 's', 'c', 'm', 'a'...
  std::string_view value;  // what follows "x=", as written (trailing blanks included)
};

// RFC 3264 §6.1 / RFC 8866 §6.7.
enum class Direction : uint8_t { kSendRecv, kSendOnly, kRecvOnly, kInactive };
// "sendrecv", "sendonly", "recvonly", "inactive": the attribute names.
std::string_view direction_name(Direction d);
// The next space-separated token of `rest` (runs of spaces count as one separator: some phones
// pad), consumed from it; "" at the end. The parser's tokenising, shared with the rewriter so
// that it finds a token where the parser did.
std::string_view next_sdp_token(std::string_view& rest);
// The direction an attribute name stands for; nullopt for any other attribute.
std::optional<Direction> direction_from_name(std::string_view name);

// An "a=" line split at the first ':' (RFC 8866 §5.13): "a=rtcp-mux" has no value,
// "a=rtcp:9 IN IP4 0.0.0.0" has name "rtcp" and value "9 IN IP4 0.0.0.0".
struct Attribute {
  std::string_view name;
  std::string_view value;
  bool has_value = false;
};
Attribute split_attribute(std::string_view line_value);

// A "c=" line (RFC 8866 §5.7): IN IP4|IP6 <address>[/ttl[/count]]. The address is an IP literal
// of the family the address type names, or a host name (RFC 8866 allows one; the RFC 3264 and
// RFC 4317 examples use them). A relay has no use for a name (it latches onto the source), so
// such a connection has no `address`; the rewriter replaces it all the same.
struct Connection {
  std::optional<net::Address> address;  // unset for a host name
  std::string_view address_text;        // the address as written, without the multicast suffix
  std::string_view value;               // the whole c= value as written
  std::string_view multicast_suffix;    // "/127/3" or "" (kept, never interpreted)
  size_t line = 0;                      // index in SessionDescription::lines
  // c=IN IP4 0.0.0.0 (RFC 2543 hold, still sent by many phones) or its IPv6 spelling "::".
  bool unspecified() const;
};

enum class ConnectionSource : uint8_t { kMedia, kSession };

// The "o=" line (RFC 8866 §5.2): <username> <sess-id> <sess-version> <nettype> <addrtype> <address>.
struct Origin {
  std::string_view username;
  std::string_view session_id;
  std::string_view version_text;  // digits as written
  uint64_t version = 0;
  std::string_view net_type;            // "IN"
  std::string_view address_type;        // "IP4" or "IP6"
  std::string_view address_text;        // an IP literal or a host name (RFC 8866 allows both)
  std::optional<net::Address> address;  // set when address_text is an IP literal of address_type
  size_t line = 0;
};

// "a=rtcp:<port> [IN IP4|IP6 <address>]" (RFC 3605); the address as in c=.
struct RtcpAttribute {
  uint16_t port = 0;
  bool has_address = false;
  std::optional<net::Address> address;  // unset when absent or a host name
  std::string_view address_text;        // "" when absent
  size_t line = 0;
};

// "a=candidate:..." (RFC 8839 §5.1, RFC 5245 §15.1).
struct IceCandidate {
  std::string_view foundation;
  uint16_t component = 0;      // 1 RTP, 2 RTCP (1..256)
  std::string_view transport;  // "UDP", "TCP", any token
  uint32_t priority = 0;
  std::string_view address_text;  // IP literal or an FQDN (mDNS ".local" names from browsers)
  std::optional<net::Address> address;
  uint16_t port = 0;
  std::string_view type;                  // "host", "srflx", "prflx", "relay" or any token
  std::string_view related_address_text;  // raddr, "" when absent
  std::optional<net::Address> related_address;
  std::optional<uint16_t> related_port;  // rport
  size_t line = 0;
};

// One "m=" section: the m= line and the lines up to the next m= or the end.
struct MediaDescription {
  std::string_view media;   // "audio", "video", "application", "image"...
  uint16_t port = 0;        // 0: disabled (rejected or removed) stream (RFC 3264 §6)
  uint16_t port_count = 1;  // the "/<count>" of m=, 1 when absent
  std::string_view proto;   // "RTP/AVP", "UDP/TLS/RTP/SAVPF", "udptl"...
  std::vector<std::string_view> formats;

  // The address media goes to: the section's own c= or else the session one. Set for every stream
  // whose port is not 0 (the parser refuses the body otherwise); may be unset for a disabled one.
  std::optional<Connection> connection;
  ConnectionSource connection_source = ConnectionSource::kMedia;

  std::optional<RtcpAttribute> rtcp;
  bool rtcp_mux = false;
  // a=sendrecv|sendonly|recvonly|inactive of the section, else the session's, else sendrecv.
  Direction direction = Direction::kSendRecv;
  bool direction_from_media = false;  // the section carries a direction attribute of its own

  std::vector<IceCandidate> candidates;
  std::string_view ice_ufrag;  // the section's a=ice-ufrag, else the session's; "" when neither
  std::string_view ice_pwd;    // same for a=ice-pwd
  bool end_of_candidates = false;

  size_t first_line = 0;  // index of the m= line in SessionDescription::lines
  size_t end_line = 0;    // one past the section's last line

  bool disabled() const { return port == 0; }
  bool has_ice() const { return !candidates.empty() || !ice_ufrag.empty(); }
  // The sender of this SDP holds the stream: it will not receive media on it, whether said the
  // RFC 3264 way (sendonly, inactive) or the RFC 2543 way (c=0.0.0.0).
  bool on_hold() const {
    return direction == Direction::kSendOnly || direction == Direction::kInactive ||
           (connection && connection->unspecified());
  }
};

struct SessionDescription {
  std::string_view body;    // the body parsed (views below point into it)
  std::vector<Line> lines;  // every line in order, trailing empty lines left out
  Origin origin;
  std::string_view session_name;               // s=
  std::optional<Connection> connection;        // session-level c=
  Direction direction = Direction::kSendRecv;  // session-level direction attribute, or sendrecv
  std::vector<MediaDescription> media;

  // Lines [0, session_end()) are the session section.
  size_t session_end() const { return media.empty() ? lines.size() : media.front().first_line; }
};

// Parses an SDP body. CRLF and bare LF line endings are both accepted (and may be mixed); a last
// line without an ending is accepted, and so are empty lines at the very end. Refused with status
// 488 and a static reason: a first line other than "v=0", a missing or repeated o= or s=, a line
// that is not "<letter>=<value>" with one of the RFC 8866 type letters, NUL or a bare CR in a
// line, malformed o=, c=, m=, a=rtcp or a=candidate lines (an address that is neither an IP
// literal of its type nor a host name included), ports beyond 65535, a repeated c= at one level,
// a stream (port not 0) without any connection address, and bodies beyond `limits`.
Result<SessionDescription> parse_sdp(std::string_view body, const SdpLimits& limits = {});

// The parts of a "c=" value, for callers that build or check one line alone.
Result<Connection> parse_connection(std::string_view value);

}  // namespace pinhole::sdp
