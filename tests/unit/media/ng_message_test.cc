// ng control protocol: datagram framing, the TCP stream splitter across every way of cutting a
// stream, parsing of the offer/answer/delete/query/ping commands Kamailio's rtpengine module
// builds (written here by hand from rtpengine.c's rtpp_function_call and parse_flags), flag and
// key normalisation, warnings for unknown flags/keys, and the reply encoders.
#include "media/ng_message.h"

#include <gtest/gtest.h>

#include <deque>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pinhole::media {
namespace {

// The test's own bencode builders (independent of bencode::Writer).
std::string bstr(std::string_view s) { return std::to_string(s.size()) + ":" + std::string(s); }
std::string bint(int64_t i) { return "i" + std::to_string(i) + "e"; }
std::string blist(std::initializer_list<std::string> items) {
  std::string out = "l";
  for (const std::string& i : items) out += i;
  return out + "e";
}
std::string bdict(std::initializer_list<std::pair<std::string_view, std::string>> pairs) {
  std::string out = "d";
  for (const auto& [k, v] : pairs) out += bstr(k) + v;
  return out + "e";
}

constexpr std::string_view kOfferSdp =
    "v=0\r\n"
    "o=alice 2890844526 2890844526 IN IP4 192.168.1.10\r\n"
    "s=-\r\n"
    "c=IN IP4 192.168.1.10\r\n"
    "t=0 0\r\n"
    "m=audio 49170 RTP/AVP 0 8 101\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n"
    "a=sendrecv\r\n";
constexpr std::string_view kAnswerSdp =
    "v=0\r\n"
    "o=bob 2808844564 2808844564 IN IP4 192.168.2.10\r\n"
    "s=-\r\n"
    "c=IN IP4 192.168.2.10\r\n"
    "t=0 0\r\n"
    "m=audio 3456 RTP/AVP 0 101\r\n"
    "a=rtpmap:101 telephone-event/8000\r\n";
constexpr std::string_view kCallId = "a84b4c76e66710@pc33.example.com";

// rtpengine_manage("via-branch=1 trust-address replace-origin replace-session-connection ICE=remove
// RTP/AVP") on an INVITE from a NATed phone: Kamailio's key order (supports and sdp first, the
// generic key=value flags while parsing, then the collected lists, then call-id, via-branch, tags,
// command, sip-message-type).
std::string kamailio_offer() {
  return bdict({
      {"supports", blist({bstr("load limit")})},
      {"sdp", bstr(kOfferSdp)},
      {"ICE", bstr("remove")},
      {"flags", blist({bstr("trust-address")})},
      {"replace", blist({bstr("origin"), bstr("session-connection")})},
      {"transport-protocol", bstr("RTP/AVP")},
      {"received-from", blist({bstr("IP4"), bstr("203.0.113.101")})},
      {"call-id", bstr(kCallId)},
      {"via-branch", bstr("z9hG4bK776asdhds")},
      {"from-tag", bstr("1928301774")},
      {"command", bstr("offer")},
      {"sip-message-type", bstr("sip_request")},
  });
}

// The same flags on the 200 OK: from-tag and to-tag as in the SIP message.
std::string kamailio_answer() {
  return bdict({
      {"supports", blist({bstr("load limit")})},
      {"sdp", bstr(kAnswerSdp)},
      {"ICE", bstr("remove")},
      {"flags", blist({bstr("trust-address")})},
      {"replace", blist({bstr("origin"), bstr("session-connection")})},
      {"received-from", blist({bstr("IP4"), bstr("203.0.113.102")})},
      {"call-id", bstr(kCallId)},
      {"from-tag", bstr("1928301774")},
      {"to-tag", bstr("a6c85cf")},
      {"command", bstr("answer")},
      {"sip-message-type", bstr("sip_reply")},
  });
}

// rtpengine_delete("delete-delay=5") on a BYE: Kamailio adds the integer "delete delay" and then,
// falling through to its generic case, the string "delete-delay" as well.
std::string kamailio_delete() {
  return bdict({
      {"supports", blist({bstr("load limit")})},
      {"delete delay", bint(5)},
      {"delete-delay", bstr("5")},
      {"received-from", blist({bstr("IP4"), bstr("203.0.113.101")})},
      {"call-id", bstr(kCallId)},
      {"from-tag", bstr("1928301774")},
      {"command", bstr("delete")},
      {"sip-message-type", bstr("sip_request")},
  });
}

std::string kamailio_query() {
  return bdict({
      {"supports", blist({bstr("load limit")})},
      {"call-id", bstr(kCallId)},
      {"from-tag", bstr("1928301774")},
      {"command", bstr("query")},
      {"sip-message-type", bstr("sip_request")},
  });
}

// Parses a copy of `body` kept for the rest of the test program: an NgCommand's views point into
// the message, and the tests build most messages as temporaries.
NgCommand must_parse(std::string body) {
  static std::deque<std::string> kept;
  kept.push_back(std::move(body));
  auto r = parse_ng_body(kept.back());
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().what);
  return r.ok() ? std::move(r).value() : NgCommand{};
}

