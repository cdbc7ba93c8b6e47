// SDP parser: the fields real peers' bodies expose, line endings, each malformation class refused
// with 488, and the limits.
#include "sdp/session_description.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "sdp_test_bodies.h"

namespace pinhole::sdp {
namespace {

using testing::crlf;

net::Address addr(std::string_view text) {
  auto a = net::Address::parse(text);
  EXPECT_TRUE(a.ok()) << text;
  return a.ok() ? *a : net::Address();
}

SessionDescription parse_ok(std::string_view body) {
  auto r = parse_sdp(body);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().what) << "\n" << body;
  return r.ok() ? *r : SessionDescription{};
}

TEST(SdpParse, SippOffer) {
  std::string body = crlf(testing::kSipp);
  SessionDescription s = parse_ok(body);
  EXPECT_EQ(s.origin.username, "user1");
  EXPECT_EQ(s.origin.session_id, "53655765");
  EXPECT_EQ(s.origin.version, 2353687637U);
  EXPECT_EQ(s.origin.version_text, "2353687637");
  EXPECT_EQ(s.origin.net_type, "IN");
  EXPECT_EQ(s.origin.address_type, "IP4");
  EXPECT_EQ(s.origin.address, addr("127.0.0.1"));
  EXPECT_EQ(s.session_name, "-");
  ASSERT_TRUE(s.connection.has_value());
  EXPECT_EQ(s.lines.size(), 7U);
  ASSERT_EQ(s.media.size(), 1U);
  const MediaDescription& m = s.media[0];
  EXPECT_EQ(m.media, "audio");
  EXPECT_EQ(m.port, 6000);
  EXPECT_EQ(m.port_count, 1);
  EXPECT_EQ(m.proto, "RTP/AVP");
  EXPECT_EQ(m.formats, std::vector<std::string_view>{"0"});
  ASSERT_TRUE(m.connection.has_value());
  EXPECT_EQ(m.connection->address, addr("127.0.0.1"));
  EXPECT_EQ(m.connection_source, ConnectionSource::kSession);
  EXPECT_EQ(m.connection->line, 3U);
  EXPECT_FALSE(m.rtcp.has_value());
  EXPECT_FALSE(m.rtcp_mux);
  EXPECT_EQ(m.direction, Direction::kSendRecv);
  EXPECT_FALSE(m.direction_from_media);
  EXPECT_FALSE(m.has_ice());
  EXPECT_FALSE(m.on_hold());
  EXPECT_EQ(m.first_line, 5U);
  EXPECT_EQ(m.end_line, 7U);
  EXPECT_EQ(s.session_end(), 5U);
}

TEST(SdpParse, BaresipTwoStreamsWithRtcpMux) {
  std::string body = crlf(testing::kBaresip);
  SessionDescription s = parse_ok(body);
  EXPECT_EQ(s.origin.username, "-");
  ASSERT_EQ(s.media.size(), 2U);
  EXPECT_EQ(s.media[0].formats, (std::vector<std::string_view>{"96", "0", "8", "101"}));
  EXPECT_EQ(s.media[1].media, "video");
  EXPECT_EQ(s.media[1].port, 10392);
  for (const MediaDescription& m : s.media) {
    EXPECT_TRUE(m.rtcp_mux);
    EXPECT_TRUE(m.direction_from_media);
    EXPECT_EQ(m.direction, Direction::kSendRecv);
    EXPECT_EQ(m.connection->address, addr("192.168.1.10"));
    EXPECT_EQ(m.connection_source, ConnectionSource::kSession);
  }
  EXPECT_EQ(s.media[0].end_line, s.media[1].first_line);
}

TEST(SdpParse, LinphoneLfOnlyWithRtcpPort) {
  SessionDescription s = parse_ok(testing::kLinphone);  // bare LF line endings
  ASSERT_EQ(s.media.size(), 2U);
  ASSERT_TRUE(s.media[0].rtcp.has_value());
  EXPECT_EQ(s.media[0].rtcp->port, 7079);
  EXPECT_FALSE(s.media[0].rtcp->has_address);
  EXPECT_EQ(s.media[1].rtcp->port, 9079);
  EXPECT_FALSE(s.media[0].rtcp_mux);
  for (const Line& l : s.lines) {
    EXPECT_EQ(l.value.find('\r'), std::string_view::npos);
    EXPECT_EQ(l.value.find('\n'), std::string_view::npos);
  }
  EXPECT_EQ(s.session_name, "Talk");
}

TEST(SdpParse, MixedLineEndingsAndNoFinalNewline) {
  std::string body = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\ns=x\r\nc=IN IP4 192.0.2.1\nt=0 0\r\nm=audio 4000 RTP/AVP 0";
  SessionDescription s = parse_ok(body);
  ASSERT_EQ(s.media.size(), 1U);
  EXPECT_EQ(s.media[0].formats, std::vector<std::string_view>{"0"});
  EXPECT_EQ(s.session_name, "x");
  EXPECT_EQ(s.lines.size(), 6U);
}

TEST(SdpParse, TrailingEmptyLinesIgnored) {
  std::string body = crlf(testing::kSipp) + "\r\n\r\n";
  SessionDescription s = parse_ok(body);
  EXPECT_EQ(s.lines.size(), 7U);
  EXPECT_EQ(s.media[0].end_line, 7U);
}

TEST(SdpParse, WebrtcCandidates) {
  std::string body = crlf(testing::kWebrtc);
  SessionDescription s = parse_ok(body);
  EXPECT_FALSE(s.connection.has_value());
  ASSERT_EQ(s.media.size(), 2U);
  const MediaDescription& audio = s.media[0];
  EXPECT_EQ(audio.connection_source, ConnectionSource::kMedia);
  EXPECT_EQ(audio.connection->address, addr("198.51.100.23"));
  ASSERT_TRUE(audio.rtcp.has_value());
  EXPECT_EQ(audio.rtcp->port, 9);
  EXPECT_TRUE(audio.rtcp->has_address);
  EXPECT_EQ(audio.rtcp->address, addr("0.0.0.0"));
  EXPECT_TRUE(audio.rtcp_mux);
  EXPECT_EQ(audio.ice_ufrag, "Y0e+");
  EXPECT_EQ(audio.ice_pwd, "Zk1k2vF8S4W0cE6n2R5bqLw3");
  EXPECT_TRUE(audio.has_ice());
  EXPECT_FALSE(audio.end_of_candidates);
  ASSERT_EQ(audio.candidates.size(), 4U);

  const IceCandidate& host = audio.candidates[0];
  EXPECT_EQ(host.foundation, "3348148302");
  EXPECT_EQ(host.component, 1);
  EXPECT_EQ(host.transport, "udp");
  EXPECT_EQ(host.priority, 2122260223U);
  EXPECT_EQ(host.address, addr("192.168.1.20"));
  EXPECT_EQ(host.port, 54400);
  EXPECT_EQ(host.type, "host");
  EXPECT_TRUE(host.related_address_text.empty());
  EXPECT_FALSE(host.related_port.has_value());
  EXPECT_EQ(s.lines[host.line].value.substr(0, 20), "candidate:3348148302");

  const IceCandidate& srflx = audio.candidates[1];
  EXPECT_EQ(srflx.type, "srflx");
  EXPECT_EQ(srflx.address, addr("198.51.100.23"));
  EXPECT_EQ(srflx.related_address, addr("192.168.1.20"));
  EXPECT_EQ(srflx.related_address_text, "192.168.1.20");
  EXPECT_EQ(srflx.related_port, 54400);

  EXPECT_EQ(audio.candidates[2].transport, "tcp");
  EXPECT_EQ(audio.candidates[2].port, 9);

  const IceCandidate& mdns = audio.candidates[3];
  EXPECT_EQ(mdns.address_text, "4f3e9a1c-8b2d.local");
  EXPECT_FALSE(mdns.address.has_value());
  EXPECT_EQ(mdns.port, 54401);

  const MediaDescription& video = s.media[1];
  EXPECT_EQ(video.candidates.size(), 1U);
  EXPECT_TRUE(video.end_of_candidates);
}

TEST(SdpParse, SessionLevelIceCredentialsInherited) {
  std::string body =
      "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\na=ice-ufrag:sess\r\n"
      "a=ice-pwd:sesspwd\r\nm=audio 4000 RTP/AVP 0\r\nm=audio 4002 RTP/AVP 0\r\na=ice-ufrag:own\r\n";
  SessionDescription s = parse_ok(body);
  EXPECT_EQ(s.media[0].ice_ufrag, "sess");
  EXPECT_EQ(s.media[0].ice_pwd, "sesspwd");
  EXPECT_EQ(s.media[1].ice_ufrag, "own");
  EXPECT_EQ(s.media[1].ice_pwd, "sesspwd");
}

TEST(SdpParse, Ipv6) {
  std::string body = crlf(testing::kIpv6);
  SessionDescription s = parse_ok(body);
  EXPECT_EQ(s.session_name, " ");
  EXPECT_EQ(s.origin.address, addr("2001:db8::2"));
  ASSERT_EQ(s.media.size(), 1U);
  EXPECT_TRUE(s.media[0].connection->address->is_v6());
  EXPECT_EQ(s.media[0].connection->address, addr("2001:db8::2"));
  EXPECT_EQ(s.media[0].rtcp->port, 49173);
  EXPECT_EQ(s.media[0].rtcp->address, addr("2001:db8::2"));
}

TEST(SdpParse, HoldWithZeroAddress) {
  std::string body = crlf(testing::kHoldZero);
  SessionDescription s = parse_ok(body);
  const MediaDescription& m = s.media[0];
  EXPECT_TRUE(m.connection->unspecified());
  EXPECT_EQ(m.direction, Direction::kSendRecv);
  EXPECT_TRUE(m.on_hold());

  std::string v6 = "v=0\r\no=- 1 1 IN IP6 ::1\r\ns=-\r\nc=IN IP6 ::\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
  SessionDescription s6 = parse_ok(v6);
  EXPECT_TRUE(s6.media[0].connection->unspecified());
  EXPECT_TRUE(s6.media[0].on_hold());
}

TEST(SdpParse, HoldWithDirections) {
  std::string body = crlf(testing::kHoldSendonly);
  SessionDescription s = parse_ok(body);
  EXPECT_EQ(s.direction, Direction::kSendOnly);
  ASSERT_EQ(s.media.size(), 2U);
  EXPECT_EQ(s.media[0].direction, Direction::kSendOnly);
  EXPECT_FALSE(s.media[0].direction_from_media);
  EXPECT_TRUE(s.media[0].on_hold());
  EXPECT_FALSE(s.media[0].connection->unspecified());
  EXPECT_EQ(s.media[1].direction, Direction::kRecvOnly);
  EXPECT_TRUE(s.media[1].direction_from_media);
  EXPECT_FALSE(s.media[1].on_hold());

  std::string inactive =
      "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
      "m=audio 4000 RTP/AVP 0\r\na=inactive\r\n";
  SessionDescription si = parse_ok(inactive);
  EXPECT_EQ(si.media[0].direction, Direction::kInactive);
  EXPECT_TRUE(si.media[0].on_hold());
}

TEST(SdpParse, DisabledStreamsPortCountsAndMediaLevelConnections) {
  std::string body = crlf(testing::kMultiMedia);
  SessionDescription s = parse_ok(body);
  EXPECT_FALSE(s.connection.has_value());
  EXPECT_FALSE(s.origin.address.has_value());  // a host name
  EXPECT_EQ(s.origin.address_text, "pbx.example.com");
  ASSERT_EQ(s.media.size(), 4U);
  EXPECT_EQ(s.media[0].rtcp->port, 20001);
  EXPECT_EQ(s.media[0].rtcp->address, addr("172.16.4.9"));
  EXPECT_TRUE(s.media[1].disabled());
  EXPECT_EQ(s.media[2].media, "image");
  EXPECT_EQ(s.media[2].proto, "udptl");
  EXPECT_EQ(s.media[2].formats, std::vector<std::string_view>{"t38"});
  EXPECT_EQ(s.media[3].port, 20004);
  EXPECT_EQ(s.media[3].port_count, 2);
  EXPECT_EQ(s.media[3].direction, Direction::kInactive);
  for (const MediaDescription& m : s.media) {
    EXPECT_EQ(m.connection_source, ConnectionSource::kMedia);
    EXPECT_EQ(m.connection->address, addr("172.16.4.9"));
  }
}

TEST(SdpParse, DisabledStreamNeedsNoConnection) {
  std::string body =
      "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
      "c=IN IP4 192.0.2.1\r\nm=video 0 RTP/AVP 31\r\n";
  SessionDescription s = parse_ok(body);
  ASSERT_EQ(s.media.size(), 2U);
  EXPECT_FALSE(s.media[1].connection.has_value());
}

TEST(SdpParse, HostNameConnection) {
  std::string body = crlf(testing::kRfc3264Offer);
  SessionDescription s = parse_ok(body);
  ASSERT_EQ(s.media.size(), 3U);
  for (const MediaDescription& m : s.media) {
    EXPECT_FALSE(m.connection->address.has_value());
    EXPECT_EQ(m.connection->address_text, "host.anywhere.com");
    EXPECT_FALSE(m.connection->unspecified());
  }
  EXPECT_EQ(s.session_name, "");
}

TEST(SdpParse, MulticastConnection) {
  std::string body = crlf(testing::kMulticast);
  SessionDescription s = parse_ok(body);
  ASSERT_TRUE(s.connection.has_value());
  EXPECT_EQ(s.connection->address, addr("224.2.17.12"));
  EXPECT_EQ(s.connection->address_text, "224.2.17.12");
  EXPECT_EQ(s.connection->multicast_suffix, "/127");
  EXPECT_EQ(s.media.size(), 2U);
  EXPECT_EQ(s.media[1].direction, Direction::kRecvOnly);  // from the session
  auto c = parse_connection("IN IP4 233.252.0.1/127/3");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->multicast_suffix, "/127/3");
  auto c6 = parse_connection("IN IP6 ff15::101/3");
  ASSERT_TRUE(c6.ok());
  EXPECT_EQ(c6->address, addr("ff15::101"));
}

