// NAT detection tests (DESIGN.md §1): each named test firing and not firing on real SIP
// messages, names for config, and the NAT lab's scenarios (ua1 192.168.1.10 behind nat1
// 203.0.113.101, public ua 203.0.113.50).
#include "nat/nat_detect.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace pinhole::nat {
namespace {

using net::Endpoint;
using net::Transport;

Endpoint endpoint(std::string_view text) {
  auto r = Endpoint::parse(text);
  EXPECT_TRUE(r.ok()) << text;
  return r.ok() ? *r : Endpoint{};
}

// A REGISTER whose top Via is "SIP/2.0/<via_transport> <sent_by>" and whose Contact header
// value is `contact` (no Contact header when empty).
std::string register_request(std::string_view sent_by, std::string_view contact,
                             std::string_view via_transport = "UDP") {
  std::string m = "REGISTER sip:edge.example SIP/2.0\r\n";
  m += "Via: SIP/2.0/" + std::string(via_transport) + " " + std::string(sent_by) + ";branch=z9hG4bK-reg-1;rport\r\n";
  m += "Max-Forwards: 70\r\n"
       "From: <sip:alice@edge.example>;tag=a73kszlfl\r\n"
       "To: <sip:alice@edge.example>\r\n"
       "Call-ID: 1j9FpLxk3uxtm8tn@ua1.example\r\n"
       "CSeq: 1 REGISTER\r\n";
  if (!contact.empty()) m += "Contact: " + std::string(contact) + "\r\n";
  m += "Expires: 3600\r\nContent-Length: 0\r\n\r\n";
  return m;
}

// A 200 response to an INVITE, as the callee sends it: the top Via is the edge's own.
std::string ok_response(std::string_view contact) {
  std::string m =
      "SIP/2.0 200 OK\r\n"
      "Via: SIP/2.0/UDP 192.168.50.1:5060;branch=z9hG4bK-edge-1;received=203.0.113.10\r\n"
      "From: <sip:bob@edge.example>;tag=b1\r\n"
      "To: <sip:alice@edge.example>;tag=a1\r\n"
      "Call-ID: call-1@edge.example\r\n"
      "CSeq: 1 INVITE\r\n";
  m += "Contact: " + std::string(contact) + "\r\n";
  m += "Content-Length: 0\r\n\r\n";
  return m;
}

sip::MessagePtr parse(const std::string& text) {
  auto r = sip::Message::parse(text, sip::Framing::kDatagram);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().what) << "\n" << text;
  return r.ok() ? std::move(r).value() : nullptr;
}

// Runs only `test` and says whether it fired.
bool fires(NatTest test, const std::string& message, std::string_view source, Transport transport = Transport::kUdp,
           std::vector<std::string_view> sdp = {}) {
  auto m = parse(message);
  if (!m) return false;
  auto r = detect_nat(NatTestSet{test}, *m, endpoint(source), transport, sdp);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().what);
  if (!r.ok()) return false;
  // Nothing but the enabled test may ever fire.
  EXPECT_TRUE(r->empty() || *r == NatTestSet{test}) << format_nat_tests(*r);
  return r->has(test);
}

// ---------------------------------------------------------------------------------------------
// Names

TEST(NatTestNames, EachNameRoundTrips) {
  const std::vector<std::pair<NatTest, std::string_view>> names = {
      {NatTest::kContactPrivate, "contact-private"}, {NatTest::kViaPrivate, "via-private"},
      {NatTest::kSdpPrivate, "sdp-private"},         {NatTest::kViaSourceIp, "via-source-ip"},
      {NatTest::kViaSourcePort, "via-source-port"},  {NatTest::kContactSource, "contact-source"},
      {NatTest::kSourcePrivate, "source-private"},   {NatTest::kWebSocket, "websocket"},
  };
  ASSERT_EQ(names.size(), kNatTestCount);
  for (const auto& [test, name] : names) {
    EXPECT_EQ(nat_test_name(test), name);
    EXPECT_EQ(nat_test_from_name(name), test) << name;
  }
}