std::vector<std::string_view> views(std::initializer_list<std::string_view> v) { return v; }

// ---------------------------------------------------------------------------------------------
// Framing

TEST(NgFrame, SplitsAtTheFirstSpace) {
  auto f = split_ng_frame("5323_1 d7:command4:pinge");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->cookie, "5323_1");
  EXPECT_EQ(f->body, "d7:command4:pinge");
  // Spaces inside the body stay in the body.
  auto g = split_ng_frame("c d3:sdp3:a bee");
  ASSERT_TRUE(g.ok());
  EXPECT_EQ(g->cookie, "c");
  EXPECT_EQ(g->body, "d3:sdp3:a bee");
  // A cookie with an empty body frames; the body is answered with an error.
  auto e = split_ng_frame("abc ");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->body, "");
  auto r = parse_ng_body(e->body);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().what, "Invalid data (no payload)");
}

TEST(NgFrame, RefusesWhatCannotBeAnswered) {
  for (std::string_view bad : {std::string_view(""), std::string_view("d7:command4:pinge"), std::string_view(" d2:abe"),
                               std::string_view("co\x01kie d2:abe"), std::string_view("co\x7fkie d2:abe")}) {
    SCOPED_TRACE(bad);
    EXPECT_FALSE(split_ng_frame(bad).ok());
  }
  std::string longest(kNgMaxCookie, 'c');
  EXPECT_TRUE(split_ng_frame(longest + " d2:abe").ok());
  EXPECT_FALSE(split_ng_frame(longest + "c d2:abe").ok());
}

// ---------------------------------------------------------------------------------------------
// Stream splitting

std::vector<std::pair<std::string, std::string>> split_all(NgStreamSplitter& splitter,
                                                           const std::vector<std::string_view>& chunks) {
  std::vector<std::pair<std::string, std::string>> out;
  for (std::string_view chunk : chunks) {
    splitter.append(chunk);
    for (;;) {
      auto f = splitter.next();
      if (f.kind == NgStreamSplitter::Kind::kError) {
        out.emplace_back("ERROR", std::string(f.error.what));
        return out;
      }
      if (f.kind == NgStreamSplitter::Kind::kNeedMore) break;
      out.emplace_back(std::string(f.message.cookie), std::string(f.message.body));
    }
  }
  return out;
}

TEST(NgStreamSplitter, SplitsAcrossArbitraryChunkBoundaries) {
  // The offer's SDP holds spaces, digits, 'e', 'i' and ':' that must not confuse the framing.
  const std::vector<std::pair<std::string, std::string>> messages = {
      {"8_2412589934_17", kamailio_offer()},
      {"8_2412589934_18", "d7:command4:pinge"},
      {"8_2412589934_19", kamailio_delete()},
  };
  std::string stream;
  for (const auto& [cookie, body] : messages) stream += cookie + " " + body;

  for (size_t chunk = 1; chunk <= 64; ++chunk) {
    std::vector<std::string_view> chunks;
    for (size_t at = 0; at < stream.size(); at += chunk) chunks.push_back(std::string_view(stream).substr(at, chunk));
    NgStreamSplitter splitter;
    EXPECT_EQ(split_all(splitter, chunks), messages) << "chunk " << chunk;
    EXPECT_EQ(splitter.buffered(), 0u);
  }
  // Every single cut point, and every pair of cut points around each message boundary.
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    NgStreamSplitter splitter;
    EXPECT_EQ(split_all(splitter, {std::string_view(stream).substr(0, cut), std::string_view(stream).substr(cut)}),
              messages)
        << "cut " << cut;
  }
}

