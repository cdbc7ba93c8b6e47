// Message parsing: start line, header index, body framing and the lazily parsed header values
// (RFC 3261 §7, §18.3, §20, §25).
#include "sip/message.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pinhole::sip {
namespace {

using namespace std::string_literals;

MessagePtr must_parse(std::string_view text, Framing framing = Framing::kDatagram, const ParseLimits& limits = {}) {
  auto r = Message::parse(text, framing, limits);
  EXPECT_TRUE(r.ok()) << "should parse (" << (r.ok() ? "" : r.error().what) << "):\n" << text;
  return r.ok() ? std::move(r).value() : nullptr;
}

// Status the parser refuses `text` with, 0 when it parses.
int refusal(std::string_view text, Framing framing = Framing::kDatagram, const ParseLimits& limits = {}) {
  auto r = Message::parse(text, framing, limits);
  return r.ok() ? 0 : r.error().status;
}

// RFC 3261 §24.2 F1, with a 4-octet body.
constexpr std::string_view kInvite =
    "INVITE sip:bob@biloxi.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n"
    "Max-Forwards: 70\r\n"
    "To: Bob <sip:bob@biloxi.com>\r\n"
    "From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Contact: <sip:alice@pc33.atlanta.com>\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 4\r\n"
    "\r\n"
    "v=0\n";

// kInvite's header fields from To on, without Content-Length and the empty line.
constexpr std::string_view kCommonHeaders =
    "To: Bob <sip:bob@biloxi.com>\r\n"
    "From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n";

std::string request(std::string_view start_line, std::string_view extra_headers, std::string_view tail = "\r\n") {
  std::string m(start_line);
  m.append("\r\nVia: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n");
  m.append(kCommonHeaders);
  m.append(extra_headers);
  m.append(tail);
  return m;
}

std::string with_status_line(std::string_view status_line) {
  std::string m(status_line);
  m.append("\r\nVia: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n");
  m.append(kCommonHeaders);
  m.append("CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
  return m;
}

// ---------------------------------------------------------------------------------------------
// Requests and responses

TEST(MessageParse, Request) {
  auto m = must_parse(kInvite);
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->is_request());
  EXPECT_FALSE(m->is_response());
  EXPECT_EQ(m->method(), Method::kInvite);
  EXPECT_EQ(m->method_name(), "INVITE");
  EXPECT_EQ(m->status(), 0);
  EXPECT_EQ(m->start_line(), "INVITE sip:bob@biloxi.com SIP/2.0");
  EXPECT_EQ(m->request_uri().scheme, UriScheme::kSip);
  EXPECT_EQ(m->request_uri().raw, "sip:bob@biloxi.com");
  EXPECT_EQ(m->request_uri().user, "bob");
  EXPECT_EQ(m->request_uri().host, "biloxi.com");

  auto headers = m->headers();
  ASSERT_EQ(headers.size(), 9u);
  EXPECT_EQ(headers[0].name, "Via");
  EXPECT_EQ(headers[0].kind, HeaderKind::kVia);
  EXPECT_EQ(headers[0].value, "SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds");
  EXPECT_EQ(headers[0].line, "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n");
  EXPECT_EQ(headers[1].kind, HeaderKind::kMaxForwards);
  EXPECT_EQ(headers[2].kind, HeaderKind::kTo);
  EXPECT_EQ(headers[3].kind, HeaderKind::kFrom);
  EXPECT_EQ(headers[4].kind, HeaderKind::kCallId);
  EXPECT_EQ(headers[5].kind, HeaderKind::kCSeq);
  EXPECT_EQ(headers[6].kind, HeaderKind::kContact);
  EXPECT_EQ(headers[7].kind, HeaderKind::kContentType);
  EXPECT_EQ(headers[8].kind, HeaderKind::kContentLength);
  EXPECT_EQ(headers[8].value, "4");

  EXPECT_EQ(m->body(), "v=0\n");
  EXPECT_EQ(m->bytes(), kInvite);
  EXPECT_TRUE(m->has_content_length());
  EXPECT_EQ(m->offset_of(m->body()), kInvite.size() - 4);
  EXPECT_EQ(m->offset_of(headers[0].line), std::string_view("INVITE sip:bob@biloxi.com SIP/2.0\r\n").size());

  auto vias = m->vias();
  ASSERT_TRUE(vias.ok());
  ASSERT_EQ(vias->size(), 1u);
  EXPECT_EQ((*vias)[0].host, "pc33.atlanta.com");
  auto from = m->from();
  ASSERT_TRUE(from.ok());
  EXPECT_EQ((*from)->display_name, "Alice");
  EXPECT_EQ((*from)->tag, "1928301774");
  EXPECT_EQ((*from)->uri.user, "alice");
  auto to = m->to();
  ASSERT_TRUE(to.ok());
  EXPECT_EQ((*to)->display_name, "Bob");
  EXPECT_FALSE((*to)->has_tag);
  auto call_id = m->call_id();
  ASSERT_TRUE(call_id.ok());
  EXPECT_EQ(*call_id, "a84b4c76e66710@pc33.atlanta.com");
  auto cseq = m->cseq();
  ASSERT_TRUE(cseq.ok());
  EXPECT_EQ(cseq->number, 314159u);
  EXPECT_EQ(cseq->method, Method::kInvite);
  EXPECT_EQ(cseq->method_name, "INVITE");
  auto mf = m->max_forwards();
  ASSERT_TRUE(mf.ok());
  ASSERT_TRUE(mf->has_value());
  EXPECT_EQ(**mf, 70);
  auto expires = m->expires();
  ASSERT_TRUE(expires.ok());
  EXPECT_FALSE(expires->has_value());
  auto contacts = m->contacts();
  ASSERT_TRUE(contacts.ok());
  ASSERT_EQ(contacts->size(), 1u);
  EXPECT_EQ((*contacts)[0].uri.host, "pc33.atlanta.com");
  auto routes = m->routes();
  ASSERT_TRUE(routes.ok());
  EXPECT_TRUE(routes->empty());
  auto ct = m->content_type();
  ASSERT_TRUE(ct.ok());
  ASSERT_TRUE(ct->has_value());
  EXPECT_EQ((*ct)->type, "application");
  EXPECT_EQ((*ct)->subtype, "sdp");
  EXPECT_TRUE((*ct)->is("APPLICATION", "SDP"));
  EXPECT_FALSE((*ct)->is("application", "sdpx"));
}

TEST(MessageParse, Response) {
  auto m = must_parse(with_status_line("SIP/2.0 180 Ringing"));
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->is_response());
  EXPECT_FALSE(m->is_request());
  EXPECT_EQ(m->status(), 180);
  EXPECT_EQ(m->reason(), "Ringing");
  EXPECT_EQ(m->start_line(), "SIP/2.0 180 Ringing");
  EXPECT_EQ(m->body(), "");
  auto cseq = m->cseq();
  ASSERT_TRUE(cseq.ok());
  EXPECT_EQ(cseq->method, Method::kInvite);
}

