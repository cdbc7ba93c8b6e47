// Editor: byte-range edits applied once at serialisation. Every edited output is parsed again and
// checked through the accessors; fields no edit touched must come out byte for byte.
#include "sip/editor.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace pinhole::sip {
namespace {

MessagePtr must_parse(std::string_view text, Framing framing = Framing::kDatagram) {
  auto r = Message::parse(text, framing);
  EXPECT_TRUE(r.ok()) << "should parse (" << (r.ok() ? "" : r.error().what) << "):\n" << text;
  return r.ok() ? std::move(r).value() : nullptr;
}

// The header lines of `before` not listed in `touched` (indexes) appear in `after`, unchanged and
// in the same order, and the start line is the same unless it was edited.
void expect_untouched_kept(const Message& before, const Message& after, std::set<size_t> touched = {},
                           bool start_line_edited = false) {
  if (!start_line_edited) {
    EXPECT_EQ(before.start_line(), after.start_line());
  }
  std::vector<std::string_view> want;
  for (size_t i = 0; i < before.headers().size(); ++i)
    if (!touched.contains(i)) want.push_back(before.headers()[i].line);
  size_t j = 0;
  for (const auto& h : after.headers())
    if (j < want.size() && h.line == want[j]) ++j;
  EXPECT_EQ(j, want.size()) << "untouched header line missing or changed: "
                            << (j < want.size() ? want[j] : std::string_view());
}

// Index of the first header field of `kind`.
size_t index_of(const Message& m, HeaderKind kind) {
  for (size_t i = 0; i < m.headers().size(); ++i)
    if (m.headers()[i].kind == kind) return i;
  ADD_FAILURE() << "no such header";
  return 0;
}

constexpr std::string_view kInvite =
    "INVITE sip:bob@biloxi.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bK776asdhds\r\n"
    "Max-Forwards: 70\r\n"
    "To: Bob <sip:bob@biloxi.com>\r\n"
    "From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
    "Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
    "CSeq: 314159 INVITE\r\n"
    "Contact: <sip:alice@10.0.0.5:5060;ob>;expires=60\r\n"
    "Content-Type: application/sdp\r\n"
    "Content-Length: 4\r\n"
    "\r\n"
    "v=0\n";

std::string replace_once(std::string_view text, std::string_view from, std::string_view to) {
  std::string s(text);
  size_t at = s.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  if (at != std::string::npos) s.replace(at, from.size(), to);
  return s;
}

// ---------------------------------------------------------------------------------------------
// No edits: the bytes go out as received.

TEST(Editor, RoundTripWithoutEdits) {
  std::string lf_only;
  for (char c : kInvite)
    if (c != '\r') lf_only.push_back(c);
  std::string binary = replace_once(kInvite, "Content-Length: 4\r\n\r\nv=0\n", "Content-Length: 5\r\n\r\n");
  binary.append(std::string("\0\r\n\xff\n", 5));
  const std::string messages[] = {
      std::string(kInvite),
      // folded, compact, odd spacing
      "REGISTER sip:registrar.biloxi.com SIP/2.0\r\n"
      "v:  SIP/2.0/UDP bobspc.biloxi.com:5060 ;branch=z9hG4bKnashds7,\r\n"
      "   SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK2\r\n"
      "t: Bob <sip:bob@biloxi.com>\r\n"
      "f:Bob <sip:bob@biloxi.com>;tag=456248\r\n"
      "i: 843817637684230@998sdasdh09\r\n"
      "CSeq :\t1826\r\n\tREGISTER\r\n"
      "m: <sip:bob@192.0.2.4>;expires=7200\r\n"
      "l: 0\r\n\r\n",
      lf_only,
      binary,
      "SIP/2.0 200 OK\r\n"
      "Via: SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK776asdhds;received=192.0.2.1\r\n"
      "To: Bob <sip:bob@biloxi.com>;tag=a6c85cf\r\n"
      "From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
      "Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
      "CSeq: 314159 INVITE\r\n"
      "Content-Length: 0\r\n\r\n",
  };
  for (const auto& text : messages) {
    auto m = must_parse(text);
    ASSERT_NE(m, nullptr);
    Editor e(*m);
    EXPECT_TRUE(e.empty());
    EXPECT_EQ(e.serialize(), text);
  }
  // A datagram's trailing octets are not part of the message.
  std::string trailing = std::string(kInvite) + "garbage after the body";
  auto m = must_parse(trailing);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Editor(*m).serialize(), kInvite);
}

// ---------------------------------------------------------------------------------------------
// Header fields

