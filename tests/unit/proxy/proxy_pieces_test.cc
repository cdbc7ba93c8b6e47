// The proxy's pure pieces: branches, our identity, request rewriting, raw error responses.
#include <gtest/gtest.h>

#include "proxy/branch.h"
#include "proxy/local_identity.h"
#include "proxy/raw_error_response.h"
#include "proxy/request_rewrite.h"

namespace pinhole::proxy {
namespace {

sip::MessagePtr parse(std::string_view text) {
  auto m = sip::Message::parse(text, sip::Framing::kDatagram);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().what);
  return std::move(*m);
}

transport::LocalSocket socket(uint32_t id, net::Transport t, const char* host, uint16_t port) {
  transport::LocalSocket s;
  s.id = id;
  s.transport = t;
  s.bound = *net::Endpoint::parse(std::string(host) + ":" + std::to_string(port));
  s.advertised_host = host;
  s.advertised_port = port;
  return s;
}

constexpr std::string_view kInvite =
    "INVITE sip:bob@example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.168.1.10:5062;branch=z9hG4bK-1;rport\r\n"
    "Route: <sip:tok123@203.0.113.10;lr>, <sip:core.example.com;lr>\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:alice@example.com>;tag=a1\r\n"
    "To: <sip:bob@example.com>\r\n"
    "Call-ID: c1@x\r\n"
    "CSeq: 1 INVITE\r\n"
    "Contact: <sip:alice@192.168.1.10:5062>\r\n"
    "Content-Length: 0\r\n\r\n";

TEST(Branch, CarriesWorkerAndLoopHash) {
  std::string b = make_branch(3, 0xdeadbeef, 42);
  EXPECT_TRUE(b.starts_with("z9hG4bK"));
  EXPECT_EQ(branch_worker(b), 3);
  EXPECT_EQ(branch_loop_hash(b), 0xdeadbeefu);
  EXPECT_FALSE(branch_worker("z9hG4bK-other").has_value());
  EXPECT_NE(make_branch(3, 1, 1), make_branch(3, 1, 2));
}

TEST(Branch, LoopHashChangesWithRequestUri) {
  auto a = parse(kInvite);
  std::string other(kInvite);
  other.replace(other.find("bob@"), 4, "carol@");
  auto b = parse(other);
  EXPECT_NE(loop_hash(*a), loop_hash(*b));
  EXPECT_EQ(loop_hash(*a), loop_hash(*parse(kInvite)));
}

TEST(LocalIdentity, MatchesOurAddressesAndDefaultPorts) {
  LocalIdentity us(
      {socket(0, net::Transport::kUdp, "203.0.113.10", 5060), socket(1, net::Transport::kTls, "203.0.113.10", 5061)});
  EXPECT_TRUE(us.is_us(*sip::parse_uri("sip:203.0.113.10")));
  EXPECT_TRUE(us.is_us(*sip::parse_uri("sip:x@203.0.113.10:5060;lr")));
  EXPECT_TRUE(us.is_us(*sip::parse_uri("sips:203.0.113.10")));
  EXPECT_FALSE(us.is_us(*sip::parse_uri("sip:203.0.113.10:5070")));
  EXPECT_FALSE(us.is_us(*sip::parse_uri("sip:203.0.113.11")));
  EXPECT_EQ(canonical_host("[2001:DB8:0::1]"), "2001:db8::1");
}

TEST(RequestRewrite, AnalysesOurRoutes) {
  LocalIdentity us({socket(0, net::Transport::kUdp, "203.0.113.10", 5060)});
  auto m = parse(kInvite);
  RouteAnalysis r = analyse_routes(*m, us);
  EXPECT_EQ(r.our_routes, 1u);
  EXPECT_EQ(r.token, "tok123");
  EXPECT_FALSE(r.strict_router);
}

TEST(RequestRewrite, FixesViaPopsRouteAddsRecordRouteAndVia) {
  LocalIdentity us({socket(0, net::Transport::kUdp, "203.0.113.10", 5060)});
  auto m = parse(kInvite);
  auto src = *net::Endpoint::parse("198.51.100.7:40000");
  Rewrite rw;
  rw.via_fix = via_fix_for(**m->top_via(), src, false);
  EXPECT_TRUE(rw.via_fix.received);
  EXPECT_TRUE(rw.via_fix.rport);  // the client asked with a bare rport
  rw.pop_routes = 1;
  auto out_socket = socket(1, net::Transport::kTcp, "203.0.113.10", 5060);
  rw.via = via_value(out_socket, "z9hG4bKph01.1");
  rw.record_routes = {proxy_uri(out_socket, "tok", false)};
  std::string bytes = apply_rewrite(*m, rw);
  auto out = parse(bytes);
  auto vias = out->vias();
  ASSERT_TRUE(vias.ok());
  ASSERT_EQ(vias->size(), 2u);
  EXPECT_EQ((*vias)[0].transport, "TCP");
  EXPECT_EQ((*vias)[0].branch, "z9hG4bKph01.1");
  EXPECT_EQ((*vias)[1].received, "198.51.100.7");
  EXPECT_EQ((*vias)[1].rport_value, "40000");
  auto routes = out->routes();
  ASSERT_EQ(routes->size(), 1u);
  EXPECT_EQ((*routes)[0].uri.host, "core.example.com");
  auto rr = out->record_routes();
  ASSERT_EQ(rr->size(), 1u);
  EXPECT_EQ(rr->front().uri.user, "tok");
  EXPECT_EQ(rr->front().uri.transport(), "tcp");
  EXPECT_EQ(**out->max_forwards(), 69);
}

TEST(RequestRewrite, StrictRouterRequestUriIsRestored) {
  LocalIdentity us({socket(0, net::Transport::kUdp, "203.0.113.10", 5060)});
  auto m = parse(
      "BYE sip:tok9@203.0.113.10:5060;lr SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 203.0.113.20;branch=z9hG4bK-2\r\n"
      "Route: <sip:alice@192.168.1.10:5062>\r\n"
      "From: <sip:b@x>;tag=1\r\nTo: <sip:a@x>;tag=2\r\nCall-ID: c\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n");
  RouteAnalysis r = analyse_routes(*m, us);
  EXPECT_TRUE(r.strict_router);
  EXPECT_EQ(r.token, "tok9");
  Rewrite rw;
  rw.strict_route = true;
  rw.via = "SIP/2.0/UDP 203.0.113.10:5060;branch=z9hG4bKph00x.1";
  auto out = parse(apply_rewrite(*m, rw));
  EXPECT_EQ(out->request_uri().raw, "sip:alice@192.168.1.10:5062");
  EXPECT_TRUE(out->routes()->empty());
}

TEST(RequestRewrite, PopsBothOfOurRoutesFromOneField) {
  // Double Record-Route comes back as two values of one Route field: both ours, both removed.
  auto m = parse(
      "ACK sip:alice@192.168.1.10:5060;transport=TCP SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 203.0.113.20;branch=z9hG4bK-3\r\n"
      "Route: <sip:t@203.0.113.10:5060;lr>, <sip:t@203.0.113.10:5060;transport=tcp;lr>\r\n"
      "Route: <sip:next.example;lr>\r\n"
      "From: <sip:b@x>;tag=1\r\nTo: <sip:a@x>;tag=2\r\nCall-ID: c\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n");
  Rewrite rw;
  rw.pop_routes = 2;
  rw.via = "SIP/2.0/TCP 203.0.113.10:5060;branch=z9hG4bKph00x.1";
  auto out = parse(apply_rewrite(*m, rw));
  ASSERT_EQ(out->routes()->size(), 1u);
  EXPECT_EQ(out->routes()->front().uri.host, "next.example");
  Rewrite all;
  all.pop_routes = 3;
  all.via = rw.via;
  EXPECT_TRUE(parse(apply_rewrite(*m, all))->routes()->empty());
}

TEST(RequestRewrite, StripTopVia) {
  auto r = parse(
      "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 203.0.113.10;branch=z9hG4bKph00aa.1, SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK2\r\n"
      "From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>;tag=2\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
  auto out = parse(strip_top_via(*r));
  ASSERT_EQ(out->vias()->size(), 1u);
  EXPECT_EQ(out->vias()->front().host, "10.0.0.1");
}

TEST(RawErrorResponse, CopiesTheFieldsAResponseNeeds) {
  auto resp = raw_error_response(
      "INVITE sip:a@b SIP/7.0\r\nv: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\nf: <sip:x@y>;tag=1\r\n"
      "t: <sip:a@b>\r\ni: abc\r\nCSeq: 1 INVITE\r\nSubject: x\r\n\r\n",
      505, "pinhole");
  ASSERT_TRUE(resp.has_value());
  auto m = parse(*resp);
  EXPECT_EQ(m->status(), 505);
  EXPECT_EQ(*m->call_id(), "abc");
  EXPECT_EQ(m->header("Subject"), nullptr);
  EXPECT_FALSE(raw_error_response("SIP/2.0 200 OK\r\nVia: x\r\nCSeq: 1 A\r\n\r\n", 400, "p").has_value());
  EXPECT_FALSE(raw_error_response("INVITE sip:a@b SIP/2.0\r\nCSeq: 1 INVITE\r\n\r\n", 400, "p").has_value());
}

}  // namespace
}  // namespace pinhole::proxy
