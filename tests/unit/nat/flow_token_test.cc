// RFC 5626 §5.2 flow tokens: the documented layout (checked against tokens built independently,
// with RFC 4648 base32 and RFC 4231-checked HMAC-SHA256), round trips, tamper and truncation
// refusal, key rotation, and validity in a SIP URI user part.
#include "nat/flow_token.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "sip/uri.h"

namespace pinhole::nat {
namespace {

using net::Address;
using net::Endpoint;
using net::Transport;

constexpr std::string_view kKey = "pinhole-test-key-0123456789abcdef";
constexpr std::string_view kOtherKey = "another-32-byte-secret-key-......";
constexpr std::array<Transport, 5> kTransports = {Transport::kUdp, Transport::kTcp, Transport::kTls, Transport::kWs,
                                                  Transport::kWss};

Endpoint endpoint(std::string_view text) {
  auto r = Endpoint::parse(text);
  EXPECT_TRUE(r.ok()) << text;
  return r.ok() ? *r : Endpoint{};
}

FlowTokenCodec must_create(std::string_view key, std::optional<std::string_view> previous = std::nullopt) {
  auto r = FlowTokenCodec::create(key, previous);
  EXPECT_TRUE(r.ok());
  return std::move(r).value();
}

std::string must_encode(const FlowTokenCodec& codec, const Flow& flow) {
  auto r = codec.encode(flow);
  EXPECT_TRUE(r.ok());
  return r.ok() ? *r : std::string();
}

Flow flow(Transport t, std::string_view remote, uint32_t socket_id = 3, uint64_t connection_id = 0) {
  return Flow{t, socket_id, endpoint(remote), connection_id};
}

// ---------------------------------------------------------------------------------------------
// The test's own RFC 4648 base32 (bit by bit, unlike the codec) and HMAC (OpenSSL's one-shot
// HMAC(), unlike the codec's EVP_MAC), each checked against its RFC's vectors first.

std::string base32(const std::vector<uint8_t>& in) {
  constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz234567";
  std::string out;
  size_t total_bits = in.size() * 8;
  for (size_t bit = 0; bit < total_bits; bit += 5) {
    unsigned v = 0;
    for (size_t k = 0; k < 5; ++k) {
      size_t b = bit + k;
      unsigned set = b < total_bits ? (in[b / 8] >> (7 - b % 8)) & 1u : 0u;
      v = v << 1 | set;
    }
    out.push_back(kAlphabet[v]);
  }
  return out;
}

std::vector<uint8_t> unbase32(std::string_view in) {
  std::vector<uint8_t> out(in.size() * 5 / 8, 0);
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    unsigned v = c >= 'a' && c <= 'z' ? static_cast<unsigned>(c - 'a') : static_cast<unsigned>(c - '2' + 26);
    for (size_t k = 0; k < 5; ++k) {
      size_t b = i * 5 + k;
      if (b / 8 < out.size() && ((v >> (4 - k)) & 1u)) out[b / 8] = static_cast<uint8_t>(out[b / 8] | 0x80u >> (b % 8));
    }
  }
  return out;
}

std::vector<uint8_t> hmac_sha256(std::string_view key, const std::vector<uint8_t>& data) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), data.data(), data.size(), md.data(), &len);
  return {md.begin(), md.begin() + len};
}

std::string hex(const std::vector<uint8_t>& v) {
  std::string out;
  for (uint8_t b : v) {
    constexpr std::string_view kHex = "0123456789abcdef";
    out.push_back(kHex[b >> 4]);
    out.push_back(kHex[b & 0xf]);
  }
  return out;
}

std::vector<uint8_t> bytes(std::string_view s) { return {s.begin(), s.end()}; }

TEST(FlowTokenHelpers, Base32MatchesRfc4648Vectors) {
  // RFC 4648 §10, lower case, padding removed.
  EXPECT_EQ(base32(bytes("")), "");
  EXPECT_EQ(base32(bytes("f")), "my");
  EXPECT_EQ(base32(bytes("fo")), "mzxq");
  EXPECT_EQ(base32(bytes("foo")), "mzxw6");
  EXPECT_EQ(base32(bytes("foob")), "mzxw6yq");
  EXPECT_EQ(base32(bytes("fooba")), "mzxw6ytb");
  EXPECT_EQ(base32(bytes("foobar")), "mzxw6ytboi");
  EXPECT_EQ(unbase32("mzxw6ytboi"), bytes("foobar"));
}