TEST(Editor, AddHeaderFirst) {
  auto m = must_parse(kInvite);
  ASSERT_NE(m, nullptr);
  Editor e(*m);
  e.add_header_first("Via", "SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1");
  EXPECT_FALSE(e.empty());
  std::string out = e.serialize();
  EXPECT_EQ(out, replace_once(kInvite, "SIP/2.0\r\nVia:",
                              "SIP/2.0\r\nVia: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1\r\nVia:"));
  auto r = must_parse(out);
  ASSERT_NE(r, nullptr);
  auto vias = r->vias();
  ASSERT_TRUE(vias.ok());
  ASSERT_EQ(vias->size(), 2u);
  EXPECT_EQ((*vias)[0].host, "proxy.example.com");
  EXPECT_EQ((*vias)[0].branch, "z9hG4bKp1");
  EXPECT_EQ((*vias)[1].raw, "SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bK776asdhds");
  EXPECT_EQ(r->body(), "v=0\n");
  expect_untouched_kept(*m, *r);
}

TEST(Editor, AddHeaderToMessageWithoutHeaders) {
  // Useless as a SIP message, but the editor must still write a well-formed one, whatever the
  // line ends (RFC 3261 §7.5 lets a recipient accept bare LF).
  for (std::string_view eol : {"\r\n", "\n"}) {
    std::string text = "OPTIONS sip:bob@biloxi.com SIP/2.0" + std::string(eol) + std::string(eol);
    auto m = must_parse(text, Framing::kStream);
    ASSERT_NE(m, nullptr);
    ASSERT_TRUE(m->headers().empty());
    for (bool first : {true, false}) {
      Editor e(*m);
      if (first) {
        e.add_header_first("Via", "SIP/2.0/TCP h.example.com;branch=z9hG4bK1");
      } else {
        e.add_header_last("Via", "SIP/2.0/TCP h.example.com;branch=z9hG4bK1");
      }
      std::string out = e.serialize();
      EXPECT_EQ(out, "OPTIONS sip:bob@biloxi.com SIP/2.0" + std::string(eol) +
                         "Via: SIP/2.0/TCP h.example.com;branch=z9hG4bK1\r\n" + std::string(eol))
          << (first ? "first" : "last") << " eol " << eol.size();
      auto r = must_parse(out, Framing::kStream);
      ASSERT_NE(r, nullptr);
      EXPECT_EQ(r->start_line(), "OPTIONS sip:bob@biloxi.com SIP/2.0");
      ASSERT_EQ(r->headers().size(), 1u);
      EXPECT_EQ((**r->top_via()).host, "h.example.com");
    }
  }
}

TEST(Editor, InsertsAtOneOffsetKeepRecordOrder) {
  auto m = must_parse(kInvite);
  ASSERT_NE(m, nullptr);
  Editor e(*m);
  e.add_header_first("Record-Route", "<sip:p2.example.com;lr>");
  e.add_header_first("Record-Route", "<sip:p1.example.com;lr>");
  auto r = must_parse(e.serialize());
  ASSERT_NE(r, nullptr);
  auto rr = r->record_routes();
  ASSERT_TRUE(rr.ok());
  ASSERT_EQ(rr->size(), 2u);
  EXPECT_EQ((*rr)[0].uri.host, "p2.example.com");
  EXPECT_EQ((*rr)[1].uri.host, "p1.example.com");
  expect_untouched_kept(*m, *r);
}

TEST(Editor, AddHeaderBefore) {
  auto m = must_parse(kInvite);
  ASSERT_NE(m, nullptr);
  Editor e(*m);
  e.add_header_before(*m->header(HeaderKind::kCallId), "Record-Route", "<sip:p.example.com;lr>");
  std::string out = e.serialize();
  EXPECT_EQ(out, replace_once(kInvite, "Call-ID:", "Record-Route: <sip:p.example.com;lr>\r\nCall-ID:"));
  auto r = must_parse(out);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->headers()[4].kind, HeaderKind::kRecordRoute);
  EXPECT_EQ(r->headers()[5].kind, HeaderKind::kCallId);
  auto rr = r->record_routes();
  ASSERT_TRUE(rr.ok());
  ASSERT_EQ(rr->size(), 1u);
  EXPECT_TRUE((*rr)[0].uri.loose_route());
  expect_untouched_kept(*m, *r);
}

