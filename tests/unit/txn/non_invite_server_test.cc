// Non-INVITE server transaction (RFC 3261 §17.2.2), driven directly: events in, Output checked.
// Every server state gets a retransmitted request.
#include "txn/non_invite_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "txn_test_support.h"

namespace pinhole::txn {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::Req;
using testing::response_text;
using testing::sent;
using testing::started;
using State = NonInviteServer::State;

Req bye() {
  Req r;
  r.method = "BYE";
  r.to += ";tag=a6c85cf";
  return r;
}

class NonInviteServerTest : public ::testing::Test {
 protected:
  NonInviteServer machine(Reliability r = Reliability::kUnreliable) {
    NonInviteServer m(req_.message(), r, TimerConfig{});
    Output out = m.start();
    EXPECT_EQ(out.notify, Notify::kRequest);
    return m;
  }
  Output respond(NonInviteServer& m, uint16_t status) { return m.respond(status, response_text(req_, status, "")); }
  Output retransmit(NonInviteServer& m) { return m.on_request(*req_.message()); }

  Req req_ = bye();
};

TEST_F(NonInviteServerTest, StartIsTryingAndPassesTheRequestUp) {
  NonInviteServer m(req_.message(), Reliability::kUnreliable, TimerConfig{});
  Output out = m.start();
  EXPECT_EQ(m.state(), State::kTrying);
  EXPECT_EQ(out.notify, Notify::kRequest);
  EXPECT_THAT(sent(out), IsEmpty());
  EXPECT_THAT(started(out), IsEmpty());
}

TEST_F(NonInviteServerTest, TryingDiscardsRetransmissions) {
  auto m = machine();
  Output out = retransmit(m);
  EXPECT_EQ(out.verdict, Verdict::kAbsorbed);
  EXPECT_EQ(out.notify, Notify::kNone);
  EXPECT_THAT(sent(out), IsEmpty());
  EXPECT_EQ(m.state(), State::kTrying);
}

TEST_F(NonInviteServerTest, TransportErrorInTryingIsIgnored) {
  auto m = machine();
  EXPECT_EQ(m.on_transport_error().verdict, Verdict::kIgnored);
  EXPECT_EQ(m.state(), State::kTrying);
}

TEST_F(NonInviteServerTest, ProvisionalMovesToProceedingWhichResendsIt) {
  auto m = machine();
  Output out = respond(m, 100);
  EXPECT_EQ(m.state(), State::kProceeding);
  EXPECT_THAT(sent(out), ElementsAre(response_text(req_, 100, "")));
  EXPECT_THAT(started(out), IsEmpty());
  out = respond(m, 183);
  EXPECT_EQ(m.state(), State::kProceeding);
  out = retransmit(m);
  EXPECT_EQ(out.verdict, Verdict::kAbsorbed);
  EXPECT_EQ(out.notify, Notify::kNone);
  EXPECT_THAT(sent(out), ElementsAre(response_text(req_, 183, "")));
}

TEST_F(NonInviteServerTest, FinalInTryingCompletesWithTimerJOverUdp) {
  auto m = machine();
  Output out = respond(m, 200);
  EXPECT_EQ(m.state(), State::kCompleted);
  EXPECT_THAT(sent(out), ElementsAre(response_text(req_, 200, "")));
  EXPECT_THAT(started(out), ElementsAre("J 32000"));  // 64*T1
  EXPECT_EQ(m.last_status(), 200);
}

TEST_F(NonInviteServerTest, FinalOverReliableTransportHasTimerJZero) {
  auto m = machine(Reliability::kReliable);
  Output out = respond(m, 481);
  EXPECT_EQ(m.state(), State::kCompleted);
  EXPECT_THAT(started(out), ElementsAre("J 0"));
  out = m.on_timer(TimerName::kJ);
  EXPECT_TRUE(out.terminated);
  EXPECT_EQ(m.state(), State::kTerminated);
}

TEST_F(NonInviteServerTest, FinalInProceedingCompletes) {
  auto m = machine();
  (void)respond(m, 100);
  Output out = respond(m, 404);
  EXPECT_EQ(m.state(), State::kCompleted);
  EXPECT_THAT(started(out), ElementsAre("J 32000"));
}

TEST_F(NonInviteServerTest, CompletedResendsTheFinalResponseAndRefusesAnother) {
  auto m = machine();
  (void)respond(m, 100);
  (void)respond(m, 200);
  for (int i = 0; i < 2; ++i) {
    Output out = retransmit(m);
    EXPECT_EQ(out.verdict, Verdict::kAbsorbed);
    EXPECT_EQ(out.notify, Notify::kNone);
    EXPECT_THAT(sent(out), ElementsAre(response_text(req_, 200, "")));
  }
  EXPECT_EQ(respond(m, 500).verdict, Verdict::kIgnored);
  EXPECT_EQ(respond(m, 100).verdict, Verdict::kIgnored);
  EXPECT_EQ(m.state(), State::kCompleted);
  Output out = m.on_timer(TimerName::kJ);
  EXPECT_TRUE(out.terminated);
  EXPECT_EQ(out.notify, Notify::kNone);
  EXPECT_EQ(m.state(), State::kTerminated);
}

TEST_F(NonInviteServerTest, TransportErrorInProceedingAndCompletedTerminates) {
  auto proceeding = machine();
  (void)respond(proceeding, 100);
  Output out = proceeding.on_transport_error();
  EXPECT_EQ(out.notify, Notify::kTransportError);
  EXPECT_TRUE(out.terminated);

  auto completed = machine();
  (void)respond(completed, 200);
  out = completed.on_transport_error();
  EXPECT_EQ(out.notify, Notify::kTransportError);
  EXPECT_TRUE(out.terminated);
  EXPECT_EQ(completed.state(), State::kTerminated);
}

TEST_F(NonInviteServerTest, JOnlyMattersInCompleted) {
  auto m = machine();
  EXPECT_EQ(m.on_timer(TimerName::kJ).verdict, Verdict::kIgnored);
  EXPECT_EQ(m.on_timer(TimerName::kE).verdict, Verdict::kIgnored);
  EXPECT_EQ(m.state(), State::kTrying);
}

TEST_F(NonInviteServerTest, TerminatedIgnoresEverything) {
  auto m = machine(Reliability::kReliable);
  (void)respond(m, 200);
  (void)m.on_timer(TimerName::kJ);
  EXPECT_EQ(retransmit(m).verdict, Verdict::kIgnored);
  EXPECT_EQ(respond(m, 200).verdict, Verdict::kIgnored);
  EXPECT_EQ(m.on_transport_error().verdict, Verdict::kIgnored);
}

}  // namespace
}  // namespace pinhole::txn
