// Header names (RFC 3261 §7.3.3 compact forms and the IANA registry), methods, character classes.
#include "sip/header_kind.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "sip/charset.h"
#include "sip/method.h"

namespace pinhole::sip {
namespace {

struct Named {
  std::string_view name;
  HeaderKind kind;
};

// Full names as registered (RFC 3261 §20 and the extension RFCs).
constexpr Named kFull[] = {
    {"Via", HeaderKind::kVia},
    {"From", HeaderKind::kFrom},
    {"To", HeaderKind::kTo},
    {"Call-ID", HeaderKind::kCallId},
    {"CSeq", HeaderKind::kCSeq},
    {"Max-Forwards", HeaderKind::kMaxForwards},
    {"Contact", HeaderKind::kContact},
    {"Route", HeaderKind::kRoute},
    {"Record-Route", HeaderKind::kRecordRoute},
    {"Path", HeaderKind::kPath},
    {"Content-Length", HeaderKind::kContentLength},
    {"Content-Type", HeaderKind::kContentType},
    {"Content-Encoding", HeaderKind::kContentEncoding},
    {"Content-Disposition", HeaderKind::kContentDisposition},
    {"Expires", HeaderKind::kExpires},
    {"Min-Expires", HeaderKind::kMinExpires},
    {"Supported", HeaderKind::kSupported},
    {"Require", HeaderKind::kRequire},
    {"Proxy-Require", HeaderKind::kProxyRequire},
    {"Unsupported", HeaderKind::kUnsupported},
    {"Flow-Timer", HeaderKind::kFlowTimer},
    {"Authorization", HeaderKind::kAuthorization},
    {"Proxy-Authorization", HeaderKind::kProxyAuthorization},
    {"WWW-Authenticate", HeaderKind::kWwwAuthenticate},
    {"Proxy-Authenticate", HeaderKind::kProxyAuthenticate},
    {"Date", HeaderKind::kDate},
    {"Subject", HeaderKind::kSubject},
    {"Event", HeaderKind::kEvent},
    {"Allow-Events", HeaderKind::kAllowEvents},
    {"Refer-To", HeaderKind::kReferTo},
    {"Referred-By", HeaderKind::kReferredBy},
    {"Session-Expires", HeaderKind::kSessionExpires},
    {"Identity", HeaderKind::kIdentity},
    {"User-Agent", HeaderKind::kUserAgent},
    {"Server", HeaderKind::kServer},
    {"Allow", HeaderKind::kAllow},
    {"Accept", HeaderKind::kAccept},
    {"Retry-After", HeaderKind::kRetryAfter},
    {"Timestamp", HeaderKind::kTimestamp},
    {"Warning", HeaderKind::kWarning},
    {"Subscription-State", HeaderKind::kSubscriptionState},
    {"Accept-Contact", HeaderKind::kAcceptContact},
    {"Reject-Contact", HeaderKind::kRejectContact},
    {"Request-Disposition", HeaderKind::kRequestDisposition},
    {"Identity-Info", HeaderKind::kIdentityInfo},
};

// Compact forms: RFC 3261 §7.3.3 (c e f i k l m s t v), RFC 3265 (o u), RFC 3515 (r),
// RFC 3892 (b), RFC 4028 (x), RFC 4474 (y n), RFC 3841 (a j d).
constexpr std::pair<char, HeaderKind> kCompact[] = {
    {'a', HeaderKind::kAcceptContact},   {'b', HeaderKind::kReferredBy},
    {'c', HeaderKind::kContentType},     {'d', HeaderKind::kRequestDisposition},
    {'e', HeaderKind::kContentEncoding}, {'f', HeaderKind::kFrom},
    {'i', HeaderKind::kCallId},          {'j', HeaderKind::kRejectContact},
    {'k', HeaderKind::kSupported},       {'l', HeaderKind::kContentLength},
    {'m', HeaderKind::kContact},         {'n', HeaderKind::kIdentityInfo},
    {'o', HeaderKind::kEvent},           {'r', HeaderKind::kReferTo},
    {'s', HeaderKind::kSubject},         {'t', HeaderKind::kTo},
    {'u', HeaderKind::kAllowEvents},     {'v', HeaderKind::kVia},
    {'x', HeaderKind::kSessionExpires},  {'y', HeaderKind::kIdentity},
};

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
  return out;
}
std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
  return out;
}
std::string alternate(std::string_view s) {
  std::string out(s);
  for (size_t i = 0; i < out.size(); ++i) {
    char c = out[i];
    if (i % 2 == 0 && c >= 'a' && c <= 'z') out[i] = static_cast<char>(c - 32);
    if (i % 2 == 1 && c >= 'A' && c <= 'Z') out[i] = static_cast<char>(c + 32);
  }
  return out;
}

