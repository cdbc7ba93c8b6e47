// STUN codec: RFC 5769 test vectors, encode/decode round trips, STUN-vs-SIP sniffing, malformed
// input.
#include "nat/stun.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace pinhole::nat {
namespace {

std::string bytes(std::initializer_list<int> b) {
  std::string s;
  for (int v : b) s.push_back(static_cast<char>(v));
  return s;
}

// RFC 5769 §2.2: sample IPv4 response (SOFTWARE, XOR-MAPPED-ADDRESS, MESSAGE-INTEGRITY,
// FINGERPRINT); the mapped address is 192.0.2.1 port 32853.
std::string rfc5769_v4() {
  return bytes({
      0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
      0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
      0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
      0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9,
      0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
  });
}
// RFC 5769 §2.3: sample IPv6 response; 2001:db8:1234:5678:11:2233:4455:6677 port 32853.
std::string rfc5769_v6() {
  return bytes({
      0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf,
      0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20, 0x00, 0x20,
      0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe,
      0xd2, 0xb9, 0xd9, 0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1, 0x17, 0x84, 0xc9, 0x7c,
      0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41, 0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c,
  });
}
constexpr StunTransactionId kVectorId{0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};

net::Endpoint ep(const char* text) { return net::Endpoint::parse(text).value(); }

TEST(Stun, Rfc5769Ipv4Response) {
  auto m = decode_binding_response(rfc5769_v4());
  ASSERT_TRUE(m.ok()) << m.error().what;
  EXPECT_EQ(m->type, kStunBindingSuccess);
  EXPECT_EQ(m->transaction_id, kVectorId);
  ASSERT_TRUE(m->xor_mapped.has_value());
  EXPECT_EQ(*m->xor_mapped, ep("192.0.2.1:32853"));
  EXPECT_EQ(m->reflexive(), ep("192.0.2.1:32853"));
  EXPECT_TRUE(m->has_fingerprint);
  EXPECT_TRUE(looks_like_stun(rfc5769_v4()));
}

TEST(Stun, Rfc5769Ipv6Response) {
  auto m = decode_binding_response(rfc5769_v6());
  ASSERT_TRUE(m.ok()) << m.error().what;
  ASSERT_TRUE(m->xor_mapped.has_value());
  EXPECT_EQ(*m->xor_mapped, ep("[2001:db8:1234:5678:11:2233:4455:6677]:32853"));
  EXPECT_TRUE(m->has_fingerprint);
}

TEST(Stun, Crc32KnownValue) {
  // The standard CRC-32 check value.
  EXPECT_EQ(stun_crc32("123456789"), 0xCBF43926U);
}

TEST(Stun, FingerprintMismatchIsRefused) {
  std::string bad = rfc5769_v4();
  bad.back() = static_cast<char>(bad.back() ^ 1);
  auto m = decode_stun(bad);
  ASSERT_FALSE(m.ok());
  EXPECT_EQ(m.error(), kStunBadFingerprint);
  // A changed byte in the covered part is caught too (the SOFTWARE text here).
  std::string changed = rfc5769_v4();
  changed[25] = 'X';
  EXPECT_EQ(decode_stun(changed).error(), kStunBadFingerprint);
}

TEST(Stun, BindingRequestLayout) {
  StunTransactionId id{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  std::string out = "prefix";
  append_binding_request(out, id);
  std::string_view req = std::string_view(out).substr(6);
  ASSERT_EQ(req.size(), kStunHeaderSize);
  EXPECT_EQ(req.substr(0, 8), bytes({0x00, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42}));
  auto m = decode_stun(req);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->type, kStunBindingRequest);
  EXPECT_EQ(m->transaction_id, id);
  EXPECT_FALSE(m->has_fingerprint);
  // A request is not a response.
  EXPECT_EQ(decode_binding_response(req).error(), kStunNotBindingResponse);

  std::string with_fp;
  append_binding_request(with_fp, id, true);
  ASSERT_EQ(with_fp.size(), kStunHeaderSize + 8);
  EXPECT_EQ(with_fp.substr(2, 2), bytes({0x00, 0x08}));
  auto f = decode_stun(with_fp);
  ASSERT_TRUE(f.ok()) << f.error().what;
  EXPECT_TRUE(f->has_fingerprint);
}

TEST(Stun, SuccessRoundTrip) {
  struct Case {
    const char* mapped;
    bool fingerprint;
  };
  for (const Case& c : std::vector<Case>{{"203.0.113.7:5060", false},
                                         {"203.0.113.7:1", true},
                                         {"[2001:db8::1]:65535", false},
                                         {"[::ffff:198.51.100.2]:40000", true}}) {
    SCOPED_TRACE(c.mapped);
    StunTransactionId id{9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 0xff, 0x80};
    std::string out;
    append_binding_success(out, id, ep(c.mapped), c.fingerprint);
    EXPECT_TRUE(looks_like_stun(out));
    auto m = decode_binding_response(out);
    ASSERT_TRUE(m.ok()) << m.error().what;
    EXPECT_EQ(m->transaction_id, id);
    EXPECT_EQ(m->xor_mapped, ep(c.mapped));
    EXPECT_EQ(m->has_fingerprint, c.fingerprint);
  }
}

TEST(Stun, PlainMappedAddressAndErrorCode) {
  // Binding Error Response with ERROR-CODE 420 and a legacy MAPPED-ADDRESS 10.1.2.3:5060.
  std::string msg =
      bytes({0x01, 0x11, 0x00, 0x14, 0x21, 0x12, 0xa4, 0x42, 1,    2,    3,    4,    5,    6,
             7,    8,    9,    10,   11,   12,   0x00, 0x09, 0x00, 0x04, 0x00, 0x00, 0x04, 0x14,  // class 4, number 20
             0x00, 0x01, 0x00, 0x08, 0x00, 0x01, 0x13, 0xc4, 10,   1,    2,    3});
  auto m = decode_binding_response(msg);
  ASSERT_TRUE(m.ok()) << m.error().what;
  EXPECT_EQ(m->type, kStunBindingError);
  EXPECT_EQ(m->error_code, 420);
  EXPECT_FALSE(m->xor_mapped.has_value());
  EXPECT_EQ(m->reflexive(), ep("10.1.2.3:5060"));
}

TEST(Stun, LooksLikeStunSniffing) {
  struct Case {
    std::string input;
    bool stun;
  };
  std::string req;
  append_binding_request(req, StunTransactionId{});
  std::string wrong_cookie = req;
  wrong_cookie[4] = 0x22;
  std::string top_bits = req;
  top_bits[0] = 0x40;
  std::string odd_length = req;
  odd_length[3] = 0x02;
  std::string overlong = req;
  overlong[3] = 0x04;
  for (const Case& c : std::vector<Case>{
           {req, true},
           {"OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP x\r\n", false},
           {"SIP/2.0 200 OK\r\n\r\n\r\n\r\n\r\n", false},
           {"\r\n\r\n", false},
           {req.substr(0, 19), false},
           {wrong_cookie, false},
           {top_bits, false},
           {odd_length, false},
           {overlong, false},
       }) {
    EXPECT_EQ(looks_like_stun(c.input), c.stun) << testing::PrintToString(c.input);
  }
}

TEST(Stun, MalformedIsRefusedNotCrashing) {
  struct Case {
    std::string input;
    Error error;
  };
  auto hdr = [](int len_lo) {
    return bytes({0x01, 0x01, 0x00, len_lo, 0x21, 0x12, 0xa4, 0x42, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  };
  for (const Case& c : std::vector<Case>{
           {"", kStunTooShort},
           {hdr(0).substr(0, 10), kStunTooShort},
           {hdr(4), kStunBadLength},                                                              // claims 4, has 0
           {hdr(0) + bytes({0, 0, 0, 0}), kStunBadLength},                                        // trailing bytes
           {hdr(4) + bytes({0x00, 0x20, 0x00, 0x08}), kStunBadAttribute},                         // value missing
           {hdr(8) + bytes({0x00, 0x20, 0x00, 0x04, 0, 1, 0, 0}), kStunBadAddress},               // too short for v4
           {hdr(12) + bytes({0x00, 0x20, 0x00, 0x08, 0, 3, 0, 0, 1, 2, 3, 4}), kStunBadAddress},  // family 3
           {hdr(8) + bytes({0x80, 0x28, 0x00, 0x03, 0, 0, 0, 0}), kStunBadAttribute},             // FP length
       }) {
    auto m = decode_stun(c.input);
    ASSERT_FALSE(m.ok()) << testing::PrintToString(c.input);
    EXPECT_EQ(m.error(), c.error) << testing::PrintToString(c.input);
  }
  // Every truncation and every single-byte change of a real message decodes or fails cleanly,
  // and a truncation never decodes as a message with a fingerprint.
  for (size_t n = 0; n < rfc5769_v6().size(); ++n) {
    auto m = decode_stun(std::string_view(rfc5769_v6()).substr(0, n));
    if (m.ok()) {
      EXPECT_FALSE(m->has_fingerprint);
    }
  }
  for (size_t i = 0; i < rfc5769_v6().size(); ++i) {
    for (int x : {0x01, 0x80, 0xff}) {
      std::string s = rfc5769_v6();
      s[i] = static_cast<char>(s[i] ^ x);
      auto m = decode_stun(s);
      // The fingerprint covers everything before it, so only a change in its own bytes or in the
      // length/cookie area can pass; none yields a different mapped address with a valid FP.
      if (m.ok() && m->has_fingerprint) {
        EXPECT_EQ(m->xor_mapped, ep("[2001:db8:1234:5678:11:2233:4455:6677]:32853"));
      }
    }
  }
}

TEST(Stun, AttributeAfterFingerprintIsRefused) {
  std::string req;
  append_binding_request(req, StunTransactionId{}, true);
  // Append a SOFTWARE attribute after FINGERPRINT and fix the length: the fingerprint no longer
  // covers the header's length, so either check may fire; it must not decode.
  req += bytes({0x80, 0x22, 0x00, 0x00});
  req[3] = static_cast<char>(req[3] + 4);
  EXPECT_FALSE(decode_stun(req).ok());
}

}  // namespace
}  // namespace pinhole::nat