TEST(FlowTokenHelpers, HmacMatchesRfc4231) {
  // RFC 4231 §4.2 test case 1.
  std::string key(20, '\x0b');
  EXPECT_EQ(hex(hmac_sha256(key, bytes("Hi There"))),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

// The token for `f` under `key`, built from the layout documented in flow_token.h.
std::string reference_token(std::string_view key, const Flow& f, uint8_t version = 1, int flags_override = -1) {
  std::vector<uint8_t> body;
  body.push_back(version);
  bool v6 = f.remote.address.is_v6();
  body.push_back(flags_override >= 0 ? static_cast<uint8_t>(flags_override)
                                     : static_cast<uint8_t>(static_cast<uint8_t>(f.transport) | (v6 ? 0x10 : 0)));
  for (int shift = 24; shift >= 0; shift -= 8) body.push_back(static_cast<uint8_t>(f.local_socket_id >> shift));
  for (int shift = 56; shift >= 0; shift -= 8) body.push_back(static_cast<uint8_t>(f.connection_id >> shift));
  body.push_back(static_cast<uint8_t>(f.remote.port >> 8));
  body.push_back(static_cast<uint8_t>(f.remote.port));
  for (uint8_t b : f.remote.address.bytes()) body.push_back(b);
  std::vector<uint8_t> mac = hmac_sha256(key, body);
  body.insert(body.end(), mac.begin(), mac.begin() + 16);
  return base32(body);
}

// ---------------------------------------------------------------------------------------------
// Keys

TEST(FlowTokenKeys, ShortKeysRefused) {
  auto r = FlowTokenCodec::create("0123456789abcde");  // 15 bytes
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), kFlowTokenShortKey);
  EXPECT_FALSE(FlowTokenCodec::create("").ok());
  EXPECT_TRUE(FlowTokenCodec::create("0123456789abcdef").ok());  // 16 bytes: the minimum
  auto p = FlowTokenCodec::create(kKey, std::string_view("short"));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error(), kFlowTokenShortKey);
}

TEST(FlowTokenKeys, BinaryKeysWork) {
  std::string key(32, '\0');
  for (size_t i = 0; i < key.size(); ++i) key[i] = static_cast<char>(i * 37);
  FlowTokenCodec codec = must_create(key);
  Flow f = flow(Transport::kUdp, "192.0.2.1:5060");
  EXPECT_EQ(must_encode(codec, f), reference_token(key, f));
}

TEST(FlowTokenKeys, KeysOfEverySizeAroundTheBlock) {
  // RFC 2104 §2: keys up to the 64-byte SHA-256 block are zero-padded, longer ones hashed first.
  Flow f = flow(Transport::kTcp, "198.51.100.20:5060", 1, 2);
  for (size_t size : std::array<size_t, 7>{16, 32, 63, 64, 65, 100, 200}) {
    std::string key(size, 'k');
    key[0] = static_cast<char>(size);
    FlowTokenCodec codec = must_create(key);
    EXPECT_EQ(must_encode(codec, f), reference_token(key, f)) << "key of " << size << " bytes";
  }
}

// ---------------------------------------------------------------------------------------------
// Format

TEST(FlowTokenFormat, KnownAnswers) {
  // Computed outside this code base (Python hmac/base64) from the documented layout.
  FlowTokenCodec codec = must_create(kKey);
  EXPECT_EQ(must_encode(codec, flow(Transport::kTls, "203.0.113.101:40123", 7, 0x0102030405060708)),
            "aebaaaaaa4aqeayeaudaoce4xpfqa4lfergv5xhlam7qf4drsnzw6mopmq");
  EXPECT_EQ(must_encode(codec, flow(Transport::kWss, "[2001:db8::1]:5061", 0xdeadbeef, 42)),
            "aekn5ln654aaaaaaaaaaakqtyuqacdnyaaaaaaaaaaaaaaaaaaa64degjtx3yu7h5faomobxktzfw");
  EXPECT_EQ(must_encode(codec, flow(Transport::kUdp, "192.168.1.10:5060", 1, 0)),
            "aeaaaaaaaeaaaaaaaaaaaaatytakqaikgcojcljetjtddtwp334i5hztya");
}

