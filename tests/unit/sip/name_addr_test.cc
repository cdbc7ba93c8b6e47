// name-addr / addr-spec (RFC 3261 §20.10, §25.1) and Contact values (RFC 3261 §20.10, RFC 5626).
#include "sip/name_addr.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "sip/message.h"

namespace pinhole::sip {
namespace {

NameAddr must_parse(std::string_view text) {
  auto r = parse_single_name_addr(text);
  EXPECT_TRUE(r.ok()) << "should parse: " << text << (r.ok() ? "" : std::string(" -> ") + std::string(r.error().what));
  return r.ok() ? *r : NameAddr{};
}

Contact must_parse_contact(std::string_view text) {
  Scanner s(text);
  auto r = parse_contact(s);
  EXPECT_TRUE(r.ok()) << "should parse: " << text << (r.ok() ? "" : std::string(" -> ") + std::string(r.error().what));
  if (!r.ok()) return {};
  s.skip_lws();
  EXPECT_TRUE(s.at_end()) << "left over: " << s.rest();
  return *r;
}

TEST(NameAddr, QuotedDisplayNameWithEscapes) {
  // quoted-string = SWS DQUOTE *(qdtext / quoted-pair ) DQUOTE; quoted-pair = "\" any; the view
  // keeps the escapes as written.
  NameAddr na = must_parse(R"("Bob \"The Builder\" \\ Jr." <sip:bob@biloxi.com>;tag=a6c85cf)");
  EXPECT_TRUE(na.display_quoted);
  EXPECT_EQ(na.display_name, R"(Bob \"The Builder\" \\ Jr.)");
  EXPECT_TRUE(na.bracketed);
  EXPECT_EQ(na.uri.scheme, UriScheme::kSip);
  EXPECT_EQ(na.uri.raw, "sip:bob@biloxi.com");
  EXPECT_EQ(na.uri.user, "bob");
  EXPECT_EQ(na.uri.host, "biloxi.com");
  EXPECT_TRUE(na.has_tag);
  EXPECT_EQ(na.tag, "a6c85cf");
  EXPECT_EQ(na.params, ";tag=a6c85cf");
  EXPECT_EQ(na.raw, R"("Bob \"The Builder\" \\ Jr." <sip:bob@biloxi.com>;tag=a6c85cf)");
}

TEST(NameAddr, QuotedDisplayNameEndingInEscapedBackslash) {
  // "\\" is a quoted-pair, so the quote after it closes the string.
  NameAddr na = must_parse(R"("Bob \\" <sip:bob@biloxi.com>)");
  EXPECT_EQ(na.display_name, R"(Bob \\)");
  EXPECT_EQ(na.uri.user, "bob");
}

TEST(NameAddr, QuotedDisplayNameWithSpecialCharacters) {
  NameAddr na = must_parse(R"("Watson, Thomas <x>; @" <sip:t.watson@example.org>)");
  EXPECT_EQ(na.display_name, "Watson, Thomas <x>; @");
  EXPECT_EQ(na.uri.user, "t.watson");
  EXPECT_FALSE(na.has_tag);
  EXPECT_EQ(na.params, "");
}

TEST(NameAddr, EmptyQuotedDisplayName) {
  NameAddr na = must_parse(R"("" <sip:x@example.com>)");
  EXPECT_TRUE(na.display_quoted);
  EXPECT_EQ(na.display_name, "");
  EXPECT_TRUE(na.bracketed);
}

TEST(NameAddr, TokenDisplayName) {
  NameAddr na = must_parse("Bob Smith <sip:bob@biloxi.com>");
  EXPECT_FALSE(na.display_quoted);
  EXPECT_EQ(na.display_name, "Bob Smith");
  EXPECT_TRUE(na.bracketed);
  EXPECT_EQ(na.uri.user, "bob");

  // token characters include - . ! % * _ + ` ' ~
  NameAddr t = must_parse("J.-R._Doe!%*+`'~ <sip:j@example.com>");
  EXPECT_EQ(t.display_name, "J.-R._Doe!%*+`'~");
}

TEST(NameAddr, NoLwsBeforeLaquot) {
  // RFC 4475 §3.1.1.6 (lwsdisp): LAQUOT = SWS "<", the white space is optional.
  NameAddr a = must_parse("caller<sip:caller@example.com>;tag=323");
  EXPECT_EQ(a.display_name, "caller");
  EXPECT_EQ(a.uri.user, "caller");
  EXPECT_EQ(a.tag, "323");
  NameAddr b = must_parse(R"("caller"<sip:caller@example.com>;tag=323)");
  EXPECT_EQ(b.display_name, "caller");
  EXPECT_TRUE(b.display_quoted);
}

TEST(NameAddr, BareBracketedUri) {
  NameAddr na = must_parse("<sip:alice@atlanta.com;transport=tcp>");
  EXPECT_EQ(na.display_name, "");
  EXPECT_FALSE(na.display_quoted);
  EXPECT_TRUE(na.bracketed);
  EXPECT_EQ(na.uri.params, ";transport=tcp");
  EXPECT_EQ(na.params, "");
}

TEST(NameAddr, AddrSpecParamsBindToTheHeader) {
  // RFC 4475 §3.3.12 (cparam01) and RFC 3261 §20.10: without <>, ';' ends the URI and what
  // follows are header parameters.
  NameAddr na = must_parse("sip:+19725552222@gw1.example.net;unknownparam");
  EXPECT_FALSE(na.bracketed);
  EXPECT_EQ(na.uri.raw, "sip:+19725552222@gw1.example.net");
  EXPECT_EQ(na.uri.user, "+19725552222");
  EXPECT_EQ(na.uri.host, "gw1.example.net");
  EXPECT_EQ(na.uri.params, "");
  EXPECT_FALSE(na.uri.has_param("unknownparam"));
  EXPECT_EQ(na.params, ";unknownparam");
  auto p = na.param("unknownparam");
  ASSERT_TRUE(p.has_value());
  EXPECT_FALSE(p->has_value);
}

TEST(NameAddr, BracketedUriParamsBindToTheUri) {
  // RFC 4475 §3.3.13 (cparam02).
  NameAddr na = must_parse("<sip:+19725552222@gw1.example.net;unknownparam>");
  EXPECT_TRUE(na.bracketed);
  EXPECT_EQ(na.uri.params, ";unknownparam");
  EXPECT_TRUE(na.uri.has_param("unknownparam"));
  EXPECT_EQ(na.params, "");
  EXPECT_FALSE(na.param("unknownparam").has_value());
}

TEST(NameAddr, AddrSpecWithTag) {
  NameAddr na = must_parse("sip:alice@atlanta.com;tag=1928301774");
  EXPECT_FALSE(na.bracketed);
  EXPECT_EQ(na.uri.params, "");
  EXPECT_TRUE(na.has_tag);
  EXPECT_EQ(na.tag, "1928301774");
}

TEST(NameAddr, UriParamsAndHeaderParamsTogether) {
  NameAddr na = must_parse("<sip:a@b.example.com;transport=tcp;lr> ; tag = 123 ;foo=\"bar baz\" ; flag");
  EXPECT_EQ(na.uri.params, ";transport=tcp;lr");
  EXPECT_EQ(na.tag, "123");
  EXPECT_EQ(na.params, "; tag = 123 ;foo=\"bar baz\" ; flag");
  auto foo = na.param("FOO");
  ASSERT_TRUE(foo.has_value());
  EXPECT_TRUE(foo->quoted);
  EXPECT_EQ(foo->value, "bar baz");
  EXPECT_TRUE(na.param("flag").has_value());
}

TEST(NameAddr, TagInsideBracketsIsAUriParam) {
  // Inside <> ';tag=' belongs to the URI; only header parameters make the From/To tag.
  NameAddr na = must_parse("<sip:a@b.example.com;tag=x>");
  EXPECT_FALSE(na.has_tag);
  EXPECT_EQ(na.tag, "");
  EXPECT_TRUE(na.uri.has_param("tag"));
  NameAddr both = must_parse("<sip:a@b.example.com;tag=x>;tag=y");
  EXPECT_TRUE(both.has_tag);
  EXPECT_EQ(both.tag, "y");
}

TEST(NameAddr, TagParamNameIsCaseInsensitive) {
  NameAddr na = must_parse("<sip:a@b.example.com>;TAG=xyz");
  EXPECT_TRUE(na.has_tag);
  EXPECT_EQ(na.tag, "xyz");
}

TEST(NameAddr, UnknownSchemes) {
  // RFC 4475 §3.3.4 (unksm2): unknown schemes in header fields parse as opaque URIs.
  NameAddr a = must_parse("isbn:2983792873");
  EXPECT_EQ(a.uri.scheme, UriScheme::kOther);
  EXPECT_EQ(a.uri.scheme_text, "isbn");
  EXPECT_EQ(a.uri.opaque, "2983792873");
  NameAddr b = must_parse("<http://www.example.com>;tag=2983792873");
  EXPECT_EQ(b.uri.scheme_text, "http");
  EXPECT_EQ(b.uri.opaque, "//www.example.com");
  EXPECT_EQ(b.tag, "2983792873");
  NameAddr c = must_parse(R"("Alice" <urn:ietf:params:foo>)");
  EXPECT_EQ(c.uri.scheme_text, "urn");
  EXPECT_EQ(c.uri.opaque, "ietf:params:foo");
  NameAddr d = must_parse("<tel:+1-201-555-0123>");
  EXPECT_EQ(d.uri.scheme, UriScheme::kTel);
  EXPECT_EQ(d.uri.user, "+1-201-555-0123");
}

TEST(NameAddr, StopsBeforeComma) {
  Scanner s("<sip:a@one.example.com>;tag=1, \"B\" <sip:b@two.example.com>");
  auto first = parse_name_addr(s);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->raw, "<sip:a@one.example.com>;tag=1");
  EXPECT_EQ(first->tag, "1");
  s.skip_lws();
  ASSERT_TRUE(s.consume(','));
  auto second = parse_name_addr(s);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->raw, "\"B\" <sip:b@two.example.com>");
  EXPECT_EQ(second->display_name, "B");
  EXPECT_TRUE(s.at_end());
}

