#include "sip/name_addr.h"

namespace pinhole::sip {
namespace {

// addr-spec written without brackets ends where header parameters, the next value or
// white space begin.
bool is_addr_spec_char(char c) {
  return c != ';' && c != ',' && c != ' ' && c != '\t' && c != '\r' && c != '\n';
}

Status parse_display_then_bracket(Scanner& s, NameAddr& na, size_t start, bool& is_name_addr) {
  if (s.peek() == '"') {
    auto q = s.quoted_string();
    if (!q) return q.error();
    na.display_name = *q;
    na.display_quoted = true;
    s.skip_lws();
    if (s.peek() != '<') return bad_request("quoted display name not followed by <");
    is_name_addr = true;
    return Status::Ok();
  }
  if (s.peek() == '<') {
    is_name_addr = true;
    return Status::Ok();
  }
  // *(token LWS) followed by '<' is a display name; otherwise this is an addr-spec.
  size_t last_token_end = start;
  for (;;) {
    auto tok = s.token();
    if (tok.empty()) break;
    last_token_end = s.pos();
    s.skip_lws();
  }
  if (s.peek() == '<' && last_token_end != start) {
    na.display_name = s.text().substr(start, last_token_end - start);
    is_name_addr = true;
    return Status::Ok();
  }
  s.set_pos(start);
  is_name_addr = false;
  return Status::Ok();
}

}  // namespace

Result<NameAddr> parse_name_addr(Scanner& s, bool require_brackets) {
  NameAddr na;
  PINHOLE_TRY(parse_name_addr_into(s, na, require_brackets));
  return na;
}

Status parse_name_addr_into(Scanner& s, NameAddr& na, bool require_brackets) {
  na = NameAddr{};
  s.skip_lws();
  size_t start = s.pos();
  bool is_name_addr = false;
  PINHOLE_TRY(parse_display_then_bracket(s, na, start, is_name_addr));
  std::string_view uri_text;
  if (is_name_addr) {
    s.consume('<');
    size_t uri_start = s.pos();
    size_t close = s.text().find('>', uri_start);
    if (close == std::string_view::npos) return bad_request("missing '>' after URI");
    uri_text = s.text().substr(uri_start, close - uri_start);
    s.set_pos(close + 1);
    na.bracketed = true;
  } else {
    if (require_brackets) return bad_request("URI must be enclosed in <>");
    uri_text = s.take_while(is_addr_spec_char);
    // RFC 3261 §20: a URI holding ',', ';' or '?' must be in brackets (RFC 4475 regbadct).
    if (uri_text.find('?') != std::string_view::npos) return bad_request("URI with headers must be enclosed in <>");
  }
  PINHOLE_TRY(parse_uri_into(uri_text, na.uri));
  size_t params_start = s.pos();
  size_t params_begin = std::string_view::npos;
  PINHOLE_TRY(parse_header_params(s, [&](const Param& p) -> Status {
    if (params_begin == std::string_view::npos) params_begin = params_start;
    if (iequals(p.name, "tag")) {
      na.tag = p.value;
      na.has_tag = true;
    }
    return Status::Ok();
  }));
  if (params_begin != std::string_view::npos) na.params = trim_lws(s.slice(params_begin));
  na.raw = s.slice(start);
  return Status::Ok();
}

Result<Contact> parse_contact(Scanner& s) {
  Contact c;
  PINHOLE_TRY(parse_contact_into(s, c));
  return c;
}

Status parse_contact_into(Scanner& s, Contact& c) {
  c = Contact{};
  s.skip_lws();
  if (s.peek() == '*') {
    size_t start = s.pos();
    s.advance();
    c.star = true;
    c.raw = s.slice(start);
    return Status::Ok();
  }
  PINHOLE_TRY(parse_name_addr_into(s, c));
  // Pick the parameters the registrar needs out of the already validated parameter text.
  Scanner ps(c.params);
  (void)parse_header_params(ps, [&](const Param& p) -> Status {
    if (iequals(p.name, "expires")) c.expires = p.value;
    else if (iequals(p.name, "q")) c.q = p.value;
    else if (iequals(p.name, "+sip.instance")) c.instance = p.value;
    else if (iequals(p.name, "reg-id")) c.reg_id = p.value;
    return Status::Ok();
  });
  return Status::Ok();
}

Result<NameAddr> parse_single_name_addr(std::string_view value) {
  NameAddr na;
  PINHOLE_TRY(parse_single_name_addr_into(value, na));
  return na;
}

Status parse_single_name_addr_into(std::string_view value, NameAddr& na) {
  Scanner s(value);
  PINHOLE_TRY(parse_name_addr_into(s, na));
  s.skip_lws();
  if (!s.at_end()) return bad_request("unexpected text after address");
  return Status::Ok();
}

Result<uint32_t> parse_delta_seconds(std::string_view digits) {
  if (digits.empty()) return bad_request("empty number");
  uint64_t v = 0;
  for (char c : digits) {
    if (!is_digit(c)) return bad_request("malformed number");
    v = v * 10 + static_cast<uint64_t>(c - '0');
    if (v > 0xffffffffULL) return bad_request("number out of range");
  }
  return static_cast<uint32_t>(v);
}

}  // namespace pinhole::sip
