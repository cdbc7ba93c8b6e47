// EdgeProxy's NAT keepalives against a fake transport and a manual clock: reasons learned from
// the upstream's 2xx to REGISTER (per Contact, 0 removes, negative answers change nothing), from
// INVITE dialogs (kept by 2xx, dropped by BYE) and SUBSCRIBE; pings sent on the worker's timer and
// their answers matched; Flow-Timer suppresses pings; a dead TCP flow is closed.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "edge_proxy_fixture.h"
#include "fake_transport.h"
#include "proxy/keepalive_services.h"

namespace pinhole::proxy {
namespace {

using fakes::kClientTcp;
using fakes::kClientUdp;
using fakes::kUpstream;
using fakes::Sent;
using nat::KeepaliveReason;

std::string register_request(uint32_t cseq, uint32_t expires, std::string_view contact_host = "192.168.1.10") {
  return "REGISTER sip:lab.example SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 192.168.1.10:5062;branch=z9hG4bK-r" +
         std::to_string(cseq) +
         ";rport\r\n"
         "Max-Forwards: 70\r\n"
         "From: <sip:alice@lab.example>;tag=a1\r\n"
         "To: <sip:alice@lab.example>\r\n"
         "Call-ID: ka-reg@192.168.1.10\r\n"
         "CSeq: " +
         std::to_string(cseq) +
         " REGISTER\r\n"
         "Contact: <sip:alice@" +
         std::string(contact_host) + ":5062>\r\nExpires: " + std::to_string(expires) +
         "\r\n"
         "Content-Length: 0\r\n\r\n";
}

std::string invite_request(std::string_view call_id, std::string_view method = "INVITE", std::string_view to_tag = "") {
  return std::string(method) + " sip:bob@lab.example SIP/2.0\r\n" +
         "Via: SIP/2.0/UDP 192.168.1.10:5062;branch=z9hG4bK-i" + std::string(method) + std::string(call_id) +
         ";rport\r\n"
         "Max-Forwards: 70\r\n"
         "From: <sip:alice@lab.example>;tag=a1\r\n"
         "To: <sip:bob@lab.example>" +
         (to_tag.empty() ? std::string() : ";tag=" + std::string(to_tag)) + "\r\nCall-ID: " + std::string(call_id) +
         "\r\nCSeq: 1 " + std::string(method) +
         "\r\n"
         "Contact: <sip:alice@192.168.1.10:5062>\r\n"
         "Content-Length: 0\r\n\r\n";
}

class KeepaliveProxyTest : public fakes::EdgeProxyFixture {
 protected:
  KeepaliveProxyTest() : metrics_(registry_), services_{.metrics = metrics_, .persist = {}} {
    config_.keepalive.engine.udp_interval = std::chrono::seconds(10);
    config_.keepalive.engine.stream_interval = std::chrono::seconds(10);
    config_.keepalive.engine.max_misses = 2;
    shared_.keepalive = &services_;
    services_.persist = [this](const net::Flow& f, const std::optional<nat::KeepaliveEngine::EndpointView>& v) {
      persisted_.emplace_back(f, v.has_value());
    };
    ka_proxy_ = std::make_unique<EdgeProxy>(shared_, 0, txn::TimerConfig{}, clock_);
    shared_.workers[0] = ka_proxy_.get();
  }

  void send_in(const net::Flow& flow, std::string_view text) {
    auto m =
        sip::Message::parse(text, net::is_stream(flow.transport) ? sip::Framing::kStream : sip::Framing::kDatagram);
    ASSERT_TRUE(m.ok()) << m.error().what << "\n" << text;
    ka_proxy_->on_message(transport::Inbound{std::move(m.value()), flow, 0});
  }
  // REGISTER from `client`, answered upstream with `status` and `contacts` (a Contact header line).
  void register_via_upstream(const net::Flow& client, uint32_t cseq, uint32_t expires, int status,
                             const std::string& extra) {
    send_in(client, register_request(cseq, expires));
    Sent up = transport_.take();
    ASSERT_EQ(up.flow.remote, kUpstream.remote);
    send_in(kUpstream, answer(*up.msg(), status, extra));
    Sent back = transport_.take();
    ASSERT_EQ(back.flow, client);
  }
  const nat::KeepaliveEngine& engine() const { return *ka_proxy_->keepalive_engine(); }
  std::optional<nat::KeepaliveEngine::EndpointView> endpoint(const net::Flow& f) const { return engine().find(f); }
  bool has_reason(const net::Flow& f, KeepaliveReason r) const {
    auto e = endpoint(f);
    if (!e) return false;
    for (const auto& d : e->details)
      if (d.reason == r) return true;
    return false;
  }
  // Moves the clock and runs the worker's timer, as the daemon's WorkerTimer does.
  void run_for(std::chrono::seconds s) {
    for (auto left = s; left.count() > 0; left -= std::chrono::seconds(1)) {
      clock_.advance(std::chrono::seconds(1));
      ka_proxy_->advance();
    }
  }
  // Keepalive requests sent to `flow` since the last call (other messages are dropped).
  std::vector<std::string> pings_to(const net::Flow& flow) {
    std::vector<std::string> out;
    while (!transport_.sent.empty()) {
      Sent s = transport_.take();
      if (s.flow == flow) out.push_back(s.bytes);
    }
    return out;
  }

