// Parameters: header parameters (`;name=value` with LWS, RFC 3261 generic-param) and URI
// parameters (`;name=value`, no LWS, paramchar with %-escapes).
//
// Parsed structures keep the raw parameter text (a view starting at the first ';') and look a
// parameter up by scanning it again: parameter lists are short, and this keeps every parsed
// header a fixed-size struct with no allocation.
#pragma once

#include <optional>
#include <string_view>

#include "common/result.h"
#include "sip/scanner.h"

namespace pinhole::sip {

struct Param {
  std::string_view name;
  std::string_view value;  // without quotes when quoted; empty when there is no value
  bool has_value = false;
  bool quoted = false;
};

// Reads one `generic-param` (after the SEMI) at the scanner. Value: token, host (IPv4, IPv6
// with or without brackets) or quoted-string.
Result<Param> parse_header_param(Scanner& s);

namespace detail {
// parse_header_param filling `p` (default-constructed) in place: inline, because it runs for
// every parameter of every Via, From, To and Contact, and building a Result<Param> for each cost
// more than reading it.
inline Status read_header_param(Scanner& s, Param& p) {
  p.name = s.token();
  if (p.name.empty()) return bad_request("empty or malformed header parameter");
  size_t save = s.pos();
  s.skip_lws();
  if (!s.consume('=')) {
    s.set_pos(save);
    return Status::Ok();
  }
  s.skip_lws();
  p.has_value = true;
  if (s.peek() == '"') {
    auto q = s.quoted_string();
    if (!q) return q.error();
    p.value = *q;
    p.quoted = true;
    return Status::Ok();
  }
  p.value = s.take_long_class(kTokenOrColonBracket);  // tags and branches: 10 to 30 characters
  if (p.value.empty()) return bad_request("header parameter without value after '='");
  return Status::Ok();
}
}  // namespace detail

// Parses *( SEMI generic-param ) and calls on_param(const Param&) for each; stops (without
// consuming) before anything that is not SWS ";" — normally "," or the end of the value.
// on_param returns Status; an error stops the parse.
template <typename OnParam>
Status parse_header_params(Scanner& s, OnParam&& on_param) {
  for (;;) {
    size_t save = s.pos();
    s.skip_lws();
    if (!s.consume(';')) {
      s.set_pos(save);
      return Status::Ok();
    }
    s.skip_lws();
    Param p;
    PINHOLE_TRY(detail::read_header_param(s, p));
    PINHOLE_TRY(on_param(p));
  }
}

// Finds a header parameter by name (case-insensitive) in raw text produced by the parsers above.
std::optional<Param> find_header_param(std::string_view raw_params, std::string_view name);

// URI parameters: validates `*( ";" pname [ "=" pvalue ] )` (leading ';' included).
Status validate_uri_params(std::string_view raw_params);

// Finds a URI parameter by name (case-insensitive). Values stay escaped as written.
std::optional<Param> find_uri_param(std::string_view raw_params, std::string_view name);

// Calls f(const Param&) for every URI parameter in order.
template <typename F>
void for_each_uri_param(std::string_view raw, F&& f) {
  size_t i = 0;
  while (i < raw.size()) {
    if (raw[i] == ';') ++i;
    size_t end = raw.find(';', i);
    if (end == std::string_view::npos) end = raw.size();
    std::string_view item = raw.substr(i, end - i);
    Param p;
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      p.name = item;
    } else {
      p.name = item.substr(0, eq);
      p.value = item.substr(eq + 1);
      p.has_value = true;
    }
    if (!p.name.empty()) f(p);
    i = end;
  }
}

}  // namespace pinhole::sip
