// Address and Endpoint: parsing (RFC 3261 §25.1 IPv4address, RFC 4291 §2.2 text forms),
// RFC 5952 canonical formatting, ordering, hashing and sockaddr conversion.
//
// Expected bytes and texts come from the RFCs' own examples or are worked out by hand from the
// grammar, never from the code's output.
#include "net/address.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <array>
#include <cstring>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "absl/hash/hash.h"

namespace pinhole::net {
namespace {

Address must_parse(std::string_view text) {
  auto r = Address::parse(text);
  EXPECT_TRUE(r.ok()) << "should parse: " << text << (r.ok() ? "" : std::string(" -> ") + std::string(r.error().what));
  return r.ok() ? *r : Address{};
}

Endpoint must_parse_endpoint(std::string_view text) {
  auto r = Endpoint::parse(text);
  EXPECT_TRUE(r.ok()) << "should parse: " << text << (r.ok() ? "" : std::string(" -> ") + std::string(r.error().what));
  return r.ok() ? *r : Endpoint{};
}

std::vector<uint8_t> bytes_of(const Address& a) { return {a.bytes().begin(), a.bytes().end()}; }

// ---------------------------------------------------------------------------------------------
// IPv4

TEST(AddressV4, ParsesDottedQuad) {
  Address a = must_parse("192.0.2.1");
  EXPECT_TRUE(a.is_v4());
  EXPECT_FALSE(a.is_v6());
  EXPECT_EQ(a.family(), Family::kIPv4);
  EXPECT_EQ(bytes_of(a), (std::vector<uint8_t>{192, 0, 2, 1}));
  EXPECT_EQ(a.v4_host_order(), 0xc0000201u);
  EXPECT_EQ(a.format(), "192.0.2.1");
}

TEST(AddressV4, Extremes) {
  EXPECT_EQ(must_parse("0.0.0.0").v4_host_order(), 0u);
  EXPECT_EQ(must_parse("255.255.255.255").v4_host_order(), 0xffffffffu);
  EXPECT_EQ(Address{}, must_parse("0.0.0.0"));  // the default value is 0.0.0.0
}

TEST(AddressV4, LeadingZerosAreDecimal) {
  // RFC 3261 IPv4address is 1*3DIGIT per octet; "010" is ten, not octal eight (inet_aton).
  Address a = must_parse("010.000.000.001");
  EXPECT_EQ(bytes_of(a), (std::vector<uint8_t>{10, 0, 0, 1}));
  EXPECT_EQ(a.format(), "10.0.0.1");  // formatted without the zeros
  EXPECT_EQ(must_parse("192.168.001.010"), must_parse("192.168.1.10"));
}

TEST(AddressV4, FromNumberAndBytes) {
  EXPECT_EQ(Address::v4(0xcb00710au), must_parse("203.0.113.10"));
  EXPECT_EQ(Address::v4(std::array<uint8_t, 4>{203, 0, 113, 10}), must_parse("203.0.113.10"));
  EXPECT_EQ(Address::v4(0x7f000001u).format(), "127.0.0.1");
}

TEST(AddressV4, Refused) {
  for (std::string_view bad :
       {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.256", "1.2.3.4 ", " 1.2.3.4", "1..2.3", "1.2.3.0004", "a.b.c.d",
        "1.2.3.-1", "1.2.3.4.", ".1.2.3.4", "1,2,3,4", "0x7f.0.0.1", "1.2.3.4:5060", "999.1.1.1", "1.2.3.4/24"}) {
    auto r = Address::parse(bad);
    EXPECT_FALSE(r.ok()) << "should be refused: '" << bad << "'";
    if (!r.ok()) {
      EXPECT_EQ(r.error().status, 400) << bad;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// IPv6 parsing (RFC 4291 §2.2: full, compressed, mixed) and RFC 5952 formatting

TEST(AddressV6, FullForm) {
  Address a = must_parse("2001:0db8:0000:0000:0000:ff00:0042:8329");
  EXPECT_TRUE(a.is_v6());
  EXPECT_EQ(a.family(), Family::kIPv6);
  EXPECT_EQ(bytes_of(a),
            (std::vector<uint8_t>{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0x00, 0x00, 0x42, 0x83, 0x29}));
  EXPECT_EQ(a.format(), "2001:db8::ff00:42:8329");
  EXPECT_EQ(a.v4_host_order(), 0u);  // not an IPv4 address
}

TEST(AddressV6, CompressedForms) {
  std::array<uint8_t, 16> loopback{};
  loopback[15] = 1;
  EXPECT_EQ(must_parse("::1"), Address::v6(loopback));
  EXPECT_EQ(must_parse("::"), Address::v6({}));
  std::array<uint8_t, 16> one{};
  one[1] = 1;
  EXPECT_EQ(must_parse("1::"), Address::v6(one));
  EXPECT_EQ(must_parse("2001:db8::1"), must_parse("2001:0db8:0:0:0:0:0:1"));
  EXPECT_EQ(must_parse("2001:db8::1"), must_parse("2001:DB8::1"));
}

TEST(AddressV6, Bracketed) {
  EXPECT_EQ(must_parse("[2001:db8::1]"), must_parse("2001:db8::1"));
  EXPECT_EQ(must_parse("[::1]"), must_parse("::1"));
  EXPECT_EQ(must_parse("[::ffff:192.0.2.1]"), must_parse("::ffff:c000:201"));
}

TEST(AddressV6, MixedNotation) {
  // RFC 4291 §2.2 form 3: x:x:x:x:x:x:d.d.d.d. RFC 6052 §2.4 example: 64:ff9b::192.0.2.33
  // is 64:ff9b::c000:221.
  Address a = must_parse("64:ff9b::192.0.2.33");
  EXPECT_EQ(a, must_parse("64:ff9b::c000:221"));
  EXPECT_EQ(a.format(), "64:ff9b::c000:221");  // not a mapped address: hex, RFC 5952 §5
  EXPECT_FALSE(a.is_v4_mapped());
  EXPECT_EQ(must_parse("0:0:0:0:0:0:13.1.68.3"), must_parse("::d01:4403"));
}

TEST(AddressV6, Refused) {
  for (std::string_view bad : {"2001:db8::1::2",
                               ":::",
                               "2001:db8:::1",
                               "1:2:3:4:5:6:7:8:9",
                               "12345::",
                               "[2001:db8::1",
                               "2001:db8::1]",
                               "[]",
                               "[:]",
                               "fe80::1%eth0",
                               "fe80::1%25eth0",
                               "::ffff:1.2.3",
                               "::ffff:1.2.3.256",
                               "g::1",
                               "1:2:3:4:5:6:7",
                               "[1.2.3.4]",
                               "[[::1]]",
                               "::1 ",
                               ":1::",
                               "2001:db8::1/64",
                               "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255:1"}) {
    auto r = Address::parse(bad);
    EXPECT_FALSE(r.ok()) << "should be refused: '" << bad << "'";
  }
}

TEST(AddressV6, LongestValidText) {
  Address a = must_parse("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255");
  EXPECT_EQ(a.format(), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");
  EXPECT_EQ(std::string_view("ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255").size(), kMaxAddressText);
  EXPECT_EQ(must_parse("0:0:0:0:0:ffff:255.255.255.255").format(), "::ffff:255.255.255.255");
}

struct Canonical {
  std::string_view in;
  std::string_view out;
};

TEST(AddressV6, Rfc5952Canonical) {
  const Canonical cases[] = {
      {"2001:0db8::0001", "2001:db8::1"},                // §4.1 leading zeros dropped
      {"2001:db8:0:0:0:0:2:1", "2001:db8::2:1"},         // §4.2.1 longest possible shortening
      {"2001:db8::0:1", "2001:db8::1"},                  // §4.2.1
      {"2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"},  // §4.2.2 one 0 field is not shortened
      {"2001:0:0:1:0:0:0:1", "2001:0:0:1::1"},           // §4.2.3 the longest run
      {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},     // §4.2.3 the first of equal runs
      {"2001:DB8:AC10:FE01::", "2001:db8:ac10:fe01::"},  // §4.3 lower case
      {"0:0:0:0:0:0:0:0", "::"},                         //
      {"0:0:0:0:0:0:0:1", "::1"},                        //
      {"1:0:0:0:0:0:0:0", "1::"},                        //
      {"1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"},            // nothing to shorten
      {"1:0:2:0:3:0:4:0", "1:0:2:0:3:0:4:0"},            // only single zero groups
      {"fe80:0:0:0:1:0:0:0", "fe80::1:0:0:0"},           // tie: the first run
      {"0:0:1:0:0:0:1:0", "0:0:1::1:0"},                 // the longer run wins over the first
      {"::2:3", "::2:3"},                                // not "::0.2.0.3" (inet_ntop)
      {"::0.2.0.3", "::2:3"},                            // IPv4-compatible: hex
      {"::ffff:0:192.0.2.1", "::ffff:0:c000:201"},       // RFC 2765 translated: not mapped
      {"::ffff:192.0.2.1", "::ffff:192.0.2.1"},          // §5 mapped keeps the dotted quad
      {"0:0:0:0:0:FFFF:c000:0201", "::ffff:192.0.2.1"},  // §5
      {"2001:db8:85a3:8d3:1319:8a2e:370:7348", "2001:db8:85a3:8d3:1319:8a2e:370:7348"},
      {"ff02::1", "ff02::1"},
      {"fe80::0:0:0:1", "fe80::1"},
  };
  for (const auto& c : cases) {
    Address a = must_parse(c.in);
    EXPECT_EQ(a.format(), c.out) << "from " << c.in;
    EXPECT_EQ(a.to_string(), std::string(c.out)) << "from " << c.in;
    // The canonical text parses back to the same address.
    EXPECT_EQ(must_parse(c.out), a) << c.out;
  }
}

// ---------------------------------------------------------------------------------------------
// IPv4-mapped IPv6 (RFC 4291 §2.5.5.2)

TEST(AddressMapped, Recognised) {
  Address mapped = must_parse("::ffff:192.168.1.10");
  EXPECT_TRUE(mapped.is_v6());
  EXPECT_TRUE(mapped.is_v4_mapped());
  EXPECT_NE(mapped, must_parse("192.168.1.10"));  // kept as written: a distinct value
  EXPECT_EQ(mapped.unmapped(), must_parse("192.168.1.10"));
  EXPECT_EQ(must_parse("192.168.1.10").v4_mapped(), mapped);
  EXPECT_EQ(mapped.v4_mapped(), mapped);                                         // already IPv6
  EXPECT_EQ(must_parse("192.168.1.10").unmapped(), must_parse("192.168.1.10"));  // already IPv4
  EXPECT_EQ(must_parse("2001:db8::1").unmapped(), must_parse("2001:db8::1"));
  EXPECT_FALSE(must_parse("192.168.1.10").is_v4_mapped());
  EXPECT_FALSE(must_parse("::ffff:0:c0a8:10a").is_v4_mapped());  // ::ffff:0:0/96 is not mapped
  EXPECT_FALSE(must_parse("::c0a8:10a").is_v4_mapped());         // IPv4-compatible is not mapped
  EXPECT_FALSE(must_parse("1::ffff:c0a8:10a").is_v4_mapped());
}

// ---------------------------------------------------------------------------------------------
// Ordering, equality, hashing

TEST(AddressCompare, OrderIsFamilyThenNumeric) {
  EXPECT_LT(must_parse("1.2.3.4"), must_parse("1.2.3.5"));
  EXPECT_LT(must_parse("9.255.255.255"), must_parse("10.0.0.0"));  // numeric, not textual
  EXPECT_LT(must_parse("255.255.255.255"), must_parse("::"));      // every IPv4 before every IPv6
  EXPECT_LT(must_parse("2001:db8::1"), must_parse("2001:db8::2"));
  EXPECT_LT(must_parse("2001:db8::ffff"), must_parse("2001:db8::1:0"));
}

TEST(AddressCompare, SameBytesDifferentFamily) {
  // 1.2.3.4 keeps its bytes where 102:304:: has them; only the family tells them apart.
  Address v4 = must_parse("1.2.3.4");
  Address v6 = must_parse("102:304::");
  EXPECT_NE(v4, v6);
  EXPECT_NE(std::hash<Address>{}(v4), std::hash<Address>{}(v6));
  EXPECT_NE(absl::Hash<Address>{}(v4), absl::Hash<Address>{}(v6));
}

TEST(AddressCompare, IsCompact) { EXPECT_LE(sizeof(Address), 17u); }

TEST(AddressHash, EqualValuesHashEqual) {
  Address a = must_parse("2001:db8::1");
  Address b = must_parse("[2001:0DB8:0:0::0:1]");
  ASSERT_EQ(a, b);
  EXPECT_EQ(std::hash<Address>{}(a), std::hash<Address>{}(b));
  EXPECT_EQ(absl::Hash<Address>{}(a), absl::Hash<Address>{}(b));
  Endpoint e1{a, 5060}, e2{b, 5060};
  EXPECT_EQ(std::hash<Endpoint>{}(e1), std::hash<Endpoint>{}(e2));
  EXPECT_EQ(absl::Hash<Endpoint>{}(e1), absl::Hash<Endpoint>{}(e2));
}

TEST(AddressHash, DistinctValuesSpread) {
  // 256 neighbouring addresses of each family and 256 ports of one address: all distinct keys,
  // and no two of them may share a std::hash value (a weak hash would collide on neighbours).
  std::unordered_set<Address> addresses;
  std::unordered_set<size_t> address_hashes;
  for (uint32_t i = 0; i < 256; ++i) {
    Address v4 = Address::v4(0xc0a80100u + i);
    std::array<uint8_t, 16> b{0x20, 0x01, 0x0d, 0xb8};
    b[15] = static_cast<uint8_t>(i);
    Address v6 = Address::v6(b);
    addresses.insert(v4);
    addresses.insert(v6);
    address_hashes.insert(std::hash<Address>{}(v4));
    address_hashes.insert(std::hash<Address>{}(v6));
  }
  EXPECT_EQ(addresses.size(), 512u);
  EXPECT_EQ(address_hashes.size(), 512u);

  std::unordered_set<Endpoint> endpoints;
  std::unordered_set<size_t> endpoint_hashes;
  for (uint32_t port = 5000; port < 5256; ++port) {
    Endpoint e{must_parse("203.0.113.10"), static_cast<uint16_t>(port)};
    endpoints.insert(e);
    endpoint_hashes.insert(std::hash<Endpoint>{}(e));
  }
  EXPECT_EQ(endpoints.size(), 256u);
  EXPECT_EQ(endpoint_hashes.size(), 256u);
}

// ---------------------------------------------------------------------------------------------
// Endpoint

TEST(Endpoint, ParsesV4AndV6) {
  Endpoint e = must_parse_endpoint("192.0.2.1:5060");
  EXPECT_EQ(e.address, must_parse("192.0.2.1"));
  EXPECT_EQ(e.port, 5060);
  Endpoint e6 = must_parse_endpoint("[2001:db8::1]:5061");
  EXPECT_EQ(e6.address, must_parse("2001:db8::1"));
  EXPECT_EQ(e6.port, 5061);
  EXPECT_EQ(must_parse_endpoint("[::ffff:192.0.2.1]:1").address, must_parse("::ffff:192.0.2.1"));
  EXPECT_EQ(must_parse_endpoint("1.2.3.4:0").port, 0);
  EXPECT_EQ(must_parse_endpoint("1.2.3.4:65535").port, 65535);
  EXPECT_EQ(must_parse_endpoint("1.2.3.4:00080").port, 80);
}

TEST(Endpoint, DefaultPort) {
  auto a = Endpoint::parse("192.0.2.1", 5060);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->port, 5060);
  auto b = Endpoint::parse("[2001:db8::1]", 5061);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->address, must_parse("2001:db8::1"));
  EXPECT_EQ(b->port, 5061);
  // A bare IPv6 address cannot carry a port, so all of it is the address.
  auto c = Endpoint::parse("2001:db8::1:5060", 5062);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->address, must_parse("2001:db8::1:5060"));
  EXPECT_EQ(c->port, 5062);
  // An explicit port wins over the default.
  auto d = Endpoint::parse("192.0.2.1:7000", 5060);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->port, 7000);
}

TEST(Endpoint, Refused) {
  for (std::string_view bad : {"",
                               "1.2.3.4",
                               "1.2.3.4:",
                               "1.2.3.4:65536",
                               "1.2.3.4:123456",
                               "1.2.3.4:5060x",
                               "1.2.3.4:+5",
                               "1.2.3.4:-1",
                               "1.2.3.4: 5060",
                               "[2001:db8::1]",
                               "[2001:db8::1]:",
                               "[2001:db8::1]x",
                               "[2001:db8::1]5060",
                               "2001:db8::1:5060",
                               "[2001:db8::1:5060",
                               ":5060",
                               "host.example:5060",
                               "[1.2.3.4]:5060",
                               "1.2.3.4:5060:5061",
                               "[]:5060",
                               "[2001:db8::1]:5060]"}) {
    auto r = Endpoint::parse(bad);
    EXPECT_FALSE(r.ok()) << "should be refused: '" << bad << "'";
    if (!r.ok()) {
      EXPECT_EQ(r.error().status, 400) << bad;
    }
  }
}

TEST(Endpoint, Format) {
  EXPECT_EQ(must_parse_endpoint("192.0.2.1:5060").format(), "192.0.2.1:5060");
  EXPECT_EQ(must_parse_endpoint("[2001:0db8:0:0::1]:5060").format(), "[2001:db8::1]:5060");
  EXPECT_EQ(must_parse_endpoint("[::ffff:192.0.2.1]:0").format(), "[::ffff:192.0.2.1]:0");
  EXPECT_EQ(must_parse_endpoint("255.255.255.255:65535").to_string(), "255.255.255.255:65535");
  // The longest endpoint text fits the fixed buffer.
  EXPECT_EQ(must_parse_endpoint("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535").format(),
            "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535");
  EXPECT_EQ(std::string_view("[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535").size(), kMaxEndpointText);
}

TEST(Endpoint, RoundTrips) {
  for (std::string_view text : {"0.0.0.0:0", "127.0.0.1:5060", "203.0.113.10:5061", "[::]:5060", "[::1]:1",
                                "[fe80::1:0:0:0]:5062", "[2001:db8::ff00:42:8329]:65535", "[::ffff:10.0.0.1]:5060"}) {
    Endpoint e = must_parse_endpoint(text);
    EXPECT_EQ(e.format(), text);
    EXPECT_EQ(must_parse_endpoint(e.format()), e);
  }
}

TEST(Endpoint, OrderAndUnmapped) {
  EXPECT_LT(must_parse_endpoint("1.2.3.4:5060"), must_parse_endpoint("1.2.3.4:5061"));
  EXPECT_LT(must_parse_endpoint("1.2.3.4:5061"), must_parse_endpoint("1.2.3.5:5060"));
  EXPECT_EQ(must_parse_endpoint("[::ffff:1.2.3.4]:5060").unmapped(), must_parse_endpoint("1.2.3.4:5060"));
}

// ---------------------------------------------------------------------------------------------
// sockaddr conversion

TEST(EndpointSockaddr, V4) {
  Endpoint e = must_parse_endpoint("203.0.113.10:5060");
  sockaddr_storage ss{};
  socklen_t len = e.to_sockaddr(ss);
  ASSERT_EQ(len, sizeof(sockaddr_in));
  sockaddr_in in{};
  std::memcpy(&in, &ss, sizeof(in));
  EXPECT_EQ(in.sin_family, AF_INET);
  EXPECT_EQ(in.sin_port, htons(5060));
  in_addr expected{};
  ASSERT_EQ(inet_pton(AF_INET, "203.0.113.10", &expected), 1);
  EXPECT_EQ(in.sin_addr.s_addr, expected.s_addr);
  auto back = Endpoint::from_sockaddr(ss, len);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, e);
}

TEST(EndpointSockaddr, V6) {
  Endpoint e = must_parse_endpoint("[2001:db8::1]:5061");
  sockaddr_storage ss{};
  socklen_t len = e.to_sockaddr(ss);
  ASSERT_EQ(len, sizeof(sockaddr_in6));
  sockaddr_in6 in6{};
  std::memcpy(&in6, &ss, sizeof(in6));
  EXPECT_EQ(in6.sin6_family, AF_INET6);
  EXPECT_EQ(in6.sin6_port, htons(5061));
  in6_addr expected{};
  ASSERT_EQ(inet_pton(AF_INET6, "2001:db8::1", &expected), 1);
  EXPECT_EQ(std::memcmp(&in6.sin6_addr, &expected, 16), 0);
  auto back = Endpoint::from_sockaddr(ss, len);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, e);
}