TEST(HeaderKind, EveryFullNameAnyCase) {
  for (const auto& [name, kind] : kFull) {
    EXPECT_EQ(header_kind_from_name(name), kind) << name;
    EXPECT_EQ(header_kind_from_name(upper(name)), kind) << upper(name);
    EXPECT_EQ(header_kind_from_name(lower(name)), kind) << lower(name);
    EXPECT_EQ(header_kind_from_name(alternate(name)), kind) << alternate(name);
    EXPECT_EQ(header_canonical_name(kind), name);
  }
}

TEST(HeaderKind, EveryKindHasAName) {
  for (int k = 1; k < static_cast<int>(HeaderKind::kCount); ++k) {
    auto kind = static_cast<HeaderKind>(k);
    std::string_view name = header_canonical_name(kind);
    EXPECT_FALSE(name.empty()) << k;
    EXPECT_EQ(header_kind_from_name(name), kind) << name;
  }
  EXPECT_EQ(header_canonical_name(HeaderKind::kOther), "");
}

TEST(HeaderKind, EveryCompactFormBothCases) {
  for (const auto& [c, kind] : kCompact) {
    std::string lc(1, c);
    std::string uc(1, static_cast<char>(c - 32));
    EXPECT_EQ(header_kind_from_name(lc), kind) << lc;
    EXPECT_EQ(header_kind_from_name(uc), kind) << uc;
  }
}

TEST(HeaderKind, UnassignedLettersAreUnknown) {
  for (char c : std::string_view("ghpqwz")) {
    std::string s(1, c);
    EXPECT_EQ(header_kind_from_name(s), HeaderKind::kOther) << s;
  }
  for (std::string_view s : {"1", "-", "!", "%"}) EXPECT_EQ(header_kind_from_name(s), HeaderKind::kOther) << s;
}

