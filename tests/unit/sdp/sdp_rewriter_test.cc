// SDP rewriter: exact texts written by hand from the RFC 3264 examples, and on real peers' bodies
// the output re-parsed and checked field by field (addresses, ports, RTCP, ICE, directions, o=
// version), IPv4 <-> IPv6 bridging, and the caller errors.
#include "sdp/sdp_rewriter.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sdp/session_description.h"
#include "sdp_test_bodies.h"

namespace pinhole::sdp {
namespace {

using testing::crlf;
using Relays = std::vector<std::optional<RelayEndpoint>>;

net::Address addr(std::string_view text) {
  auto a = net::Address::parse(text);
  EXPECT_TRUE(a.ok()) << text;
  return a.ok() ? *a : net::Address();
}

// The relay's addresses: 203.0.113.10 and 2001:db8::10.
net::Address relay4() { return net::Address::v4({203, 0, 113, 10}); }
net::Address relay6() { return net::Address::v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}); }

RelayEndpoint relay(net::Address a, uint16_t port) { return RelayEndpoint{a, port}; }

SessionDescription parse_ok(std::string_view body) {
  auto r = parse_sdp(body);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().what) << "\n" << body;
  return r.ok() ? *r : SessionDescription{};
}

RewriteResult rewrite_ok(const SessionDescription& s, const Relays& relays, const RewriteOptions& options = {},
                         std::optional<PreviousRewrite> previous = std::nullopt) {
  auto r = rewrite_sdp(s, relays, options, previous);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().what);
  return r.ok() ? *r : RewriteResult{};
}

bool has_line(std::string_view body, std::string_view line) {
  return body.find(std::string(line) + "\r\n") != std::string_view::npos;
}

size_t count_lines_starting(std::string_view body, std::string_view prefix) {
  size_t n = 0;
  for (size_t pos = 0; pos < body.size();) {
    size_t end = body.find("\r\n", pos);
    if (end == std::string_view::npos) end = body.size();
    if (body.substr(pos, end - pos).starts_with(prefix)) ++n;
    pos = end + 2;
  }
  return n;
}

// RFC 3264 §10.1's offer, every stream anchored on one relay address: one session c= carries it.
TEST(SdpRewrite, Rfc3264OfferExactText) {
  std::string body = crlf(testing::kRfc3264Offer);
  SessionDescription s = parse_ok(body);
  RewriteResult r =
      rewrite_ok(s, {relay(relay4(), 40000), relay(relay4(), 40002), relay(relay4(), 40004)}, RewriteOptions{});
  EXPECT_EQ(r.body,
            "v=0\r\n"
            "o=alice 2890844526 2890844526 IN IP4 host.anywhere.com\r\n"
            "s=\r\n"
            "c=IN IP4 203.0.113.10\r\n"
            "t=0 0\r\n"
            "m=audio 40000 RTP/AVP 0\r\n"
            "a=rtpmap:0 PCMU/8000\r\n"
            "m=video 40002 RTP/AVP 31\r\n"
            "a=rtpmap:31 H261/90000\r\n"
            "m=video 40004 RTP/AVP 32\r\n"
            "a=rtpmap:32 MPV/90000\r\n");
  EXPECT_EQ(r.version, 2890844526U);
}

// The answer refuses the H.261 stream: the disabled stream stays as it is whatever its relay
// entry, and replace_origin puts the relay in o= (username, sess-id, version kept).
TEST(SdpRewrite, Rfc3264AnswerDisabledStreamAndOrigin) {
  std::string body = crlf(testing::kRfc3264Answer);
  SessionDescription s = parse_ok(body);
  RewriteOptions options;
  options.replace_origin = true;
  RewriteResult r = rewrite_ok(s, {relay(relay4(), 40000), relay(relay4(), 40002), relay(relay4(), 40004)}, options);
  EXPECT_EQ(r.body,
            "v=0\r\n"
            "o=bob 2808844564 2808844564 IN IP4 203.0.113.10\r\n"
            "s=\r\n"
            "c=IN IP4 203.0.113.10\r\n"
            "t=0 0\r\n"
            "m=audio 40000 RTP/AVP 0\r\n"
            "a=rtpmap:0 PCMU/8000\r\n"
            "m=video 0 RTP/AVP 31\r\n"
            "m=video 40004 RTP/AVP 32\r\n"
            "a=rtpmap:32 MPV/90000\r\n");
}