TEST(NameAddr, RequireBracketsForRoutes) {
  Scanner ok("<sip:p1.example.com;lr>");
  auto r = parse_name_addr(ok, /*require_brackets=*/true);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->uri.loose_route());
  Scanner bad("sip:p1.example.com;lr");
  EXPECT_FALSE(parse_name_addr(bad, /*require_brackets=*/true).ok());
}

class NameAddrRejects : public ::testing::TestWithParam<const char*> {};
TEST_P(NameAddrRejects, IsRefused) {
  auto r = parse_single_name_addr(GetParam());
  ASSERT_FALSE(r.ok()) << GetParam();
  EXPECT_EQ(r.error().status, 400);
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, NameAddrRejects,
    ::testing::Values("",
                      R"("Bob <sip:bob@biloxi.com>)",    // unterminated quote (RFC 4475 quotbal)
                      R"("Bob\" <sip:bob@biloxi.com>)",  // the only closing quote is escaped
                      "< sip:t.watson@example.org >",    // spaces inside <> (RFC 4475 badaspec)
                      "<sip:bob @biloxi.com>", "<sip:bob@biloxi.com", "<>", "<bob@biloxi.com>",
                      "sip:alice@atlanta.com?subject=hi",  // headers need <> (RFC 3261 §20)
                      "sip:alice@atlanta.com;tag=1?x=y",
                      R"("Bob" sip:bob@biloxi.com)",                  // quoted display name without <>
                      "Bell, Alexander <sip:a.g.bell@bell-tel.com>",  // non-token display name (RFC 4475 baddn)
                      "Bob@Home <sip:bob@biloxi.com>", "Bob sip:bob@biloxi.com",
                      R"(Bob "Smith" <sip:bob@biloxi.com>)",  // display-name is tokens OR one quoted-string
                      "<sip:bob@biloxi.com> junk", "<sip:bob@biloxi.com>;", "<sip:bob@biloxi.com>;;tag=1",
                      "<sip:bob@biloxi.com>;tag=", "<sip:bob@biloxi.com>;tag=\"x",
                      "<sip:bob@biloxi.com>, <sip:c@d.com>", "<sip:bob@bi loxi.com>", "<notauri>"));

