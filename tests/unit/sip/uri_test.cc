// URI parsing (RFC 3261 §19.1, §25.1; RFC 3966 tel) and comparison (RFC 3261 §19.1.4).
//
// Expected values are derived from the RFC grammar by hand, not from the parser's output.
#include "sip/uri.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "sip/host.h"
#include "sip/params.h"

namespace pinhole::sip {
namespace {

using namespace std::string_view_literals;

Uri must_parse(std::string_view text) {
  auto r = parse_uri(text);
  EXPECT_TRUE(r.ok()) << "should parse: " << text << (r.ok() ? "" : std::string(" -> ") + std::string(r.error().what));
  return r.ok() ? *r : Uri{};
}

// ---------------------------------------------------------------------------------------------
// sip / sips

TEST(UriParse, SimpleSip) {
  Uri u = must_parse("sip:alice@atlanta.com");
  EXPECT_EQ(u.scheme, UriScheme::kSip);
  EXPECT_TRUE(u.is_sip());
  EXPECT_EQ(u.scheme_text, "sip");
  EXPECT_EQ(u.raw, "sip:alice@atlanta.com");
  EXPECT_TRUE(u.has_user);
  EXPECT_EQ(u.user, "alice");
  EXPECT_FALSE(u.has_password);
  EXPECT_EQ(u.password, "");
  EXPECT_EQ(u.host, "atlanta.com");
  EXPECT_EQ(u.host_kind, HostKind::kName);
  EXPECT_FALSE(u.has_port());
  EXPECT_EQ(u.port, 0);
  EXPECT_EQ(u.params, "");
  EXPECT_EQ(u.headers, "");
  EXPECT_EQ(u.transport(), "");
  EXPECT_FALSE(u.loose_route());
}

TEST(UriParse, SipsWithPasswordPortParamsHeaders) {
  Uri u = must_parse("sips:bob:secret@biloxi.com:5061;transport=tls;lr?subject=project%20x&priority=urgent");
  EXPECT_EQ(u.scheme, UriScheme::kSips);
  EXPECT_TRUE(u.is_sip());
  EXPECT_EQ(u.user, "bob");
  EXPECT_TRUE(u.has_password);
  EXPECT_EQ(u.password, "secret");
  EXPECT_EQ(u.host, "biloxi.com");
  EXPECT_TRUE(u.has_port());
  EXPECT_EQ(u.port_text, "5061");
  EXPECT_EQ(u.port, 5061);
  EXPECT_EQ(u.params, ";transport=tls;lr");
  EXPECT_EQ(u.headers, "subject=project%20x&priority=urgent");
  EXPECT_EQ(u.transport(), "tls");
  EXPECT_TRUE(u.loose_route());
  auto lr = u.param("lr");
  ASSERT_TRUE(lr.has_value());
  EXPECT_FALSE(lr->has_value);
  EXPECT_EQ(lr->value, "");
  EXPECT_FALSE(u.has_param("maddr"));
}

TEST(UriParse, NoUserIPv4AndPort) {
  Uri u = must_parse("sip:192.0.2.1:5070");
  EXPECT_FALSE(u.has_user);
  EXPECT_EQ(u.user, "");
  EXPECT_EQ(u.host, "192.0.2.1");
  EXPECT_EQ(u.host_kind, HostKind::kIPv4);
  EXPECT_EQ(u.port, 5070);
}

TEST(UriParse, IPv6ReferenceWithPortAndParams) {
  Uri u = must_parse("sip:alice@[2001:db8::10]:5070;maddr=[2001:db8::1];transport=udp");
  EXPECT_EQ(u.user, "alice");
  EXPECT_EQ(u.host, "[2001:db8::10]");  // brackets kept
  EXPECT_EQ(u.host_kind, HostKind::kIPv6);
  EXPECT_EQ(u.port_text, "5070");
  EXPECT_EQ(u.port, 5070);
  EXPECT_EQ(u.params, ";maddr=[2001:db8::1];transport=udp");
  auto maddr = u.param("maddr");
  ASSERT_TRUE(maddr.has_value());
  EXPECT_EQ(maddr->value, "[2001:db8::1]");
  EXPECT_EQ(u.transport(), "udp");
}

TEST(UriParse, PasswordBeforeIPv6Reference) {
  Uri u = must_parse("sip:alice:pw@[::1]:5060");
  EXPECT_EQ(u.user, "alice");
  EXPECT_EQ(u.password, "pw");
  EXPECT_EQ(u.host, "[::1]");
  EXPECT_EQ(u.port, 5060);
}

TEST(UriParse, IPv6ReferenceWithoutPort) {
  Uri u = must_parse("sip:[::1]");
  EXPECT_FALSE(u.has_user);
  EXPECT_EQ(u.host, "[::1]");
  EXPECT_EQ(u.host_kind, HostKind::kIPv6);
  EXPECT_FALSE(u.has_port());
}

TEST(UriParse, SemicolonInUserPart) {
  // RFC 4475 §3.1.1.9 (semiuri): user = *( unreserved / escaped / user-unreserved ) and
  // user-unreserved holds ';' and '=', so everything before '@' is the user.
  Uri u = must_parse("sip:user;par=u%40example.net@example.com");
  EXPECT_TRUE(u.has_user);
  EXPECT_EQ(u.user, "user;par=u%40example.net");
  EXPECT_EQ(u.host, "example.com");
  EXPECT_EQ(u.params, "");
  EXPECT_FALSE(u.has_param("par"));
  EXPECT_EQ(unescape(u.user), "user;par=u@example.net");
}

TEST(UriParse, UserUnreservedQuestionMarkAndSlash) {
  // '?' and '/' are user-unreserved: in the userinfo they do not start the headers.
  Uri u = must_parse("sip:a?b/c@example.com?subject=x");
  EXPECT_EQ(u.user, "a?b/c");
  EXPECT_EQ(u.host, "example.com");
  EXPECT_EQ(u.headers, "subject=x");
}

TEST(UriParse, FirstAtEndsTheUserinfo) {
  // '@' may appear unescaped only as the userinfo delimiter, so in "sip:h.example.com?a=b@c" the
  // text before it is a user (user-unreserved holds '?' and '='), not a host with headers.
  Uri u = must_parse("sip:h.example.com?a=b@c");
  EXPECT_TRUE(u.has_user);
  EXPECT_EQ(u.user, "h.example.com?a=b");
  EXPECT_EQ(u.host, "c");
  EXPECT_EQ(u.headers, "");
}

TEST(UriParse, EscapesStayAsWritten) {
  Uri u = must_parse("sip:%61lice@atlanta.com");
  EXPECT_EQ(u.user, "%61lice");
  EXPECT_EQ(unescape(u.user), "alice");
}

TEST(UriParse, EscapedNulInUser) {
  // RFC 4475 §3.1.1.4 (escnull): %00 must not truncate.
  Uri u = must_parse("sip:null-%00-null@example.com");
  EXPECT_EQ(u.user, "null-%00-null");
  std::string plain = unescape(u.user);
  ASSERT_EQ(plain.size(), 11u);
  EXPECT_EQ(plain, std::string("null-\0-null", 11));
}

TEST(UriParse, EmptyPasswordIsAllowed) {
  // userinfo = ( user / telephone-subscriber ) [ ":" password ], password = *( ... ): may be empty.
  Uri u = must_parse("sip:alice:@atlanta.com");
  EXPECT_EQ(u.user, "alice");
  EXPECT_TRUE(u.has_password);
  EXPECT_EQ(u.password, "");
}

TEST(UriParse, PasswordWithEscapesAndExtras) {
  Uri u = must_parse("sip:alice:p%40ss&=+$,word@atlanta.com");
  EXPECT_EQ(u.user, "alice");
  EXPECT_EQ(u.password, "p%40ss&=+$,word");
}

TEST(UriParse, UppercaseScheme) {
  Uri u = must_parse("SIP:Alice@Example.COM");
  EXPECT_EQ(u.scheme, UriScheme::kSip);
  EXPECT_EQ(u.scheme_text, "SIP");
  EXPECT_EQ(u.user, "Alice");
  EXPECT_EQ(u.host, "Example.COM");
  EXPECT_EQ(must_parse("SiPs:x.example.com").scheme, UriScheme::kSips);
  EXPECT_EQ(must_parse("TEL:+123").scheme, UriScheme::kTel);
}

TEST(UriParse, FullyQualifiedHostWithTrailingDot) {
  // hostname = *( domainlabel "." ) toplabel [ "." ]
  Uri u = must_parse("sip:example.com.");
  EXPECT_EQ(u.host, "example.com.");
  EXPECT_EQ(u.host_kind, HostKind::kName);
}

TEST(UriParse, ParamLookupIsCaseInsensitiveAndKeepsValues) {
  Uri u = must_parse("sip:h.example.com;Transport=TCP;x-Foo=Bar%20Baz;lr");
  auto t = u.param("transport");
  ASSERT_TRUE(t.has_value());
  EXPECT_EQ(t->name, "Transport");
  EXPECT_EQ(t->value, "TCP");
  EXPECT_TRUE(t->has_value);
  EXPECT_EQ(u.transport(), "TCP");
  auto x = u.param("X-FOO");
  ASSERT_TRUE(x.has_value());
  EXPECT_EQ(x->value, "Bar%20Baz");  // escaped as written
  EXPECT_TRUE(u.loose_route());
}

TEST(UriParse, ParamCharsAllowedByGrammar) {
  // paramchar = param-unreserved / unreserved / escaped; param-unreserved = [ ] / : & + $
  Uri u = must_parse("sip:h.example.com;a=[x]/:&+$;b-_.!~*'()=1");
  EXPECT_EQ(u.params, ";a=[x]/:&+$;b-_.!~*'()=1");
  EXPECT_EQ(u.param("a")->value, "[x]/:&+$");
  EXPECT_EQ(u.param("b-_.!~*'()")->value, "1");
}

// ---------------------------------------------------------------------------------------------
// tel and other schemes

TEST(UriParse, TelGlobalNumber) {
  Uri u = must_parse("tel:+1-201-555-0123;ext=1234");
  EXPECT_EQ(u.scheme, UriScheme::kTel);
  EXPECT_FALSE(u.is_sip());
  EXPECT_TRUE(u.has_user);
  EXPECT_EQ(u.user, "+1-201-555-0123");
  EXPECT_EQ(u.params, ";ext=1234");
  EXPECT_EQ(u.param("ext")->value, "1234");
  EXPECT_EQ(u.host, "");
}

TEST(UriParse, TelLocalNumberWithContext) {
  Uri u = must_parse("tel:7042;phone-context=example.com");
  EXPECT_EQ(u.user, "7042");
  EXPECT_EQ(u.param("phone-context")->value, "example.com");
  Uri v = must_parse("tel:*67#;phone-context=+1");
  EXPECT_EQ(v.user, "*67#");
}

TEST(UriParse, OtherSchemesAreOpaque) {
  Uri urn = must_parse("urn:service:sos");
  EXPECT_EQ(urn.scheme, UriScheme::kOther);
  EXPECT_FALSE(urn.is_sip());
  EXPECT_EQ(urn.scheme_text, "urn");
  EXPECT_EQ(urn.opaque, "service:sos");
  EXPECT_EQ(urn.host, "");
  EXPECT_FALSE(urn.has_user);

  // RFC 4475 §3.3.3 (novelsc): scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
  Uri beep = must_parse("soap.beep://192.0.2.103:3002");
  EXPECT_EQ(beep.scheme, UriScheme::kOther);
  EXPECT_EQ(beep.scheme_text, "soap.beep");
  EXPECT_EQ(beep.opaque, "//192.0.2.103:3002");

  Uri mail = must_parse("mailto:alice@example.com");
  EXPECT_EQ(mail.scheme_text, "mailto");
  EXPECT_EQ(mail.opaque, "alice@example.com");

  Uri http = must_parse("http://www.example.com/a%20b?c=d");
  EXPECT_EQ(http.opaque, "//www.example.com/a%20b?c=d");

  Uri isbn = must_parse("isbn:2983792873");
  EXPECT_EQ(isbn.opaque, "2983792873");
}

// ---------------------------------------------------------------------------------------------
// Malformed URIs

class UriRejects : public ::testing::TestWithParam<const char*> {};

TEST_P(UriRejects, IsRefused) {
  auto r = parse_uri(GetParam());
  ASSERT_FALSE(r.ok()) << GetParam() << " should be refused";
  EXPECT_EQ(r.error().status, 400);
}

INSTANTIATE_TEST_SUITE_P(
    Malformed, UriRejects,
    ::testing::Values(
        // white space anywhere (RFC 4475 lwsruri / badaspec)
        "sip:alice@atlanta .com", "sip:alice @atlanta.com", "sip: alice@atlanta.com", "sip:alice@atlanta.com ",
        "sip:alice@atlanta.com;transport=tcp ", "sip:alice@atlanta.com\t",
        // ports: 0..65535, 1*DIGIT
        "sip:alice@atlanta.com:70000", "sip:alice@atlanta.com:65536", "sip:alice@atlanta.com:",
        "sip:alice@atlanta.com:abc", "sip:alice@atlanta.com:123456", "sip:alice@atlanta.com:-1", "sip:[::1]:99999",
        // empty or malformed host / user
        "sip:", "sip:alice@", "sip:alice@:5060", "sip:@atlanta.com", "sip:;lr", "sip:?subject=x",
        "sip:alice@exa_mple.com", "sip:alice@-example.com", "sip:alice@example-.com", "sip:alice@example..com",
        "sip:alice@192.0.2.300", "sip:alice@a@b.com", "sip:[2001:db8::1", "sip:[zz::1]", "sip:[::1]x", "sip:[]",
        "sip:2001:db8::1",
        // brackets belong to name-addr, not to the URI (RFC 4475 ltgtruri)
        "<sip:x>", "<sip:alice@atlanta.com>", "sip:alice@atlanta.com>",
        // bad escapes
        "sip:%G1ice@atlanta.com", "sip:ali%4@atlanta.com", "sip:alice%@atlanta.com", "sip:alice:p%zz@atlanta.com",
        "sip:h.example.com;a=%4", "sip:h.example.com?a=%x1",
        // characters the user / password grammar does not allow
        "sip:al\"ice@atlanta.com", "sip:alice:pa?ss@atlanta.com", "sip:al<ice@atlanta.com",
        // bad parameters / headers
        "sip:h.example.com;", "sip:h.example.com;;lr", "sip:h.example.com;=x",
        "sip:h.example.com;a=", "sip:h.example.com;a\"b", "sip:h.example.com?", "sip:h.example.com?subject",
        "sip:h.example.com?=x", "sip:h.example.com?a=b&", "sip:alice@h.example.com?a=b@c",
        // scheme
        "nocolon", ":alice@atlanta.com", "1sip:alice@atlanta.com", "si p:alice@atlanta.com", "s_p:x",
        // tel
        "tel:", "tel:+1 555", "tel:+1555;", "tel:+1555xyz",
        // other schemes must have visible URI characters
        "urn:", "http://exa mple.com", "http://example.com/<x>", "x:%zz"));

// ---------------------------------------------------------------------------------------------
// Host helpers

TEST(Host, Classify) {
  EXPECT_EQ(*classify_host("example.com"), HostKind::kName);
  EXPECT_EQ(*classify_host("a"), HostKind::kName);
  EXPECT_EQ(*classify_host("192.0.2.1"), HostKind::kIPv4);
  EXPECT_EQ(*classify_host("0.0.0.0"), HostKind::kIPv4);
  EXPECT_EQ(*classify_host("255.255.255.255"), HostKind::kIPv4);
  EXPECT_EQ(*classify_host("[::1]"), HostKind::kIPv6);
  EXPECT_EQ(*classify_host("[2001:db8::192.0.2.1]"), HostKind::kIPv6);
  EXPECT_FALSE(classify_host("").ok());
  EXPECT_FALSE(classify_host("256.1.1.1").ok());
  EXPECT_FALSE(classify_host("1.2.3").ok());  // toplabel must start with a letter
  EXPECT_FALSE(classify_host("1.2.3.4.5").ok());
  EXPECT_FALSE(classify_host("::1").ok());  // IPv6 needs brackets as a host
  EXPECT_FALSE(classify_host("[::1").ok());
  EXPECT_FALSE(classify_host("[1.2.3.4]").ok());
}

TEST(Host, IsIpAddress) {
  EXPECT_TRUE(is_ip_address("192.0.2.1"));
  EXPECT_TRUE(is_ip_address("2001:db8::1"));
  EXPECT_TRUE(is_ip_address("::"));
  EXPECT_FALSE(is_ip_address("[2001:db8::1]"));
  EXPECT_FALSE(is_ip_address("example.com"));
  EXPECT_FALSE(is_ip_address("notanip"));
  EXPECT_FALSE(is_ip_address(""));
  EXPECT_FALSE(is_ip_address("192.0.2"));
}

TEST(Host, ParsePort) {
  EXPECT_EQ(*parse_port("0"), 0);
  EXPECT_EQ(*parse_port("5060"), 5060);
  EXPECT_EQ(*parse_port("65535"), 65535);
  EXPECT_FALSE(parse_port("65536").ok());
  EXPECT_FALSE(parse_port("").ok());
  EXPECT_FALSE(parse_port("12a").ok());
  EXPECT_FALSE(parse_port("100000").ok());
}

TEST(Host, ParseHostPort) {
  auto a = parse_host_port("example.com:5060");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "example.com");
  EXPECT_EQ(a->port_text, "5060");
  EXPECT_EQ(a->port, 5060);
  EXPECT_EQ(a->kind, HostKind::kName);
  auto b = parse_host_port("[2001:db8::1]:5061");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->host, "[2001:db8::1]");
  EXPECT_EQ(b->port, 5061);
  EXPECT_EQ(b->kind, HostKind::kIPv6);
  auto c = parse_host_port("10.0.0.1");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->port_text, "");
  EXPECT_EQ(c->port, 0);
  EXPECT_EQ(c->kind, HostKind::kIPv4);
  EXPECT_FALSE(parse_host_port("").ok());
  EXPECT_FALSE(parse_host_port(":5060").ok());
  EXPECT_FALSE(parse_host_port("[::1]5060").ok());
}