// IPv4 phone bridged to an IPv6 relay address: c=, a=rtcp (which named an address) and o= switch
// to IN IP6; the port of a=rtcp is RTP + 1 without rtcp-mux.
TEST(SdpRewrite, Ipv4ToIpv6ExactText) {
  std::string body = crlf(
      "v=0\n"
      "o=alice 2890844526 2890844527 IN IP4 192.168.1.10\n"
      "s=-\n"
      "c=IN IP4 192.168.1.10\n"
      "t=0 0\n"
      "m=audio 49170 RTP/AVP 0 101\n"
      "a=rtpmap:101 telephone-event/8000\n"
      "a=rtcp:49171 IN IP4 192.168.1.10\n"
      "a=sendrecv\n");
  SessionDescription s = parse_ok(body);
  RewriteOptions options;
  options.replace_origin = true;
  RewriteResult r = rewrite_ok(s, {relay(relay6(), 30000)}, options);
  EXPECT_EQ(r.body,
            "v=0\r\n"
            "o=alice 2890844526 2890844527 IN IP6 2001:db8::10\r\n"
            "s=-\r\n"
            "c=IN IP6 2001:db8::10\r\n"
            "t=0 0\r\n"
            "m=audio 30000 RTP/AVP 0 101\r\n"
            "a=rtpmap:101 telephone-event/8000\r\n"
            "a=rtcp:30001 IN IP6 2001:db8::10\r\n"
            "a=sendrecv\r\n");
}

TEST(SdpRewrite, Ipv6ToIpv4) {
  std::string body = crlf(testing::kIpv6);
  SessionDescription s = parse_ok(body);
  RewriteResult r = rewrite_ok(s, {relay(relay4(), 30000)});
  SessionDescription out = parse_ok(r.body);
  ASSERT_EQ(out.media.size(), 1U);
  EXPECT_EQ(out.media[0].connection->address, relay4());
  EXPECT_EQ(out.media[0].rtcp->address, relay4());
  EXPECT_EQ(out.media[0].rtcp->port, 30001);
  EXPECT_TRUE(has_line(r.body, "c=IN IP4 203.0.113.10"));
  // o= untouched without replace_origin.
  EXPECT_TRUE(has_line(r.body, "o=bob 2808844564 2808844564 IN IP6 2001:db8::2"));
  EXPECT_TRUE(has_line(r.body, "s= "));  // the blank session name kept byte for byte
}

TEST(SdpRewrite, LfInputGivesCrlfOutput) {
  SessionDescription s = parse_ok(testing::kLinphone);
  RewriteResult r = rewrite_ok(s, {relay(relay4(), 30000), relay(relay4(), 30002)});
  for (size_t i = 0; i < r.body.size(); ++i) {
    if (r.body[i] == '\n') {
      ASSERT_TRUE(i > 0 && r.body[i - 1] == '\r') << i;
    }
  }
  EXPECT_TRUE(r.body.ends_with("\r\n"));
  SessionDescription out = parse_ok(r.body);
  EXPECT_EQ(out.lines.size(), s.lines.size());
  // a=rtcp without an address stays without one.
  EXPECT_TRUE(has_line(r.body, "a=rtcp:30001"));
  EXPECT_TRUE(has_line(r.body, "a=rtcp:30003"));
  EXPECT_EQ(out.media[0].rtcp->port, 30001);
  EXPECT_FALSE(out.media[0].rtcp->has_address);
  // Everything else as it was, in order.
  for (size_t i = 0; i < s.lines.size(); ++i) {
    if (s.lines[i].type == 'c' || s.lines[i].type == 'm' || s.lines[i].value.starts_with("rtcp:")) continue;
    EXPECT_EQ(out.lines[i].type, s.lines[i].type);
    EXPECT_EQ(out.lines[i].value, s.lines[i].value);
  }
}

TEST(SdpRewrite, RtcpNotInvented) {
  std::string body = crlf(testing::kSipp);
  RewriteResult r = rewrite_ok(parse_ok(body), {relay(relay4(), 30000)});
  EXPECT_EQ(r.body.find("a=rtcp"), std::string::npos);
  SessionDescription out = parse_ok(r.body);
  EXPECT_FALSE(out.media[0].rtcp.has_value());
  EXPECT_EQ(out.media[0].port, 30000);
}

