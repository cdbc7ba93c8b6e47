// Keepalive wire formats: SipHash, tokens, OPTIONS/NOTIFY text (parsed back with our SIP parser),
// stateless reply token extraction, STUN transaction ids.
#include "nat/keepalive_messages.h"

#include <gtest/gtest.h>

#include <string>

namespace pinhole::nat {
namespace {

net::Endpoint ep(const char* text) { return net::Endpoint::parse(text).value(); }

// A response the way a UA builds one (RFC 3261 §8.2.6): the request's Via, From, To, Call-ID and
// CSeq copied, To given a tag.
std::string respond(const sip::Message& req, int status = 200) {
  std::string r = "SIP/2.0 " + std::to_string(status) + " Whatever\r\n";
  for (const auto& h : req.headers()) {
    if (h.kind == sip::HeaderKind::kVia || h.kind == sip::HeaderKind::kFrom || h.kind == sip::HeaderKind::kCallId ||
        h.kind == sip::HeaderKind::kCSeq) {
      r += std::string(h.line);
    } else if (h.kind == sip::HeaderKind::kTo) {
      r += "To: " + std::string(h.value) + ";tag=ua1\r\n";
    }
  }
  return r + "Content-Length: 0\r\n\r\n";
}

TEST(KeepaliveMessages, SipHashReferenceVectors) {
  // SipHash-2-4 paper, appendix A: key 00..0f.
  std::array<uint64_t, 2> key{0x0706050403020100ULL, 0x0f0e0d0c0b0a0908ULL};
  EXPECT_EQ(siphash24(key, ""), 0x726fdb47dd0e0e31ULL);
  std::string fifteen;
  for (int i = 0; i < 15; ++i) fifteen.push_back(static_cast<char>(i));
  EXPECT_EQ(siphash24(key, fifteen), 0xa129ca6149be45e5ULL);
}

TEST(KeepaliveMessages, TokenHexRoundTripAndStrictParse) {
  KeepaliveToken t{0xdeadbeef, 0x0123456789abcdefULL};
  std::string s;
  append_token_hex(s, t);
  EXPECT_EQ(s, "deadbeef0123456789abcdef");
  EXPECT_EQ(parse_token_hex(s), t);
  EXPECT_EQ(parse_token_hex("DEADBEEF0123456789ABCDEF"), t);
  EXPECT_FALSE(parse_token_hex(s.substr(1)).has_value());
  EXPECT_FALSE(parse_token_hex(s + "0").has_value());
  EXPECT_FALSE(parse_token_hex("deadbeef0123456789abcdeg").has_value());
}

TEST(KeepaliveMessages, SignerDependsOnKeyIndexAndGeneration) {
  KeepaliveSigner a({1, 2});
  KeepaliveSigner b({1, 3});
  EXPECT_NE(a.tag(5, 1), b.tag(5, 1));
  EXPECT_NE(a.tag(5, 1), a.tag(6, 1));
  EXPECT_NE(a.tag(5, 1), a.tag(5, 2));
  EXPECT_TRUE(a.verify(a.token(5, 1), 1));
  EXPECT_FALSE(a.verify(a.token(5, 1), 2));
  EXPECT_FALSE(b.verify(a.token(5, 1), 1));
}

TEST(KeepaliveMessages, OptionsRequestIsValidSip) {
  SipKeepaliveBuilder b(false, "sip:ka@edge.example", "ftag1", {"X-Keepalive: yes", "Bad\r\nInjected: 1"});
  std::string out;
  KeepaliveToken token{7, 0xfeedULL};
  b.build(out, ep("198.51.100.9:40123"), "203.0.113.1:5060", token, 42);
  auto m = sip::Message::parse(out, sip::Framing::kDatagram);
  ASSERT_TRUE(m.ok()) << m.error().what << "\n" << out;
  const sip::Message& req = **m;
  EXPECT_EQ(req.method(), sip::Method::kOptions);
  EXPECT_TRUE(out.starts_with("OPTIONS sip:198.51.100.9:40123 SIP/2.0\r\n")) << out;
  auto via = req.top_via();
  ASSERT_TRUE(via.ok());
  EXPECT_EQ((*via)->host, "203.0.113.1");
  EXPECT_EQ((*via)->port, 5060);
  EXPECT_EQ((*via)->transport, "UDP");
  EXPECT_TRUE((*via)->rfc3261_branch());
  EXPECT_TRUE((*via)->has_rport);
  EXPECT_EQ(req.max_forwards().value(), 70);
  EXPECT_EQ(req.cseq()->number, 42U);
  EXPECT_EQ(req.cseq()->method, sip::Method::kOptions);
  EXPECT_EQ((*req.from())->uri.raw, "sip:ka@edge.example");
  ASSERT_NE(req.header("X-Keepalive"), nullptr);
  EXPECT_EQ(req.header("Injected"), nullptr);  // the CR/LF line was dropped
  EXPECT_EQ(req.header("Event"), nullptr);
  EXPECT_TRUE(req.has_content_length());
  EXPECT_TRUE(req.body().empty());
  EXPECT_EQ(sip_response_token(req), std::nullopt);  // a request is never a reply
}

TEST(KeepaliveMessages, NotifyToIpv6CarriesEvent) {
  SipKeepaliveBuilder b(true, "sip:keepalive@pinhole.invalid", "t", {});
  std::string out;
  b.build(out, ep("[2001:db8::5]:5062"), "[2001:db8::1]:5060", KeepaliveToken{1, 2}, 1);
  auto m = sip::Message::parse(out, sip::Framing::kDatagram);
  ASSERT_TRUE(m.ok()) << m.error().what << "\n" << out;
  EXPECT_EQ((*m)->method(), sip::Method::kNotify);
  EXPECT_TRUE(out.starts_with("NOTIFY sip:[2001:db8::5]:5062 SIP/2.0\r\n")) << out;
  ASSERT_NE((*m)->header("Event"), nullptr);
  EXPECT_EQ((*m)->header("Event")->value, "keep-alive");
}

TEST(KeepaliveMessages, ResponseTokenMatching) {
  SipKeepaliveBuilder b(false, "sip:keepalive@pinhole.invalid", "t", {});
  std::string out;
  KeepaliveToken token{0x1234, 0xabcdef0011223344ULL};
  b.build(out, ep("192.0.2.10:5060"), "192.0.2.1:5060", token, 3);
  auto req = sip::Message::parse(out, sip::Framing::kDatagram).value();

  for (int status : {200, 404, 405, 481, 500}) {
    auto resp = sip::Message::parse(respond(*req, status), sip::Framing::kDatagram);
    ASSERT_TRUE(resp.ok());
    EXPECT_EQ(sip_response_token(**resp), token) << status;
  }
  struct Case {
    const char* name;
    std::string from;
    std::string to;
  };
  std::string good = respond(*req);
  std::string hex;
  append_token_hex(hex, token);
  std::string other_hex;
  append_token_hex(other_hex, KeepaliveToken{0x1234, 0xabcdef0011223345ULL});
  for (const Case& c : std::vector<Case>{
           {"call-id differs", "Call-ID: pka" + hex, "Call-ID: pka" + other_hex},
           {"branch not ours", "branch=z9hG4bKpka", "branch=z9hG4bKxyz"},
           {"cseq method", "OPTIONS\r\n", "INVITE\r\n"},
           {"short token", hex + ";rport", hex.substr(1) + ";rport"},
       }) {
    std::string text = good;
    auto at = text.find(c.from);
    ASSERT_NE(at, std::string::npos) << c.name;
    text.replace(at, c.from.size(), c.to);
    auto resp = sip::Message::parse(text, sip::Framing::kDatagram);
    ASSERT_TRUE(resp.ok()) << c.name << "\n" << text;
    EXPECT_EQ(sip_response_token(**resp), std::nullopt) << c.name;
  }
}

TEST(KeepaliveMessages, StunTransactionIdCarriesToken) {
  KeepaliveToken t{0x01020304, 0x1122334455667788ULL};
  auto id = stun_transaction_id(t);
  EXPECT_EQ(id, (StunTransactionId{1, 2, 3, 4, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88}));
  EXPECT_EQ(token_from_stun_id(id), t);
  std::string req;
  append_stun_keepalive(req, t, true);
  auto m = decode_stun(req);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->transaction_id, id);
  EXPECT_TRUE(m->has_fingerprint);
}

}  // namespace
}  // namespace pinhole::nat