TEST(Unescape, DecodesValidEscapesAndKeepsInvalidOnes) {
  EXPECT_EQ(unescape("%41%42c"), "ABc");
  EXPECT_EQ(unescape("%4a%4A"), "JJ");
  EXPECT_EQ(unescape("100%"), "100%");
  EXPECT_EQ(unescape("%G1"), "%G1");
  EXPECT_EQ(unescape("%4"), "%4");
  EXPECT_EQ(unescape("a%2"), "a%2");
  EXPECT_EQ(unescape("%%41"), "%A");
  EXPECT_EQ(unescape(""), "");
}

TEST(UriParams, ValidateAndFind) {
  EXPECT_TRUE(validate_uri_params("").ok());
  EXPECT_TRUE(validate_uri_params(";lr").ok());
  EXPECT_TRUE(validate_uri_params(";a=1;b;c=%41").ok());
  EXPECT_FALSE(validate_uri_params("lr").ok());
  EXPECT_FALSE(validate_uri_params(";").ok());
  EXPECT_FALSE(validate_uri_params(";a;;b").ok());
  auto p = find_uri_param(";a=1;B=2;c", "b");
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->name, "B");
  EXPECT_EQ(p->value, "2");
  auto c = find_uri_param(";a=1;B=2;c", "C");
  ASSERT_TRUE(c.has_value());
  EXPECT_FALSE(c->has_value);
  EXPECT_FALSE(find_uri_param(";a=1", "a=1").has_value());
  EXPECT_FALSE(find_uri_param(";ab=1", "a").has_value());
}

