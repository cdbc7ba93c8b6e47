// ResponseBuilder (RFC 3261 §8.2.6, RFC 3581 §4) and RequestBuilder: the output must parse, and
// the parsed fields are checked.
#include "sip/builder.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace pinhole::sip {
namespace {

MessagePtr must_parse(std::string_view text, Framing framing = Framing::kStream) {
  auto r = Message::parse(text, framing);
  EXPECT_TRUE(r.ok()) << "should parse (" << (r.ok() ? "" : r.error().what) << "):\n" << text;
  return r.ok() ? std::move(r).value() : nullptr;
}

constexpr std::string_view kInvite =
    "INVITE sip:bob@biloxi.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP proxy2.example.com:5060;branch=z9hG4bK2d4790.1, SIP/2.0/UDP "
    "proxy1.example.com;branch=z9hG4bKp1\r\n"
    "Max-Forwards: 68\r\n"
    "Via: SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bK776asdhds\r\n"
    "To: Bob <sip:bob@biloxi.com>\r\n"
    "From: \"Alice\" <sip:alice@atlanta.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Timestamp: 54.21 0.3\r\n"
    "Contact: <sip:alice@10.0.0.5:5060>\r\n"
    "Record-Route: <sip:proxy1.example.com;lr>\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 4\r\n"
    "\r\n"
    "v=0\n";

MessagePtr invite() {
  auto m = must_parse(kInvite, Framing::kDatagram);
  EXPECT_NE(m, nullptr);
  return m;
}

TEST(DefaultReason, Rfc3261Section21Phrases) {
  EXPECT_EQ(default_reason(100), "Trying");
  EXPECT_EQ(default_reason(180), "Ringing");
  EXPECT_EQ(default_reason(181), "Call Is Being Forwarded");
  EXPECT_EQ(default_reason(182), "Queued");
  EXPECT_EQ(default_reason(183), "Session Progress");
  EXPECT_EQ(default_reason(200), "OK");
  EXPECT_EQ(default_reason(302), "Moved Temporarily");
  EXPECT_EQ(default_reason(400), "Bad Request");
  EXPECT_EQ(default_reason(401), "Unauthorized");
  EXPECT_EQ(default_reason(403), "Forbidden");
  EXPECT_EQ(default_reason(404), "Not Found");
  EXPECT_EQ(default_reason(407), "Proxy Authentication Required");
  EXPECT_EQ(default_reason(408), "Request Timeout");
  EXPECT_EQ(default_reason(413), "Request Entity Too Large");
  EXPECT_EQ(default_reason(416), "Unsupported URI Scheme");
  EXPECT_EQ(default_reason(420), "Bad Extension");
  EXPECT_EQ(default_reason(423), "Interval Too Brief");
  EXPECT_EQ(default_reason(480), "Temporarily Unavailable");
  EXPECT_EQ(default_reason(481), "Call/Transaction Does Not Exist");
  EXPECT_EQ(default_reason(482), "Loop Detected");
  EXPECT_EQ(default_reason(483), "Too Many Hops");
  EXPECT_EQ(default_reason(486), "Busy Here");
  EXPECT_EQ(default_reason(487), "Request Terminated");
  EXPECT_EQ(default_reason(500), "Server Internal Error");
  EXPECT_EQ(default_reason(503), "Service Unavailable");
  EXPECT_EQ(default_reason(504), "Server Time-out");
  EXPECT_EQ(default_reason(505), "Version Not Supported");
  EXPECT_EQ(default_reason(513), "Message Too Large");
  EXPECT_EQ(default_reason(600), "Busy Everywhere");
  EXPECT_EQ(default_reason(603), "Decline");
  EXPECT_EQ(default_reason(604), "Does Not Exist Anywhere");
  EXPECT_EQ(default_reason(606), "Not Acceptable");
  // RFC 5626 §11.5 / §11.6
  EXPECT_EQ(default_reason(430), "Flow Failed");
  EXPECT_EQ(default_reason(439), "First Hop Lacks Outbound Support");
  EXPECT_EQ(default_reason(299), "");
  EXPECT_EQ(default_reason(0), "");
}

TEST(ResponseBuilder, CopiesViasFromToCallIdCSeq) {
  auto req = invite();
  ASSERT_NE(req, nullptr);
  std::string out = ResponseBuilder(*req, 486).to_tag("a6c85cf").build();
  auto r = must_parse(out);
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->is_response());
  EXPECT_EQ(r->status(), 486);
  EXPECT_EQ(r->reason(), "Busy Here");
  EXPECT_EQ(r->start_line(), "SIP/2.0 486 Busy Here");