TEST(NatTestNames, ParseList) {
  std::vector<std::string_view> names = {"contact-private", "via-source-port", "websocket", "contact-private"};
  auto r = parse_nat_tests(names);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (NatTestSet{NatTest::kContactPrivate, NatTest::kViaSourcePort, NatTest::kWebSocket}));
  EXPECT_EQ(format_nat_tests(*r), "contact-private,via-source-port,websocket");

  auto empty = parse_nat_tests({});
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
  EXPECT_EQ(format_nat_tests(*empty), "");

  std::vector<std::string_view> every = {"contact-private", "via-private",    "sdp-private",    "via-source-ip",
                                         "via-source-port", "contact-source", "source-private", "websocket"};
  auto all = parse_nat_tests(every);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(*all, NatTestSet::all());
}

TEST(NatTestNames, UnknownNameListsValidOnes) {
  for (std::string_view bad : {"contact_private", "Contact-Private", "", "rfc1918", "via-private ", "all"}) {
    std::vector<std::string_view> names = {"via-private", bad};
    auto r = parse_nat_tests(names);
    ASSERT_FALSE(r.ok()) << "'" << bad << "'";
    EXPECT_EQ(r.error(), kUnknownNatTest);
    EXPECT_FALSE(nat_test_from_name(bad).has_value());
  }
  // The message names every test, so the operator can fix the config from it alone.
  for (size_t i = 0; i < kNatTestCount; ++i) {
    std::string_view name = nat_test_name(static_cast<NatTest>(i));
    EXPECT_NE(kUnknownNatTest.what.find(name), std::string_view::npos) << name;
  }
}

TEST(NatTestSetOps, Basics) {
  NatTestSet s;
  EXPECT_TRUE(s.empty());
  s.add(NatTest::kWebSocket);
  EXPECT_TRUE(s.has(NatTest::kWebSocket));
  EXPECT_FALSE(s.has(NatTest::kContactPrivate));
  EXPECT_FALSE(s.empty());
  for (size_t i = 0; i < kNatTestCount; ++i) EXPECT_TRUE(NatTestSet::all().has(static_cast<NatTest>(i)));
}

// ---------------------------------------------------------------------------------------------
// Each test on its own

TEST(NatDetect, ContactPrivate) {
  const std::string_view src = "203.0.113.101:40123";
  EXPECT_TRUE(
      fires(NatTest::kContactPrivate, register_request("192.168.1.10:5060", "<sip:alice@192.168.1.10:5060>"), src));
  EXPECT_TRUE(fires(NatTest::kContactPrivate, register_request("a.example", "<sip:alice@10.0.0.1>"), src));
  EXPECT_TRUE(fires(NatTest::kContactPrivate, register_request("a.example", "<sip:alice@100.64.0.1>"), src));
  EXPECT_TRUE(fires(NatTest::kContactPrivate, register_request("a.example", "<sip:alice@[fd12::1]:5060>"), src));
  EXPECT_TRUE(fires(NatTest::kContactPrivate, register_request("a.example", "<sip:alice@[fe80::1]>"), src));
  EXPECT_TRUE(fires(NatTest::kContactPrivate, register_request("a.example", "sip:alice@127.0.0.1"), src));
  EXPECT_TRUE(fires(NatTest::kContactPrivate, register_request("a.example", "<sip:alice@[::ffff:192.168.1.10]>"), src));
  // Any of several contacts.
  EXPECT_TRUE(fires(NatTest::kContactPrivate,
                    register_request("a.example", "<sip:alice@203.0.113.50>, <sip:alice@172.16.5.5;transport=tcp>"),
                    src));

  EXPECT_FALSE(fires(NatTest::kContactPrivate, register_request("a.example", "<sip:alice@203.0.113.50:5060>"), src));
  EXPECT_FALSE(fires(NatTest::kContactPrivate, register_request("a.example", "<sip:alice@[2001:db8::1]>"), src));
  EXPECT_FALSE(fires(NatTest::kContactPrivate, register_request("a.example", "<sip:alice@alice-pc.example.com>"), src));
  EXPECT_FALSE(fires(NatTest::kContactPrivate, register_request("a.example", "<sip:alice@172.32.0.1>"), src));
  EXPECT_FALSE(fires(NatTest::kContactPrivate, register_request("a.example", "*"), src));
  EXPECT_FALSE(fires(NatTest::kContactPrivate, register_request("a.example", ""), src));  // no Contact
  EXPECT_FALSE(fires(NatTest::kContactPrivate, register_request("a.example", "<tel:+15550100>"), src));
  // The Contact's user part is not its host.
  EXPECT_FALSE(fires(NatTest::kContactPrivate, register_request("a.example", "<sip:192.168.1.10@203.0.113.50>"), src));
}

