// Sanity checks an element makes before acting on a parsed message (RFC 3261 §8.2, §16.3).
#include "sip/sanity.h"

#include <gtest/gtest.h>

#include <array>
#include <string>
#include <string_view>
#include <vector>

namespace pinhole::sip {
namespace {

constexpr std::string_view kRequest =
    "INVITE sip:bob@biloxi.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n"
    "Max-Forwards: 70\r\n"
    "To: Bob <sip:bob@biloxi.com>\r\n"
    "From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Contact: <sip:alice@pc33.atlanta.com>\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

constexpr std::string_view kResponse =
    "SIP/2.0 200 OK\r\n"
    "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds;received=192.0.2.1\r\n"
    "To: Bob <sip:bob@biloxi.com>;tag=a6c85cf\r\n"
    "From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

std::string edit(std::string_view base, std::string_view from, std::string_view to) {
  std::string s(base);
  size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

// Inserts header lines just before Content-Length.
std::string add(std::string_view base, std::string_view lines) {
  return edit(base, "Content-Length:", std::string(lines) + "Content-Length:");
}
std::string drop(std::string_view base, std::string_view line) { return edit(base, line, ""); }

class Sanity : public ::testing::Test {
 protected:
  // Status check_request answers `text` with: 0 when it passes.
  int request_status(const std::string& text, const SanityPolicy& policy) {
    auto m = Message::parse(text, Framing::kDatagram);
    EXPECT_TRUE(m.ok()) << "parse failed:\n" << text;
    if (!m.ok()) return -1;
    Status st = check_request(**m, policy);
    return st.ok() ? 0 : st.error().status;
  }
  int request_status(const std::string& text) { return request_status(text, policy_); }
  int response_status(const std::string& text) {
    auto m = Message::parse(text, Framing::kDatagram);
    EXPECT_TRUE(m.ok()) << "parse failed:\n" << text;
    if (!m.ok()) return -1;
    Status st = check_response(**m);
    return st.ok() ? 0 : st.error().status;
  }
  SanityPolicy policy_;
};

TEST_F(Sanity, ValidRequestPasses) { EXPECT_EQ(request_status(std::string(kRequest)), 0); }

TEST_F(Sanity, MissingMandatoryHeadersAre400) {
  // RFC 3261 §8.1.1: To, From, CSeq, Call-ID, Via (RFC 4475 §3.3.1 insuf).
  for (std::string_view line :
       {"Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds\r\n", "To: Bob <sip:bob@biloxi.com>\r\n",
        "From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n", "Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n",
        "CSeq: 314159 INVITE\r\n"})
    EXPECT_EQ(request_status(drop(kRequest, line)), 400) << "without " << line;
}

TEST_F(Sanity, MissingMaxForwardsIsTolerated) {
  // RFC 4475 §3.4.1 (inv2543): RFC 2543 requests have no Max-Forwards.
  EXPECT_EQ(request_status(drop(kRequest, "Max-Forwards: 70\r\n")), 0);
}

TEST_F(Sanity, DuplicatedSingleInstanceHeadersAre400) {
  // RFC 3261 §7.3.1 and RFC 4475 §3.3.8 (multi01): fields that are not comma lists appear once.
  for (std::string_view extra :
       {"To: <sip:carol@chicago.com>\r\n", "From: <sip:carol@chicago.com>;tag=2\r\n", "Call-ID: other@x\r\n",
        "CSeq: 314160 INVITE\r\n", "Max-Forwards: 70\r\n", "Content-Type: text/plain\r\nContent-Type: text/plain\r\n",
        "Expires: 60\r\nExpires: 60\r\n", "t: <sip:carol@chicago.com>\r\n", "i: other@x\r\n"})
    EXPECT_EQ(request_status(add(kRequest, extra)), 400) << "extra " << extra;
  // Two Content-Length fields, even equal ones.
  EXPECT_EQ(request_status(add(kRequest, "l: 0\r\n")), 400);
}

TEST_F(Sanity, ListHeadersMayRepeat) {
  std::string text = add(kRequest,
                         "Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp\r\n"
                         "Contact: <sip:alice@192.0.2.9>\r\n"
                         "Route: <sip:p1.example.com;lr>\r\nRoute: <sip:p2.example.com;lr>\r\n"
                         "Record-Route: <sip:r1.example.com;lr>\r\nRecord-Route: <sip:r2.example.com;lr>\r\n"
                         "Supported: path\r\nSupported: outbound\r\n");
  EXPECT_EQ(request_status(text), 0);
}

TEST_F(Sanity, CSeqMethodMustMatch) {
  // RFC 3261 §8.1.1.5, RFC 4475 §3.1.2.17/18 (mismatch01/02).
  EXPECT_EQ(request_status(edit(kRequest, "CSeq: 314159 INVITE", "CSeq: 314159 BYE")), 400);
  EXPECT_EQ(request_status(edit(kRequest, "CSeq: 314159 INVITE", "CSeq: 314159 invite")), 400);  // case-sensitive
  std::string unknown = edit(kRequest, "INVITE sip:", "NEWMETHOD sip:");
  EXPECT_EQ(request_status(edit(unknown, "CSeq: 314159 INVITE", "CSeq: 314159 NEWMETHOD")), 0);
  EXPECT_EQ(request_status(edit(unknown, "CSeq: 314159 INVITE", "CSeq: 314159 NEWMETHOD2")), 400);
  std::string ack = edit(kRequest, "INVITE sip:", "ACK sip:");
  EXPECT_EQ(request_status(edit(ack, "CSeq: 314159 INVITE", "CSeq: 314159 ACK")), 0);
  EXPECT_EQ(request_status(ack), 400);
}

TEST_F(Sanity, MalformedValuesAre400) {
  EXPECT_EQ(
      request_status(edit(kRequest, "From: Alice <sip:alice@atlanta.com>", "From: \"Alice <sip:alice@atlanta.com>")),
      400);
  EXPECT_EQ(request_status(edit(kRequest, "To: Bob <sip:bob@biloxi.com>", "To: Bob <sip:bob@biloxi.com")), 400);
  EXPECT_EQ(request_status(edit(kRequest, "Call-ID: a84b4c76e66710@pc33.atlanta.com", "Call-ID: a b")), 400);
  EXPECT_EQ(request_status(edit(kRequest, "CSeq: 314159 INVITE", "CSeq: 2147483648 INVITE")), 400);
  EXPECT_EQ(request_status(edit(kRequest, "pc33.atlanta.com;branch", "pc33.atlanta.com;;branch")), 400);
  EXPECT_EQ(
      request_status(edit(kRequest, "Contact: <sip:alice@pc33.atlanta.com>", "Contact: <sip:alice@pc33 .atlanta.com>")),
      400);
  EXPECT_EQ(request_status(add(kRequest, "Record-Route: sip:r1.example.com;lr\r\n")), 400);
  EXPECT_EQ(request_status(add(kRequest, "Route: sip:p1.example.com;lr\r\n")), 400);
  EXPECT_EQ(request_status(add(kRequest, "Content-Type: application\r\n")), 400);
  EXPECT_EQ(request_status(add(kRequest, "Expires: soon\r\n")), 400);
  EXPECT_EQ(request_status(edit(kRequest, "Max-Forwards: 70", "Max-Forwards: 256")), 400);
  EXPECT_EQ(request_status(edit(kRequest, "Max-Forwards: 70", "Max-Forwards: x")), 400);
}

TEST_F(Sanity, OverlargeExpiresIsTolerated) {
  // RFC 4475 §3.1.2.4: "If only the expiry values were in error, the element could treat them as
  // if they contained the default values" -- still a number, so not a 400 here.
  EXPECT_EQ(request_status(add(kRequest, "Expires: 4294967296\r\n")), 0);
  EXPECT_EQ(request_status(add(kRequest, "Expires: 3600\r\n")), 0);
}

TEST_F(Sanity, UnknownRequestUriSchemeIs416) {
  // RFC 3261 §8.2.2.1, RFC 4475 §3.3.2 (unkscm).
  EXPECT_EQ(request_status(
                edit(kRequest, "sip:bob@biloxi.com SIP/2.0", "nobodyKnowsThisScheme:totallyopaquecontent SIP/2.0")),
            416);
  EXPECT_EQ(request_status(edit(kRequest, "sip:bob@biloxi.com SIP/2.0", "http://www.example.com SIP/2.0")), 416);
  EXPECT_EQ(request_status(edit(kRequest, "sip:bob@biloxi.com SIP/2.0", "sips:bob@biloxi.com SIP/2.0")), 0);
  EXPECT_EQ(request_status(edit(kRequest, "sip:bob@biloxi.com SIP/2.0", "tel:+1-201-555-0123 SIP/2.0")), 0);
  // Unknown schemes elsewhere are fine (RFC 4475 §3.3.4 unksm2).
  EXPECT_EQ(request_status(edit(kRequest, "To: Bob <sip:bob@biloxi.com>", "To: isbn:2983792873")), 0);
}

TEST_F(Sanity, UnknownProxyRequireIs420) {
  // RFC 3261 §16.3 item 5 / §8.2.2.3, RFC 4475 §3.3.5 (bext01).
  constexpr std::array<std::string_view, 2> kKnown = {"sec-agree", "path"};
  SanityPolicy policy;
  policy.proxy_options = kKnown;
  EXPECT_EQ(request_status(add(kRequest, "Proxy-Require: path\r\n"), policy), 0);
  EXPECT_EQ(request_status(add(kRequest, "Proxy-Require: sec-agree, path\r\n"), policy), 0);

  std::string text = add(kRequest, "Proxy-Require: foo, path\r\nProxy-Require: baz\r\nRequire: nope\r\n");
  EXPECT_EQ(request_status(text, policy), 420);
  auto m = Message::parse(text, Framing::kDatagram);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(unsupported_options(**m, HeaderKind::kProxyRequire, kKnown), "foo, baz");
  // Require is for the UAS: a proxy does not refuse it, but the list is there for a UAS.
  EXPECT_EQ(unsupported_options(**m, HeaderKind::kRequire, kKnown), "nope");
  EXPECT_EQ(request_status(add(kRequest, "Require: nope\r\n"), policy), 0);

  // Nothing supported: every tag is unsupported.
  EXPECT_EQ(request_status(add(kRequest, "Proxy-Require: path\r\n")), 420);
  // Malformed option-tag list.
  EXPECT_EQ(request_status(add(kRequest, "Proxy-Require: foo,,bar\r\n"), policy), 400);
}

TEST_F(Sanity, MaxForwardsZeroIs483OnlyWhenForwarding) {
  // RFC 3261 §16.3 item 2, RFC 4475 §3.3.11 (zeromf).
  std::string zero = edit(kRequest, "Max-Forwards: 70", "Max-Forwards: 0");
  SanityPolicy forwarding;
  forwarding.forwarding = true;
  SanityPolicy local;
  local.forwarding = false;
  EXPECT_EQ(request_status(zero, forwarding), 483);
  EXPECT_EQ(request_status(zero, local), 0);
  std::string one = edit(kRequest, "Max-Forwards: 70", "Max-Forwards: 1");
  EXPECT_EQ(request_status(one, forwarding), 0);
}

TEST_F(Sanity, DateMustBeGmt) {
  // RFC 3261 §20.17 (rfc1123-date, GMT only), RFC 4475 §3.1.2.12 (baddate).
  EXPECT_EQ(request_status(add(kRequest, "Date: Sat, 13 Nov 2010 23:29:00 GMT\r\n")), 0);
  EXPECT_EQ(request_status(add(kRequest, "Date: Fri, 01 Jan 2010 16:00:00 EST\r\n")), 400);
  EXPECT_EQ(request_status(add(kRequest, "Date: Sat, 13 Nov 2010 23:29:00 PST\r\n")), 400);
  EXPECT_EQ(request_status(add(kRequest, "Date: 13 Nov 2010 23:29:00 GMT\r\n")), 400);
}

TEST_F(Sanity, Response) {
  EXPECT_EQ(response_status(std::string(kResponse)), 0);
  EXPECT_NE(response_status(drop(kResponse, "Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n")), 0);
  EXPECT_NE(response_status(
                drop(kResponse, "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds;received=192.0.2.1\r\n")),
            0);
  EXPECT_NE(response_status(add(kResponse, "To: <sip:other@x.com>\r\n")), 0);
  EXPECT_NE(response_status(edit(kResponse, "received=192.0.2.1", "received=nowhere")), 0);
  EXPECT_NE(response_status(edit(kResponse, "CSeq: 314159 INVITE", "CSeq: INVITE")), 0);
  // A response's CSeq method is the request's, whatever the status line says.
  EXPECT_EQ(response_status(edit(kResponse, "CSeq: 314159 INVITE", "CSeq: 2 BYE")), 0);
  // Request-only checks do not apply: Max-Forwards 0, Proxy-Require.
  EXPECT_EQ(response_status(add(kResponse, "Max-Forwards: 0\r\nProxy-Require: foo\r\n")), 0);
}

}  // namespace
}  // namespace pinhole::sip
