// parse_dns_response, answers_for and order_srv on hand-built messages (RFC 1035 §4 wire
// format, RFC 2782 SRV, RFC 3403 NAPTR): the records come back with their TTLs, and malformed
// messages (truncation, pointer loops, forward pointers, bad lengths) are refused, not read.
#include "net/dns_message.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace pinhole::net {
namespace {

// Builds a response message byte by byte.
class Builder {
 public:
  Builder(uint16_t flags, uint16_t qdcount, uint16_t ancount) {
    u16(0x1234);
    u16(flags);
    u16(qdcount);
    u16(ancount);
    u16(0);
    u16(0);
  }
  Builder& u8(uint8_t v) {
    bytes.push_back(v);
    return *this;
  }
  Builder& u16(uint16_t v) {
    bytes.push_back(static_cast<uint8_t>(v >> 8));
    bytes.push_back(static_cast<uint8_t>(v & 0xff));
    return *this;
  }
  Builder& u32(uint32_t v) {
    u16(static_cast<uint16_t>(v >> 16));
    return u16(static_cast<uint16_t>(v & 0xffff));
  }
  Builder& name(std::string_view dotted) {
    while (!dotted.empty()) {
      size_t dot = dotted.find('.');
      std::string_view label = dotted.substr(0, dot);
      u8(static_cast<uint8_t>(label.size()));
      for (char c : label) u8(static_cast<uint8_t>(c));
      dotted = dot == std::string_view::npos ? std::string_view{} : dotted.substr(dot + 1);
    }
    return u8(0);
  }
  Builder& pointer(uint16_t offset) { return u16(static_cast<uint16_t>(0xc000 | offset)); }
  Builder& text(std::string_view s) {
    u8(static_cast<uint8_t>(s.size()));
    for (char c : s) u8(static_cast<uint8_t>(c));
    return *this;
  }
  // Owner as a pointer to the question name at offset 12.
  Builder& rr_header(DnsType type, uint32_t ttl, uint16_t rdlength) {
    pointer(12);
    u16(static_cast<uint16_t>(type));
    u16(1);
    u32(ttl);
    return u16(rdlength);
  }

  std::vector<uint8_t> bytes;
};

constexpr uint16_t kResponse = 0x8180;  // QR, RD, RA, NOERROR

TEST(DnsMessage, ParsesSrvWithCompressedOwnerAndTtl) {
  Builder b(kResponse, 1, 2);
  b.name("_sip._udp.Example.COM").u16(33).u16(1);
  // priority 10, weight 60, port 5060, target "sip1.example.com" (uncompressed: 18 bytes).
  b.rr_header(DnsType::kSrv, 300, 6 + 18).u16(10).u16(60).u16(5060).name("sip1.example.com");
  // Second: target compressed as "sip2" + pointer to "example.com" inside the question (offset
  // 12 + 10 = 22: after "\4_sip\4_udp").
  b.rr_header(DnsType::kSrv, 120, 6 + 5 + 2).u16(20).u16(0).u16(5070).u8(4).u8('s').u8('i').u8('p').u8('2').pointer(22);
  auto r = parse_dns_response(b.bytes);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->rcode, 0);
  ASSERT_EQ(r->answers.size(), 2u);
  EXPECT_EQ(r->answers[0].name, "_sip._udp.example.com");  // lower-cased
  EXPECT_EQ(r->answers[0].type, DnsType::kSrv);
  EXPECT_EQ(r->answers[0].ttl, 300u);
  EXPECT_EQ(r->answers[0].priority, 10);
  EXPECT_EQ(r->answers[0].weight, 60);
  EXPECT_EQ(r->answers[0].port, 5060);
  EXPECT_EQ(r->answers[0].target, "sip1.example.com");
  EXPECT_EQ(r->answers[1].target, "sip2.example.com");
  EXPECT_EQ(r->answers[1].ttl, 120u);
  uint32_t ttl = 1000;
  EXPECT_EQ(answers_for(*r, "_sip._udp.example.com.", DnsType::kSrv, ttl).size(), 2u);
  EXPECT_EQ(ttl, 120u);
}

