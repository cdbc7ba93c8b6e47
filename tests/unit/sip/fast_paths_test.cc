// The parser's fast paths (16-byte line and name searches, the one-pass host, URI and Via readers,
// the word-at-a-time header name lookup) must give exactly what the general code gives: these
// tests put inputs on both sides of each fast path's conditions and near buffer ends.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "sip/header_kind.h"
#include "sip/host.h"
#include "sip/message.h"
#include "sip/name_addr.h"
#include "sip/uri.h"
#include "sip/via.h"

namespace pinhole::sip {
namespace {

// Deterministic pseudo-random strings over a small alphabet that exercises the host rules.
std::vector<std::string> host_like_strings() {
  std::vector<std::string> out = {"example.com",
                                  "192.168.1.10",
                                  "a.b.c",
                                  "1.2.3.4",
                                  "255.255.255.255",
                                  "256.1.1.1",
                                  "a-b.c-d.e",
                                  "-a.b",
                                  "a-.b",
                                  "a..b",
                                  "a.b.",
                                  "a.b..",
                                  "1.2.3.4.",
                                  "01.02.03.004",
                                  "1a.2b",
                                  "x1.2c",
                                  "1.2.3",
                                  "1.2.3.4.5",
                                  ".",
                                  "-",
                                  "a.",
                                  "a.-b",
                                  "0.0.0.0",
                                  "1234.1.1.1",
                                  "averyveryverylonghostname.example.com",
                                  "1.2.3.4a",
                                  "a",
                                  "9"};
  const std::string_view alphabet = "ab19.-.:Z0";
  uint32_t state = 12345;
  for (int i = 0; i < 3000; ++i) {
    std::string s;
    state = state * 1103515245u + 12345u;
    size_t len = 1 + (state >> 16) % 24;
    for (size_t k = 0; k < len; ++k) {
      state = state * 1103515245u + 12345u;
      s += alphabet[(state >> 16) % alphabet.size()];
    }
    out.push_back(s);
  }
  return out;
}

size_t host_char_run(std::string_view s, size_t from) {
  size_t i = from;
  while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '-' || s[i] == '.')) ++i;
  return i - from;
}

TEST(FastPaths, ScanHostRunAgreesWithClassifyHost) {
  // Prefixes and suffixes move the host across the 16-byte block and the end of the text.
  const std::vector<std::string> prefixes = {"", "sip:", "sip:alice@", "SIP/2.0/UDP 0123456789abcdef "};
  const std::vector<std::string> suffixes = {"", ">", ";lr", ":5060;transport=udp>", ">;tag=0123456789abcdef"};
  for (const auto& host : host_like_strings()) {
    for (const auto& pre : prefixes) {
      for (const auto& post : suffixes) {
        std::string text = pre + host + post;
        HostRun run = scan_host_run(text, pre.size());
        size_t length = host_char_run(text, pre.size());
        auto kind = classify_host(std::string_view(text).substr(pre.size(), length));
        ASSERT_EQ(run.length, length) << text;
        ASSERT_EQ(run.kind.has_value(), kind.ok()) << text;
        if (kind.ok()) {
          ASSERT_EQ(*run.kind, *kind) << text;
        }
      }
    }
  }
}

TEST(FastPaths, KnownHeaderKindIsExactWhereTheLegacyLookupFoldsEveryByte) {
  EXPECT_EQ(known_header_kind("Call-ID"), HeaderKind::kCallId);
  EXPECT_EQ(known_header_kind("cALL-id"), HeaderKind::kCallId);
  EXPECT_EQ(known_header_kind("v"), HeaderKind::kVia);
  EXPECT_EQ(known_header_kind("Proxy-Authorization"), HeaderKind::kProxyAuthorization);
  EXPECT_EQ(known_header_kind("Via2"), HeaderKind::kOther);
  EXPECT_EQ(known_header_kind(""), HeaderKind::kOther);
  // OR-ing 0x20 into CR gives '-': the legacy lookup matches it, the indexer's must not.
  EXPECT_EQ(header_kind_from_name("Call\rID"), HeaderKind::kCallId);
  EXPECT_EQ(known_header_kind("Call\rID"), HeaderKind::kOther);
  EXPECT_EQ(known_header_kind("Call\x0dID"), HeaderKind::kOther);
  // Every full name, in three spellings, agrees with the legacy lookup.
  for (int k = 1; k < static_cast<int>(HeaderKind::kCount); ++k) {
    std::string name(header_canonical_name(static_cast<HeaderKind>(k)));
    std::string upper = name, lower = name;
    for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    for (const auto& n : {name, upper, lower}) {
      EXPECT_EQ(known_header_kind(n), static_cast<HeaderKind>(k)) << n;
      EXPECT_EQ(header_kind_from_name(n), static_cast<HeaderKind>(k)) << n;
    }
  }
}