TEST(FlowTokenFormat, MatchesReferenceForEveryTransportAndFamily) {
  FlowTokenCodec codec = must_create(kKey);
  for (Transport t : kTransports) {
    uint64_t connection = t == Transport::kUdp ? 0 : 0x1122334455667788u;
    for (std::string_view remote : {"203.0.113.101:5060", "[2001:db8::abcd]:65535", "[::ffff:192.0.2.7]:1"}) {
      Flow f = flow(t, remote, 0x01020304, connection);
      std::string token = must_encode(codec, f);
      EXPECT_EQ(token, reference_token(kKey, f)) << net::transport_name(t) << " " << remote;
      // 36 bytes (IPv4) or 48 bytes (IPv6) in base32: ceil(288/5) = 58, ceil(384/5) = 77.
      EXPECT_EQ(token.size(), f.remote.address.is_v4() ? 58u : 77u);
      EXPECT_LE(token.size(), kMaxFlowTokenLength);
    }
  }
}

TEST(FlowTokenFormat, CharactersAreLowerCaseBase32) {
  FlowTokenCodec codec = must_create(kKey);
  for (Transport t : kTransports) {
    for (std::string_view remote : {"198.51.100.7:5070", "[2001:db8::7]:5070"}) {
      std::string token = must_encode(codec, flow(t, remote, 9, 77));
      for (char c : token) EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7')) << token;
    }
  }
}

