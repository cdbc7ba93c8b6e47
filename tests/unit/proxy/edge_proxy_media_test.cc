// The edge's media anchoring against a fake relay: which ng-style requests it asks for, with
// which tags and sources, that a message waits for the relay and goes out with the relay's SDP,
// and what happens when the relay fails or the call ends while it works.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "edge_proxy_fixture.h"
#include "proxy/media_services.h"

namespace pinhole::proxy {
namespace {

using fakes::kClientUdp;
using fakes::kUpstream;
using fakes::Sent;

// Records requests; answers at once, or holds the answers until release().
class FakeRelay final : public MediaRelay {
 public:
  void request(MediaRequest request, Done done) override {
    requests.push_back(request);
    pending.push_back(std::move(done));
    if (!hold) release();
  }
  // Answers every held request: the SDP the relay "wrote" names the request's number, so the
  // test can tell which answer went where.
  void release() {
    auto all = std::move(pending);
    pending.clear();
    for (auto& done : all) {
      if (fail) {
        done(*fail);
        continue;
      }
      ++answered;
      done(MediaReply{.sdp = relay_sdp(answered), .warning = {}});
    }
  }
  static std::string relay_sdp(int n) {
    return "v=0\r\no=- 1 1 IN IP4 203.0.113.99\r\ns=-\r\nc=IN IP4 203.0.113.99\r\nt=0 0\r\nm=audio " +
           std::to_string(30000 + 2 * n) + " RTP/AVP 0\r\n";
  }

  std::vector<MediaRequest> requests;
  std::vector<Done> pending;
  bool hold = false;
  std::optional<Error> fail;
  int answered = 0;
};

constexpr std::string_view kPhoneSdp =
    "v=0\r\no=- 7 7 IN IP4 192.168.1.10\r\ns=-\r\nc=IN IP4 192.168.1.10\r\nt=0 0\r\nm=audio 27910 RTP/AVP 0\r\n";

std::string with_sdp(std::string message, std::string_view sdp) {
  size_t at = message.find("Content-Length: 0\r\n\r\n");
  message.replace(at, std::string::npos,
                  "Content-Type: application/sdp\r\nContent-Length: " + std::to_string(sdp.size()) + "\r\n\r\n");
  return message.append(sdp);
}

std::string invite(std::string_view branch, bool sdp = true) {
  std::string m =
      "INVITE sip:bob@lab.example SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 192.168.1.10:5062;branch=z9hG4bK-" +
      std::string(branch) +
      "\r\n"
      "Max-Forwards: 70\r\n"
      "From: <sip:alice@lab.example>;tag=a1\r\n"
      "To: <sip:bob@lab.example>\r\n"
      "Call-ID: call1@192.168.1.10\r\n"
      "CSeq: 1 INVITE\r\n"
      "Contact: <sip:alice@192.168.1.10:5062>\r\n"
      "Content-Length: 0\r\n\r\n";
  return sdp ? with_sdp(m, kPhoneSdp) : m;
}

class EdgeProxyMediaTest : public fakes::EdgeProxyFixture {
 protected:
  EdgeProxyMediaTest() : media_metrics_(registry_), services_{relay_, media_metrics_, {}} {
    config_.media.enabled = true;
    services_.relay_addresses.push_back(*net::Address::parse("203.0.113.99"));
    shared_.media = &services_;
  }
  void run_posted() {
    auto all = std::move(transport_.posted);
    transport_.posted.clear();
    for (auto& f : all) f();
  }
  // Drops what was sent so far up to and including the 100 Trying.
  void skip_trying() {
    Sent trying = transport_.take();
    EXPECT_EQ(trying.msg()->status(), 100);
  }

