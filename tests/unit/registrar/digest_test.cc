// Digest authentication (RFC 3261 §22, RFC 7616 algorithms via RFC 8760): the RFC 7616 test
// vectors, and challenge -> credentials -> verify round trips on parsed SIP requests whose
// expected responses are computed here from the RFC formulas with OpenSSL directly.
#include "registrar/digest.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <array>
#include <atomic>
#include <cctype>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "sip/auth.h"
#include "sip/message.h"

namespace pinhole::registrar {
namespace {

constexpr std::string_view kRealm = "example.com";
constexpr std::string_view kSecret = "0123456789abcdef-cluster-secret";
constexpr int64_t kStart = 1'700'000'000;  // wall-clock unix seconds the tests start at

// H(text) in lower-case hex with OpenSSL's one-shot API: independent of the code under test.
std::string hex_hash(DigestAlgorithm algorithm, std::string_view text) {
  const EVP_MD* md = algorithm == DigestAlgorithm::kMd5 ? EVP_md5() : EVP_sha256();
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int n = 0;
  EXPECT_EQ(EVP_Digest(text.data(), text.size(), digest.data(), &n, md, nullptr), 1);
  std::string hex;
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned i = 0; i < n; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 0xf]);
  }
  return hex;
}

std::string join(std::initializer_list<std::string_view> parts) {
  std::string out;
  for (auto p : parts) {
    if (!out.empty()) out += ':';
    out += p;
  }
  return out;
}

// RFC 7616 §3.4.1 with qop=auth, straight from the formula.
std::string rfc_response(DigestAlgorithm algorithm, std::string_view user, std::string_view realm,
                         std::string_view password, std::string_view method, std::string_view uri,
                         std::string_view nonce, std::string_view nc, std::string_view cnonce) {
  std::string a1 = hex_hash(algorithm, join({user, realm, password}));
  std::string a2 = hex_hash(algorithm, join({method, uri}));
  return hex_hash(algorithm, join({a1, nonce, nc, cnonce, "auth", a2}));
}

store::UserRecord user_record(std::string_view user, std::string_view realm, std::string_view password) {
  return store::UserRecord{std::string(user), std::string(realm),
                           hex_hash(DigestAlgorithm::kMd5, join({user, realm, password})),
                           hex_hash(DigestAlgorithm::kSha256, join({user, realm, password}))};
}

// The value of `name="..."` in a challenge line.
std::string param(std::string_view line, std::string_view name) {
  std::string key = std::string(name) + "=\"";
  auto start = line.find(key);
  if (start == std::string_view::npos) return {};
  start += key.size();
  return std::string(line.substr(start, line.find('"', start) - start));
}

std::vector<std::string> lines_of(std::string_view text) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    auto end = text.find("\r\n", pos);
    if (end == std::string_view::npos) {
      lines.emplace_back(text.substr(pos));
      break;
    }
    lines.emplace_back(text.substr(pos, end - pos));
    pos = end + 2;
  }
  return lines;
}

constexpr std::string_view kRegisterUri = "sip:example.com";

sip::MessagePtr request(std::string_view method, std::string_view request_uri, const std::string& auth_lines) {
  std::string text = std::string(method) + " " + std::string(request_uri) +
                     " SIP/2.0\r\n"
                     "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-digest-1\r\n"
                     "Max-Forwards: 70\r\n"
                     "From: <sip:alice@example.com>;tag=8a7b\r\n"
                     "To: <sip:alice@example.com>\r\n"
                     "Call-ID: 3c26700fa6f1@192.0.2.10\r\n"
                     "CSeq: 2 " +
                     std::string(method) +
                     "\r\n"
                     "Contact: <sip:alice@192.0.2.10:5060>\r\n" +
                     auth_lines + "Content-Length: 0\r\n\r\n";
  auto parsed = sip::Message::parse(text, sip::Framing::kDatagram);
  EXPECT_TRUE(parsed.ok()) << text;
  return parsed.ok() ? std::move(parsed).value() : nullptr;
}

struct Credentials {
  std::string header = "Authorization";
  std::string scheme = "Digest";
  std::string user = "alice";
  std::string realm = std::string(kRealm);
  std::string password = "wonderland";  // what the client uses to compute its response
  std::string method = "REGISTER";
  std::string uri = std::string(kRegisterUri);
  std::string nonce;
  std::string nc = "00000001";
  std::string cnonce = "0a4f113b";
  std::string qop = "auth";
  std::string algorithm = "SHA-256";
  std::string response;  // computed from the fields above unless set

