// URI equality, RFC 3261 §19.1.4 (sip/sips) and RFC 3966 §4 (tel).
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

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
        for (char h : {'%', text[i + 1], text[i + 2]})
          out.push_back(h >= 'a' && h <= 'f' ? static_cast<char>(h - 32) : h);
      }
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
  return out;
}

// Parameters that, present in one URI, must be present with the same value in the other.
bool is_must_match_param(std::string_view name) {
  return iequals(name, "user") || iequals(name, "ttl") || iequals(name, "method") || iequals(name, "maddr") ||
         iequals(name, "transport");
}

std::string lower(std::string s) {
  for (char& c : s) c = ascii_lower(c);
  return s;
}

// Parameters and headers are compared through sorted keys built once per comparison, so the cost
// is O(n log n) in their number. Looking each one up by rescanning the other URI (unescaping
// every name again) was O(n²) allocations: a 40 KB Contact or Request-URI of 5000 parameters took
// tens of seconds to compare (found through fuzz_uri's slowdown; seed
// tests/fuzz/seeds/fuzz_uri/many_params.txt).
struct Key {
  std::string name;   // unescaped, lower-cased
  std::string value;  // canonical(); lower-cased for parameters, which compare case-insensitively
  bool has_value = false;
};

// One key per parameter name: its first occurrence (";x=1;x=2" is x=1). Comparing the later
// duplicates too made uri_equal neither reflexive nor symmetric (found by fuzz_uri; seeds
// tests/fuzz/seeds/fuzz_uri/dup_param*).
std::vector<Key> param_keys(std::string_view params) {
  std::vector<Key> keys;
  for_each_uri_param(params, [&](const Param& p) {
    keys.push_back({lower(unescape(p.name)), lower(canonical(p.value)), p.has_value});
  });
  std::stable_sort(keys.begin(), keys.end(), [](const Key& x, const Key& y) { return x.name < y.name; });
  keys.erase(std::unique(keys.begin(), keys.end(), [](const Key& x, const Key& y) { return x.name == y.name; }),
             keys.end());
  return keys;
}

// Parameters in both must have the same value; must-match ones must be in both.
bool params_compatible(const Uri& a, const Uri& b) {
  std::vector<Key> ka = param_keys(a.params), kb = param_keys(b.params);
  size_t i = 0, j = 0;
  while (i < ka.size() || j < kb.size()) {
    if (j == kb.size() || (i < ka.size() && ka[i].name < kb[j].name)) {
      if (is_must_match_param(ka[i++].name)) return false;  // only in a
    } else if (i == ka.size() || kb[j].name < ka[i].name) {
      if (is_must_match_param(kb[j++].name)) return false;  // only in b
    } else {
      if (ka[i].has_value != kb[j].has_value || ka[i].value != kb[j].value) return false;
      ++i;
      ++j;
    }
  }
  return true;
}

// Headers: the same set on both sides, names case-insensitive, values canonical and exact.
bool headers_equal(std::string_view a, std::string_view b) {
  auto keys = [](std::string_view headers) {
    std::vector<std::pair<std::string, std::string>> out;
    size_t i = 0;
    while (i < headers.size()) {
      size_t end = headers.find('&', i);
      if (end == std::string_view::npos) end = headers.size();
      std::string_view item = headers.substr(i, end - i);
      size_t eq = item.find('=');
      out.emplace_back(lower(unescape(item.substr(0, eq))),
                       eq == std::string_view::npos ? std::string() : canonical(item.substr(eq + 1)));
      i = end + 1;
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  };
  return keys(a) == keys(b);
}

std::string tel_number_key(std::string_view number) {
  std::string key;
  for (char c : number)
    if (c != '-' && c != '.' && c != '(' && c != ')') key.push_back(ascii_lower(c));
  return key;
}

// tel: the same parameters with the same values (RFC 3966 §4).
bool tel_params_equal(const Uri& a, const Uri& b) {
  std::vector<Key> ka = param_keys(a.params), kb = param_keys(b.params);
  if (ka.size() != kb.size()) return false;
  for (size_t i = 0; i < ka.size(); ++i)
    if (ka[i].name != kb[i].name || ka[i].value != kb[i].value) return false;
  return true;
}

}  // namespace

bool uri_equal(const Uri& a, const Uri& b) {
  if (a.scheme != b.scheme) return false;
  switch (a.scheme) {
    case UriScheme::kOther:
      return iequals(a.scheme_text, b.scheme_text) && a.opaque == b.opaque;
    case UriScheme::kTel:
      return tel_number_key(a.user) == tel_number_key(b.user) && tel_params_equal(a, b);
    case UriScheme::kSip:
    case UriScheme::kSips:
      break;
  }
  if (a.has_user != b.has_user || canonical(a.user) != canonical(b.user)) return false;
  if (a.has_password != b.has_password || canonical(a.password) != canonical(b.password)) return false;
  if (!iequals(a.host, b.host)) return false;
  if (a.has_port() != b.has_port() || a.port != b.port) return false;
  if (!params_compatible(a, b)) return false;
  return headers_equal(a.headers, b.headers);
}

}  // namespace pinhole::sip