TEST(FastPaths, HeaderNamesOnBothSidesOfTheFirstBlock) {
  // Names whose ':' is inside, at the end of and past the first 16 bytes of the line, and names
  // the fast path leaves to the general one (space before the colon, unknown names).
  std::string text =
      "OPTIONS sip:a@b.c SIP/2.0\r\n"
      "Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
      "Content-Encoding: gzip\r\n"
      "Content-Disposition: session\r\n"
      "Proxy-Authorization: Digest a=b\r\n"
      "Max-Forwards   : 10\r\n"
      "X-Very-Long-Extension-Header: 1\r\n"
      "vIA: SIP/2.0/TCP h2\r\n"
      "l: 0\r\n"
      "\r\n";
  auto r = Message::parse(text, Framing::kDatagram);
  ASSERT_TRUE(r.ok()) << r.error().what;
  const Message& m = **r;
  ASSERT_EQ(m.headers().size(), 8u);
  EXPECT_EQ(m.headers()[1].kind, HeaderKind::kContentEncoding);
  EXPECT_EQ(m.headers()[2].kind, HeaderKind::kContentDisposition);
  EXPECT_EQ(m.headers()[3].kind, HeaderKind::kProxyAuthorization);
  EXPECT_EQ(m.headers()[4].kind, HeaderKind::kMaxForwards);
  EXPECT_EQ(m.headers()[4].name, "Max-Forwards");
  EXPECT_EQ(m.headers()[5].kind, HeaderKind::kOther);
  EXPECT_EQ(m.headers()[6].kind, HeaderKind::kVia);
  EXPECT_EQ(m.headers()[7].kind, HeaderKind::kContentLength);
  EXPECT_EQ(m.header_count(HeaderKind::kVia), 2u);
  auto vias = m.vias();
  ASSERT_TRUE(vias.ok());
  EXPECT_EQ(vias->size(), 2u);
  // A CR inside a name is no '-' for the indexer: the line is malformed.
  EXPECT_FALSE(Message::parse("OPTIONS sip:a@b.c SIP/2.0\r\nCall\rID: x\r\n\r\n", Framing::kDatagram).ok());
}

TEST(FastPaths, LineEndsNearTheEndOfTheBuffer) {
  // Datagrams of every length around the 16-byte block size, ending right after a header line
  // (no empty line: the datagram frames it) or after the empty line.
  for (size_t pad = 0; pad < 40; ++pad) {
    for (bool empty_line : {false, true}) {
      std::string text = "A sip:a SIP/2.0\nv: SIP/2.0/UDP h\nX: " + std::string(pad, 'y') + "\n";
      if (empty_line) text += "\n";
      auto r = Message::parse(text, Framing::kDatagram);
      ASSERT_TRUE(r.ok()) << pad << ": " << r.error().what;
      ASSERT_EQ((*r)->headers().size(), 2u) << pad;
      EXPECT_EQ((*r)->headers()[1].value, std::string(pad, 'y')) << pad;
      EXPECT_EQ((*r)->body(), "") << pad;
    }
    // No line end at all after the start line's header: refused.
    std::string cut = "A sip:a SIP/2.0\nX: " + std::string(pad, 'y');
    EXPECT_FALSE(Message::parse(cut, Framing::kDatagram).ok()) << pad;
  }
  // Shorter than one block.
  EXPECT_FALSE(Message::parse("A sip:a SIP/2.0", Framing::kDatagram).ok());
  EXPECT_FALSE(Message::parse("A sip:a SIP/2.0\n", Framing::kDatagram).ok());
}

