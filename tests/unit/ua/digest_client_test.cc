// DigestClient against the published examples (RFC 2617 §3.5 for MD5, RFC 7616 §3.9.1 for
// SHA-256) and the challenge-selection rules.
#include "ua/digest_client.h"

#include <gtest/gtest.h>

#include <string>

#include "sip/auth.h"
#include "sip/message.h"

namespace pinhole::ua {
namespace {

sip::MessagePtr response_with(std::string_view status_line, std::string_view headers) {
  std::string text = std::string(status_line) +
                     "\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n"
                     "To: <sip:a@b>;tag=2\r\nCall-ID: x\r\nCSeq: 1 REGISTER\r\n" +
                     std::string(headers) + "Content-Length: 0\r\n\r\n";
  auto m = sip::Message::parse(text, sip::Framing::kDatagram);
  EXPECT_TRUE(m.ok());
  return std::move(m).value();
}

sip::AuthParams parse(const std::string& value) {
  auto a = sip::parse_auth(value);
  EXPECT_TRUE(a.ok());
  return *a;
}

TEST(DigestClient, Rfc2617Md5Example) {
  auto challenge = response_with("SIP/2.0 401 Unauthorized",
                                 "WWW-Authenticate: Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", "
                                 "nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", "
                                 "opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"\r\n");
  DigestClient client("Mufasa", "Circle Of Life");
  auto stale = client.take_challenge(*challenge);
  ASSERT_TRUE(stale.ok());
  EXPECT_FALSE(*stale);
  client.set_cnonce_for_test("0a4f113b");
  auto value = client.credentials("GET", "/dir/index.html");
  ASSERT_TRUE(value.ok());
  // The credentials parse as what the RFC shows.
  std::string text = *value;
  auto a = parse(text);
  EXPECT_EQ(a.username, "Mufasa");
  EXPECT_EQ(a.realm, "testrealm@host.com");
  EXPECT_EQ(a.nc, "00000001");
  EXPECT_EQ(a.qop, "auth");
  EXPECT_EQ(a.cnonce, "0a4f113b");
  EXPECT_EQ(a.opaque, "5ccc069c403ebaf9f0171e9517f40e41");
  EXPECT_EQ(a.response, "6629fae49393a05397450978507c4ef1");
  EXPECT_EQ(client.header_name(), "Authorization");
}

TEST(DigestClient, Rfc7616Sha256ExampleIsPreferredOverMd5) {
  auto challenge = response_with("SIP/2.0 401 Unauthorized",
                                 "WWW-Authenticate: Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", "
                                 "algorithm=MD5, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", "
                                 "opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"\r\n"
                                 "WWW-Authenticate: Digest realm=\"http-auth@example.org\", qop=\"auth, auth-int\", "
                                 "algorithm=SHA-256, nonce=\"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v\", "
                                 "opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\"\r\n");
  DigestClient client("Mufasa", "Circle of Life");
  ASSERT_TRUE(client.take_challenge(*challenge).ok());
  client.set_cnonce_for_test("f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ");
  auto value = client.credentials("GET", "/dir/index.html");
  ASSERT_TRUE(value.ok());
  std::string text = *value;
  auto a = parse(text);
  EXPECT_EQ(a.algorithm, "SHA-256");
  EXPECT_EQ(a.response, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1");
}

TEST(DigestClient, NonceCountAdvancesAndRestartsWithANewNonce) {
  auto first =
      response_with("SIP/2.0 401 Unauthorized", "WWW-Authenticate: Digest realm=\"r\", nonce=\"n1\", qop=\"auth\"\r\n");
  DigestClient client("u", "p");
  ASSERT_TRUE(client.take_challenge(*first).ok());
  std::string c1 = *client.credentials("REGISTER", "sip:r");
  std::string c2 = *client.credentials("REGISTER", "sip:r");
  EXPECT_EQ(parse(c1).nc, "00000001");
  EXPECT_EQ(parse(c2).nc, "00000002");
  auto second = response_with("SIP/2.0 401 Unauthorized",
                              "WWW-Authenticate: Digest realm=\"r\", nonce=\"n2\", qop=\"auth\", stale=true\r\n");
  auto stale = client.take_challenge(*second);
  ASSERT_TRUE(stale.ok());
  EXPECT_TRUE(*stale);
  std::string c3 = *client.credentials("REGISTER", "sip:r");
  EXPECT_EQ(parse(c3).nc, "00000001");
  EXPECT_EQ(parse(c3).nonce, "n2");
}

TEST(DigestClient, ProxyChallengeAndUnsupportedAlgorithms) {
  auto proxy = response_with("SIP/2.0 407 Proxy Authentication Required",
                             "Proxy-Authenticate: Digest realm=\"r\", nonce=\"n\"\r\n");
  DigestClient client("u", "p");
  ASSERT_TRUE(client.take_challenge(*proxy).ok());
  EXPECT_EQ(client.header_name(), "Proxy-Authorization");
  // No qop offered: RFC 2069 form, no nc/cnonce.
  auto a = parse(*client.credentials("INVITE", "sip:b@r"));
  EXPECT_TRUE(a.nc.empty());
  EXPECT_TRUE(a.cnonce.empty());

  auto odd = response_with("SIP/2.0 401 Unauthorized",
                           "WWW-Authenticate: Digest realm=\"r\", nonce=\"n\", algorithm=SHA-512-256\r\n"
                           "WWW-Authenticate: Basic realm=\"r\"\r\n");
  DigestClient other("u", "p");
  auto result = other.take_challenge(*odd);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error(), kNoUsableChallenge);
  EXPECT_FALSE(other.has_challenge());
}

}  // namespace
}  // namespace pinhole::ua
