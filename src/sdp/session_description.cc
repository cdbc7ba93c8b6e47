// SDP parser: one pass over the lines, then each stream's inherited values (connection,
// direction, ICE credentials) are resolved from the session section.
#include "sdp/session_description.h"

#include <array>
#include <charconv>
#include <limits>
#include <utility>

namespace pinhole::sdp {
namespace {

// RFC 3261 §21.4.27: the answer to an offer we cannot accept.
constexpr uint16_t kNotAcceptableHere = 488;

Error sdp_error(std::string_view what) { return Error{kNotAcceptableHere, what}; }

constexpr std::string_view kErrBodyTooLarge = "SDP: body too large";
constexpr std::string_view kErrTooManyLines = "SDP: too many lines";
constexpr std::string_view kErrTooManyMedia = "SDP: too many m= lines";
constexpr std::string_view kErrEmptyLine = "SDP: empty line";
constexpr std::string_view kErrBadChar = "SDP: NUL or bare CR in a line";
constexpr std::string_view kErrBadLine = "SDP: line is not <type>=<value>";
constexpr std::string_view kErrUnknownType = "SDP: unknown line type";
constexpr std::string_view kErrVersion = "SDP: first line is not v=0";
constexpr std::string_view kErrRepeatedVersion = "SDP: repeated v= line";
constexpr std::string_view kErrNoOrigin = "SDP: no o= line";
constexpr std::string_view kErrRepeatedOrigin = "SDP: repeated o= line";
constexpr std::string_view kErrBadOrigin = "SDP: bad o= line";
constexpr std::string_view kErrNoSessionName = "SDP: no s= line";
constexpr std::string_view kErrRepeatedSessionName = "SDP: repeated s= line";
constexpr std::string_view kErrSessionLineInMedia = "SDP: o= or s= in a media section";
constexpr std::string_view kErrBadConnection = "SDP: bad c= line";
constexpr std::string_view kErrAddressType = "SDP: address does not match its address type";
constexpr std::string_view kErrBadAddress = "SDP: bad address";
constexpr std::string_view kErrRepeatedConnection = "SDP: repeated c= line";
constexpr std::string_view kErrNoConnection = "SDP: stream without connection address";
constexpr std::string_view kErrBadMedia = "SDP: bad m= line";
constexpr std::string_view kErrBadPort = "SDP: bad port";
constexpr std::string_view kErrBadAttribute = "SDP: bad a= line";
constexpr std::string_view kErrBadRtcp = "SDP: bad a=rtcp";
constexpr std::string_view kErrBadCandidate = "SDP: bad a=candidate";

// RFC 8866 §5 type letters; a parser must not guess at the meaning of others (RFC 8866 §5).
bool known_type(char c) {
  switch (c) {
    case 'v':
    case 'o':
    case 's':
    case 'i':
    case 'u':
    case 'e':
    case 'p':
    case 'c':
    case 'b':
    case 't':
    case 'r':
    case 'z':
    case 'k':
    case 'a':
    case 'm':
      return true;
    default:
      return false;
  }
}

bool all_spaces(std::string_view s) { return s.find_first_not_of(' ') == std::string_view::npos; }

bool is_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

// Decimal digits only, no sign, at most `max_digits`, value <= max.
template <typename T>
std::optional<T> parse_number(std::string_view s, size_t max_digits, T max) {
  if (!is_digits(s) || s.size() > max_digits) return std::nullopt;
  T v{};
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || ptr != s.data() + s.size() || v > max) return std::nullopt;
  return v;
}

std::optional<uint16_t> parse_port(std::string_view s) { return parse_number<uint16_t>(s, 5, 65535); }

// RFC 8866 FQDN: at least 4 of alphanumerics, '-' and '.'. A dotted quad that Address::parse
// refused ("1.2.3.256") is a broken literal, not a name.
bool is_host_name(std::string_view text) {
  if (text.size() < 4 || text.size() > 255) return false;
  bool letter = false;
  for (char c : text) {
    bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
    if (!alpha && !(c >= '0' && c <= '9') && c != '-' && c != '.') return false;
    letter = letter || alpha;
  }
  return letter;
}

// The address of a c= or a=rtcp (RFC 8866 unicast-address): an IP literal as SDP writes it (no
// brackets) of the family `address_type` names, or a host name (nullopt). Anything else: error.
Result<std::optional<net::Address>> connection_address(std::string_view text, std::string_view address_type) {
  if (auto a = net::Address::parse(text); a && text.front() != '[') {
    if (address_type == "IP4" ? !a->is_v4() : !a->is_v6()) return sdp_error(kErrAddressType);
    return std::optional<net::Address>(*a);
  }
  if (!is_host_name(text)) return sdp_error(kErrBadAddress);
  return std::optional<net::Address>();
}

// The o= address identifies the session only: an IP literal of its type when it is one.
std::optional<net::Address> origin_address(std::string_view text, std::string_view address_type) {
  if (text.empty() || text.front() == '[') return std::nullopt;
  auto a = net::Address::parse(text);
  if (!a || (address_type == "IP4" ? !a->is_v4() : !a->is_v6())) return std::nullopt;
  return *a;
}

Result<Origin> parse_origin(std::string_view value, size_t line) {
  Origin o;
  o.line = line;
  std::string_view rest = value;
  o.username = next_sdp_token(rest);
  o.session_id = next_sdp_token(rest);
  o.version_text = next_sdp_token(rest);
  o.net_type = next_sdp_token(rest);
  o.address_type = next_sdp_token(rest);
  o.address_text = next_sdp_token(rest);
  if (o.address_text.empty() || !all_spaces(rest)) return sdp_error(kErrBadOrigin);
  // The version is a number we may have to increment (RFC 3264 §8); 20 digits can still overflow.
  auto version = parse_number<uint64_t>(o.version_text, 20, std::numeric_limits<uint64_t>::max());
  if (!version || o.net_type != "IN" || (o.address_type != "IP4" && o.address_type != "IP6"))
    return sdp_error(kErrBadOrigin);
  o.version = *version;
  o.address = origin_address(o.address_text, o.address_type);
  return o;
}

Result<MediaDescription> parse_media(std::string_view value, size_t line) {
  MediaDescription m;
  m.first_line = line;
  std::string_view rest = value;
  m.media = next_sdp_token(rest);
  std::string_view port_text = next_sdp_token(rest);
  m.proto = next_sdp_token(rest);
  if (m.media.empty() || m.proto.empty()) return sdp_error(kErrBadMedia);
  std::string_view count_text;
  if (size_t slash = port_text.find('/'); slash != std::string_view::npos) {
    count_text = port_text.substr(slash + 1);
    port_text = port_text.substr(0, slash);
    auto count = parse_number<uint16_t>(count_text, 5, 65535);
    if (!count || *count == 0) return sdp_error(kErrBadMedia);
    m.port_count = *count;
  }
  auto port = parse_port(port_text);
  if (!port) return sdp_error(kErrBadPort);
  m.port = *port;
  for (std::string_view fmt = next_sdp_token(rest); !fmt.empty(); fmt = next_sdp_token(rest)) m.formats.push_back(fmt);
  if (m.formats.empty()) return sdp_error(kErrBadMedia);  // RFC 8866: at least one fmt, even when disabled
  return m;
}

Result<RtcpAttribute> parse_rtcp(std::string_view value, size_t line) {
  RtcpAttribute r;
  r.line = line;
  std::string_view rest = value;
  auto port = parse_port(next_sdp_token(rest));
  if (!port) return sdp_error(kErrBadRtcp);
  r.port = *port;
  if (all_spaces(rest)) return r;
  std::string_view net_type = next_sdp_token(rest);
  std::string_view address_type = next_sdp_token(rest);
  std::string_view address = next_sdp_token(rest);
  if (net_type != "IN" || (address_type != "IP4" && address_type != "IP6") || !all_spaces(rest))
    return sdp_error(kErrBadRtcp);
  if (address.empty()) return sdp_error(kErrBadRtcp);
  auto a = connection_address(address, address_type);
  if (!a) return a.error();
  r.has_address = true;
  r.address = *a;
  r.address_text = address;
  return r;
}

// A candidate address is an IP literal of either family or a name (mDNS candidates).
std::optional<net::Address> candidate_address(std::string_view text) {
  if (text.empty() || text.front() == '[') return std::nullopt;
  auto a = net::Address::parse(text);
  return a ? std::optional<net::Address>(*a) : std::nullopt;
}

Result<IceCandidate> parse_candidate(std::string_view value, size_t line) {
  IceCandidate c;
  c.line = line;
  std::string_view rest = value;
  c.foundation = next_sdp_token(rest);
  auto component = parse_number<uint16_t>(next_sdp_token(rest), 3, 256);
  c.transport = next_sdp_token(rest);
  auto priority = parse_number<uint32_t>(next_sdp_token(rest), 10, std::numeric_limits<uint32_t>::max());
  c.address_text = next_sdp_token(rest);
  auto port = parse_port(next_sdp_token(rest));
  std::string_view typ = next_sdp_token(rest);
  c.type = next_sdp_token(rest);
  if (c.foundation.empty() || c.foundation.size() > 32 || !component || *component == 0 || c.transport.empty() ||
      !priority || c.address_text.empty() || !port || typ != "typ" || c.type.empty())
    return sdp_error(kErrBadCandidate);
  c.component = *component;
  c.priority = *priority;
  c.port = *port;
  c.address = candidate_address(c.address_text);
  // Extension attributes come in name/value pairs (RFC 8839 §5.1); raddr and rport are the ones
  // a relay needs. A lone trailing name is tolerated: nothing here depends on it.
  for (std::string_view name = next_sdp_token(rest); !name.empty(); name = next_sdp_token(rest)) {
    std::string_view v = next_sdp_token(rest);
    if (name == "raddr") {
      if (v.empty()) return sdp_error(kErrBadCandidate);
      c.related_address_text = v;
      c.related_address = candidate_address(v);
    } else if (name == "rport") {
      auto rport = parse_port(v);
      if (!rport) return sdp_error(kErrBadCandidate);
      c.related_port = *rport;
    }
  }
  return c;
}

// What a section says of its own, before inheritance.
struct SectionState {
  std::optional<Direction> direction;
  std::string_view ice_ufrag, ice_pwd;
};

// Applies an a= line to the section it is in (`media` null: the session section).
Status apply_attribute(const Attribute& a, size_t line, MediaDescription* media, SectionState& state) {
  if (auto d = direction_from_name(a.name); d && !a.has_value) {
    state.direction = d;
    return Status::Ok();
  }
  if (a.name == "ice-ufrag" && a.has_value) {
    state.ice_ufrag = a.value;
    return Status::Ok();
  }
  if (a.name == "ice-pwd" && a.has_value) {
    state.ice_pwd = a.value;
    return Status::Ok();
  }
  // RTCP port, rtcp-mux and candidates are media-level attributes (RFC 3605, 5761, 8839); at
  // session level they mean nothing and are passed through.
  if (media == nullptr) return Status::Ok();
  if (a.name == "rtcp") {
    auto r = parse_rtcp(a.value, line);
    if (!r) return r.error();
    media->rtcp = *r;
  } else if (a.name == "rtcp-mux" && !a.has_value) {
    media->rtcp_mux = true;
  } else if (a.name == "candidate") {
    auto c = parse_candidate(a.value, line);
    if (!c) return c.error();
    media->candidates.push_back(*c);
  } else if (a.name == "end-of-candidates") {
    media->end_of_candidates = true;
  }
  return Status::Ok();
}

// Splits the body into lines; every line is checked for its shape, not yet its content.
Status split_lines(std::string_view body, const SdpLimits& limits, std::vector<Line>& lines) {
  size_t pos = 0;
  size_t trailing_empty = 0;  // empty lines seen since the last non-empty one
  while (pos < body.size()) {
    size_t nl = body.find('\n', pos);
    size_t end = nl == std::string_view::npos ? body.size() : nl;
    std::string_view text = body.substr(pos, end - pos);
    pos = nl == std::string_view::npos ? body.size() : nl + 1;
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (text.empty()) {
      ++trailing_empty;
      continue;
    }
    // An empty line followed by more SDP is not a trailing blank line: the body is broken.
    if (trailing_empty > 0) return sdp_error(kErrEmptyLine);
    if (lines.size() >= limits.max_lines) return sdp_error(kErrTooManyLines);
    if (text.find('\0') != std::string_view::npos || text.find('\r') != std::string_view::npos)
      return sdp_error(kErrBadChar);
    if (text.size() < 2 || text[1] != '=') return sdp_error(kErrBadLine);
    if (!known_type(text[0])) return sdp_error(kErrUnknownType);
    lines.push_back(Line{text[0], text.substr(2)});
  }
  return Status::Ok();
}

}  // namespace