TEST(MessageParse, OwnedBufferOverload) {
  auto buffer = std::make_unique<char[]>(kInvite.size());
  std::memcpy(buffer.get(), kInvite.data(), kInvite.size());
  auto r = Message::parse(std::move(buffer), kInvite.size(), Framing::kStream);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->method(), Method::kInvite);
  EXPECT_EQ((*r)->body(), "v=0\n");
}

TEST(MessageParse, MessageKeepsItsOwnCopy) {
  std::string text(kInvite);
  auto m = must_parse(text);
  ASSERT_NE(m, nullptr);
  std::fill(text.begin(), text.end(), 'x');
  EXPECT_EQ(m->method_name(), "INVITE");
  EXPECT_EQ(m->body(), "v=0\n");
  auto call_id = m->call_id();
  ASSERT_TRUE(call_id.ok());
  EXPECT_EQ(*call_id, "a84b4c76e66710@pc33.atlanta.com");
}

// ---------------------------------------------------------------------------------------------
// Status line

TEST(StatusLine, ReasonPhrases) {
  auto a = must_parse(with_status_line("SIP/2.0 200 OK all good \xe2\x98\xba"));
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->status(), 200);
  EXPECT_EQ(a->reason(), "OK all good \xe2\x98\xba");

  // Reason-Phrase = *(...): may be empty (RFC 4475 §3.1.1.13 noreason), with or without the SP.
  auto b = must_parse(with_status_line("SIP/2.0 200 "));
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->status(), 200);
  EXPECT_EQ(b->reason(), "");
  auto c = must_parse(with_status_line("SIP/2.0 200"));
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(c->status(), 200);
  EXPECT_EQ(c->reason(), "");
}

TEST(StatusLine, CodeRange) {
  // Status-Code = 3DIGIT, 100..699 (1xx..6xx classes, RFC 3261 §7.2; RFC 4475 bigcode).
  auto low = must_parse(with_status_line("SIP/2.0 100 Trying"));
  ASSERT_NE(low, nullptr);
  EXPECT_EQ(low->status(), 100);
  auto high = must_parse(with_status_line("SIP/2.0 699 Whatever"));
  ASSERT_NE(high, nullptr);
  EXPECT_EQ(high->status(), 699);
  EXPECT_EQ(refusal(with_status_line("SIP/2.0 099 Low")), 400);
  EXPECT_EQ(refusal(with_status_line("SIP/2.0 000 Zero")), 400);
  EXPECT_EQ(refusal(with_status_line("SIP/2.0 700 High")), 400);
  EXPECT_EQ(refusal(with_status_line("SIP/2.0 2000 OK")), 400);
  EXPECT_EQ(refusal(with_status_line("SIP/2.0 20 OK")), 400);
  EXPECT_EQ(refusal(with_status_line("SIP/2.0 2x0 OK")), 400);
  EXPECT_EQ(refusal(with_status_line("SIP/2.0 OK")), 400);
  EXPECT_EQ(refusal(with_status_line("SIP/2.0  200 OK")), 400);
  EXPECT_EQ(refusal(with_status_line("SIP/2.0 200\tOK")), 400);
}

TEST(StatusLine, Version) {
  // RFC 3261 §7.1: the SIP-Version string is case-insensitive.
  auto m = must_parse(with_status_line("sip/2.0 200 OK"));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->status(), 200);
  EXPECT_EQ(refusal(with_status_line("SIP/3.0 200 OK")), 505);
  EXPECT_EQ(refusal(with_status_line("SIP/2.1 200 OK")), 505);
}

// ---------------------------------------------------------------------------------------------
// Request line

TEST(RequestLine, Valid) {
  auto m = must_parse(request("OPTIONS tel:+1-201-555-0123 SIP/2.0", "CSeq: 1 OPTIONS\r\n"));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->method(), Method::kOptions);
  EXPECT_EQ(m->request_uri().scheme, UriScheme::kTel);

  // RFC 3261 §7.1: the SIP-Version string is case-insensitive.
  auto lower = must_parse(request("OPTIONS sip:bob@biloxi.com sip/2.0", "CSeq: 1 OPTIONS\r\n"));
  ASSERT_NE(lower, nullptr);

  // Unknown schemes parse; answering 416 is the sanity check's job (RFC 4475 unkscm).
  auto unk = must_parse(request("OPTIONS nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0", "CSeq: 1 OPTIONS\r\n"));
  ASSERT_NE(unk, nullptr);
  EXPECT_EQ(unk->request_uri().scheme, UriScheme::kOther);
}

