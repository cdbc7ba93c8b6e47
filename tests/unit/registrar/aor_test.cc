// Canonical AORs (RFC 3261 §10.3 step 5, §19.1.4) and registrar domain matching.
#include "registrar/aor.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "sip/uri.h"

namespace pinhole::registrar {
namespace {

sip::Uri uri(std::string_view text) {
  auto u = sip::parse_uri(text);
  EXPECT_TRUE(u.ok()) << text;
  return u.ok() ? *u : sip::Uri{};
}

std::string aor(std::string_view text) {
  auto a = canonical_aor(uri(text));
  EXPECT_TRUE(a.ok()) << text;
  return a.ok() ? *a : std::string("<error>");
}

TEST(CanonicalAor, LowerCasesTheHostAndKeepsTheUser) {
  EXPECT_EQ(aor("sip:alice@Example.COM"), "sip:alice@example.com");
  EXPECT_EQ(aor("sip:Alice@example.com"), "sip:Alice@example.com");
  EXPECT_NE(aor("sip:Alice@example.com"), aor("sip:alice@example.com"));
}

TEST(CanonicalAor, DropsParametersHeadersAndPassword) {
  EXPECT_EQ(aor("sip:alice:secret@example.com;transport=tcp;user=phone?subject=hi"), "sip:alice@example.com");
}

TEST(CanonicalAor, SipsNamesTheSameUserAsSip) {
  EXPECT_EQ(aor("sips:alice@example.com"), aor("sip:alice@example.com"));
}

TEST(CanonicalAor, KeepsAWrittenPortAsANumber) {
  EXPECT_EQ(aor("sip:alice@example.com:5060"), "sip:alice@example.com:5060");
  EXPECT_EQ(aor("sip:alice@example.com:05060"), "sip:alice@example.com:5060");
  // RFC 3261 §19.1.4: a URI without a port differs from one with the default port.
  EXPECT_NE(aor("sip:alice@example.com:5060"), aor("sip:alice@example.com"));
}

TEST(CanonicalAor, DecodesUnreservedEscapesOnly) {
  EXPECT_EQ(aor("sip:%61lice@example.com"), "sip:alice@example.com");
  // An escaped reserved character is data, not a delimiter: it stays escaped, in one case.
  EXPECT_EQ(aor("sip:a%3bb@example.com"), "sip:a%3Bb@example.com");
  EXPECT_EQ(aor("sip:a%3Bb@example.com"), aor("sip:a%3bb@example.com"));
  EXPECT_NE(aor("sip:a%3Bb@example.com"), aor("sip:a;b@example.com"));
  // An escaped '@' never yields a second unescaped one.
  EXPECT_EQ(aor("sip:a%40b@example.com"), "sip:a%40b@example.com");
}

TEST(CanonicalAor, IPv6Host) { EXPECT_EQ(aor("sip:bob@[2001:DB8::1]:5070"), "sip:bob@[2001:db8::1]:5070"); }

TEST(CanonicalAor, AgreesWithUriEquality) {
  // Parameter-free URIs: the same AOR exactly when RFC 3261 §19.1.4 calls them equal.
  const std::vector<std::string_view> uris = {
      "sip:alice@example.com",   "sip:alice@EXAMPLE.com",      "sip:ALICE@example.com", "sip:%61lice@example.com",
      "sip:%41lice@example.com", "sip:alice@example.com:5060", "sip:a%3bb@example.com", "sip:a%3Bb@example.com",
      "sip:a;b@example.com",     "sip:alice@example.org",      "sips:alice@example.com"};
  for (auto a : uris) {
    for (auto b : uris) {
      sip::Uri ua = uri(a), ub = uri(b);
      if (ua.scheme != ub.scheme) continue;  // sips vs sip: equal AOR by choice, tested above
      EXPECT_EQ(aor(a) == aor(b), sip::uri_equal(ua, ub)) << a << " vs " << b;
    }
  }
}

TEST(CanonicalAor, RefusesWhatCannotBeAnAor) {
  auto tel = canonical_aor(uri("tel:+15551234567"));
  ASSERT_FALSE(tel.ok());
  EXPECT_EQ(tel.error().status, 404);
  auto no_user = canonical_aor(uri("sip:example.com"));
  ASSERT_FALSE(no_user.ok());
  EXPECT_EQ(no_user.error().status, 404);
}

TEST(IsOurDomain, MatchesHostsCaseInsensitively) {
  const std::vector<std::string> domains = {"example.com", "voip.example.net"};
  EXPECT_TRUE(is_our_domain(uri("sip:alice@EXAMPLE.com"), domains));
  EXPECT_TRUE(is_our_domain(uri("sips:alice@voip.example.net:5061"), domains));
  EXPECT_FALSE(is_our_domain(uri("sip:alice@example.org"), domains));
  EXPECT_FALSE(is_our_domain(uri("sip:alice@sub.example.com"), domains));
  EXPECT_FALSE(is_our_domain(uri("tel:+15551234567"), domains));
  EXPECT_FALSE(is_our_domain(uri("sip:alice@example.com"), {}));
}

TEST(IsOurDomain, PortInTheConfigMustMatch) {
  const std::vector<std::string> domains = {"example.com:5070"};
  EXPECT_TRUE(is_our_domain(uri("sip:alice@example.com:5070"), domains));
  EXPECT_FALSE(is_our_domain(uri("sip:alice@example.com:5060"), domains));
  EXPECT_FALSE(is_our_domain(uri("sip:alice@example.com"), domains));
}

TEST(IsOurDomain, IPv6WithOrWithoutBrackets) {
  EXPECT_TRUE(is_our_domain(uri("sip:bob@[2001:db8::1]"), {"2001:db8::1"}));
  EXPECT_TRUE(is_our_domain(uri("sip:bob@[2001:DB8::1]:5060"), {"[2001:db8::1]"}));
  EXPECT_FALSE(is_our_domain(uri("sip:bob@[2001:db8::2]"), {"[2001:db8::1]"}));
}

}  // namespace
}  // namespace pinhole::registrar