TEST(NatDetect, ViaPrivate) {
  const std::string_view src = "203.0.113.101:40123";
  const std::string_view contact = "<sip:alice@203.0.113.50>";
  EXPECT_TRUE(fires(NatTest::kViaPrivate, register_request("192.168.1.10:5060", contact), src));
  EXPECT_TRUE(fires(NatTest::kViaPrivate, register_request("192.168.1.10", contact), src));
  EXPECT_TRUE(fires(NatTest::kViaPrivate, register_request("[fd00::10]:5060", contact), src));
  EXPECT_TRUE(fires(NatTest::kViaPrivate, register_request("100.100.1.1:5060", contact), src));
  EXPECT_FALSE(fires(NatTest::kViaPrivate, register_request("203.0.113.50:5060", contact), src));
  EXPECT_FALSE(fires(NatTest::kViaPrivate, register_request("[2001:db8::50]:5060", contact), src));
  EXPECT_FALSE(fires(NatTest::kViaPrivate, register_request("ua1.example.com", contact), src));
  // RFC 7118 §5: a WebSocket client's Via host is an invalid name; not private.
  EXPECT_FALSE(
      fires(NatTest::kViaPrivate, register_request("df7jal23ls0d.invalid", contact, "WSS"), src, Transport::kWss));
}

TEST(NatDetect, SdpPrivate) {
  const std::string reg = register_request("203.0.113.50:5060", "<sip:alice@203.0.113.50>");
  const std::string_view src = "203.0.113.50:5060";
  EXPECT_TRUE(fires(NatTest::kSdpPrivate, reg, src, Transport::kUdp, {"192.168.1.10"}));
  EXPECT_TRUE(fires(NatTest::kSdpPrivate, reg, src, Transport::kUdp, {"fd00::10"}));
  EXPECT_TRUE(fires(NatTest::kSdpPrivate, reg, src, Transport::kUdp, {"100.64.1.1"}));
  // A session-level public c= and a private media-level one.
  EXPECT_TRUE(fires(NatTest::kSdpPrivate, reg, src, Transport::kUdp, {"203.0.113.50", "10.1.1.1"}));

  EXPECT_FALSE(fires(NatTest::kSdpPrivate, reg, src, Transport::kUdp, {"203.0.113.50"}));
  EXPECT_FALSE(fires(NatTest::kSdpPrivate, reg, src, Transport::kUdp, {"2001:db8::50"}));
  EXPECT_FALSE(fires(NatTest::kSdpPrivate, reg, src, Transport::kUdp, {"0.0.0.0"}));            // RFC 2543 hold
  EXPECT_FALSE(fires(NatTest::kSdpPrivate, reg, src, Transport::kUdp, {"224.2.1.1/127"}));      // multicast with TTL
  EXPECT_FALSE(fires(NatTest::kSdpPrivate, reg, src, Transport::kUdp, {"media.example.com"}));  // FQDN
  EXPECT_FALSE(fires(NatTest::kSdpPrivate, reg, src, Transport::kUdp, {}));                     // no SDP
  EXPECT_FALSE(fires(NatTest::kSdpPrivate, reg, src, Transport::kUdp, {""}));
}