TEST(Editor, AddHeaderLast) {
  auto m = must_parse(kInvite);
  ASSERT_NE(m, nullptr);
  Editor e(*m);
  e.add_header_last("X-Pinhole", "edge-1");
  std::string out = e.serialize();
  EXPECT_EQ(out, replace_once(kInvite, "Content-Length: 4\r\n\r\n", "Content-Length: 4\r\nX-Pinhole: edge-1\r\n\r\n"));
  auto r = must_parse(out);
  ASSERT_NE(r, nullptr);
  ASSERT_NE(r->header("X-Pinhole"), nullptr);
  EXPECT_EQ(r->header("X-Pinhole")->value, "edge-1");
  EXPECT_EQ(r->headers().back().name, "X-Pinhole");
  EXPECT_EQ(r->body(), "v=0\n");
  expect_untouched_kept(*m, *r);
}

TEST(Editor, AddHeaderLastAfterFoldedField) {
  std::string text =
      "OPTIONS sip:bob@biloxi.com SIP/2.0\r\n"
      "Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\n"
      "Subject: one\r\n two\r\n\r\n";
  auto m = must_parse(text);
  ASSERT_NE(m, nullptr);
  Editor e(*m);
  e.add_header_last("X-A", "b");
  std::string out = e.serialize();
  EXPECT_EQ(out, replace_once(text, " two\r\n\r\n", " two\r\nX-A: b\r\n\r\n"));
  auto r = must_parse(out);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->header(HeaderKind::kSubject)->value, "one\r\n two");
  EXPECT_EQ(r->header("X-A")->value, "b");
}

TEST(Editor, RemoveHeader) {
  auto m = must_parse(kInvite);
  ASSERT_NE(m, nullptr);
  Editor e(*m);
  e.remove_header(*m->header(HeaderKind::kContact));
  std::string out = e.serialize();
  EXPECT_EQ(out, replace_once(kInvite, "Contact: <sip:alice@10.0.0.5:5060;ob>;expires=60\r\n", ""));
  auto r = must_parse(out);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->header(HeaderKind::kContact), nullptr);
  EXPECT_TRUE(r->contacts()->empty());
  expect_untouched_kept(*m, *r, {index_of(*m, HeaderKind::kContact)});
}

TEST(Editor, RemoveFoldedHeader) {
  std::string text =
      "OPTIONS sip:bob@biloxi.com SIP/2.0\r\n"
      "Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\n"
      "Subject: one\r\n two\r\n"
      "CSeq: 1 OPTIONS\r\n\r\n";
  auto m = must_parse(text);
  ASSERT_NE(m, nullptr);
  Editor e(*m);
  e.remove_header(*m->header(HeaderKind::kSubject));
  std::string out = e.serialize();
  EXPECT_EQ(out, replace_once(text, "Subject: one\r\n two\r\n", ""));
  auto r = must_parse(out);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->cseq()->number, 1u);
}

TEST(Editor, ReplaceHeaderValue) {
  auto m = must_parse(kInvite);
  ASSERT_NE(m, nullptr);
  Editor e(*m);
  e.replace_header_value(*m->header(HeaderKind::kMaxForwards), "69");
  std::string out = e.serialize();
  EXPECT_EQ(out, replace_once(kInvite, "Max-Forwards: 70", "Max-Forwards: 69"));
  auto r = must_parse(out);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(**r->max_forwards(), 69);
  expect_untouched_kept(*m, *r, {index_of(*m, HeaderKind::kMaxForwards)});
}

TEST(Editor, ReplaceHeaderByInsertingBeforeAndRemoving) {
  // An insert and a replacement at the same offset: the insert comes first.
  auto m = must_parse(kInvite);
  ASSERT_NE(m, nullptr);
  Editor e(*m);
  const HeaderField& contact = *m->header(HeaderKind::kContact);
  e.remove_header(contact);
  e.add_header_before(contact, "Contact", "<sip:alice@203.0.113.7:40000;ob>;expires=60");
  std::string out = e.serialize();
  EXPECT_EQ(out, replace_once(kInvite, "<sip:alice@10.0.0.5:5060;ob>", "<sip:alice@203.0.113.7:40000;ob>"));
  auto r = must_parse(out);
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->contacts()->size(), 1u);
  EXPECT_EQ((*r->contacts())[0].uri.host, "203.0.113.7");
}

// ---------------------------------------------------------------------------------------------
// remove_list_value

constexpr std::string_view kRoutes =
    "INVITE sip:bob@biloxi.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1, SIP/2.0/UDP pc33.atlanta.com;branch=z9hG4bK1\r\n"
    "Route: <sip:a.example.com;lr>, <sip:b.example.com;lr> ,<sip:c.example.com;lr>\r\n"
    "Route: <sip:d.example.com;lr>\r\n"
    "CSeq: 1 INVITE\r\n"
    "Content-Length: 0\r\n\r\n";

