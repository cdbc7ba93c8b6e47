#include "media/ng_message.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <utility>

namespace pinhole::media {
namespace {

// ---------------------------------------------------------------------------------------------
// Names. rtpengine lists each key and flag in several spellings ("SIP source address",
// "SIP-source-address", "sip-source-address"...); folding case and treating ' ', '_' and '-' as
// one character accepts all of them with one table entry each. Canonical names below are
// lower-case and hyphenated.

char fold(char c) {
  if (c == ' ' || c == '_') return '-';
  if (c >= 'A' && c <= 'Z') return static_cast<char>(c - 'A' + 'a');
  return c;
}

bool name_is(std::string_view in, std::string_view canonical) {
  if (in.size() != canonical.size()) return false;
  for (size_t i = 0; i < in.size(); ++i) {
    if (fold(in[i]) != canonical[i]) return false;
  }
  return true;
}

// The rest of `in` after `prefix` (compared folded), or nullopt.
std::optional<std::string_view> after_prefix(std::string_view in, std::string_view prefix) {
  if (in.size() <= prefix.size() || !name_is(in.substr(0, prefix.size()), prefix)) return std::nullopt;
  return in.substr(prefix.size());
}

template <typename E>
struct Named {
  std::string_view name;
  E value;
};

template <typename E, size_t N>
std::optional<E> lookup(const std::array<Named<E>, N>& table, std::string_view in) {
  for (const Named<E>& n : table) {
    if (name_is(in, n.name)) return n.value;
  }
  return std::nullopt;
}

constexpr std::array<Named<NgFlag>, 29> kFlagNames{{
    {"trust-address", NgFlag::kTrustAddress},
    {"sip-source-address", NgFlag::kSipSourceAddress},
    {"symmetric", NgFlag::kSymmetric},
    {"asymmetric", NgFlag::kAsymmetric},
    {"strict-source", NgFlag::kStrictSource},
    {"media-handover", NgFlag::kMediaHandover},
    {"port-latching", NgFlag::kPortLatching},
    {"no-port-latching", NgFlag::kNoPortLatching},
    {"nat-wait", NgFlag::kNatWait},
    {"pierce-nat", NgFlag::kPierceNat},
    {"record-call", NgFlag::kRecordCall},
    {"fatal", NgFlag::kFatal},
    {"loop-protect", NgFlag::kLoopProtect},
    {"early-media", NgFlag::kEarlyMedia},
    {"reset", NgFlag::kReset},
    {"reject-ice", NgFlag::kRejectIce},
    {"ice-reject", NgFlag::kRejectIce},
    {"trickle-ice", NgFlag::kTrickleIce},
    {"generate-mid", NgFlag::kGenerateMid},
    {"generate-rtcp", NgFlag::kGenerateRtcp},
    {"full-rtcp-attribute", NgFlag::kFullRtcpAttribute},
    {"no-rtcp-attribute", NgFlag::kNoRtcpAttribute},
    {"original-sendrecv", NgFlag::kOriginalSendrecv},
    {"single-codec", NgFlag::kSingleCodec},
    {"directional", NgFlag::kDirectional},
    {"fragment", NgFlag::kFragment},
    {"unidirectional", NgFlag::kUnidirectional},
    {"debug", NgFlag::kDebug},
    {"debugging", NgFlag::kDebug},
}};

constexpr std::array<Named<NgReplace>, 9> kReplaceNames{{
    {"origin", NgReplace::kOrigin},
    {"origin-full", NgReplace::kOriginFull},
    {"session-connection", NgReplace::kSessionConnection},
    {"session-name", NgReplace::kSessionName},
    {"sdp-version", NgReplace::kSdpVersion},
    {"username", NgReplace::kUsername},
    {"zero-address", NgReplace::kZeroAddress},
    {"force-increment-sdp-ver", NgReplace::kForceIncrementSdpVersion},
    {"force-increment-sdp-version", NgReplace::kForceIncrementSdpVersion},
}};

constexpr std::array<Named<NgRtcpMux>, 5> kRtcpMuxNames{{
    {"offer", NgRtcpMux::kOffer},
    {"demux", NgRtcpMux::kDemux},
    {"accept", NgRtcpMux::kAccept},
    {"reject", NgRtcpMux::kReject},
    {"require", NgRtcpMux::kRequire},
}};

constexpr std::array<Named<NgIce>, 5> kIceNames{{
    {"remove", NgIce::kRemove},
    {"force", NgIce::kForce},
    {"default", NgIce::kDefault},
    {"force-relay", NgIce::kForceRelay},
    {"optional", NgIce::kOptional},
}};

constexpr std::array<Named<NgFamily>, 4> kFamilyNames{{
    {"ip4", NgFamily::kIp4},
    {"ip6", NgFamily::kIp6},
    {"ipv4", NgFamily::kIp4},
    {"ipv6", NgFamily::kIp6},
}};

constexpr std::array<Named<NgTransport>, 7> kTransportNames{{
    {"rtp/avp", NgTransport::kRtpAvp},
    {"rtp/savp", NgTransport::kRtpSavp},
    {"rtp/avpf", NgTransport::kRtpAvpf},
    {"rtp/savpf", NgTransport::kRtpSavpf},
    {"udp/tls/rtp/savp", NgTransport::kUdpTlsRtpSavp},
    {"udp/tls/rtp/savpf", NgTransport::kUdpTlsRtpSavpf},
    {"accept", NgTransport::kAccept},
}};

constexpr std::array<Named<NgSipMessageType>, 6> kSipMessageTypeNames{{
    {"request", NgSipMessageType::kRequest},
    {"sip-request", NgSipMessageType::kRequest},
    {"reply", NgSipMessageType::kReply},
    {"sip-reply", NgSipMessageType::kReply},
    {"response", NgSipMessageType::kReply},
    {"sip-response", NgSipMessageType::kReply},
}};

constexpr std::array<Named<NgCommandKind>, 6> kCommandNames{{
    {"ping", NgCommandKind::kPing},
    {"offer", NgCommandKind::kOffer},
    {"answer", NgCommandKind::kAnswer},
    {"delete", NgCommandKind::kDelete},
    {"query", NgCommandKind::kQuery},
    {"list", NgCommandKind::kList},
}};

enum class Key : uint8_t {
  kCommand,
  kCallId,
  kFromTag,
  kToTag,
  kViaBranch,
  kSdp,
  kLabel,
  kReceivedFrom,
  kMediaAddress,
  kAddressFamily,
  kIce,
  kRtcpMux,
  kReplace,
  kFlags,
  kDirection,
  kDeleteDelay,
  kTransportProtocol,
  kFromTags,
  kSupports,
  kSipMessageType,
  kRtppFlags,
  kRecordCall,
  kGenerateRtcp,
  kLimit,
  kCount,
};

constexpr std::array<Named<Key>, 25> kKeyNames{{
    {"command", Key::kCommand},
    {"call-id", Key::kCallId},
    {"from-tag", Key::kFromTag},
    {"to-tag", Key::kToTag},
    {"via-branch", Key::kViaBranch},
    {"sdp", Key::kSdp},
    {"label", Key::kLabel},
    {"from-label", Key::kLabel},
    {"received-from", Key::kReceivedFrom},
    {"media-address", Key::kMediaAddress},
    {"address-family", Key::kAddressFamily},
    {"ice", Key::kIce},
    {"rtcp-mux", Key::kRtcpMux},
    {"replace", Key::kReplace},
    {"flags", Key::kFlags},
    {"direction", Key::kDirection},
    {"delete-delay", Key::kDeleteDelay},
    {"transport-protocol", Key::kTransportProtocol},
    {"from-tags", Key::kFromTags},
    {"supports", Key::kSupports},
    {"sip-message-type", Key::kSipMessageType},
    {"rtpp-flags", Key::kRtppFlags},
    {"record-call", Key::kRecordCall},
    {"generate-rtcp", Key::kGenerateRtcp},
    {"limit", Key::kLimit},
}};

// A decimal int64 ("-5", "30"), as rtpengine's get_int_str takes for integer keys.
std::optional<int64_t> parse_decimal(std::string_view s) {
  int64_t v = 0;
  if (s.empty() || s.front() == '+') return std::nullopt;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// A key's value: a bencode value from the dictionary, or text from rtpp-flags (`key=text`).
struct Arg {
  std::optional<bencode::Value> value;
  std::string_view text;

  std::optional<std::string_view> string() const {
    if (value) return value->as_string();
    return text;
  }
  std::optional<int64_t> integer() const {
    if (value && value->is_integer()) return value->as_integer();
    auto s = string();
    return s ? parse_decimal(*s) : std::nullopt;
  }
  // Calls f(item) for each item of a list of strings, or of a comma-separated string (rtpengine
  // takes both for list keys). False when the value is neither (or holds a non-string item).
  template <typename F>
  bool for_each_item(F&& f) const {
    if (value && value->is_list()) {
      bool all_strings = true;
      for (bencode::Value item : value->items()) {
        auto s = item.as_string();
        if (s) {
          f(*s);
        } else {
          all_strings = false;
        }
      }
      return all_strings;
    }
    auto s = string();
    if (!s) return false;
    std::string_view rest = *s;
    while (!rest.empty()) {
      size_t comma = rest.find(',');
      std::string_view item = rest.substr(0, comma);
      if (!item.empty()) f(item);
      if (comma == std::string_view::npos) break;
      rest.remove_prefix(comma + 1);
    }
    return true;
  }
};

void add_once(std::vector<std::string_view>& list, std::string_view name) {
  if (std::find(list.begin(), list.end(), name) == list.end()) list.push_back(name);
}

// Applies keys and flags to an NgCommand in input order.
class CommandParser {
 public:
  explicit CommandParser(NgCommand& c) : c_(c) {}

  void apply_key(std::string_view name, const Arg& arg, bool in_rtpp_flags);
  void apply_flag(std::string_view flag);
  void apply_rtpp_flags(std::string_view text);

 private:
  // Sets a single-valued field; a repeat with a different value is a conflict (the last wins).
  template <typename T>
  void assign(Key key, std::string_view name, T& field, T value) {
    size_t i = static_cast<size_t>(key);
    if (seen_[i] && !(field == value)) add_once(c_.conflicting_keys, name);
    seen_[i] = true;
    field = std::move(value);
  }
  void invalid(std::string_view name) { add_once(c_.invalid_keys, name); }
  template <typename E, size_t N>
  void assign_named(Key key, std::string_view name, E& field, const Arg& arg, const std::array<Named<E>, N>& table) {
    auto s = arg.string();
    auto v = s ? lookup(table, *s) : std::nullopt;
    if (!v) return invalid(name);
    assign(key, name, field, *v);
  }
  void assign_string(Key key, std::string_view name, std::string_view& field, const Arg& arg) {
    auto s = arg.string();
    if (!s) return invalid(name);
    assign(key, name, field, *s);
  }
  // One item of a `replace` / `rtcp-mux` list, reported under `reported` when unknown (the
  // item itself, or the whole flag when it came as "replace-..." in `flags`).
  void replace_item(std::string_view item, std::string_view reported) {
    if (auto r = lookup(kReplaceNames, item)) {
      c_.replace.add(*r);
    } else {
      c_.unknown_flags.push_back(reported);
    }
  }
  void rtcp_mux_item(std::string_view item, std::string_view reported) {
    if (auto r = lookup(kRtcpMuxNames, item)) {
      c_.rtcp_mux.add(*r);
    } else {
      c_.unknown_flags.push_back(reported);
    }
  }
  void add_direction(std::string_view interface) {
    // rtpengine keeps two (from, to) and warns about more.
    if (c_.direction.size() < 2) {
      c_.direction.push_back(interface);
    } else {
      invalid("direction");
    }
  }
  void received_from(const Arg& arg);
  void on_off_flag(std::string_view name, NgFlag flag, const Arg& arg);

  NgCommand& c_;
  std::array<bool, static_cast<size_t>(Key::kCount)> seen_{};
};

void CommandParser::received_from(const Arg& arg) {
  constexpr std::string_view kName = "received-from";
  if (arg.value && arg.value->is_list()) {
    // [family, address], as Kamailio sends it.
    std::array<std::optional<std::string_view>, 2> parts;
    size_t n = 0;
    for (bencode::Value item : arg.value->items()) {
      if (n < parts.size()) parts[n] = item.as_string();
      ++n;
    }
    if (n != 2 || !parts[0] || !parts[1] || parts[1]->empty()) return invalid(kName);
    auto family = lookup(kFamilyNames, *parts[0]);
    if (!family) return invalid(kName);
    return assign(Key::kReceivedFrom, kName, c_.received_from,
                  std::optional<NgReceivedFrom>(NgReceivedFrom{*family, *parts[1]}));
  }
  // A bare address (rtpp-flags "received-from=ADDR", or a string value): the family follows from
  // the spelling, as Kamailio derives it before sending the list form.
  auto s = arg.string();
  if (!s || s->empty()) return invalid(kName);
  NgFamily family = s->find(':') == std::string_view::npos ? NgFamily::kIp4 : NgFamily::kIp6;
  assign(Key::kReceivedFrom, kName, c_.received_from, std::optional<NgReceivedFrom>(NgReceivedFrom{family, *s}));
}

// rtpengine's `record call` (yes/no/on/off) and `generate RTCP` (on/off) keys mirror flags.
void CommandParser::on_off_flag(std::string_view name, NgFlag flag, const Arg& arg) {
  auto s = arg.string();
  if (s && (name_is(*s, "yes") || name_is(*s, "on"))) {
    c_.flags.add(flag);
  } else if (s && (name_is(*s, "no") || name_is(*s, "off"))) {
    c_.flags.remove(flag);
  } else {
    invalid(name);
  }
}

void CommandParser::apply_key(std::string_view name, const Arg& arg, bool in_rtpp_flags) {
  auto key = lookup(kKeyNames, name);
  if (!key) {
    c_.unknown_keys.push_back(name);
    return;
  }
  switch (*key) {
    case Key::kCommand:
      // Only the dictionary's own `command` counts (rtpengine ignores it inside rtpp-flags).
      if (!in_rtpp_flags) assign_string(Key::kCommand, name, c_.command, arg);
      return;
    case Key::kCallId:
      return assign_string(Key::kCallId, name, c_.call_id, arg);
    case Key::kFromTag:
      return assign_string(Key::kFromTag, name, c_.from_tag, arg);
    case Key::kToTag:
      assign_string(Key::kToTag, name, c_.to_tag, arg);
      c_.has_to_tag = seen_[static_cast<size_t>(Key::kToTag)];
      return;
    case Key::kViaBranch:
      // In rtpp-flags `via-branch=auto|1|2|extra|next` is Kamailio's own selector; Kamailio sends
      // the resulting branch as the `via-branch` key.
      if (!in_rtpp_flags) assign_string(Key::kViaBranch, name, c_.via_branch, arg);
      return;
    case Key::kSdp:
      return assign_string(Key::kSdp, name, c_.sdp, arg);
    case Key::kLabel:
      return assign_string(Key::kLabel, name, c_.label, arg);
    case Key::kReceivedFrom:
      return received_from(arg);
    case Key::kMediaAddress:
      return assign_string(Key::kMediaAddress, name, c_.media_address, arg);
    case Key::kAddressFamily:
      return assign_named(Key::kAddressFamily, name, c_.address_family, arg, kFamilyNames);
    case Key::kIce:
      return assign_named(Key::kIce, name, c_.ice, arg, kIceNames);
    case Key::kTransportProtocol:
      return assign_named(Key::kTransportProtocol, name, c_.transport_protocol, arg, kTransportNames);
    case Key::kSipMessageType:
      return assign_named(Key::kSipMessageType, name, c_.sip_message_type, arg, kSipMessageTypeNames);
    case Key::kRtcpMux:
      if (!arg.for_each_item([&](std::string_view item) { rtcp_mux_item(item, item); })) invalid(name);
      return;
    case Key::kReplace:
      if (!arg.for_each_item([&](std::string_view item) { replace_item(item, item); })) invalid(name);
      return;
    case Key::kFlags:
      if (!arg.for_each_item([&](std::string_view item) { apply_flag(item); })) invalid(name);
      return;
    case Key::kFromTags:
      if (!arg.for_each_item([&](std::string_view item) { c_.from_tags.push_back(item); })) invalid(name);
      return;
    case Key::kSupports:
      if (!arg.for_each_item([&](std::string_view item) {
            if (name_is(item, "load-limit")) c_.supports_load_limit = true;
          })) {
        invalid(name);
      }
      return;
    case Key::kDirection: {
      if (in_rtpp_flags) {
        // rtpp-flags gives one interface per `direction=` token.
        if (auto s = arg.string()) add_direction(*s);
        return;
      }
      std::vector<std::string_view> interfaces;
      if (!arg.for_each_item([&](std::string_view item) { interfaces.push_back(item); }) || interfaces.size() > 2) {
        return invalid(name);
      }
      return assign(Key::kDirection, name, c_.direction, std::move(interfaces));
    }
    case Key::kDeleteDelay: {
      auto v = arg.integer();
      if (!v || *v < 0) return invalid(name);
      return assign(Key::kDeleteDelay, name, c_.delete_delay, std::optional<int64_t>(*v));
    }
    case Key::kLimit: {
      auto v = arg.integer();
      if (!v || *v <= 0) return invalid(name);
      return assign(Key::kLimit, name, c_.limit, std::optional<int64_t>(*v));
    }
    case Key::kRtppFlags: {
      auto s = arg.string();
      if (in_rtpp_flags || !s) return invalid(name);
      return apply_rtpp_flags(*s);
    }
    case Key::kRecordCall:
      return on_off_flag(name, NgFlag::kRecordCall, arg);
    case Key::kGenerateRtcp:
      return on_off_flag(name, NgFlag::kGenerateRtcp, arg);
    case Key::kCount:
      return;
  }
}

void CommandParser::apply_flag(std::string_view flag) {
  if (auto f = lookup(kFlagNames, flag)) {
    c_.flags.add(*f);
    return;
  }
  if (auto rest = after_prefix(flag, "replace-")) return replace_item(*rest, flag);
  if (auto rest = after_prefix(flag, "rtcp-mux-")) return rtcp_mux_item(*rest, flag);
  // Tags are case-sensitive: only the prefix is folded.
  if (auto rest = after_prefix(flag, "from-tags-")) {
    c_.from_tags.push_back(*rest);
    return;
  }
  // "to-tag" asks Kamailio to send the to-tag (which it then does as a key); nothing to do here.
  if (name_is(flag, "to-tag")) return;
  c_.unknown_flags.push_back(flag);
}

// Kamailio's flag string as the script wrote it ("trust-address replace-origin ICE=force ..."),
// which newer Kamailio leaves for the relay to parse. Space-separated tokens; `key=value` is the
// key with a string value, a bare token a flag; plus the shorthands rtpengine's parser knows:
// transport bits (RTP, AVP, SRTP, AVPF, DTLS, or a full protocol name) and internal/external
// directions. rtpengine's bracketed list syntax (`key=[a b]`) is not supported: such a key is
// reported as unusable.
void CommandParser::apply_rtpp_flags(std::string_view text) {
  // rtpengine's transport composition: bit 0 SRTP, bit 1 AVPF, bit 2 DTLS; 0x100 = "set".
  constexpr unsigned kSet = 0x100;
  constexpr std::array<NgTransport, 8> kByBits = {
      NgTransport::kRtpAvp,        NgTransport::kRtpSavp, NgTransport::kRtpAvpf,        NgTransport::kRtpSavpf,
      NgTransport::kUdpTlsRtpSavp, NgTransport::kUnset,   NgTransport::kUdpTlsRtpSavpf, NgTransport::kUnset};
  unsigned transport = 0;
  while (!text.empty()) {
    size_t space = text.find(' ');
    std::string_view token = text.substr(0, space);
    text.remove_prefix(space == std::string_view::npos ? text.size() : space + 1);
    if (token.empty()) continue;

    size_t eq = token.find('=');
    std::string_view key = token.substr(0, eq);
    std::string_view value = eq == std::string_view::npos ? std::string_view() : token.substr(eq + 1);
    if (value.empty()) {
      if (key == "RTP") {
        transport = (transport | kSet) & ~1U;
      } else if (key == "AVP") {
        transport = (transport | kSet) & ~2U;
      } else if (key == "SRTP") {
        transport |= kSet | 1U;
      } else if (key == "AVPF") {
        transport |= kSet | 2U;
      } else if (key == "DTLS") {
        transport |= kSet | 4U;
      } else if (auto t = lookup(kTransportNames, key); t && *t != NgTransport::kAccept) {
        assign(Key::kTransportProtocol, "transport-protocol", c_.transport_protocol, *t);
      } else if (name_is(key, "internal") || name_is(key, "external")) {
        add_direction(key);
      } else {
        apply_flag(key);
      }
      continue;
    }
    if (value.front() == '[') {
      invalid(key);
      continue;
    }
    if (name_is(key, "from-tag")) c_.flags.add(NgFlag::kDirectional);  // as rtpengine does
    apply_key(key, Arg{std::nullopt, value}, /*in_rtpp_flags=*/true);
  }
  if ((transport & kSet) != 0 && kByBits[transport & 7U] != NgTransport::kUnset) {
    assign(Key::kTransportProtocol, "transport-protocol", c_.transport_protocol, kByBits[transport & 7U]);
  }
}

bool is_visible_ascii(char c) { return c > ' ' && c < 0x7f; }
// Whitespace a stream may carry between messages; none of it can start a cookie.
bool is_separator(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

Error ng_error(std::string_view what) { return Error{400, what}; }

void write_packet_counts(bencode::Writer& w, std::string_view key, const NgPacketCounts& c) {
  w.key(key).begin_dict();
  w.entry("packets", static_cast<int64_t>(c.packets));
  w.entry("bytes", static_cast<int64_t>(c.bytes));
  w.entry("errors", static_cast<int64_t>(c.errors));
  w.end();
}

void write_relay_stats(bencode::Writer& w, const NgRelayStats& r) {
  w.key("relay").begin_dict();
  if (r.first_seq) w.entry("first seq", int64_t{*r.first_seq});
  if (r.first_forwarded_seq) w.entry("first forwarded seq", int64_t{*r.first_forwarded_seq});
  if (r.last_forwarded_seq) w.entry("last forwarded seq", int64_t{*r.last_forwarded_seq});
  w.entry("forwarded", static_cast<int64_t>(r.forwarded));
  w.entry("forwarded unlatched", static_cast<int64_t>(r.forwarded_unlatched));
  w.entry("dropped foreign", static_cast<int64_t>(r.dropped_foreign));
  w.entry("dropped no peer", static_cast<int64_t>(r.dropped_no_peer));
  w.entry("dropped malformed", static_cast<int64_t>(r.dropped_malformed));
  w.entry("send errors", static_cast<int64_t>(r.send_errors));
  w.end();
}

void write_endpoint(bencode::Writer& w, std::string_view key, const NgEndpoint& e) {
  w.key(key).begin_dict();
  w.entry("family", e.family == NgFamily::kIp6 ? "IPv6" : "IPv4");
  w.entry("address", e.address);
  w.entry("port", int64_t{e.port});
  w.end();
}

void write_string_list(bencode::Writer& w, std::string_view key, const std::vector<std::string_view>& items) {
  w.key(key).begin_list();
  for (std::string_view s : items) w.string(s);
  w.end();
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Framing

Result<NgFrame> split_ng_frame(std::string_view message) {
  size_t space = message.find(' ');
  if (space == std::string_view::npos) return ng_error("ng message without a cookie");
  if (space == 0) return ng_error("ng message with an empty cookie");
  if (space > kNgMaxCookie) return ng_error("ng cookie too long");
  std::string_view cookie = message.substr(0, space);
  if (!std::all_of(cookie.begin(), cookie.end(), is_visible_ascii)) return ng_error("ng cookie is not visible ASCII");
  return NgFrame{cookie, message.substr(space + 1)};
}

NgStreamSplitter::Frame NgStreamSplitter::fail(Error error) {
  failed_ = true;
  failure_ = error;
  return {Kind::kError, {}, failure_};
}

void NgStreamSplitter::append(std::string_view bytes) {
  if (failed_) return;  // the connection is being closed; keep nothing
  buffer_.append(bytes);
}

NgStreamSplitter::Frame NgStreamSplitter::next() {
  if (failed_) return {Kind::kError, {}, failure_};
  // The previous message's views expire now. Returned bytes are dropped once they are half the
  // buffer, so that a read holding many small messages costs O(size), not a move per message.
  // Offsets of the pending message (the scanner's included) count from its first byte, which a
  // compaction does not change.
  if (consumed_ > 0 && consumed_ >= buffer_.size() - consumed_) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  if (cookie_len_ == 0) {
    while (consumed_ < buffer_.size() && is_separator(buffer_[consumed_])) ++consumed_;
    std::string_view start = std::string_view(buffer_).substr(consumed_);
    size_t space = start.substr(0, kNgMaxCookie + 1).find(' ');
    if (space == std::string_view::npos) {
      if (start.size() > kNgMaxCookie) return fail(ng_error("ng message without a cookie"));
      return {};
    }
    auto frame = split_ng_frame(start.substr(0, space + 1));
    if (!frame) return fail(frame.error());
    if (space + 1 >= max_message_) return fail(Error{413, "ng message larger than the size limit"});
    cookie_len_ = space;
    scanner_ = bencode::Scanner(bencode::Limits{max_message_ - space - 1});
  }
  std::string_view pending = std::string_view(buffer_).substr(consumed_);
  std::string_view body = pending.substr(cookie_len_ + 1);
  bencode::Scanner::Progress p = scanner_.scan(body);
  switch (p.status) {
    case bencode::Scanner::Status::kNeedMore:
      return {};
    case bencode::Scanner::Status::kError:
      return fail(p.error);
    case bencode::Scanner::Status::kComplete:
      break;
  }
  NgFrame message{pending.substr(0, cookie_len_), body.substr(0, p.length)};
  consumed_ += cookie_len_ + 1 + p.length;
  cookie_len_ = 0;
  scanner_.reset();
  return {Kind::kMessage, message, {}};
}

// ---------------------------------------------------------------------------------------------
// Commands

std::string_view ng_command_name(NgCommandKind kind) {
  for (const auto& n : kCommandNames) {
    if (n.value == kind) return n.name;
  }
  return {};
}

Result<NgCommand> parse_ng_body(std::string_view body) {
  if (body.empty()) return ng_error("Invalid data (no payload)");
  if (body.front() == '{') return ng_error("JSON ng messages are not supported");
  auto doc = bencode::decode(body, bencode::Limits{kNgMaxMessage});
  if (!doc) return doc.error();
  return parse_ng_command(doc->root());
}

Result<NgCommand> parse_ng_command(const bencode::Value& dict) {
  if (!dict.is_dict()) return ng_error("Could not decode dictionary");
  NgCommand c;
  CommandParser parser(c);
  for (const bencode::DictEntry& e : dict.entries()) parser.apply_key(e.key, Arg{e.value, {}}, false);

  if (c.command.empty()) return ng_error("Dictionary contains no key \"command\"");
  // Command names are exact, as in rtpengine ("Offer" is not a command).
  c.kind = NgCommandKind::kOther;
  for (const auto& n : kCommandNames) {
    if (c.command == n.name) c.kind = n.value;
  }
  switch (c.kind) {
    case NgCommandKind::kOffer:
    case NgCommandKind::kAnswer:
      if (c.sdp.empty()) return ng_error("No SDP body in message");
      if (c.call_id.empty()) return ng_error("No call-id in message");
      if (c.from_tag.empty()) return ng_error("No from-tag in message");
      if (c.kind == NgCommandKind::kAnswer && c.to_tag.empty()) return ng_error("No to-tag in message");
      break;
    case NgCommandKind::kDelete:
    case NgCommandKind::kQuery:
      if (c.call_id.empty()) return ng_error("No call-id in message");
      break;
    case NgCommandKind::kPing:
    case NgCommandKind::kList:
    case NgCommandKind::kOther:
      break;
  }
  return c;
}

std::string ng_warning(const NgCommand& command) {
  std::string out;
  auto section = [&](std::string_view title, const std::vector<std::string_view>& names) {
    if (names.empty()) return;
    if (!out.empty()) out += "; ";
    out += title;
    for (size_t i = 0; i < names.size(); ++i) {
      out += i == 0 ? ": " : ", ";
      for (char ch : names[i]) out.push_back(is_visible_ascii(ch) || ch == ' ' ? ch : '?');
    }
  };
  section("Unknown flags", command.unknown_flags);
  section("unknown keys", command.unknown_keys);
  section("unusable values for keys", command.invalid_keys);
  section("conflicting values for keys (last used)", command.conflicting_keys);
  if (out.size() > kNgMaxWarning) {
    out.resize(kNgMaxWarning - 3);
    out += "...";
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Replies

void write_ng_call_stats(bencode::Writer& w, const NgCallStats& stats) {
  w.entry("created", stats.created);
  w.entry("last signal", stats.last_signal);
  w.key("tags").begin_dict();
  for (const NgTagStats& tag : stats.tags) {
    w.key(tag.tag).begin_dict();
    w.entry("tag", tag.tag);
    w.entry("created", tag.created);
    if (!tag.label.empty()) w.entry("label", tag.label);
    if (!tag.in_dialogue_with.empty()) w.entry("in dialogue with", tag.in_dialogue_with);
    w.key("medias").begin_list();
    for (const NgMediaStats& media : tag.medias) {
      w.begin_dict();
      w.entry("index", media.index);
      w.entry("type", media.type);
      w.entry("protocol", media.protocol);
      write_string_list(w, "flags", media.flags);
      w.key("streams").begin_list();
      for (const NgStreamStats& stream : media.streams) {
        w.begin_dict();
        if (stream.local_port) w.entry("local port", int64_t{*stream.local_port});
        if (stream.endpoint) write_endpoint(w, "endpoint", *stream.endpoint);
        if (stream.advertised_endpoint) write_endpoint(w, "advertised endpoint", *stream.advertised_endpoint);
        if (stream.last_packet) w.entry("last packet", *stream.last_packet);
        write_string_list(w, "flags", stream.flags);
        write_packet_counts(w, "stats", stream.stats);
        if (stream.relay) write_relay_stats(w, *stream.relay);
        w.end();
      }
      w.end();  // streams
      w.end();  // media
    }
    w.end();  // medias
    w.end();  // tag
  }
  w.end();  // tags
  w.key("totals").begin_dict();
  write_packet_counts(w, "RTP", stats.rtp_totals);
  write_packet_counts(w, "RTCP", stats.rtcp_totals);
  w.end();
}

void encode_ng_reply(std::string& out, std::string_view cookie, const NgReply& reply) {
  out.append(cookie);
  out.push_back(' ');
  bencode::Writer w(out);
  w.begin_dict();
  switch (reply.result) {
    case NgResult::kError:
      w.entry("result", "error");
      w.entry("error-reason", reply.error_reason);
      w.end();
      return;
    case NgResult::kLoadLimit:
      w.entry("result", "load limit");
      if (!reply.message.empty()) w.entry("message", reply.message);
      w.end();
      return;
    case NgResult::kPong:
      w.entry("result", "pong");
      break;
    case NgResult::kOk:
      w.entry("result", "ok");
      break;
  }
  if (!reply.warning.empty()) w.entry("warning", reply.warning);
  if (!reply.sdp.empty()) w.entry("sdp", reply.sdp);
  if (reply.call_ids != nullptr) write_string_list(w, "calls", *reply.call_ids);
  if (reply.stats != nullptr) write_ng_call_stats(w, *reply.stats);
  w.end();
}

std::string encode_ng_reply(std::string_view cookie, const NgReply& reply) {
  std::string out;
  out.reserve(cookie.size() + 64 + reply.sdp.size());
  encode_ng_reply(out, cookie, reply);
  return out;
}

}  // namespace pinhole::media