TEST(RequestLine, MethodsAreCaseSensitiveTokens) {
  // RFC 4475 §3.1.1.2 (intmeth): any token is a method.
  std::string_view weird = "!interesting-Method0123456789_*+`.%indeed'~";
  auto m =
      must_parse(request(std::string(weird) + " sip:bob@biloxi.com SIP/2.0", "CSeq: 1 " + std::string(weird) + "\r\n"));
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->method(), Method::kOther);
  EXPECT_EQ(m->method_name(), weird);
  auto cseq = m->cseq();
  ASSERT_TRUE(cseq.ok());
  EXPECT_EQ(cseq->method_name, weird);

  // RFC 3261 §7.1: method names are case-sensitive.
  auto lower = must_parse(request("invite sip:bob@biloxi.com SIP/2.0", "CSeq: 1 invite\r\n"));
  ASSERT_NE(lower, nullptr);
  EXPECT_EQ(lower->method(), Method::kOther);
  EXPECT_EQ(lower->method_name(), "invite");
}

TEST(RequestLine, Malformed) {
  // Request-Line = Method SP Request-URI SP SIP-Version CRLF: exactly one SP each.
  EXPECT_EQ(refusal(request("INVITE  sip:bob@biloxi.com SIP/2.0", "")), 400);  // RFC 4475 lwsstart
  EXPECT_EQ(refusal(request("INVITE sip:bob@biloxi.com  SIP/2.0", "")), 400);
  EXPECT_EQ(refusal(request("INVITE sip:bob@biloxi.com SIP/2.0 ", "")), 400);  // RFC 4475 trws
  EXPECT_EQ(refusal(request(" INVITE sip:bob@biloxi.com SIP/2.0", "")), 400);
  EXPECT_EQ(refusal(request("INVITE sip:bob@biloxi.com", "")), 400);
  EXPECT_EQ(refusal(request("INVITE", "")), 400);
  EXPECT_EQ(refusal(request("INVITE sip:bob@biloxi.com SIP/2.0 extra", "")), 400);
  EXPECT_EQ(refusal(request("INVITE\tsip:bob@biloxi.com\tSIP/2.0", "")), 400);
  EXPECT_EQ(refusal(request("INVITE <sip:bob@biloxi.com> SIP/2.0", "")), 400);    // RFC 4475 ltgtruri
  EXPECT_EQ(refusal(request("INVITE sip:bob@biloxi.com; lr SIP/2.0", "")), 400);  // RFC 4475 lwsruri
  EXPECT_EQ(refusal(request("INVITE sip:bob@bi loxi.com SIP/2.0", "")), 400);
  EXPECT_EQ(refusal(request("INV\"ITE sip:bob@biloxi.com SIP/2.0", "")), 400);  // not a token
  EXPECT_EQ(refusal(request("INVITE sip:bob@biloxi.com HTTP/1.1", "")), 400);
  EXPECT_EQ(refusal(request("INVITE sip:bob@biloxi.com SIP/2", "")), 400);
  EXPECT_EQ(refusal(request("INVITE sip:bob@biloxi.com SIP/.0", "")), 400);
  // RFC 3261 §19.1.1: headers are not allowed in a Request-URI (RFC 4475 escruri).
  EXPECT_EQ(refusal(request("INVITE sip:user@example.com?Route=%3Csip:example.com%3E SIP/2.0", "")), 400);
  EXPECT_EQ(refusal(request("INVITE sip:bob@biloxi.com?subject=hi SIP/2.0", "")), 400);
}

TEST(RequestLine, UnsupportedVersionIs505) {
  // RFC 4475 §3.1.2.16 (badvers), RFC 3261 §21.5.7.
  EXPECT_EQ(refusal(request("INVITE sip:bob@biloxi.com SIP/7.0", "")), 505);
  EXPECT_EQ(refusal(request("INVITE sip:bob@biloxi.com SIP/3.0", "")), 505);
  EXPECT_EQ(refusal(request("INVITE sip:bob@biloxi.com SIP/2.01", "")), 505);
}

TEST(MessageParse, EmptyOrHeadless) {
  EXPECT_EQ(refusal(""), 400);
  EXPECT_EQ(refusal("\r\n"), 400);
  EXPECT_EQ(refusal("INVITE sip:bob@biloxi.com SIP/2.0"), 400);  // no line end at all
  EXPECT_EQ(refusal("INVITE sip:bob@biloxi.com SIP/2.0\r\n"), 400);
  // No header fields at all: a start line and the empty line frame a (useless) message.
  auto m = must_parse("OPTIONS sip:bob@biloxi.com SIP/2.0\r\n\r\n", Framing::kStream);
  ASSERT_NE(m, nullptr);
  EXPECT_TRUE(m->headers().empty());
  EXPECT_FALSE(m->vias().ok());
  EXPECT_FALSE(m->from().ok());
  EXPECT_FALSE(m->call_id().ok());
  EXPECT_FALSE(m->cseq().ok());
}

// ---------------------------------------------------------------------------------------------
// Header index

