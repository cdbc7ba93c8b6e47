// INVITE client transaction (RFC 3261 §17.1.1, RFC 6026 §7.2) and the hop-by-hop ACK for a
// non-2xx final response (§17.1.1.3), driven directly: events in, Output checked.
#include "txn/invite_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "txn_test_support.h"

namespace pinhole::txn {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::Req;
using testing::response;
using testing::sent;
using testing::started;
using testing::stops;
using State = InviteClient::State;

constexpr std::string_view kRoutes =
    "Route: <sip:p1.example.com;lr>\r\n"
    "Route: <sip:p2.example.com;lr>, <sip:p3.example.com;lr>\r\n";

Req invite_with_routes() {
  Req r;
  r.extra = std::string(kRoutes) + "Contact: <sip:alice@pc33.atlanta.example.com>\r\n";
  return r;
}

// ---------------------------------------------------------------------------------------------
// The ACK (§17.1.1.3), each header checked on the parsed result.

TEST(BuildAck, CopiesTheInviteAndTakesToFromTheResponse) {
  Req req = invite_with_routes();
  auto invite = req.message();
  auto busy = response(req, 486, "a6c85cf");
  auto text = build_ack(*invite, *busy);
  ASSERT_TRUE(text.ok());
  auto ack = testing::parse(*text);
  ASSERT_NE(ack, nullptr);

  EXPECT_TRUE(ack->is_request());
  EXPECT_EQ(ack->method(), sip::Method::kAck);
  EXPECT_EQ(ack->method_name(), "ACK");
  // Same Request-URI as the INVITE.
  EXPECT_EQ(ack->request_uri().raw, "sip:bob@biloxi.example.com");
  // Exactly one Via: the INVITE's top Via, branch included.
  auto vias = ack->vias();
  ASSERT_TRUE(vias.ok());
  ASSERT_EQ(vias->size(), 1u);
  EXPECT_EQ((*vias)[0].raw, "SIP/2.0/UDP proxy.atlanta.example.com;branch=z9hG4bK74bf9.1");
  EXPECT_EQ((*vias)[0].branch, "z9hG4bK74bf9.1");
  // The INVITE's Route values, in order.
  auto routes = ack->routes();
  ASSERT_TRUE(routes.ok());
  ASSERT_EQ(routes->size(), 3u);
  EXPECT_EQ((*routes)[0].uri.raw, "sip:p1.example.com;lr");
  EXPECT_EQ((*routes)[1].uri.raw, "sip:p2.example.com;lr");
  EXPECT_EQ((*routes)[2].uri.raw, "sip:p3.example.com;lr");
  // From and Call-ID of the INVITE.
  auto from = ack->from();
  ASSERT_TRUE(from.ok());
  EXPECT_EQ((*from)->uri.raw, "sip:alice@atlanta.example.com");
  EXPECT_EQ((*from)->tag, "1928301774");
  auto call_id = ack->call_id();
  ASSERT_TRUE(call_id.ok());
  EXPECT_EQ(*call_id, "a84b4c76e66710@pc33.atlanta.example.com");
  // To of the response, with its tag.
  auto to = ack->to();
  ASSERT_TRUE(to.ok());
  EXPECT_EQ((*to)->uri.raw, "sip:bob@biloxi.example.com");
  EXPECT_EQ((*to)->display_name, "Bob");
  EXPECT_TRUE((*to)->has_tag);
  EXPECT_EQ((*to)->tag, "a6c85cf");
  // CSeq: the INVITE's number, method ACK.
  auto cseq = ack->cseq();
  ASSERT_TRUE(cseq.ok());
  EXPECT_EQ(cseq->number, 314159u);
  EXPECT_EQ(cseq->method, sip::Method::kAck);
  EXPECT_EQ(cseq->method_name, "ACK");
  // Max-Forwards of the INVITE.
  auto max_forwards = ack->max_forwards();
  ASSERT_TRUE(max_forwards.ok());
  ASSERT_TRUE(max_forwards->has_value());
  EXPECT_EQ(**max_forwards, 69);
  // Nothing else of the INVITE: no Contact, no body.
  EXPECT_EQ(ack->header(sip::HeaderKind::kContact), nullptr);
  EXPECT_EQ(ack->header(sip::HeaderKind::kContentType), nullptr);
  ASSERT_NE(ack->header(sip::HeaderKind::kContentLength), nullptr);
  EXPECT_EQ(ack->header(sip::HeaderKind::kContentLength)->value, "0");
  EXPECT_TRUE(ack->body().empty());
}

TEST(BuildAck, NoRouteWhenTheInviteHadNone) {
  Req req;
  auto ack = testing::parse(*build_ack(*req.message(), *response(req, 404)));
  ASSERT_NE(ack, nullptr);
  EXPECT_EQ(ack->header(sip::HeaderKind::kRoute), nullptr);
  EXPECT_EQ(ack->header_count(sip::HeaderKind::kVia), 1u);
}

TEST(BuildAck, MaxForwards70WhenTheInviteHadNone) {
  Req req;
  std::string text = req.text();
  text.erase(text.find("Max-Forwards: 69\r\n"), 18);
  auto invite = testing::parse(text);
  auto ack = testing::parse(*build_ack(*invite, *response(req, 500)));
  ASSERT_NE(ack, nullptr);
  EXPECT_EQ(**ack->max_forwards(), 70);
}

// ---------------------------------------------------------------------------------------------
// State machine

class InviteClientTest : public ::testing::Test {
 protected:
  InviteClient machine(Reliability r = Reliability::kUnreliable) { return {req_.message(), r, TimerConfig{}}; }
  sip::MessagePtr resp(uint16_t status) { return response(req_, status); }