struct ListRemoval {
  size_t route_index;  // into Message::routes()
  std::string_view from;
  std::string_view to;
  std::vector<std::string_view> hosts_left;
};

class RemoveListValue : public ::testing::TestWithParam<ListRemoval> {};

TEST_P(RemoveListValue, RemovesJustThatValue) {
  const ListRemoval& c = GetParam();
  auto m = must_parse(kRoutes);
  ASSERT_NE(m, nullptr);
  auto routes = m->routes();
  ASSERT_TRUE(routes.ok());
  ASSERT_EQ(routes->size(), 4u);
  const NameAddr& victim = (*routes)[c.route_index];
  // The field holding that value.
  const HeaderField* field = nullptr;
  for (const auto& h : m->headers())
    if (h.kind == HeaderKind::kRoute && victim.raw.data() >= h.value.data() &&
        victim.raw.data() < h.value.data() + h.value.size())
      field = &h;
  ASSERT_NE(field, nullptr);
  Editor e(*m);
  e.remove_list_value(*field, victim.raw);
  std::string out = e.serialize();
  EXPECT_EQ(out, replace_once(kRoutes, c.from, c.to));
  auto r = must_parse(out);
  ASSERT_NE(r, nullptr);
  auto left = r->routes();
  ASSERT_TRUE(left.ok());
  ASSERT_EQ(left->size(), c.hosts_left.size());
  for (size_t i = 0; i < c.hosts_left.size(); ++i) EXPECT_EQ((*left)[i].uri.host, c.hosts_left[i]);
  EXPECT_EQ(r->vias()->size(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Routes, RemoveListValue,
                         ::testing::Values(ListRemoval{0,
                                                       "Route: <sip:a.example.com;lr>, <sip:b",
                                                       "Route: <sip:b",
                                                       {"b.example.com", "c.example.com", "d.example.com"}},
                                           ListRemoval{1,
                                                       "<sip:a.example.com;lr>, <sip:b.example.com;lr> ,<sip:c",
                                                       "<sip:a.example.com;lr>, <sip:c",
                                                       {"a.example.com", "c.example.com", "d.example.com"}},
                                           ListRemoval{2,
                                                       "<sip:b.example.com;lr> ,<sip:c.example.com;lr>\r\n",
                                                       "<sip:b.example.com;lr>\r\n",
                                                       {"a.example.com", "b.example.com", "d.example.com"}},
                                           ListRemoval{3,
                                                       "Route: <sip:d.example.com;lr>\r\n",
                                                       "",
                                                       {"a.example.com", "b.example.com", "c.example.com"}}));

TEST(Editor, RemoveTopViaValueSharingALine) {
  // What a proxy does to a response: remove its own Via, the first value of a two-value line.
  auto m = must_parse(kRoutes);
  ASSERT_NE(m, nullptr);
  auto top = m->top_via();
  ASSERT_TRUE(top.ok());
  Editor e(*m);
  e.remove_list_value(*m->header(HeaderKind::kVia), (*top)->raw);
  std::string out = e.serialize();
  EXPECT_EQ(out, replace_once(kRoutes, "SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1, ", ""));
  auto r = must_parse(out);
  ASSERT_NE(r, nullptr);
  ASSERT_EQ(r->vias()->size(), 1u);
  EXPECT_EQ((*r->top_via())->host, "pc33.atlanta.com");
  expect_untouched_kept(*m, *r, {0});
}

TEST(Editor, RemoveListValueAcrossFold) {
  std::string text =
      "OPTIONS sip:bob@biloxi.com SIP/2.0\r\n"
      "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1 ,\r\n SIP/2.0/UDP b.example.com;branch=z9hG4bK2\r\n"
      "CSeq: 1 OPTIONS\r\n\r\n";
  auto m = must_parse(text);
  ASSERT_NE(m, nullptr);
  auto vias = m->vias();
  ASSERT_TRUE(vias.ok());
  ASSERT_EQ(vias->size(), 2u);
  Editor first(*m);
  first.remove_list_value(*m->header(HeaderKind::kVia), (*vias)[0].raw);
  auto r1 = must_parse(first.serialize());
  ASSERT_NE(r1, nullptr);
  ASSERT_EQ(r1->vias()->size(), 1u);
  EXPECT_EQ((*r1->top_via())->host, "b.example.com");
  EXPECT_EQ(r1->header(HeaderKind::kVia)->value, "SIP/2.0/UDP b.example.com;branch=z9hG4bK2");

  Editor second(*m);
  second.remove_list_value(*m->header(HeaderKind::kVia), (*vias)[1].raw);
  auto r2 = must_parse(second.serialize());
  ASSERT_NE(r2, nullptr);
  ASSERT_EQ(r2->vias()->size(), 1u);
  EXPECT_EQ(r2->header(HeaderKind::kVia)->value, "SIP/2.0/UDP a.example.com;branch=z9hG4bK1");
  // No white space is left between the remaining value and the line end.
  EXPECT_EQ(second.serialize(), replace_once(text, " ,\r\n SIP/2.0/UDP b.example.com;branch=z9hG4bK2", ""));
}

// ---------------------------------------------------------------------------------------------
// Via parameters

TEST(Editor, SetViaParamAddsNewParam) {
  auto m = must_parse(kInvite);
  ASSERT_NE(m, nullptr);
  Editor e(*m);
  e.set_via_param(**m->top_via(), "received", "203.0.113.7");
  std::string out = e.serialize();
  EXPECT_EQ(out,
            replace_once(kInvite, "branch=z9hG4bK776asdhds\r\n", "branch=z9hG4bK776asdhds;received=203.0.113.7\r\n"));
  auto r = must_parse(out);
  ASSERT_NE(r, nullptr);
  const Via& v = **r->top_via();
  EXPECT_TRUE(v.has_received);
  EXPECT_EQ(v.received, "203.0.113.7");
  EXPECT_EQ(v.branch, "z9hG4bK776asdhds");
  EXPECT_TRUE(v.has_rport);
  expect_untouched_kept(*m, *r, {0});
}

TEST(Editor, SetViaParamFillsFlagParam) {
  // RFC 3581 §4: the bare rport gets the source port.
  auto m = must_parse(kInvite);
  ASSERT_NE(m, nullptr);
  Editor e(*m);
  e.set_via_param(**m->top_via(), "rport", "40000");
  e.set_via_param(**m->top_via(), "received", "203.0.113.7");
  std::string out = e.serialize();
  EXPECT_EQ(out, replace_once(kInvite, "10.0.0.5:5060;rport;branch=z9hG4bK776asdhds",
                              "10.0.0.5:5060;rport=40000;branch=z9hG4bK776asdhds;received=203.0.113.7"));
  auto r = must_parse(out);
  ASSERT_NE(r, nullptr);
  const Via& v = **r->top_via();
  EXPECT_EQ(v.rport_value, "40000");
  EXPECT_EQ(v.received, "203.0.113.7");
  EXPECT_EQ(v.host, "10.0.0.5");
  EXPECT_EQ(v.port, 5060);
}

TEST(Editor, SetViaParamReplacesExistingValue) {
  std::string text = replace_once(kInvite, ";rport;", ";rport=1111 ; received=192.0.2.1;");
  auto m = must_parse(text);
  ASSERT_NE(m, nullptr);
  Editor e(*m);
  e.set_via_param(**m->top_via(), "RPORT", "2222");  // name matched case-insensitively
  e.set_via_param(**m->top_via(), "received", "198.51.100.1");
  std::string out = e.serialize();
  EXPECT_EQ(out, replace_once(text, ";rport=1111 ; received=192.0.2.1;", ";RPORT=2222 ;received=198.51.100.1;"));
  auto r = must_parse(out);
  ASSERT_NE(r, nullptr);
  const Via& v = **r->top_via();
  EXPECT_EQ(v.rport_value, "2222");
  EXPECT_EQ(v.received, "198.51.100.1");
  EXPECT_EQ(v.branch, "z9hG4bK776asdhds");
}

TEST(Editor, SetViaParamFlag) {
  auto m = must_parse(kInvite);
  ASSERT_NE(m, nullptr);
  Editor e(*m);
  e.set_via_param(**m->top_via(), "alias", "");
  auto r = must_parse(e.serialize());
  ASSERT_NE(r, nullptr);
  const Via& v = **r->top_via();
  EXPECT_TRUE(v.alias);
  EXPECT_EQ(v.raw, "SIP/2.0/UDP 10.0.0.5:5060;rport;branch=z9hG4bK776asdhds;alias");
}

TEST(Editor, SetViaParamOnSecondValueOfALine) {
  auto m = must_parse(kRoutes);
  ASSERT_NE(m, nullptr);
  auto vias = m->vias();
  ASSERT_TRUE(vias.ok());
  Editor e(*m);
  e.set_via_param((*vias)[1], "received", "192.0.2.99");
  e.set_via_param((*vias)[1], "branch", "z9hG4bKnew");
  std::string out = e.serialize();
  EXPECT_EQ(out, replace_once(kRoutes, "pc33.atlanta.com;branch=z9hG4bK1\r\n",
                              "pc33.atlanta.com;branch=z9hG4bKnew;received=192.0.2.99\r\n"));
  auto r = must_parse(out);
  ASSERT_NE(r, nullptr);
  auto after = r->vias();
  ASSERT_TRUE(after.ok());
  ASSERT_EQ(after->size(), 2u);
  EXPECT_EQ((*after)[0].raw, (*vias)[0].raw);
  EXPECT_FALSE((*after)[0].has_received);
  EXPECT_EQ((*after)[1].received, "192.0.2.99");
  EXPECT_EQ((*after)[1].branch, "z9hG4bKnew");
  expect_untouched_kept(*m, *r, {0});
}

TEST(Editor, SetViaParamWithQuotedExistingValue) {
  std::string text = replace_once(kInvite, ";rport;", ";x=\"a;b\";rport;");
  auto m = must_parse(text);
  ASSERT_NE(m, nullptr);
  Editor e(*m);
  e.set_via_param(**m->top_via(), "x", "c");
  std::string out = e.serialize();
  EXPECT_EQ(out, replace_once(text, ";x=\"a;b\";", ";x=c;"));
  auto r = must_parse(out);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ((**r->top_via()).param("x")->value, "c");
  EXPECT_TRUE((**r->top_via()).has_rport);
}

TEST(Editor, RemoveViaParam) {
  auto m = must_parse(kInvite);
  ASSERT_NE(m, nullptr);
  {
    Editor e(*m);
    e.remove_via_param(**m->top_via(), "rport");
    std::string out = e.serialize();
    EXPECT_EQ(out, replace_once(kInvite, ";rport;", ";"));
    auto r = must_parse(out);
    ASSERT_NE(r, nullptr);
    EXPECT_FALSE((**r->top_via()).has_rport);
    EXPECT_EQ((**r->top_via()).branch, "z9hG4bK776asdhds");
  }
  {
    Editor e(*m);
    e.remove_via_param(**m->top_via(), "branch");
    std::string out = e.serialize();
    EXPECT_EQ(out, replace_once(kInvite, ";branch=z9hG4bK776asdhds\r\n", "\r\n"));
    auto r = must_parse(out);
    ASSERT_NE(r, nullptr);
    EXPECT_FALSE((**r->top_via()).has_branch);
    EXPECT_TRUE((**r->top_via()).has_rport);
  }
  {
    Editor e(*m);
    e.remove_via_param(**m->top_via(), "received");  // absent: nothing to do
    EXPECT_TRUE(e.empty());
    EXPECT_EQ(e.serialize(), kInvite);
  }
}

// ---------------------------------------------------------------------------------------------
// URIs

TEST(Editor, SetUriHostPortAddsPort) {
  auto m = must_parse(kInvite);
  ASSERT_NE(m, nullptr);
  Editor e(*m);
  e.set_uri_host_port(m->request_uri(), "192.0.2.4", 5070);
  std::string out = e.serialize();
  EXPECT_EQ(out, replace_once(kInvite, "INVITE sip:bob@biloxi.com SIP/2.0", "INVITE sip:bob@192.0.2.4:5070 SIP/2.0"));
  auto r = must_parse(out);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->request_uri().user, "bob");
  EXPECT_EQ(r->request_uri().host, "192.0.2.4");
  EXPECT_EQ(r->request_uri().host_kind, HostKind::kIPv4);
  EXPECT_EQ(r->request_uri().port, 5070);
  for (size_t i = 0; i < m->headers().size(); ++i) EXPECT_EQ(m->headers()[i].line, r->headers()[i].line);
}

TEST(Editor, SetUriHostPortReplacesAndRemovesPort) {
  auto m = must_parse(kInvite);
  ASSERT_NE(m, nullptr);
  auto contacts = m->contacts();
  ASSERT_TRUE(contacts.ok());
  {
    Editor e(*m);
    e.set_uri_host_port((*contacts)[0].uri, "203.0.113.7", 40000);
    std::string out = e.serialize();
    EXPECT_EQ(out, replace_once(kInvite, "<sip:alice@10.0.0.5:5060;ob>", "<sip:alice@203.0.113.7:40000;ob>"));
    auto r = must_parse(out);
    ASSERT_NE(r, nullptr);
    const Contact& c = (*r->contacts())[0];
    EXPECT_EQ(c.uri.host, "203.0.113.7");
    EXPECT_EQ(c.uri.port, 40000);
    EXPECT_TRUE(c.uri.has_param("ob"));
    EXPECT_EQ(c.expires, "60");
    expect_untouched_kept(*m, *r, {index_of(*m, HeaderKind::kContact)});
  }
  {
    Editor e(*m);
    e.set_uri_host_port((*contacts)[0].uri, "edge.example.com", 0);
    std::string out = e.serialize();
    EXPECT_EQ(out, replace_once(kInvite, "<sip:alice@10.0.0.5:5060;ob>", "<sip:alice@edge.example.com;ob>"));
    auto r = must_parse(out);
    ASSERT_NE(r, nullptr);
    EXPECT_FALSE((*r->contacts())[0].uri.has_port());
    EXPECT_EQ((*r->contacts())[0].uri.host, "edge.example.com");
  }
}

TEST(Editor, SetUriHostPortIPv6) {
  std::string text =
      replace_once(kInvite, "sip:bob@biloxi.com SIP/2.0", "sip:bob@[2001:db8::1]:5060;transport=tcp SIP/2.0");
  auto m = must_parse(text);
  ASSERT_NE(m, nullptr);
  {
    Editor e(*m);
    e.set_uri_host_port(m->request_uri(), "[2001:db8::2]", 5062);
    std::string out = e.serialize();
    EXPECT_EQ(out, replace_once(text, "[2001:db8::1]:5060;", "[2001:db8::2]:5062;"));
    auto r = must_parse(out);
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->request_uri().host, "[2001:db8::2]");
    EXPECT_EQ(r->request_uri().host_kind, HostKind::kIPv6);
    EXPECT_EQ(r->request_uri().port, 5062);
    EXPECT_EQ(r->request_uri().transport(), "tcp");
  }
  {
    // The IPv6 reference and its port replaced by an IPv4 address without port.
    Editor e(*m);
    e.set_uri_host_port(m->request_uri(), "192.0.2.1", 0);
    auto r = must_parse(e.serialize());
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->request_uri().raw, "sip:bob@192.0.2.1;transport=tcp");
  }
}

