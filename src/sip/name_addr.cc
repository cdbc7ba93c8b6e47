#include "sip/name_addr.h"

namespace pinhole::sip {
namespace {

// addr-spec written without brackets ends where header parameters, the next value or
// white space begin.
bool is_addr_spec_char(char c) { return c != ';' && c != ',' && c != ' ' && c != '\t' && c != '\r' && c != '\n'; }

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

// parse_name_addr_into, calling on_param(const Param&) for each header parameter as it is read
// (Contact picks its own out of them in the same pass).
template <typename OnParam>
Status parse_name_addr_with(Scanner& s, NameAddr& na, bool require_brackets, OnParam&& on_param) {
  s.skip_lws();
  size_t start = s.pos();
  bool is_name_addr = false;
  PINHOLE_TRY(parse_display_then_bracket(s, na, start, is_name_addr));
  std::string_view uri_text;
  if (is_name_addr) {
    s.consume('<');
    size_t uri_start = s.pos();
    na.bracketed = true;
    // The common URI in one pass: it ends at the first '>' (see parse_plain_uri_prefix).
    std::string_view after = s.text().substr(uri_start);
    size_t length = parse_plain_uri_prefix(after, na.uri);
    if (length < after.size() && after[length] == '>') {
      s.set_pos(uri_start + length + 1);
    } else {
      size_t close = s.text().find('>', uri_start);
      if (close == std::string_view::npos) return bad_request("missing '>' after URI");
      uri_text = s.text().substr(uri_start, close - uri_start);
      s.set_pos(close + 1);
      PINHOLE_TRY(parse_uri_into(uri_text, na.uri));
    }
  } else {
    if (require_brackets) return bad_request("URI must be enclosed in <>");
    uri_text = s.take_while(is_addr_spec_char);
    // RFC 3261 §20: a URI holding ',', ';' or '?' must be in brackets (RFC 4475 regbadct).
    if (uri_text.find('?') != std::string_view::npos) return bad_request("URI with headers must be enclosed in <>");
    PINHOLE_TRY(parse_uri_into(uri_text, na.uri));
  }
  size_t params_start = s.pos();
  size_t params_begin = std::string_view::npos;
  PINHOLE_TRY(parse_header_params(s, [&](const Param& p) -> Status {
    if (params_begin == std::string_view::npos) params_begin = params_start;
    // First occurrence wins, as in param() and the Editor (a duplicate must not let the tag the
    // proxy matches on differ from the one it would rewrite).
    if (!na.has_tag && iequals(p.name, "tag")) {
      na.tag = p.value;
      na.has_tag = true;
    }
    on_param(p);
    return Status::Ok();
  }));
  if (params_begin != std::string_view::npos) na.params = trim_lws(s.slice_unchecked(params_begin));
  na.raw = s.slice_unchecked(start);
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
  return detail::parse_name_addr_fresh(s, na, require_brackets);
}

Status detail::parse_name_addr_fresh(Scanner& s, NameAddr& na, bool require_brackets) {
  return parse_name_addr_with(s, na, require_brackets, [](const Param&) {});
}

Result<Contact> parse_contact(Scanner& s) {
  Contact c;
  PINHOLE_TRY(parse_contact_into(s, c));
  return c;
}

Status parse_contact_into(Scanner& s, Contact& c) {
  c = Contact{};
  return detail::parse_contact_fresh(s, c);
}

Status detail::parse_contact_fresh(Scanner& s, Contact& c) {
  s.skip_lws();
  if (s.peek() == '*') {
    size_t start = s.pos();
    s.advance();
    c.star = true;
    c.raw = s.slice(start);
    return Status::Ok();
  }
  // The parameters the registrar needs, picked as they are read; a later occurrence replaces an
  // earlier one. Should the name-addr turn out malformed after some were picked, the caller
  // discards the whole Contact.
  return parse_name_addr_with(s, c, /*require_brackets=*/false, [&](const Param& p) {
    if (iequals(p.name, "expires"))
      c.expires = p.value;
    else if (iequals(p.name, "q"))
      c.q = p.value;
    else if (iequals(p.name, "+sip.instance"))
      c.instance = p.value;
    else if (iequals(p.name, "reg-id"))
      c.reg_id = p.value;
  });
}

Result<NameAddr> parse_single_name_addr(std::string_view value) {
  NameAddr na;
  PINHOLE_TRY(parse_single_name_addr_into(value, na));
  return na;
}

Status parse_single_name_addr_into(std::string_view value, NameAddr& na) {
  na = NameAddr{};
  return detail::parse_single_name_addr_fresh(value, na);
}

Status detail::parse_single_name_addr_fresh(std::string_view value, NameAddr& na) {
  Scanner s(value);
  PINHOLE_TRY(parse_name_addr_fresh(s, na, /*require_brackets=*/false));
  s.skip_lws();
  if (!s.at_end()) return bad_request("unexpected text after address");
  return Status::Ok();
}

}  // namespace pinhole::sip