TEST(SdpRewrite, RtcpMuxKeptOrRemoved) {
  std::string body = crlf(testing::kWebrtc);
  SessionDescription s = parse_ok(body);
  Relays relays = {relay(relay4(), 30000), relay(relay4(), 30002)};

  RewriteResult kept = rewrite_ok(s, relays);
  SessionDescription k = parse_ok(kept.body);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_TRUE(k.media[i].rtcp_mux);
    // With rtcp-mux RTCP shares the RTP port (RFC 5761 §5.1.3); a=rtcp named an address, so it
    // names the relay's.
    EXPECT_EQ(k.media[i].rtcp->port, k.media[i].port);
    EXPECT_EQ(k.media[i].rtcp->address, relay4());
  }
  EXPECT_TRUE(has_line(kept.body, "a=rtcp:30000 IN IP4 203.0.113.10"));

  RewriteOptions remove;
  remove.rtcp_mux = RtcpMuxPolicy::kRemove;
  std::string with_only = body + "a=rtcp-mux-only\r\n";  // RFC 8858, on the video stream
  SessionDescription s2 = parse_ok(with_only);
  RewriteResult removed = rewrite_ok(s2, relays, remove);
  SessionDescription d = parse_ok(removed.body);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_FALSE(d.media[i].rtcp_mux);
    EXPECT_EQ(d.media[i].rtcp->port, d.media[i].port + 1);
  }
  EXPECT_EQ(removed.body.find("rtcp-mux"), std::string::npos);
  EXPECT_TRUE(has_line(removed.body, "a=rtcp:30003 IN IP4 203.0.113.10"));
}

TEST(SdpRewrite, IceRemove) {
  std::string body = crlf(testing::kWebrtc);
  SessionDescription s = parse_ok(body);
  RewriteResult r = rewrite_ok(s, {relay(relay4(), 30000), relay(relay4(), 30002)});
  for (std::string_view gone : {"a=candidate", "a=ice-", "a=end-of-candidates", "a=remote-candidates"})
    EXPECT_EQ(r.body.find(gone), std::string::npos) << gone;
  SessionDescription out = parse_ok(r.body);
  for (const MediaDescription& m : out.media) {
    EXPECT_FALSE(m.has_ice());
    EXPECT_TRUE(m.ice_pwd.empty());
    EXPECT_EQ(m.connection->address, relay4());
    EXPECT_EQ(m.connection_source, ConnectionSource::kMedia);
  }
  // DTLS and bundling are the peers' business: kept.
  for (std::string_view kept : {"a=fingerprint:sha-256 4A:AD:B9:B1:3F:82:18:3B:54:02:12:DF:3E:5D:49:6B",
                                "a=setup:actpass", "a=mid:0", "a=mid:1", "a=group:BUNDLE 0 1"})
    EXPECT_TRUE(has_line(r.body, kept)) << kept;
  EXPECT_EQ(out.lines.size(), s.lines.size() - 11);  // 5 candidates, 2x ufrag/pwd, 1 options, 1 end-of
}

TEST(SdpRewrite, IceRemoveSessionLevelAttributes) {
  std::string body =
      "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\na=ice-lite\r\n"
      "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\na=ice-options:trickle\r\n"
      "m=audio 4000 RTP/AVP 0\r\na=candidate:1 1 UDP 2130706431 192.0.2.1 4000 typ host\r\n"
      "a=remote-candidates:1 192.0.2.9 5000\r\n";
  RewriteResult r = rewrite_ok(parse_ok(body), {relay(relay4(), 30000)});
  EXPECT_EQ(r.body,
            "v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 203.0.113.10\r\nt=0 0\r\n"
            "m=audio 30000 RTP/AVP 0\r\n");
}