TEST(NatDetect, ViaSourceIp) {
  const std::string_view contact = "<sip:alice@203.0.113.50>";
  EXPECT_TRUE(fires(NatTest::kViaSourceIp, register_request("192.168.1.10:5060", contact), "203.0.113.101:5060"));
  EXPECT_TRUE(fires(NatTest::kViaSourceIp, register_request("203.0.113.50:5060", contact), "203.0.113.51:5060"));
  // A name never equals the source address.
  EXPECT_TRUE(fires(NatTest::kViaSourceIp, register_request("ua.example.com:5060", contact), "203.0.113.50:5060"));
  EXPECT_TRUE(fires(NatTest::kViaSourceIp, register_request("[2001:db8::50]:5060", contact), "203.0.113.50:5060"));

  EXPECT_FALSE(fires(NatTest::kViaSourceIp, register_request("203.0.113.50:5060", contact), "203.0.113.50:5060"));
  // The port is not this test's business.
  EXPECT_FALSE(fires(NatTest::kViaSourceIp, register_request("203.0.113.50:5060", contact), "203.0.113.50:40000"));
  // IPv6 compares as addresses, not text.
  EXPECT_FALSE(fires(NatTest::kViaSourceIp, register_request("[2001:DB8:0::50]:5060", contact), "[2001:db8::50]:5060"));
  // An IPv4 client seen through a dual-stack socket.
  EXPECT_FALSE(
      fires(NatTest::kViaSourceIp, register_request("203.0.113.50:5060", contact), "[::ffff:203.0.113.50]:5060"));
}

TEST(NatDetect, ViaSourcePort) {
  const std::string_view contact = "<sip:alice@203.0.113.50>";
  EXPECT_FALSE(fires(NatTest::kViaSourcePort, register_request("203.0.113.50:5070", contact), "203.0.113.50:5070"));
  EXPECT_TRUE(fires(NatTest::kViaSourcePort, register_request("203.0.113.50:5070", contact), "203.0.113.50:5071"));
  // Absent port: 5060 for UDP and TCP, 5061 for TLS.
  EXPECT_FALSE(fires(NatTest::kViaSourcePort, register_request("203.0.113.50", contact), "203.0.113.50:5060"));
  EXPECT_TRUE(fires(NatTest::kViaSourcePort, register_request("203.0.113.50", contact), "203.0.113.50:5061"));
  EXPECT_FALSE(fires(NatTest::kViaSourcePort, register_request("203.0.113.50", contact, "TCP"), "203.0.113.50:5060",
                     Transport::kTcp));
  EXPECT_FALSE(fires(NatTest::kViaSourcePort, register_request("203.0.113.50", contact, "TLS"), "203.0.113.50:5061",
                     Transport::kTls));
  EXPECT_TRUE(fires(NatTest::kViaSourcePort, register_request("203.0.113.50", contact, "TLS"), "203.0.113.50:5060",
                    Transport::kTls));
  // A TCP client's ephemeral source port.
  EXPECT_TRUE(fires(NatTest::kViaSourcePort, register_request("203.0.113.50:5060", contact, "TCP"),
                    "203.0.113.50:49152", Transport::kTcp));
  // Only the port: a different address with the same port does not fire this test.
  EXPECT_FALSE(fires(NatTest::kViaSourcePort, register_request("192.168.1.10:5060", contact), "203.0.113.101:5060"));
}