// ---------------------------------------------------------------------------------------------
// Comparison, RFC 3261 §19.1.4

::testing::AssertionResult UrisEqual(std::string_view a, std::string_view b) {
  auto ua = parse_uri(a);
  auto ub = parse_uri(b);
  if (!ua.ok() || !ub.ok()) return ::testing::AssertionFailure() << "parse failed: " << a << " / " << b;
  bool ab = uri_equal(*ua, *ub);
  bool ba = uri_equal(*ub, *ua);
  if (ab != ba) return ::testing::AssertionFailure() << "comparison not symmetric for " << a << " / " << b;
  if (!ab) return ::testing::AssertionFailure() << a << " != " << b;
  return ::testing::AssertionSuccess() << a << " == " << b;
}

struct UriPair {
  const char* a;
  const char* b;
};

class UriEquivalent : public ::testing::TestWithParam<UriPair> {};
TEST_P(UriEquivalent, BothWays) { EXPECT_TRUE(UrisEqual(GetParam().a, GetParam().b)); }

// The sets RFC 3261 §19.1.4 lists as equivalent (every pair within each set), then more.
INSTANTIATE_TEST_SUITE_P(
    Rfc3261, UriEquivalent,
    ::testing::Values(UriPair{"sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"},
                      UriPair{"sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"},
                      UriPair{"sip:carol@chicago.com", "sip:carol@chicago.com;security=on"},
                      UriPair{"sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"},
                      UriPair{"sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com",
                              "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"},
                      UriPair{"sip:alice@atlanta.com?subject=project%20x&priority=urgent",
                              "sip:alice@atlanta.com?priority=urgent&subject=project%20x"},
                      // "Note that equality is not transitive": both of these equal the bare URI.
                      UriPair{"sip:carol@chicago.com", "sip:carol@chicago.com;security=off"}));