TEST(NgStreamSplitter, KeepsAPartialMessage) {
  NgStreamSplitter splitter;
  splitter.append("c1 d7:command4:pingec2 d7:comm");
  auto first = splitter.next();
  ASSERT_EQ(first.kind, NgStreamSplitter::Kind::kMessage);
  EXPECT_EQ(first.message.cookie, "c1");
  EXPECT_EQ(splitter.next().kind, NgStreamSplitter::Kind::kNeedMore);
  EXPECT_EQ(splitter.buffered(), std::string_view("c2 d7:comm").size());
  splitter.append("and4:pinge");
  auto second = splitter.next();
  ASSERT_EQ(second.kind, NgStreamSplitter::Kind::kMessage);
  EXPECT_EQ(second.message.cookie, "c2");
  EXPECT_EQ(second.message.body, "d7:command4:pinge");
}

TEST(NgStreamSplitter, ManyMessagesInOneRead) {
  std::string burst;
  for (int i = 0; i < 1000; ++i) burst += "c" + std::to_string(i) + " d7:command4:pinge";
  burst += "c1000 d7:comm";
  NgStreamSplitter splitter;
  splitter.append(burst);
  for (int i = 0; i < 1000; ++i) {
    auto f = splitter.next();
    ASSERT_EQ(f.kind, NgStreamSplitter::Kind::kMessage) << i;
    EXPECT_EQ(f.message.cookie, "c" + std::to_string(i));
    EXPECT_EQ(f.message.body, "d7:command4:pinge");
  }
  EXPECT_EQ(splitter.next().kind, NgStreamSplitter::Kind::kNeedMore);
  EXPECT_EQ(splitter.buffered(), std::string_view("c1000 d7:comm").size());
  splitter.append("and4:pinge");
  auto last = splitter.next();
  ASSERT_EQ(last.kind, NgStreamSplitter::Kind::kMessage);
  EXPECT_EQ(last.message.cookie, "c1000");
  EXPECT_EQ(splitter.buffered(), 0u);
}

TEST(NgStreamSplitter, SkipsWhitespaceBetweenMessages) {
  NgStreamSplitter splitter;
  auto got = split_all(splitter, {"\r\nc1 d7:command4:pinge\n", "\r\n c2 d7:command4:pinge\t c3 de"});
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].first, "c1");
  EXPECT_EQ(got[1].first, "c2");
  EXPECT_EQ(got[2].first, "c3");
  EXPECT_EQ(got[2].second, "de");
}

TEST(NgStreamSplitter, ErrorsCloseTheStream) {
  {
    NgStreamSplitter splitter;
    auto got = split_all(splitter, {std::string(kNgMaxCookie + 1, 'x')});
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].first, "ERROR");
  }
  {
    // Malformed bencode after a valid message: the first still comes out.
    NgStreamSplitter splitter;
    auto got = split_all(splitter, {"c1 d7:command4:pingec2 di1ei2ee"});
    ASSERT_EQ(got.size(), 2u);
    EXPECT_EQ(got[0].first, "c1");
    EXPECT_EQ(got[1].first, "ERROR");
    splitter.append("c3 d7:command4:pinge");
    EXPECT_EQ(splitter.next().kind, NgStreamSplitter::Kind::kError);
  }
  {
    // Too large: fails once the message passes the limit, without waiting for its end.
    NgStreamSplitter splitter(100);
    auto got = split_all(splitter, {"c1 d3:sdp500:", std::string(200, 'x')});
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].first, "ERROR");
    auto again = splitter.next();
    EXPECT_EQ(again.error.status, 413);
  }
  {
    NgStreamSplitter splitter;
    auto got = split_all(splitter, {"bad\x01"
                                    "cookie d7:command4:pinge"});
    ASSERT_EQ(got.size(), 1u);
    EXPECT_EQ(got[0].first, "ERROR");
  }
}

// ---------------------------------------------------------------------------------------------
// Commands as Kamailio sends them