TEST(NatDetect, ContactSource) {
  const std::string_view via = "203.0.113.50:5070";
  EXPECT_FALSE(
      fires(NatTest::kContactSource, register_request(via, "<sip:alice@203.0.113.50:5070>"), "203.0.113.50:5070"));
  EXPECT_TRUE(
      fires(NatTest::kContactSource, register_request(via, "<sip:alice@203.0.113.50:5070>"), "203.0.113.50:5071"));
  EXPECT_TRUE(
      fires(NatTest::kContactSource, register_request(via, "<sip:alice@203.0.113.51:5070>"), "203.0.113.50:5070"));
  // Absent port: 5060, or 5061 for sips and transport=tls (RFC 3263 §4.2).
  EXPECT_FALSE(fires(NatTest::kContactSource, register_request(via, "<sip:alice@203.0.113.50>"), "203.0.113.50:5060"));
  EXPECT_TRUE(fires(NatTest::kContactSource, register_request(via, "<sip:alice@203.0.113.50>"), "203.0.113.50:5061"));
  EXPECT_FALSE(fires(NatTest::kContactSource, register_request(via, "<sips:alice@203.0.113.50>"), "203.0.113.50:5061",
                     Transport::kTls));
  EXPECT_FALSE(fires(NatTest::kContactSource, register_request(via, "<sip:alice@203.0.113.50;transport=tls>"),
                     "203.0.113.50:5061", Transport::kTls));
  // A name never equals the source.
  EXPECT_TRUE(
      fires(NatTest::kContactSource, register_request(via, "<sip:alice@ua.example.com:5070>"), "203.0.113.50:5070"));
  // IPv6 and mapped sources.
  EXPECT_FALSE(fires(NatTest::kContactSource, register_request(via, "<sip:alice@[2001:db8:0:0::50]:5070>"),
                     "[2001:db8::50]:5070"));
  EXPECT_FALSE(fires(NatTest::kContactSource, register_request(via, "<sip:alice@203.0.113.50:5070>"),
                     "[::ffff:203.0.113.50]:5070"));
  // Any contact that differs.
  EXPECT_TRUE(fires(NatTest::kContactSource,
                    register_request(via, "<sip:alice@203.0.113.50:5070>, <sip:alice@203.0.113.50:5080>"),
                    "203.0.113.50:5070"));
  // Nothing to compare: star, no Contact, non-SIP URI.
  EXPECT_FALSE(fires(NatTest::kContactSource, register_request(via, "*"), "203.0.113.50:5070"));
  EXPECT_FALSE(fires(NatTest::kContactSource, register_request(via, ""), "203.0.113.50:5070"));
  EXPECT_FALSE(fires(NatTest::kContactSource, register_request(via, "<tel:+15550100>"), "203.0.113.50:5070"));
}

TEST(NatDetect, SourcePrivate) {
  const std::string reg = register_request("192.168.1.10:5060", "<sip:alice@192.168.1.10>");
  EXPECT_TRUE(fires(NatTest::kSourcePrivate, reg, "192.168.1.10:5060"));
  EXPECT_TRUE(fires(NatTest::kSourcePrivate, reg, "[::ffff:192.168.1.10]:5060"));
  EXPECT_TRUE(fires(NatTest::kSourcePrivate, reg, "[fd00::10]:5060"));
  EXPECT_TRUE(fires(NatTest::kSourcePrivate, reg, "100.64.0.7:5060"));
  EXPECT_TRUE(fires(NatTest::kSourcePrivate, reg, "127.0.0.1:5060"));
  EXPECT_FALSE(fires(NatTest::kSourcePrivate, reg, "203.0.113.101:40123"));
  EXPECT_FALSE(fires(NatTest::kSourcePrivate, reg, "[2001:db8::10]:5060"));
  EXPECT_FALSE(fires(NatTest::kSourcePrivate, reg, "8.8.8.8:5060"));
}

TEST(NatDetect, WebSocket) {
  const std::string reg =
      register_request("df7jal23ls0d.invalid", "<sip:alice@df7jal23ls0d.invalid;transport=ws>", "WS");
  EXPECT_TRUE(fires(NatTest::kWebSocket, reg, "203.0.113.50:50000", Transport::kWs));
  EXPECT_TRUE(fires(NatTest::kWebSocket, reg, "203.0.113.50:50000", Transport::kWss));
  EXPECT_FALSE(fires(NatTest::kWebSocket, reg, "203.0.113.50:50000", Transport::kUdp));
  EXPECT_FALSE(fires(NatTest::kWebSocket, reg, "203.0.113.50:50000", Transport::kTcp));
  EXPECT_FALSE(fires(NatTest::kWebSocket, reg, "203.0.113.50:50000", Transport::kTls));
}

// ---------------------------------------------------------------------------------------------
// Responses, combinations, disabled tests, errors