TEST(HeaderIndex, CompactForms) {
  std::string text =
      "NOTIFY sip:bob@biloxi.com SIP/2.0\r\n"
      "v: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK1\r\n"
      "f: <sip:alice@atlanta.com>;tag=1\r\n"
      "t: <sip:bob@biloxi.com>;tag=2\r\n"
      "i: compact@atlanta.com\r\n"
      "CSeq: 7 NOTIFY\r\n"
      "m: <sip:alice@192.0.2.1>\r\n"
      "k: outbound, path\r\n"
      "s: hello\r\n"
      "e: gzip\r\n"
      "o: presence\r\n"
      "u: dialog\r\n"
      "r: <sip:carol@chicago.com>\r\n"
      "b: <sip:alice@atlanta.com>\r\n"
      "x: 1800\r\n"
      "y: abc\r\n"
      "c: text/plain\r\n"
      "l: 5\r\n"
      "\r\n"
      "hello";
  auto m = must_parse(text, Framing::kStream);
  ASSERT_NE(m, nullptr);
  auto h = m->headers();
  ASSERT_EQ(h.size(), 17u);
  const HeaderKind expected[] = {
      HeaderKind::kVia,         HeaderKind::kFrom,           HeaderKind::kTo,
      HeaderKind::kCallId,      HeaderKind::kCSeq,           HeaderKind::kContact,
      HeaderKind::kSupported,   HeaderKind::kSubject,        HeaderKind::kContentEncoding,
      HeaderKind::kEvent,       HeaderKind::kAllowEvents,    HeaderKind::kReferTo,
      HeaderKind::kReferredBy,  HeaderKind::kSessionExpires, HeaderKind::kIdentity,
      HeaderKind::kContentType, HeaderKind::kContentLength,
  };
  for (size_t i = 0; i < h.size(); ++i) EXPECT_EQ(h[i].kind, expected[i]) << "field " << i << " " << h[i].name;
  EXPECT_EQ(h[0].name, "v");

  EXPECT_EQ(m->body(), "hello");
  EXPECT_TRUE(m->has_content_length());
  auto call_id = m->call_id();
  ASSERT_TRUE(call_id.ok());
  EXPECT_EQ(*call_id, "compact@atlanta.com");
  auto from = m->from();
  ASSERT_TRUE(from.ok());
  EXPECT_EQ((*from)->tag, "1");
  auto to = m->to();
  ASSERT_TRUE(to.ok());
  EXPECT_EQ((*to)->tag, "2");
  auto contacts = m->contacts();
  ASSERT_TRUE(contacts.ok());
  ASSERT_EQ(contacts->size(), 1u);
  EXPECT_EQ((*contacts)[0].uri.host, "192.0.2.1");
  auto ct = m->content_type();
  ASSERT_TRUE(ct.ok());
  EXPECT_TRUE((*ct)->is("text", "plain"));

  // Lookup by compact, full or any-case name finds the same field.
  EXPECT_EQ(m->header("Call-ID"), &h[3]);
  EXPECT_EQ(m->header("i"), &h[3]);
  EXPECT_EQ(m->header("I"), &h[3]);
  EXPECT_EQ(m->header("call-id"), &h[3]);
  EXPECT_EQ(m->header("Session-Expires"), &h[13]);
  EXPECT_EQ(m->header("Content-Length"), &h[16]);
  EXPECT_EQ(m->header(HeaderKind::kIdentity), &h[14]);
}

TEST(HeaderIndex, NamesAreCaseInsensitive) {
  std::string text =
      "OPTIONS sip:bob@biloxi.com SIP/2.0\r\n"
      "vIA: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK1\r\n"
      "TO: <sip:bob@biloxi.com>\r\n"
      "fROM: <sip:alice@atlanta.com>;tag=1\r\n"
      "CALL-id: ci@atlanta.com\r\n"
      "cseq: 9 OPTIONS\r\n"
      "max-FORWARDS: 10\r\n"
      "X-Custom-Header: custom value\r\n"
      "content-LENGTH: 0\r\n\r\n";
  auto m = must_parse(text);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->headers()[0].kind, HeaderKind::kVia);
  EXPECT_EQ(m->headers()[0].name, "vIA");
  EXPECT_TRUE(m->vias().ok());
  EXPECT_TRUE(m->to().ok());
  EXPECT_TRUE(m->from().ok());
  EXPECT_EQ(*m->call_id(), "ci@atlanta.com");
  EXPECT_EQ(m->cseq()->number, 9u);
  EXPECT_EQ(**m->max_forwards(), 10);
  EXPECT_TRUE(m->has_content_length());

  const HeaderField* custom = m->header("x-custom-header");
  ASSERT_NE(custom, nullptr);
  EXPECT_EQ(custom->kind, HeaderKind::kOther);
  EXPECT_EQ(custom->value, "custom value");
  EXPECT_EQ(m->header("X-CUSTOM-HEADER"), custom);
  EXPECT_EQ(m->header("X-Custom"), nullptr);
  EXPECT_EQ(m->header("Subject"), nullptr);
  EXPECT_EQ(m->header("s"), nullptr);
  EXPECT_EQ(m->header(""), nullptr);
  EXPECT_EQ(m->header(std::string_view{}), nullptr);
  EXPECT_EQ(m->header(HeaderKind::kRoute), nullptr);
  EXPECT_EQ(m->header_count(HeaderKind::kRoute), 0u);
}