TEST(FlowTokenFormat, ValidAsSipUriUserPart) {
  FlowTokenCodec codec = must_create(kKey);
  for (Transport t : kTransports) {
    for (std::string_view remote : {"192.168.1.10:5060", "[fd00::10]:5060", "[::ffff:10.0.0.1]:1024"}) {
      std::string token = must_encode(codec, flow(t, remote, 1, 2));
      std::string uri_text = "sip:" + token + "@edge.example;lr";
      auto uri = sip::parse_uri(uri_text);
      ASSERT_TRUE(uri.ok()) << uri_text;
      EXPECT_EQ(uri->user, token);
      EXPECT_EQ(uri->host, "edge.example");
      EXPECT_TRUE(uri->loose_route());
      // The user part comes back as written and decodes to the flow.
      auto decoded = codec.decode(uri->user);
      ASSERT_TRUE(decoded.ok());
      EXPECT_EQ(decoded->flow, flow(t, remote, 1, 2));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Round trips

TEST(FlowTokenRoundTrip, EveryTransportV4AndV6) {
  FlowTokenCodec codec = must_create(kKey);
  for (Transport t : kTransports) {
    for (std::string_view remote :
         {"203.0.113.101:40123", "0.0.0.0:0", "255.255.255.255:65535", "[2001:db8::1]:5060", "[::]:0",
          "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535", "[::ffff:192.168.1.10]:5060"}) {
      Flow f = flow(t, remote, t == Transport::kUdp ? 0 : 0xffffffffu, t == Transport::kUdp ? 0 : 0xfedcba9876543210u);
      auto decoded = codec.decode(must_encode(codec, f));
      ASSERT_TRUE(decoded.ok()) << net::transport_name(t) << " " << remote;
      EXPECT_EQ(decoded->flow, f);
      EXPECT_EQ(decoded->flow.remote.address.family(), f.remote.address.family());
      EXPECT_EQ(decoded->key, KeySlot::kCurrent);
    }
  }
}

TEST(FlowTokenRoundTrip, UpperCaseAccepted) {
  // An intermediary that upper-cases the URI must not break the flow.
  FlowTokenCodec codec = must_create(kKey);
  Flow f = flow(Transport::kTcp, "203.0.113.101:40123", 5, 99);
  std::string token = must_encode(codec, f);
  std::string upper = token;
  for (char& c : upper)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  auto decoded = codec.decode(upper);
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->flow, f);
}

TEST(FlowTokenRoundTrip, Deterministic) {
  FlowTokenCodec codec = must_create(kKey);
  Flow f = flow(Transport::kUdp, "192.0.2.10:5060");
  EXPECT_EQ(must_encode(codec, f), must_encode(codec, f));
}

TEST(FlowTokenRoundTrip, DistinctFlowsGiveDistinctTokens) {
  FlowTokenCodec codec = must_create(kKey);
  Flow base = flow(Transport::kTcp, "203.0.113.101:40000", 1, 100);
  std::vector<Flow> flows = {base};
  for (Transport t : kTransports)
    if (t != base.transport) flows.push_back(Flow{t, base.local_socket_id, base.remote, base.connection_id});
  flows.push_back(Flow{base.transport, 2, base.remote, base.connection_id});
  flows.push_back(Flow{base.transport, base.local_socket_id, endpoint("203.0.113.101:40001"), base.connection_id});
  flows.push_back(Flow{base.transport, base.local_socket_id, endpoint("203.0.113.102:40000"), base.connection_id});
  flows.push_back(
      Flow{base.transport, base.local_socket_id, endpoint("[::ffff:203.0.113.101]:40000"), base.connection_id});
  flows.push_back(Flow{base.transport, base.local_socket_id, base.remote, 101});
  std::set<std::string> tokens;
  for (const Flow& f : flows) tokens.insert(must_encode(codec, f));
  EXPECT_EQ(tokens.size(), flows.size());
  // Another key gives another token for the same flow.
  FlowTokenCodec other = must_create(kOtherKey);
  EXPECT_NE(must_encode(other, base), must_encode(codec, base));
}

TEST(FlowTokenRoundTrip, MovedCodecStillWorks) {
  FlowTokenCodec a = must_create(kKey, kOtherKey);
  FlowTokenCodec b = std::move(a);
  Flow f = flow(Transport::kWs, "[2001:db8::9]:443", 4, 8);
  auto decoded = b.decode(must_encode(b, f));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->flow, f);
  EXPECT_TRUE(b.has_previous_key());
}

TEST(FlowTokenRoundTrip, ConcurrentUse) {
  // The codec is shared by the worker threads: encode/decode on one codec from several at once.
  FlowTokenCodec codec = must_create(kKey, kOtherKey);
  std::vector<std::thread> threads;
  std::array<int, 4> failures{};
  for (size_t t = 0; t < failures.size(); ++t) {
    threads.emplace_back([&codec, &failures, t] {
      for (uint32_t i = 0; i < 500; ++i) {
        Flow f{Transport::kTcp, static_cast<uint32_t>(t), Endpoint{Address::v4(0xcb007100u + i), 5060}, i};
        auto token = codec.encode(f);
        if (!token.ok()) {
          ++failures[t];
          continue;
        }
        auto decoded = codec.decode(*token);
        if (!decoded.ok() || !(decoded->flow == f)) ++failures[t];
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int f : failures) EXPECT_EQ(f, 0);
}

// ---------------------------------------------------------------------------------------------
// Refusals

TEST(FlowTokenRefused, EveryCharacterChangedIsRefused) {
  FlowTokenCodec codec = must_create(kKey);
  constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz234567";
  for (std::string_view remote : {"203.0.113.101:40123", "[2001:db8::1]:5060"}) {
    std::string token = must_encode(codec, flow(Transport::kTls, remote, 7, 1234));
    for (size_t i = 0; i < token.size(); ++i) {
      for (char replacement : kAlphabet) {
        if (replacement == token[i]) continue;
        std::string tampered = token;
        tampered[i] = replacement;
        auto r = codec.decode(tampered);
        EXPECT_FALSE(r.ok()) << "position " << i << " -> " << replacement << " in " << token;
        if (!r.ok()) {
          EXPECT_EQ(r.error().status, 403);
        }
      }
    }
  }
}

TEST(FlowTokenRefused, EveryBitOfEveryByteFlippedIsRefused) {
  // Flip each bit of the decoded bytes (layout fields and MAC alike) and re-encode canonically.
  FlowTokenCodec codec = must_create(kKey);
  for (std::string_view remote : {"203.0.113.101:40123", "[2001:db8::1]:5060"}) {
    std::string token = must_encode(codec, flow(Transport::kUdp, remote));
    std::vector<uint8_t> raw = unbase32(token);
    ASSERT_EQ(base32(raw), token);
    for (size_t byte = 0; byte < raw.size(); ++byte) {
      for (unsigned bit = 0; bit < 8; ++bit) {
        std::vector<uint8_t> tampered = raw;
        tampered[byte] = static_cast<uint8_t>(tampered[byte] ^ (1u << bit));
        auto r = codec.decode(base32(tampered));
        ASSERT_FALSE(r.ok()) << "byte " << byte << " bit " << bit;
        // The version byte is checked before the MAC; everything else fails the MAC.
        EXPECT_EQ(r.error(), byte == 0 ? kFlowTokenBadVersion : kFlowTokenBadMac) << "byte " << byte;
      }
    }
  }
}

TEST(FlowTokenRefused, Truncated) {
  FlowTokenCodec codec = must_create(kKey);
  for (std::string_view remote : {"203.0.113.101:40123", "[2001:db8::1]:5060"}) {
    std::string token = must_encode(codec, flow(Transport::kTcp, remote, 1, 2));
    for (size_t n = 0; n < token.size(); ++n) {
      auto r = codec.decode(std::string_view(token).substr(0, n));
      EXPECT_FALSE(r.ok()) << "prefix of " << n;
      // Also with the front cut off.
      EXPECT_FALSE(codec.decode(std::string_view(token).substr(token.size() - n)).ok()) << "suffix of " << n;
    }
  }
  EXPECT_EQ(codec.decode("").error(), kFlowTokenBadEncoding);
}

TEST(FlowTokenRefused, Extended) {
  FlowTokenCodec codec = must_create(kKey);
  std::string token = must_encode(codec, flow(Transport::kUdp, "203.0.113.101:40123"));
  EXPECT_FALSE(codec.decode(token + "a").ok());
  EXPECT_FALSE(codec.decode(token + "aa").ok());
  EXPECT_FALSE(codec.decode(token + "aaaaaaaa").ok());
  EXPECT_FALSE(codec.decode("a" + token).ok());
  EXPECT_EQ(codec.decode(std::string(kMaxFlowTokenLength + 1, 'a')).error(), kFlowTokenBadEncoding);
  EXPECT_EQ(codec.decode(std::string(10000, 'a')).error(), kFlowTokenBadEncoding);
}

TEST(FlowTokenRefused, WronglyEncoded) {
  FlowTokenCodec codec = must_create(kKey);
  std::string token = must_encode(codec, flow(Transport::kUdp, "203.0.113.101:40123"));
  // Characters outside the base32 alphabet: digits 0, 1, 8, 9, padding and URI punctuation.
  for (char bad : {'0', '1', '8', '9', '=', '-', '_', '%', '.', '+', '/', ' ', '\0', '\xff'}) {
    std::string tampered = token;
    tampered[10] = bad;
    auto r = codec.decode(tampered);
    ASSERT_FALSE(r.ok()) << static_cast<int>(bad);
    EXPECT_EQ(r.error(), kFlowTokenBadEncoding) << static_cast<int>(bad);
  }
  // RFC 4648 padding is not part of the format.
  EXPECT_EQ(codec.decode(token + "======").error(), kFlowTokenBadEncoding);
  // base64 of the same bytes is not accepted either.
  EXPECT_FALSE(codec.decode("AQIAAAAHAQIDBAUGBwicu8sAcWU").ok());
}

TEST(FlowTokenRefused, NonzeroPaddingBits) {
  // 36 bytes take 58 characters whose last 2 bits are padding; setting them gives a different
  // spelling of the same bytes, which must not be accepted (one token per flow and key).
  FlowTokenCodec codec = must_create(kKey);
  std::string token = must_encode(codec, flow(Transport::kUdp, "203.0.113.101:40123"));
  std::vector<uint8_t> raw = unbase32(token);
  std::string respelled = token;
  constexpr std::string_view kAlphabet = "abcdefghijklmnopqrstuvwxyz234567";
  respelled.back() = kAlphabet[kAlphabet.find(token.back()) | 1];
  ASSERT_NE(respelled, token);
  ASSERT_EQ(unbase32(respelled), raw);  // same bytes
  EXPECT_EQ(codec.decode(respelled).error(), kFlowTokenBadEncoding);
}

TEST(FlowTokenRefused, UnknownVersion) {
  FlowTokenCodec codec = must_create(kKey);
  Flow f = flow(Transport::kUdp, "203.0.113.101:40123");
  for (uint8_t version : std::array<uint8_t, 3>{0, 2, 255}) {
    // Even with a valid MAC over the whole body: the layout is unknown.
    auto r = codec.decode(reference_token(kKey, f, version));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error(), kFlowTokenBadVersion) << static_cast<int>(version);
  }
  EXPECT_TRUE(codec.decode(reference_token(kKey, f, 1)).ok());
}

TEST(FlowTokenRefused, AuthenticButInvalidFields) {
  // A MAC-valid token (as a later build with the same key could make) with fields this build
  // does not know.
  FlowTokenCodec codec = must_create(kKey);
  Flow v4 = flow(Transport::kUdp, "203.0.113.101:40123");
  Flow v6 = flow(Transport::kUdp, "[2001:db8::1]:5060");
  EXPECT_EQ(codec.decode(reference_token(kKey, v4, 1, 5)).error(), kFlowTokenBadField);     // transport 5
  EXPECT_EQ(codec.decode(reference_token(kKey, v4, 1, 0x0f)).error(), kFlowTokenBadField);  // transport 15
  EXPECT_EQ(codec.decode(reference_token(kKey, v4, 1, 0x20)).error(), kFlowTokenBadField);  // reserved bit
  EXPECT_EQ(codec.decode(reference_token(kKey, v4, 1, 0x80)).error(), kFlowTokenBadField);  // reserved bit
  EXPECT_EQ(codec.decode(reference_token(kKey, v4, 1, 0x10)).error(), kFlowTokenBadField);  // says IPv6, is 4 bytes
  EXPECT_EQ(codec.decode(reference_token(kKey, v6, 1, 0x00)).error(), kFlowTokenBadField);  // says IPv4, is 16
  EXPECT_TRUE(codec.decode(reference_token(kKey, v4, 1, 0x04)).ok());                       // wss, the last one
}

TEST(FlowTokenRefused, WrongLengthWithValidMac) {
  // A version-1 body one address byte short, MAC'd correctly: refused on its length.
  FlowTokenCodec codec = must_create(kKey);
  std::vector<uint8_t> body = {1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0x13, 0xc4, 203, 0, 113};
  std::vector<uint8_t> mac = hmac_sha256(kKey, body);
  body.insert(body.end(), mac.begin(), mac.begin() + 16);
  EXPECT_EQ(codec.decode(base32(body)).error(), kFlowTokenBadEncoding);
}

TEST(FlowTokenRefused, OtherKey) {
  FlowTokenCodec codec = must_create(kKey);
  FlowTokenCodec other = must_create(kOtherKey);
  auto r = codec.decode(must_encode(other, flow(Transport::kUdp, "203.0.113.101:40123")));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error(), kFlowTokenBadMac);
  EXPECT_EQ(r.error().status, 403);  // RFC 5626 §5.3
}

// ---------------------------------------------------------------------------------------------
// Key rotation

TEST(FlowTokenRotation, PreviousKeyAcceptedThenDropped) {
  Flow f = flow(Transport::kTls, "203.0.113.101:40123", 2, 555);
  FlowTokenCodec before = must_create(kOtherKey);
  std::string old_token = must_encode(before, f);
  EXPECT_FALSE(before.has_previous_key());

  // Rotation: new current key, the old one kept as previous.
  FlowTokenCodec rotating = must_create(kKey, kOtherKey);
  EXPECT_TRUE(rotating.has_previous_key());
  auto old_decoded = rotating.decode(old_token);
  ASSERT_TRUE(old_decoded.ok());
  EXPECT_EQ(old_decoded->flow, f);
  EXPECT_EQ(old_decoded->key, KeySlot::kPrevious);
  // New tokens use the current key only.
  std::string new_token = must_encode(rotating, f);
  EXPECT_NE(new_token, old_token);
  EXPECT_EQ(new_token, reference_token(kKey, f));
  auto new_decoded = rotating.decode(new_token);
  ASSERT_TRUE(new_decoded.ok());
  EXPECT_EQ(new_decoded->key, KeySlot::kCurrent);
  // A tampered old token is still refused during rotation.
  std::string tampered = old_token;
  tampered[20] = tampered[20] == 'a' ? 'b' : 'a';
  EXPECT_EQ(rotating.decode(tampered).error(), kFlowTokenBadMac);

  // Rotation done: the previous key dropped, old tokens refused, new ones still good.
  FlowTokenCodec after = must_create(kKey);
  EXPECT_EQ(after.decode(old_token).error(), kFlowTokenBadMac);
  auto still = after.decode(new_token);
  ASSERT_TRUE(still.ok());
  EXPECT_EQ(still->key, KeySlot::kCurrent);
}

}  // namespace
}  // namespace pinhole::nat
