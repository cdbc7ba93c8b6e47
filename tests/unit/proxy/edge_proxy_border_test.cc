// EdgeProxy in border mode against a fake transport and a manual clock: the upstream's 2xx
// teaches the binding, a NATed UDP phone hears the short lease, its refreshes within the
// upstream's interval are answered here, a refresh from a new port moves the binding and the
// upstream's requests (routed by the old Path token) follow it.
#include <gtest/gtest.h>

#include <string>

#include "edge_proxy_fixture.h"
#include "fake_transport.h"
#include "proxy/border_services.h"

namespace pinhole::proxy {
namespace {

using fakes::kClientUdp;
using fakes::kUpstream;
using fakes::Sent;
using net::Transport;

// The phone's NAT after a reboot: same public address, another port.
const net::Flow kClientMoved{Transport::kUdp, 0, *net::Endpoint::parse("198.51.100.7:41999"), 0};
// Another network: must not take the binding over without the upstream's say.
const net::Flow kElsewhere{Transport::kUdp, 0, *net::Endpoint::parse("192.0.2.44:40000"), 0};

// A REGISTER from the phone at `host` (its Via and Contact).
std::string register_request(uint32_t cseq, uint32_t expires, std::string_view host = "192.168.1.10") {
  return "REGISTER sip:lab.example SIP/2.0\r\n"
         "Via: SIP/2.0/UDP " +
         std::string(host) + ":5062;branch=z9hG4bK-b" + std::to_string(cseq) +
         "\r\n"
         "Max-Forwards: 70\r\n"
         "From: <sip:alice@lab.example>;tag=a1\r\n"
         "To: <sip:alice@lab.example>\r\n"
         "Call-ID: border1@192.168.1.10\r\n"
         "CSeq: " +
         std::to_string(cseq) +
         " REGISTER\r\n"
         "Contact: <sip:alice@" +
         std::string(host) +
         ":5062>\r\n"
         "Expires: " +
         std::to_string(expires) +
         "\r\n"
         "Content-Length: 0\r\n\r\n";
}

class BorderProxyTest : public fakes::EdgeProxyFixture {
 protected:
  BorderProxyTest() : bindings_(registrar::BorderConfig{}), border_metrics_(registry_) { shared_.border = &services_; }

  // Sends the REGISTER upstream and answers it with `granted`; returns what the phone got.
  sip::MessagePtr register_through_upstream(const net::Flow& from, uint32_t cseq, uint32_t asked, uint32_t granted,
                                            std::string* asked_upstream = nullptr) {
    deliver(from, register_request(cseq, asked, phone_host_));
    Sent up = transport_.take();
    EXPECT_EQ(up.flow.remote, kUpstream.remote);
    auto reg = up.msg();
    if (asked_upstream != nullptr) *asked_upstream = std::string(reg->header(sip::HeaderKind::kExpires)->value);
    deliver(kUpstream, answer(*reg, 200,
                              "Contact: <sip:alice@" + phone_host_ + ":5062>;expires=" + std::to_string(granted) +
                                  ", <sip:alice@10.1.1.1:5060>;expires=1200\r\n"));
    Sent back = transport_.take();
    EXPECT_EQ(back.flow, from);
    return back.msg();
  }
  // The expires the phone was told for its own Contact.
  std::string told_expires(const sip::Message& ok) const {
    auto contacts = ok.contacts();  // held: the span inside the Result must outlive the loop
    for (const auto& c : *contacts) {
      if (c.uri.host == phone_host_) return std::string(c.expires);
    }
    return "none";
  }
  std::string path_token_of_last_register() const { return *codec_.encode(kClientUdp); }
  uint64_t answered_here() const { return border_metrics_.refreshes_answered.value(); }

  std::string phone_host_ = "192.168.1.10";
  registrar::BorderBindings bindings_;
  BorderMetrics border_metrics_;
  BorderServices services_{bindings_, border_metrics_};
};

TEST_F(BorderProxyTest, NatedUdpPhoneHearsTheShortLeaseWhileUpstreamKeepsItsInterval) {
  auto ok = register_through_upstream(kClientUdp, 1, 3600, 3600);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status(), 200);
  EXPECT_EQ(told_expires(*ok), "60");
  // Other devices' bindings pass as the upstream listed them.
  bool other = false;
  auto contacts = ok->contacts();
  for (const auto& c : *contacts) other = other || (c.uri.host == "10.1.1.1" && c.expires == "1200");
  EXPECT_TRUE(other);
  auto list = bindings_.list(clock_.now());
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].aor, "sip:alice@lab.example");
  EXPECT_EQ(list[0].lease, std::chrono::seconds(60));
  EXPECT_EQ(list[0].asked_expires, 3600u);
}

TEST_F(BorderProxyTest, RefreshWithinTheUpstreamIntervalIsAnsweredHere) {
  register_through_upstream(kClientUdp, 1, 3600, 3600);
  clock_.advance(std::chrono::seconds(50));
  deliver(kClientUdp, register_request(2, 3600));
  ASSERT_EQ(transport_.sent.size(), 1u) << "the refresh went upstream or was lost";
  Sent back = transport_.take();
  EXPECT_EQ(back.flow, kClientUdp);
  auto ok = back.msg();
  EXPECT_EQ(ok->status(), 200);
  EXPECT_EQ(told_expires(*ok), "60");
  EXPECT_EQ(answered_here(), 1u);
}

TEST_F(BorderProxyTest, RefreshGoesUpstreamWhenTheUpstreamBindingNearsItsEnd) {
  register_through_upstream(kClientUdp, 1, 300, 300);
  // 300 s granted, lease 60 + margin 30: from 210 s on the next refresh could come too late.
  clock_.advance(std::chrono::seconds(215));
  std::string asked;
  auto ok = register_through_upstream(kClientUdp, 2, 300, 300, &asked);
  EXPECT_EQ(asked, "300");
  EXPECT_EQ(told_expires(*ok), "60");
  EXPECT_EQ(answered_here(), 0u);
}