TEST(NgCommandParse, KamailioOffer) {
  std::string body = kamailio_offer();
  auto parsed = parse_ng_body(body);
  ASSERT_TRUE(parsed.ok()) << parsed.error().what;
  const NgCommand& c = *parsed;
  EXPECT_EQ(c.kind, NgCommandKind::kOffer);
  EXPECT_EQ(c.command, "offer");
  EXPECT_EQ(c.call_id, kCallId);
  EXPECT_EQ(c.from_tag, "1928301774");
  EXPECT_FALSE(c.has_to_tag);
  EXPECT_EQ(c.via_branch, "z9hG4bK776asdhds");
  EXPECT_EQ(c.sdp, kOfferSdp);
  EXPECT_EQ(c.ice, NgIce::kRemove);
  EXPECT_TRUE(c.flags.has(NgFlag::kTrustAddress));
  EXPECT_FALSE(c.flags.has(NgFlag::kSipSourceAddress));
  EXPECT_TRUE(c.replace.has(NgReplace::kOrigin));
  EXPECT_TRUE(c.replace.has(NgReplace::kSessionConnection));
  EXPECT_FALSE(c.replace.has(NgReplace::kSdpVersion));
  EXPECT_EQ(c.transport_protocol, NgTransport::kRtpAvp);
  ASSERT_TRUE(c.received_from.has_value());
  EXPECT_EQ(c.received_from->family, NgFamily::kIp4);
  EXPECT_EQ(c.received_from->address, "203.0.113.101");
  EXPECT_TRUE(c.supports_load_limit);
  EXPECT_EQ(c.sip_message_type, NgSipMessageType::kRequest);
  EXPECT_TRUE(c.unknown_flags.empty());
  EXPECT_TRUE(c.unknown_keys.empty());
  EXPECT_TRUE(c.invalid_keys.empty());
  EXPECT_TRUE(c.conflicting_keys.empty());
  EXPECT_EQ(ng_warning(c), "");
  // The SDP is a view into the message, not a copy.
  EXPECT_GE(c.sdp.data(), body.data());
  EXPECT_LE(c.sdp.data() + c.sdp.size(), body.data() + body.size());
}

TEST(NgCommandParse, KamailioAnswer) {
  NgCommand c = must_parse(kamailio_answer());
  EXPECT_EQ(c.kind, NgCommandKind::kAnswer);
  EXPECT_EQ(c.from_tag, "1928301774");
  EXPECT_TRUE(c.has_to_tag);
  EXPECT_EQ(c.to_tag, "a6c85cf");
  EXPECT_EQ(c.sdp, kAnswerSdp);
  EXPECT_EQ(c.received_from->address, "203.0.113.102");
  EXPECT_EQ(c.sip_message_type, NgSipMessageType::kReply);
  EXPECT_EQ(c.transport_protocol, NgTransport::kUnset);
}

TEST(NgCommandParse, KamailioDeleteSendsTheDelayTwice) {
  NgCommand c = must_parse(kamailio_delete());
  EXPECT_EQ(c.kind, NgCommandKind::kDelete);
  EXPECT_EQ(c.delete_delay, 5);
  // Same value under both spellings: no conflict, no warning.
  EXPECT_TRUE(c.conflicting_keys.empty());
  EXPECT_EQ(ng_warning(c), "");
  EXPECT_TRUE(c.sdp.empty());
}

TEST(NgCommandParse, KamailioQueryAndPing) {
  NgCommand q = must_parse(kamailio_query());
  EXPECT_EQ(q.kind, NgCommandKind::kQuery);
  EXPECT_EQ(q.call_id, kCallId);
  NgCommand p = must_parse("d7:command4:pinge");
  EXPECT_EQ(p.kind, NgCommandKind::kPing);
  NgCommand l = must_parse(bdict({{"command", bstr("list")}, {"limit", bint(10)}}));
  EXPECT_EQ(l.kind, NgCommandKind::kList);
  EXPECT_EQ(l.limit, 10);
}

TEST(NgCommandParse, RtppFlagsParsedHere) {
  // Newer Kamailio can leave the flag string to the relay ("rtpp-flags").
  std::string body = bdict({
      {"supports", blist({bstr("load limit")})},
      {"sdp", bstr(kOfferSdp)},
      {"call-id", bstr(kCallId)},
      {"via-branch", bstr("z9hG4bK776asdhds")},
      {"from-tag", bstr("1928301774")},
      {"command", bstr("offer")},
      {"rtpp-flags", bstr("  trust-address replace-origin replace=session-connection ICE=force-relay SRTP AVPF "
                          "internal external received-from=2001:db8::10 rtcp-mux-demux via-branch=auto "
                          "delete-delay=30 label=caller")},
  });
  NgCommand c = must_parse(body);
  EXPECT_TRUE(c.flags.has(NgFlag::kTrustAddress));
  EXPECT_TRUE(c.replace.has(NgReplace::kOrigin));
  EXPECT_TRUE(c.replace.has(NgReplace::kSessionConnection));
  EXPECT_EQ(c.ice, NgIce::kForceRelay);
  EXPECT_EQ(c.transport_protocol, NgTransport::kRtpSavpf);  // SRTP + AVPF
  EXPECT_EQ(c.direction, views({"internal", "external"}));
  ASSERT_TRUE(c.received_from.has_value());
  EXPECT_EQ(c.received_from->family, NgFamily::kIp6);
  EXPECT_EQ(c.received_from->address, "2001:db8::10");
  EXPECT_TRUE(c.rtcp_mux.has(NgRtcpMux::kDemux));
  EXPECT_EQ(c.via_branch, "z9hG4bK776asdhds");  // "auto" is Kamailio's selector, not a branch
  EXPECT_EQ(c.delete_delay, 30);
  EXPECT_EQ(c.label, "caller");
  EXPECT_EQ(ng_warning(c), "");
}