// ---------------------------------------------------------------------------------------------
// Contact

TEST(Contact, Star) {
  Contact c = must_parse_contact("*");
  EXPECT_TRUE(c.star);
  EXPECT_EQ(c.raw, "*");
  Contact d = must_parse_contact("  *");
  EXPECT_TRUE(d.star);
  EXPECT_EQ(d.raw, "*");
}

TEST(Contact, RegistrationParams) {
  Contact c = must_parse_contact(
      "<sip:alice@192.0.2.4:5060;transport=tcp>;expires=3600;q=0.7;"
      "+sip.instance=\"<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>\";reg-id=1");
  EXPECT_FALSE(c.star);
  EXPECT_EQ(c.uri.host, "192.0.2.4");
  EXPECT_EQ(c.uri.port, 5060);
  EXPECT_EQ(c.uri.transport(), "tcp");
  EXPECT_EQ(c.expires, "3600");
  EXPECT_EQ(c.q, "0.7");
  EXPECT_EQ(c.instance, "<urn:uuid:00000000-0000-1000-8000-AABBCCDDEEFF>");
  EXPECT_EQ(c.reg_id, "1");
  auto inst = c.param("+sip.instance");
  ASSERT_TRUE(inst.has_value());
  EXPECT_TRUE(inst->quoted);
}