TEST(SdpRewrite, IceKeepAndAdd) {
  std::string body = crlf(testing::kWebrtc);
  SessionDescription s = parse_ok(body);
  RewriteOptions options;
  options.ice = IcePolicy::kKeepAndAdd;
  RewriteResult r = rewrite_ok(s, {relay(relay4(), 30000), relay(relay6(), 30002)}, options);
  SessionDescription out = parse_ok(r.body);
  ASSERT_EQ(out.media.size(), 2U);
  // rtcp-mux kept: one component per stream.
  ASSERT_EQ(out.media[0].candidates.size(), s.media[0].candidates.size() + 1);
  ASSERT_EQ(out.media[1].candidates.size(), s.media[1].candidates.size() + 1);
  for (size_t i = 0; i < s.media[0].candidates.size(); ++i)
    EXPECT_EQ(out.lines[out.media[0].candidates[i].line].value, s.lines[s.media[0].candidates[i].line].value);
  const IceCandidate& added = out.media[0].candidates.back();
  EXPECT_EQ(added.component, 1);
  EXPECT_EQ(added.transport, "UDP");
  // RFC 8445 §5.1.2.1: 2^24 * 126 + 2^8 * 65535 + (256 - 1).
  EXPECT_EQ(added.priority, 2130706431U);
  EXPECT_EQ(added.address, relay4());
  EXPECT_EQ(added.port, 30000);
  EXPECT_EQ(added.type, "host");
  EXPECT_EQ(out.media[1].candidates.back().address, relay6());
  // Credentials kept; the relay's candidate goes before a=end-of-candidates.
  EXPECT_EQ(out.media[0].ice_ufrag, "Y0e+");
  EXPECT_TRUE(out.media[1].end_of_candidates);
  size_t end_of = r.body.find("a=end-of-candidates");
  size_t ours = r.body.find(" 2001:db8::10 30002 typ host");
  EXPECT_LT(ours, end_of);
  // Right after the peer's last candidate in the audio section.
  EXPECT_EQ(out.media[0].candidates.back().line, out.media[0].candidates[3].line + 1);
}

TEST(SdpRewrite, IceKeepAndAddTwoComponentsWithoutRtcpMux) {
  std::string body = crlf(testing::kWebrtc);
  SessionDescription s = parse_ok(body);
  RewriteOptions options;
  options.ice = IcePolicy::kKeepAndAdd;
  options.rtcp_mux = RtcpMuxPolicy::kRemove;
  RewriteResult r = rewrite_ok(s, {relay(relay4(), 30000), relay(relay4(), 30002)}, options);
  SessionDescription out = parse_ok(r.body);
  ASSERT_EQ(out.media[0].candidates.size(), s.media[0].candidates.size() + 2);
  const IceCandidate& rtcp = out.media[0].candidates.back();
  EXPECT_EQ(rtcp.component, 2);
  EXPECT_EQ(rtcp.port, 30001);
  EXPECT_EQ(rtcp.priority, 2130706430U);
  // Both components of one base address share a foundation.
  EXPECT_EQ(rtcp.foundation, out.media[0].candidates[out.media[0].candidates.size() - 2].foundation);
}

TEST(SdpRewrite, IceKeepAndAddLeavesStreamsWithoutIce) {
  std::string body = crlf(testing::kBaresip);
  RewriteOptions options;
  options.ice = IcePolicy::kKeepAndAdd;
  RewriteResult r = rewrite_ok(parse_ok(body), {relay(relay4(), 30000), relay(relay4(), 30002)}, options);
  EXPECT_EQ(r.body.find("a=candidate"), std::string::npos);
}

TEST(SdpRewrite, SessionConnectionSharedByStreamsWithDifferentRelays) {
  std::string body = crlf(testing::kBaresip);
  SessionDescription s = parse_ok(body);
  RewriteResult r = rewrite_ok(s, {relay(relay4(), 30000), relay(relay6(), 30002)});
  SessionDescription out = parse_ok(r.body);
  EXPECT_EQ(out.connection->address, relay4());
  EXPECT_EQ(out.media[0].connection_source, ConnectionSource::kSession);
  EXPECT_EQ(out.media[0].connection->address, relay4());
  EXPECT_EQ(out.media[1].connection_source, ConnectionSource::kMedia);
  EXPECT_EQ(out.media[1].connection->address, relay6());
  // Placed right after the m= line (RFC 8866 §5 order m, i, c).
  EXPECT_EQ(out.media[1].connection->line, out.media[1].first_line + 1);
  EXPECT_EQ(out.lines.size(), s.lines.size() + 1);
}