  std::string line() const {
    auto alg = parse_algorithm(algorithm).value_or(DigestAlgorithm::kMd5);
    std::string r =
        response.empty() ? rfc_response(alg, user, realm, password, method, uri, nonce, nc, cnonce) : response;
    std::string out = header + ": " + scheme + " username=\"" + user + "\", realm=\"" + realm + "\", nonce=\"" + nonce +
                      "\", uri=\"" + uri + "\", response=\"" + r + "\", algorithm=" + algorithm;
    if (!qop.empty()) out += ", qop=" + qop + ", nc=" + nc + ", cnonce=\"" + cnonce + "\"";
    return out + "\r\n";
  }
};

class DigestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(users_.put(user_record("alice", kRealm, "wonderland")).ok());
    ASSERT_TRUE(users_.put(user_record("bob", "other.org", "builder")).ok());
    auth_ = make_auth(config());
  }

  static DigestConfig config() {
    DigestConfig c;
    c.secret = std::string(kSecret);
    c.nonce_lifetime = std::chrono::seconds(300);
    return c;
  }

  std::unique_ptr<DigestAuthenticator> make_auth(DigestConfig c) {
    auto a = DigestAuthenticator::create(std::move(c), users_, [this] { return now_.load(); });
    EXPECT_TRUE(a.ok());
    return a.ok() ? std::move(a).value() : nullptr;
  }

  std::string fresh_nonce(DigestAuthenticator& auth, std::string_view realm = kRealm) {
    auto headers = auth.challenge_headers(ChallengeKind::kWww, realm, false);
    EXPECT_TRUE(headers.ok());
    return headers.ok() ? param(*headers, "nonce") : std::string();
  }
  std::string fresh_nonce() { return fresh_nonce(*auth_); }

  AuthResult verify(const Credentials& c, ChallengeKind kind = ChallengeKind::kWww) {
    auto msg = request(c.method, c.uri, c.line());
    if (!msg) return {};
    return auth_->verify(*msg, kind, kRealm);
  }

  std::atomic<int64_t> now_{kStart};
  UserDirectory users_;
  std::unique_ptr<DigestAuthenticator> auth_;
};