TEST(HeaderIndex, ListsAcrossLinesAndCommas) {
  std::string text = request("INVITE sip:bob@biloxi.com SIP/2.0",
                             "CSeq: 1 INVITE\r\n"
                             "Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
                             "Record-Route: <sip:rr1.example.com;lr>\r\n"
                             "Route: <sip:p3.example.com;lr>\r\n"
                             "Record-Route: <sip:rr2.example.com;lr>,<sip:rr3.example.com;lr>\r\n"
                             "Path: <sip:path1.example.com;lr>\r\n");
  auto m = must_parse(text);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->header_count(HeaderKind::kRoute), 2u);
  EXPECT_EQ(m->header_count(HeaderKind::kRecordRoute), 2u);
  auto routes = m->routes();
  ASSERT_TRUE(routes.ok());
  ASSERT_EQ(routes->size(), 3u);
  EXPECT_EQ((*routes)[0].uri.host, "p1.example.com");
  EXPECT_EQ((*routes)[1].uri.host, "p2.example.com");
  EXPECT_EQ((*routes)[2].uri.host, "p3.example.com");
  EXPECT_TRUE((*routes)[2].uri.loose_route());
  auto rr = m->record_routes();
  ASSERT_TRUE(rr.ok());
  ASSERT_EQ(rr->size(), 3u);
  EXPECT_EQ((*rr)[0].uri.host, "rr1.example.com");
  EXPECT_EQ((*rr)[2].uri.host, "rr3.example.com");
  auto paths = m->paths();
  ASSERT_TRUE(paths.ok());
  ASSERT_EQ(paths->size(), 1u);
  EXPECT_EQ((*paths)[0].uri.host, "path1.example.com");
  // header(kind) is the first field of that kind.
  EXPECT_EQ(m->header(HeaderKind::kRoute)->value, "<sip:p1.example.com;lr>, <sip:p2.example.com;lr>");
}

TEST(HeaderIndex, RouteWithoutBracketsIsRefused) {
  auto m =
      must_parse(request("INVITE sip:bob@biloxi.com SIP/2.0", "CSeq: 1 INVITE\r\nRoute: sip:p1.example.com;lr\r\n"));
  ASSERT_NE(m, nullptr);
  EXPECT_FALSE(m->routes().ok());
}

TEST(HeaderIndex, FoldedValues) {
  std::string text = request("INVITE sip:bob@biloxi.com SIP/2.0",
                             "CSeq: 1\r\n INVITE\r\n"
                             "Subject: I know you're there,\r\n pick up the phone\r\n\tand talk to me!\r\n"
                             "Contact: Alice\r\n  <sip:alice@pc33.atlanta.com>\r\n   ;expires=60\r\n");
  auto m = must_parse(text);
  ASSERT_NE(m, nullptr);
  const HeaderField* subject = m->header(HeaderKind::kSubject);
  ASSERT_NE(subject, nullptr);
  // Inner folds are kept in the view; the field's line runs through its last line end.
  EXPECT_EQ(subject->value, "I know you're there,\r\n pick up the phone\r\n\tand talk to me!");
  EXPECT_EQ(subject->line, "Subject: I know you're there,\r\n pick up the phone\r\n\tand talk to me!\r\n");
  auto cseq = m->cseq();
  ASSERT_TRUE(cseq.ok());
  EXPECT_EQ(cseq->number, 1u);
  EXPECT_EQ(cseq->method, Method::kInvite);
  auto contacts = m->contacts();
  ASSERT_TRUE(contacts.ok());
  ASSERT_EQ(contacts->size(), 1u);
  EXPECT_EQ((*contacts)[0].display_name, "Alice");
  EXPECT_EQ((*contacts)[0].expires, "60");
  // Folds do not count as header fields.
  EXPECT_EQ(m->headers().size(), 7u);
}

TEST(HeaderIndex, ValueTrimmingAndHcolon) {
  std::string text = request("OPTIONS sip:bob@biloxi.com SIP/2.0",
                             "CSeq: 1 OPTIONS\r\n"
                             "Subject:   spaced out  \t\r\n"
                             "X-Empty:\r\n"
                             "X-Spaced \t: value\r\n");
  auto m = must_parse(text);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->header(HeaderKind::kSubject)->value, "spaced out");
  const HeaderField* empty = m->header("X-Empty");
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(empty->value, "");
  // HCOLON = *( SP / HTAB ) ":" SWS
  const HeaderField* spaced = m->header("X-Spaced");
  ASSERT_NE(spaced, nullptr);
  EXPECT_EQ(spaced->name, "X-Spaced");
  EXPECT_EQ(spaced->value, "value");
}

TEST(HeaderIndex, MalformedHeaderLines) {
  EXPECT_EQ(refusal(request("OPTIONS sip:bob@biloxi.com SIP/2.0", "CSeq: 1 OPTIONS\r\nNoColonHere\r\n")), 400);
  EXPECT_EQ(refusal(request("OPTIONS sip:bob@biloxi.com SIP/2.0", "CSeq: 1 OPTIONS\r\nBad Name: x\r\n")), 400);
  EXPECT_EQ(refusal(request("OPTIONS sip:bob@biloxi.com SIP/2.0", "CSeq: 1 OPTIONS\r\n: no name\r\n")), 400);
  EXPECT_EQ(refusal(request("OPTIONS sip:bob@biloxi.com SIP/2.0", "CSeq: 1 OPTIONS\r\nBad@Name: x\r\n")), 400);
  // A fold before any header field continues nothing.
  EXPECT_EQ(refusal("OPTIONS sip:bob@biloxi.com SIP/2.0\r\n continued\r\nCSeq: 1 OPTIONS\r\n\r\n"), 400);
}