  FakeRelay relay_;
  MediaMetrics media_metrics_;
  MediaServices services_;
};

TEST_F(EdgeProxyMediaTest, OfferAndAnswerGoOutWithTheRelaysSdp) {
  relay_.hold = true;
  deliver(kClientUdp, invite("i1"));
  skip_trying();
  EXPECT_TRUE(transport_.sent.empty()) << "the INVITE must wait for the relay";
  ASSERT_EQ(relay_.requests.size(), 1u);
  const MediaRequest offer = relay_.requests[0];  // a copy: more requests follow
  EXPECT_EQ(offer.op, MediaOp::kOffer);
  EXPECT_EQ(offer.call_id, "call1@192.168.1.10");
  EXPECT_EQ(offer.from_tag, "a1");
  EXPECT_EQ(offer.received_from, kClientUdp.remote);
  EXPECT_EQ(offer.sdp, kPhoneSdp);
  EXPECT_FALSE(offer.via_branch.empty()) << "a new call's branch is named, so forks get their own session";

  relay_.release();
  run_posted();
  Sent up = transport_.take();
  auto fwd = up.msg();
  EXPECT_EQ(up.flow.remote.to_string(), "203.0.113.20:5060");
  EXPECT_EQ(fwd->body(), FakeRelay::relay_sdp(1));
  EXPECT_EQ(fwd->top_via().value()->branch, offer.via_branch);

  deliver(kUpstream, with_sdp(answer(*fwd, 200), kPhoneSdp));
  ASSERT_EQ(relay_.requests.size(), 2u);
  const MediaRequest& ans = relay_.requests[1];
  EXPECT_EQ(ans.op, MediaOp::kAnswer);
  EXPECT_EQ(ans.from_tag, "a1");
  EXPECT_EQ(ans.to_tag, "u1");
  EXPECT_EQ(ans.via_branch, offer.via_branch);
  EXPECT_TRUE(transport_.sent.empty()) << "the 200 must wait for the relay";
  relay_.release();
  run_posted();
  Sent down = transport_.take();
  EXPECT_EQ(down.flow, kClientUdp);
  EXPECT_EQ(down.msg()->status(), 200);
  EXPECT_EQ(down.msg()->body(), FakeRelay::relay_sdp(2));
  EXPECT_EQ(media_metrics_.offers.value(), 1u);
  EXPECT_EQ(media_metrics_.answers.value(), 1u);
}

TEST_F(EdgeProxyMediaTest, ByeDeletesTheCallWithoutWaiting) {
  relay_.hold = true;
  std::string bye = invite("b1", false);
  bye.replace(0, 6, "BYE");
  bye.replace(bye.find("To: <sip:bob@lab.example>"), 25, "To: <sip:bob@lab.example>;tag=u1");
  bye.replace(bye.find("CSeq: 1 INVITE"), 14, "CSeq: 2 BYE");
  deliver(kClientUdp, bye);
  ASSERT_EQ(relay_.requests.size(), 1u);
  EXPECT_EQ(relay_.requests[0].op, MediaOp::kDelete);
  EXPECT_EQ(relay_.requests[0].call_id, "call1@192.168.1.10");
  EXPECT_EQ(relay_.requests[0].from_tag, "a1");
  EXPECT_EQ(relay_.requests[0].delete_delay, 0);
  EXPECT_EQ(transport_.take().msg()->method(), sip::Method::kBye) << "forwarded at once";
}

TEST_F(EdgeProxyMediaTest, MalformedSdpIsAnswered488) {
  deliver(kClientUdp, with_sdp(invite("m1", false), "v=0\r\nthis is not sdp\r\n"));
  skip_trying();
  EXPECT_EQ(transport_.take().msg()->status(), 488);
  EXPECT_TRUE(relay_.requests.empty());
  EXPECT_TRUE(transport_.sent.empty()) << "nothing forwarded";
}

TEST_F(EdgeProxyMediaTest, RelayDownForwardsUnchangedByDefault) {
  relay_.fail = Error{503, "relay timed out"};
  deliver(kClientUdp, invite("d1"));
  run_posted();
  skip_trying();
  auto fwd = transport_.take().msg();
  EXPECT_EQ(fwd->method(), sip::Method::kInvite);
  EXPECT_EQ(fwd->body(), kPhoneSdp);
  EXPECT_EQ(media_metrics_.relay_failures.value(), 1u);
}

TEST_F(EdgeProxyMediaTest, RelayDownAnswers503WhenConfiguredTo) {
  config_.media.continue_without_relay = false;
  relay_.fail = Error{503, "relay timed out"};
  deliver(kClientUdp, invite("d2"));
  run_posted();
  skip_trying();
  EXPECT_EQ(transport_.take().msg()->status(), 503);
  EXPECT_TRUE(transport_.sent.empty());
}

TEST_F(EdgeProxyMediaTest, CancelWhileTheOfferIsAtTheRelaySendsNothingAndDeletes) {
  relay_.hold = true;
  deliver(kClientUdp, invite("c1"));
  skip_trying();
  std::string cancel = invite("c1", false);
  cancel.replace(0, 6, "CANCEL");
  cancel.replace(cancel.find("CSeq: 1 INVITE"), 14, "CSeq: 1 CANCEL");
  deliver(kClientUdp, cancel);
  EXPECT_EQ(transport_.take().msg()->status(), 200);  // to the CANCEL
  relay_.release();
  run_posted();
  Sent last = transport_.take();
  EXPECT_EQ(last.msg()->status(), 487);
  EXPECT_TRUE(transport_.sent.empty()) << "the INVITE never went out";
  ASSERT_EQ(relay_.requests.size(), 2u);
  EXPECT_EQ(relay_.requests[1].op, MediaOp::kDelete);
  EXPECT_EQ(relay_.requests[1].via_branch, relay_.requests[0].via_branch) << "only that branch's session";
}

TEST_F(EdgeProxyMediaTest, FailedBranchDeletesItsSession) {
  deliver(kClientUdp, invite("f1"));
  run_posted();
  skip_trying();
  auto fwd = transport_.take().msg();
  deliver(kUpstream, answer(*fwd, 486));
  transport_.sent.clear();  // the ACK and the 486
  ASSERT_EQ(relay_.requests.size(), 2u);
  EXPECT_EQ(relay_.requests[1].op, MediaOp::kDelete);
  EXPECT_EQ(relay_.requests[1].via_branch, relay_.requests[0].via_branch);
  EXPECT_EQ(relay_.requests[1].delete_delay, -1) << "a branch delete needs no delay";
}

TEST_F(EdgeProxyMediaTest, AnchoredSdpIsLeftAlone) {
  // The call passes the edge a second time (callee also behind it): the SDP names our relay.
  deliver(kClientUdp, with_sdp(invite("a1", false), FakeRelay::relay_sdp(7)));
  skip_trying();
  EXPECT_EQ(transport_.take().msg()->body(), FakeRelay::relay_sdp(7));
  EXPECT_TRUE(relay_.requests.empty());
}

TEST_F(EdgeProxyMediaTest, LateOfferInThe2xxIsAnsweredByTheAck) {
  deliver(kClientUdp, invite("l1", false));
  skip_trying();
  auto fwd = transport_.take().msg();
  EXPECT_TRUE(relay_.requests.empty());
  deliver(kUpstream, with_sdp(answer(*fwd, 200), kPhoneSdp));
  run_posted();
  ASSERT_EQ(relay_.requests.size(), 1u);
  EXPECT_EQ(relay_.requests[0].op, MediaOp::kOffer);
  EXPECT_EQ(relay_.requests[0].from_tag, "u1") << "the callee offers";
  EXPECT_EQ(relay_.requests[0].to_tag, "a1");
  EXPECT_EQ(transport_.take().msg()->body(), FakeRelay::relay_sdp(1));

  std::string ack = invite("l2", false);
  ack.replace(0, 6, "ACK");
  ack.replace(ack.find("To: <sip:bob@lab.example>"), 25, "To: <sip:bob@lab.example>;tag=u1");
  ack.replace(ack.find("CSeq: 1 INVITE"), 14, "CSeq: 1 ACK");
  deliver(kClientUdp, with_sdp(ack, kPhoneSdp));
  EXPECT_TRUE(transport_.sent.empty()) << "the ACK waits for the relay";
  run_posted();
  ASSERT_EQ(relay_.requests.size(), 2u);
  EXPECT_EQ(relay_.requests[1].op, MediaOp::kAnswer);
  EXPECT_EQ(relay_.requests[1].from_tag, "u1");
  EXPECT_EQ(relay_.requests[1].to_tag, "a1");
  auto fwd_ack = transport_.take().msg();
  EXPECT_EQ(fwd_ack->method(), sip::Method::kAck);
  EXPECT_EQ(fwd_ack->body(), FakeRelay::relay_sdp(2));
}

TEST_F(EdgeProxyMediaTest, RelayNeverTouchesNothing) {
  config_.media.mode = MediaRelayMode::kNever;
  deliver(kClientUdp, invite("n1"));
  skip_trying();
  EXPECT_EQ(transport_.take().msg()->body(), kPhoneSdp);
  EXPECT_TRUE(relay_.requests.empty());
}

}  // namespace
}  // namespace pinhole::proxy