TEST(DnsMessage, ParsesNaptr) {
  Builder b(kResponse, 1, 1);
  b.name("example.com").u16(35).u16(1);
  std::string_view replacement = "_sip._tcp.example.com";  // 23 bytes on the wire
  b.rr_header(DnsType::kNaptr, 60, static_cast<uint16_t>(4 + 2 + 8 + 1 + 23))
      .u16(10)
      .u16(20)
      .text("s")
      .text("SIP+D2T")
      .text("")
      .name(replacement);
  auto r = parse_dns_response(b.bytes);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->answers.size(), 1u);
  const DnsRecord& n = r->answers[0];
  EXPECT_EQ(n.order, 10);
  EXPECT_EQ(n.preference, 20);
  EXPECT_EQ(n.flags, "s");
  EXPECT_EQ(n.service, "SIP+D2T");
  EXPECT_EQ(n.regexp, "");
  EXPECT_EQ(n.target, "_sip._tcp.example.com");
}

TEST(DnsMessage, FollowsCnameToAddresses) {
  // RDATA length 15 around a 14-byte name: refused.
  Builder b(kResponse, 1, 1);
  b.name("sip.example.com").u16(1).u16(1);
  b.rr_header(DnsType::kCname, 500, 15).name("host.example").u8(0);
  EXPECT_FALSE(parse_dns_response(b.bytes).ok());

  Builder c(kResponse, 1, 3);
  c.name("sip.example.com").u16(1).u16(1);
  size_t cname_target = c.bytes.size() + 12;  // where the CNAME's RDATA (its target) starts
  c.rr_header(DnsType::kCname, 500, 14).name("host.example");
  c.pointer(static_cast<uint16_t>(cname_target)).u16(1).u16(1).u32(30).u16(4).u8(192).u8(0).u8(2).u8(1);
  c.pointer(static_cast<uint16_t>(cname_target)).u16(1).u16(1).u32(40).u16(4).u8(192).u8(0).u8(2).u8(2);
  auto r = parse_dns_response(c.bytes);
  ASSERT_TRUE(r.ok());
  uint32_t ttl = 1000;
  auto found = answers_for(*r, "SIP.example.com", DnsType::kA, ttl);
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0]->address.to_string(), "192.0.2.1");
  EXPECT_EQ(found[1]->address.to_string(), "192.0.2.2");
  EXPECT_EQ(ttl, 30u);
  uint32_t ttl2 = 1000;
  EXPECT_TRUE(answers_for(*r, "other.example.com", DnsType::kA, ttl2).empty());
  EXPECT_EQ(ttl2, 1000u);
}

TEST(DnsMessage, ParsesAaaaAndSkipsOtherTypes) {
  Builder b(kResponse, 1, 2);
  b.name("h.example").u16(28).u16(1);
  b.pointer(12).u16(16).u16(1).u32(10).u16(3).text("hi");  // TXT: skipped
  b.rr_header(DnsType::kAaaa, 0x80000001u, 16);            // TTL with the top bit set reads 0
  for (int i = 0; i < 15; ++i) b.u8(i == 0 ? 0x20 : (i == 1 ? 0x01 : (i == 2 ? 0x0d : (i == 3 ? 0xb8 : 0))));
  b.u8(1);
  auto r = parse_dns_response(b.bytes);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->answers.size(), 1u);
  EXPECT_EQ(r->answers[0].address.to_string(), "2001:db8::1");
  EXPECT_EQ(r->answers[0].ttl, 0u);
}