TEST_F(BorderProxyTest, ClientThatAdoptedTheLeaseAsksUpstreamForItsOriginalInterval) {
  register_through_upstream(kClientUdp, 1, 600, 600);
  clock_.advance(std::chrono::seconds(560));  // due upstream
  std::string asked;
  register_through_upstream(kClientUdp, 2, 60, 600, &asked);
  EXPECT_EQ(asked, "600");
  EXPECT_EQ(border_metrics_.expires_restored.value(), 1u);
}

TEST_F(BorderProxyTest, RebindingFromANewPortIsAbsorbedAndUpstreamRequestsFollowIt) {
  register_through_upstream(kClientUdp, 1, 3600, 3600);
  std::string token = path_token_of_last_register();
  clock_.advance(std::chrono::seconds(30));
  deliver(kClientMoved, register_request(2, 3600));
  ASSERT_EQ(transport_.sent.size(), 1u) << "the rebinding went upstream";
  EXPECT_EQ(transport_.take().flow, kClientMoved);
  EXPECT_EQ(border_metrics_.rebindings.value(), 1u);

  // The upstream still routes by the Path it stored, naming the old flow.
  std::string invite =
      "INVITE sip:alice@192.168.1.10:5062 SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 203.0.113.20;branch=z9hG4bK-i1\r\n"
      "Route: <sip:" +
      token +
      "@203.0.113.10:5060;lr>\r\n"
      "Max-Forwards: 70\r\n"
      "From: <sip:bob@lab.example>;tag=b1\r\n"
      "To: <sip:alice@lab.example>\r\n"
      "Call-ID: call1@core\r\n"
      "CSeq: 1 INVITE\r\n"
      "Content-Length: 0\r\n\r\n";
  deliver(kUpstream, invite);
  Sent out;
  while (!transport_.sent.empty()) {
    out = transport_.take();
    if (out.flow == kClientMoved) break;
  }
  ASSERT_EQ(out.flow, kClientMoved);
  auto inv = out.msg();
  EXPECT_EQ(inv->method(), sip::Method::kInvite);
  // Its Record-Route names the new flow, so in-dialog requests go straight there.
  auto rr = inv->record_routes();
  ASSERT_TRUE(rr.ok());
  ASSERT_FALSE(rr->empty());
  auto named = codec_.decode(rr->front().uri.user);
  ASSERT_TRUE(named.ok());
  EXPECT_EQ(named->flow, kClientMoved);
  EXPECT_EQ(border_metrics_.rerouted.value(), 1u);
}

TEST_F(BorderProxyTest, RefreshFromAnotherAddressGoesUpstream) {
  register_through_upstream(kClientUdp, 1, 3600, 3600);
  clock_.advance(std::chrono::seconds(30));
  deliver(kElsewhere, register_request(2, 3600));
  Sent up = transport_.take();
  EXPECT_EQ(up.flow.remote, kUpstream.remote);
  EXPECT_EQ(answered_here(), 0u);
}

TEST_F(BorderProxyTest, NewCallIdOrOldCseqGoesUpstream) {
  register_through_upstream(kClientUdp, 5, 3600, 3600);
  clock_.advance(std::chrono::seconds(30));
  deliver(kClientUdp, register_request(4, 3600));  // older than what the upstream saw
  EXPECT_EQ(transport_.take().flow.remote, kUpstream.remote);
  std::string restarted = register_request(6, 3600);
  restarted.replace(restarted.find("border1@"), 8, "border2@");
  deliver(kClientUdp, restarted);
  EXPECT_EQ(transport_.take().flow.remote, kUpstream.remote);
  EXPECT_EQ(answered_here(), 0u);
}

TEST_F(BorderProxyTest, UnregisterGoesUpstreamAndForgetsTheBinding) {
  register_through_upstream(kClientUdp, 1, 3600, 3600);
  deliver(kClientUdp, register_request(2, 0));
  Sent up = transport_.take();
  ASSERT_EQ(up.flow.remote, kUpstream.remote);
  auto reg = up.msg();
  deliver(kUpstream, answer(*reg, 200, "Contact: <sip:alice@10.1.1.1:5060>;expires=1200\r\n"));
  EXPECT_EQ(transport_.take().msg()->status(), 200);
  EXPECT_EQ(bindings_.size(), 0u);
}

TEST_F(BorderProxyTest, NegativeUpstreamAnswerTeachesNothing) {
  deliver(kClientUdp, register_request(1, 3600));
  auto reg = transport_.take().msg();
  deliver(kUpstream, answer(*reg, 401, "WWW-Authenticate: Digest realm=\"lab.example\", nonce=\"n1\"\r\n"));
  EXPECT_EQ(transport_.take().msg()->status(), 401);
  EXPECT_EQ(bindings_.size(), 0u);
}

TEST_F(BorderProxyTest, PublicPhoneIsNotLeased) {
  // Its Via and Contact name its real address: no NAT, the upstream's expires passes unchanged.
  phone_host_ = "198.51.100.50";
  const net::Flow kPublic{Transport::kUdp, 0, *net::Endpoint::parse("198.51.100.50:5062"), 0};
  auto ok = register_through_upstream(kPublic, 1, 3600, 3600);
  EXPECT_EQ(told_expires(*ok), "3600");
  clock_.advance(std::chrono::seconds(30));
  deliver(kPublic, register_request(2, 3600, phone_host_));
  EXPECT_EQ(transport_.take().flow.remote, kUpstream.remote);
}

}  // namespace
}  // namespace pinhole::proxy