  // Every Via, in order, as written (RFC 3261 §8.2.6.2).
  auto req_vias = req->vias();
  auto vias = r->vias();
  ASSERT_TRUE(req_vias.ok());
  ASSERT_TRUE(vias.ok());
  ASSERT_EQ(vias->size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ((*vias)[i].raw, (*req_vias)[i].raw) << i;
  EXPECT_EQ((*vias)[0].host, "proxy2.example.com");
  EXPECT_EQ((*vias)[2].host, "10.0.0.5");

  EXPECT_EQ(r->header(HeaderKind::kFrom)->value, "\"Alice\" <sip:alice@atlanta.com>;tag=1928301774");
  auto from = r->from();
  ASSERT_TRUE(from.ok());
  EXPECT_EQ((*from)->tag, "1928301774");
  auto to = r->to();
  ASSERT_TRUE(to.ok());
  EXPECT_EQ((*to)->tag, "a6c85cf");
  EXPECT_EQ((*to)->uri.raw, "sip:bob@biloxi.com");
  EXPECT_EQ((*to)->display_name, "Bob");
  EXPECT_EQ(*r->call_id(), "a84b4c76e66710@pc33.atlanta.com");
  auto cseq = r->cseq();
  ASSERT_TRUE(cseq.ok());
  EXPECT_EQ(cseq->number, 314159u);
  EXPECT_EQ(cseq->method, Method::kInvite);

  // Content-Length: 0 and no body; nothing else of the request copied.
  EXPECT_TRUE(r->has_content_length());
  EXPECT_EQ(r->header(HeaderKind::kContentLength)->value, "0");
  EXPECT_EQ(r->body(), "");
  EXPECT_EQ(r->header(HeaderKind::kTimestamp), nullptr);  // only for 100 (RFC 3261 §8.2.6.1)
  EXPECT_EQ(r->header(HeaderKind::kMaxForwards), nullptr);
  EXPECT_EQ(r->header(HeaderKind::kContact), nullptr);
  EXPECT_EQ(r->header(HeaderKind::kRecordRoute), nullptr);
  EXPECT_EQ(r->header(HeaderKind::kContentType), nullptr);
  EXPECT_EQ(r->header_count(HeaderKind::kFrom), 1u);
  EXPECT_EQ(r->header_count(HeaderKind::kTo), 1u);
  EXPECT_EQ(r->header_count(HeaderKind::kCallId), 1u);
  EXPECT_EQ(r->header_count(HeaderKind::kCSeq), 1u);
}

TEST(ResponseBuilder, ExistingToTagKept) {
  std::string text(kInvite);
  text.replace(text.find("To: Bob <sip:bob@biloxi.com>"), 28, "To: Bob <sip:bob@biloxi.com>;tag=existing");
  auto req = must_parse(text, Framing::kDatagram);
  ASSERT_NE(req, nullptr);
  auto r = must_parse(ResponseBuilder(*req, 200).to_tag("new").build());
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->header(HeaderKind::kTo)->value, "Bob <sip:bob@biloxi.com>;tag=existing");
  EXPECT_EQ((*r->to())->tag, "existing");
}

TEST(ResponseBuilder, NoToTagWhenNoneGiven) {
  auto req = invite();
  ASSERT_NE(req, nullptr);
  auto r = must_parse(ResponseBuilder(*req, 180).build());
  ASSERT_NE(r, nullptr);
  EXPECT_FALSE((*r->to())->has_tag);
}

TEST(ResponseBuilder, TryingCopiesTimestampAndAddsNoTag) {
  auto req = invite();
  ASSERT_NE(req, nullptr);
  auto r = must_parse(ResponseBuilder(*req, 100).to_tag("ignored").build());
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->status(), 100);
  EXPECT_EQ(r->reason(), "Trying");
  // RFC 3261 §8.2.6.2: a 100 (Trying) may not carry a To tag; §8.2.6.1: it copies Timestamp.
  EXPECT_FALSE((*r->to())->has_tag);
  ASSERT_NE(r->header(HeaderKind::kTimestamp), nullptr);
  EXPECT_EQ(r->header(HeaderKind::kTimestamp)->value, "54.21 0.3");
  EXPECT_EQ(r->vias()->size(), 3u);
}