TEST(Editor, ReplaceUri) {
  auto m = must_parse(kInvite);
  ASSERT_NE(m, nullptr);
  Editor e(*m);
  e.replace_uri(m->request_uri(), "sip:bob@192.0.2.4:5060;transport=udp");
  std::string out = e.serialize();
  EXPECT_EQ(out, replace_once(kInvite, "sip:bob@biloxi.com SIP/2.0", "sip:bob@192.0.2.4:5060;transport=udp SIP/2.0"));
  auto r = must_parse(out);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->request_uri().transport(), "udp");
}

// ---------------------------------------------------------------------------------------------
// Body

TEST(Editor, SetBodyUpdatesContentLength) {
  auto m = must_parse(kInvite);
  ASSERT_NE(m, nullptr);
  Editor e(*m);
  std::string sdp = "v=0\r\no=- 1 1 IN IP4 203.0.113.7\r\n";
  e.set_body(sdp);
  std::string out = e.serialize();
  EXPECT_EQ(out, replace_once(kInvite, "Content-Length: 4\r\n\r\nv=0\n",
                              "Content-Length: " + std::to_string(sdp.size()) + "\r\n\r\n" + sdp));
  auto r = must_parse(out, Framing::kStream);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->body(), sdp);
  EXPECT_EQ(r->header(HeaderKind::kContentLength)->value, std::to_string(sdp.size()));
  expect_untouched_kept(*m, *r, {index_of(*m, HeaderKind::kContentLength)});
}