// RFC 7616 §3.9.1: user "Mufasa", password "Circle of Life", realm "http-auth@example.org",
// GET /dir/index.html, nonce "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", nc=00000001,
// cnonce "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ", qop=auth. The RFC gives the responses
// 753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1 (SHA-256) and
// 8ca523f5e9506fed4657c9700eebdbec (MD5).
TEST(DigestVectors, Rfc7616Section391) {
  const DigestFields fields{"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
                            "00000001",
                            "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
                            "auth",
                            "GET",
                            "/dir/index.html"};
  struct Vector {
    DigestAlgorithm algorithm;
    std::string_view response;
  };
  for (const Vector& v :
       {Vector{DigestAlgorithm::kSha256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"},
        Vector{DigestAlgorithm::kMd5, "8ca523f5e9506fed4657c9700eebdbec"}}) {
    auto h = ha1(v.algorithm, "Mufasa", "http-auth@example.org", "Circle of Life");
    ASSERT_TRUE(h.ok());
    auto r = digest_response(v.algorithm, *h, fields);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(*r, v.response) << algorithm_name(v.algorithm);
  }
}

TEST(DigestVectors, Ha1IsTheHashOfUserRealmPassword) {
  for (auto algorithm : {DigestAlgorithm::kMd5, DigestAlgorithm::kSha256}) {
    auto h = ha1(algorithm, "alice", "example.com", "wonderland");
    ASSERT_TRUE(h.ok());
    EXPECT_EQ(*h, hex_hash(algorithm, "alice:example.com:wonderland"));
    EXPECT_EQ(h->size(), algorithm == DigestAlgorithm::kMd5 ? 32U : 64U);
  }
  EXPECT_NE(*ha1(DigestAlgorithm::kMd5, "alice", "example.com", "x"),
            *ha1(DigestAlgorithm::kMd5, "Alice", "example.com", "x"));
}

TEST(DigestVectors, AlgorithmNames) {
  EXPECT_EQ(parse_algorithm("MD5"), DigestAlgorithm::kMd5);
  EXPECT_EQ(parse_algorithm("md5"), DigestAlgorithm::kMd5);
  EXPECT_EQ(parse_algorithm(""), DigestAlgorithm::kMd5);  // absent: MD5 (RFC 7616 §3.4)
  EXPECT_EQ(parse_algorithm("SHA-256"), DigestAlgorithm::kSha256);
  EXPECT_EQ(parse_algorithm("sha-256"), DigestAlgorithm::kSha256);
  for (std::string_view other : {"MD5-sess", "SHA-256-sess", "SHA-512-256", "SHA256", "AKAv1-MD5"})
    EXPECT_FALSE(parse_algorithm(other).has_value()) << other;
  EXPECT_EQ(algorithm_name(DigestAlgorithm::kSha256), "SHA-256");
  EXPECT_EQ(algorithm_name(DigestAlgorithm::kMd5), "MD5");
}

TEST(DigestCreate, RefusesShortSecret) {
  UserDirectory users;
  DigestConfig c;
  c.secret = "fifteen-bytes!!";
  auto a = DigestAuthenticator::create(c, users);
  ASSERT_FALSE(a.ok());
  EXPECT_EQ(a.error(), kDigestShortSecret);
  c.secret += "!";
  EXPECT_TRUE(DigestAuthenticator::create(c, users).ok());
  c.secret = std::string(200, 'k');  // longer than a SHA-256 block: hashed first (RFC 2104)
  EXPECT_TRUE(DigestAuthenticator::create(c, users).ok());
}

TEST_F(DigestTest, ChallengeHeadersOfferSha256ThenMd5WithOneNonce) {
  auto headers = auth_->challenge_headers(ChallengeKind::kWww, kRealm, false);
  ASSERT_TRUE(headers.ok());
  ASSERT_TRUE(headers->ends_with("\r\n"));
  auto lines = lines_of(*headers);
  ASSERT_EQ(lines.size(), 2U) << *headers;
  const std::string_view prefix = "WWW-Authenticate: ";
  std::vector<std::string> algorithms;
  for (const auto& line : lines) {
    ASSERT_TRUE(std::string_view(line).starts_with(prefix)) << line;
    auto c = sip::parse_auth(std::string_view(line).substr(prefix.size()));
    ASSERT_TRUE(c.ok()) << line;
    EXPECT_TRUE(c->is_digest());
    EXPECT_EQ(c->realm, kRealm);
    EXPECT_EQ(c->qop, "auth");
    EXPECT_EQ(c->stale, "");
    EXPECT_EQ(c->nonce, param(lines[0], "nonce"));
    EXPECT_FALSE(c->nonce.empty());
    algorithms.emplace_back(c->algorithm);
  }
  EXPECT_EQ(algorithms, (std::vector<std::string>{"SHA-256", "MD5"}));

  auto proxy = auth_->challenge_headers(ChallengeKind::kProxy, kRealm, true);
  ASSERT_TRUE(proxy.ok());
  for (const auto& line : lines_of(*proxy)) {
    ASSERT_TRUE(std::string_view(line).starts_with("Proxy-Authenticate: Digest ")) << line;
    auto c = sip::parse_auth(std::string_view(line).substr(std::string_view("Proxy-Authenticate: ").size()));
    ASSERT_TRUE(c.ok());
    EXPECT_EQ(c->stale, "true");
  }
  // Every challenge has its own nonce.
  EXPECT_NE(param(*proxy, "nonce"), param(*headers, "nonce"));
  EXPECT_EQ(challenge_status(ChallengeKind::kWww), 401);
  EXPECT_EQ(challenge_status(ChallengeKind::kProxy), 407);
}

TEST_F(DigestTest, Md5NotOfferedWhenDisabled) {
  auto c = config();
  c.offer_md5 = false;
  auto auth = make_auth(c);
  auto headers = auth->challenge_headers(ChallengeKind::kWww, kRealm, false);
  ASSERT_TRUE(headers.ok());
  auto lines = lines_of(*headers);
  ASSERT_EQ(lines.size(), 1U);
  EXPECT_NE(lines[0].find("algorithm=SHA-256"), std::string::npos);
  // MD5 credentials are then not accepted, even with the right password.
  Credentials cred;
  cred.nonce = param(*headers, "nonce");
  cred.algorithm = "MD5";
  auto msg = request(cred.method, cred.uri, cred.line());
  auto r = auth->verify(*msg, ChallengeKind::kWww, kRealm);
  EXPECT_EQ(r.verdict, AuthVerdict::kChallenge);
  EXPECT_EQ(r.why, auth_why::kAlgorithmNotOffered);
}

TEST_F(DigestTest, Md5AloneWhenSha256IsOff) {
  auto c = config();
  c.offer_sha256 = false;
  auto auth = make_auth(c);
  auto headers = auth->challenge_headers(ChallengeKind::kWww, kRealm, false);
  ASSERT_TRUE(headers.ok());
  auto lines = lines_of(*headers);
  ASSERT_EQ(lines.size(), 1U) << *headers;
  EXPECT_NE(lines[0].find("algorithm=MD5"), std::string::npos);
  // SHA-256 credentials are then not accepted: a peer may not pick what was not offered.
  Credentials cred;
  cred.nonce = param(*headers, "nonce");
  cred.algorithm = "SHA-256";
  auto msg = request(cred.method, cred.uri, cred.line());
  EXPECT_EQ(auth->verify(*msg, ChallengeKind::kWww, kRealm).why, auth_why::kAlgorithmNotOffered);
  // And one of the two must stay on.
  c.offer_md5 = false;
  UserDirectory users;
  EXPECT_EQ(DigestAuthenticator::create(c, users).error(), kDigestNoAlgorithm);
}

TEST_F(DigestTest, RealmIsQuotedInChallenge) {
  auto headers = auth_->challenge_headers(ChallengeKind::kWww, "odd \"realm\\", false);
  ASSERT_TRUE(headers.ok());
  EXPECT_NE(headers->find(R"(realm="odd \"realm\\")"), std::string::npos) << *headers;
}

TEST_F(DigestTest, RoundTripBothAlgorithms) {
  for (std::string algorithm : {"SHA-256", "MD5", "md5", "sha-256"}) {
    Credentials c;
    c.nonce = fresh_nonce();
    c.algorithm = algorithm;
    auto r = verify(c);
    EXPECT_EQ(r.verdict, AuthVerdict::kOk) << algorithm << ": " << r.why;
    EXPECT_EQ(r.username, "alice");
    EXPECT_EQ(r.why, auth_why::kAuthenticated);
  }
}

TEST_F(DigestTest, AlgorithmAbsentMeansMd5) {
  Credentials c;
  c.nonce = fresh_nonce();
  std::string md5 =
      rfc_response(DigestAlgorithm::kMd5, c.user, c.realm, c.password, c.method, c.uri, c.nonce, c.nc, c.cnonce);
  std::string line = "Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"" + c.nonce +
                     "\", uri=\"sip:example.com\", response=\"" + md5 +
                     "\", qop=auth, nc=00000001, cnonce=\"0a4f113b\"\r\n";
  auto msg = request("REGISTER", kRegisterUri, line);
  EXPECT_EQ(auth_->verify(*msg, ChallengeKind::kWww, kRealm).verdict, AuthVerdict::kOk);
}

TEST_F(DigestTest, UpperCaseResponseHexAccepted) {
  Credentials c;
  c.nonce = fresh_nonce();
  c.response =
      rfc_response(DigestAlgorithm::kSha256, c.user, c.realm, c.password, c.method, c.uri, c.nonce, c.nc, c.cnonce);
  for (char& ch : c.response) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  EXPECT_EQ(verify(c).verdict, AuthVerdict::kOk);
}

TEST_F(DigestTest, WrongPasswordIsChallengedAgain) {
  Credentials c;
  c.nonce = fresh_nonce();
  c.password = "looking-glass";
  auto r = verify(c);
  EXPECT_EQ(r.verdict, AuthVerdict::kChallenge);
  EXPECT_EQ(r.why, auth_why::kWrongResponse);
  EXPECT_EQ(r.username, "");
}

TEST_F(DigestTest, UnknownUserLooksLikeWrongPassword) {
  Credentials c;
  c.nonce = fresh_nonce();
  c.user = "mallory";
  auto r = verify(c);
  EXPECT_EQ(r.verdict, AuthVerdict::kChallenge);
  EXPECT_EQ(r.why, auth_why::kUnknownUser);
  // A user of another realm is unknown in this one, even with that user's right password.
  c.user = "bob";
  c.password = "builder";
  EXPECT_EQ(verify(c).verdict, AuthVerdict::kChallenge);
  // So is a user who has no HA1 for the algorithm used.
  ASSERT_TRUE(
      users_.put({"carol", std::string(kRealm), hex_hash(DigestAlgorithm::kMd5, "carol:example.com:pw"), ""}).ok());
  c.user = "carol";
  c.password = "pw";
  c.algorithm = "SHA-256";
  EXPECT_EQ(verify(c).why, auth_why::kUnknownUser);
  c.algorithm = "MD5";
  EXPECT_EQ(verify(c).verdict, AuthVerdict::kOk);
}

TEST_F(DigestTest, UsernameWithQuotedPair) {
  ASSERT_TRUE(users_.put(user_record("al\"ice", kRealm, "pw")).ok());
  Credentials c;
  c.nonce = fresh_nonce();
  c.password = "pw";
  c.user = "al\"ice";  // for the response: the unquoted name
  std::string response =
      rfc_response(DigestAlgorithm::kSha256, c.user, c.realm, c.password, c.method, c.uri, c.nonce, c.nc, c.cnonce);
  std::string line = "Authorization: Digest username=\"al\\\"ice\", realm=\"example.com\", nonce=\"" + c.nonce +
                     "\", uri=\"sip:example.com\", response=\"" + response +
                     "\", algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"0a4f113b\"\r\n";
  auto msg = request("REGISTER", kRegisterUri, line);
  ASSERT_NE(msg, nullptr);
  auto r = auth_->verify(*msg, ChallengeKind::kWww, kRealm);
  EXPECT_EQ(r.verdict, AuthVerdict::kOk) << r.why;
  EXPECT_EQ(r.username, "al\"ice");
}

TEST_F(DigestTest, ExpiredNonceWithRightPasswordIsStale) {
  Credentials c;
  c.nonce = fresh_nonce();
  now_ += 300;  // exactly the lifetime: still valid
  EXPECT_EQ(verify(c).verdict, AuthVerdict::kOk);

  c.nonce = fresh_nonce();
  now_ += 301;
  auto r = verify(c);
  EXPECT_EQ(r.verdict, AuthVerdict::kStale);
  EXPECT_EQ(r.why, auth_why::kExpired);
  EXPECT_EQ(r.username, "alice");
  // An expired nonce with a wrong password is an ordinary failure, not a stale one.
  c.password = "guess";
  EXPECT_EQ(verify(c).verdict, AuthVerdict::kChallenge);
}

TEST_F(DigestTest, NonceFromTheFarFutureIsStale) {
  Credentials c;
  now_ += kMaxClockSkew + 1;
  c.nonce = fresh_nonce();  // made by a node whose clock is ahead
  now_ -= kMaxClockSkew + 1;
  EXPECT_EQ(verify(c).verdict, AuthVerdict::kStale);
  now_ += 1;  // within the allowed skew
  c.nc = "00000002";
  EXPECT_EQ(verify(c).verdict, AuthVerdict::kOk);
}

TEST_F(DigestTest, NonceCountMustIncrease) {
  Credentials c;
  c.nonce = fresh_nonce();
  for (std::string nc : {"00000001", "00000002", "0000000a", "0000000B"}) {
    c.nc = nc;
    EXPECT_EQ(verify(c).verdict, AuthVerdict::kOk) << nc;
  }
  for (std::string nc : {"0000000b", "00000005", "00000001"}) {  // replayed or going back
    c.nc = nc;
    auto r = verify(c);
    EXPECT_EQ(r.verdict, AuthVerdict::kChallenge) << nc;
    EXPECT_EQ(r.why, auth_why::kReplay) << nc;
  }
  c.nc = "0000000c";
  EXPECT_EQ(verify(c).verdict, AuthVerdict::kOk);
  EXPECT_EQ(auth_->tracked_nonces(), 1U);

  Credentials zero;
  zero.nonce = fresh_nonce();
  zero.nc = "00000000";  // counts start at 1
  EXPECT_EQ(verify(zero).why, auth_why::kReplay);
}

TEST_F(DigestTest, ReplayOfAnIdenticalRequestIsRefused) {
  Credentials c;
  c.nonce = fresh_nonce();
  auto msg = request(c.method, c.uri, c.line());
  EXPECT_EQ(auth_->verify(*msg, ChallengeKind::kWww, kRealm).verdict, AuthVerdict::kOk);
  EXPECT_EQ(auth_->verify(*msg, ChallengeKind::kWww, kRealm).why, auth_why::kReplay);
}

TEST_F(DigestTest, TamperedNonceIsRefused) {
  Credentials c;
  std::string good = fresh_nonce();
  ASSERT_EQ(good.size(), 54U);
  // Each character changed in turn (the response is computed over the tampered nonce, so only
  // the nonce's own integrity can refuse it).
  for (size_t i = 0; i < good.size(); ++i) {
    c.nonce = good;
    c.nonce[i] = c.nonce[i] == 'A' ? 'B' : 'A';
    auto r = verify(c);
    EXPECT_EQ(r.verdict, AuthVerdict::kChallenge) << i;
    EXPECT_EQ(r.why, auth_why::kForgedNonce) << i;
  }
  for (const std::string& bad : {good.substr(1), good + "A", std::string("dcd98b7102dd2f0e8b11d0f600bfb0c093"),
                                 std::string(54, '*'), std::string(54, 'A')}) {
    c.nonce = bad;
    EXPECT_EQ(verify(c).why, auth_why::kForgedNonce) << bad;
  }
  // A node with another secret, or a nonce made for another realm, does not count either.
  auto other_config = config();
  other_config.secret = "a-different-secret-of-the-same-length";
  auto other = make_auth(other_config);
  c.nonce = fresh_nonce(*other);
  EXPECT_EQ(verify(c).why, auth_why::kForgedNonce);
  c.nonce = fresh_nonce(*auth_, "other.org");
  EXPECT_EQ(verify(c).why, auth_why::kForgedNonce);
  c.nonce = good;
  EXPECT_EQ(verify(c).verdict, AuthVerdict::kOk);
}

TEST_F(DigestTest, AnotherNodeWithTheSameSecretAcceptsTheNonce) {
  auto other_node = make_auth(config());
  Credentials c;
  c.nonce = fresh_nonce(*other_node);
  EXPECT_EQ(verify(c).verdict, AuthVerdict::kOk);
  // The nc state is per node: the issuing node sees a first use of nc=2.
  c.nc = "00000002";
  auto msg = request(c.method, c.uri, c.line());
  EXPECT_EQ(other_node->verify(*msg, ChallengeKind::kWww, kRealm).verdict, AuthVerdict::kOk);
}

TEST_F(DigestTest, CredentialsForOtherRealmsAreIgnored) {
  Credentials other;
  other.realm = "other.org";
  other.user = "bob";
  other.password = "builder";
  other.nonce = fresh_nonce(*auth_, "other.org");
  auto r = verify(other);
  EXPECT_EQ(r.verdict, AuthVerdict::kChallenge);
  EXPECT_EQ(r.why, auth_why::kNoCredentials);

  // Next to credentials for our realm, they are skipped.
  Credentials ours;
  ours.nonce = fresh_nonce();
  auto msg = request(ours.method, ours.uri, other.line() + ours.line());
  auto ok = auth_->verify(*msg, ChallengeKind::kWww, kRealm);
  EXPECT_EQ(ok.verdict, AuthVerdict::kOk) << ok.why;
}

TEST_F(DigestTest, UnknownSchemeGetsAChallengeNot400) {
  // RFC 4475 §3.3.7 (regaut01).
  auto msg = request("REGISTER", kRegisterUri, "Authorization: NoOneKnowsThisScheme opaque-data=here\r\n");
  auto r = auth_->verify(*msg, ChallengeKind::kWww, kRealm);
  EXPECT_EQ(r.verdict, AuthVerdict::kChallenge);
  EXPECT_EQ(r.why, auth_why::kNoCredentials);
  auto none = request("REGISTER", kRegisterUri, "");
  EXPECT_EQ(auth_->verify(*none, ChallengeKind::kWww, kRealm).why, auth_why::kNoCredentials);
}

TEST_F(DigestTest, UriMustBeTheRequestUri) {
  Credentials c;
  c.nonce = fresh_nonce();
  c.uri = "sip:elsewhere.example.net";
  // Both the response and the uri parameter name another URI than the one requested.
  std::string line = c.line();
  auto msg = request("REGISTER", kRegisterUri, line);
  auto r = auth_->verify(*msg, ChallengeKind::kWww, kRealm);
  EXPECT_EQ(r.verdict, AuthVerdict::kBadRequest);
  EXPECT_EQ(r.why, auth_why::kUriMismatch);
  // White space around the uri value is trimmed before comparing.
  c.uri = " sip:example.com ";
  msg = request("REGISTER", kRegisterUri, c.line());
  EXPECT_EQ(auth_->verify(*msg, ChallengeKind::kWww, kRealm).verdict, AuthVerdict::kOk);
}

TEST_F(DigestTest, ProxyAuthorizationAndAuthorizationAreDistinct) {
  Credentials invite;
  invite.method = "INVITE";
  invite.uri = "sip:bob@example.com";
  invite.nonce = fresh_nonce();
  invite.header = "Proxy-Authorization";
  auto msg = request(invite.method, invite.uri, invite.line());
  EXPECT_EQ(auth_->verify(*msg, ChallengeKind::kWww, kRealm).why, auth_why::kNoCredentials);
  auto r = auth_->verify(*msg, ChallengeKind::kProxy, kRealm);
  EXPECT_EQ(r.verdict, AuthVerdict::kOk) << r.why;
  EXPECT_EQ(r.username, "alice");

  Credentials reg;
  reg.nonce = fresh_nonce();
  auto reg_msg = request(reg.method, reg.uri, reg.line());
  EXPECT_EQ(auth_->verify(*reg_msg, ChallengeKind::kProxy, kRealm).why, auth_why::kNoCredentials);
  // The method is part of the response: credentials computed for REGISTER do not fit an INVITE.
  Credentials wrong_method = invite;
  wrong_method.nc = "00000002";
  wrong_method.response = rfc_response(DigestAlgorithm::kSha256, "alice", kRealm, "wonderland", "REGISTER", invite.uri,
                                       invite.nonce, "00000002", invite.cnonce);
  EXPECT_EQ(verify(wrong_method, ChallengeKind::kProxy).why, auth_why::kWrongResponse);
}

TEST_F(DigestTest, QopIsRequired) {
  Credentials c;
  c.nonce = fresh_nonce();
  // RFC 2069 style: response = H(HA1:nonce:HA2), no qop, nc or cnonce.
  std::string a1 = hex_hash(DigestAlgorithm::kMd5, "alice:example.com:wonderland");
  std::string a2 = hex_hash(DigestAlgorithm::kMd5, "REGISTER:sip:example.com");
  c.response = hex_hash(DigestAlgorithm::kMd5, a1 + ":" + c.nonce + ":" + a2);
  c.algorithm = "MD5";
  c.qop = "";
  auto r = verify(c);
  EXPECT_EQ(r.verdict, AuthVerdict::kChallenge);
  EXPECT_EQ(r.why, auth_why::kNoQop);

  Credentials int_qop;
  int_qop.nonce = fresh_nonce();
  int_qop.qop = "auth-int";
  EXPECT_EQ(verify(int_qop).why, auth_why::kQopNotOffered);
}

TEST_F(DigestTest, SessAndOtherAlgorithmsAreRefused) {
  for (std::string algorithm : {"MD5-sess", "SHA-256-sess", "SHA-512-256"}) {
    Credentials c;
    c.nonce = fresh_nonce();
    c.algorithm = algorithm;
    c.response = std::string(64, '0');
    auto r = verify(c);
    EXPECT_EQ(r.verdict, AuthVerdict::kChallenge) << algorithm;
    EXPECT_EQ(r.why, auth_why::kAlgorithmNotOffered) << algorithm;
  }
}

TEST_F(DigestTest, MalformedOrIncompleteCredentialsAre400) {
  std::string nonce = fresh_nonce();
  auto check = [&](const std::string& line, std::string_view why) {
    auto msg = request("REGISTER", kRegisterUri, line);
    ASSERT_NE(msg, nullptr);
    auto r = auth_->verify(*msg, ChallengeKind::kWww, kRealm);
    EXPECT_EQ(r.verdict, AuthVerdict::kBadRequest) << line;
    EXPECT_EQ(r.why, why) << line;
  };
  const std::string head = "Authorization: Digest realm=\"example.com\", algorithm=SHA-256, ";
  check(head + "nonce=\"" + nonce +
            "\", uri=\"sip:example.com\", response=\"00\", qop=auth, nc=00000001, cnonce=\"x\"\r\n",
        auth_why::kIncomplete);  // no username
  check(head + "username=\"alice\", uri=\"sip:example.com\", response=\"00\", qop=auth, nc=00000001, cnonce=\"x\"\r\n",
        auth_why::kIncomplete);  // no nonce
  check(head + "username=\"alice\", nonce=\"" + nonce +
            "\", uri=\"sip:example.com\", response=\"00\", qop=auth, nc=00000001\r\n",
        auth_why::kIncomplete);  // no cnonce
  for (std::string_view nc : {"1", "000000001", "0000000g", "\"\""}) {
    std::string line = head;
    line += "username=\"alice\", nonce=\"" + nonce + "\", uri=\"sip:example.com\", response=\"00\", qop=auth, nc=";
    line += nc;
    line += ", cnonce=\"x\"\r\n";
    check(line, auth_why::kBadNonceCount);
  }
  check("Authorization: Digest realm=\"example.com\", username=\r\n", auth_why::kMalformed);
}

TEST_F(DigestTest, EvictionNeverReopensReplay) {
  auto c = config();
  c.max_tracked_nonces = 16;  // one entry per shard
  auth_ = make_auth(c);
  std::vector<Credentials> used;
  for (int i = 0; i < 200; ++i) {
    Credentials cred;
    cred.nonce = fresh_nonce();
    cred.cnonce = "c" + std::to_string(i);
    ASSERT_EQ(verify(cred).verdict, AuthVerdict::kOk) << i;
    used.push_back(cred);
    now_ += 1;
  }
  EXPECT_LE(auth_->tracked_nonces(), 16U);
  size_t forgotten = 0;
  for (const auto& cred : used) {
    auto r = verify(cred);  // the same request again
    EXPECT_NE(r.verdict, AuthVerdict::kOk);
    if (r.why == auth_why::kForgotten) {
      EXPECT_EQ(r.verdict, AuthVerdict::kStale);
      ++forgotten;
    } else {
      EXPECT_EQ(r.why, auth_why::kReplay);
    }
  }
  EXPECT_GE(forgotten, 200U - 16U);
  // A fresh nonce still works after all that.
  Credentials fresh;
  fresh.nonce = fresh_nonce();
  EXPECT_EQ(verify(fresh).verdict, AuthVerdict::kOk);
}

TEST_F(DigestTest, ConcurrentVerifyFromTwoThreads) {
  constexpr int kRounds = 300;
  std::atomic<int> ok{0}, replays{0}, other{0};
  auto worker = [&](int id) {
    for (int i = 0; i < kRounds; ++i) {
      Credentials c;
      auto headers = auth_->challenge_headers(ChallengeKind::kProxy, kRealm, false);
      if (!headers.ok()) {
        ++other;
        continue;
      }
      c.nonce = param(*headers, "nonce");
      c.header = "Proxy-Authorization";
      c.method = "INVITE";
      c.uri = "sip:bob@example.com";
      c.cnonce = "t" + std::to_string(id) + "-" + std::to_string(i);
      c.algorithm = i % 2 == 0 ? "SHA-256" : "MD5";
      auto msg = request(c.method, c.uri, c.line());
      for (int attempt = 0; attempt < 2; ++attempt) {  // the second is a replay
        auto r = auth_->verify(*msg, ChallengeKind::kProxy, kRealm);
        if (r.verdict == AuthVerdict::kOk && r.username == "alice") {
          ++ok;
        } else if (r.why == auth_why::kReplay) {
          ++replays;
        } else {
          ++other;
        }
      }
    }
  };
  std::thread a(worker, 1), b(worker, 2);
  a.join();
  b.join();
  EXPECT_EQ(ok.load(), 2 * kRounds);
  EXPECT_EQ(replays.load(), 2 * kRounds);
  EXPECT_EQ(other.load(), 0);
}

}  // namespace
}  // namespace pinhole::registrar