TEST(HeaderKind, UnknownNames) {
  for (std::string_view s : {"X-Custom",
                             "Vias",
                             "Vi",
                             "Viaa",
                             "Call-Id-",
                             "CallID",
                             "Call_ID",
                             "Content-Lengths",
                             "Content-Lengt",
                             "P-Asserted-Identity",
                             "Privacy",
                             "Ta",
                             "Fro",
                             "Routes",
                             "Record-Routes",
                             "Max_Forwards",
                             "Max-Forwardz",
                             "0Via",
                             "-Via",
                             "ReqUIRE2",
                             "Aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                             "Session-Expires-And-A-Very-Long-Suffix-Here"}) {
    EXPECT_EQ(header_kind_from_name(s), HeaderKind::kOther) << s;
  }
  // Same length and first letter as a known name, other token characters in the '-' position.
  for (std::string_view s : {"Call~ID", "Call.ID", "Call_ID", "Call%ID", "Max.Forwards", "Content_Type"})
    EXPECT_EQ(header_kind_from_name(s), HeaderKind::kOther) << s;
}

TEST(HeaderKind, EmptyName) {
  EXPECT_EQ(header_kind_from_name(""), HeaderKind::kOther);
  EXPECT_EQ(header_kind_from_name(std::string_view{}), HeaderKind::kOther);
}

// ---------------------------------------------------------------------------------------------
// Methods (RFC 3261 §7.1: case-sensitive)

TEST(Method, KnownNames) {
  constexpr std::pair<std::string_view, Method> kMethods[] = {
      {"INVITE", Method::kInvite},       {"ACK", Method::kAck},           {"BYE", Method::kBye},
      {"CANCEL", Method::kCancel},       {"REGISTER", Method::kRegister}, {"OPTIONS", Method::kOptions},
      {"INFO", Method::kInfo},           {"UPDATE", Method::kUpdate},     {"PRACK", Method::kPrack},
      {"SUBSCRIBE", Method::kSubscribe}, {"NOTIFY", Method::kNotify},     {"REFER", Method::kRefer},
      {"MESSAGE", Method::kMessage},     {"PUBLISH", Method::kPublish},
  };
  for (const auto& [name, m] : kMethods) {
    EXPECT_EQ(method_from_name(name), m) << name;
    EXPECT_EQ(method_name(m), name);
    EXPECT_EQ(method_from_name(lower(name)), Method::kOther) << lower(name);
    EXPECT_EQ(method_from_name(alternate(name)), Method::kOther) << alternate(name);
  }
  EXPECT_EQ(method_name(Method::kOther), "");
  for (std::string_view s : {"", "INVITES", "INVIT", "NEWMETHOD", "ACK ", " ACK", "BYE\r"})
    EXPECT_EQ(method_from_name(s), Method::kOther) << s;
}

// ---------------------------------------------------------------------------------------------
// Character classes (RFC 3261 §25.1)

TEST(Charset, TokenAndWord) {
  // token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~" )
  for (char c : std::string_view("aZ09-.!%*_+`'~")) EXPECT_TRUE(is_token_char(c)) << c;
  for (char c : std::string_view(" \t\r\n\"(),/:;<=>?@[\\]{}")) EXPECT_FALSE(is_token_char(c)) << c;
  EXPECT_FALSE(is_token_char('\0'));
  EXPECT_FALSE(is_token_char('\x80'));
  // word adds ( ) < > : \ DQUOTE / [ ] ? { }
  for (char c : std::string_view("()<>:\\\"/[]?{}")) EXPECT_TRUE(is_word_char(c)) << c;
  for (char c : std::string_view(" ;,@=")) EXPECT_FALSE(is_word_char(c)) << c;
  EXPECT_TRUE(is_token("INVITE"));
  EXPECT_FALSE(is_token(""));
  EXPECT_FALSE(is_token("IN VITE"));
}

TEST(Charset, UriClasses) {
  // user-unreserved = "&" / "=" / "+" / "$" / "," / ";" / "?" / "/"
  for (char c : std::string_view("&=+$,;?/-_.!~*'()aZ9")) EXPECT_TRUE(is_user_char(c)) << c;
  for (char c : std::string_view(":@[]<>\" %#")) EXPECT_FALSE(is_user_char(c)) << c;
  // password adds "&" / "=" / "+" / "$" / "," but not ";" "?" "/"
  for (char c : std::string_view("&=+$,")) EXPECT_TRUE(is_password_char(c)) << c;
  for (char c : std::string_view(";?/:@")) EXPECT_FALSE(is_password_char(c)) << c;
  // param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$"
  for (char c : std::string_view("[]/:&+$")) EXPECT_TRUE(is_param_char(c)) << c;
  for (char c : std::string_view(";=?@,")) EXPECT_FALSE(is_param_char(c)) << c;
  // hnv-unreserved = "[" / "]" / "/" / "?" / ":" / "+" / "$"
  for (char c : std::string_view("[]/?:+$")) EXPECT_TRUE(is_header_char(c)) << c;
  for (char c : std::string_view("&=;@,")) EXPECT_FALSE(is_header_char(c)) << c;
}

TEST(Charset, Helpers) {
  EXPECT_TRUE(iequals("Content-Length", "content-length"));
  EXPECT_TRUE(iequals("", ""));
  EXPECT_FALSE(iequals("Via", "Vias"));
  EXPECT_FALSE(iequals("a", "b"));
  EXPECT_FALSE(iequals("[", "{"));  // differ by 0x20 but are not letters
  EXPECT_EQ(hex_value('0'), 0);
  EXPECT_EQ(hex_value('9'), 9);
  EXPECT_EQ(hex_value('a'), 10);
  EXPECT_EQ(hex_value('F'), 15);
  EXPECT_EQ(hex_value('g'), -1);
  EXPECT_EQ(ascii_lower('Q'), 'q');
  EXPECT_EQ(ascii_lower('@'), '@');
  EXPECT_EQ(ascii_lower('['), '[');
  // %HH escapes where allowed
  EXPECT_TRUE(all_chars("a%41b", is_user_char, true));
  EXPECT_FALSE(all_chars("a%41b", is_user_char, false));
  EXPECT_FALSE(all_chars("a%4", is_user_char, true));
  EXPECT_FALSE(all_chars("a%", is_user_char, true));
  EXPECT_FALSE(all_chars("%g0", is_user_char, true));
  EXPECT_TRUE(all_chars("%00", is_user_char, true));
  EXPECT_TRUE(all_chars("", is_user_char, true));
}

}  // namespace
}  // namespace pinhole::sip
