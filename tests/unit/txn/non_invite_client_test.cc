// Non-INVITE client transaction (RFC 3261 §17.1.2), driven directly: events in, Output checked.
#include "txn/non_invite_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

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
using State = NonInviteClient::State;

Req options() {
  Req r;
  r.method = "OPTIONS";
  return r;
}

class NonInviteClientTest : public ::testing::Test {
 protected:
  NonInviteClient machine(Reliability r = Reliability::kUnreliable) { return {req_.message(), r, TimerConfig{}}; }
  sip::MessagePtr resp(uint16_t status) { return response(req_, status); }

  Req req_ = options();
};

TEST_F(NonInviteClientTest, StartSendsTheRequestAndStartsEAndFOverUdp) {
  auto m = machine();
  Output out = m.start();
  EXPECT_EQ(m.state(), State::kTrying);
  EXPECT_THAT(sent(out), ElementsAre(req_.text()));
  EXPECT_THAT(started(out), ElementsAre("E 500", "F 32000"));  // T1, 64*T1
}

TEST_F(NonInviteClientTest, StartOverReliableTransportHasNoTimerE) {
  auto m = machine(Reliability::kReliable);
  Output out = m.start();
  EXPECT_THAT(sent(out), ElementsAre(req_.text()));
  EXPECT_THAT(started(out), ElementsAre("F 32000"));
}

TEST_F(NonInviteClientTest, TimerEInTryingDoublesUpToT2) {
  auto m = machine();
  (void)m.start();
  for (const char* next : {"E 1000", "E 2000", "E 4000", "E 4000", "E 4000"}) {
    Output out = m.on_timer(TimerName::kE);
    EXPECT_THAT(sent(out), ElementsAre(req_.text()));
    EXPECT_THAT(started(out), ElementsAre(next));
    EXPECT_EQ(m.state(), State::kTrying);
  }
}

TEST_F(NonInviteClientTest, TimerEInProceedingUsesT2) {
  auto m = machine();
  (void)m.start();
  Output out = m.on_response(*resp(100));
  EXPECT_EQ(m.state(), State::kProceeding);
  EXPECT_EQ(out.notify, Notify::kResponse);
  EXPECT_FALSE(stops(out, TimerName::kE));  // retransmissions go on in Proceeding
  EXPECT_FALSE(stops(out, TimerName::kF));
  out = m.on_timer(TimerName::kE);
  EXPECT_THAT(sent(out), ElementsAre(req_.text()));
  EXPECT_THAT(started(out), ElementsAre("E 4000"));
}

TEST_F(NonInviteClientTest, ProvisionalInProceedingGoesToTheTu) {
  auto m = machine();
  (void)m.start();
  (void)m.on_response(*resp(100));
  Output out = m.on_response(*resp(183));
  EXPECT_EQ(out.notify, Notify::kResponse);
  EXPECT_EQ(m.state(), State::kProceeding);
}

TEST_F(NonInviteClientTest, FinalInTryingCompletesWithTimerKOverUdp) {
  auto m = machine();
  (void)m.start();
  Output out = m.on_response(*resp(200));
  EXPECT_EQ(m.state(), State::kCompleted);
  EXPECT_EQ(out.notify, Notify::kResponse);
  EXPECT_TRUE(stops(out, TimerName::kE));
  EXPECT_TRUE(stops(out, TimerName::kF));
  EXPECT_THAT(started(out), ElementsAre("K 5000"));  // T4
  EXPECT_THAT(sent(out), IsEmpty());
}

TEST_F(NonInviteClientTest, FinalOverReliableTransportHasTimerKZero) {
  auto m = machine(Reliability::kReliable);
  (void)m.start();
  Output out = m.on_response(*resp(404));
  EXPECT_EQ(m.state(), State::kCompleted);
  EXPECT_THAT(started(out), ElementsAre("K 0"));
  out = m.on_timer(TimerName::kK);
  EXPECT_TRUE(out.terminated);
  EXPECT_EQ(m.state(), State::kTerminated);
}

TEST_F(NonInviteClientTest, FinalInProceedingCompletes) {
  auto m = machine();
  (void)m.start();
  (void)m.on_response(*resp(100));
  Output out = m.on_response(*resp(503));
  EXPECT_EQ(m.state(), State::kCompleted);
  EXPECT_EQ(out.notify, Notify::kResponse);
  EXPECT_THAT(started(out), ElementsAre("K 5000"));
}

TEST_F(NonInviteClientTest, CompletedAbsorbsRetransmittedFinalResponsesUntilK) {
  auto m = machine();
  (void)m.start();
  (void)m.on_response(*resp(200));
  Output out = m.on_response(*resp(200));
  EXPECT_EQ(out.verdict, Verdict::kAbsorbed);
  EXPECT_EQ(out.notify, Notify::kNone);
  EXPECT_THAT(sent(out), IsEmpty());
  EXPECT_EQ(m.on_response(*resp(180)).verdict, Verdict::kIgnored);
  EXPECT_EQ(m.on_timer(TimerName::kE).verdict, Verdict::kIgnored);
  EXPECT_EQ(m.on_timer(TimerName::kF).verdict, Verdict::kIgnored);
  EXPECT_EQ(m.on_transport_error().verdict, Verdict::kIgnored);
  EXPECT_EQ(m.state(), State::kCompleted);
  out = m.on_timer(TimerName::kK);
  EXPECT_TRUE(out.terminated);
  EXPECT_EQ(out.notify, Notify::kNone);
  EXPECT_EQ(m.state(), State::kTerminated);
}

TEST_F(NonInviteClientTest, TimerFInTryingTimesOut) {
  auto m = machine();
  (void)m.start();
  Output out = m.on_timer(TimerName::kF);
  EXPECT_EQ(out.notify, Notify::kTimeout);
  EXPECT_TRUE(out.terminated);
  EXPECT_EQ(m.state(), State::kTerminated);
}

TEST_F(NonInviteClientTest, TimerFInProceedingTimesOut) {
  auto m = machine(Reliability::kReliable);
  (void)m.start();
  (void)m.on_response(*resp(100));
  Output out = m.on_timer(TimerName::kF);
  EXPECT_EQ(out.notify, Notify::kTimeout);
  EXPECT_TRUE(out.terminated);
}

TEST_F(NonInviteClientTest, TransportErrorInTryingAndProceedingTellsTheTu) {
  auto trying = machine();
  (void)trying.start();
  Output out = trying.on_transport_error();
  EXPECT_EQ(out.notify, Notify::kTransportError);
  EXPECT_TRUE(out.terminated);

  auto proceeding = machine();
  (void)proceeding.start();
  (void)proceeding.on_response(*resp(100));
  out = proceeding.on_transport_error();
  EXPECT_EQ(out.notify, Notify::kTransportError);
  EXPECT_TRUE(out.terminated);
  EXPECT_EQ(proceeding.state(), State::kTerminated);
}

TEST_F(NonInviteClientTest, ConfiguredT2CapsTimerE) {
  TimerConfig config;
  config.t1 = Millis{200};
  config.t2 = Millis{600};
  NonInviteClient m(req_.message(), Reliability::kUnreliable, config);
  EXPECT_THAT(started(m.start()), ElementsAre("E 200", "F 12800"));
  EXPECT_THAT(started(m.on_timer(TimerName::kE)), ElementsAre("E 400"));
  EXPECT_THAT(started(m.on_timer(TimerName::kE)), ElementsAre("E 600"));
  EXPECT_THAT(started(m.on_timer(TimerName::kE)), ElementsAre("E 600"));
}

}  // namespace
}  // namespace pinhole::txn
