// Small single-valued headers (RFC 3261 §20: CSeq, Max-Forwards, Content-Length, Expires, Call-ID,
// Date, Content-Type) and option-tag lists.
#include "sip/scalar_headers.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace pinhole::sip {
namespace {

TEST(CSeq, Parse) {
  auto a = parse_cseq("4711 INVITE");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->number, 4711u);
  EXPECT_EQ(a->method_name, "INVITE");
  EXPECT_EQ(a->method, Method::kInvite);
  auto b = parse_cseq("1 NEWMETHOD");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->method, Method::kOther);
  EXPECT_EQ(b->method_name, "NEWMETHOD");
  auto c = parse_cseq("\r\n 2147483647\r\n\tACK ");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->number, 2147483647u);
  EXPECT_EQ(c->method, Method::kAck);
  for (std::string_view bad : {"", "INVITE", "1", "1INVITE", "2147483648 INVITE", "99999999999 INVITE", "-1 INVITE",
                               "1 INVITE BYE", "1 INV;ITE", "1.5 INVITE", "0x10 INVITE"})
    EXPECT_FALSE(parse_cseq(bad).ok()) << bad;
}

TEST(MaxForwards, Parse) {
  EXPECT_EQ(*parse_max_forwards("0"), 0);
  EXPECT_EQ(*parse_max_forwards(" 70 "), 70);
  EXPECT_EQ(*parse_max_forwards("255"), 255);
  EXPECT_EQ(*parse_max_forwards("00255"), 255);
  for (std::string_view bad : {"256", "300", "", "-1", "1a", "1 2"}) EXPECT_FALSE(parse_max_forwards(bad).ok()) << bad;
}

TEST(ContentLength, Parse) {
  EXPECT_EQ(*parse_content_length("0", 100), 0u);
  EXPECT_EQ(*parse_content_length(" 100 ", 100), 100u);
  auto over = parse_content_length("101", 100);
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().status, 413);
  for (std::string_view bad : {"", "-1", "abc", "1 1", "+1"}) {
    auto r = parse_content_length(bad, 100);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().status, 400) << bad;
  }
}

TEST(DeltaHeader, Parse) {
  EXPECT_EQ(*parse_delta_header("3600"), 3600u);
  EXPECT_EQ(*parse_delta_header("\t60 "), 60u);
  EXPECT_FALSE(parse_delta_header("4294967296").ok());
  EXPECT_FALSE(parse_delta_header("1h").ok());
  EXPECT_FALSE(parse_delta_header("").ok());
}

TEST(CallId, Validate) {
  EXPECT_TRUE(validate_call_id("f81d4fae-7dec-11d0-a765-00a0c91e6bf6@foo.bar.com").ok());
  EXPECT_TRUE(validate_call_id("a84b4c76e66710").ok());
  EXPECT_TRUE(validate_call_id(" x@y ").ok());
  // RFC 4475 §3.1.1.1 (wsinv) style Call-ID with the word punctuation.
  EXPECT_TRUE(validate_call_id("0ha0isndaksdj@192.0.2.1").ok());
  EXPECT_TRUE(validate_call_id("a(b)<c>:d\\e\"f/g[h]i?j{k}l!m%n*o_p+q`r'~s@t").ok());
  for (std::string_view bad : {"", "@", "x@", "@y", "x@y@z", "a b", "a;b", "a,b", "a=b", "a\tb"})
    EXPECT_FALSE(validate_call_id(bad).ok()) << bad;
}

TEST(Date, Validate) {
  // rfc1123-date = wkday "," SP date1 SP time SP "GMT"
  EXPECT_TRUE(validate_date("Thu, 21 Feb 2002 13:02:03 GMT").ok());
  EXPECT_TRUE(validate_date("Sun, 01 Jan 2023 00:00:00 GMT").ok());
  EXPECT_TRUE(validate_date(" Fri, 31 Dec 1999 23:59:59 GMT ").ok());
  for (std::string_view bad :
       {"Fri, 01 Jan 2010 16:00:00 EST", "Thu, 21 Feb 2002 13:02:03 UTC", "Thu, 21 Feb 2002 13:02:03",
        "Thx, 21 Feb 2002 13:02:03 GMT", "Thu, 21 Fbr 2002 13:02:03 GMT", "Thu 21 Feb 2002 13:02:03 GMT",
        "Thu, 1 Feb 2002 13:02:03 GMT", "Thu, 21 Feb 02 13:02:03 GMT", "Thu, 21 Feb 2002 13-02-03 GMT",
        "thu, 21 feb 2002 13:02:03 gmt", "", "Thu, 21 Feb 2002 1:02:03 GMT"})
    EXPECT_FALSE(validate_date(bad).ok()) << bad;
}

TEST(ContentType, Parse) {
  auto a = parse_content_type("application/sdp");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->type, "application");
  EXPECT_EQ(a->subtype, "sdp");
  EXPECT_EQ(a->params, "");
  EXPECT_TRUE(a->is("Application", "SDP"));
  auto b = parse_content_type("multipart/mixed ; boundary=\"unique-boundary-1\";charset=utf-8");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->type, "multipart");
  EXPECT_EQ(b->subtype, "mixed");
  EXPECT_EQ(b->params, "; boundary=\"unique-boundary-1\";charset=utf-8");
  EXPECT_EQ(find_header_param(b->params, "boundary")->value, "unique-boundary-1");
  // SLASH = SWS "/" SWS
  auto c = parse_content_type("text / plain");
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->is("text", "plain"));
  for (std::string_view bad : {"", "application", "application/", "/sdp", "application/sdp extra", "application/sdp;",
                               "app lication/sdp", "application/sdp;a=\"x"})
    EXPECT_FALSE(parse_content_type(bad).ok()) << bad;
}

TEST(OptionTags, List) {
  std::vector<std::string_view> tags;
  auto collect = [&](std::string_view v) {
    tags.clear();
    return for_each_option_tag(v, [&](std::string_view t) { tags.push_back(t); });
  };
  ASSERT_TRUE(collect("path, outbound,gruu ,\r\n 100rel").ok());
  EXPECT_EQ(tags, (std::vector<std::string_view>{"path", "outbound", "gruu", "100rel"}));
  ASSERT_TRUE(collect("").ok());  // Supported may be empty (RFC 3261 §20.37)
  EXPECT_TRUE(tags.empty());
  ASSERT_TRUE(collect("  ").ok());
  EXPECT_TRUE(tags.empty());
  for (std::string_view bad : {"a,,b", "a,", ",a", "a b", "a;b", "\"a\""}) EXPECT_FALSE(collect(bad).ok()) << bad;
}

}  // namespace
}  // namespace pinhole::sip