TEST(SdpRewrite, UntouchedStreamKeepsSessionConnection) {
  std::string body = crlf(
      "v=0\n"
      "o=- 7 7 IN IP4 192.168.1.10\n"
      "s=-\n"
      "c=IN IP4 192.168.1.10\n"
      "t=0 0\n"
      "m=audio 4000 RTP/AVP 0\n"
      "i=voice\n"
      "a=sendrecv\n"
      "m=application 5000 TCP/BFCP *\n"
      "a=floorctrl:c-only\n");
  SessionDescription s = parse_ok(body);
  RewriteResult r = rewrite_ok(s, {relay(relay4(), 30000), std::nullopt});
  EXPECT_EQ(r.body,
            "v=0\r\n"
            "o=- 7 7 IN IP4 192.168.1.10\r\n"
            "s=-\r\n"
            "c=IN IP4 192.168.1.10\r\n"
            "t=0 0\r\n"
            "m=audio 30000 RTP/AVP 0\r\n"
            "i=voice\r\n"
            "c=IN IP4 203.0.113.10\r\n"
            "a=sendrecv\r\n"
            "m=application 5000 TCP/BFCP *\r\n"
            "a=floorctrl:c-only\r\n");
}

TEST(SdpRewrite, MediaLevelConnectionsAndDisabledStream) {
  std::string body = crlf(testing::kMultiMedia);
  SessionDescription s = parse_ok(body);
  RewriteResult r =
      rewrite_ok(s, {relay(relay4(), 30000), relay(relay4(), 30002), relay(relay4(), 30004), relay(relay4(), 30006)});
  SessionDescription out = parse_ok(r.body);
  EXPECT_FALSE(out.connection.has_value());  // structure kept: no session c= appears
  EXPECT_EQ(out.media[0].port, 30000);
  EXPECT_EQ(out.media[0].rtcp->port, 30001);
  EXPECT_EQ(out.media[0].rtcp->address, relay4());
  // The disabled stream keeps its port 0 and its own c=.
  EXPECT_TRUE(out.media[1].disabled());
  EXPECT_EQ(out.media[1].connection->address, addr("172.16.4.9"));
  EXPECT_EQ(out.media[2].port, 30004);
  EXPECT_EQ(out.media[2].connection->address, relay4());
  // The relay gives one port: the port count goes.
  EXPECT_EQ(out.media[3].port, 30006);
  EXPECT_EQ(out.media[3].port_count, 1);
  EXPECT_TRUE(has_line(r.body, "m=audio 30006 RTP/AVP 0"));
  EXPECT_EQ(out.media[3].direction, Direction::kInactive);
  EXPECT_EQ(count_lines_starting(r.body, "c=IN IP4 203.0.113.10"), 3U);
  EXPECT_EQ(out.lines.size(), s.lines.size());
}

TEST(SdpRewrite, MulticastSuffixDroppedWithTheAddress) {
  std::string body = crlf(testing::kMulticast);
  RewriteResult r = rewrite_ok(parse_ok(body), {relay(relay4(), 30000), relay(relay4(), 30002)});
  EXPECT_TRUE(has_line(r.body, "c=IN IP4 203.0.113.10"));
  EXPECT_EQ(r.body.find("/127"), std::string::npos);
  EXPECT_TRUE(has_line(r.body, "e=j.doe@example.com (Jane Doe)"));
}

TEST(SdpRewrite, HoldZeroAddressKeptByDefault) {
  std::string body = crlf(testing::kHoldZero);
  SessionDescription s = parse_ok(body);
  RewriteResult kept = rewrite_ok(s, {relay(relay4(), 30000)});
  SessionDescription k = parse_ok(kept.body);
  EXPECT_TRUE(k.media[0].connection->unspecified());
  EXPECT_TRUE(k.media[0].on_hold());
  EXPECT_EQ(k.media[0].port, 30000);
  EXPECT_TRUE(has_line(kept.body, "c=IN IP4 0.0.0.0"));

  RewriteOptions replace;
  replace.replace_zero_address = true;
  RewriteResult replaced = rewrite_ok(s, {relay(relay4(), 30000)}, replace);
  SessionDescription p = parse_ok(replaced.body);
  EXPECT_EQ(p.media[0].connection->address, relay4());
  EXPECT_FALSE(p.media[0].on_hold());
}