std::string_view next_sdp_token(std::string_view& rest) {
  size_t start = rest.find_first_not_of(' ');
  if (start == std::string_view::npos) {
    rest = {};
    return {};
  }
  size_t end = rest.find(' ', start);
  if (end == std::string_view::npos) end = rest.size();
  std::string_view token = rest.substr(start, end - start);
  rest.remove_prefix(end);
  return token;
}

std::string_view direction_name(Direction d) {
  switch (d) {
    case Direction::kSendRecv:
      return "sendrecv";
    case Direction::kSendOnly:
      return "sendonly";
    case Direction::kRecvOnly:
      return "recvonly";
    case Direction::kInactive:
      return "inactive";
  }
  return "sendrecv";
}

std::optional<Direction> direction_from_name(std::string_view name) {
  for (Direction d : {Direction::kSendRecv, Direction::kSendOnly, Direction::kRecvOnly, Direction::kInactive})
    if (name == direction_name(d)) return d;
  return std::nullopt;
}

Attribute split_attribute(std::string_view line_value) {
  size_t colon = line_value.find(':');
  if (colon == std::string_view::npos) return Attribute{line_value, {}, false};
  return Attribute{line_value.substr(0, colon), line_value.substr(colon + 1), true};
}

bool Connection::unspecified() const {
  return address && (*address == net::Address() || *address == net::Address::v6({}));
}