  KeepaliveMetrics metrics_;
  KeepaliveServices services_;
  std::unique_ptr<EdgeProxy> ka_proxy_;
  std::vector<std::pair<net::Flow, bool>> persisted_;
};

TEST_F(KeepaliveProxyTest, UpstreamRegistrationGrantsAReasonAndPingsFollow) {
  register_via_upstream(kClientUdp, 1, 300, 200, "Contact: <sip:alice@192.168.1.10:5062>;expires=120\r\n");
  auto e = endpoint(kClientUdp);
  ASSERT_TRUE(e.has_value());
  ASSERT_EQ(e->details.size(), 1U);
  EXPECT_EQ(e->details[0].reason, KeepaliveReason::kRegistration);
  // Granted 120 s (not the 300 asked).
  EXPECT_LE(e->details[0].expires - clock_.now(), std::chrono::seconds(121));
  EXPECT_GE(e->details[0].expires - clock_.now(), std::chrono::seconds(119));
  ASSERT_FALSE(persisted_.empty());
  EXPECT_TRUE(persisted_.back().second);

  run_for(std::chrono::seconds(11));
  auto pings = pings_to(kClientUdp);
  ASSERT_EQ(pings.size(), 1U);
  auto ping = sip::Message::parse(pings[0], sip::Framing::kDatagram);
  ASSERT_TRUE(ping.ok());
  EXPECT_EQ((*ping)->method(), sip::Method::kOptions);
  // The phone answers: matched, not forwarded anywhere.
  send_in(kClientUdp, answer(**ping, 200));
  EXPECT_TRUE(transport_.sent.empty());
  EXPECT_EQ(metrics_.replies.value(), 1U);
  EXPECT_EQ(metrics_.sent.value(), 1U);
  EXPECT_EQ(metrics_.endpoints_udp.value(), 1);
  EXPECT_EQ(metrics_.endpoints_by_reason[0]->value(), 1);
}

TEST_F(KeepaliveProxyTest, NegativeAnswerChangesNothingAndZeroRemoves) {
  register_via_upstream(kClientUdp, 1, 300, 200, "Contact: <sip:alice@192.168.1.10:5062>;expires=300\r\n");
  auto before = endpoint(kClientUdp);
  ASSERT_TRUE(before.has_value());
  clock_.advance(std::chrono::seconds(5));
  register_via_upstream(kClientUdp, 2, 300, 403, "");
  auto after = endpoint(kClientUdp);
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(after->details[0].expires, before->details[0].expires) << "a 403 must not extend or remove";
  // A 2xx that no longer lists the Contact (or lists it with 0) removes the reason: no endpoint.
  register_via_upstream(kClientUdp, 3, 0, 200, "");
  EXPECT_FALSE(endpoint(kClientUdp).has_value());
  EXPECT_EQ(metrics_.endpoints_udp.value(), 0);
}

TEST_F(KeepaliveProxyTest, NoEndpointForAClientThatShowsNoNat) {
  // Contact = the address the request came from, rport-free Via of that address: no NAT test fires.
  std::string text = register_request(1, 300, "198.51.100.7");
  size_t at = text.find("192.168.1.10:5062;branch");
  text.replace(at, std::string("192.168.1.10:5062").size(), "198.51.100.7:40000");
  at = text.find("198.51.100.7:5062>");
  text.replace(at, std::string("198.51.100.7:5062").size(), "198.51.100.7:40000");
  send_in(kClientUdp, text);
  Sent up = transport_.take();
  send_in(kUpstream, answer(*up.msg(), 200, "Contact: <sip:alice@198.51.100.7:40000>;expires=300\r\n"));
  (void)transport_.take();
  EXPECT_FALSE(endpoint(kClientUdp).has_value());
}

TEST_F(KeepaliveProxyTest, FlowTimerSuppressesPings) {
  register_via_upstream(
      kClientUdp, 1, 300, 200,
      "Contact: <sip:alice@192.168.1.10:5062>;expires=300\r\nRequire: outbound\r\nFlow-Timer: 25\r\n");
  auto e = endpoint(kClientUdp);
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(e->suppressed);
  run_for(std::chrono::seconds(25));
  EXPECT_TRUE(pings_to(kClientUdp).empty());
}

TEST_F(KeepaliveProxyTest, DialogKeptByTwoHundredAndDroppedByBye) {
  send_in(kClientUdp, invite_request("call-1"));
  Sent trying = transport_.take();  // 100 Trying
  Sent up = transport_.take();
  ASSERT_EQ(up.flow.remote, kUpstream.remote);
  EXPECT_TRUE(has_reason(kClientUdp, KeepaliveReason::kDialog)) << "setup keeps the caller's flow";
  send_in(kUpstream, answer(*up.msg(), 200));
  (void)transport_.take();
  auto e = endpoint(kClientUdp);
  ASSERT_TRUE(e.has_value());
  EXPECT_GT(e->details[0].expires - clock_.now(), std::chrono::seconds(3600)) << "the dialog lifetime, not setup's";

  send_in(kClientUdp, invite_request("call-1", "BYE", "u1"));
  EXPECT_FALSE(endpoint(kClientUdp).has_value());
}

TEST_F(KeepaliveProxyTest, FailedReInviteKeepsTheDialog) {
  send_in(kClientUdp, invite_request("call-3"));
  (void)transport_.take();  // 100
  Sent up = transport_.take();
  send_in(kUpstream, answer(*up.msg(), 200));
  (void)transport_.take();
  ASSERT_TRUE(has_reason(kClientUdp, KeepaliveReason::kDialog));
  std::string reinvite = invite_request("call-3", "INVITE", "u1");
  reinvite.replace(reinvite.find("CSeq: 1"), 7, "CSeq: 2");
  reinvite.replace(reinvite.find("branch=z9hG4bK-i"), 16, "branch=z9hG4bK-r");  // a new transaction
  send_in(kClientUdp, reinvite);
  (void)transport_.take();  // 100
  Sent up2 = transport_.take();
  send_in(kUpstream, answer(*up2.msg(), 491));
  EXPECT_TRUE(has_reason(kClientUdp, KeepaliveReason::kDialog)) << "a 491 to a re-INVITE does not end the dialog";
}

TEST_F(KeepaliveProxyTest, FailedInviteDropsTheSetupReason) {
  send_in(kClientUdp, invite_request("call-2"));
  (void)transport_.take();  // 100
  Sent up = transport_.take();
  EXPECT_TRUE(has_reason(kClientUdp, KeepaliveReason::kDialog));
  send_in(kUpstream, answer(*up.msg(), 486));
  EXPECT_FALSE(endpoint(kClientUdp).has_value());
}

TEST_F(KeepaliveProxyTest, SubscriptionTakesTheExpiresOfTheTwoHundred) {
  std::string sub = invite_request("sub-1", "SUBSCRIBE");
  sub.insert(sub.find("Content-Length"), "Event: presence\r\nExpires: 600\r\n");
  send_in(kClientUdp, sub);
  Sent up = transport_.take();
  send_in(kUpstream, answer(*up.msg(), 202, "Expires: 60\r\n"));
  auto e = endpoint(kClientUdp);
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->details[0].reason, KeepaliveReason::kSubscription);
  EXPECT_LE(e->details[0].expires - clock_.now(), std::chrono::seconds(61));
}

TEST_F(KeepaliveProxyTest, DeadTcpFlowIsClosedAfterMisses) {
  register_via_upstream(kClientTcp, 1, 300, 200, "Contact: <sip:alice@192.168.1.10:5062>;expires=300\r\n");
  ASSERT_TRUE(endpoint(kClientTcp).has_value());
  run_for(std::chrono::seconds(11));
  auto pings = pings_to(kClientTcp);
  ASSERT_EQ(pings.size(), 1U);
  EXPECT_EQ(pings[0], "\r\n\r\n");
  ka_proxy_->on_pong(kClientTcp);  // answered once
  EXPECT_EQ(metrics_.replies.value(), 1U);
  run_for(std::chrono::seconds(40));  // then silence: two misses
  EXPECT_FALSE(endpoint(kClientTcp).has_value());
  EXPECT_EQ(metrics_.dead.value(), 1U);
  ASSERT_EQ(transport_.closed.size(), 1U);
  EXPECT_EQ(transport_.closed[0], kClientTcp);
  ASSERT_FALSE(persisted_.empty());
  EXPECT_FALSE(persisted_.back().second);
}

TEST_F(KeepaliveProxyTest, ReplyNamingAnotherShardIsNotMatched) {
  // A reply whose token names shard 3 (no such worker here) is not ours: dropped, not forwarded.
  register_via_upstream(kClientUdp, 1, 300, 200, "Contact: <sip:alice@192.168.1.10:5062>;expires=300\r\n");
  run_for(std::chrono::seconds(11));
  auto pings = pings_to(kClientUdp);
  ASSERT_EQ(pings.size(), 1U);
  std::string forged = pings[0];
  size_t at = forged.find("z9hG4bKpka") + std::string("z9hG4bKpka").size();
  forged[at] = '0';
  forged[at + 1] = '3';
  size_t cid = forged.find("Call-ID: pka") + std::string("Call-ID: pka").size();
  forged[cid] = '0';
  forged[cid + 1] = '3';
  auto m = sip::Message::parse(forged, sip::Framing::kDatagram);
  ASSERT_TRUE(m.ok());
  send_in(kClientUdp, answer(**m, 200));
  EXPECT_TRUE(transport_.sent.empty());
  EXPECT_EQ(metrics_.replies.value(), 0U);
}

}  // namespace
}  // namespace pinhole::proxy
