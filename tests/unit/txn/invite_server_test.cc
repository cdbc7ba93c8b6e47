// INVITE server transaction (RFC 3261 §17.2.1, RFC 6026 §7.1), driven directly: events in,
// Output checked. Every server state gets a retransmitted INVITE.
#include "txn/invite_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "txn_test_support.h"

namespace pinhole::txn {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::Req;
using testing::response_text;
using testing::sent;
using testing::started;
using testing::stops;
using State = InviteServer::State;

class InviteServerTest : public ::testing::Test {
 protected:
  InviteServer machine(Reliability r = Reliability::kUnreliable) {
    InviteServer m(req_.message(), r, TimerConfig{});
    Output out = m.start();
    EXPECT_EQ(out.notify, Notify::kRequest);
    return m;
  }
  Output respond(InviteServer& m, uint16_t status) { return m.respond(status, response_text(req_, status)); }
  // A retransmission of the INVITE (same bytes).
  Output retransmit(InviteServer& m) { return m.on_request(*req_.message()); }
  // The hop-by-hop ACK for a non-2xx: same branch (RFC 3261 §17.1.1.3).
  Output ack(InviteServer& m) { return m.on_request(*req_.same_transaction("ACK", "a6c85cf").message()); }

  Req req_;
};

TEST_F(InviteServerTest, StartIsProceedingAndPassesTheInviteUp) {
  InviteServer m(req_.message(), Reliability::kUnreliable, TimerConfig{});
  Output out = m.start();
  EXPECT_EQ(m.state(), State::kProceeding);
  EXPECT_EQ(out.notify, Notify::kRequest);
  EXPECT_THAT(sent(out), IsEmpty());
  EXPECT_THAT(started(out), IsEmpty());
  ASSERT_NE(m.request(), nullptr);
  EXPECT_EQ(m.request()->bytes(), req_.text());
}

TEST_F(InviteServerTest, ProceedingAbsorbsRetransmissionsAndResendsTheLatestProvisional) {
  auto m = machine();
  Output out = retransmit(m);  // nothing sent yet: nothing to re-send
  EXPECT_EQ(out.verdict, Verdict::kAbsorbed);
  EXPECT_EQ(out.notify, Notify::kNone);
  EXPECT_THAT(sent(out), IsEmpty());

  out = respond(m, 100);
  EXPECT_THAT(sent(out), ElementsAre(response_text(req_, 100)));
  EXPECT_EQ(m.state(), State::kProceeding);
  out = respond(m, 180);
  EXPECT_THAT(sent(out), ElementsAre(response_text(req_, 180)));
  EXPECT_THAT(started(out), IsEmpty());

  out = retransmit(m);
  EXPECT_EQ(out.verdict, Verdict::kAbsorbed);
  EXPECT_EQ(out.notify, Notify::kNone);
  EXPECT_THAT(sent(out), ElementsAre(response_text(req_, 180)));
  EXPECT_EQ(m.state(), State::kProceeding);
}

TEST_F(InviteServerTest, Non2xxCompletesWithGAndHOverUdp) {
  auto m = machine();
  Output out = respond(m, 486);
  EXPECT_EQ(m.state(), State::kCompleted);
  EXPECT_THAT(sent(out), ElementsAre(response_text(req_, 486)));
  EXPECT_THAT(started(out), ElementsAre("G 500", "H 32000"));  // T1, 64*T1
  EXPECT_EQ(m.last_status(), 486);
}

TEST_F(InviteServerTest, Non2xxOverReliableTransportHasNoTimerG) {
  auto m = machine(Reliability::kReliable);
  Output out = respond(m, 404);
  EXPECT_EQ(m.state(), State::kCompleted);
  EXPECT_THAT(started(out), ElementsAre("H 32000"));  // H runs over every transport
}

TEST_F(InviteServerTest, TimerGRetransmitsTheFinalResponseDoublingUpToT2) {
  auto m = machine();
  (void)respond(m, 486);
  for (const char* next : {"G 1000", "G 2000", "G 4000", "G 4000", "G 4000"}) {
    Output out = m.on_timer(TimerName::kG);
    EXPECT_THAT(sent(out), ElementsAre(response_text(req_, 486)));
    EXPECT_THAT(started(out), ElementsAre(next));
    EXPECT_EQ(m.state(), State::kCompleted);
  }
}

TEST_F(InviteServerTest, CompletedResendsTheFinalResponseOnRetransmittedInvite) {
  auto m = machine();
  (void)respond(m, 180);
  (void)respond(m, 486);
  Output out = retransmit(m);
  EXPECT_EQ(out.verdict, Verdict::kAbsorbed);
  EXPECT_EQ(out.notify, Notify::kNone);
  EXPECT_THAT(sent(out), ElementsAre(response_text(req_, 486)));
  EXPECT_EQ(m.state(), State::kCompleted);
}

TEST_F(InviteServerTest, CompletedRefusesAnotherResponseFromTheTu) {
  auto m = machine();
  (void)respond(m, 486);
  EXPECT_EQ(respond(m, 200).verdict, Verdict::kIgnored);
  EXPECT_EQ(respond(m, 180).verdict, Verdict::kIgnored);
  EXPECT_EQ(respond(m, 500).verdict, Verdict::kIgnored);
  EXPECT_EQ(m.state(), State::kCompleted);
}

TEST_F(InviteServerTest, TimerHWithoutAckTellsTheTuAndTerminates) {
  auto m = machine();
  (void)respond(m, 486);
  Output out = m.on_timer(TimerName::kH);
  EXPECT_EQ(out.notify, Notify::kTimeout);
  EXPECT_TRUE(out.terminated);
  EXPECT_EQ(m.state(), State::kTerminated);
}

TEST_F(InviteServerTest, AckInCompletedConfirmsWithTimerIOverUdp) {
  auto m = machine();
  (void)respond(m, 486);
  Output out = ack(m);
  EXPECT_EQ(m.state(), State::kConfirmed);
  EXPECT_EQ(out.verdict, Verdict::kAccepted);
  EXPECT_EQ(out.notify, Notify::kNone);  // the hop-by-hop ACK never reaches the TU
  EXPECT_THAT(sent(out), IsEmpty());
  EXPECT_TRUE(stops(out, TimerName::kG));
  EXPECT_TRUE(stops(out, TimerName::kH));
  EXPECT_THAT(started(out), ElementsAre("I 5000"));  // T4
}

TEST_F(InviteServerTest, AckOverReliableTransportHasTimerIZero) {
  auto m = machine(Reliability::kReliable);
  (void)respond(m, 486);
  Output out = ack(m);
  EXPECT_EQ(m.state(), State::kConfirmed);
  EXPECT_THAT(started(out), ElementsAre("I 0"));
  out = m.on_timer(TimerName::kI);
  EXPECT_TRUE(out.terminated);
  EXPECT_EQ(m.state(), State::kTerminated);
}

TEST_F(InviteServerTest, ConfirmedAbsorbsAcksAndInvitesSilentlyUntilTimerI) {
  auto m = machine();
  (void)respond(m, 486);
  (void)ack(m);
  for (Output out : {ack(m), retransmit(m)}) {
    EXPECT_EQ(out.verdict, Verdict::kAbsorbed);
    EXPECT_EQ(out.notify, Notify::kNone);
    EXPECT_THAT(sent(out), IsEmpty());
  }
  EXPECT_EQ(m.on_timer(TimerName::kG).verdict, Verdict::kIgnored);
  EXPECT_EQ(m.on_timer(TimerName::kH).verdict, Verdict::kIgnored);
  EXPECT_EQ(m.on_transport_error().verdict, Verdict::kIgnored);
  EXPECT_EQ(m.state(), State::kConfirmed);
  Output out = m.on_timer(TimerName::kI);
  EXPECT_TRUE(out.terminated);
  EXPECT_EQ(out.notify, Notify::kNone);
  EXPECT_EQ(m.state(), State::kTerminated);
}

TEST_F(InviteServerTest, TwoHundredGoesToAcceptedWithTimerL) {
  auto m = machine();
  (void)respond(m, 180);
  Output out = respond(m, 200);
  EXPECT_EQ(m.state(), State::kAccepted);
  EXPECT_THAT(sent(out), ElementsAre(response_text(req_, 200)));
  EXPECT_THAT(started(out), ElementsAre("L 32000"));  // 64*T1, no G: the TU retransmits 2xx
}

TEST_F(InviteServerTest, AcceptedAbsorbsInvitesSendsTuRetransmissionsAndPassesAcksUp) {
  auto m = machine(Reliability::kReliable);
  Output out = respond(m, 200);
  EXPECT_THAT(started(out), ElementsAre("L 32000"));

  out = retransmit(m);  // RFC 6026 §7.1: absorbed, not re-sent, not to the TU
  EXPECT_EQ(out.verdict, Verdict::kAbsorbed);
  EXPECT_EQ(out.notify, Notify::kNone);
  EXPECT_THAT(sent(out), IsEmpty());

  out = respond(m, 200);  // the TU's 2xx retransmission
  EXPECT_EQ(out.verdict, Verdict::kAccepted);
  EXPECT_THAT(sent(out), ElementsAre(response_text(req_, 200)));
  EXPECT_THAT(started(out), IsEmpty());

  EXPECT_EQ(respond(m, 486).verdict, Verdict::kIgnored);
  EXPECT_EQ(respond(m, 180).verdict, Verdict::kIgnored);

  out = ack(m);
  EXPECT_EQ(out.notify, Notify::kAck);
  EXPECT_EQ(m.state(), State::kAccepted);

  out = m.on_transport_error();
  EXPECT_EQ(out.notify, Notify::kTransportError);
  EXPECT_FALSE(out.terminated);
  EXPECT_EQ(m.state(), State::kAccepted);

  out = m.on_timer(TimerName::kL);
  EXPECT_TRUE(out.terminated);
  EXPECT_EQ(m.state(), State::kTerminated);
}

TEST_F(InviteServerTest, AckInProceedingIsIgnored) {
  auto m = machine();
  Output out = ack(m);
  EXPECT_EQ(out.verdict, Verdict::kIgnored);
  EXPECT_EQ(m.state(), State::kProceeding);
}

TEST_F(InviteServerTest, TransportErrorInProceedingAndCompletedTerminates) {
  auto proceeding = machine();
  (void)respond(proceeding, 180);
  Output out = proceeding.on_transport_error();
  EXPECT_EQ(out.notify, Notify::kTransportError);
  EXPECT_TRUE(out.terminated);

  auto completed = machine();
  (void)respond(completed, 486);
  out = completed.on_transport_error();
  EXPECT_EQ(out.notify, Notify::kTransportError);
  EXPECT_TRUE(out.terminated);
  EXPECT_EQ(completed.state(), State::kTerminated);
}

TEST_F(InviteServerTest, TerminatedIgnoresEverything) {
  auto m = machine();
  (void)respond(m, 200);
  (void)m.on_timer(TimerName::kL);
  EXPECT_EQ(retransmit(m).verdict, Verdict::kIgnored);
  EXPECT_EQ(ack(m).verdict, Verdict::kIgnored);
  EXPECT_EQ(respond(m, 200).verdict, Verdict::kIgnored);
  EXPECT_EQ(m.on_transport_error().verdict, Verdict::kIgnored);
}

}  // namespace
}  // namespace pinhole::txn