// ---------------------------------------------------------------------------------------------
// Normalisation

TEST(NgCommandParse, FlagSpellingsNormaliseToOneSet) {
  for (std::string_view spelling :
       {"SIP-source-address", "SIP source address", "sip_source_address", "sip-source-address"}) {
    SCOPED_TRACE(spelling);
    NgCommand c = must_parse(bdict({{"command", bstr("ping")}, {"flags", blist({bstr(spelling)})}}));
    EXPECT_TRUE(c.flags.has(NgFlag::kSipSourceAddress));
    EXPECT_TRUE(c.unknown_flags.empty());
  }
  // The NAT flags Kamailio scripts use.
  NgCommand c = must_parse(bdict({
      {"command", bstr("ping")},
      {"flags", blist({bstr("symmetric"), bstr("asymmetric"), bstr("strict source"), bstr("media-handover"),
                       bstr("port-latching"), bstr("NAT-wait"), bstr("pierce NAT"), bstr("loop-protect")})},
  }));
  for (NgFlag f : {NgFlag::kSymmetric, NgFlag::kAsymmetric, NgFlag::kStrictSource, NgFlag::kMediaHandover,
                   NgFlag::kPortLatching, NgFlag::kNatWait, NgFlag::kPierceNat, NgFlag::kLoopProtect}) {
    EXPECT_TRUE(c.flags.has(f)) << static_cast<int>(f);
  }
  EXPECT_FALSE(c.flags.has(NgFlag::kTrustAddress));
}

TEST(NgCommandParse, FlagsAndKeysLandInTheSameSet) {
  // replace-* / rtcp-mux-* / from-tags-* in `flags` mean the same as their own keys.
  NgCommand as_flags = must_parse(bdict({
      {"command", bstr("ping")},
      {"flags", blist({bstr("replace-origin"), bstr("replace-session-connection"), bstr("rtcp-mux-offer"),
                       bstr("rtcp-mux-demux"), bstr("from-tags-Tag1")})},
  }));
  NgCommand as_keys = must_parse(bdict({
      {"command", bstr("ping")},
      {"replace", blist({bstr("origin"), bstr("session connection")})},
      {"rtcp-mux", blist({bstr("offer"), bstr("demux")})},
      {"from-tags", blist({bstr("Tag1")})},
  }));
  NgCommand as_strings = must_parse(bdict({
      {"command", bstr("ping")},
      {"replace", bstr("origin,session-connection")},
      {"rtcp-mux", bstr("offer,demux")},
      {"from-tags", bstr("Tag1")},
  }));
  for (const NgCommand* c : {&as_flags, &as_keys, &as_strings}) {
    EXPECT_TRUE(c->replace.has(NgReplace::kOrigin));
    EXPECT_TRUE(c->replace.has(NgReplace::kSessionConnection));
    EXPECT_FALSE(c->replace.has(NgReplace::kUsername));
    EXPECT_TRUE(c->rtcp_mux.has(NgRtcpMux::kOffer));
    EXPECT_TRUE(c->rtcp_mux.has(NgRtcpMux::kDemux));
    EXPECT_FALSE(c->rtcp_mux.has(NgRtcpMux::kRequire));
    EXPECT_EQ(c->from_tags, views({"Tag1"}));  // tags keep their case
    EXPECT_TRUE(c->unknown_flags.empty());
  }
  EXPECT_EQ(as_flags.replace, as_keys.replace);
  EXPECT_EQ(as_flags.rtcp_mux, as_strings.rtcp_mux);

  // `record call` (yes/no) mirrors the record-call flag; a later "no" clears it.
  NgCommand rec = must_parse(bdict({{"command", bstr("ping")}, {"record call", bstr("yes")}}));
  EXPECT_TRUE(rec.flags.has(NgFlag::kRecordCall));
  NgCommand off = must_parse(
      bdict({{"command", bstr("ping")}, {"flags", blist({bstr("record-call")})}, {"record-call", bstr("no")}}));
  EXPECT_FALSE(off.flags.has(NgFlag::kRecordCall));
}