TEST(ResponseBuilder, ViaReceivedFillsBareRport) {
  // The UA's own Via, with a bare rport, is the top one here.
  std::string text =
      "REGISTER sip:biloxi.com SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bKua1\r\n"
      "Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKua0\r\n"
      "To: <sip:alice@biloxi.com>\r\n"
      "From: <sip:alice@biloxi.com>;tag=x1\r\n"
      "Call-ID: reg1@10.0.0.5\r\n"
      "CSeq: 7 REGISTER\r\n"
      "Content-Length: 0\r\n\r\n";
  auto req = must_parse(text, Framing::kDatagram);
  ASSERT_NE(req, nullptr);
  auto r = must_parse(ResponseBuilder(*req, 200).to_tag("t").via_received("203.0.113.7", 40000).build());
  ASSERT_NE(r, nullptr);
  auto vias = r->vias();
  ASSERT_TRUE(vias.ok());
  ASSERT_EQ(vias->size(), 2u);
  const Via& top = (*vias)[0];
  EXPECT_EQ(top.host, "10.0.0.5");
  EXPECT_EQ(top.port, 5060);
  EXPECT_EQ(top.branch, "z9hG4bKua1");
  EXPECT_TRUE(top.has_received);
  EXPECT_EQ(top.received, "203.0.113.7");
  EXPECT_TRUE(top.has_rport);
  EXPECT_EQ(top.rport_value, "40000");
  // Only the top Via changes.
  EXPECT_EQ((*vias)[1].raw, "SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKua0");
  EXPECT_FALSE((*vias)[1].has_received);
}

TEST(ResponseBuilder, ViaReceivedOnTopValueOfAMultiValueLine) {
  auto req = invite();
  ASSERT_NE(req, nullptr);
  auto r = must_parse(ResponseBuilder(*req, 200).via_received("192.0.2.200", 5060).build());
  ASSERT_NE(r, nullptr);
  auto vias = r->vias();
  ASSERT_TRUE(vias.ok());
  ASSERT_EQ(vias->size(), 3u);
  EXPECT_EQ((*vias)[0].received, "192.0.2.200");
  EXPECT_FALSE((*vias)[0].has_rport);  // RFC 3581: rport only when the request asked for it
  EXPECT_EQ((*vias)[0].branch, "z9hG4bK2d4790.1");
  EXPECT_EQ((*vias)[1].raw, "SIP/2.0/UDP proxy1.example.com;branch=z9hG4bKp1");
  // The third Via has a bare rport, but it is not the top one: left alone.
  EXPECT_EQ((*vias)[2].raw, "SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bK776asdhds");
}

TEST(ResponseBuilder, ViaReceivedKeepsExistingRportValue) {
  std::string text =
      "OPTIONS sip:biloxi.com SIP/2.0\r\n"
      "Via: SIP/2.0/UDP [2001:db8::5]:5060;rport=1234;branch=z9hG4bKv6\r\n"
      "To: <sip:biloxi.com>\r\nFrom: <sip:alice@biloxi.com>;tag=x1\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\n\r\n";
  auto req = must_parse(text, Framing::kDatagram);
  ASSERT_NE(req, nullptr);
  auto r = must_parse(ResponseBuilder(*req, 200).via_received("2001:db8::99", 40000).build());
  ASSERT_NE(r, nullptr);
  const Via& top = **r->top_via();
  EXPECT_EQ(top.host, "[2001:db8::5]");
  EXPECT_EQ(top.received, "2001:db8::99");
  EXPECT_EQ(top.rport_value, "1234");
}

// The client's own received (whatever it claims) is replaced by the source the server saw, in
// either order of the received and rport parameters.
TEST(ResponseBuilder, ViaReceivedReplacesAClaimedReceived) {
  for (std::string params :
       {";received=198.51.100.1;rport;branch=z9hG4bKr1", ";rport;received=198.51.100.1;branch=z9hG4bKr1"}) {
    SCOPED_TRACE(params);
    std::string text = "OPTIONS sip:biloxi.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.9:5060" + params +
                       "\r\nTo: <sip:biloxi.com>\r\nFrom: <sip:alice@biloxi.com>;tag=x1\r\nCall-ID: r1\r\n"
                       "CSeq: 1 OPTIONS\r\n\r\n";
    auto req = must_parse(text, Framing::kDatagram);
    ASSERT_NE(req, nullptr);
    auto r = must_parse(ResponseBuilder(*req, 200).via_received("203.0.113.101", 52500).build());
    ASSERT_NE(r, nullptr);
    const Via& top = **r->top_via();
    EXPECT_EQ(top.received, "203.0.113.101");
    EXPECT_EQ(top.rport_value, "52500");
    EXPECT_EQ(top.branch, "z9hG4bKr1");
    EXPECT_EQ(top.raw.find("198.51.100.1"), std::string_view::npos);
  }
}

