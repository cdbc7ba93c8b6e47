// Authorization / WWW-Authenticate values (RFC 3261 §25.1 credentials and challenge, RFC 2617).
#include "sip/auth.h"

#include <gtest/gtest.h>

#include <string_view>

namespace pinhole::sip {
namespace {

TEST(Auth, DigestCredentials) {
  // RFC 3261 §22.4 style Authorization.
  auto a = parse_auth(
      "Digest username=\"bob\", realm=\"biloxi.com\",\r\n nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", "
      "uri=\"sip:bob@biloxi.com\", qop=auth, nc=00000001, cnonce=\"0a4f113b\",\r\n"
      " response=\"6629fae49393a05397450978507c4ef1\", opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"");
  ASSERT_TRUE(a.ok()) << a.error().what;
  EXPECT_TRUE(a->is_digest());
  EXPECT_EQ(a->scheme, "Digest");
  EXPECT_EQ(a->username, "bob");
  EXPECT_EQ(a->realm, "biloxi.com");
  EXPECT_EQ(a->nonce, "dcd98b7102dd2f0e8b11d0f600bfb0c093");
  EXPECT_EQ(a->uri, "sip:bob@biloxi.com");
  EXPECT_EQ(a->qop, "auth");
  EXPECT_EQ(a->nc, "00000001");
  EXPECT_EQ(a->cnonce, "0a4f113b");
  EXPECT_EQ(a->response, "6629fae49393a05397450978507c4ef1");
  EXPECT_EQ(a->opaque, "5ccc069c403ebaf9f0171e9517f40e41");
  EXPECT_EQ(a->algorithm, "");
  EXPECT_TRUE(a->params.starts_with("username=\"bob\""));
}

TEST(Auth, DigestChallenge) {
  auto c = parse_auth(
      "digest realm=\"atlanta.com\", domain=\"sip:ss1.carrier.com\", qop=\"auth,auth-int\", "
      "nonce=\"f84f1cec41e6cbe5aea9c8e88d359\", opaque=\"\", stale=FALSE, algorithm=SHA-256");
  ASSERT_TRUE(c.ok()) << c.error().what;
  EXPECT_TRUE(c->is_digest());  // scheme names are case-insensitive
  EXPECT_EQ(c->realm, "atlanta.com");
  EXPECT_EQ(c->domain, "sip:ss1.carrier.com");
  EXPECT_EQ(c->qop, "auth,auth-int");
  EXPECT_EQ(c->opaque, "");
  EXPECT_EQ(c->stale, "FALSE");
  EXPECT_EQ(c->algorithm, "SHA-256");
}

TEST(Auth, ParamNamesCaseInsensitiveAndSpacesAroundEquals) {
  auto a = parse_auth("Digest USERNAME = \"alice\" , Realm=\"a.com\"");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->username, "alice");
  EXPECT_EQ(a->realm, "a.com");
}

TEST(Auth, QuotedValuesKeepCommas) {
  auto a = parse_auth("Digest realm=\"a, b\", nonce=\"x\"");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->realm, "a, b");
  EXPECT_EQ(a->nonce, "x");
}

TEST(Auth, UnknownScheme) {
  // RFC 4475 §3.3.7 (regaut01).
  auto a = parse_auth("NoOneKnowsThisScheme opaque-data=here");
  ASSERT_TRUE(a.ok());
  EXPECT_FALSE(a->is_digest());
  EXPECT_EQ(a->scheme, "NoOneKnowsThisScheme");
  EXPECT_EQ(a->params, "opaque-data=here");
  auto bare = parse_auth("Basic");
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(bare->scheme, "Basic");
  EXPECT_EQ(bare->params, "");
}

TEST(Auth, Malformed) {
  for (std::string_view bad :
       {"", "\"Digest\" realm=\"x\"", "Digest realm", "Digest realm=", "Digest realm=\"x",
        "Digest realm=\"x\",, nonce=\"y\"", "Digest realm=\"x\" nonce=\"y\"", "Digest =\"x\"", "Digest realm=\"x\","})
    EXPECT_FALSE(parse_auth(bad).ok()) << bad;
}

}  // namespace
}  // namespace pinhole::sip