TEST(SdpParse, AttributeHelpers) {
  Attribute a = split_attribute("rtcp:9 IN IP4 0.0.0.0");
  EXPECT_EQ(a.name, "rtcp");
  EXPECT_EQ(a.value, "9 IN IP4 0.0.0.0");
  EXPECT_TRUE(a.has_value);
  Attribute flag = split_attribute("rtcp-mux");
  EXPECT_EQ(flag.name, "rtcp-mux");
  EXPECT_FALSE(flag.has_value);
  for (Direction d : {Direction::kSendRecv, Direction::kSendOnly, Direction::kRecvOnly, Direction::kInactive})
    EXPECT_EQ(direction_from_name(direction_name(d)), d);
  EXPECT_FALSE(direction_from_name("sendreceive").has_value());
}

// A minimal valid body with `session` lines after s= and `media` lines after one audio m= line.
std::string body_with(std::string_view session, std::string_view media) {
  std::string b = "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n";
  b += session;
  b += "t=0 0\r\nm=audio 4000 RTP/AVP 0\r\n";
  b += media;
  return b;
}

struct BadCase {
  const char* name;
  std::string body;
  std::string_view what;  // the reason expected
};

class SdpParseBad : public ::testing::TestWithParam<BadCase> {};

TEST_P(SdpParseBad, RefusedWith488) {
  const BadCase& c = GetParam();
  auto r = parse_sdp(c.body);
  ASSERT_FALSE(r.ok()) << c.body;
  EXPECT_EQ(r.error().status, 488);
  EXPECT_EQ(r.error().what, c.what) << c.body;
}