TEST(EndpointSockaddr, FromKernelStyleAddress) {
  // As recvfrom would fill it on a dual-stack socket: an IPv4 peer as a mapped address. Kept
  // as written; unmapped() gives the IPv4 endpoint.
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(40123);
  ASSERT_EQ(inet_pton(AF_INET6, "::ffff:203.0.113.101", &in6.sin6_addr), 1);
  auto e = Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&in6), sizeof(in6));
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->format(), "[::ffff:203.0.113.101]:40123");
  EXPECT_EQ(e->unmapped(), must_parse_endpoint("203.0.113.101:40123"));
  // And back: v4_mapped() is what a dual-stack socket sends to.
  Endpoint v4 = must_parse_endpoint("203.0.113.101:40123");
  Endpoint mapped{v4.address.v4_mapped(), v4.port};
  sockaddr_storage ss{};
  EXPECT_EQ(mapped.to_sockaddr(ss), sizeof(sockaddr_in6));
  EXPECT_EQ(ss.ss_family, AF_INET6);
}

TEST(EndpointSockaddr, Refused) {
  EXPECT_FALSE(Endpoint::from_sockaddr(nullptr, 0).ok());
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  EXPECT_FALSE(Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&un), sizeof(un)).ok());
  sockaddr_in in{};
  in.sin_family = AF_INET;
  EXPECT_FALSE(Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&in), sizeof(in) - 1).ok());
  EXPECT_FALSE(Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&in), 1).ok());
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  EXPECT_FALSE(Endpoint::from_sockaddr(reinterpret_cast<const sockaddr*>(&in6), sizeof(sockaddr_in)).ok());
}

}  // namespace
}  // namespace pinhole::net