TEST(SdpRewrite, HoldZeroStreamNextToRelayedStream) {
  // Two streams share c=0.0.0.0; replace_zero_address off: both keep the hold address.
  std::string body = crlf(
      "v=0\no=- 1 1 IN IP4 10.0.0.45\ns=-\nc=IN IP4 0.0.0.0\nt=0 0\n"
      "m=audio 5004 RTP/AVP 0\na=rtcp:5005 IN IP4 0.0.0.0\nm=video 5006 RTP/AVP 99\n"
      "a=rtcp:5007 IN IP4 10.0.0.45\n");
  SessionDescription s = parse_ok(body);
  RewriteResult r = rewrite_ok(s, {relay(relay4(), 30000), relay(relay4(), 30002)});
  SessionDescription out = parse_ok(r.body);
  EXPECT_TRUE(out.media[0].connection->unspecified());
  EXPECT_TRUE(out.media[1].connection->unspecified());
  EXPECT_TRUE(has_line(r.body, "a=rtcp:30001 IN IP4 0.0.0.0"));
  // An RTCP address that is not the hold address is the peer's: the relay's replaces it.
  EXPECT_TRUE(has_line(r.body, "a=rtcp:30003 IN IP4 203.0.113.10"));
}

TEST(SdpRewrite, ForceDirection) {
  std::string body = crlf(testing::kHoldSendonly);
  SessionDescription s = parse_ok(body);
  RewriteOptions options;
  options.force_direction = Direction::kSendRecv;
  RewriteResult r = rewrite_ok(s, {relay(relay4(), 30000), relay(relay4(), 30002)}, options);
  SessionDescription out = parse_ok(r.body);
  EXPECT_EQ(out.media[0].direction, Direction::kSendRecv);
  EXPECT_TRUE(out.media[0].direction_from_media);  // added: it inherited sendonly
  EXPECT_EQ(out.media[1].direction, Direction::kSendRecv);
  EXPECT_EQ(r.body.find("a=recvonly"), std::string::npos);  // replaced in place
  EXPECT_EQ(out.lines.size(), s.lines.size() + 1);
  EXPECT_TRUE(has_line(r.body, "a=sendonly"));  // the session line stays

  // Without the option the directions pass through.
  RewriteResult plain = rewrite_ok(s, {relay(relay4(), 30000), relay(relay4(), 30002)});
  SessionDescription p = parse_ok(plain.body);
  EXPECT_EQ(p.media[0].direction, Direction::kSendOnly);
  EXPECT_EQ(p.media[1].direction, Direction::kRecvOnly);
  EXPECT_TRUE(p.media[0].on_hold());
}

TEST(SdpRewrite, ForceDirectionNotAddedWhenInheritedAlready) {
  std::string body = crlf(testing::kSipp);
  RewriteOptions options;
  options.force_direction = Direction::kSendRecv;  // the default, which the stream has
  RewriteResult r = rewrite_ok(parse_ok(body), {relay(relay4(), 30000)}, options);
  EXPECT_EQ(r.body.find("a=sendrecv"), std::string::npos);
  options.force_direction = Direction::kInactive;
  RewriteResult i = rewrite_ok(parse_ok(body), {relay(relay4(), 30000)}, options);
  EXPECT_TRUE(i.body.ends_with("a=inactive\r\n"));
}

TEST(SdpRewrite, UntouchedStreamByteIdentical) {
  std::string body = crlf(testing::kWebrtc);
  SessionDescription s = parse_ok(body);
  RewriteResult r = rewrite_ok(s, {relay(relay4(), 30000), std::nullopt});
  SessionDescription out = parse_ok(r.body);
  const MediaDescription& before = s.media[1];
  const MediaDescription& after = out.media[1];
  ASSERT_EQ(after.end_line - after.first_line, before.end_line - before.first_line);
  for (size_t i = 0; i < before.end_line - before.first_line; ++i)
    EXPECT_EQ(out.lines[after.first_line + i].value, s.lines[before.first_line + i].value);
  // ICE attributes at the untouched stream stay; the relayed one loses its own.
  EXPECT_TRUE(out.media[1].has_ice());
  EXPECT_TRUE(out.media[0].candidates.empty());
}

TEST(SdpRewrite, OriginAddressOption) {
  std::string body = crlf(testing::kSipp);
  RewriteOptions options;
  options.replace_origin = true;
  options.origin_address = addr("198.51.100.1");
  RewriteResult r = rewrite_ok(parse_ok(body), {relay(relay6(), 30000)}, options);
  EXPECT_TRUE(has_line(r.body, "o=user1 53655765 2353687637 IN IP4 198.51.100.1"));
  EXPECT_TRUE(has_line(r.body, "c=IN IP6 2001:db8::10"));
}