  Req req_ = invite_with_routes();
};

TEST_F(InviteClientTest, StartSendsTheInviteAndStartsAAndBOverUdp) {
  auto m = machine();
  Output out = m.start();
  EXPECT_EQ(m.state(), State::kCalling);
  EXPECT_THAT(sent(out), ElementsAre(req_.text()));
  EXPECT_THAT(started(out), ElementsAre("A 500", "B 32000"));  // T1, 64*T1
  EXPECT_EQ(out.notify, Notify::kNone);
  EXPECT_FALSE(out.terminated);
}

TEST_F(InviteClientTest, StartOverReliableTransportHasNoTimerA) {
  auto m = machine(Reliability::kReliable);
  Output out = m.start();
  EXPECT_THAT(sent(out), ElementsAre(req_.text()));
  EXPECT_THAT(started(out), ElementsAre("B 32000"));
}

TEST_F(InviteClientTest, TimerARetransmitsAndDoublesWithoutT2Cap) {
  auto m = machine();
  (void)m.start();
  for (const char* next : {"A 1000", "A 2000", "A 4000", "A 8000", "A 16000"}) {
    Output out = m.on_timer(TimerName::kA);
    EXPECT_THAT(sent(out), ElementsAre(req_.text()));
    EXPECT_THAT(started(out), ElementsAre(next));
    EXPECT_EQ(m.state(), State::kCalling);
  }
}

TEST_F(InviteClientTest, TimerBInCallingTellsTheTuAndTerminates) {
  auto m = machine();
  (void)m.start();
  Output out = m.on_timer(TimerName::kB);
  EXPECT_EQ(out.notify, Notify::kTimeout);
  EXPECT_TRUE(out.terminated);
  EXPECT_THAT(sent(out), IsEmpty());
  EXPECT_EQ(m.state(), State::kTerminated);
}

TEST_F(InviteClientTest, ProvisionalMovesCallingToProceedingAndStopsRetransmissions) {
  auto m = machine();
  (void)m.start();
  Output out = m.on_response(*resp(100));
  EXPECT_EQ(m.state(), State::kProceeding);
  EXPECT_EQ(out.notify, Notify::kResponse);
  EXPECT_TRUE(stops(out, TimerName::kA));
  EXPECT_TRUE(stops(out, TimerName::kB));
  EXPECT_THAT(started(out), IsEmpty());

  out = m.on_response(*resp(180));
  EXPECT_EQ(m.state(), State::kProceeding);
  EXPECT_EQ(out.notify, Notify::kResponse);
  EXPECT_EQ(out.verdict, Verdict::kAccepted);

  // Stale A or B firings do nothing in Proceeding.
  EXPECT_EQ(m.on_timer(TimerName::kA).verdict, Verdict::kIgnored);
  EXPECT_EQ(m.on_timer(TimerName::kB).verdict, Verdict::kIgnored);
  EXPECT_EQ(m.state(), State::kProceeding);
}

TEST_F(InviteClientTest, Non2xxInCallingSendsAckAndCompletesOverUdp) {
  auto m = machine();
  (void)m.start();
  auto busy = resp(486);
  Output out = m.on_response(*busy);
  EXPECT_EQ(m.state(), State::kCompleted);
  EXPECT_EQ(out.notify, Notify::kResponse);
  EXPECT_TRUE(stops(out, TimerName::kA));
  EXPECT_TRUE(stops(out, TimerName::kB));
  EXPECT_THAT(started(out), ElementsAre("D 32000"));
  auto expected_ack = build_ack(*req_.message(), *busy);
  ASSERT_TRUE(expected_ack.ok());
  EXPECT_THAT(sent(out), ElementsAre(*expected_ack));
  EXPECT_EQ(m.ack(), *expected_ack);
}

TEST_F(InviteClientTest, Non2xxOverReliableTransportHasTimerDZero) {
  auto m = machine(Reliability::kReliable);
  (void)m.start();
  Output out = m.on_response(*resp(603));
  EXPECT_EQ(m.state(), State::kCompleted);
  EXPECT_THAT(started(out), ElementsAre("D 0"));
  EXPECT_EQ(sent(out).size(), 1u);  // the ACK, even over a reliable transport
  out = m.on_timer(TimerName::kD);
  EXPECT_TRUE(out.terminated);
  EXPECT_EQ(out.notify, Notify::kNone);
  EXPECT_EQ(m.state(), State::kTerminated);
}

TEST_F(InviteClientTest, Non2xxInProceedingCompletes) {
  auto m = machine();
  (void)m.start();
  (void)m.on_response(*resp(180));
  Output out = m.on_response(*resp(480));
  EXPECT_EQ(m.state(), State::kCompleted);
  EXPECT_EQ(out.notify, Notify::kResponse);
  EXPECT_EQ(sent(out).size(), 1u);
  EXPECT_THAT(started(out), ElementsAre("D 32000"));
}

TEST_F(InviteClientTest, CompletedResendsTheAckForEachRetransmittedFinalResponse) {
  auto m = machine();
  (void)m.start();
  (void)m.on_response(*resp(486));
  const std::string ack(m.ack());
  for (int i = 0; i < 3; ++i) {
    Output out = m.on_response(*resp(486));
    EXPECT_EQ(out.verdict, Verdict::kAbsorbed);
    EXPECT_EQ(out.notify, Notify::kNone);  // the TU saw the final response once
    EXPECT_THAT(sent(out), ElementsAre(ack));
    EXPECT_EQ(m.state(), State::kCompleted);
  }
  EXPECT_EQ(m.on_response(*resp(180)).verdict, Verdict::kIgnored);
  EXPECT_EQ(m.on_response(*resp(200)).verdict, Verdict::kIgnored);
  Output out = m.on_timer(TimerName::kD);
  EXPECT_TRUE(out.terminated);
  EXPECT_EQ(m.state(), State::kTerminated);
}

TEST_F(InviteClientTest, TwoHundredInCallingGoesToAcceptedWithoutAck) {
  auto m = machine();
  (void)m.start();
  Output out = m.on_response(*resp(200));
  EXPECT_EQ(m.state(), State::kAccepted);
  EXPECT_EQ(out.notify, Notify::kResponse);
  EXPECT_THAT(sent(out), IsEmpty());  // the ACK for a 2xx is the TU's (end to end)
  EXPECT_TRUE(stops(out, TimerName::kA));
  EXPECT_TRUE(stops(out, TimerName::kB));
  EXPECT_THAT(started(out), ElementsAre("M 32000"));  // 64*T1
  EXPECT_TRUE(m.ack().empty());
}

TEST_F(InviteClientTest, AcceptedPassesEvery2xxUpUntilTimerM) {
  auto m = machine(Reliability::kReliable);
  (void)m.start();
  (void)m.on_response(*resp(180));
  Output out = m.on_response(*resp(200));
  EXPECT_EQ(m.state(), State::kAccepted);
  EXPECT_THAT(started(out), ElementsAre("M 32000"));  // M does not depend on the transport
  for (int i = 0; i < 2; ++i) {
    out = m.on_response(*resp(200));
    EXPECT_EQ(out.notify, Notify::kResponse);
    EXPECT_EQ(out.verdict, Verdict::kAccepted);
    EXPECT_THAT(sent(out), IsEmpty());
  }
  // A 2xx of another fork (other To tag) goes up too.
  out = m.on_response(*response(req_, 202, "fork2"));
  EXPECT_EQ(out.notify, Notify::kResponse);
  // Non-2xx and provisional responses are not expected any more.
  EXPECT_EQ(m.on_response(*resp(486)).verdict, Verdict::kIgnored);
  EXPECT_EQ(m.on_response(*resp(180)).verdict, Verdict::kIgnored);
  EXPECT_EQ(m.on_transport_error().verdict, Verdict::kIgnored);
  EXPECT_EQ(m.state(), State::kAccepted);
  out = m.on_timer(TimerName::kM);
  EXPECT_TRUE(out.terminated);
  EXPECT_EQ(out.notify, Notify::kNone);
  EXPECT_EQ(m.state(), State::kTerminated);
  EXPECT_EQ(m.on_response(*resp(200)).verdict, Verdict::kIgnored);
}

TEST_F(InviteClientTest, TransportErrorInCallingTellsTheTu) {
  auto m = machine();
  (void)m.start();
  Output out = m.on_transport_error();
  EXPECT_EQ(out.notify, Notify::kTransportError);
  EXPECT_TRUE(out.terminated);
  EXPECT_EQ(m.state(), State::kTerminated);
}

TEST_F(InviteClientTest, TransportErrorInCompletedTellsTheTu) {
  auto m = machine();
  (void)m.start();
  (void)m.on_response(*resp(486));
  Output out = m.on_transport_error();
  EXPECT_EQ(out.notify, Notify::kTransportError);
  EXPECT_TRUE(out.terminated);
}

TEST_F(InviteClientTest, ConfiguredT1ScalesATimerBAndM) {
  TimerConfig config;
  config.t1 = Millis{100};
  InviteClient m(req_.message(), Reliability::kUnreliable, config);
  EXPECT_THAT(started(m.start()), ElementsAre("A 100", "B 6400"));
  EXPECT_THAT(started(m.on_timer(TimerName::kA)), ElementsAre("A 200"));
  EXPECT_THAT(started(m.on_response(*resp(200))), ElementsAre("M 6400"));
}

}  // namespace
}  // namespace pinhole::txn
