// How long the edge keeps what it knows about a transaction and a call: everything goes once
// the transactions have retired, a call outlives its server transaction while a branch still
// lives, and a retired branch's Timer C never fires on a later call.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <string_view>

#include "edge_proxy_fixture.h"
#include "fake_transport.h"
#include "proxy/edge_proxy.h"

namespace pinhole::proxy {
namespace {

using fakes::kClientTcp;
using fakes::kClientUdp;
using fakes::kUpstream;
using fakes::Sent;

using EdgeProxyLifetimeTest = fakes::EdgeProxyFixture;

std::string request(std::string_view method, std::string_view call_id, std::string_view branch, uint32_t cseq,
                    std::string_view to_tag = "", std::string_view via_transport = "UDP") {
  std::string to = "<sip:bob@lab.example>";
  if (!to_tag.empty()) to.append(";tag=").append(to_tag);
  return std::string(method) + " sip:bob@lab.example SIP/2.0\r\nVia: SIP/2.0/" + std::string(via_transport) +
         " 192.168.1.10:5062;branch=" + std::string(branch) +
         ";rport\r\n"
         "Max-Forwards: 70\r\nFrom: <sip:alice@lab.example>;tag=a1\r\nTo: " +
         to + "\r\nCall-ID: " + std::string(call_id) + "\r\nCSeq: " + std::to_string(cseq) + " " + std::string(method) +
         "\r\n"
         "Contact: <sip:alice@192.168.1.10:5062>\r\nContent-Length: 0\r\n\r\n";
}

uint16_t status_of(const Sent& s) {
  auto m = s.msg();
  return m && m->is_response() ? m->status() : 0;
}

TEST_F(EdgeProxyLifetimeTest, WholeCallLeavesNothingBehind) {
  deliver(kClientUdp, request("INVITE", "life1", "z9hG4bK-l1", 1));
  EXPECT_EQ(status_of(transport_.take()), 100);
  Sent invite = transport_.take();
  EXPECT_EQ(invite.flow.remote, kUpstream.remote);
  EXPECT_EQ(proxy_.calls(), 1u);
  EXPECT_EQ(proxy_.transactions(), 2u);

  deliver(kUpstream, answer(*invite.msg(), 100));
  EXPECT_TRUE(transport_.sent.empty()) << "a 100 is hop by hop";
  deliver(kUpstream, answer(*invite.msg(), 180));
  EXPECT_EQ(status_of(transport_.take()), 180);
  deliver(kUpstream, answer(*invite.msg(), 200));
  Sent ok = transport_.take();
  EXPECT_EQ(ok.flow, kClientUdp);
  EXPECT_EQ(status_of(ok), 200);

  deliver(kClientUdp, request("ACK", "life1", "z9hG4bK-l1a", 1, "u1"));
  auto ack = transport_.take().msg();
  ASSERT_TRUE(ack);
  EXPECT_EQ(ack->method(), sip::Method::kAck);
  deliver(kClientUdp, request("BYE", "life1", "z9hG4bK-l1b", 2, "u1"));
  Sent bye = transport_.take();
  EXPECT_EQ(bye.msg()->method(), sip::Method::kBye);
  EXPECT_EQ(proxy_.calls(), 2u);
  deliver(kUpstream, answer(*bye.msg(), 200));
  Sent bye_ok = transport_.take();
  EXPECT_EQ(bye_ok.flow, kClientUdp);
  EXPECT_EQ(status_of(bye_ok), 200);
  EXPECT_TRUE(transport_.sent.empty());

  // Timers K, J, L and M (at most 64*T1 = 32 s) retire all four transactions and both calls.
  clock_.advance(std::chrono::seconds(40));
  proxy_.advance();
  EXPECT_EQ(proxy_.transactions(), 0u);
  EXPECT_EQ(proxy_.calls(), 0u);
  // The answered INVITE's Timer C is left to expire: it finds nothing and sends nothing.
  clock_.advance(std::chrono::seconds(200));
  proxy_.advance();
  EXPECT_TRUE(transport_.sent.empty());
  EXPECT_FALSE(proxy_.next_deadline().has_value());
}

TEST_F(EdgeProxyLifetimeTest, CallOutlivesItsServerTransactionWhileTheBranchLives) {
  deliver(kClientTcp, request("INVITE", "life2", "z9hG4bK-l2", 1, "", "TCP"));
  EXPECT_EQ(status_of(transport_.take()), 100);
  Sent invite = transport_.take();
  // The client's connection dies: the 180 cannot be passed on, which ends the server transaction
  // (RFC 3261 §17.2.4) while the branch goes on.
  transport_.dead_connections.insert(kClientTcp.connection_id);
  deliver(kUpstream, answer(*invite.msg(), 180));
  EXPECT_TRUE(transport_.sent.empty());
  EXPECT_EQ(proxy_.transactions(), 1u);
  EXPECT_EQ(proxy_.calls(), 1u);
  // The 200 still finds its call, which has nobody left to pass it to; the branch waits in
  // Accepted for retransmissions (RFC 6026), and so does the call.
  deliver(kUpstream, answer(*invite.msg(), 200));
  EXPECT_TRUE(transport_.sent.empty());
  EXPECT_EQ(proxy_.transactions(), 1u);
  EXPECT_EQ(proxy_.calls(), 1u);

  clock_.advance(std::chrono::seconds(33));  // Timer M
  proxy_.advance();
  EXPECT_EQ(proxy_.transactions(), 0u);
  EXPECT_EQ(proxy_.calls(), 0u);
}

TEST_F(EdgeProxyLifetimeTest, RetiredBranchTimerCDoesNotFireOnALaterCall) {
  config_.timer_c_seconds = 181;
  const TimePoint start = clock_.now();
  deliver(kClientUdp, request("INVITE", "life3a", "z9hG4bK-l3a", 1));
  EXPECT_EQ(status_of(transport_.take()), 100);
  Sent first = transport_.take();
  deliver(kUpstream, answer(*first.msg(), 200));
  EXPECT_EQ(status_of(transport_.take()), 200);
  clock_.advance(std::chrono::seconds(40));
  proxy_.advance();
  ASSERT_EQ(proxy_.calls(), 0u);

  // The next call takes the first one's place; its own Timer C runs from now.
  deliver(kClientUdp, request("INVITE", "life3b", "z9hG4bK-l3b", 1));
  EXPECT_EQ(status_of(transport_.take()), 100);
  Sent second = transport_.take();
  deliver(kUpstream, answer(*second.msg(), 180));
  EXPECT_EQ(status_of(transport_.take()), 180);

  clock_.set(start + std::chrono::seconds(182));  // the first call's Timer C deadline has passed
  proxy_.advance();
  EXPECT_TRUE(transport_.sent.empty()) << "the first call's Timer C fired on the second call";
  EXPECT_EQ(proxy_.calls(), 1u);

  clock_.set(start + std::chrono::seconds(40 + 182));  // the second call's own deadline
  proxy_.advance();
  bool cancel = false;
  bool timeout = false;
  while (!transport_.sent.empty()) {
    auto m = transport_.take().msg();
    if (m->is_request() && m->method() == sip::Method::kCancel) cancel = true;
    if (m->is_response() && m->status() == 408) timeout = true;
  }
  EXPECT_TRUE(cancel);
  EXPECT_TRUE(timeout);
}

}  // namespace
}  // namespace pinhole::proxy
