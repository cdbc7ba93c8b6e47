// libFuzzer target for URI parsing and RFC 3261 §19.1.4 comparison.
//
// Input: one URI, or two separated by the first '\n'. Each part is copied into a buffer of its
// own exact size so that ASan sees a read one byte past the URI. Invariants: every view of a
// parsed Uri lies inside its text, and uri_equal is reflexive and symmetric (the registrar and
// the loop detection compare URIs both ways round and must agree).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "sip/charset.h"
#include "sip/uri.h"

namespace {

using namespace pinhole::sip;

using pinhole::fuzz::OwnedText;

// RFC 3261 §19.1.4: scheme and host compare case-insensitively, and an unreserved character
// equals its %HH escape. Respelling `u` that way must give a URI that parses and compares equal.
void check_equivalent_spellings(const Uri& u) {
  auto offset = [&](std::string_view part) { return static_cast<size_t>(part.data() - u.raw.data()); };
  std::string lower(u.raw);
  for (std::string_view part : {u.scheme_text, u.host})
    for (size_t i = offset(part); i < offset(part) + part.size(); ++i) lower[i] = ascii_lower(lower[i]);
  OwnedText lower_text(lower);
  auto l = parse_uri(lower_text.view);
  FUZZ_CHECK(l.ok());
  FUZZ_CHECK(uri_equal(u, *l) && uri_equal(*l, u));

  if (u.user.empty() || !is_alnum(u.user.front())) return;
  static constexpr char kHex[] = "0123456789ABCDEF";
  auto c = static_cast<unsigned char>(u.user.front());
  std::string escaped(u.raw);
  escaped.replace(offset(u.user), 1, {'%', kHex[c >> 4], kHex[c & 15]});
  OwnedText escaped_text(escaped);
  auto e = parse_uri(escaped_text.view);
  FUZZ_CHECK(e.ok());
  FUZZ_CHECK(uri_equal(u, *e) && uri_equal(*e, u));
}

std::optional<Uri> parse_and_check(std::string_view text) {
  auto r = parse_uri(text);
  if (!r) return std::nullopt;
  const Uri& u = *r;
  FUZZ_CHECK(u.raw == text);
  for (std::string_view v : {u.scheme_text, u.user, u.password, u.host, u.port_text, u.params, u.headers, u.opaque})
    fuzz_check_inside(text, v);
  FUZZ_CHECK(u.scheme_text.size() < text.size() && text[u.scheme_text.size()] == ':');
  if (u.is_sip()) {
    FUZZ_CHECK(!u.host.empty());
    FUZZ_CHECK(u.has_port() || u.port == 0);
  }
  FUZZ_CHECK(!u.has_password || u.has_user);
  (void)u.transport();
  (void)u.loose_route();
  (void)u.param("user");
  for_each_uri_param(u.params, [&](const Param& p) {
    fuzz_check_inside(text, p.name);
    fuzz_check_inside(text, p.value);
  });
  // Unescaping never grows a string.
  FUZZ_CHECK(unescape(u.user).size() <= u.user.size());
  // Reflexive: a URI equals itself.
  FUZZ_CHECK(uri_equal(u, u));
  if (u.is_sip()) check_equivalent_spellings(u);
  return u;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {  // NOLINT(readability-identifier-naming)
  std::string_view input(reinterpret_cast<const char*>(data), size);
  size_t nl = input.find('\n');
  OwnedText a_text(input.substr(0, nl));
  auto a = parse_and_check(a_text.view);
  if (nl == std::string_view::npos) return 0;
  OwnedText b_text(input.substr(nl + 1));
  auto b = parse_and_check(b_text.view);
  if (a && b) FUZZ_CHECK(uri_equal(*a, *b) == uri_equal(*b, *a));
  return 0;
}