TEST(Editor, SetBodyEmpty) {
  auto m = must_parse(kInvite);
  ASSERT_NE(m, nullptr);
  Editor e(*m);
  e.set_body("");
  std::string out = e.serialize();
  EXPECT_EQ(out, replace_once(kInvite, "Content-Length: 4\r\n\r\nv=0\n", "Content-Length: 0\r\n\r\n"));
  auto r = must_parse(out, Framing::kStream);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->body(), "");
}

TEST(Editor, SetBodyUpdatesCompactContentLength) {
  std::string text = replace_once(kInvite, "Content-Length: 4", "l: 4");
  auto m = must_parse(text);
  ASSERT_NE(m, nullptr);
  Editor e(*m);
  e.set_body("hello world");
  std::string out = e.serialize();
  EXPECT_EQ(out, replace_once(text, "l: 4\r\n\r\nv=0\n", "l: 11\r\n\r\nhello world"));
  auto r = must_parse(out, Framing::kStream);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->body(), "hello world");
}

TEST(Editor, SetBodyAddsContentLengthWhenAbsent) {
  std::string text = replace_once(kInvite, "Content-Length: 4\r\n", "");  // datagram: body is the rest
  auto m = must_parse(text);
  ASSERT_NE(m, nullptr);
  ASSERT_FALSE(m->has_content_length());
  ASSERT_EQ(m->body(), "v=0\n");
  Editor e(*m);
  e.set_body("v=1\r\n");
  std::string out = e.serialize();
  EXPECT_EQ(out,
            replace_once(text, "application/sdp\r\n\r\nv=0\n", "application/sdp\r\nContent-Length: 5\r\n\r\nv=1\r\n"));
  // Content-Length now frames it on a stream too.
  auto r = must_parse(out, Framing::kStream);
  ASSERT_NE(r, nullptr);
  EXPECT_TRUE(r->has_content_length());
  EXPECT_EQ(r->body(), "v=1\r\n");
  expect_untouched_kept(*m, *r);
}