TEST(HeaderIndex, LfOnlyLineEnds) {
  // RFC 3261 §7.5 allows recipients to accept a bare LF as line terminator.
  std::string text(kInvite);
  std::string lf;
  for (size_t i = 0; i < text.size(); ++i)
    if (!(text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) lf.push_back(text[i]);
  auto m = must_parse(lf, Framing::kStream);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->headers().size(), 9u);
  EXPECT_EQ(m->headers()[0].line, "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\n");
  EXPECT_EQ(m->body(), "v=0\n");
  EXPECT_EQ(m->cseq()->number, 314159u);
  EXPECT_EQ(m->start_line(), "INVITE sip:bob@biloxi.com SIP/2.0");

  // Mixed endings and an LF-only fold.
  std::string mixed =
      "OPTIONS sip:bob@biloxi.com SIP/2.0\n"
      "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK1\r\n"
      "To: <sip:bob@biloxi.com>\n"
      "From: <sip:alice@atlanta.com>\n ;tag=9\n"
      "Call-ID: x@y\r\n"
      "CSeq: 2 OPTIONS\n"
      "\n";
  auto n = must_parse(mixed, Framing::kStream);
  ASSERT_NE(n, nullptr);
  EXPECT_EQ((*n->from())->tag, "9");
  EXPECT_EQ(n->cseq()->number, 2u);
  EXPECT_EQ(n->body(), "");
}

TEST(HeaderIndex, TooManyHeaderFieldsIs413) {
  ParseLimits limits;
  limits.max_headers = 6;
  // request() writes Via, To, From, Call-ID: 4 fields.
  std::string six = request("OPTIONS sip:bob@biloxi.com SIP/2.0", "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n");
  EXPECT_EQ(refusal(six, Framing::kDatagram, limits), 0);
  std::string seven =
      request("OPTIONS sip:bob@biloxi.com SIP/2.0", "CSeq: 1 OPTIONS\r\nSubject: x\r\nContent-Length: 0\r\n");
  EXPECT_EQ(refusal(seven, Framing::kDatagram, limits), 413);
  // Folded continuation lines are part of one field.
  std::string folded =
      request("OPTIONS sip:bob@biloxi.com SIP/2.0", "CSeq: 1\r\n OPTIONS\r\nContent-Length:\r\n 0\r\n");
  EXPECT_EQ(refusal(folded, Framing::kDatagram, limits), 0);
}

// ---------------------------------------------------------------------------------------------
// Body framing

TEST(Body, BinaryOctets) {
  // RFC 4475 §3.1.1.11 (mpart01): body octets, NUL and bare CR included, are counted, not parsed.
  std::string body("a\0b\r\nc\r\n\r\nd\xff", 12);
  std::string text = request("MESSAGE sip:bob@biloxi.com SIP/2.0",
                             "CSeq: 1 MESSAGE\r\nContent-Type: application/octet-stream\r\nContent-Length: 12\r\n");
  text.append(body);
  for (Framing f : {Framing::kDatagram, Framing::kStream}) {
    auto m = must_parse(text, f);
    ASSERT_NE(m, nullptr);
    EXPECT_EQ(m->body().size(), 12u);
    EXPECT_EQ(m->body(), body);
    EXPECT_EQ(m->bytes(), text);
  }
}

TEST(Body, DatagramTrailingOctetsIgnored) {
  // RFC 4475 §3.1.1.8 (dblreq); RFC 3261 §18.3: octets past Content-Length are discarded.
  std::string text(kInvite);
  text.append("INVITE sip:other@example.com SIP/2.0\r\n");
  auto m = must_parse(text);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->body(), "v=0\n");
  EXPECT_EQ(m->bytes(), kInvite);
  EXPECT_EQ(m->bytes().size(), kInvite.size());
}

TEST(Body, MissingContentLength) {
  std::string text = request("MESSAGE sip:bob@biloxi.com SIP/2.0", "CSeq: 1 MESSAGE\r\n");
  text.append("the rest of the packet");
  // Datagram: the body is the rest of the packet (RFC 3261 §18.3: Content-Length optional over UDP).
  auto d = must_parse(text, Framing::kDatagram);
  ASSERT_NE(d, nullptr);
  EXPECT_FALSE(d->has_content_length());
  EXPECT_EQ(d->body(), "the rest of the packet");
  EXPECT_EQ(d->bytes(), text);
  // Stream: without Content-Length there is no body (the framer cut the message there).
  auto s = must_parse(text, Framing::kStream);
  ASSERT_NE(s, nullptr);
  EXPECT_FALSE(s->has_content_length());
  EXPECT_EQ(s->body(), "");
  EXPECT_EQ(s->bytes().size(), text.size() - std::string_view("the rest of the packet").size());
}

TEST(Body, DatagramWithoutEmptyLine) {
  // The packet boundary frames a header section whose empty line is missing.
  std::string text = request("OPTIONS sip:bob@biloxi.com SIP/2.0", "CSeq: 1 OPTIONS\r\n", "");
  auto d = must_parse(text, Framing::kDatagram);
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->body(), "");
  EXPECT_EQ(d->cseq()->number, 1u);
  // A stream cannot frame it.
  EXPECT_EQ(refusal(text, Framing::kStream), 400);
  // Nor can a datagram whose last header line has no line end.
  EXPECT_EQ(refusal(text + "Subject: x", Framing::kDatagram), 400);
}

TEST(Body, ContentLengthZeroWithTrailingBytes) {
  std::string text = request("OPTIONS sip:bob@biloxi.com SIP/2.0", "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n");
  std::string head = text;
  text.append("junk");
  auto m = must_parse(text);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->body(), "");
  EXPECT_EQ(m->bytes(), head);
}

TEST(Body, ContentLengthLargerThanDataIs400) {
  // RFC 4475 §3.1.2.2 (clerr).
  std::string text = request("INVITE sip:bob@biloxi.com SIP/2.0", "CSeq: 1 INVITE\r\nContent-Length: 5\r\n");
  text.append("v=0\n");
  EXPECT_EQ(refusal(text, Framing::kDatagram), 400);
  EXPECT_EQ(refusal(text, Framing::kStream), 400);
  text.append("x");
  EXPECT_EQ(refusal(text, Framing::kDatagram), 0);
}