std::string c_line() { return "c=IN IP4 192.0.2.1\r\n"; }

std::vector<BadCase> bad_cases() {
  std::vector<BadCase> v = {
      // Structure and line shape.
      {"empty", "", "SDP: first line is not v=0"},
      {"version_1", "v=1\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n", "SDP: first line is not v=0"},
      {"version_padded", "v=0 \r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n", "SDP: first line is not v=0"},
      {"origin_first", "o=- 1 1 IN IP4 192.0.2.1\r\nv=0\r\ns=-\r\n", "SDP: first line is not v=0"},
      {"repeated_v", "v=0\r\nv=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n", "SDP: repeated v= line"},
      {"no_origin", "v=0\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n", "SDP: no o= line"},
      {"no_session_name", "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\nt=0 0\r\n", "SDP: no s= line"},
      {"repeated_o", "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\n", "SDP: repeated o= line"},
      {"repeated_s", body_with("s=again\r\n" + c_line(), ""), "SDP: repeated s= line"},
      {"origin_in_media", body_with(c_line(), "o=- 1 1 IN IP4 192.0.2.1\r\n"), "SDP: o= or s= in a media section"},
      {"session_name_in_media", body_with(c_line(), "s=-\r\n"), "SDP: o= or s= in a media section"},
      {"no_equals", body_with(c_line(), "a\r\n"), "SDP: line is not <type>=<value>"},
      {"two_letter_type", body_with(c_line(), "ab=x\r\n"), "SDP: line is not <type>=<value>"},
      {"leading_space", body_with(c_line(), " a=x\r\n"), "SDP: line is not <type>=<value>"},
      {"upper_case_type", body_with(c_line(), "A=x\r\n"), "SDP: unknown line type"},
      {"unknown_type", body_with(c_line(), "x=1\r\n"), "SDP: unknown line type"},
      {"nul", body_with(c_line(), std::string("a=x\0y\r\n", 7)), "SDP: NUL or bare CR in a line"},
      {"bare_cr", body_with(c_line(), "a=x\ry\r\n"), "SDP: NUL or bare CR in a line"},
      {"empty_line_inside", body_with(c_line(), "\r\na=x\r\n"), "SDP: empty line"},
      {"empty_attribute", body_with(c_line(), "a=\r\n"), "SDP: bad a= line"},
      {"attribute_without_name", body_with(c_line(), "a=:x\r\n"), "SDP: bad a= line"},
      // o=
      {"origin_five_fields", "v=0\r\no=- 1 1 IN IP4\r\ns=-\r\n", "SDP: bad o= line"},
      {"origin_seven_fields", "v=0\r\no=- 1 1 IN IP4 192.0.2.1 x\r\ns=-\r\n", "SDP: bad o= line"},
      {"origin_version_text", "v=0\r\no=- 1 v1 IN IP4 192.0.2.1\r\ns=-\r\n", "SDP: bad o= line"},
      {"origin_version_overflow", "v=0\r\no=- 1 18446744073709551616 IN IP4 192.0.2.1\r\ns=-\r\n", "SDP: bad o= line"},
      {"origin_net_type", "v=0\r\no=- 1 1 ATM IP4 192.0.2.1\r\ns=-\r\n", "SDP: bad o= line"},
      {"origin_address_type", "v=0\r\no=- 1 1 IN IPX 192.0.2.1\r\ns=-\r\n", "SDP: bad o= line"},
      // c=
      {"connection_no_address", body_with("c=IN IP4\r\n", ""), "SDP: bad c= line"},
      {"connection_net_type", body_with("c=ATM IP4 192.0.2.1\r\n", ""), "SDP: bad c= line"},
      {"connection_address_type", body_with("c=IN IP5 192.0.2.1\r\n", ""), "SDP: bad c= line"},
      {"connection_extra", body_with("c=IN IP4 192.0.2.1 x\r\n", ""), "SDP: bad c= line"},
      {"connection_ip4_holds_v6", body_with("c=IN IP4 2001:db8::1\r\n", ""),
       "SDP: address does not match its address type"},
      {"connection_ip6_holds_v4", body_with("c=IN IP6 192.0.2.1\r\n", ""),
       "SDP: address does not match its address type"},
      {"connection_bad_quad", body_with("c=IN IP4 192.0.2.256\r\n", ""), "SDP: bad address"},
      {"connection_brackets", body_with("c=IN IP6 [2001:db8::1]\r\n", ""), "SDP: bad address"},
      {"connection_bad_v6", body_with("c=IN IP6 2001:db8:::1\r\n", ""), "SDP: bad address"},
      {"connection_name_chars", body_with("c=IN IP4 host_1.example\r\n", ""), "SDP: bad address"},
      {"connection_ttl_text", body_with("c=IN IP4 224.2.1.1/ttl\r\n", ""), "SDP: bad c= line"},
      {"connection_ttl_empty", body_with("c=IN IP4 224.2.1.1/\r\n", ""), "SDP: bad c= line"},
      {"connection_ip6_two_numbers", body_with("c=IN IP6 ff15::1/3/2\r\n", ""), "SDP: bad c= line"},
      {"connection_repeated_session", body_with(c_line() + c_line(), ""), "SDP: repeated c= line"},
      {"connection_repeated_media", body_with(c_line(), c_line() + c_line()), "SDP: repeated c= line"},
      {"no_connection", body_with("", "a=sendrecv\r\n"), "SDP: stream without connection address"},
      // m=
      {"media_no_format", body_with(c_line(), "m=audio 4002 RTP/AVP\r\n"), "SDP: bad m= line"},
      {"media_only_type", body_with(c_line(), "m=audio\r\n"), "SDP: bad m= line"},
      {"media_port_too_big", body_with(c_line(), "m=audio 65536 RTP/AVP 0\r\n"), "SDP: bad port"},
      {"media_port_text", body_with(c_line(), "m=audio abc RTP/AVP 0\r\n"), "SDP: bad port"},
      {"media_port_negative", body_with(c_line(), "m=audio -1 RTP/AVP 0\r\n"), "SDP: bad port"},
      {"media_port_six_digits", body_with(c_line(), "m=audio 000080 RTP/AVP 0\r\n"), "SDP: bad port"},
      {"media_port_count_zero", body_with(c_line(), "m=audio 4002/0 RTP/AVP 0\r\n"), "SDP: bad m= line"},
      {"media_port_count_empty", body_with(c_line(), "m=audio 4002/ RTP/AVP 0\r\n"), "SDP: bad m= line"},
      {"media_port_empty", body_with(c_line(), "m=audio /2 RTP/AVP 0\r\n"), "SDP: bad port"},
      // a=rtcp
      {"rtcp_text", body_with(c_line(), "a=rtcp:abc\r\n"), "SDP: bad a=rtcp"},
      {"rtcp_too_big", body_with(c_line(), "a=rtcp:70000\r\n"), "SDP: bad a=rtcp"},
      {"rtcp_no_address", body_with(c_line(), "a=rtcp:4001 IN IP4\r\n"), "SDP: bad a=rtcp"},
      {"rtcp_bad_type", body_with(c_line(), "a=rtcp:4001 IN IP7 192.0.2.1\r\n"), "SDP: bad a=rtcp"},
      {"rtcp_family", body_with(c_line(), "a=rtcp:4001 IN IP4 ::1\r\n"),
       "SDP: address does not match its address type"},
      // a=candidate
      {"candidate_short", body_with(c_line(), "a=candidate:1 1 UDP 2130706431 192.0.2.1 4000\r\n"),
       "SDP: bad a=candidate"},
      {"candidate_no_typ", body_with(c_line(), "a=candidate:1 1 UDP 2130706431 192.0.2.1 4000 type host\r\n"),
       "SDP: bad a=candidate"},
      {"candidate_component_0", body_with(c_line(), "a=candidate:1 0 UDP 2130706431 192.0.2.1 4000 typ host\r\n"),
       "SDP: bad a=candidate"},
      {"candidate_component_257", body_with(c_line(), "a=candidate:1 257 UDP 2130706431 192.0.2.1 4000 typ host\r\n"),
       "SDP: bad a=candidate"},
      {"candidate_priority_overflow", body_with(c_line(), "a=candidate:1 1 UDP 4294967296 192.0.2.1 4000 typ host\r\n"),
       "SDP: bad a=candidate"},
      {"candidate_port", body_with(c_line(), "a=candidate:1 1 UDP 2130706431 192.0.2.1 65536 typ host\r\n"),
       "SDP: bad a=candidate"},
      {"candidate_rport",
       body_with(c_line(), "a=candidate:1 1 UDP 1 192.0.2.1 4000 typ srflx raddr 10.0.0.1 rport x\r\n"),
       "SDP: bad a=candidate"},
      {"candidate_raddr_empty", body_with(c_line(), "a=candidate:1 1 UDP 1 192.0.2.1 4000 typ srflx raddr\r\n"),
       "SDP: bad a=candidate"},
      {"candidate_long_foundation",
       body_with(c_line(), "a=candidate:" + std::string(33, 'f') + " 1 UDP 1 192.0.2.1 4000 typ host\r\n"),
       "SDP: bad a=candidate"},
  };
  return v;
}