TEST(Editor, SetBodyOnDatagramWithoutEmptyLine) {
  std::string text =
      "OPTIONS sip:bob@biloxi.com SIP/2.0\r\n"
      "Via: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\n"
      "CSeq: 1 OPTIONS\r\n";
  auto m = must_parse(text);
  ASSERT_NE(m, nullptr);
  Editor e(*m);
  e.set_body("hello");
  std::string out = e.serialize();
  EXPECT_EQ(out, text + "Content-Length: 5\r\n\r\nhello");
  auto r = must_parse(out, Framing::kStream);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->body(), "hello");
  EXPECT_EQ(r->cseq()->number, 1u);
}

// ---------------------------------------------------------------------------------------------
// Several edits in one pass, as the proxy makes them.

TEST(Editor, SeveralEditsInOnePass) {
  auto m = must_parse(kInvite);
  ASSERT_NE(m, nullptr);
  const Via& top = **m->top_via();
  const Contact& contact = (*m->contacts())[0];
  Editor e(*m);
  e.add_header_first("Via", "SIP/2.0/UDP 203.0.113.10;branch=z9hG4bKedge1");
  e.set_via_param(top, "rport", "40000");
  e.set_via_param(top, "received", "203.0.113.7");
  e.replace_header_value(*m->header(HeaderKind::kMaxForwards), "69");
  e.add_header_before(*m->header(HeaderKind::kTo), "Record-Route", "<sip:203.0.113.10;lr>");
  e.set_uri_host_port(m->request_uri(), "192.0.2.4", 5060);
  e.set_uri_host_port(contact.uri, "203.0.113.7", 40000);
  e.set_body("v=0\r\nc=IN IP4 203.0.113.10\r\n");
  e.add_header_last("X-Edge", "1");
  std::string out = e.serialize();

  std::string expected =
      "INVITE sip:bob@192.0.2.4:5060 SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 203.0.113.10;branch=z9hG4bKedge1\r\n"
      "Via: SIP/2.0/UDP 10.0.0.5:5060;rport=40000;branch=z9hG4bK776asdhds;received=203.0.113.7\r\n"
      "Max-Forwards: 69\r\n"
      "Record-Route: <sip:203.0.113.10;lr>\r\n"
      "To: Bob <sip:bob@biloxi.com>\r\n"
      "From: Alice <sip:alice@atlanta.com>;tag=1928301774\r\n"
      "Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
      "CSeq: 314159 INVITE\r\n"
      "Contact: <sip:alice@203.0.113.7:40000;ob>;expires=60\r\n"
      "Content-Type: application/sdp\r\n"
      "Content-Length: 28\r\n"
      "X-Edge: 1\r\n"
      "\r\n"
      "v=0\r\nc=IN IP4 203.0.113.10\r\n";
  EXPECT_EQ(out, expected);

  auto r = must_parse(out, Framing::kStream);
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r->request_uri().host, "192.0.2.4");
  auto vias = r->vias();
  ASSERT_TRUE(vias.ok());
  ASSERT_EQ(vias->size(), 2u);
  EXPECT_EQ((*vias)[0].branch, "z9hG4bKedge1");
  EXPECT_EQ((*vias)[1].rport_value, "40000");
  EXPECT_EQ((*vias)[1].received, "203.0.113.7");
  EXPECT_EQ(**r->max_forwards(), 69);
  EXPECT_EQ(r->record_routes()->size(), 1u);
  EXPECT_EQ((*r->contacts())[0].uri.port, 40000);
  EXPECT_EQ(r->body(), "v=0\r\nc=IN IP4 203.0.113.10\r\n");
  EXPECT_EQ((*r->from())->tag, "1928301774");
  expect_untouched_kept(*m, *r,
                        {0, index_of(*m, HeaderKind::kMaxForwards), index_of(*m, HeaderKind::kContact),
                         index_of(*m, HeaderKind::kContentLength)},
                        /*start_line_edited=*/true);
}

}  // namespace
}  // namespace pinhole::sip
