#include "sip/via.h"

namespace pinhole::sip {
namespace {

// A parameter written twice counts by its FIRST occurrence (later ones are still validated), as
// in Via::param() and in Editor::set_via_param, which rewrites the first. With the last winning,
// a client's ";received=A;received=B" became ";received=<source>;received=B" after the edge's
// RFC 3581 fix and read back as B: responses went wherever the client chose (found by
// fuzz_sip_message; seed tests/fuzz/seeds/fuzz_sip_message/via_duplicate_received_rport.sip).
Status apply_via_param(Via& v, const Param& p) {
  if (iequals(p.name, "branch")) {
    if (!p.has_value || p.quoted || !is_token(p.value)) return bad_request("malformed Via branch");
    if (!v.has_branch) v.branch = p.value;
    v.has_branch = true;
  } else if (iequals(p.name, "received")) {
    if (!p.has_value || !is_ip_address(p.value)) return bad_request("malformed Via received");
    if (!v.has_received) v.received = p.value;
    v.has_received = true;
  } else if (iequals(p.name, "rport")) {
    if (p.has_value) {
      auto port = parse_port(p.value);
      if (!port) return bad_request("malformed Via rport");
      if (!v.has_rport) v.rport_value = p.value;
    }
    v.has_rport = true;
  } else if (iequals(p.name, "maddr")) {
    if (!p.has_value || !classify_host(p.value)) return bad_request("malformed Via maddr");
    if (v.maddr.empty()) v.maddr = p.value;
  } else if (iequals(p.name, "ttl")) {
    auto ttl = parse_port(p.value);  // 1*3DIGIT, 0-255
    if (!p.has_value || !ttl || *ttl > 255) return bad_request("malformed Via ttl");
    if (v.ttl.empty()) v.ttl = p.value;
  } else if (iequals(p.name, "alias")) {
    v.alias = true;
  }
  return Status::Ok();
}

// The sent-protocol and sent-by nearly every Via has: "SIP/2.0/" transport SP host [":" port],
// followed by ';', ',' or the end, read in one pass. Returns false, having changed nothing, on
// anything else (other spelling or LWS, IPv6, a malformed host or port...), which the general
// code below then reads. Where it returns true the general code finds the same parts: the token
// scans stop at the same '/' and SP; sent-by, taken as host characters, ':' and digits, ends
// before the ';', ',' or end that must follow here; with a port there is no LWS case to handle
// (the last character is a digit), without one the optional "SWS : port" is not there; the host
// is classified as classify_host does and the port read by parse_port.
bool parse_plain_sent_by(Scanner& s, Via& v) {
  static constexpr std::string_view kSip20 = "SIP/2.0/";
  std::string_view t = s.text();
  const size_t p = s.pos();
  if (t.size() - p < kSip20.size() || t.substr(p, kSip20.size()) != kSip20) return false;
  size_t transport = class_run(t, p + kSip20.size(), kTokenChars);
  size_t host_start = p + kSip20.size() + transport + 1;
  if (transport == 0 || host_start > t.size() || t[host_start - 1] != ' ') return false;
  HostRun host = scan_host_run(t, host_start);
  if (!host.kind) return false;
  size_t end = host_start + host.length;
  std::string_view port_text;
  uint16_t port = 0;
  if (end < t.size() && t[end] == ':') {
    port_text = t.substr(end + 1, class_run(t, end + 1, kDigit));
    auto parsed = parse_port(port_text);
    if (!parsed) return false;
    port = *parsed;
    end += 1 + port_text.size();
  }
  if (end < t.size() && t[end] != ';' && t[end] != ',') return false;
  v.protocol_name = t.substr(p, 3);
  v.protocol_version = t.substr(p + 4, 3);
  v.transport = t.substr(p + kSip20.size(), transport);
  v.host = t.substr(host_start, host.length);
  v.host_kind = *host.kind;
  v.port_text = port_text;
  v.port = port;
  s.set_pos(end);
  return true;
}

// The general sent-protocol and sent-by, LWS wherever the grammar allows it.
Status parse_sent_by(Scanner& s, Via& v) {
  v.protocol_name = s.token();
  if (v.protocol_name.empty() || !s.consume_separator('/')) return bad_request("malformed Via protocol");
  v.protocol_version = s.token();
  if (v.protocol_version.empty() || !s.consume_separator('/')) return bad_request("malformed Via protocol");
  v.transport = s.token();
  if (v.transport.empty()) return bad_request("malformed Via transport");
  if (!s.skip_lws()) return bad_request("missing space before Via sent-by");
  std::string_view sent_by = s.take_class(kHostChar | kColonBracket);
  // COLON may carry LWS around it ("host : 5060").
  size_t save = s.pos();
  // An IPv6 reference holds ':' itself, so "[::1] : 5060" is recognised by its closing ']'.
  bool port_follows_lws =
      sent_by.find(':') == std::string_view::npos || (sent_by.front() == '[' && sent_by.back() == ']');
  // "host: 5060": the colon was taken with the host, the LWS after it stops before the port.
  bool port_after_colon_lws = !sent_by.empty() && sent_by.back() == ':';
  if ((port_follows_lws && s.consume_separator(':')) || (port_after_colon_lws && s.skip_lws())) {
    auto port = s.take_class(kDigit);
    if (port.empty()) {
      s.set_pos(save);
    } else {
      sent_by = s.text().substr(static_cast<size_t>(sent_by.data() - s.text().data()),
                                static_cast<size_t>(port.data() + port.size() - sent_by.data()));
    }
  }
  // Normalise "host : port" into host and port views.
  std::string_view host_text = sent_by, port_text;
  if (!sent_by.empty() && sent_by.front() != '[') {
    size_t colon = sent_by.find(':');
    if (colon != std::string_view::npos) {
      host_text = trim_lws(sent_by.substr(0, colon));
      port_text = trim_lws(sent_by.substr(colon + 1));
    }
  } else if (!sent_by.empty()) {
    size_t close = sent_by.find(']');
    host_text = sent_by.substr(0, close == std::string_view::npos ? sent_by.size() : close + 1);
    if (close != std::string_view::npos && close + 1 < sent_by.size()) {
      std::string_view colon_port = trim_lws(sent_by.substr(close + 1));  // LWS kept by the COLON above
      if (colon_port.empty() || colon_port.front() != ':') return bad_request("malformed Via sent-by");
      port_text = trim_lws(colon_port.substr(1));
    }
  }
  auto kind = classify_host(host_text);
  if (!kind) return bad_request("malformed Via host");
  v.host = host_text;
  v.host_kind = *kind;
  if (!port_text.empty() || (sent_by.size() > host_text.size())) {
    auto port = parse_port(port_text);
    if (!port) return bad_request("malformed Via port");
    v.port_text = port_text;
    v.port = *port;
  }
  return Status::Ok();
}

}  // namespace

Result<Via> parse_via(Scanner& s) {
  Via v;
  PINHOLE_TRY(parse_via_into(s, v));
  return v;
}

Status parse_via_into(Scanner& s, Via& v) {
  v = Via{};
  return detail::parse_via_fresh(s, v);
}

Status detail::parse_via_fresh(Scanner& s, Via& v) {
  s.skip_lws();
  size_t start = s.pos();
  if (!parse_plain_sent_by(s, v)) PINHOLE_TRY(parse_sent_by(s, v));
  size_t params_start = s.pos();
  bool any = false;
  PINHOLE_TRY(parse_header_params(s, [&](const Param& p) -> Status {
    any = true;
    return apply_via_param(v, p);
  }));
  if (any) v.params = trim_lws(s.slice_unchecked(params_start));
  v.raw = s.slice_unchecked(start);
  return Status::Ok();
}

}  // namespace pinhole::sip
