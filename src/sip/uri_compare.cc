// URI equality, RFC 3261 §19.1.4 (sip/sips) and RFC 3966 §4 (tel).
#include <optional>
#include <string>

#include "sip/charset.h"
#include "sip/uri.h"

namespace pinhole::sip {
namespace {

// RFC 3261 §19.1.4: "Characters other than those in the 'reserved' set (see RFC 2396) are
// equivalent to their '"%" HEX HEX' encoding." So only escapes of other characters are decoded:
// an escaped reserved character ("%3B", data) must not compare equal to the literal one (";", a
// delimiter). Kept escapes are upper-cased so "%3b" equals "%3B".
std::string canonical(std::string_view text) {
  constexpr std::string_view kReserved = ";/?:@&=+$,";
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && is_hex(text[i + 1]) && is_hex(text[i + 2])) {
      char c = static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      if (kReserved.find(c) == std::string_view::npos) {
        out.push_back(c);
      } else {
        for (char h : {'%', text[i + 1], text[i + 2]}) out.push_back(h >= 'a' && h <= 'f' ? static_cast<char>(h - 32) : h);
      }
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

bool iequals_unescaped(std::string_view a, std::string_view b) { return iequals(canonical(a), canonical(b)); }

// Parameters that, present in one URI, must be present with the same value in the other.
bool is_must_match_param(std::string_view name) {
  return iequals(name, "user") || iequals(name, "ttl") || iequals(name, "method") || iequals(name, "maddr") ||
         iequals(name, "transport");
}

// Finds a parameter by name after unescaping both names ("n%61me" is "name").
std::optional<Param> find_param_unescaped(std::string_view params, const std::string& name) {
  std::optional<Param> found;
  for_each_uri_param(params, [&](const Param& p) {
    if (!found && iequals(unescape(p.name), name)) found = p;
  });
  return found;
}

// A name may appear more than once (";x=1;x=2"); only its first occurrence counts, the one
// find_param_unescaped returns. Comparing later ones against the other URI's first made uri_equal
// neither reflexive nor symmetric (found by fuzz_uri; seed tests/fuzz/seeds/fuzz_uri/dup_param*).
bool is_first_occurrence(std::string_view params, const Param& p) {
  auto first = find_param_unescaped(params, unescape(p.name));
  return first && first->name.data() == p.name.data();
}

bool params_compatible(const Uri& a, const Uri& b) {
  bool ok = true;
  // Every parameter of `a`: compared when in both; must-match ones also must exist in `b`.
  for_each_uri_param(a.params, [&](const Param& p) {
    if (!is_first_occurrence(a.params, p)) return;
    auto q = find_param_unescaped(b.params, unescape(p.name));
    if (!q) {
      if (is_must_match_param(unescape(p.name))) ok = false;
      return;
    }
    if (p.has_value != q->has_value || !iequals_unescaped(p.value, q->value)) ok = false;
  });
  if (!ok) return false;
  for_each_uri_param(b.params, [&](const Param& p) {
    std::string name = unescape(p.name);
    if (is_must_match_param(name) && !find_param_unescaped(a.params, name)) ok = false;
  });
  return ok;
}

// Headers: the same set on both sides, names case-insensitive, values unescaped and exact.
bool headers_subset(std::string_view a, std::string_view b) {
  size_t i = 0;
  while (i < a.size()) {
    size_t end = a.find('&', i);
    if (end == std::string_view::npos) end = a.size();
    std::string_view item = a.substr(i, end - i);
    size_t eq = item.find('=');
    std::string name = unescape(item.substr(0, eq));
    std::string value = eq == std::string_view::npos ? std::string() : canonical(item.substr(eq + 1));
    bool found = false;
    size_t j = 0;
    while (j < b.size() && !found) {
      size_t bend = b.find('&', j);
      if (bend == std::string_view::npos) bend = b.size();
      std::string_view bitem = b.substr(j, bend - j);
      size_t beq = bitem.find('=');
      if (iequals(unescape(bitem.substr(0, beq)), name) &&
          (beq == std::string_view::npos ? std::string() : canonical(bitem.substr(beq + 1))) == value)
        found = true;
      j = bend + 1;
    }
    if (!found) return false;
    i = end + 1;
  }
  return true;
}

std::string tel_number_key(std::string_view number) {
  std::string key;
  for (char c : number)
    if (c != '-' && c != '.' && c != '(' && c != ')') key.push_back(ascii_lower(c));
  return key;
}

bool tel_params_subset(const Uri& a, const Uri& b) {
  bool ok = true;
  for_each_uri_param(a.params, [&](const Param& p) {
    if (!is_first_occurrence(a.params, p)) return;
    auto q = find_param_unescaped(b.params, unescape(p.name));
    if (!q || !iequals_unescaped(p.value, q->value)) ok = false;
  });
  return ok;
}

}  // namespace

bool uri_equal(const Uri& a, const Uri& b) {
  if (a.scheme != b.scheme) return false;
  switch (a.scheme) {
    case UriScheme::kOther:
      return iequals(a.scheme_text, b.scheme_text) && a.opaque == b.opaque;
    case UriScheme::kTel:
      return tel_number_key(a.user) == tel_number_key(b.user) && tel_params_subset(a, b) && tel_params_subset(b, a);
    case UriScheme::kSip:
    case UriScheme::kSips:
      break;
  }
  if (a.has_user != b.has_user || canonical(a.user) != canonical(b.user)) return false;
  if (a.has_password != b.has_password || canonical(a.password) != canonical(b.password)) return false;
  if (!iequals(a.host, b.host)) return false;
  if (a.has_port() != b.has_port() || a.port != b.port) return false;
  if (!params_compatible(a, b)) return false;
  return headers_subset(a.headers, b.headers) && headers_subset(b.headers, a.headers);
}

}  // namespace pinhole::sip