Result<Connection> parse_connection(std::string_view value) {
  Connection c;
  c.value = value;
  std::string_view rest = value;
  std::string_view net_type = next_sdp_token(rest);
  std::string_view address_type = next_sdp_token(rest);
  std::string_view address = next_sdp_token(rest);
  if (net_type != "IN" || (address_type != "IP4" && address_type != "IP6") || address.empty() || !all_spaces(rest))
    return sdp_error(kErrBadConnection);
  // Multicast: IP4 "/ttl[/count]", IP6 "/count" (RFC 8866 §5.7). Kept as text: a relay answers
  // unicast, so the rewriter drops it with the address it replaces.
  if (size_t slash = address.find('/'); slash != std::string_view::npos) {
    c.multicast_suffix = address.substr(slash);
    address = address.substr(0, slash);
    std::string_view suffix = c.multicast_suffix.substr(1);
    size_t second = suffix.find('/');
    std::string_view first_number = suffix.substr(0, second);
    std::string_view second_number = second == std::string_view::npos ? std::string_view{} : suffix.substr(second + 1);
    if (!parse_number<uint32_t>(first_number, 5, 65535) ||
        (second != std::string_view::npos &&
         (address_type == "IP6" || !parse_number<uint32_t>(second_number, 5, 65535))))
      return sdp_error(kErrBadConnection);
  }
  auto a = connection_address(address, address_type);
  if (!a) return a.error();
  c.address = *a;
  c.address_text = address;
  return c;
}