TEST(SdpRewrite, OriginVersionAcrossReinvites) {
  // RFC 3264 §8: the version goes up when the description changes and only then.
  std::string offer = crlf(testing::kSipp);
  Relays relays = {relay(relay4(), 30000)};
  RewriteResult first = rewrite_ok(parse_ok(offer), relays);
  EXPECT_EQ(first.version, 2353687637U);  // no previous rewrite: the sender's
  PreviousRewrite previous{first.version, first.content_hash};

  // Session refresh: the same offer again. Same body, same version.
  RewriteResult refresh = rewrite_ok(parse_ok(offer), relays, {}, previous);
  EXPECT_EQ(refresh.version, first.version);
  EXPECT_EQ(refresh.body, first.body);
  EXPECT_EQ(refresh.content_hash, first.content_hash);

  // The phone moved to another private address (its version goes up), but the relay hides it:
  // the rewritten body is the same, so our version stays.
  std::string moved = offer;
  moved.replace(moved.find("c=IN IP4 127.0.0.1"), 18, "c=IN IP4 10.1.1.1");
  moved.replace(moved.find("2353687637"), 10, "2353687638");
  RewriteResult moved_r = rewrite_ok(parse_ok(moved), relays, {}, previous);
  EXPECT_EQ(moved_r.version, first.version);
  EXPECT_EQ(moved_r.content_hash, first.content_hash);

  // The phone puts the call on hold: the body changes, the version goes up by one.
  std::string hold = offer + "a=sendonly\r\n";
  RewriteResult hold_r = rewrite_ok(parse_ok(hold), relays, {}, previous);
  EXPECT_EQ(hold_r.version, first.version + 1);
  EXPECT_NE(hold_r.content_hash, first.content_hash);
  EXPECT_TRUE(has_line(hold_r.body, "o=user1 53655765 2353687638 IN IP4 127.0.0.1"));

  // The relay moved the stream to another port: changed too.
  RewriteResult port_r = rewrite_ok(parse_ok(offer), {relay(relay4(), 30010)}, {}, previous);
  EXPECT_EQ(port_r.version, first.version + 1);

  // Our versions follow our own counter, not the sender's.
  PreviousRewrite ours{41, first.content_hash};
  EXPECT_EQ(rewrite_ok(parse_ok(offer), relays, {}, ours).version, 41U);
  EXPECT_EQ(rewrite_ok(parse_ok(hold), relays, {}, ours).version, 42U);
  EXPECT_TRUE(has_line(rewrite_ok(parse_ok(hold), relays, {}, ours).body, "o=user1 53655765 42 IN IP4 127.0.0.1"));
}

TEST(SdpRewrite, CallerErrors) {
  std::string body = crlf(testing::kBaresip);
  SessionDescription s = parse_ok(body);
  auto count = rewrite_sdp(s, Relays{relay(relay4(), 30000)});
  ASSERT_FALSE(count.ok());
  EXPECT_EQ(count.error().status, 500);
  auto port0 = rewrite_sdp(s, Relays{relay(relay4(), 0), relay(relay4(), 30002)});
  ASSERT_FALSE(port0.ok());
  EXPECT_EQ(port0.error().status, 500);

  // Port 65535 leaves no room for RTCP unless it is muxed.
  std::string sipp = crlf(testing::kSipp);
  auto no_room = rewrite_sdp(parse_ok(sipp), Relays{relay(relay4(), 65535)});
  ASSERT_FALSE(no_room.ok());
  EXPECT_EQ(no_room.error().status, 500);
  EXPECT_TRUE(rewrite_sdp(s, Relays{relay(relay4(), 65535), relay(relay4(), 30002)}).ok());  // baresip muxes
  // A disabled stream needs no relay port.
  std::string answer = crlf(testing::kRfc3264Answer);
  EXPECT_TRUE(
      rewrite_sdp(parse_ok(answer), Relays{relay(relay4(), 30000), relay(relay4(), 0), relay(relay4(), 30004)}).ok());
}

TEST(SdpRewrite, NothingRelayedChangesOnlyLineEndings) {
  SessionDescription s = parse_ok(testing::kLinphone);
  RewriteResult r = rewrite_ok(s, {std::nullopt, std::nullopt});
  EXPECT_EQ(r.body, crlf(testing::kLinphone));
}

}  // namespace
}  // namespace pinhole::sdp
