// SDP rewriter: decides once per stream what its connection line must say, then copies the body
// line by line, replacing, dropping or inserting only the lines the relay owns.
#include "sdp/sdp_rewriter.h"

#include <string_view>
#include <vector>

namespace pinhole::sdp {
namespace {

constexpr uint16_t kServerError = 500;

constexpr std::string_view kErrRelayCount = "SDP rewrite: relay list does not match the streams";
constexpr std::string_view kErrRelayPort = "SDP rewrite: relay port 0 for an active stream";
constexpr std::string_view kErrRtcpPort = "SDP rewrite: no port after the RTP port for RTCP";

constexpr uint64_t kFnvOffset = 14695981039346656037ULL;
constexpr uint64_t kFnvPrime = 1099511628211ULL;

uint64_t fnv1a(uint64_t h, std::string_view s) {
  for (char c : s) {
    h ^= static_cast<uint8_t>(c);
    h *= kFnvPrime;
  }
  return h;
}

std::string_view address_type(const net::Address& a) { return a.is_v4() ? "IP4" : "IP6"; }

// "IN IP4 203.0.113.10"
std::string connection_value(const net::Address& a) {
  std::string v = "IN ";
  v += address_type(a);
  v += ' ';
  v += a.format().view();
  return v;
}

bool is_ice_attribute(std::string_view name) {
  return name == "candidate" || name == "remote-candidates" || name == "end-of-candidates" || name.starts_with("ice-");
}

size_t offset_in(std::string_view outer, std::string_view inner) {
  return static_cast<size_t>(inner.data() - outer.data());
}

// What the rewrite does to one media stream.
struct StreamPlan {
  bool relayed = false;    // active and given a relay endpoint
  RelayEndpoint relay;     // when relayed
  bool keep_zero = false;  // relayed but held with c=0.0.0.0, which stays
  bool mux = false;        // the output keeps a=rtcp-mux
  uint16_t rtcp_port = 0;
  bool add_candidates = false;
  // The c= value the stream must end up with (active streams only).
  std::optional<std::string> connection;
};

class Writer {
 public:
  explicit Writer(size_t reserve) { out_.reserve(reserve); }
  void line(char type, std::string_view value) {
    out_ += type;
    out_ += '=';
    out_ += value;
    out_ += "\r\n";
  }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

void write_candidates(Writer& w, const StreamPlan& p) {
  // RFC 8445 §5.1.1.3: one foundation per base address, type and transport; hashing the address
  // keeps the foundations of different relay addresses apart (ice-char: ALPHA / DIGIT / "+" / "/").
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t h = kFnvOffset;
  for (uint8_t b : p.relay.address.bytes()) {
    h ^= b;
    h *= kFnvPrime;
  }
  std::string foundation = "ph";
  for (int shift = 28; shift >= 0; shift -= 4) foundation += kHex[(h >> shift) & 0xF];
  auto address = p.relay.address.format();
  const uint16_t components = p.mux ? 1 : 2;
  for (uint16_t component = 1; component <= components; ++component) {
    std::string v = "candidate:" + foundation + ' ' + std::to_string(component) + " UDP " +
                    std::to_string(relay_candidate_priority(component)) + ' ';
    v += address.view();
    v += ' ' + std::to_string(component == 1 ? p.relay.rtp_port : p.rtcp_port) + " typ host";
    w.line('a', v);
  }
}

void write_media_line(Writer& w, std::string_view value, uint16_t port) {
  std::string_view rest = value;
  next_sdp_token(rest);                                // media
  std::string_view port_token = next_sdp_token(rest);  // port[/count]: the relay gives one port
  size_t at = offset_in(value, port_token);
  std::string v(value.substr(0, at));
  v += std::to_string(port);
  v += value.substr(at + port_token.size());
  w.line('m', v);
}

void write_rtcp_line(Writer& w, std::string_view value, const StreamPlan& p) {
  std::string v = std::to_string(p.rtcp_port);
  std::string_view rest = value;
  next_sdp_token(rest);  // the old port
  std::string_view address_part = rest;
  next_sdp_token(rest);  // IN
  next_sdp_token(rest);  // IP4 | IP6
  std::string_view address = next_sdp_token(rest);
  if (!address.empty()) {
    // It named an address (RFC 3605): name ours, unless the stream keeps its RFC 2543 hold and
    // this address says hold too.
    auto a = net::Address::parse(address);
    bool zero = a && (*a == net::Address() || *a == net::Address::v6({}));
    if (p.keep_zero && zero) {
      v += address_part;
    } else {
      v += ' ';
      v += connection_value(p.relay.address);
    }
  }
  w.line('a', "rtcp:" + v);
}

// Writes one relayed media section [m.first_line, m.end_line).
void write_relayed_section(Writer& w, const SessionDescription& sdp, const MediaDescription& m, const StreamPlan& p,
                           const std::optional<std::string>& session_connection, const RewriteOptions& options) {
  // Where the relay's candidates go: after the peer's last one, else before a=end-of-candidates,
  // else at the end of the section.
  size_t candidates_at = m.end_line;
  if (p.add_candidates) {
    if (!m.candidates.empty()) {
      candidates_at = m.candidates.back().line + 1;
    } else {
      for (size_t i = m.first_line; i < m.end_line; ++i)
        if (sdp.lines[i].type == 'a' && split_attribute(sdp.lines[i].value).name == "end-of-candidates") {
          candidates_at = i;
          break;
        }
    }
  }
  // A stream that uses the session c= but needs another address gets its own, placed where
  // RFC 8866 §5 orders it: after m= and i=.
  bool insert_connection = m.connection_source == ConnectionSource::kSession && p.connection != session_connection;
  size_t connection_at = m.first_line + 1;
  if (connection_at < m.end_line && sdp.lines[connection_at].type == 'i') ++connection_at;

  for (size_t i = m.first_line; i < m.end_line; ++i) {
    if (insert_connection && i == connection_at) w.line('c', *p.connection);
    if (p.add_candidates && i == candidates_at) write_candidates(w, p);
    const Line& line = sdp.lines[i];
    if (i == m.first_line) {
      write_media_line(w, line.value, p.relay.rtp_port);
      continue;
    }
    if (line.type == 'c') {
      w.line('c', *p.connection);
      continue;
    }
    if (line.type != 'a') {
      w.line(line.type, line.value);
      continue;
    }
    Attribute a = split_attribute(line.value);
    // RTCP shares the RTP port no more; or the peer talks to the relay only, without ICE.
    bool drop = ((a.name == "rtcp-mux" || a.name == "rtcp-mux-only") && !a.has_value && !p.mux) ||
                (options.ice == IcePolicy::kRemove && is_ice_attribute(a.name));
    if (drop) continue;
    if (a.name == "rtcp" && a.has_value) {
      write_rtcp_line(w, a.value, p);
    } else if (options.force_direction && !a.has_value && direction_from_name(a.name)) {
      w.line('a', direction_name(*options.force_direction));
    } else {
      w.line('a', line.value);
    }
  }
  if (insert_connection && connection_at == m.end_line) w.line('c', *p.connection);
  if (p.add_candidates && candidates_at == m.end_line) write_candidates(w, p);
  if (options.force_direction && !m.direction_from_media && m.direction != *options.force_direction)
    w.line('a', direction_name(*options.force_direction));
}

}  // namespace

uint32_t relay_candidate_priority(uint16_t component) {
  // (2^24)*type preference + (2^8)*local preference + (256 - component id).
  return (126U << 24) + (65535U << 8) + (256U - component);
}

Result<RewriteResult> rewrite_sdp(const SessionDescription& sdp, std::span<const std::optional<RelayEndpoint>> relays,
                                  const RewriteOptions& options, std::optional<PreviousRewrite> previous) {
  if (relays.size() != sdp.media.size()) return Error{kServerError, kErrRelayCount};

  std::vector<StreamPlan> plans(sdp.media.size());
  const RelayEndpoint* first_relay = nullptr;
  bool untouched_ice = false;  // an active stream we leave alone relies on ICE
  for (size_t i = 0; i < sdp.media.size(); ++i) {
    const MediaDescription& m = sdp.media[i];
    StreamPlan& p = plans[i];
    if (m.disabled()) continue;
    // The parser guarantees an active stream a connection.
    if (!relays[i] || !m.connection) {
      if (m.connection) p.connection = std::string(m.connection->value);
      untouched_ice = untouched_ice || m.has_ice();
      continue;
    }
    p.relayed = true;
    p.relay = *relays[i];
    if (p.relay.rtp_port == 0) return Error{kServerError, kErrRelayPort};
    p.mux = m.rtcp_mux && options.rtcp_mux == RtcpMuxPolicy::kKeep;
    if (!p.mux && p.relay.rtp_port == 65535) return Error{kServerError, kErrRtcpPort};
    p.rtcp_port = p.mux ? p.relay.rtp_port : static_cast<uint16_t>(p.relay.rtp_port + 1);
    p.keep_zero = m.connection->unspecified() && !options.replace_zero_address;
    p.connection = p.keep_zero ? std::string(m.connection->value) : connection_value(p.relay.address);
    p.add_candidates = options.ice == IcePolicy::kKeepAndAdd && m.has_ice();
    if (first_relay == nullptr) first_relay = &p.relay;
  }

  // The session c= keeps its value while a stream left alone relies on it (that section is copied
  // as it is); otherwise it takes the address of the first relayed stream relying on it, or when
  // none does, the first relay address, so that no private address is left in the body.
  std::optional<std::string> session_connection;
  if (sdp.connection) {
    auto inherits = [&](size_t i) {
      return !sdp.media[i].disabled() && sdp.media[i].connection_source == ConnectionSource::kSession;
    };
    for (size_t i = 0; i < sdp.media.size() && !session_connection; ++i)
      if (inherits(i) && !plans[i].relayed) session_connection = std::string(sdp.connection->value);
    for (size_t i = 0; i < sdp.media.size() && !session_connection; ++i)
      if (inherits(i)) session_connection = plans[i].connection;
    for (size_t i = 0; i < sdp.media.size() && !session_connection; ++i)
      if (plans[i].relayed && !plans[i].keep_zero) session_connection = plans[i].connection;
    if (!session_connection) session_connection = std::string(sdp.connection->value);
  }
  bool strip_session_ice = options.ice == IcePolicy::kRemove && !untouched_ice;

  Writer w(sdp.body.size() + 256);
  size_t version_at = 0;
  for (size_t i = 0; i < sdp.session_end(); ++i) {
    const Line& line = sdp.lines[i];
    if (line.type == 'o') {
      const Origin& o = sdp.origin;
      std::string_view prefix = line.value.substr(0, offset_in(line.value, o.version_text));
      std::string_view suffix = line.value.substr(offset_in(line.value, o.version_text) + o.version_text.size());
      std::optional<net::Address> origin = options.origin_address;
      if (!origin && first_relay != nullptr) origin = first_relay->address;
      w.out() += "o=";
      w.out() += prefix;
      version_at = w.out().size();
      if (options.replace_origin && origin) {
        // username and sess-id stay: they identify the session (RFC 3264 §5).
        w.out() += ' ';
        w.out() += connection_value(*origin);
      } else {
        w.out() += suffix;
      }
      w.out() += "\r\n";
    } else if (line.type == 'c') {
      w.line('c', *session_connection);
    } else if (line.type == 'a' && strip_session_ice && is_ice_attribute(split_attribute(line.value).name)) {
      // dropped
    } else {
      w.line(line.type, line.value);
    }
  }
  for (size_t i = 0; i < sdp.media.size(); ++i) {
    const MediaDescription& m = sdp.media[i];
    if (plans[i].relayed) {
      write_relayed_section(w, sdp, m, plans[i], session_connection, options);
    } else {
      for (size_t l = m.first_line; l < m.end_line; ++l) w.line(sdp.lines[l].type, sdp.lines[l].value);
    }
  }

  RewriteResult result;
  result.body = std::move(w.out());
  std::string_view body = result.body;
  // The separator byte cannot occur in an SDP line, so moving text across the version cannot
  // give the same hash.
  uint64_t h = fnv1a(kFnvOffset, body.substr(0, version_at));
  h = fnv1a(h, "\xff");
  result.content_hash = fnv1a(h, body.substr(version_at));
  result.version = sdp.origin.version;
  if (previous) {
    // Unsigned wrap-around at 2^64 - 1: no counter started at a sane value gets there.
    result.version = result.content_hash == previous->content_hash ? previous->version : previous->version + 1;
  }
  result.body.insert(version_at, std::to_string(result.version));
  return result;
}

}  // namespace pinhole::sdp