TEST(NgCommandParse, KeySpellingsAndValues) {
  NgCommand c = must_parse(bdict({
      {"command", bstr("offer")},
      {"SDP", bstr("v=0\r\n")},
      {"call id", bstr("x")},
      {"from-tag", bstr("f")},
      {"address family", bstr("IP6")},
      {"media address", bstr("2001:db8::5")},
      {"transport protocol", bstr("UDP/TLS/RTP/SAVPF")},
      {"direction", blist({bstr("pub"), bstr("priv")})},
      {"from-label", bstr("callee")},
      {"ICE", bstr("force_relay")},
  }));
  EXPECT_EQ(c.sdp, "v=0\r\n");
  EXPECT_EQ(c.call_id, "x");
  EXPECT_EQ(c.address_family, NgFamily::kIp6);
  EXPECT_EQ(c.media_address, "2001:db8::5");
  EXPECT_EQ(c.transport_protocol, NgTransport::kUdpTlsRtpSavpf);
  EXPECT_EQ(c.direction, views({"pub", "priv"}));
  EXPECT_EQ(c.label, "callee");
  EXPECT_EQ(c.ice, NgIce::kForceRelay);
  EXPECT_EQ(ng_warning(c), "");
}

// ---------------------------------------------------------------------------------------------
// Warnings and errors

TEST(NgCommandParse, UnknownFlagsAndKeysBecomeAWarning) {
  NgCommand c = must_parse(bdict({
      {"command", bstr("offer")},
      {"sdp", bstr("v=0\r\n")},
      {"call-id", bstr("x")},
      {"from-tag", bstr("f")},
      {"flags", blist({bstr("trust-address"), bstr("frobnicate"), bstr("replace-everything")})},
      {"xyzzy", bstr("1")},
      {"ICE", bstr("sideways")},
      {"delete delay", bstr("soon")},
      {"received-from", blist({bstr("IPX"), bstr("1.2.3.4")})},
  }));
  EXPECT_TRUE(c.flags.has(NgFlag::kTrustAddress));
  EXPECT_EQ(c.unknown_flags, views({"frobnicate", "replace-everything"}));
  EXPECT_EQ(c.unknown_keys, views({"xyzzy"}));
  EXPECT_EQ(c.invalid_keys, views({"ICE", "delete delay", "received-from"}));
  EXPECT_EQ(c.ice, NgIce::kUnset);
  EXPECT_FALSE(c.delete_delay.has_value());
  EXPECT_FALSE(c.received_from.has_value());
  EXPECT_EQ(ng_warning(c),
            "Unknown flags: frobnicate, replace-everything; unknown keys: xyzzy; unusable values for keys: ICE, delete "
            "delay, "
            "received-from");
}

TEST(NgCommandParse, ARepeatedKeyWinsAndIsReportedWhenItDiffers) {
  NgCommand c = must_parse(bdict({
      {"command", bstr("ping")},
      {"ICE", bstr("force")},
      {"ICE", bstr("remove")},
      {"label", bstr("a")},
      {"label", bstr("a")},
      {"flags", blist({bstr("asymmetric")})},
      {"flags", blist({bstr("strict-source")})},
  }));
  EXPECT_EQ(c.ice, NgIce::kRemove);
  EXPECT_EQ(c.label, "a");
  EXPECT_EQ(c.conflicting_keys, views({"ICE"}));
  // Lists accumulate.
  EXPECT_TRUE(c.flags.has(NgFlag::kAsymmetric));
  EXPECT_TRUE(c.flags.has(NgFlag::kStrictSource));
  EXPECT_EQ(ng_warning(c), "conflicting values for keys (last used): ICE");
}

TEST(NgCommandParse, WarningIsBoundedAndPrintable) {
  std::string flags = "l";
  for (int i = 0; i < 200; ++i) flags += bstr("bogus\x01" + std::to_string(i));
  flags += "e";
  NgCommand c = must_parse(bdict({{"command", bstr("ping")}, {"flags", flags}}));
  EXPECT_EQ(c.unknown_flags.size(), 200u);
  std::string w = ng_warning(c);
  EXPECT_EQ(w.size(), kNgMaxWarning);
  EXPECT_EQ(w.substr(w.size() - 3), "...");
  EXPECT_EQ(w.find('\x01'), std::string::npos);
  EXPECT_NE(w.find("bogus?0"), std::string::npos);
}