INSTANTIATE_TEST_SUITE_P(
    More, UriEquivalent,
    ::testing::Values(UriPair{"sip:alice@atlanta.com", "sip:alice@atlanta.com"},
                      UriPair{"SIP:alice@ATLANTA.COM", "sip:alice@atlanta.com"},  // scheme and host case-insensitive
                      UriPair{"sips:alice@atlanta.com:5061", "sips:alice@atlanta.com:5061"},
                      UriPair{"sip:alice:secret@atlanta.com", "sip:alice:%73ecret@atlanta.com"},
                      UriPair{"sip:alice@atlanta.com;transport=%74cp", "sip:alice@atlanta.com;transport=TCP"},
                      UriPair{"sip:alice@atlanta.com;user=phone;ttl=5;method=INVITE;maddr=239.255.255.1",
                              "sip:alice@atlanta.com;maddr=239.255.255.1;method=INVITE;ttl=5;user=phone"},
                      UriPair{"sip:alice@atlanta.com;lr", "sip:alice@atlanta.com"},  // lr is not a must-match parameter
                      UriPair{"sip:alice@atlanta.com?Subject=hello", "sip:alice@atlanta.com?subject=hello"},
                      UriPair{"sip:alice@atlanta.com?subject=a%20b", "sip:alice@atlanta.com?subject=%61%20b"},
                      UriPair{"sip:a%3bb@atlanta.com", "sip:a%3Bb@atlanta.com"},  // hex digits are case-insensitive
                      UriPair{"sip:[2001:db8::1]:5060", "sip:[2001:DB8::1]:5060"},
                      // tel: RFC 3966 §4: visual separators ignored, parameters compared by name in any order.
                      UriPair{"tel:+1-201-555-0123", "tel:+12015550123"},
                      UriPair{"tel:+1(201)555.0123", "tel:+12015550123"},
                      UriPair{"tel:7042;phone-context=example.com;ext=1", "tel:7042;ext=1;phone-context=EXAMPLE.com"},
                      // other schemes: scheme name case-insensitive
                      UriPair{"urn:service:sos", "URN:service:sos"}));