TEST(Body, ConflictingContentLengthIs400) {
  // RFC 4475 §3.3.9 (mcl01): different values leave no way to frame the body.
  std::string text = request("INVITE sip:bob@biloxi.com SIP/2.0", "CSeq: 1 INVITE\r\nContent-Length: 4\r\nl: 3\r\n");
  text.append("v=0\n");
  EXPECT_EQ(refusal(text), 400);
  // The same value twice still frames the body (sanity refuses the duplicate later).
  std::string same = request("INVITE sip:bob@biloxi.com SIP/2.0", "CSeq: 1 INVITE\r\nContent-Length: 4\r\nl: 4\r\n");
  same.append("v=0\n");
  auto m = must_parse(same);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->body(), "v=0\n");
}

TEST(Body, MalformedContentLength) {
  for (std::string_view cl : {"-1", "abc", "4 4", "", "0x4", "+4"}) {
    std::string text =
        request("INVITE sip:bob@biloxi.com SIP/2.0", "CSeq: 1 INVITE\r\nContent-Length: " + std::string(cl) + "\r\n");
    text.append("v=0\n");
    EXPECT_EQ(refusal(text), 400) << "Content-Length: " << cl;
  }
  // LWS around the number is allowed.
  std::string ok = request("INVITE sip:bob@biloxi.com SIP/2.0", "CSeq: 1 INVITE\r\nContent-Length:   4  \r\n");
  ok.append("v=0\n");
  EXPECT_EQ(refusal(ok), 0);
}

TEST(Body, ContentLengthAboveSizeLimitIs413) {
  std::string text = request("INVITE sip:bob@biloxi.com SIP/2.0", "CSeq: 1 INVITE\r\nContent-Length: 70000\r\n");
  EXPECT_EQ(refusal(text), 413);
  EXPECT_NE(refusal(request("INVITE sip:bob@biloxi.com SIP/2.0",
                            "CSeq: 1 INVITE\r\nContent-Length: 99999999999999999999\r\n")),
            0);
}

TEST(Limits, MessageSizeIs413) {
  ParseLimits limits;
  limits.max_message_size = static_cast<uint32_t>(kInvite.size());
  EXPECT_EQ(refusal(kInvite, Framing::kDatagram, limits), 0);
  limits.max_message_size = static_cast<uint32_t>(kInvite.size() - 1);
  EXPECT_EQ(refusal(kInvite, Framing::kDatagram, limits), 413);
  EXPECT_EQ(refusal(kInvite, Framing::kStream, limits), 413);

  auto buffer = std::make_unique<char[]>(kInvite.size());
  std::memcpy(buffer.get(), kInvite.data(), kInvite.size());
  auto r = Message::parse(std::move(buffer), kInvite.size(), Framing::kDatagram, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().status, 413);
}

// ---------------------------------------------------------------------------------------------
// Lazily parsed values

TEST(LazyValues, ErrorsStayWithTheirHeader) {
  std::string text =
      "INVITE sip:bob@biloxi.com SIP/2.0\r\n"
      "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n"
      "To: Bob <sip:bob@biloxi.com>\r\n"
      "From: \"Alice <sip:alice@atlanta.com>;tag=1\r\n"  // unterminated quote
      "Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
      "CSeq: 1 INVITE\r\n"
      "Max-Forwards: 256\r\n"
      "Expires: soon\r\n"
      "Contact: <sip:alice@pc33.atlanta.com\r\n"  // missing '>'
      "Content-Type: application\r\n"
      "Record-Route: <sip:rr.example.com;lr>\r\n"
      "Content-Length: 0\r\n\r\n";
  auto m = must_parse(text);
  ASSERT_NE(m, nullptr);
  EXPECT_FALSE(m->from().ok());
  EXPECT_EQ(m->from().error().status, 400);
  EXPECT_FALSE(m->max_forwards().ok());
  EXPECT_FALSE(m->expires().ok());
  EXPECT_FALSE(m->contacts().ok());
  EXPECT_FALSE(m->content_type().ok());
  // ... while the others parse.
  ASSERT_TRUE(m->vias().ok());
  EXPECT_EQ((*m->vias())[0].branch, "z9hG4bK776asdhds");
  ASSERT_TRUE(m->to().ok());
  EXPECT_EQ((*m->to())->uri.user, "bob");
  ASSERT_TRUE(m->call_id().ok());
  ASSERT_TRUE(m->cseq().ok());
  ASSERT_TRUE(m->record_routes().ok());
  EXPECT_EQ(m->record_routes()->size(), 1u);
  // Cached: asking again gives the same answers.
  EXPECT_FALSE(m->from().ok());
  EXPECT_FALSE(m->contacts().ok());
  EXPECT_TRUE(m->to().ok());
  EXPECT_EQ(m->vias()->data(), m->vias()->data());
}

TEST(LazyValues, MissingMandatoryHeadersAre400) {
  std::string text = "OPTIONS sip:bob@biloxi.com SIP/2.0\r\nSubject: nothing else\r\n\r\n";
  auto m = must_parse(text);
  ASSERT_NE(m, nullptr);
  for (int status :
       {m->vias().ok() ? 0 : m->vias().error().status, m->top_via().ok() ? 0 : m->top_via().error().status,
        m->from().ok() ? 0 : m->from().error().status, m->to().ok() ? 0 : m->to().error().status,
        m->call_id().ok() ? 0 : m->call_id().error().status, m->cseq().ok() ? 0 : m->cseq().error().status})
    EXPECT_EQ(status, 400);
  // Optional ones are simply absent.
  EXPECT_FALSE(m->max_forwards()->has_value());
  EXPECT_FALSE(m->expires()->has_value());
  EXPECT_FALSE(m->content_type()->has_value());
  EXPECT_TRUE(m->contacts()->empty());
  EXPECT_TRUE(m->routes()->empty());
  EXPECT_TRUE(m->record_routes()->empty());
  EXPECT_TRUE(m->paths()->empty());
}