TEST(Contact, ParamNamesCaseInsensitiveAndAbsentOnesEmpty) {
  Contact c = must_parse_contact("\"Mr. Watson\" <sip:watson@worcester.bell-telephone.com> ;Q=0.1 ; EXPIRES = 60");
  EXPECT_EQ(c.display_name, "Mr. Watson");
  EXPECT_EQ(c.q, "0.1");
  EXPECT_EQ(c.expires, "60");
  EXPECT_EQ(c.instance, "");
  EXPECT_EQ(c.reg_id, "");
}

TEST(Contact, AddrSpecContactParams) {
  Contact c = must_parse_contact("sip:+19725552222@gw1.example.net;unknownparam;expires=10");
  EXPECT_EQ(c.uri.params, "");
  EXPECT_EQ(c.expires, "10");
  EXPECT_TRUE(c.param("unknownparam").has_value());
}

TEST(ContactInMessage, ListAcrossLinesAndStarAlone) {
  std::string text =
      "REGISTER sip:registrar.biloxi.com SIP/2.0\r\n"
      "Via: SIP/2.0/UDP bobspc.biloxi.com:5060;branch=z9hG4bKnashds7\r\n"
      "To: Bob <sip:bob@biloxi.com>\r\n"
      "From: Bob <sip:bob@biloxi.com>;tag=456248\r\n"
      "Call-ID: 843817637684230@998sdasdh09\r\n"
      "CSeq: 1826 REGISTER\r\n"
      "Contact: <sip:bob@192.0.2.4>;expires=10, \"Second\" <sip:bob@192.0.2.5>\r\n"
      "m: sip:bob@192.0.2.6;q=0.5\r\n"
      "Content-Length: 0\r\n\r\n";
  auto m = Message::parse(text, Framing::kDatagram);
  ASSERT_TRUE(m.ok()) << m.error().what;
  auto contacts = (*m)->contacts();
  ASSERT_TRUE(contacts.ok()) << contacts.error().what;
  ASSERT_EQ(contacts->size(), 3u);
  EXPECT_EQ((*contacts)[0].uri.host, "192.0.2.4");
  EXPECT_EQ((*contacts)[0].expires, "10");
  EXPECT_EQ((*contacts)[1].display_name, "Second");
  EXPECT_EQ((*contacts)[1].uri.host, "192.0.2.5");
  EXPECT_EQ((*contacts)[2].uri.host, "192.0.2.6");
  EXPECT_EQ((*contacts)[2].q, "0.5");

  std::string star = text;
  star.replace(star.find("Contact: "), star.find("Content-Length") - star.find("Contact: "),
               "Contact: *\r\nExpires: 0\r\n");
  auto s = Message::parse(star, Framing::kDatagram);
  ASSERT_TRUE(s.ok());
  auto sc = (*s)->contacts();
  ASSERT_TRUE(sc.ok());
  ASSERT_EQ(sc->size(), 1u);
  EXPECT_TRUE((*sc)[0].star);

  // RFC 3261 §10.2.2: "*" must be the only Contact value.
  std::string mixed = text;
  mixed.replace(mixed.find("m: sip:"), 0, "Contact: *\r\n");
  auto x = Message::parse(mixed, Framing::kDatagram);
  ASSERT_TRUE(x.ok());
  auto xc = (*x)->contacts();
  ASSERT_FALSE(xc.ok());
  EXPECT_EQ(xc.error().status, 400);
}

