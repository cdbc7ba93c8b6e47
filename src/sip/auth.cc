#include "sip/auth.h"

#include "sip/charset.h"
#include "sip/scanner.h"

namespace pinhole::sip {
namespace {

// Some UAs leave digest values unquoted ("uri=sip:x@y"); accept any run up to ',' or LWS.
bool is_unquoted_auth_value_char(char c) {
  return c != ',' && c != ' ' && c != '\t' && c != '\r' && c != '\n' && c != '"';
}

void store(AuthParams& a, std::string_view name, std::string_view value) {
  struct Field {
    std::string_view name;
    std::string_view AuthParams::*member;
  };
  static constexpr Field kFields[] = {
      {"username", &AuthParams::username}, {"realm", &AuthParams::realm},
      {"nonce", &AuthParams::nonce},       {"uri", &AuthParams::uri},
      {"response", &AuthParams::response}, {"algorithm", &AuthParams::algorithm},
      {"cnonce", &AuthParams::cnonce},     {"opaque", &AuthParams::opaque},
      {"qop", &AuthParams::qop},           {"nc", &AuthParams::nc},
      {"domain", &AuthParams::domain},     {"stale", &AuthParams::stale},
  };
  for (const auto& f : kFields)
    if (iequals(f.name, name)) {
      a.*(f.member) = value;
      return;
    }
}

}  // namespace

bool AuthParams::is_digest() const { return iequals(scheme, "Digest"); }

Result<AuthParams> parse_auth(std::string_view value) {
  AuthParams a;
  Scanner s(value);
  s.skip_lws();
  a.scheme = s.token();
  if (a.scheme.empty()) return bad_request("malformed authorization scheme");
  if (!s.skip_lws()) return s.at_end() ? Result<AuthParams>(a) : bad_request("malformed authorization");
  a.params = s.rest();
  for (;;) {
    auto name = s.token();
    if (name.empty()) return bad_request("malformed auth-param");
    if (!s.consume_separator('=')) return bad_request("auth-param without value");
    std::string_view v;
    if (s.peek() == '"') {
      auto q = s.quoted_string();
      if (!q) return q.error();
      v = *q;
    } else {
      v = s.take_while(is_unquoted_auth_value_char);
      if (v.empty()) return bad_request("empty auth-param value");
    }
    store(a, name, v);
    s.skip_lws();
    if (s.at_end()) return a;
    if (!s.consume(',')) return bad_request("malformed auth-param list");
    s.skip_lws();
  }
}

}  // namespace pinhole::sip