TEST(LazyValues, CSeqRange) {
  // RFC 3261 §8.1.1.5: the sequence number MUST be less than 2^31.
  std::vector<MessagePtr> keep;  // CSeq::method_name points into its message
  auto cseq_of = [&keep](std::string_view value) {
    auto m = Message::parse(request("INVITE sip:bob@biloxi.com SIP/2.0", "CSeq: " + std::string(value) + "\r\n"),
                            Framing::kDatagram);
    EXPECT_TRUE(m.ok());
    keep.push_back(std::move(m).value());
    return keep.back()->cseq();
  };
  auto max = cseq_of("2147483647 INVITE");
  ASSERT_TRUE(max.ok());
  EXPECT_EQ(max->number, 2147483647u);
  auto zero = cseq_of("0 INVITE");
  ASSERT_TRUE(zero.ok());
  EXPECT_EQ(zero->number, 0u);
  EXPECT_FALSE(cseq_of("2147483648 INVITE").ok());
  EXPECT_FALSE(cseq_of("4294967296 INVITE").ok());
  EXPECT_FALSE(cseq_of("36893488147419103232 INVITE").ok());  // RFC 4475 scalar02
  EXPECT_FALSE(cseq_of("-1 INVITE").ok());
  EXPECT_FALSE(cseq_of("1INVITE").ok());
  EXPECT_FALSE(cseq_of("INVITE").ok());
  EXPECT_FALSE(cseq_of("1").ok());
  EXPECT_FALSE(cseq_of("1 INVITE extra").ok());
  EXPECT_FALSE(cseq_of("1 INV\"ITE").ok());
  auto spaced = cseq_of("  42 \t BYE  ");
  ASSERT_TRUE(spaced.ok());
  EXPECT_EQ(spaced->number, 42u);
  EXPECT_EQ(spaced->method, Method::kBye);
  EXPECT_EQ(spaced->method_name, "BYE");
}

TEST(LazyValues, MaxForwardsRange) {
  auto mf_of = [](std::string_view value) {
    auto m = Message::parse(
        request("INVITE sip:bob@biloxi.com SIP/2.0", "CSeq: 1 INVITE\r\nMax-Forwards: " + std::string(value) + "\r\n"),
        Framing::kDatagram);
    EXPECT_TRUE(m.ok());
    return (*m)->max_forwards();
  };
  ASSERT_TRUE(mf_of("0").ok());
  EXPECT_EQ(**mf_of("0"), 0);
  EXPECT_EQ(**mf_of("70"), 70);
  EXPECT_EQ(**mf_of("255"), 255);
  EXPECT_FALSE(mf_of("256").ok());
  EXPECT_FALSE(mf_of("300").ok());
  EXPECT_FALSE(mf_of("-1").ok());
  EXPECT_FALSE(mf_of("ten").ok());
  EXPECT_FALSE(mf_of("").ok());
  EXPECT_FALSE(mf_of("1 2").ok());
  EXPECT_EQ(mf_of("256").error().status, 400);
}

TEST(LazyValues, Expires) {
  auto exp_of = [](std::string_view value) {
    auto m = Message::parse(
        request("REGISTER sip:biloxi.com SIP/2.0", "CSeq: 1 REGISTER\r\nExpires: " + std::string(value) + "\r\n"),
        Framing::kDatagram);
    EXPECT_TRUE(m.ok());
    return (*m)->expires();
  };
  EXPECT_EQ(**exp_of("3600"), 3600u);
  EXPECT_EQ(**exp_of("0"), 0u);
  EXPECT_EQ(**exp_of("4294967295"), 4294967295u);
  EXPECT_FALSE(exp_of("4294967296").ok());
  EXPECT_FALSE(exp_of("Thu, 01 Dec 1994 16:00:00 GMT").ok());
}

TEST(LazyValues, CallId) {
  std::vector<MessagePtr> keep;  // the Call-ID view points into its message
  auto id_of = [&keep](std::string_view value) {
    std::string text = "OPTIONS sip:bob@biloxi.com SIP/2.0\r\nCall-ID: " + std::string(value) + "\r\n\r\n";
    auto m = Message::parse(text, Framing::kDatagram);
    EXPECT_TRUE(m.ok());
    keep.push_back(std::move(m).value());
    return keep.back()->call_id();
  };
  EXPECT_EQ(*id_of("f81d4fae-7dec-11d0-a765-00a0c91e6bf6@foo.bar.com"),
            "f81d4fae-7dec-11d0-a765-00a0c91e6bf6@foo.bar.com");
  // word = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" / "(" / ")" /
  //        "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}" )
  EXPECT_TRUE(id_of("a(b)<c>:\\\"/[]?{}@x").ok());
  EXPECT_TRUE(id_of("no-at-sign").ok());
  EXPECT_FALSE(id_of("a b").ok());
  EXPECT_FALSE(id_of("a@b@c").ok());
  EXPECT_FALSE(id_of("@host").ok());
  EXPECT_FALSE(id_of("local@").ok());
  EXPECT_FALSE(id_of("a,b").ok());
  EXPECT_FALSE(id_of("a;b").ok());
}

}  // namespace
}  // namespace pinhole::sip