Result<SessionDescription> parse_sdp(std::string_view body, const SdpLimits& limits) {
  if (body.size() > limits.max_body) return sdp_error(kErrBodyTooLarge);
  SessionDescription sdp;
  sdp.body = body;
  PINHOLE_TRY(split_lines(body, limits, sdp.lines));
  if (sdp.lines.empty() || sdp.lines.front().type != 'v' || sdp.lines.front().value != "0")
    return sdp_error(kErrVersion);

  bool have_origin = false;
  bool have_session_name = false;
  SectionState session_state;
  SectionState media_state;
  MediaDescription* current = nullptr;
  // Ends the current media section at line `end`, recording what it said of its own.
  auto close_section = [&](size_t end) {
    if (current == nullptr) return;
    current->end_line = end;
    current->ice_ufrag = media_state.ice_ufrag;
    current->ice_pwd = media_state.ice_pwd;
    current->direction_from_media = media_state.direction.has_value();
    current->direction = media_state.direction.value_or(Direction::kSendRecv);
    media_state = {};
  };

  for (size_t i = 1; i < sdp.lines.size(); ++i) {
    const Line& line = sdp.lines[i];
    switch (line.type) {
      case 'v':
        return sdp_error(kErrRepeatedVersion);
      case 'o': {
        if (current != nullptr) return sdp_error(kErrSessionLineInMedia);
        if (have_origin) return sdp_error(kErrRepeatedOrigin);
        auto o = parse_origin(line.value, i);
        if (!o) return o.error();
        sdp.origin = *o;
        have_origin = true;
        break;
      }
      case 's':
        if (current != nullptr) return sdp_error(kErrSessionLineInMedia);
        if (have_session_name) return sdp_error(kErrRepeatedSessionName);
        sdp.session_name = line.value;
        have_session_name = true;
        break;
      case 'c': {
        std::optional<Connection>& target = current != nullptr ? current->connection : sdp.connection;
        // Several c= at one level exist only for layered multicast; a NAT edge has no use for them
        // and could not rewrite them to one relay address.
        if (target) return sdp_error(kErrRepeatedConnection);
        auto c = parse_connection(line.value);
        if (!c) return c.error();
        target = *c;
        target->line = i;
        break;
      }
      case 'm': {
        close_section(i);
        if (sdp.media.size() >= limits.max_media) return sdp_error(kErrTooManyMedia);
        auto m = parse_media(line.value, i);
        if (!m) return m.error();
        sdp.media.push_back(std::move(*m));
        current = &sdp.media.back();
        break;
      }
      case 'a': {
        Attribute a = split_attribute(line.value);
        if (a.name.empty()) return sdp_error(kErrBadAttribute);
        PINHOLE_TRY(apply_attribute(a, i, current, current != nullptr ? media_state : session_state));
        break;
      }
      default:
        break;  // i=, u=, e=, p=, b=, t=, r=, z=, k=: passed through as written
    }
  }
  close_section(sdp.lines.size());
  if (!have_origin) return sdp_error(kErrNoOrigin);
  if (!have_session_name) return sdp_error(kErrNoSessionName);

  sdp.direction = session_state.direction.value_or(Direction::kSendRecv);
  for (MediaDescription& m : sdp.media) {
    if (!m.direction_from_media) m.direction = sdp.direction;
    if (m.ice_ufrag.empty()) m.ice_ufrag = session_state.ice_ufrag;
    if (m.ice_pwd.empty()) m.ice_pwd = session_state.ice_pwd;
    if (m.connection) {
      m.connection_source = ConnectionSource::kMedia;
    } else if (sdp.connection) {
      m.connection = sdp.connection;
      m.connection_source = ConnectionSource::kSession;
    } else if (!m.disabled()) {
      return sdp_error(kErrNoConnection);
    }
  }
  return sdp;
}

}  // namespace pinhole::sdp
