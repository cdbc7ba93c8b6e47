#include "sip/uri.h"

#include "sip/charset.h"

namespace pinhole::sip {
namespace {

bool is_scheme(std::string_view s) {
  if (s.empty()) return false;
  char f = s.front();
  if (!((f >= 'a' && f <= 'z') || (f >= 'A' && f <= 'Z'))) return false;
  for (char c : s)
    if (!is_alnum(c) && c != '+' && c != '-' && c != '.') return false;
  return true;
}

// uric = reserved / unreserved / escaped, plus brackets for IPv6 authorities.
bool is_uric(char c) {
  return is_unreserved(c) || c == ';' || c == '/' || c == '?' || c == ':' || c == '@' || c == '&' ||
         c == '=' || c == '+' || c == '$' || c == ',' || c == '[' || c == ']';
}

Status validate_uri_headers(std::string_view h) {
  if (h.empty()) return bad_request("empty URI headers");
  size_t i = 0;
  for (;;) {
    size_t end = h.find('&', i);
    if (end == std::string_view::npos) end = h.size();
    std::string_view item = h.substr(i, end - i);
    size_t eq = item.find('=');
    if (eq == std::string_view::npos) return bad_request("URI header without '='");
    std::string_view name = item.substr(0, eq), value = item.substr(eq + 1);
    if (name.empty() || !all_chars_in(name, kHeaderChars, true) || !all_chars_in(value, kHeaderChars, true))
      return bad_request("malformed URI header");
    if (end == h.size()) return Status::Ok();
    i = end + 1;
  }
}

Status parse_sip_uri(std::string_view rest, Uri& u) {
  // '@' cannot appear unescaped in hostport, parameters or headers, so the first one ends userinfo.
  size_t at = rest.find('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = rest.substr(0, at);
    size_t colon = userinfo.find(':');
    u.user = userinfo.substr(0, colon);
    u.has_user = true;
    if (u.user.empty() || !all_chars_in(u.user, kUserChars, true)) return bad_request("malformed URI user");
    if (colon != std::string_view::npos) {
      u.password = userinfo.substr(colon + 1);
      u.has_password = true;
      if (!all_chars_in(u.password, kPasswordChars, true)) return bad_request("malformed URI password");
    }
    rest.remove_prefix(at + 1);
  }
  size_t q = rest.find('?');
  if (q != std::string_view::npos) {
    u.headers = rest.substr(q + 1);
    PINHOLE_TRY(validate_uri_headers(u.headers));
    rest = rest.substr(0, q);
  }
  // The host part ends at ';' (an IPv6 reference holds ':' but never ';').
  size_t semi = rest.find(';');
  std::string_view hostport = rest.substr(0, semi);
  if (semi != std::string_view::npos) {
    u.params = rest.substr(semi);
    PINHOLE_TRY(validate_uri_params(u.params));
  }
  auto hp = parse_host_port(hostport);
  if (!hp) return hp.error();
  u.host = hp->host;
  u.host_kind = hp->kind;
  u.port_text = hp->port_text;
  u.port = hp->port;
  return Status::Ok();
}

// tel: telephone-subscriber (RFC 3966): number, then ;params. Validated loosely: visible digits,
// visual separators and hex for local numbers; parameters as URI parameters.
Status parse_tel_uri(std::string_view rest, Uri& u) {
  size_t semi = rest.find(';');
  u.user = rest.substr(0, semi);
  u.has_user = true;
  if (u.user.empty()) return bad_request("empty tel number");
  for (char c : u.user)
    if (!is_hex(c) && c != '+' && c != '-' && c != '.' && c != '(' && c != ')' && c != '*' && c != '#')
      return bad_request("malformed tel number");
  if (semi != std::string_view::npos) {
    u.params = rest.substr(semi);
    PINHOLE_TRY(validate_uri_params(u.params));
  }
  return Status::Ok();
}

}  // namespace

std::string_view Uri::transport() const {
  auto p = param("transport");
  return p ? p->value : std::string_view{};
}

Result<Uri> parse_uri(std::string_view text) {
  Uri u;
  PINHOLE_TRY(parse_uri_into(text, u));
  return u;
}

Status parse_uri_into(std::string_view text, Uri& u) {
  u = Uri{};
  u.raw = text;
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) return bad_request("URI without scheme");
  u.scheme_text = text.substr(0, colon);
  if (!is_scheme(u.scheme_text)) return bad_request("malformed URI scheme");
  std::string_view rest = text.substr(colon + 1);
  if (iequals(u.scheme_text, "sip")) u.scheme = UriScheme::kSip;
  else if (iequals(u.scheme_text, "sips")) u.scheme = UriScheme::kSips;
  else if (iequals(u.scheme_text, "tel")) u.scheme = UriScheme::kTel;
  else u.scheme = UriScheme::kOther;

  switch (u.scheme) {
    case UriScheme::kSip:
    case UriScheme::kSips:
      PINHOLE_TRY(parse_sip_uri(rest, u));
      break;
    case UriScheme::kTel:
      PINHOLE_TRY(parse_tel_uri(rest, u));
      break;
    case UriScheme::kOther:
      if (rest.empty() || !all_chars(rest, is_uric, true)) return bad_request("malformed URI");
      u.opaque = rest;
      break;
  }
  return Status::Ok();
}

std::string unescape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && is_hex(text[i + 1]) && is_hex(text[i + 2])) {
      out.push_back(static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2])));
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

}  // namespace pinhole::sip