TEST(FastPaths, UriFastAndGeneralPathsGiveTheSameParts) {
  struct Case {
    std::string_view text;
    std::string_view user, host, port_text, params, headers;
    bool ok;
  };
  const Case cases[] = {
      {"sip:alice@example.com", "alice", "example.com", "", "", "", true},
      {"SIPS:alice@example.com:5061;transport=tls;lr", "alice", "example.com", "5061", ";transport=tls;lr", "", true},
      {"sip:example.com;lr", "", "example.com", "", ";lr", "", true},
      {"sip:a%40b@example.com", "a%40b", "example.com", "", "", "", true},  // escape: general path
      {"sip:a:pw@example.com", "a", "example.com", "", "", "", true},       // password: general path
      {"sip:a@b@c", "", "", "", "", "", false},                             // second '@'
      {"sip:a@[::1]:5060", "a", "[::1]", "5060", "", "", true},
      {"sip:a@example.com?subject=x", "a", "example.com", "", "", "subject=x", true},
      {"sip:a@example.com;", "", "", "", "", "", false},
      {"sip:a@example.com;x=", "", "", "", "", "", false},
      {"sip:a@example.com:", "", "", "", "", "", false},
      {"sip:a@example.com:70000", "", "", "", "", "", false},
      {"sip:@example.com", "", "", "", "", "", false},
      {"sip:a@1.2.3.999", "", "", "", "", "", false},
      {"sip:host;a=b;c", "", "host", "", ";a=b;c", "", true},
  };
  for (const auto& c : cases) {
    auto u = parse_uri(c.text);
    ASSERT_EQ(u.ok(), c.ok) << c.text;
    if (!c.ok) continue;
    EXPECT_EQ(u->user, c.user) << c.text;
    EXPECT_EQ(u->host, c.host) << c.text;
    EXPECT_EQ(u->port_text, c.port_text) << c.text;
    EXPECT_EQ(u->params, c.params) << c.text;
    EXPECT_EQ(u->headers, c.headers) << c.text;
    EXPECT_EQ(u->raw, c.text) << c.text;
    // The same URI inside a name-addr, where the fast path stops at the '>'.
    std::string value = "\"N\" <" + std::string(c.text) + ">;tag=t1";
    auto na = parse_single_name_addr(value);
    ASSERT_TRUE(na.ok()) << value;
    EXPECT_EQ(na->uri.host, c.host) << value;
    EXPECT_EQ(na->uri.params, c.params) << value;
    EXPECT_EQ(na->uri.raw, c.text) << value;
    EXPECT_EQ(na->tag, "t1") << value;
  }
}

TEST(FastPaths, ViaSentByFastAndGeneralPaths) {
  struct Case {
    std::string_view text;
    std::string_view host, port_text;
  };
  const Case cases[] = {
      {"SIP/2.0/UDP 192.168.1.10:5060;rport;branch=z9hG4bK1", "192.168.1.10", "5060"},
      {"SIP/2.0/UDP host.example.com;branch=z9hG4bK1", "host.example.com", ""},
      {"SIP/2.0/UDP host.example.com", "host.example.com", ""},
      {"SIP/2.0/UDP host : 5060;branch=z9hG4bK1", "host", "5060"},  // LWS: general path
      {"SIP/2.0/UDP host: 5060", "host", "5060"},
      {"SIP / 2.0 / UDP host", "host", ""},
      {"sip/2.0/udp host:1", "host", "1"},
      {"SIP/2.0/UDP  host", "host", ""},  // two spaces
      {"SIP/2.0/UDP [::1]:5060", "[::1]", "5060"},
  };
  for (const auto& c : cases) {
    Scanner s(c.text);
    auto v = parse_via(s);
    ASSERT_TRUE(v.ok()) << c.text << ": " << v.error().what;
    EXPECT_EQ(v->host, c.host) << c.text;
    EXPECT_EQ(v->port_text, c.port_text) << c.text;
    EXPECT_EQ(v->raw, c.text) << c.text;
  }
  for (std::string_view bad : {"SIP/2.0/UDP host:", "SIP/2.0/UDP host:99999", "SIP/2.0/UDP -host", "SIP/2.0/UDP"}) {
    Scanner s(bad);
    EXPECT_FALSE(parse_via(s).ok()) << bad;
  }
}

TEST(FastPaths, MessagesParsedOneAfterAnother) {
  // Each thread reuses the block of the last Message it freed; nothing of the old one may show.
  const std::string a =
      "INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h1;branch=z9hG4bK1\r\nFrom: <sip:a@x.y>;tag=1\r\n"
      "To: <sip:b@x.y>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\nContact: <sip:a@h1>\r\n\r\n";
  const std::string b = "OPTIONS sip:carol@example.org SIP/2.0\r\nVia: SIP/2.0/TCP h2\r\n\r\n";
  for (int round = 0; round < 3; ++round) {
    auto first = Message::parse(a, Framing::kDatagram);
    ASSERT_TRUE(first.ok());
    ASSERT_TRUE((*first)->contacts().ok());
    EXPECT_EQ((*first)->contacts()->size(), 1u);
    first = Error{};  // frees the message
    auto second = Message::parse(b, Framing::kDatagram);
    ASSERT_TRUE(second.ok());
    const Message& m = **second;
    EXPECT_EQ(m.headers().size(), 1u);
    EXPECT_EQ(m.header(HeaderKind::kFrom), nullptr);
    EXPECT_EQ(m.header(HeaderKind::kContact), nullptr);
    ASSERT_TRUE(m.contacts().ok());
    EXPECT_TRUE(m.contacts()->empty());
    EXPECT_FALSE(m.from().ok());
    EXPECT_EQ(m.request_uri().host, "example.org");
  }
}

}  // namespace
}  // namespace pinhole::sip
