// Via values: RFC 3261 §20.42 / §25.1 (via-parm), RFC 3581 (rport), RFC 5923 (alias).
#include "sip/via.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "sip/message.h"

namespace pinhole::sip {
namespace {

// Parses one via-parm that must make up the whole text.
Via must_parse(std::string_view text) {
  Scanner s(text);
  auto r = parse_via(s);
  EXPECT_TRUE(r.ok()) << "should parse: " << text << (r.ok() ? "" : std::string(" -> ") + std::string(r.error().what));
  if (!r.ok()) return {};
  s.skip_lws();
  EXPECT_TRUE(s.at_end()) << "left over: '" << s.rest() << "' in " << text;
  return *r;
}

// A via-parm is refused either by parse_via itself or, for trailing junk, by the message's list
// parser; check both paths by parsing it as the only Via of a request.
bool via_refused(std::string_view text) {
  Scanner s(text);
  auto r = parse_via(s);
  if (!r.ok()) return true;
  s.skip_lws();
  return !s.at_end();
}

std::string request_with_vias(std::string_view via_lines) {
  std::string m = "OPTIONS sip:bob@biloxi.com SIP/2.0\r\n";
  m.append(via_lines);
  m.append(
      "To: <sip:bob@biloxi.com>\r\n"
      "From: <sip:alice@atlanta.com>;tag=1\r\n"
      "Call-ID: abc@atlanta.com\r\n"
      "CSeq: 1 OPTIONS\r\n"
      "Content-Length: 0\r\n\r\n");
  return m;
}

TEST(Via, Basic) {
  Via v = must_parse("SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds");
  EXPECT_EQ(v.raw, "SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds");
  EXPECT_EQ(v.protocol_name, "SIP");
  EXPECT_EQ(v.protocol_version, "2.0");
  EXPECT_EQ(v.transport, "UDP");
  EXPECT_EQ(v.host, "pc33.atlanta.com");
  EXPECT_EQ(v.host_kind, HostKind::kName);
  EXPECT_EQ(v.port_text, "");
  EXPECT_EQ(v.port, 0);
  EXPECT_EQ(v.params, ";branch=z9hG4bK776asdhds");
  EXPECT_TRUE(v.has_branch);
  EXPECT_EQ(v.branch, "z9hG4bK776asdhds");
  EXPECT_TRUE(v.rfc3261_branch());
  EXPECT_FALSE(v.has_received);
  EXPECT_FALSE(v.has_rport);
  EXPECT_FALSE(v.alias);
  EXPECT_EQ(v.maddr, "");
  EXPECT_EQ(v.ttl, "");
}

TEST(Via, NoParams) {
  Via v = must_parse("SIP/2.0/TCP client.atlanta.example.com:5060");
  EXPECT_EQ(v.transport, "TCP");
  EXPECT_EQ(v.host, "client.atlanta.example.com");
  EXPECT_EQ(v.port_text, "5060");
  EXPECT_EQ(v.port, 5060);
  EXPECT_EQ(v.params, "");
  EXPECT_FALSE(v.has_branch);
  EXPECT_FALSE(v.rfc3261_branch());
}

TEST(Via, AllParams) {
  Via v = must_parse(
      "SIP/2.0/TCP 192.0.2.1:5062;branch=z9hG4bKabc;received=203.0.113.5;rport=40123;maddr=224.2.0.1;ttl=16;"
      "alias;x-unknown=Foo;flag");
  EXPECT_EQ(v.host, "192.0.2.1");
  EXPECT_EQ(v.host_kind, HostKind::kIPv4);
  EXPECT_EQ(v.port, 5062);
  EXPECT_EQ(v.branch, "z9hG4bKabc");
  EXPECT_TRUE(v.has_received);
  EXPECT_EQ(v.received, "203.0.113.5");
  EXPECT_TRUE(v.has_rport);
  EXPECT_EQ(v.rport_value, "40123");
  EXPECT_EQ(v.maddr, "224.2.0.1");
  EXPECT_EQ(v.ttl, "16");
  EXPECT_TRUE(v.alias);
  auto unknown = v.param("x-unknown");
  ASSERT_TRUE(unknown.has_value());
  EXPECT_TRUE(unknown->has_value);
  EXPECT_EQ(unknown->value, "Foo");
  auto flag = v.param("FLAG");
  ASSERT_TRUE(flag.has_value());
  EXPECT_EQ(flag->name, "flag");
  EXPECT_FALSE(flag->has_value);
  EXPECT_FALSE(v.param("nothere").has_value());
  EXPECT_EQ(v.params,
            ";branch=z9hG4bKabc;received=203.0.113.5;rport=40123;maddr=224.2.0.1;ttl=16;alias;x-unknown=Foo;flag");
}

TEST(Via, RportWithoutValue) {
  Via v = must_parse("SIP/2.0/UDP 10.0.0.1:5060;rport;branch=z9hG4bKx1");
  EXPECT_TRUE(v.has_rport);
  EXPECT_EQ(v.rport_value, "");
  auto rp = v.param("rport");
  ASSERT_TRUE(rp.has_value());
  EXPECT_FALSE(rp->has_value);
  EXPECT_EQ(v.branch, "z9hG4bKx1");
}

TEST(Via, ReceivedIPv6) {
  // RFC 3261: received = "received" EQUAL (IPv4address / IPv6address): no brackets (RFC 5118 §4.5).
  Via v = must_parse("SIP/2.0/UDP [2001:db8::9:1]:5060;received=2001:db8::9:255;branch=z9hG4bKas3-111");
  EXPECT_EQ(v.host, "[2001:db8::9:1]");
  EXPECT_EQ(v.host_kind, HostKind::kIPv6);
  EXPECT_EQ(v.port_text, "5060");
  EXPECT_EQ(v.port, 5060);
  EXPECT_EQ(v.received, "2001:db8::9:255");
  EXPECT_EQ(v.branch, "z9hG4bKas3-111");
}

TEST(Via, IPv6SentByWithoutPort) {
  Via v = must_parse("SIP/2.0/UDP [2001:db8::1];branch=z9hG4bKx");
  EXPECT_EQ(v.host, "[2001:db8::1]");
  EXPECT_EQ(v.host_kind, HostKind::kIPv6);
  EXPECT_EQ(v.port_text, "");
  EXPECT_EQ(v.port, 0);
  EXPECT_EQ(v.branch, "z9hG4bKx");
}

TEST(Via, Transports) {
  // RFC 4475 §3.1.1.10 (transports): transport = "UDP" / "TCP" / "TLS" / "SCTP" / other-transport.
  for (std::string_view t : {"UDP", "TCP", "TLS", "SCTP", "WS", "WSS", "TLS-SCTP", "UNKNOWN"}) {
    std::string text = "SIP/2.0/" + std::string(t) + " h.example.com;branch=z9hG4bK1";
    Via v = must_parse(text);
    EXPECT_EQ(v.transport, t);
  }
  Via lower = must_parse("sip/2.0/udp h.example.com");
  EXPECT_EQ(lower.protocol_name, "sip");
  EXPECT_EQ(lower.transport, "udp");
}

TEST(Via, LwsAndFoldingAroundSeparators) {
  // RFC 4475 §3.1.1.1 (wsinv): SLASH = SWS "/" SWS, and LWS may contain folds.
  Via v = must_parse("SIP  /   2.0\r\n /UDP\r\n    192.0.2.2;branch=390skdjuw");
  EXPECT_EQ(v.protocol_name, "SIP");
  EXPECT_EQ(v.protocol_version, "2.0");
  EXPECT_EQ(v.transport, "UDP");
  EXPECT_EQ(v.host, "192.0.2.2");
  EXPECT_EQ(v.host_kind, HostKind::kIPv4);
  EXPECT_EQ(v.branch, "390skdjuw");
  EXPECT_FALSE(v.rfc3261_branch());

  // SEMI / EQUAL carry SWS on both sides; COLON in sent-by too.
  Via w = must_parse("SIP/2.0/UDP h.example.com : 5070 ; branch = z9hG4bKw1 ;\r\n\trport ; received =\t192.0.2.9");
  EXPECT_EQ(w.host, "h.example.com");
  EXPECT_EQ(w.port_text, "5070");
  EXPECT_EQ(w.port, 5070);
  EXPECT_EQ(w.branch, "z9hG4bKw1");
  EXPECT_TRUE(w.has_rport);
  EXPECT_EQ(w.rport_value, "");
  EXPECT_EQ(w.received, "192.0.2.9");
}

TEST(Via, IPv6SentByWithLwsAroundColon) {
  // sent-by = host [ COLON port ], COLON = SWS ":" SWS, also for IPv6 references.
  Via v = must_parse("SIP/2.0/UDP [2001:db8::1] : 5060;branch=z9hG4bKx");
  EXPECT_EQ(v.host, "[2001:db8::1]");
  EXPECT_EQ(v.port, 5060);
  EXPECT_EQ(v.port_text, "5060");
  EXPECT_EQ(v.branch, "z9hG4bKx");
}

TEST(Via, LwsOnEitherSideOfTheColon) {
  // COLON = SWS ":" SWS, so white space may sit before, after or on both sides of it.
  struct Case {
    const char* text;
    const char* host;
  };
  for (const Case& c : {Case{"SIP/2.0/UDP h.example.com :5070;branch=z9hG4bK1", "h.example.com"},
                        Case{"SIP/2.0/UDP h.example.com: 5070;branch=z9hG4bK1", "h.example.com"},
                        Case{"SIP/2.0/UDP h.example.com:\r\n 5070;branch=z9hG4bK1", "h.example.com"},
                        Case{"SIP/2.0/UDP 192.0.2.1\t:\t5070;branch=z9hG4bK1", "192.0.2.1"},
                        Case{"SIP/2.0/UDP [2001:db8::1] :5070;branch=z9hG4bK1", "[2001:db8::1]"},
                        Case{"SIP/2.0/UDP [2001:db8::1]: 5070;branch=z9hG4bK1", "[2001:db8::1]"}}) {
    Via v = must_parse(c.text);
    EXPECT_EQ(v.host, c.host) << c.text;
    EXPECT_EQ(v.port_text, "5070") << c.text;
    EXPECT_EQ(v.port, 5070) << c.text;
    EXPECT_EQ(v.branch, "z9hG4bK1") << c.text;
  }
  // A colon with no port after the white space is still an error.
  EXPECT_TRUE(via_refused("SIP/2.0/UDP h.example.com: ;branch=z9hG4bK1"));
  EXPECT_TRUE(via_refused("SIP/2.0/UDP [2001:db8::1]: ;branch=z9hG4bK1"));
}

TEST(Via, ParamNamesAreCaseInsensitive) {
  Via v = must_parse(
      "SIP/2.0/UDP h.example.com;BRANCH=z9hG4bKu;Received=192.0.2.1;RPort=1;MADDR=h2.example.com;TTL=1;Alias");
  EXPECT_EQ(v.branch, "z9hG4bKu");
  EXPECT_EQ(v.received, "192.0.2.1");
  EXPECT_EQ(v.rport_value, "1");
  EXPECT_EQ(v.maddr, "h2.example.com");
  EXPECT_EQ(v.ttl, "1");
  EXPECT_TRUE(v.alias);
}

TEST(Via, QuotedUnknownParam) {
  Via v = must_parse("SIP/2.0/UDP h.example.com;branch=z9hG4bK1;x=\"a b;c\"");
  auto x = v.param("x");
  ASSERT_TRUE(x.has_value());
  EXPECT_TRUE(x->quoted);
  EXPECT_EQ(x->value, "a b;c");
  EXPECT_EQ(v.params, ";branch=z9hG4bK1;x=\"a b;c\"");
}

TEST(Via, StopsBeforeComma) {
  Scanner s("SIP/2.0/UDP a.example.com;branch=z9hG4bK1 , SIP/2.0/TCP b.example.com");
  auto v = parse_via(s);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(v->raw, "SIP/2.0/UDP a.example.com;branch=z9hG4bK1");
  EXPECT_EQ(v->host, "a.example.com");
  s.skip_lws();
  EXPECT_EQ(s.peek(), ',');
}

TEST(Via, Rfc3261Branch) {
  auto branch_is_3261 = [](std::string_view params) {
    return must_parse("SIP/2.0/UDP h.example.com" + std::string(params)).rfc3261_branch();
  };
  EXPECT_TRUE(branch_is_3261(";branch=z9hG4bKx"));
  EXPECT_TRUE(branch_is_3261(";branch=z9hG4bK776asdhds"));
  EXPECT_FALSE(branch_is_3261(";branch=z9hG4bK"));   // the cookie alone identifies nothing
  EXPECT_FALSE(branch_is_3261(";branch=z9hg4bkx"));  // the cookie is an exact string (RFC 3261 §8.1.1.7)
  EXPECT_FALSE(branch_is_3261(";branch=xz9hG4bK1"));
  EXPECT_FALSE(branch_is_3261(";branch=390skdjuw"));
  EXPECT_FALSE(branch_is_3261(""));
}

class ViaRejects : public ::testing::TestWithParam<const char*> {};
TEST_P(ViaRejects, IsRefused) { EXPECT_TRUE(via_refused(GetParam())) << GetParam(); }

INSTANTIATE_TEST_SUITE_P(
    Malformed, ViaRejects,
    ::testing::Values("", "SIP/2.0 h.example.com",  // missing transport
                      "SIP/2.0/ h.example.com", "SIP h.example.com", "SIP/2.0/UDP", "SIP/2.0/UDP ",
                      "SIP/2.0/UDPh.example.com",  // no LWS before sent-by: "UDPh" then nothing
                      "SIP/2.0/UDP h.example.com;;branch=z9hG4bK1", "SIP/2.0/UDP h.example.com;",
                      "SIP/2.0/UDP h.example.com:70000", "SIP/2.0/UDP h.example.com:abc",
                      "SIP/2.0/UDP h.example.com:", "SIP/2.0/UDP h.example.com : ", "SIP/2.0/UDP ho st.example.com",
                      "SIP/2.0/UDP h_x.example.com", "SIP/2.0/UDP [::1", "SIP/2.0/UDP [::1]5060", "SIP/2.0/UDP [zz::1]",
                      "SIP/2.0/UDP h.example.com;received=notanip", "SIP/2.0/UDP h.example.com;received",
                      "SIP/2.0/UDP h.example.com;received=[2001:db8::1]",
                      "SIP/2.0/UDP h.example.com;received=192.0.2.256", "SIP/2.0/UDP h.example.com;rport=70000",
                      "SIP/2.0/UDP h.example.com;rport=x", "SIP/2.0/UDP h.example.com;rport=",
                      "SIP/2.0/UDP h.example.com;branch", "SIP/2.0/UDP h.example.com;branch=\"z9hG4bK1\"",
                      "SIP/2.0/UDP h.example.com;branch=", "SIP/2.0/UDP h.example.com;ttl=256",
                      "SIP/2.0/UDP h.example.com;ttl", "SIP/2.0/UDP h.example.com;ttl=x",
                      "SIP/2.0/UDP h.example.com;maddr=bad_host", "SIP/2.0/UDP h.example.com;maddr",
                      "SIP/2.0/UDP h.example.com;x=\"unterminated"));

// ---------------------------------------------------------------------------------------------
// Via through a Message: several values per line and several lines.

TEST(ViaInMessage, SeveralValuesAndLinesInOrder) {
  std::string text = request_with_vias(
      "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/TCP b.example.com:5070;branch=z9hG4bK2\r\n"
      "v: SIP/2.0/UDP c.example.com;branch=z9hG4bK3 ,\r\n SIP/2.0/TLS [2001:db8::4]:5061;branch=z9hG4bK4\r\n"
      "VIA: SIP/2.0/SCTP 192.0.2.5;branch=z9hG4bK5\r\n");
  auto m = Message::parse(text, Framing::kDatagram);
  ASSERT_TRUE(m.ok()) << m.error().what;
  auto vias = (*m)->vias();
  ASSERT_TRUE(vias.ok()) << vias.error().what;
  ASSERT_EQ(vias->size(), 5u);
  EXPECT_EQ((*vias)[0].host, "a.example.com");
  EXPECT_EQ((*vias)[0].branch, "z9hG4bK1");
  EXPECT_EQ((*vias)[1].raw, "SIP/2.0/TCP b.example.com:5070;branch=z9hG4bK2");
  EXPECT_EQ((*vias)[1].transport, "TCP");
  EXPECT_EQ((*vias)[1].port, 5070);
  EXPECT_EQ((*vias)[2].host, "c.example.com");
  EXPECT_EQ((*vias)[3].host, "[2001:db8::4]");
  EXPECT_EQ((*vias)[3].transport, "TLS");
  EXPECT_EQ((*vias)[3].port, 5061);
  EXPECT_EQ((*vias)[4].transport, "SCTP");
  EXPECT_EQ((*vias)[4].branch, "z9hG4bK5");
  auto top = (*m)->top_via();
  ASSERT_TRUE(top.ok());
  EXPECT_EQ((*top)->branch, "z9hG4bK1");
  EXPECT_EQ((*m)->header_count(HeaderKind::kVia), 3u);
}

TEST(ViaInMessage, JunkAfterViaValueIsRefused) {
  auto m =
      Message::parse(request_with_vias("Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1 junk\r\n"), Framing::kDatagram);
  ASSERT_TRUE(m.ok());
  auto vias = (*m)->vias();
  ASSERT_FALSE(vias.ok());
  EXPECT_EQ(vias.error().status, 400);
  EXPECT_FALSE((*m)->top_via().ok());
}

TEST(ViaInMessage, EmptyValueBetweenCommasIsRefused) {
  auto m =
      Message::parse(request_with_vias("Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1,,SIP/2.0/UDP b.example.com\r\n"),
                     Framing::kDatagram);
  ASSERT_TRUE(m.ok());
  EXPECT_FALSE((*m)->vias().ok());
}

TEST(ViaInMessage, MissingViaIs400) {
  auto m = Message::parse(request_with_vias(""), Framing::kDatagram);
  ASSERT_TRUE(m.ok());
  auto vias = (*m)->vias();
  ASSERT_FALSE(vias.ok());
  EXPECT_EQ(vias.error().status, 400);
}

TEST(ViaInMessage, TooManyViasIs413) {
  ParseLimits limits;
  limits.max_vias = 2;
  std::string text = request_with_vias(
      "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, SIP/2.0/UDP b.example.com;branch=z9hG4bK2\r\n"
      "Via: SIP/2.0/UDP c.example.com;branch=z9hG4bK3\r\n");
  auto m = Message::parse(text, Framing::kDatagram, limits);
  ASSERT_TRUE(m.ok());
  auto vias = (*m)->vias();
  ASSERT_FALSE(vias.ok());
  EXPECT_EQ(vias.error().status, 413);

  limits.max_vias = 3;
  auto ok = Message::parse(text, Framing::kDatagram, limits);
  ASSERT_TRUE(ok.ok());
  auto all = (*ok)->vias();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 3u);
}

}  // namespace
}  // namespace pinhole::sip