INSTANTIATE_TEST_SUITE_P(Malformed, SdpParseBad, ::testing::ValuesIn(bad_cases()),
                         [](const ::testing::TestParamInfo<BadCase>& p) { return std::string(p.param.name); });

// The cases above differ from a valid body by the one line they break: the same body with a good
// line must parse, or the table would prove nothing.
TEST(SdpParse, TableBaseBodiesAreValid) {
  EXPECT_TRUE(parse_sdp(body_with(c_line(), "")).ok());
  EXPECT_TRUE(parse_sdp(body_with(c_line(), c_line())).ok());
  EXPECT_TRUE(parse_sdp(body_with(c_line(), "m=audio 4002/2 RTP/AVP 0\r\na=rtcp:4001 IN IP4 192.0.2.1\r\n")).ok());
  EXPECT_TRUE(parse_sdp(body_with(c_line(),
                                  "a=candidate:1 1 UDP 4294967295 192.0.2.1 65535 typ srflx raddr 10.0.0.1 "
                                  "rport 0\r\na=candidate:" +
                                      std::string(32, 'f') + " 256 UDP 1 192.0.2.1 4000 typ host\r\n"))
                  .ok());
  EXPECT_TRUE(parse_sdp(body_with("c=IN IP6 ff15::1/3\r\n", "")).ok());
  EXPECT_TRUE(parse_sdp("v=0\r\no=- 1 18446744073709551615 IN IP4 192.0.2.1\r\ns=-\r\n").ok());
}

