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
  return is_unreserved(c) || c == ';' || c == '/' || c == '?' || c == ':' || c == '@' || c == '&' || c == '=' ||
         c == '+' || c == '$' || c == ',' || c == '[' || c == ']';
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

// The sip/sips URI nearly every message carries: [user "@"] host [":" port] *(";" pname ["="
// pvalue]), without escapes, password, IPv6 reference or headers, parsed in one forward pass
// instead of parse_sip_uri's searches and re-scans. The part after the scheme's ':' starts at
// `rest_start`; the URI ends at the first character that cannot continue it. Returns where it
// ends, or npos (leaving `u` untouched) when it is not of this form or is refused: the general
// parser then decides.
// Parsing a text that ends exactly where the plain URI ends gives the parts parse_sip_uri would:
// - no character of the user, host, port or parameter classes is '@', '?' or '>', so an '@'
//   found here is the first one in the text, with none found there is none at all (and no
//   headers), and a name-addr's URI ends at the first '>' just as parse_name_addr_into cuts it;
// - the user class has no ':' (no password); host characters and digits have no ':' or ';', so
//   the host ends at the first ':' or ';', and the parameters begin at the first ';';
// - the host (scan_host_run: classify_host's answer), port and each parameter are checked with
//   the same rules, only without escapes.
size_t parse_plain_sip_uri(std::string_view text, UriScheme scheme, size_t rest_start, Uri& u) {
  constexpr size_t kNo = std::string_view::npos;
  const size_t n = text.size();
  size_t user_end = rest_start + class_run(text, rest_start, kUserChars);
  size_t host_start = rest_start;
  if (user_end < n && text[user_end] == '@') {
    if (user_end == rest_start) return kNo;
    host_start = user_end + 1;
  }
  HostRun host = scan_host_run(text, host_start);  // may look at the scheme too, never outside
  if (!host.kind) return kNo;
  size_t i = host_start + host.length;
  std::string_view port_text;
  uint16_t port = 0;
  if (i < n && text[i] == ':') {
    port_text = text.substr(i + 1, class_run(text, i + 1, kDigit));
    auto p = parse_port(port_text);
    if (!p) return kNo;
    port = *p;
    i += 1 + port_text.size();
  }
  const size_t params_start = i;
  while (i < n && text[i] == ';') {
    size_t name = class_run(text, i + 1, kParamChars);
    if (name == 0) return kNo;
    i += 1 + name;
    if (i < n && text[i] == '=') {
      size_t value = class_run(text, i + 1, kParamChars);
      if (value == 0) return kNo;
      i += 1 + value;
    }
  }
  // Every field written (no reset of the whole struct first); views left empty stay null views,
  // as parse_sip_uri leaves them.
  const bool has_user = host_start > rest_start;
  const size_t scheme_end = rest_start - 1;  // the ':'
  u = Uri{
      .scheme = scheme,
      .raw = text.substr(0, i),
      .scheme_text = text.substr(0, scheme_end),
      .user = has_user ? text.substr(rest_start, user_end - rest_start) : std::string_view{},
      .password = {},
      .has_user = has_user,
      .has_password = false,
      .host = text.substr(host_start, host.length),
      .host_kind = *host.kind,
      .port_text = port_text,
      .port = port,
      .params = i > params_start ? text.substr(params_start, i - params_start) : std::string_view{},
      .headers = {},
      .opaque = {},
  };
  return i;
}

// Scheme of a URI starting "sip:" or "sips:" (any case) and the length of that prefix; 0 for
// any other text. The general path finds the same: the first ':' ends the scheme.
size_t sip_scheme_prefix(std::string_view text, UriScheme& scheme) {
  if (text.size() < 4 || !iequals(text.substr(0, 3), "sip")) return 0;
  if (text[3] == ':') {
    scheme = UriScheme::kSip;
    return 4;
  }
  if (text.size() >= 5 && ascii_lower(text[3]) == 's' && text[4] == ':') {
    scheme = UriScheme::kSips;
    return 5;
  }
  return 0;
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

size_t parse_plain_uri_prefix(std::string_view text, Uri& u) {
  UriScheme scheme = UriScheme::kOther;
  size_t prefix = sip_scheme_prefix(text, scheme);
  if (prefix == 0) return std::string_view::npos;
  return parse_plain_sip_uri(text, scheme, prefix, u);
}

Result<Uri> parse_uri(std::string_view text) {
  Uri u;
  PINHOLE_TRY(parse_uri_into(text, u));
  return u;
}

Status parse_uri_into(std::string_view text, Uri& u) {
  if (parse_plain_uri_prefix(text, u) == text.size()) return Status::Ok();
  u = Uri{};
  u.raw = text;
  size_t colon = text.find(':');
  if (colon == std::string_view::npos) return bad_request("URI without scheme");
  u.scheme_text = text.substr(0, colon);
  if (!is_scheme(u.scheme_text)) return bad_request("malformed URI scheme");
  std::string_view rest = text.substr(colon + 1);
  if (iequals(u.scheme_text, "sip"))
    u.scheme = UriScheme::kSip;
  else if (iequals(u.scheme_text, "sips"))
    u.scheme = UriScheme::kSips;
  else if (iequals(u.scheme_text, "tel"))
    u.scheme = UriScheme::kTel;
  else
    u.scheme = UriScheme::kOther;

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