TEST(NatDetect, ViaTestsNeverFireOnResponses) {
  // The top Via (192.168.50.1:5060) is the edge's own and differs from the source in every way.
  auto m = parse(ok_response("<sip:bob@192.168.2.10:5060>"));
  ASSERT_TRUE(m);
  auto r = detect_nat(NatTestSet::all(), *m, endpoint("203.0.113.102:61000"), Transport::kUdp);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has(NatTest::kViaPrivate));
  EXPECT_FALSE(r->has(NatTest::kViaSourceIp));
  EXPECT_FALSE(r->has(NatTest::kViaSourcePort));
  // The callee's Contact tests still apply.
  EXPECT_EQ(*r, (NatTestSet{NatTest::kContactPrivate, NatTest::kContactSource}));
}

TEST(NatDetect, LabUaBehindNat) {
  // ua1 (192.168.1.10) registers through nat1, which MASQUERADEs to 203.0.113.101:40123.
  auto m = parse(register_request("192.168.1.10:5060", "<sip:alice@192.168.1.10:5060;ob>"));
  ASSERT_TRUE(m);
  std::vector<std::string_view> sdp = {"192.168.1.10"};
  auto r = detect_nat(NatTestSet::all(), *m, endpoint("203.0.113.101:40123"), Transport::kUdp, sdp);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, (NatTestSet{NatTest::kContactPrivate, NatTest::kViaPrivate, NatTest::kSdpPrivate, NatTest::kViaSourceIp,
                            NatTest::kViaSourcePort, NatTest::kContactSource}))
      << format_nat_tests(*r);
}

TEST(NatDetect, LabPublicUa) {
  // The public UA (203.0.113.50) tells the truth: nothing fires, whatever is enabled.
  auto m = parse(register_request("203.0.113.50:5060", "<sip:carol@203.0.113.50:5060>"));
  ASSERT_TRUE(m);
  std::vector<std::string_view> sdp = {"203.0.113.50"};
  auto r = detect_nat(NatTestSet::all(), *m, endpoint("203.0.113.50:5060"), Transport::kUdp, sdp);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty()) << format_nat_tests(*r);
}

TEST(NatDetect, OnlyEnabledTestsRun) {
  auto m = parse(register_request("192.168.1.10:5060", "<sip:alice@192.168.1.10:5060>"));
  ASSERT_TRUE(m);
  auto none = detect_nat(NatTestSet{}, *m, endpoint("192.168.1.10:40000"), Transport::kWs,
                         std::vector<std::string_view>{"10.0.0.1"});
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
  auto some = detect_nat(NatTestSet{NatTest::kViaPrivate, NatTest::kWebSocket}, *m, endpoint("192.168.1.10:40000"),
                         Transport::kUdp);
  ASSERT_TRUE(some.ok());
  EXPECT_EQ(*some, NatTestSet{NatTest::kViaPrivate});
}

TEST(NatDetect, MalformedHeaderIsAnErrorOnlyForTestsThatReadIt) {
  // The Contact is unterminated: the message parses (values are parsed lazily), the Contact
  // does not.
  auto m = parse(register_request("192.168.1.10:5060", "<sip:alice@192.168.1.10:5060"));
  ASSERT_TRUE(m);
  auto contact = detect_nat(NatTestSet{NatTest::kContactPrivate}, *m, endpoint("203.0.113.101:1"), Transport::kUdp);
  ASSERT_FALSE(contact.ok());
  EXPECT_EQ(contact.error().status, 400);
  auto contact_source =
      detect_nat(NatTestSet{NatTest::kContactSource}, *m, endpoint("203.0.113.101:1"), Transport::kUdp);
  EXPECT_FALSE(contact_source.ok());
  auto via = detect_nat(NatTestSet{NatTest::kViaPrivate, NatTest::kWebSocket}, *m, endpoint("203.0.113.101:1"),
                        Transport::kWs);
  ASSERT_TRUE(via.ok());
  EXPECT_EQ(*via, (NatTestSet{NatTest::kViaPrivate, NatTest::kWebSocket}));
}

}  // namespace
}  // namespace pinhole::nat