TEST(SdpParse, BodySizeLimit) {
  // A valid body of exactly 64 KiB: padding attributes, then one that fills the rest.
  std::string valid = body_with(c_line(), "");
  std::string pad = "a=x-pad:" + std::string(100, 'p') + "\r\n";
  while (valid.size() + pad.size() <= size_t{64} * 1024 - 16) valid += pad;
  valid += "a=x:" + std::string(size_t{64} * 1024 - valid.size() - 6, 'q') + "\r\n";
  ASSERT_EQ(valid.size(), 64U * 1024);
  EXPECT_TRUE(parse_sdp(valid).ok());
  auto r = parse_sdp(valid + "a");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().status, 488);
  EXPECT_EQ(r.error().what, "SDP: body too large");
}

TEST(SdpParse, LineLimit) {
  std::string valid = body_with(c_line(), "");  // 6 lines
  for (int i = 6; i < 1000; ++i) valid += "a=x\r\n";
  auto ok = parse_sdp(valid);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->lines.size(), 1000U);
  auto r = parse_sdp(valid + "a=x\r\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().status, 488);
  EXPECT_EQ(r.error().what, "SDP: too many lines");
  // Trailing empty lines are not lines.
  EXPECT_TRUE(parse_sdp(valid + "\r\n\r\n").ok());
}

TEST(SdpParse, MediaLimit) {
  std::string valid = body_with(c_line(), "");  // 1 stream
  for (int i = 1; i < 32; ++i) valid += "m=audio " + std::to_string(4000 + 2 * i) + " RTP/AVP 0\r\n";
  auto ok = parse_sdp(valid);
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->media.size(), 32U);
  auto r = parse_sdp(valid + "m=audio 5000 RTP/AVP 0\r\n");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().status, 488);
  EXPECT_EQ(r.error().what, "SDP: too many m= lines");
}

TEST(SdpParse, CustomLimits) {
  SdpLimits tight{.max_body = 200, .max_lines = 7, .max_media = 1};
  std::string body = crlf(testing::kSipp);
  EXPECT_TRUE(parse_sdp(body, tight).ok());
  EXPECT_EQ(parse_sdp(body + "a=x\r\n", tight).error().what, "SDP: too many lines");
  tight.max_body = body.size() - 1;
  EXPECT_EQ(parse_sdp(body, tight).error().what, "SDP: body too large");
}

}  // namespace
}  // namespace pinhole::sdp
