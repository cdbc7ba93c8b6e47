// TransactionTable: routing of requests and responses to the four machines (RFC 3261 §17.1.3,
// §17.2.3, RFC 2543 fallback, CANCEL), retransmission schedules and timeouts on a manual clock,
// deferred deletion, re-entrant TU calls, transport errors, and reporting of what matched nothing.
#include "txn/transaction_table.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "txn_test_support.h"

namespace pinhole::txn {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using testing::parse;
using testing::Req;
using testing::response_text;
using namespace std::chrono_literals;

class TransactionTableTest : public testing::TableTest {
 protected:
  static Req options() {
    Req r;
    r.method = "OPTIONS";
    return r;
  }
  // An INVITE from an RFC 2543 element: no branch on its Via.
  static Req invite_2543() {
    Req r;
    r.vias = {"SIP/2.0/UDP pc33.atlanta.example.com:5060"};
    return r;
  }
  Status respond(TransactionId id, const Req& r, uint16_t status, std::string_view to_tag = "a6c85cf") {
    return table_.respond(id, status, response_text(r, status, to_tag), now());
  }
  size_t sends_of(TransactionId id) const { return transport_.times(id, TimePoint{}).size(); }
};

// ---------------------------------------------------------------------------------------------
// Retransmission schedules and timeouts (RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1)

TEST_F(TransactionTableTest, InviteClientTimerAScheduleAndTimerBOverUdp) {
  const TimePoint t0 = now();
  const TransactionId id = send(Req{});
  EXPECT_EQ(table_.state(id), "Calling");
  run_until(t0 + 32s - 1ms);
  // T1 doubling, no cap: retransmissions at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s.
  EXPECT_THAT(transport_.times(id, t0), ElementsAre(0, 500, 1500, 3500, 7500, 15500, 31500));
  EXPECT_THAT(tu_.events, IsEmpty());
  run_until(t0 + 32s);  // Timer B = 64*T1
  EXPECT_THAT(tu_.events, ElementsAre("timeout 1 408", "terminated 1"));
  EXPECT_EQ(table_.size(), 0u);
  EXPECT_EQ(table_.state(id), "");
  EXPECT_EQ(table_.counters().timeouts, 1u);
  run_until(t0 + 100s);
  EXPECT_EQ(transport_.sent.size(), 7u);
  EXPECT_FALSE(table_.next_deadline().has_value());
}

TEST_F(TransactionTableTest, InviteClientOverTcpSendsOnceAndStillTimesOut) {
  const TimePoint t0 = now();
  const TransactionId id = send(Req{}, Reliability::kReliable);
  run_until(t0 + 32s);
  EXPECT_THAT(transport_.times(id, t0), ElementsAre(0));
  EXPECT_THAT(tu_.events, ElementsAre("timeout 1 408", "terminated 1"));
}

TEST_F(TransactionTableTest, NonInviteClientTimerEScheduleCappedAtT2AndTimerF) {
  const TimePoint t0 = now();
  const TransactionId id = send(options());
  run_until(t0 + 32s - 1ms);
  // 0.5, 1, 2, 4, 4, 4... s apart.
  EXPECT_THAT(transport_.times(id, t0),
              ElementsAre(0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500));
  EXPECT_THAT(tu_.events, IsEmpty());
  run_until(t0 + 32s);  // Timer F = 64*T1
  EXPECT_THAT(tu_.events, ElementsAre("timeout 1 408", "terminated 1"));
}

TEST_F(TransactionTableTest, NonInviteClientRetransmitsEveryT2InProceedingThenWaitsK) {
  const TimePoint t0 = now();
  const TransactionId id = send(options());
  run_until(t0 + 1000ms);
  EXPECT_EQ(receive_response(response_text(options(), 100)).disposition, Disposition::kPassedToTu);
  EXPECT_EQ(table_.state(id), "Proceeding");
  run_until(t0 + 12000ms);
  // E was armed for 1.5 s before the 100 came; from then on every T2.
  EXPECT_THAT(transport_.times(id, t0), ElementsAre(0, 500, 1500, 5500, 9500));
  EXPECT_EQ(receive_response(response_text(options(), 200)).disposition, Disposition::kPassedToTu);
  EXPECT_EQ(table_.state(id), "Completed");
  run_until(t0 + 17000ms - 1ms);
  EXPECT_EQ(table_.state(id), "Completed");
  run_until(t0 + 17000ms);  // Timer K = T4
  EXPECT_THAT(tu_.events, ElementsAre("response 1 100", "response 1 200", "terminated 1"));
  EXPECT_EQ(transport_.sent.size(), 5u);
}

TEST_F(TransactionTableTest, InviteServerTimerGScheduleAndTimerH) {
  Req invite;
  const TimePoint t0 = now();
  const Received r = receive(invite);
  ASSERT_EQ(r.disposition, Disposition::kNewTransaction);
  ASSERT_TRUE(respond(r.txn, invite, 486).ok());
  run_until(t0 + 32s - 1ms);
  EXPECT_THAT(transport_.times(r.txn, t0),
              ElementsAre(0, 500, 1500, 3500, 7500, 11500, 15500, 19500, 23500, 27500, 31500));
  EXPECT_EQ(transport_.sent.back().bytes, response_text(invite, 486));
  EXPECT_EQ(transport_.sent.back().context, 9u);  // back where the INVITE came from
  run_until(t0 + 32s);
  EXPECT_THAT(tu_.events, ElementsAre("request 1 INVITE", "timeout 1 408", "terminated 1"));
}

TEST_F(TransactionTableTest, AckForNon2xxStopsGAndIsAbsorbedThenTimerI) {
  Req invite;
  const TimePoint t0 = now();
  const TransactionId id = receive(invite).txn;
  ASSERT_TRUE(respond(id, invite, 486).ok());
  run_until(t0 + 600ms);
  const Received r = receive(invite.same_transaction("ACK", "a6c85cf"));
  EXPECT_EQ(r.disposition, Disposition::kAbsorbed);
  EXPECT_EQ(r.txn, id);
  EXPECT_NE(r.message, nullptr);  // nobody kept it
  EXPECT_EQ(table_.state(id), "Confirmed");
  run_until(t0 + 5600ms - 1ms);
  EXPECT_EQ(table_.state(id), "Confirmed");
  run_until(t0 + 5600ms);  // Timer I = T4 after the ACK
  EXPECT_THAT(transport_.times(id, t0), ElementsAre(0, 500));
  EXPECT_THAT(tu_.events, ElementsAre("request 1 INVITE", "terminated 1"));  // the TU never saw the ACK
  EXPECT_EQ(table_.counters().requests_absorbed, 1u);
}

// T1 = 100 ms, T2 = 400 ms, T4 = 1 s.
class FastTimersTest : public testing::TableTest {
 protected:
  FastTimersTest() : TableTest(TimerConfig{Millis{100}, Millis{400}, Millis{1000}, Millis{32000}}) {}
};

TEST_F(FastTimersTest, TimersFollowTheConfiguredT1AndT2) {
  const TimePoint t0 = now();
  const TransactionId invite = send(Req{});
  Req options;
  options.method = "OPTIONS";
  options.vias[0] = "SIP/2.0/UDP proxy.atlanta.example.com;branch=z9hG4bKopt";
  const TransactionId opt = send(options);
  run_until(t0 + 6400ms);
  EXPECT_THAT(transport_.times(invite, t0), ElementsAre(0, 100, 300, 700, 1500, 3100, 6300));
  EXPECT_THAT(transport_.times(opt, t0), ElementsAre(0, 100, 300, 700, 1100, 1500, 1900, 2300, 2700, 3100, 3500, 3900,
                                                     4300, 4700, 5100, 5500, 5900, 6300));
  EXPECT_THAT(tu_.events, ElementsAre("timeout 1 408", "terminated 1", "timeout 2 408", "terminated 2"));
}

// ---------------------------------------------------------------------------------------------
// Client side: responses routed by branch + CSeq method

TEST_F(TransactionTableTest, TwoHundredPassesWithoutAckAndTheClientStaysAcceptedUntilM) {
  const TimePoint t0 = now();
  Req invite;
  const TransactionId id = send(invite);
  run_until(t0 + 100ms);
  Received r = receive_response(response_text(invite, 200));
  EXPECT_EQ(r.disposition, Disposition::kPassedToTu);
  EXPECT_EQ(r.txn, id);
  EXPECT_NE(r.message, nullptr);  // the TU did not keep it: handed back
  EXPECT_EQ(table_.state(id), "Accepted");
  run_until(t0 + 20s);
  r = receive_response(response_text(invite, 200));  // the UAS retransmits its 2xx
  EXPECT_EQ(r.disposition, Disposition::kPassedToTu);
  run_until(t0 + 100ms + 32s - 1ms);
  EXPECT_EQ(table_.state(id), "Accepted");
  EXPECT_EQ(transport_.sent.size(), 1u);  // the INVITE only: no ACK, no retransmission
  run_until(t0 + 100ms + 32s);            // Timer M = 64*T1
  EXPECT_THAT(tu_.events, ElementsAre("response 1 200", "response 1 200", "terminated 1"));
  r = receive_response(response_text(invite, 200));
  EXPECT_EQ(r.disposition, Disposition::kNoMatch);  // now the proxy forwards it statelessly
  EXPECT_NE(r.message, nullptr);
}

TEST_F(TransactionTableTest, Non2xxIsAckedHopByHopAndRetransmissionsReAcked) {
  const TimePoint t0 = now();
  Req invite;
  const TransactionId id = send(invite, Reliability::kUnreliable, 42);
  Received r = receive_response(response_text(invite, 486));
  EXPECT_EQ(r.disposition, Disposition::kPassedToTu);
  EXPECT_EQ(r.txn, id);
  ASSERT_EQ(transport_.sent.size(), 2u);
  EXPECT_EQ(transport_.sent[1].context, 42u);  // the ACK goes where the INVITE went
  auto ack = parse(transport_.sent[1].bytes);
  ASSERT_NE(ack, nullptr);
  EXPECT_EQ(ack->method(), sip::Method::kAck);
  EXPECT_EQ((*ack->top_via())->branch, "z9hG4bK74bf9.1");
  EXPECT_EQ((*ack->to())->tag, "a6c85cf");

  r = receive_response(response_text(invite, 486));
  EXPECT_EQ(r.disposition, Disposition::kAbsorbed);
  ASSERT_EQ(transport_.sent.size(), 3u);
  EXPECT_EQ(transport_.sent[2].bytes, transport_.sent[1].bytes);
  EXPECT_EQ(table_.counters().responses_absorbed, 1u);

  run_until(t0 + 32s);  // Timer D
  EXPECT_THAT(tu_.events, ElementsAre("response 1 486", "terminated 1"));
  EXPECT_EQ(table_.size(), 0u);
  EXPECT_EQ(transport_.sent.size(), 3u);  // Timer A stopped at the 486
}

TEST_F(TransactionTableTest, ProvisionalAfterFinalIsDroppedAndReported) {
  Req invite;
  const TransactionId id = send(invite);
  (void)receive_response(response_text(invite, 486));
  Received r = receive_response(response_text(invite, 180));
  EXPECT_EQ(r.disposition, Disposition::kDropped);
  EXPECT_EQ(r.txn, id);
  EXPECT_NE(r.message, nullptr);
  EXPECT_EQ(table_.counters().responses_dropped, 1u);
}

TEST_F(TransactionTableTest, StrayResponsesMatchNothingAndAreHandedBack) {
  Req invite;
  (void)send(invite);
  Req other = invite;
  other.vias[0] = "SIP/2.0/UDP proxy.atlanta.example.com;branch=z9hG4bKnotours";
  Received r = receive_response(response_text(other, 200));
  EXPECT_EQ(r.disposition, Disposition::kNoMatch);
  EXPECT_EQ(r.txn, kNoTransaction);
  ASSERT_NE(r.message, nullptr);
  EXPECT_EQ(r.message->status(), 200);
  // Same branch, other CSeq method: the response to a CANCEL is not the INVITE's (§17.1.3).
  Req cancel = invite.same_transaction("CANCEL");
  r = receive_response(response_text(cancel, 200));
  EXPECT_EQ(r.disposition, Disposition::kNoMatch);
  EXPECT_EQ(table_.counters().responses_unmatched, 2u);
  EXPECT_THAT(tu_.events, IsEmpty());
}

TEST_F(TransactionTableTest, CancelAndInviteClientTransactionsShareABranch) {
  Req invite;
  const TransactionId inv = send(invite);
  const TransactionId can = send(invite.same_transaction("CANCEL"));
  EXPECT_NE(inv, can);
  EXPECT_EQ(table_.kind(can), TransactionKind::kNonInviteClient);
  EXPECT_EQ(receive_response(response_text(invite.same_transaction("CANCEL"), 200)).txn, can);
  EXPECT_EQ(receive_response(response_text(invite, 487)).txn, inv);
  EXPECT_THAT(tu_.events, ElementsAre("response 2 200", "response 1 487"));
}

TEST_F(TransactionTableTest, TheTuMayKeepTheResponse) {
  Req invite;
  (void)send(invite);
  tu_.take_messages = true;
  Received r = receive_response(response_text(invite, 180));
  EXPECT_EQ(r.disposition, Disposition::kPassedToTu);
  EXPECT_EQ(r.message, nullptr);
  ASSERT_EQ(tu_.kept.size(), 1u);
  EXPECT_EQ(tu_.kept[0]->status(), 180);
}

TEST_F(TransactionTableTest, SendRequestRefusesAckMissingCookieAndReusedBranch) {
  Req invite;
  EXPECT_EQ(table_.send_request(invite.same_transaction("ACK", "x").message(), Reliability::kUnreliable, 1, now())
                .error()
                .status,
            500);
  EXPECT_FALSE(table_.send_request(invite_2543().message(), Reliability::kUnreliable, 1, now()).ok());
  EXPECT_TRUE(table_.send_request(invite.message(), Reliability::kUnreliable, 1, now()).ok());
  EXPECT_FALSE(table_.send_request(invite.message(), Reliability::kUnreliable, 1, now()).ok());
  EXPECT_EQ(table_.counters().tu_calls_rejected, 3u);
  EXPECT_EQ(table_.size(), 1u);
  EXPECT_EQ(transport_.sent.size(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Server side: requests routed by server_transaction_key

TEST_F(TransactionTableTest, RetransmittedInviteIsAbsorbedAndGetsTheLatestResponse) {
  Req invite;
  Received first = receive(invite);
  EXPECT_EQ(first.disposition, Disposition::kNewTransaction);
  EXPECT_EQ(first.message, nullptr);  // the transaction keeps the request
  EXPECT_EQ(table_.kind(first.txn), TransactionKind::kInviteServer);
  ASSERT_NE(table_.request(first.txn), nullptr);
  EXPECT_EQ(table_.request(first.txn)->bytes(), invite.text());
  ASSERT_TRUE(respond(first.txn, invite, 180).ok());

  Received again = receive(invite);
  EXPECT_EQ(again.disposition, Disposition::kAbsorbed);
  EXPECT_EQ(again.txn, first.txn);
  ASSERT_EQ(transport_.sent.size(), 2u);
  EXPECT_EQ(transport_.sent[1].bytes, response_text(invite, 180));
  EXPECT_THAT(tu_.events, ElementsAre("request 1 INVITE"));  // once
  EXPECT_EQ(table_.size(), 1u);
}

TEST_F(TransactionTableTest, RetransmittedNonInviteIsAbsorbedInEveryState) {
  Req req = options();
  const TransactionId id = receive(req).txn;
  EXPECT_EQ(table_.kind(id), TransactionKind::kNonInviteServer);
  EXPECT_EQ(receive(req).disposition, Disposition::kAbsorbed);  // Trying: nothing to re-send
  EXPECT_TRUE(transport_.sent.empty());
  ASSERT_TRUE(respond(id, req, 100).ok());
  EXPECT_EQ(receive(req).disposition, Disposition::kAbsorbed);  // Proceeding: the 100 again
  ASSERT_TRUE(respond(id, req, 200).ok());
  EXPECT_EQ(receive(req).disposition, Disposition::kAbsorbed);  // Completed: the 200 again
  std::vector<std::string> bytes;
  for (const auto& s : transport_.sent) bytes.push_back(s.bytes);
  EXPECT_THAT(bytes, ElementsAre(response_text(req, 100), response_text(req, 100), response_text(req, 200),
                                 response_text(req, 200)));
  EXPECT_THAT(tu_.events, ElementsAre("request 1 OPTIONS"));
  EXPECT_EQ(table_.counters().requests_absorbed, 3u);
}

TEST_F(TransactionTableTest, AckFor2xxMatchesNothing) {
  Req invite;
  const TransactionId id = receive(invite).txn;
  ASSERT_TRUE(respond(id, invite, 200).ok());
  EXPECT_EQ(table_.state(id), "Accepted");
  // The ACK for a 2xx is a new transaction of the UAC: new branch (RFC 3261 §13.2.2.4).
  Req ack = invite.same_transaction("ACK", "a6c85cf");
  ack.vias[0] = "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnewack";
  Received r = receive(ack);
  EXPECT_EQ(r.disposition, Disposition::kNoMatch);
  ASSERT_NE(r.message, nullptr);
  EXPECT_EQ(r.message->method(), sip::Method::kAck);
  EXPECT_EQ(table_.counters().acks_unmatched, 1u);
  EXPECT_EQ(table_.size(), 1u);  // no transaction for an ACK
  // The retransmitted INVITE is absorbed in Accepted, nothing re-sent.
  EXPECT_EQ(receive(invite).disposition, Disposition::kAbsorbed);
  EXPECT_EQ(transport_.sent.size(), 1u);
  EXPECT_THAT(tu_.events, ElementsAre("request 1 INVITE"));
}

TEST_F(TransactionTableTest, AcceptedServerSendsTuRetransmissionsUntilTimerL) {
  const TimePoint t0 = now();
  Req invite;
  const TransactionId id = receive(invite).txn;
  ASSERT_TRUE(respond(id, invite, 200).ok());
  run_until(t0 + 500ms);
  ASSERT_TRUE(respond(id, invite, 200).ok());
  EXPECT_EQ(respond(id, invite, 486).error().status, 500);
  run_until(t0 + 32s - 1ms);
  EXPECT_EQ(table_.state(id), "Accepted");
  EXPECT_THAT(transport_.times(id, t0), ElementsAre(0, 500));
  run_until(t0 + 32s);  // Timer L = 64*T1
  EXPECT_THAT(tu_.events, ElementsAre("request 1 INVITE", "terminated 1"));
}

TEST_F(TransactionTableTest, CancelGetsItsOwnTransactionAndFindsItsInvite) {
  Req invite;
  const TransactionId inv = receive(invite).txn;
  const Req cancel = invite.same_transaction("CANCEL");
  Received r = receive(cancel);
  EXPECT_EQ(r.disposition, Disposition::kNewTransaction);
  EXPECT_NE(r.txn, inv);
  EXPECT_EQ(table_.kind(r.txn), TransactionKind::kNonInviteServer);
  EXPECT_THAT(tu_.events, ElementsAre("request 1 INVITE", "request 2 CANCEL cancels 1"));
  // The TU answers both (RFC 3261 §9.2): 200 to the CANCEL, 487 to the INVITE.
  ASSERT_TRUE(respond(r.txn, cancel, 200).ok());
  ASSERT_TRUE(respond(inv, invite, 487).ok());
  EXPECT_EQ(table_.state(r.txn), "Completed");
  EXPECT_EQ(table_.state(inv), "Completed");
  // A retransmitted CANCEL is absorbed by its own transaction.
  EXPECT_EQ(receive(cancel).disposition, Disposition::kAbsorbed);
  EXPECT_EQ(transport_.sent.back().bytes, response_text(cancel, 200));
}

TEST_F(TransactionTableTest, CancelForAnUnknownInviteSaysSo) {
  Req invite;
  Received r = receive(invite.same_transaction("CANCEL"));
  EXPECT_EQ(r.disposition, Disposition::kNewTransaction);
  EXPECT_THAT(tu_.events, ElementsAre("request 1 CANCEL"));  // no "cancels": answer 481
}

TEST_F(TransactionTableTest, Rfc2543RequestsMatchWithoutBranch) {
  const Req invite = invite_2543();
  Received first = receive(invite);
  ASSERT_EQ(first.disposition, Disposition::kNewTransaction);
  EXPECT_EQ(receive(invite).disposition, Disposition::kAbsorbed);
  // Another CSeq is another transaction.
  Req next = invite;
  next.cseq_number = "314160";
  EXPECT_EQ(receive(next).disposition, Disposition::kNewTransaction);
  // The CANCEL finds the INVITE by Request-URI, From tag, Call-ID, CSeq number and top Via.
  Received cancel = receive(invite.same_transaction("CANCEL"));
  EXPECT_THAT(tu_.events, ElementsAre("request 1 INVITE", "request 2 INVITE", "request 3 CANCEL cancels 1"));
  // The hop-by-hop ACK (with the To tag of the response) matches the INVITE.
  ASSERT_TRUE(respond(first.txn, invite, 404).ok());
  Received ack = receive(invite.same_transaction("ACK", "a6c85cf"));
  EXPECT_EQ(ack.disposition, Disposition::kAbsorbed);
  EXPECT_EQ(ack.txn, first.txn);
  EXPECT_EQ(table_.state(first.txn), "Confirmed");
  EXPECT_NE(cancel.txn, first.txn);
}

TEST_F(TransactionTableTest, BranchWithoutMagicCookieUsesRfc2543Matching) {
  Req invite;
  invite.vias = {"SIP/2.0/UDP pc33.atlanta.example.com;branch=1234abcd"};
  const TransactionId id = receive(invite).txn;
  EXPECT_EQ(receive(invite).txn, id);
  // Same old-style branch, different Request-URI: not the same transaction under RFC 2543 rules.
  Req other = invite;
  other.ruri = "sip:carol@biloxi.example.com";
  Received r = receive(other);
  EXPECT_EQ(r.disposition, Disposition::kNewTransaction);
  EXPECT_NE(r.txn, id);
}

TEST_F(TransactionTableTest, Rfc2543AckFor2xxInAcceptedGoesToTheTu) {
  const Req invite = invite_2543();
  const TransactionId id = receive(invite).txn;
  ASSERT_TRUE(respond(id, invite, 200).ok());
  Received r = receive(invite.same_transaction("ACK", "a6c85cf"));
  EXPECT_EQ(r.disposition, Disposition::kPassedToTu);
  EXPECT_EQ(r.txn, id);
  EXPECT_NE(r.message, nullptr);  // the recording TU did not keep it
  EXPECT_THAT(tu_.events, ElementsAre("request 1 INVITE", "ack 1"));
  EXPECT_EQ(table_.state(id), "Accepted");
}

TEST_F(TransactionTableTest, MalformedMessagesAreReported) {
  Req no_via;
  no_via.vias.clear();
  Received r = receive(no_via);
  EXPECT_EQ(r.disposition, Disposition::kMalformed);
  EXPECT_NE(r.message, nullptr);
  r = receive_response(response_text(no_via, 200));
  EXPECT_EQ(r.disposition, Disposition::kMalformed);
  EXPECT_EQ(table_.counters().malformed, 2u);
  EXPECT_EQ(table_.size(), 0u);
  EXPECT_THAT(tu_.events, IsEmpty());
}

TEST_F(TransactionTableTest, RespondRefusals) {
  Req invite;
  const TransactionId server = receive(invite).txn;
  const TransactionId client = send(options());
  EXPECT_EQ(respond(12345, invite, 200).error().status, 481);
  EXPECT_EQ(respond(client, options(), 200).error().status, 500);
  ASSERT_TRUE(respond(server, invite, 486).ok());
  EXPECT_EQ(respond(server, invite, 500).error().status, 500);  // a second final response
  EXPECT_EQ(table_.counters().tu_calls_rejected, 3u);
}

// ---------------------------------------------------------------------------------------------
// Deletion, re-entrancy, transport errors

TEST_F(TransactionTableTest, TerminatedTransactionsAreDeletedAfterTheCallbackReturns) {
  Req bye = options();
  bye.method = "BYE";
  bool checked = false;
  tu_.on_terminated_hook = [&](TransactionId txn) {
    // Unlinked already...
    EXPECT_EQ(table_.state(txn), "");
    EXPECT_EQ(table_.request(txn), nullptr);
    EXPECT_EQ(table_.size(), 0u);
    checked = true;
  };
  const TransactionId id = receive(bye, Reliability::kReliable).txn;
  ASSERT_TRUE(respond(id, bye, 200).ok());
  EXPECT_EQ(table_.state(id), "Completed");  // J = 0 fires at the next advance, not inside respond
  EXPECT_EQ(table_.next_deadline(), now());
  table_.advance(now());
  EXPECT_TRUE(checked);
  EXPECT_THAT(tu_.events, ElementsAre("request 1 BYE", "terminated 1"));
  EXPECT_EQ(receive(bye, Reliability::kReliable).disposition, Disposition::kNewTransaction);  // a new one
}

TEST_F(TransactionTableTest, ARequestStillHeldAtTerminationIsFreedAfterTheCallbackReturns) {
  // No final response was sent (the connection failed in Proceeding), so the transaction still
  // holds its request when it ends: unlinked at on_terminated, destroyed only afterwards.
  Req bye = options();
  bye.method = "BYE";
  bool checked = false;
  tu_.on_terminated_hook = [&](TransactionId txn) {
    EXPECT_EQ(table_.request(txn), nullptr);  // unlinked...
    ASSERT_EQ(tu_.requests.size(), 1u);       // ...but the request the TU was given is readable (ASan)
    auto call_id = tu_.requests[0]->call_id();
    ASSERT_TRUE(call_id.ok());
    EXPECT_EQ(*call_id, "a84b4c76e66710@pc33.atlanta.example.com");
    checked = true;
  };
  const TransactionId id = receive(bye, Reliability::kReliable).txn;
  ASSERT_TRUE(respond(id, bye, 100).ok());
  EXPECT_NE(table_.request(id), nullptr);
  table_.transport_error(id, now());
  EXPECT_TRUE(checked);
  EXPECT_EQ(table_.size(), 0u);
}

TEST_F(TransactionTableTest, TheTuMayAnswerFromInsideOnRequest) {
  Req invite;
  tu_.on_request_hook = [&](TransactionId txn, const sip::Message& request) {
    EXPECT_EQ(request.method(), sip::Method::kInvite);
    EXPECT_TRUE(respond(txn, invite, 100).ok());
    EXPECT_TRUE(respond(txn, invite, 486).ok());
  };
  const TimePoint t0 = now();
  const TransactionId id = receive(invite).txn;
  EXPECT_EQ(table_.state(id), "Completed");
  run_until(t0 + 600ms);
  EXPECT_THAT(transport_.times(id, t0), ElementsAre(0, 0, 500));  // 100, 486, 486 by Timer G
}

// A transaction keeps its request only until it has a final response: the Timer D/H/I/J/K/L
// waits that follow (up to 32 s over UDP) need the last response, the ACK or nothing. The TU's
// reference from on_request stays valid until the callback returns.
TEST_F(TransactionTableTest, RequestsAreFreedOnceTheFinalResponseIsSentOrReceived) {
  Req invite;
  std::string seen_after_final;
  tu_.on_request_hook = [&](TransactionId txn, const sip::Message& request) {
    EXPECT_TRUE(respond(txn, invite, 486).ok());
    EXPECT_EQ(table_.request(txn), nullptr);          // no longer handed out...
    seen_after_final = std::string(request.bytes());  // ...but alive until the callback returns
  };
  const TransactionId server = receive(invite).txn;
  EXPECT_EQ(seen_after_final, invite.text());
  EXPECT_EQ(table_.state(server), "Completed");
  EXPECT_EQ(table_.request(server), nullptr);
  EXPECT_EQ(receive(invite).disposition, Disposition::kAbsorbed);  // retransmission: the 486 again
  ASSERT_EQ(transport_.sent.size(), 2u);
  EXPECT_EQ(transport_.sent[1].bytes, transport_.sent[0].bytes);
  tu_.on_request_hook = nullptr;

  Req req = options();
  const TransactionId nis = receive(req).txn;
  ASSERT_TRUE(respond(nis, req, 100).ok());
  EXPECT_NE(table_.request(nis), nullptr);  // provisional: still needed
  ASSERT_TRUE(respond(nis, req, 200).ok());
  EXPECT_EQ(table_.request(nis), nullptr);
  EXPECT_EQ(receive(req).disposition, Disposition::kAbsorbed);
  EXPECT_EQ(transport_.sent.back().bytes, response_text(req, 200));

  Req out;
  out.vias = {"SIP/2.0/UDP proxy.example.com;branch=z9hG4bKout1"};
  const TransactionId ic = send(out);
  EXPECT_NE(table_.request(ic), nullptr);
  EXPECT_EQ(receive_response(response_text(out, 180)).disposition, Disposition::kPassedToTu);
  EXPECT_NE(table_.request(ic), nullptr);  // Proceeding: a CANCEL may still need it
  const size_t before = transport_.sent.size();
  EXPECT_EQ(receive_response(response_text(out, 486)).disposition, Disposition::kPassedToTu);
  EXPECT_EQ(table_.request(ic), nullptr);
  EXPECT_EQ(receive_response(response_text(out, 486)).disposition, Disposition::kAbsorbed);
  ASSERT_EQ(transport_.sent.size(), before + 2);  // the ACK, then the same ACK again
  EXPECT_EQ(transport_.sent[before + 1].bytes, transport_.sent[before].bytes);

  Req nic = options();
  nic.vias = {"SIP/2.0/UDP proxy.example.com;branch=z9hG4bKout2"};
  const TransactionId nc = send(nic);
  EXPECT_EQ(receive_response(response_text(nic, 200)).disposition, Disposition::kPassedToTu);
  EXPECT_EQ(table_.request(nc), nullptr);
  EXPECT_EQ(table_.state(nc), "Completed");
}

TEST_F(TransactionTableTest, TheTuMayForwardFromInsideOnRequest) {
  Req incoming;
  incoming.vias = {"SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8"};
  Req outgoing;  // our Via on top
  tu_.on_request_hook = [&](TransactionId, const sip::Message&) {
    auto id = table_.send_request(outgoing.message(), Reliability::kUnreliable, 5, now());
    EXPECT_TRUE(id.ok());
  };
  const TransactionId server = receive(incoming).txn;
  EXPECT_EQ(table_.size(), 2u);
  EXPECT_EQ(transport_.sent.size(), 1u);
  EXPECT_EQ(transport_.sent[0].context, 5u);
  EXPECT_NE(transport_.sent[0].txn, server);
  EXPECT_EQ(table_.state(transport_.sent[0].txn), "Calling");
}

TEST_F(TransactionTableTest, SendFailureDuringATuCallIsReportedByTheNextEntryPoint) {
  transport_.fail = true;
  const TransactionId id = send(options());
  EXPECT_THAT(tu_.events, IsEmpty());  // no callback from inside send_request
  EXPECT_EQ(table_.next_deadline(), now());
  table_.advance(now());
  EXPECT_THAT(tu_.events, ElementsAre("transport-error 1 503", "terminated 1"));
  EXPECT_EQ(table_.counters().send_failures, 1u);
  EXPECT_EQ(table_.counters().transport_errors, 1u);
  EXPECT_EQ(table_.state(id), "");
}

TEST_F(TransactionTableTest, SendFailureDuringAnEntryPointIsReportedBeforeItReturns) {
  Req invite;
  const TransactionId id = receive(invite).txn;
  ASSERT_TRUE(respond(id, invite, 486).ok());
  transport_.fail = true;
  Received r = receive(invite);  // the re-sent 486 fails
  EXPECT_EQ(r.disposition, Disposition::kAbsorbed);
  EXPECT_THAT(tu_.events, ElementsAre("request 1 INVITE", "transport-error 1 503", "terminated 1"));
  EXPECT_EQ(table_.size(), 0u);
}

TEST_F(TransactionTableTest, AsynchronousTransportErrorOnAClient) {
  const TransactionId id = send(Req{}, Reliability::kReliable);
  table_.transport_error(id, now());
  EXPECT_THAT(tu_.events, ElementsAre("transport-error 1 503", "terminated 1"));
  table_.transport_error(id, now());  // unknown by now: nothing happens
  EXPECT_EQ(tu_.events.size(), 2u);
}

// ---------------------------------------------------------------------------------------------
// Requests given as bytes (parsed only when needed)

TEST_F(TransactionTableTest, RequestGivenAsBytesIsRetransmittedAsIsAndMatchesItsResponses) {
  const TimePoint t0 = now();
  Req invite;
  auto id = table_.send_request(invite.text(), "INVITE", "z9hG4bK74bf9.1", Reliability::kUnreliable, 3, now());
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(table_.kind(*id), TransactionKind::kInviteClient);
  run_until(t0 + 1500ms);
  EXPECT_THAT(transport_.times(*id, t0), ElementsAre(0, 500, 1500));
  for (const auto& sent : transport_.sent) EXPECT_EQ(sent.bytes, invite.text());
  // The key built from (branch, method) is the one a response's top Via and CSeq give.
  EXPECT_EQ(receive_response(response_text(invite, 180)).disposition, Disposition::kPassedToTu);
  EXPECT_EQ(table_.state(*id), "Proceeding");
  EXPECT_EQ(table_.counters().unparsable_requests, 0u);
}

TEST_F(TransactionTableTest, RequestGivenAsBytesIsParsedForTheTu) {
  Req options_req = options();
  auto id = table_.send_request(options_req.text(), "OPTIONS", "z9hG4bK74bf9.1", Reliability::kReliable, 3, now());
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(table_.kind(*id), TransactionKind::kNonInviteClient);
  const sip::Message* request = table_.request(*id);
  ASSERT_NE(request, nullptr);
  EXPECT_EQ(request->method(), sip::Method::kOptions);
  EXPECT_EQ(request->bytes(), options_req.text());
  EXPECT_EQ(table_.request(*id), request);  // parsed once
  (void)receive_response(response_text(options_req, 200));
  EXPECT_EQ(table_.request(*id), nullptr);  // released at the final response, as before
}

TEST_F(TransactionTableTest, AckForNon2xxIsBuiltFromTheLazilyParsedInvite) {
  Req invite;
  invite.extra = "Route: <sip:p2.example.com;lr>\r\n";
  auto by_bytes = table_.send_request(invite.text(), "INVITE", "z9hG4bK74bf9.1", Reliability::kUnreliable, 42, now());
  ASSERT_TRUE(by_bytes.ok());
  Received r = receive_response(response_text(invite, 486));
  EXPECT_EQ(r.disposition, Disposition::kPassedToTu);
  ASSERT_EQ(transport_.sent.size(), 2u);
  EXPECT_EQ(transport_.sent[1].context, 42u);
  const std::string ack = transport_.sent[1].bytes;
  auto parsed = parse(ack);
  ASSERT_NE(parsed, nullptr);
  EXPECT_EQ(parsed->method(), sip::Method::kAck);
  EXPECT_EQ((*parsed->top_via())->branch, "z9hG4bK74bf9.1");
  EXPECT_EQ((*parsed->to())->tag, "a6c85cf");
  // The INVITE's route set (the ACK follows the INVITE's path, §17.1.1.3).
  EXPECT_NE(ack.find("\r\nRoute: <sip:p2.example.com;lr>\r\n"), std::string::npos);

  // The same ACK as for an INVITE given parsed.
  Req again = invite;
  again.vias[0] = "SIP/2.0/UDP proxy.atlanta.example.com;branch=z9hG4bKparsed";
  const TransactionId by_message = send(again);
  (void)receive_response(response_text(again, 486));
  ASSERT_EQ(transport_.sent.size(), 4u);
  std::string expected = transport_.sent[3].bytes;
  expected.replace(expected.find("z9hG4bKparsed"), 13, "z9hG4bK74bf9.1");
  EXPECT_EQ(ack, expected);
  EXPECT_NE(by_message, kNoTransaction);
}

TEST_F(TransactionTableTest, RequestGivenAsBytesRefusals) {
  Req invite;
  ASSERT_TRUE(table_.send_request(invite.text(), "INVITE", "z9hG4bK74bf9.1", Reliability::kUnreliable, 3, now()).ok());
  // The branch in use, whichever overload asks.
  EXPECT_EQ(
      table_.send_request(invite.text(), "INVITE", "z9hG4bK74bf9.1", Reliability::kUnreliable, 3, now()).error().status,
      500);
  EXPECT_EQ(table_.send_request(invite.message(), Reliability::kUnreliable, 3, now()).error().status, 500);
  // No transaction for an ACK, nor without a method or an RFC 3261 branch.
  const Req ack = invite.same_transaction("ACK", "a6c85cf");
  EXPECT_EQ(table_.send_request(ack.text(), "ACK", "z9hG4bKother", Reliability::kUnreliable, 3, now()).error().status,
            500);
  EXPECT_EQ(table_.send_request(invite.text(), "", "z9hG4bKother", Reliability::kUnreliable, 3, now()).error().status,
            500);
  EXPECT_EQ(table_.send_request(invite.text(), "INVITE", "74bf9.1", Reliability::kUnreliable, 3, now()).error().status,
            500);
  EXPECT_EQ(table_.send_request(invite.text(), "INVITE", "z9hG4bK", Reliability::kUnreliable, 3, now()).error().status,
            500);
  EXPECT_EQ(table_.counters().tu_calls_rejected, 6u);
  EXPECT_EQ(table_.size(), 1u);
  // A CANCEL shares the INVITE's branch: another key (§17.1.3).
  const Req cancel = invite.same_transaction("CANCEL");
  EXPECT_TRUE(table_.send_request(cancel.text(), "CANCEL", "z9hG4bK74bf9.1", Reliability::kUnreliable, 3, now()).ok());
  EXPECT_EQ(table_.size(), 2u);
}

TEST_F(TransactionTableTest, BytesThatDoNotParseAreCountedAndTheTransactionStillCompletes) {
  const TimePoint t0 = now();
  Req invite;
  auto id =
      table_.send_request("INVITE garbage\r\n\r\n", "INVITE", "z9hG4bK74bf9.1", Reliability::kUnreliable, 3, now());
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(transport_.sent.size(), 1u);  // sent as given
  EXPECT_EQ(table_.request(*id), nullptr);
  EXPECT_EQ(table_.request(*id), nullptr);  // not tried again
  Received r = receive_response(response_text(invite, 486));
  EXPECT_EQ(r.disposition, Disposition::kPassedToTu);  // the TU still hears the final response
  EXPECT_EQ(transport_.sent.size(), 1u);               // but no ACK could be built
  EXPECT_EQ(table_.state(*id), "Completed");
  EXPECT_EQ(table_.counters().unparsable_requests, 1u);
  EXPECT_EQ(receive_response(response_text(invite, 486)).disposition, Disposition::kAbsorbed);
  EXPECT_EQ(transport_.sent.size(), 1u);
  run_until(t0 + 32s);  // Timer D
  EXPECT_THAT(tu_.events, ElementsAre("response 1 486", "terminated 1"));
  EXPECT_EQ(table_.counters().unparsable_requests, 1u);  // once per transaction
}

// ---------------------------------------------------------------------------------------------
// Entry slots: reuse, and ids that stay unknown once retired

TEST_F(TransactionTableTest, ARetiredIdStaysUnknownWhenItsSlotIsReused) {
  Req bye = options();
  bye.method = "BYE";
  const TransactionId old_id = receive(bye, Reliability::kReliable).txn;
  ASSERT_TRUE(respond(old_id, bye, 200).ok());
  table_.advance(now());  // Timer J = 0 over a reliable transport
  ASSERT_EQ(table_.size(), 0u);

  Req next = bye;
  next.vias[0] = "SIP/2.0/TCP proxy.atlanta.example.com;branch=z9hG4bKnext";
  const TransactionId new_id = receive(next, Reliability::kReliable).txn;
  EXPECT_EQ(table_.slot_count(), 1u);  // the retired one's slot, in a new generation
  EXPECT_NE(new_id, old_id);
  EXPECT_NE(new_id, kNoTransaction);
  EXPECT_EQ(table_.state(old_id), "");
  EXPECT_EQ(table_.kind(old_id), std::nullopt);
  EXPECT_EQ(table_.request(old_id), nullptr);
  EXPECT_EQ(respond(old_id, bye, 200).error().status, 481);
  EXPECT_EQ(table_.state(new_id), "Trying");
  EXPECT_EQ(table_.kind(new_id), TransactionKind::kNonInviteServer);
  ASSERT_NE(table_.request(new_id), nullptr);
  EXPECT_EQ((*table_.request(new_id)->top_via())->branch, "z9hG4bKnext");
  EXPECT_EQ(table_.state(new_id), "Trying");  // the stale id's 200 did not land on it
}

TEST_F(TransactionTableTest, ASlotIsNotReusedInsideTheCallbackThatRetiredIt) {
  const Req first = options();
  Req second = options();
  second.vias[0] = "SIP/2.0/UDP proxy.atlanta.example.com;branch=z9hG4bKsecond";
  TransactionId from_callback = kNoTransaction;
  tu_.on_terminated_hook = [&](TransactionId txn) {
    if (from_callback != kNoTransaction) return;
    auto id = table_.send_request(second.message(), Reliability::kUnreliable, 5, now());
    ASSERT_TRUE(id.ok());
    from_callback = *id;
    EXPECT_NE(from_callback, txn);
    EXPECT_EQ(table_.slot_count(), 2u);  // the retired entry still holds its slot
    EXPECT_EQ(table_.state(txn), "");
  };
  (void)send(first, Reliability::kReliable);
  (void)receive_response(response_text(first, 200));  // Completed; Timer K = 0 over a reliable transport
  table_.advance(now());
  ASSERT_NE(from_callback, kNoTransaction);
  EXPECT_EQ(table_.state(from_callback), "Trying");
  EXPECT_EQ(table_.size(), 1u);
  // Freed once advance() returned: the next transaction takes that slot.
  Req third = options();
  third.vias[0] = "SIP/2.0/UDP proxy.atlanta.example.com;branch=z9hG4bKthird";
  (void)send(third);
  EXPECT_EQ(table_.slot_count(), 2u);
  EXPECT_EQ(table_.size(), 2u);
}

TEST_F(TransactionTableTest, CreateRetireCyclesReuseSlotsAndNeverRepeatAnId) {
  std::set<TransactionId> ids;
  for (int i = 0; i < 1000; ++i) {
    Req r = options();
    r.vias[0] = "SIP/2.0/TCP proxy.atlanta.example.com;branch=z9hG4bKcycle" + std::to_string(i);
    // Two at a time, so that more than one slot is in use.
    Req other = r;
    other.vias[0] += "b";
    const TransactionId a = send(r, Reliability::kReliable);
    const TransactionId b = send(other, Reliability::kReliable);
    EXPECT_TRUE(ids.insert(a).second);
    EXPECT_TRUE(ids.insert(b).second);
    EXPECT_EQ(receive_response(response_text(r, 200)).disposition, Disposition::kPassedToTu);
    EXPECT_EQ(receive_response(response_text(other, 404)).disposition, Disposition::kPassedToTu);
    table_.advance(now());  // Timer K = 0: both retired
    ASSERT_EQ(table_.size(), 0u);
  }
  EXPECT_EQ(table_.slot_count(), 2u);
  EXPECT_EQ(ids.count(kNoTransaction), 0u);
  for (TransactionId id : ids) ASSERT_EQ(table_.state(id), "");
  EXPECT_FALSE(table_.next_deadline().has_value());
}

TEST_F(TransactionTableTest, NextDeadlineIsTheEarliestRunningTimer) {
  EXPECT_FALSE(table_.next_deadline().has_value());
  const TimePoint t0 = now();
  (void)send(options(), Reliability::kReliable);  // F at 32 s
  EXPECT_EQ(table_.next_deadline(), t0 + 32s);
  (void)send(Req{});  // A at 0.5 s
  EXPECT_EQ(table_.next_deadline(), t0 + 500ms);
}

TEST_F(TransactionTableTest, ClientContextIsEchoedToTheTransport) {
  (void)send(options(), Reliability::kUnreliable, 0xfeedu);
  ASSERT_EQ(transport_.sent.size(), 1u);
  EXPECT_EQ(transport_.sent[0].context, 0xfeedu);
  EXPECT_EQ(transport_.sent[0].bytes, options().text());
}

}  // namespace
}  // namespace pinhole::txn
