// Transaction matching keys: RFC 3261 §17.1.3 (client) and §17.2.3 (server, including the
// RFC 2543 fallback).
#include "sip/transaction_key.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace pinhole::sip {
namespace {

struct Req {
  std::string method = "INVITE";
  std::string ruri = "sip:bob@biloxi.com";
  std::string via = "SIP/2.0/UDP pc33.atlanta.com:5060;branch=z9hG4bK776asdhds";
  std::string to = "Bob <sip:bob@biloxi.com>";
  std::string from = "Alice <sip:alice@atlanta.com>;tag=1928301774";
  std::string call_id = "a84b4c76e66710@pc33.atlanta.com";
  std::string cseq_number = "314159";
  std::string cseq_method;  // defaults to `method`

  std::string text() const {
    return method + " " + ruri + " SIP/2.0\r\nVia: " + via + "\r\nMax-Forwards: 70\r\nTo: " + to + "\r\nFrom: " + from +
           "\r\nCall-ID: " + call_id + "\r\nCSeq: " + cseq_number + " " + (cseq_method.empty() ? method : cseq_method) +
           "\r\nContent-Length: 0\r\n\r\n";
  }
};

// Messages stay alive for the test (keys are strings, but keep it simple and safe).
class TransactionKey : public ::testing::Test {
 protected:
  const Message& parse(const std::string& text) {
    auto r = Message::parse(text, Framing::kDatagram);
    EXPECT_TRUE(r.ok()) << text;
    keep_.push_back(std::move(r).value());
    return *keep_.back();
  }
  std::string server_key(const Req& r) {
    auto k = server_transaction_key(parse(r.text()));
    EXPECT_TRUE(k.ok());
    return k.ok() ? *k : std::string("<error>");
  }
  std::string cancelled_key(const Req& r) {
    auto k = cancelled_invite_key(parse(r.text()));
    EXPECT_TRUE(k.ok());
    return k.ok() ? *k : std::string("<error>");
  }
  std::string client_key(std::string_view via, std::string_view cseq, uint16_t status = 200) {
    std::string text = "SIP/2.0 " + std::to_string(status) + " X\r\nVia: " + std::string(via) +
                       "\r\nTo: <sip:bob@biloxi.com>;tag=b\r\nFrom: <sip:alice@atlanta.com>;tag=a\r\nCall-ID: c1\r\n"
                       "CSeq: " +
                       std::string(cseq) + "\r\nContent-Length: 0\r\n\r\n";
    auto k = client_transaction_key(parse(text));
    EXPECT_TRUE(k.ok());
    return k.ok() ? *k : std::string("<error>");
  }
  std::vector<MessagePtr> keep_;
};

// ---------------------------------------------------------------------------------------------
// RFC 3261 branches

TEST_F(TransactionKey, SameRequestSameKey) {
  Req a;
  EXPECT_EQ(server_key(a), server_key(a));
}

TEST_F(TransactionKey, InviteAndCancelWithSameBranchDiffer) {
  // RFC 3261 §17.2.3: the method must match too; CANCEL has its own transaction (§9.2).
  Req invite;
  Req cancel;
  cancel.method = "CANCEL";
  EXPECT_NE(server_key(invite), server_key(cancel));
  // ... and the CANCEL finds the INVITE it cancels.
  EXPECT_EQ(cancelled_key(cancel), server_key(invite));
}

TEST_F(TransactionKey, AckKeyedLikeInvite) {
  // §17.2.3: "except that the method of the request that created the transaction is INVITE,
  // and the method of the request is ACK" (the ACK for a non-2xx final response).
  Req invite;
  Req ack;
  ack.method = "ACK";
  ack.to = "Bob <sip:bob@biloxi.com>;tag=8321234356";
  EXPECT_EQ(server_key(ack), server_key(invite));
}

TEST_F(TransactionKey, OtherMethodsWithSameBranchDiffer) {
  Req invite;
  Req bye;
  bye.method = "BYE";
  Req options;
  options.method = "OPTIONS";
  EXPECT_NE(server_key(invite), server_key(bye));
  EXPECT_NE(server_key(bye), server_key(options));
}

TEST_F(TransactionKey, BranchAndSentByMustMatch) {
  Req a;
  Req other_branch = a;
  other_branch.via = "SIP/2.0/UDP pc33.atlanta.com:5060;branch=z9hG4bK776asdhdt";
  Req other_host = a;
  other_host.via = "SIP/2.0/UDP pc34.atlanta.com:5060;branch=z9hG4bK776asdhds";
  Req other_port = a;
  other_port.via = "SIP/2.0/UDP pc33.atlanta.com:5061;branch=z9hG4bK776asdhds";
  EXPECT_NE(server_key(a), server_key(other_branch));
  EXPECT_NE(server_key(a), server_key(other_host));
  EXPECT_NE(server_key(a), server_key(other_port));
}

TEST_F(TransactionKey, SentByHostIsCaseInsensitive) {
  Req a;
  Req upper = a;
  upper.via = "SIP/2.0/UDP PC33.Atlanta.COM:5060;branch=z9hG4bK776asdhds";
  EXPECT_EQ(server_key(a), server_key(upper));
}

TEST_F(TransactionKey, Rfc3261KeyIgnoresDialogFields) {
  // With a magic-cookie branch, only branch, sent-by and method count.
  Req a;
  Req b = a;
  b.ruri = "sip:bob@192.0.2.4";
  b.from = "<sip:someone@else.com>;tag=zzz";
  b.call_id = "different";
  b.cseq_number = "1";
  b.via += ";received=192.0.2.1";
  EXPECT_EQ(server_key(a), server_key(b));
}

// ---------------------------------------------------------------------------------------------
// RFC 2543 fallback (no magic cookie; RFC 4475 §3.2.1 badbranch, §3.4.1 inv2543)

Req rfc2543_invite() {
  Req r;
  r.via = "SIP/2.0/UDP 192.0.2.15;branch=old2543branch";
  return r;
}

TEST_F(TransactionKey, Rfc2543InviteAndAckMatch) {
  Req invite = rfc2543_invite();
  Req ack = invite;
  ack.method = "ACK";
  ack.to = "Bob <sip:bob@biloxi.com>;tag=8321234356";  // the To tag of the response
  EXPECT_EQ(server_key(ack), server_key(invite));
}

TEST_F(TransactionKey, Rfc2543NoBranchAtAll) {
  Req invite = rfc2543_invite();
  invite.via = "SIP/2.0/UDP 192.0.2.15";
  Req again = invite;
  EXPECT_EQ(server_key(invite), server_key(again));
  Req other = invite;
  other.call_id = "other-call";
  EXPECT_NE(server_key(invite), server_key(other));
}

TEST_F(TransactionKey, Rfc2543CancelFindsInvite) {
  Req invite = rfc2543_invite();
  Req cancel = invite;
  cancel.method = "CANCEL";
  EXPECT_NE(server_key(cancel), server_key(invite));
  EXPECT_EQ(cancelled_key(cancel), server_key(invite));
}

TEST_F(TransactionKey, Rfc2543KeyUsesDialogFields) {
  // §17.2.3: Request-URI, To tag, From tag, Call-ID, CSeq and top Via must match.
  Req base = rfc2543_invite();
  std::string key = server_key(base);
  Req ruri = base;
  ruri.ruri = "sip:bob@192.0.2.4";
  Req from_tag = base;
  from_tag.from = "Alice <sip:alice@atlanta.com>;tag=other";
  Req call_id = base;
  call_id.call_id = "other@pc33.atlanta.com";
  Req cseq = base;
  cseq.cseq_number = "314160";
  Req via = base;
  via.via = "SIP/2.0/UDP 192.0.2.16;branch=old2543branch";
  for (const Req* r : {&ruri, &from_tag, &call_id, &cseq, &via}) EXPECT_NE(server_key(*r), key);
}

TEST_F(TransactionKey, Rfc2543ToTagCountsOutsideInvite) {
  Req bye = rfc2543_invite();
  bye.method = "BYE";
  bye.to = "Bob <sip:bob@biloxi.com>;tag=1";
  Req bye2 = bye;
  bye2.to = "Bob <sip:bob@biloxi.com>;tag=2";
  EXPECT_NE(server_key(bye), server_key(bye2));
  EXPECT_EQ(server_key(bye), server_key(bye));
}

TEST_F(TransactionKey, Rfc2543AndRfc3261KeysNeverCollide) {
  Req modern;
  Req old = modern;
  old.via = "SIP/2.0/UDP pc33.atlanta.com:5060;branch=776asdhds";
  EXPECT_NE(server_key(modern), server_key(old));
}

TEST_F(TransactionKey, MissingHeadersAreErrors) {
  auto no_via = server_transaction_key(
      parse("INVITE sip:bob@biloxi.com SIP/2.0\r\nTo: <sip:bob@biloxi.com>\r\nFrom: <sip:a@b.com>;tag=1\r\n"
            "Call-ID: x\r\nCSeq: 1 INVITE\r\n\r\n"));
  ASSERT_FALSE(no_via.ok());
  EXPECT_EQ(no_via.error().status, 400);
  // RFC 2543 keys need the dialog fields.
  auto no_call_id = server_transaction_key(
      parse("INVITE sip:bob@biloxi.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.15\r\nTo: <sip:bob@biloxi.com>\r\n"
            "From: <sip:a@b.com>;tag=1\r\nCSeq: 1 INVITE\r\n\r\n"));
  EXPECT_FALSE(no_call_id.ok());
  auto response_no_cseq = client_transaction_key(
      parse("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h.example.com;branch=z9hG4bK1\r\nCall-ID: x\r\n\r\n"));
  EXPECT_FALSE(response_no_cseq.ok());
}

// ---------------------------------------------------------------------------------------------
// Client transactions (RFC 3261 §17.1.3): branch of the top Via + CSeq method.

TEST_F(TransactionKey, ClientKeyIsBranchAndCSeqMethod) {
  std::string invite_200 = client_key("SIP/2.0/UDP 203.0.113.10;branch=z9hG4bKe1", "5 INVITE");
  std::string invite_180 = client_key("SIP/2.0/UDP 203.0.113.10;branch=z9hG4bKe1", "5 INVITE", 180);
  std::string cancel_200 = client_key("SIP/2.0/UDP 203.0.113.10;branch=z9hG4bKe1", "5 CANCEL");
  std::string other_branch = client_key("SIP/2.0/UDP 203.0.113.10;branch=z9hG4bKe2", "5 INVITE");
  EXPECT_EQ(invite_200, invite_180);
  EXPECT_NE(invite_200, cancel_200);  // the 200 to the CANCEL belongs to the CANCEL
  EXPECT_NE(invite_200, other_branch);
  // The sent-by and the CSeq number play no part.
  EXPECT_EQ(invite_200, client_key("SIP/2.0/UDP edge.example.com:5070;branch=z9hG4bKe1;received=1.2.3.4", "6 INVITE"));
  // Only the top Via counts.
  EXPECT_EQ(invite_200,
            client_key("SIP/2.0/UDP 203.0.113.10;branch=z9hG4bKe1, SIP/2.0/UDP 10.0.0.5;branch=z9hG4bKua", "5 INVITE"));
}

TEST_F(TransactionKey, ClientKeyMatchesTheRequestItAnswers) {
  // A request we sent and the response to it: the response's key equals the one built from the
  // same branch and method, whatever the responder added to the Via.
  EXPECT_EQ(client_key("SIP/2.0/UDP 203.0.113.10;branch=z9hG4bKabc", "1 REGISTER"),
            client_key("SIP/2.0/UDP 203.0.113.10;received=198.51.100.1;branch=z9hG4bKabc;rport=5060", "1 REGISTER"));
}

}  // namespace
}  // namespace pinhole::sip