TEST(ContactInMessage, AbsentContactIsEmptyList) {
  std::string text =
      "OPTIONS sip:bob@biloxi.com SIP/2.0\r\n"
      "Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\n"
      "To: <sip:bob@biloxi.com>\r\nFrom: <sip:a@b.com>;tag=1\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n";
  auto m = Message::parse(text, Framing::kDatagram);
  ASSERT_TRUE(m.ok());
  auto c = (*m)->contacts();
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE(c->empty());
}

// ---------------------------------------------------------------------------------------------
// Header parameters

TEST(HeaderParams, ParseOne) {
  Scanner a("tag=abc");
  auto p = parse_header_param(a);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->name, "tag");
  EXPECT_EQ(p->value, "abc");
  EXPECT_TRUE(p->has_value);
  EXPECT_FALSE(p->quoted);

  Scanner b("maddr=[2001:db8::1]");
  auto q = parse_header_param(b);
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->value, "[2001:db8::1]");

  Scanner c("lr");
  auto r = parse_header_param(c);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value);

  Scanner d("=x");
  EXPECT_FALSE(parse_header_param(d).ok());
  Scanner e("a=");
  EXPECT_FALSE(parse_header_param(e).ok());
}

TEST(HeaderParams, FindInRawText) {
  std::string_view raw = ";a=1 ; B = \"two, three\" ;c";
  auto b = find_header_param(raw, "b");
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->name, "B");
  EXPECT_EQ(b->value, "two, three");
  EXPECT_TRUE(b->quoted);
  auto c = find_header_param(raw, "c");
  ASSERT_TRUE(c.has_value());
  EXPECT_FALSE(c->has_value);
  EXPECT_FALSE(find_header_param(raw, "d").has_value());
  // The first of two parameters with the same name wins.
  EXPECT_EQ(find_header_param(";x=1;x=2", "x")->value, "1");
}

TEST(DeltaSeconds, Range) {
  EXPECT_EQ(*parse_delta_seconds("0"), 0u);
  EXPECT_EQ(*parse_delta_seconds("3600"), 3600u);
  EXPECT_EQ(*parse_delta_seconds("4294967295"), 4294967295u);
  EXPECT_EQ(*parse_delta_seconds("0004294967295"), 4294967295u);
  EXPECT_FALSE(parse_delta_seconds("4294967296").ok());
  EXPECT_FALSE(parse_delta_seconds("99999999999999999999999").ok());
  EXPECT_FALSE(parse_delta_seconds("").ok());
  EXPECT_FALSE(parse_delta_seconds("-1").ok());
  EXPECT_FALSE(parse_delta_seconds("12a").ok());
  EXPECT_FALSE(parse_delta_seconds(" 1").ok());
}

}  // namespace
}  // namespace pinhole::sip