TEST(NgCommandParse, RequiredKeys) {
  struct Case {
    std::string body;
    std::string_view error;
  };
  const std::vector<Case> kCases = {
      {bdict({{"call-id", bstr("x")}}), "Dictionary contains no key \"command\""},
      {bdict({{"command", bint(1)}}), "Dictionary contains no key \"command\""},
      {bdict({{"command", bstr("offer")}, {"call-id", bstr("x")}, {"from-tag", bstr("f")}}), "No SDP body in message"},
      {bdict({{"command", bstr("offer")}, {"sdp", bstr("v=0")}, {"from-tag", bstr("f")}}), "No call-id in message"},
      {bdict({{"command", bstr("offer")}, {"sdp", bstr("v=0")}, {"call-id", bstr("x")}}), "No from-tag in message"},
      {bdict({{"command", bstr("answer")}, {"sdp", bstr("v=0")}, {"call-id", bstr("x")}, {"from-tag", bstr("f")}}),
       "No to-tag in message"},
      {bdict({{"command", bstr("delete")}, {"from-tag", bstr("f")}}), "No call-id in message"},
      {bdict({{"command", bstr("query")}, {"call-id", bstr("")}}), "No call-id in message"},
      {blist({bstr("command"), bstr("ping")}), "Could not decode dictionary"},
      {"{\"command\":\"ping\"}", "JSON ng messages are not supported"},
  };
  for (const Case& k : kCases) {
    SCOPED_TRACE(k.body);
    auto r = parse_ng_body(k.body);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().what, k.error);
  }
  // A malformed body reports the decoder's reason.
  auto bad = parse_ng_body("d7:command4:ping");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().what, "truncated bencode value");
}

TEST(NgCommandParse, UnknownCommandsAreKept) {
  NgCommand c = must_parse(bdict({{"command", bstr("start recording")}, {"call-id", bstr("x")}}));
  EXPECT_EQ(c.kind, NgCommandKind::kOther);
  EXPECT_EQ(c.command, "start recording");
  EXPECT_EQ(ng_command_name(NgCommandKind::kDelete), "delete");
  // Command names are exact.
  EXPECT_EQ(must_parse(bdict({{"command", bstr("Ping")}})).kind, NgCommandKind::kOther);
}

// ---------------------------------------------------------------------------------------------
// Replies

// Decodes the dictionary of a reply after checking its cookie. The reply is kept for the rest of
// the program, as the Document's strings point into it.
bencode::Document decode_reply(std::string reply, std::string_view cookie) {
  static std::deque<std::string> kept;
  kept.push_back(std::move(reply));
  std::string_view r = kept.back();
  EXPECT_EQ(r.substr(0, cookie.size() + 1), std::string(cookie) + " ");
  auto doc = bencode::decode(r.substr(cookie.size() + 1));
  EXPECT_TRUE(doc.ok());
  return std::move(doc).value();
}

TEST(NgReply, PongOkErrorLoadLimit) {
  NgReply pong;
  pong.result = NgResult::kPong;
  EXPECT_EQ(encode_ng_reply("5323_1", pong), "5323_1 d6:result4:ponge");

  NgReply ok;
  ok.sdp = kAnswerSdp;
  ok.warning = "Unknown flags: frobnicate";
  std::string reply = encode_ng_reply("c", ok);
  bencode::Document doc = decode_reply(reply, "c");
  EXPECT_EQ(doc.root().find("result")->as_string(), "ok");
  EXPECT_EQ(doc.root().find("sdp")->as_string(), kAnswerSdp);
  EXPECT_EQ(doc.root().find("warning")->as_string(), "Unknown flags: frobnicate");

  // An error reply carries result and error-reason only, whatever else is set.
  NgReply err = ok;
  err.result = NgResult::kError;
  err.error_reason = "Unknown call-id";
  EXPECT_EQ(encode_ng_reply("c", err), "c d6:result5:error12:error-reason15:Unknown call-ide");

  NgReply limit;
  limit.result = NgResult::kLoadLimit;
  limit.message = "Parallel session limit reached";
  bencode::Document l = decode_reply(encode_ng_reply("c", limit), "c");
  EXPECT_EQ(l.root().find("result")->as_string(), "load limit");
  EXPECT_EQ(l.root().find("message")->as_string(), "Parallel session limit reached");
  EXPECT_EQ(l.root().size(), 2u);

  // A reply parses back as an ng frame with the request's cookie.
  auto frame = split_ng_frame(reply);
  ASSERT_TRUE(frame.ok());
  EXPECT_EQ(frame->cookie, "c");
}

