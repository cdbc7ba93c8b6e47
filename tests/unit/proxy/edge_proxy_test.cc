// EdgeProxy end to end against a fake transport and a manual clock: what goes out where, for
// the edge's routing, NAT fixes, flow tokens, failover and CANCEL.
#include "proxy/edge_proxy.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <boost/asio/io_context.hpp>
#include <deque>
#include <optional>
#include <set>

#include "edge_proxy_fixture.h"
#include "fake_transport.h"
#include "nat/stun.h"

namespace pinhole::proxy {
namespace {

using net::Transport;

using fakes::FakeTransport;
using fakes::Sent;

using fakes::kClientTcp;
using fakes::kClientUdp;
using fakes::kUpstream;

using EdgeProxyTest = fakes::EdgeProxyFixture;

constexpr std::string_view kRegister =
    "REGISTER sip:lab.example SIP/2.0\r\n"
    "Via: SIP/2.0/UDP 192.168.1.10:5062;branch=z9hG4bK-r1\r\n"
    "Max-Forwards: 70\r\n"
    "From: <sip:alice@lab.example>;tag=a1\r\n"
    "To: <sip:alice@lab.example>\r\n"
    "Call-ID: reg1@192.168.1.10\r\n"
    "CSeq: 1 REGISTER\r\n"
    "Contact: <sip:alice@192.168.1.10:5062>\r\n"
    "Expires: 300\r\n"
    "Content-Length: 0\r\n\r\n";

TEST_F(EdgeProxyTest, RegisterGetsPathWithFlowTokenAndForcedRport) {
  deliver(kClientUdp, kRegister);
  Sent up = transport_.take();
  EXPECT_EQ(up.flow.remote.to_string(), "203.0.113.20:5060");
  auto reg = up.msg();
  auto vias = reg->vias();
  ASSERT_EQ(vias->size(), 2u);
  EXPECT_EQ((*vias)[1].received, "198.51.100.7");
  EXPECT_EQ((*vias)[1].rport_value, "40000");  // force_rport: always (the default)
  auto path = reg->paths();
  ASSERT_EQ(path->size(), 1u);
  auto flow = codec_.decode(path->front().uri.user);
  ASSERT_TRUE(flow.ok());
  EXPECT_EQ(flow->flow, kClientUdp);
  EXPECT_TRUE(path->front().uri.loose_route());

  deliver(kUpstream, answer(*reg, 200, "Contact: <sip:alice@192.168.1.10:5062>;expires=300\r\n"));
  Sent back = transport_.take();
  EXPECT_EQ(back.flow, kClientUdp);
  EXPECT_EQ(back.msg()->status(), 200);
  EXPECT_EQ(back.msg()->vias()->size(), 1u);
}

TEST_F(EdgeProxyTest, UpstreamRequestsNameTheWorkersOwnPortUnlessThePortIsForwarded) {
  transport_.client_port = 40123;
  deliver(kClientUdp, kRegister);
  EXPECT_EQ(transport_.take().msg()->top_via().value()->port, 40123);
  // Behind a port-forwarding NAT (advertised port differs) only the listener's port is reachable.
  transport_.sockets()[0].advertised_port = 15060;
  std::string again(kRegister);
  again.replace(again.find("z9hG4bK-r1"), 10, "z9hG4bK-r2");
  deliver(kClientUdp, again);
  EXPECT_EQ(transport_.take().msg()->top_via().value()->port, 15060);
}

TEST_F(EdgeProxyTest, InviteFromUpstreamFollowsTheFlowToken) {
  std::string token = *codec_.encode(kClientTcp);
  std::string invite =
      "INVITE sip:alice@192.168.1.10:5062 SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 203.0.113.20;branch=z9hG4bK-i1\r\n"
      "Route: <sip:" +
      token +
      "@203.0.113.10;lr>\r\n"
      "Max-Forwards: 69\r\nFrom: <sip:bob@lab.example>;tag=b1\r\nTo: <sip:alice@lab.example>\r\n"
      "Call-ID: call1\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@203.0.113.50>\r\nContent-Length: 0\r\n\r\n";
  deliver(kUpstream, invite);
  Sent trying = transport_.take();
  EXPECT_EQ(trying.flow, kUpstream);
  EXPECT_EQ(trying.msg()->status(), 100);
  Sent down = transport_.take();
  EXPECT_EQ(down.flow, kClientTcp);
  auto inv = down.msg();
  EXPECT_TRUE(inv->routes()->empty());
  EXPECT_EQ(inv->top_via().value()->transport, "TCP");
  // Double Record-Route: the client side (TCP socket) on top, the upstream side (UDP) below.
  auto rr = inv->record_routes();
  ASSERT_EQ(rr->size(), 2u);
  EXPECT_EQ((*rr)[0].uri.transport(), "tcp");
  EXPECT_EQ((*rr)[1].uri.transport(), "");
  EXPECT_EQ((*rr)[0].uri.user, token);

  deliver(kClientTcp, answer(*inv, 200));
  Sent ok = transport_.take();
  EXPECT_EQ(ok.flow, kUpstream);
  EXPECT_EQ(ok.msg()->status(), 200);
  ASSERT_FALSE(transport_.kept.empty());
  EXPECT_EQ(transport_.kept.back(), kClientTcp);  // the dialog keeps the client's connection
}

TEST_F(EdgeProxyTest, DeadFlowGets430AndTamperedToken403) {
  std::string token = *codec_.encode(kClientTcp);
  transport_.dead_connections.insert(kClientTcp.connection_id);
  auto options = [](std::string_view tok, std::string_view branch) {
    return "OPTIONS sip:alice@192.168.1.10 SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.20;branch=" + std::string(branch) +
           "\r\nRoute: <sip:" + std::string(tok) +
           "@203.0.113.10;lr>\r\nMax-Forwards: 70\r\nFrom: <sip:b@x>;tag=1\r\nTo: <sip:a@x>\r\n"
           "Call-ID: o1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
  };
  deliver(kUpstream, options(token, "z9hG4bK-o1"));
  EXPECT_EQ(transport_.take().msg()->status(), 430);
  std::string tampered = token;
  tampered[5] = tampered[5] == 'a' ? 'b' : 'a';
  deliver(kUpstream, options(tampered, "z9hG4bK-o2"));
  EXPECT_EQ(transport_.take().msg()->status(), 403);
  EXPECT_TRUE(transport_.sent.empty());
}

TEST_F(EdgeProxyTest, FailsOverOn503AndAnswers500WhenAllFail) {
  deliver(kClientUdp, kRegister);
  Sent first = transport_.take();
  EXPECT_EQ(first.flow.remote.to_string(), "203.0.113.20:5060");
  deliver(kUpstream, answer(*first.msg(), 503));
  Sent second = transport_.take();
  EXPECT_EQ(second.flow.remote.to_string(), "203.0.113.21:5060");
  net::Flow second_upstream{Transport::kUdp, 0, *net::Endpoint::parse("203.0.113.21:5060"), 0};
  deliver(second_upstream, answer(*second.msg(), 503));
  Sent final = transport_.take();
  EXPECT_EQ(final.flow, kClientUdp);
  EXPECT_EQ(final.msg()->status(), 500);  // RFC 3261 §16.7 step 6: a received 503 is not passed on
}

TEST_F(EdgeProxyTest, StunBindingRequestOnTheSipPortIsAnsweredWithTheSourceAddress) {
  nat::StunTransactionId id{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  std::string request;
  nat::append_binding_request(request, id, true);
  proxy_.on_binary_datagram(kClientUdp, 0, request);
  Sent answer = transport_.take();
  EXPECT_EQ(answer.flow, kClientUdp);
  auto decoded = nat::decode_binding_response(answer.bytes);
  ASSERT_TRUE(decoded.ok()) << decoded.error().what;
  EXPECT_EQ(decoded->type, nat::kStunBindingSuccess);
  EXPECT_EQ(decoded->transaction_id, id);
  EXPECT_EQ(decoded->reflexive(), kClientUdp.remote);
  EXPECT_EQ(metrics_.stun_answered().value(), 1u);
  // Anything else binary is dropped and counted, never answered.
  proxy_.on_binary_datagram(kClientUdp, 0, std::string("\x01\x01\x00\x00", 4));
  EXPECT_TRUE(transport_.sent.empty());
}

TEST_F(EdgeProxyTest, SanityAnswers) {
  std::string mf0(kRegister);
  mf0.replace(mf0.find("Max-Forwards: 70"), 16, "Max-Forwards: 0");
  deliver(kClientUdp, mf0);
  EXPECT_EQ(transport_.take().msg()->status(), 483);
  std::string req(kRegister);
  req.replace(req.find("Expires"), 0, "Proxy-Require: foo\r\n");
  deliver(kClientUdp, req);
  auto r = transport_.take().msg();
  EXPECT_EQ(r->status(), 420);
  ASSERT_NE(r->header("Unsupported"), nullptr);
  EXPECT_EQ(r->header("Unsupported")->value, "foo");
}

TEST_F(EdgeProxyTest, LoopIsDetected) {
  deliver(kClientUdp, kRegister);
  Sent up = transport_.take();
  // The same request coming back to us with our Via on it.
  deliver(kClientUdp, up.bytes);
  EXPECT_EQ(transport_.take().msg()->status(), 482);
}

// A request of the NATed client's call `call_id` (alice to bob, no To tag), as it sends it: the
// INVITE and the CANCEL of one call differ only in method (same branch and CSeq number).
std::string client_call_request(std::string_view method, std::string_view call_id, int cseq) {
  std::string r = std::string(method) +
                  " sip:bob@lab.example SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5062;branch=z9hG4bK-" +
                  std::string(call_id) +
                  ";rport\r\nMax-Forwards: 70\r\nFrom: <sip:alice@lab.example>;tag=a1\r\nTo: <sip:bob@lab.example>\r\n"
                  "Call-ID: " +
                  std::string(call_id) + "\r\nCSeq: " + std::to_string(cseq) + " " + std::string(method) + "\r\n";
  if (method == "INVITE") r += "Contact: <sip:alice@192.168.1.10:5062>\r\n";
  return r + "Content-Length: 0\r\n\r\n";
}

TEST_F(EdgeProxyTest, CancelIsPropagatedAfterAProvisional) {
  std::string invite = client_call_request("INVITE", "inv1", 7);
  deliver(kClientUdp, invite);
  EXPECT_EQ(transport_.take().msg()->status(), 100);
  Sent up = transport_.take();
  deliver(kUpstream, answer(*up.msg(), 180));
  EXPECT_EQ(transport_.take().msg()->status(), 180);
  std::string cancel = client_call_request("CANCEL", "inv1", 7);
  deliver(kClientUdp, cancel);
  EXPECT_EQ(transport_.take().msg()->status(), 200);
  auto c = transport_.take().msg();
  EXPECT_EQ(c->method(), sip::Method::kCancel);
  EXPECT_EQ(c->top_via().value()->branch, up.msg()->top_via().value()->branch);
  deliver(kUpstream, answer(*up.msg(), 487));
  // The proxy ACKs the 487 hop by hop and passes it on.
  bool saw_487 = false;
  while (!transport_.sent.empty()) {
    auto m = transport_.take().msg();
    if (m->is_response() && m->status() == 487) saw_487 = true;
  }
  EXPECT_TRUE(saw_487);
}

// The branch's INVITE and CANCEL go to their client transactions as bytes: the transactions'
// keys must still match the next hop's responses, and the hop-by-hop ACK must be built from the
// INVITE parsed on demand.
TEST_F(EdgeProxyTest, CancelledBranchMatchesItsResponsesAndAcksThe487) {
  std::string invite = client_call_request("INVITE", "inv2", 9);
  deliver(kClientUdp, invite);
  EXPECT_EQ(transport_.take().msg()->status(), 100);
  Sent up = transport_.take();
  auto up_invite = up.msg();
  ASSERT_NE(up_invite, nullptr);
  deliver(kUpstream, answer(*up_invite, 180));
  EXPECT_EQ(transport_.take().msg()->status(), 180);
  std::string cancel = client_call_request("CANCEL", "inv2", 9);
  deliver(kClientUdp, cancel);
  EXPECT_EQ(transport_.take().msg()->status(), 200);
  auto up_cancel = transport_.take().msg();
  ASSERT_NE(up_cancel, nullptr);
  ASSERT_EQ(up_cancel->method(), sip::Method::kCancel);
  // The 200 for the CANCEL matches its transaction and goes no further.
  deliver(kUpstream, answer(*up_cancel, 200));
  EXPECT_TRUE(transport_.sent.empty());
  deliver(kUpstream, answer(*up_invite, 487));
  std::optional<Sent> ack;
  bool saw_487 = false;
  while (!transport_.sent.empty()) {
    Sent s = transport_.take();
    auto m = s.msg();
    if (m->is_request() && m->method() == sip::Method::kAck) ack = std::move(s);
    if (m->is_response() && m->status() == 487) saw_487 = true;
  }
  EXPECT_TRUE(saw_487);
  ASSERT_TRUE(ack.has_value());
  auto a = ack->msg();
  EXPECT_EQ(ack->flow.remote, up.flow.remote);
  EXPECT_EQ(a->request_uri().raw, up_invite->request_uri().raw);
  EXPECT_EQ(a->top_via().value()->branch, up_invite->top_via().value()->branch);
  EXPECT_EQ(a->cseq()->number, 9u);
  EXPECT_EQ(a->to().value()->tag, "u1");
  // A retransmitted 487 is absorbed and ACKed again with the same bytes.
  deliver(kUpstream, answer(*up_invite, 487));
  ASSERT_EQ(transport_.sent.size(), 1u);
  EXPECT_EQ(transport_.take().bytes, ack->bytes);
}

TEST_F(EdgeProxyTest, TimerCCancelsABranchThatRingsTooLong) {
  config_.timer_c_seconds = 181;
  std::string invite =
      "INVITE sip:bob@lab.example SIP/2.0\r\nVia: SIP/2.0/UDP 192.168.1.10:5062;branch=z9hG4bK-tc;rport\r\n"
      "Max-Forwards: 70\r\nFrom: <sip:alice@lab.example>;tag=a1\r\nTo: <sip:bob@lab.example>\r\n"
      "Call-ID: tc1\r\nCSeq: 1 INVITE\r\nContact: <sip:alice@192.168.1.10:5062>\r\nContent-Length: 0\r\n\r\n";
  deliver(kClientUdp, invite);
  EXPECT_EQ(transport_.take().msg()->status(), 100);
  Sent up = transport_.take();
  clock_.advance(std::chrono::seconds(100));
  deliver(kUpstream, answer(*up.msg(), 180));  // restarts Timer C
  EXPECT_EQ(transport_.take().msg()->status(), 180);
  ASSERT_TRUE(proxy_.next_deadline().has_value());
  clock_.advance(std::chrono::seconds(180));
  proxy_.advance();
  EXPECT_TRUE(transport_.sent.empty()) << "Timer C must restart on the 180";
  clock_.advance(std::chrono::seconds(2));
  proxy_.advance();
  bool cancel = false, timeout = false;
  while (!transport_.sent.empty()) {
    auto m = transport_.take().msg();
    if (m->is_request() && m->method() == sip::Method::kCancel) cancel = true;
    if (m->is_response() && m->status() == 408) timeout = true;
  }
  EXPECT_TRUE(cancel);
  EXPECT_TRUE(timeout);
}

TEST_F(EdgeProxyTest, AliasOfATrustedTcpPeerCarriesRequestsWithoutToken) {
  config_.alias = AliasPolicy::kTrusted;
  config_.trusted_peers = {*net::Address::parse("198.51.100.8")};
  // The client's REGISTER over TCP with ;alias: its sent-by now names the connection.
  std::string reg(kRegister);
  reg.replace(reg.find("SIP/2.0/UDP 192.168.1.10:5062;branch=z9hG4bK-r1"), 48,
              "SIP/2.0/TCP 198.51.100.8:5070;branch=z9hG4bK-r1;alias");
  deliver(kClientTcp, reg);
  transport_.take();
  std::string invite =
      "INVITE sip:alice@198.51.100.8:5070;transport=tcp SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 203.0.113.20;branch=z9hG4bK-i9\r\n"
      "Max-Forwards: 69\r\nFrom: <sip:bob@lab.example>;tag=b1\r\nTo: <sip:alice@lab.example>\r\n"
      "Call-ID: call9\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@203.0.113.50>\r\nContent-Length: 0\r\n\r\n";
  deliver(kUpstream, invite);
  EXPECT_EQ(transport_.take().msg()->status(), 100);
  EXPECT_EQ(transport_.take().flow, kClientTcp);

  // Without trust the alias is ignored: the request goes by address (a new connection).
  config_.trusted_peers.clear();
  EXPECT_FALSE(alias_allowed(config_, Transport::kTcp, *net::Address::parse("198.51.100.8")));
  EXPECT_TRUE(alias_allowed(ProxyConfig{}, Transport::kTls, *net::Address::parse("198.51.100.8")));
  EXPECT_FALSE(alias_allowed(ProxyConfig{}, Transport::kTcp, *net::Address::parse("198.51.100.8")));
}

}  // namespace
}  // namespace pinhole::proxy