TEST(DnsMessage, RefusesMalformedMessages) {
  // Too short, not a response.
  EXPECT_FALSE(parse_dns_response(std::vector<uint8_t>{0x12, 0x34, 0x81}).ok());
  EXPECT_FALSE(parse_dns_response(Builder(0x0100, 0, 0).bytes).ok());
  // NXDOMAIN with no records is fine.
  auto nx = parse_dns_response(Builder(0x8183, 0, 0).bytes);
  ASSERT_TRUE(nx.ok());
  EXPECT_EQ(nx->rcode, 3);

  // Claims an answer it does not carry.
  Builder missing(kResponse, 1, 1);
  missing.name("a.example").u16(1).u16(1);
  EXPECT_FALSE(parse_dns_response(missing.bytes).ok());

  // A pointer to itself, and a forward pointer.
  Builder loop(kResponse, 1, 0);
  loop.pointer(12).u16(1).u16(1);
  EXPECT_FALSE(parse_dns_response(loop.bytes).ok());
  Builder forward(kResponse, 1, 0);
  forward.pointer(14).name("a").u16(1).u16(1);
  EXPECT_FALSE(parse_dns_response(forward.bytes).ok());

  // A label running past the end; a reserved label type (0x40).
  Builder past(kResponse, 1, 0);
  past.u8(20).u8('a');
  EXPECT_FALSE(parse_dns_response(past.bytes).ok());
  Builder reserved(kResponse, 1, 0);
  reserved.u8(0x41).u8('a').u8(0).u16(1).u16(1);
  EXPECT_FALSE(parse_dns_response(reserved.bytes).ok());

  // A record with a wrong RDATA length, and RDATA running past the end.
  Builder short_a(kResponse, 1, 1);
  short_a.name("a.example").u16(1).u16(1);
  short_a.rr_header(DnsType::kA, 1, 3).u8(1).u8(2).u8(3);
  EXPECT_FALSE(parse_dns_response(short_a.bytes).ok());
  Builder cut(kResponse, 1, 1);
  cut.name("a.example").u16(1).u16(1);
  cut.rr_header(DnsType::kA, 1, 4).u8(1).u8(2);
  EXPECT_FALSE(parse_dns_response(cut.bytes).ok());

  // A name longer than 255 bytes.
  Builder longname(kResponse, 1, 0);
  for (int i = 0; i < 5; ++i) {
    longname.u8(60);
    for (int k = 0; k < 60; ++k) longname.u8('x');
  }
  longname.u8(0).u16(1).u16(1);
  EXPECT_FALSE(parse_dns_response(longname.bytes).ok());
}

DnsRecord srv(uint16_t priority, uint16_t weight, std::string target) {
  DnsRecord r;
  r.type = DnsType::kSrv;
  r.priority = priority;
  r.weight = weight;
  r.target = std::move(target);
  return r;
}

TEST(OrderSrv, PriorityFirstThenWeightedDraw) {
  std::mt19937 random(12345);
  std::map<std::string, int> first;
  for (int i = 0; i < 2000; ++i) {
    std::vector<DnsRecord> records = {srv(20, 0, "backup"), srv(10, 75, "big"), srv(10, 25, "small"),
                                      srv(10, 0, "zero")};
    order_srv(records, random);
    ASSERT_EQ(records.size(), 4u);
    EXPECT_EQ(records[3].target, "backup");
    for (size_t k = 0; k < 3; ++k) EXPECT_EQ(records[k].priority, 10);
    ++first[records[0].target];
  }
  // RFC 2782: P(first) = weight / 100 for big and small; zero only when the draw is 0 (1/101).
  EXPECT_NEAR(first["big"], 2000 * 75 / 101, 120);
  EXPECT_NEAR(first["small"], 2000 * 25 / 101, 90);
  EXPECT_LT(first["zero"], 80);
}

TEST(OrderSrv, AllZeroWeightsKeepTheirOrder) {
  std::mt19937 random(1);
  std::vector<DnsRecord> records = {srv(1, 0, "a"), srv(0, 0, "b"), srv(1, 0, "c")};
  order_srv(records, random);
  EXPECT_EQ(records[0].target, "b");
  EXPECT_EQ(records[1].target, "a");
  EXPECT_EQ(records[2].target, "c");
}

}  // namespace
}  // namespace pinhole::net