TEST(ResponseBuilder, CompactAndFoldedRequestFields) {
  std::string text =
      "OPTIONS sip:biloxi.com SIP/2.0\r\n"
      "v: SIP/2.0/UDP a.example.com;branch=z9hG4bK1,\r\n SIP/2.0/UDP b.example.com;branch=z9hG4bK0\r\n"
      "t: <sip:biloxi.com>\r\n"
      "f: <sip:alice@biloxi.com>\r\n ;tag=x1\r\n"
      "i: compact1\r\n"
      "CSeq: 1\r\n OPTIONS\r\n\r\n";
  auto req = must_parse(text, Framing::kDatagram);
  ASSERT_NE(req, nullptr);
  auto r = must_parse(ResponseBuilder(*req, 200).to_tag("tt").build());
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->vias()->size(), 2u);
  EXPECT_EQ((*r->vias())[1].host, "b.example.com");
  EXPECT_EQ((*r->from())->tag, "x1");
  EXPECT_EQ((*r->to())->tag, "tt");
  EXPECT_EQ(*r->call_id(), "compact1");
  EXPECT_EQ(r->cseq()->method, Method::kOptions);
}

TEST(ResponseBuilder, CustomReasonExtraHeadersAndBody) {
  auto req = invite();
  ASSERT_NE(req, nullptr);
  std::string out = ResponseBuilder(*req, 200, "Very OK")
                        .to_tag("z")
                        .header("Server", "pinhole")
                        .header("Contact", "<sip:bob@192.0.2.4>")
                        .body("application/sdp", "v=0\r\ns=-\r\n")
                        .build();
  auto r = must_parse(out);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->reason(), "Very OK");
  EXPECT_EQ(r->header("Server")->value, "pinhole");
  ASSERT_EQ(r->contacts()->size(), 1u);
  EXPECT_EQ((*r->contacts())[0].uri.host, "192.0.2.4");
  auto ct = r->content_type();
  ASSERT_TRUE(ct.ok());
  ASSERT_TRUE(ct->has_value());
  EXPECT_TRUE((*ct)->is("application", "sdp"));
  EXPECT_EQ(r->header(HeaderKind::kContentLength)->value, "10");
  EXPECT_EQ(r->body(), "v=0\r\ns=-\r\n");
  EXPECT_EQ(r->bytes(), out);
}

TEST(ResponseBuilder, StatusWithoutDefaultReason) {
  auto req = invite();
  ASSERT_NE(req, nullptr);
  auto r = must_parse(ResponseBuilder(*req, 299).build());
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->status(), 299);
}

TEST(RequestBuilder, OptionsWithoutBody) {
  std::string out = RequestBuilder("OPTIONS", "sip:alice@203.0.113.7:40000;transport=udp")
                        .header("Via", "SIP/2.0/UDP 203.0.113.10;branch=z9hG4bKka1;rport")
                        .header("Max-Forwards", "70")
                        .header("To", "<sip:alice@biloxi.com>")
                        .header("From", "<sip:keepalive@203.0.113.10>;tag=ka")
                        .header("Call-ID", "ka1@203.0.113.10")
                        .header("CSeq", "1 OPTIONS")
                        .build();
  auto m = must_parse(out);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->method(), Method::kOptions);
  EXPECT_EQ(m->start_line(), "OPTIONS sip:alice@203.0.113.7:40000;transport=udp SIP/2.0");
  EXPECT_EQ(m->request_uri().port, 40000);
  auto h = m->headers();
  ASSERT_EQ(h.size(), 7u);
  const HeaderKind order[] = {HeaderKind::kVia,          HeaderKind::kMaxForwards, HeaderKind::kTo,
                              HeaderKind::kFrom,         HeaderKind::kCallId,      HeaderKind::kCSeq,
                              HeaderKind::kContentLength};
  for (size_t i = 0; i < h.size(); ++i) EXPECT_EQ(h[i].kind, order[i]) << i;
  EXPECT_EQ(h[6].value, "0");
  EXPECT_EQ(m->body(), "");
  EXPECT_TRUE((**m->top_via()).has_rport);
  EXPECT_EQ(**m->max_forwards(), 70);
  EXPECT_EQ(m->bytes(), out);
}

TEST(RequestBuilder, WithBody) {
  std::string body = "<?xml version=\"1.0\"?>\r\n<presence/>\r\n";
  std::string out = RequestBuilder("NOTIFY", "sip:alice@192.0.2.4")
                        .header("Via", "SIP/2.0/TCP 203.0.113.10;branch=z9hG4bKn1")
                        .header("CSeq", "2 NOTIFY")
                        .body("application/pidf+xml", body)
                        .build();
  auto m = must_parse(out);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->method(), Method::kNotify);
  EXPECT_EQ(m->body(), body);
  EXPECT_EQ(m->header(HeaderKind::kContentLength)->value, std::to_string(body.size()));
  auto ct = m->content_type();
  ASSERT_TRUE(ct.ok());
  EXPECT_TRUE((*ct)->is("application", "pidf+xml"));
  // Built once, the same bytes again.
  RequestBuilder b("NOTIFY", "sip:alice@192.0.2.4");
  b.body("text/plain", "x");
  EXPECT_EQ(b.build(), b.build());
}

}  // namespace
}  // namespace pinhole::sip