class UriNotEquivalent : public ::testing::TestWithParam<UriPair> {};
TEST_P(UriNotEquivalent, BothWays) {
  auto a = parse_uri(GetParam().a);
  auto b = parse_uri(GetParam().b);
  ASSERT_TRUE(a.ok()) << GetParam().a;
  ASSERT_TRUE(b.ok()) << GetParam().b;
  EXPECT_FALSE(uri_equal(*a, *b)) << GetParam().a << " vs " << GetParam().b;
  EXPECT_FALSE(uri_equal(*b, *a)) << GetParam().b << " vs " << GetParam().a;
}

// The pairs RFC 3261 §19.1.4 lists as not equivalent.
INSTANTIATE_TEST_SUITE_P(
    Rfc3261, UriNotEquivalent,
    ::testing::Values(UriPair{"SIP:ALICE@AtLanTa.CoM;Transport=udp",
                              "sip:alice@AtLanTa.CoM;Transport=UDP"},                          // usernames
                      UriPair{"sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"},                // different ports
                      UriPair{"sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"},       // different transports
                      UriPair{"sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"},  // port and transport
                      UriPair{"sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"},  // headers
                      UriPair{"sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"},  // name vs its address
                      // "Note that equality is not transitive"
                      UriPair{"sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"}));

INSTANTIATE_TEST_SUITE_P(
    More, UriNotEquivalent,
    ::testing::Values(
        // "A SIP and SIPS URI are never equivalent."
        UriPair{"sip:alice@atlanta.com", "sips:alice@atlanta.com"},
        // userinfo is case-sensitive
        UriPair{"sip:alice@atlanta.com", "sip:Alice@atlanta.com"},
        UriPair{"sip:alice:secret@atlanta.com", "sip:alice:SECRET@atlanta.com"},
        UriPair{"sip:alice:secret@atlanta.com", "sip:alice@atlanta.com"},
        UriPair{"sip:alice@atlanta.com", "sip:atlanta.com"},
        UriPair{"sip:alice@atlanta.com:5060", "sip:alice@atlanta.com:5070"},
        UriPair{"sip:alice@atlanta.com", "sip:alice@biloxi.com"},
        // must-match parameters present in only one URI
        UriPair{"sip:alice@atlanta.com", "sip:alice@atlanta.com;user=phone"},
        UriPair{"sip:alice@atlanta.com", "sip:alice@atlanta.com;ttl=1"},
        UriPair{"sip:alice@atlanta.com", "sip:alice@atlanta.com;method=INVITE"},
        UriPair{"sip:alice@atlanta.com", "sip:alice@atlanta.com;maddr=239.255.255.1"},
        UriPair{"sip:alice@atlanta.com", "sip:alice@atlanta.com;transport=tcp"},
        UriPair{"sip:alice@atlanta.com;lr", "sip:alice@atlanta.com;lr;user=ip"},
        // ... and with different values
        UriPair{"sip:alice@atlanta.com;user=phone", "sip:alice@atlanta.com;user=ip"},
        UriPair{"sip:alice@atlanta.com;ttl=1", "sip:alice@atlanta.com;ttl=2"},
        UriPair{"sip:alice@atlanta.com;method=INVITE", "sip:alice@atlanta.com;method=REGISTER"},
        UriPair{"sip:alice@atlanta.com;maddr=239.255.255.1", "sip:alice@atlanta.com;maddr=239.255.255.2"},
        UriPair{"sip:alice@atlanta.com;transport=tcp", "sip:alice@atlanta.com;transport=udp"},
        // any other parameter in both must match
        UriPair{"sip:alice@atlanta.com;foo=1", "sip:alice@atlanta.com;foo=2"},
        // headers: a different value, a missing one on either side
        UriPair{"sip:alice@atlanta.com?subject=a", "sip:alice@atlanta.com?subject=b"},
        UriPair{"sip:alice@atlanta.com?subject=a&priority=urgent", "sip:alice@atlanta.com?subject=a"},
        // "Characters other than those in the reserved set are equivalent to their %HEX HEX
        // encoding": an escaped reserved character (';' = %3B, '=' = %3D) is data, not the
        // delimiter, so it does not equal the literal character.
        UriPair{"sip:a%3Bb@atlanta.com", "sip:a;b@atlanta.com"},
        UriPair{"sip:a%3Db@atlanta.com", "sip:a=b@atlanta.com"},
        // different schemes / kinds
        UriPair{"sip:+12015550123@atlanta.com;user=phone", "tel:+12015550123"},
        UriPair{"tel:+12015550123", "tel:+12015550124"},
        UriPair{"tel:7042;phone-context=example.com", "tel:7042;phone-context=example.net"},
        UriPair{"tel:7042;phone-context=example.com", "tel:7042"}, UriPair{"urn:service:sos", "urn:service:SOS"},
        UriPair{"urn:service:sos", "mailto:service:sos"}));

}  // namespace
}  // namespace pinhole::sip