TEST(NgReply, ListAndQueryStats) {
  std::vector<std::string_view> calls = {"call-1", "call-2"};
  NgReply list;
  list.call_ids = &calls;
  bencode::Document l = decode_reply(encode_ng_reply("k", list), "k");
  std::vector<std::string_view> got;
  for (bencode::Value v : l.root().find("calls")->items()) got.push_back(*v.as_string());
  EXPECT_EQ(got, calls);

  NgCallStats stats;
  stats.created = 1700000000;
  stats.last_signal = 1700000005;
  NgStreamStats rtp;
  rtp.local_port = 30000;
  rtp.endpoint = NgEndpoint{NgFamily::kIp4, "203.0.113.101", 49170};
  rtp.advertised_endpoint = NgEndpoint{NgFamily::kIp4, "192.168.1.10", 49170};
  rtp.last_packet = 1700000100;
  rtp.flags = {"RTP", "confirmed"};
  rtp.stats = {705, 100287, 0};
  NgStreamStats rtcp;
  rtcp.local_port = 30001;
  rtcp.flags = {"RTCP"};
  rtcp.stats = {22, 2244, 1};
  NgMediaStats media{1, "audio", "RTP/AVP", {"initialized"}, {rtp, rtcp}};
  stats.tags.push_back(NgTagStats{"1928301774", 1700000000, "caller", "a6c85cf", {media}});
  stats.tags.push_back(NgTagStats{"a6c85cf", 1700000004, "", "1928301774", {}});
  stats.rtp_totals = {705, 100287, 0};
  stats.rtcp_totals = {22, 2244, 1};

  NgReply query;
  query.stats = &stats;
  std::string reply = encode_ng_reply("q", query);
  bencode::Document doc = decode_reply(reply, "q");
  bencode::Value root = doc.root();
  EXPECT_EQ(root.find("result")->as_string(), "ok");
  EXPECT_EQ(root.find("created")->as_integer(), 1700000000);
  EXPECT_EQ(root.find("last signal")->as_integer(), 1700000005);
  auto caller = root.find("tags")->find("1928301774");
  ASSERT_TRUE(caller.has_value());
  EXPECT_EQ(caller->find("tag")->as_string(), "1928301774");
  EXPECT_EQ(caller->find("label")->as_string(), "caller");
  EXPECT_EQ(caller->find("in dialogue with")->as_string(), "a6c85cf");
  bencode::Value m = *caller->find("medias")->items().begin();
  EXPECT_EQ(m.find("index")->as_integer(), 1);
  EXPECT_EQ(m.find("type")->as_string(), "audio");
  EXPECT_EQ(m.find("protocol")->as_string(), "RTP/AVP");
  auto streams = m.find("streams")->items();
  bencode::Value s0 = *streams.begin();
  EXPECT_EQ(s0.find("local port")->as_integer(), 30000);
  EXPECT_EQ(s0.find("endpoint")->find("family")->as_string(), "IPv4");
  EXPECT_EQ(s0.find("endpoint")->find("address")->as_string(), "203.0.113.101");
  EXPECT_EQ(s0.find("endpoint")->find("port")->as_integer(), 49170);
  EXPECT_EQ(s0.find("advertised endpoint")->find("address")->as_string(), "192.168.1.10");
  EXPECT_EQ(s0.find("last packet")->as_integer(), 1700000100);
  EXPECT_EQ(s0.find("stats")->find("bytes")->as_integer(), 100287);
  bencode::Value s1 = *std::next(streams.begin());
  EXPECT_FALSE(s1.find("endpoint").has_value());
  EXPECT_EQ(s1.find("stats")->find("errors")->as_integer(), 1);
  auto callee = root.find("tags")->find("a6c85cf");
  ASSERT_TRUE(callee.has_value());
  EXPECT_FALSE(callee->find("label").has_value());  // empty: left out
  EXPECT_EQ(callee->find("medias")->size(), 0u);
  EXPECT_EQ(root.find("totals")->find("RTP")->find("packets")->as_integer(), 705);
  EXPECT_EQ(root.find("totals")->find("RTCP")->find("bytes")->as_integer(), 2244);
}

}  // namespace
}  // namespace pinhole::media
