// One call: a dialog (RFC 3261 §12) with the INVITE client or server transaction that makes it
// and the BYE/CANCEL that end it, over the UA's single flow. Pure like Registration: the caller
// passes `now`, starts a client transaction of its txn::TransactionTable for each request in
// CallOutput::requests, answers server transactions with CallOutput::responses (through
// TransactionTable::respond), writes CallOutput::send directly on the flow (the ACK for a 2xx),
// feeds back the responses and transaction failures, arms one timer for next_deadline() and
// starts or updates the RTP endpoint when `media` is set. Retransmissions, Timers A/B/F/H, the
// ACK for a non-2xx final response and the absorption of retransmitted requests are the table's.
//
// What it does:
// - Caller (UAC): INVITE with our SDP offer (an INVITE client transaction: Timer B gives up with
//   on_failure 408); 401/407 answered once with digest credentials (CSeq + 1, a new
//   transaction); 1xx → ringing; 2xx → dialog (remote tag, route set from Record-Route reversed,
//   remote target from Contact) and an ACK in a new transaction through that route set, sent
//   directly (RFC 3261 §13.2.2.4) and again for every retransmitted 2xx. CANCEL (its own
//   non-INVITE transaction) once a provisional arrived (kept until then); the 487 ends the call,
//   or 64×T1 (UaConfig::transaction_timeout) after the CANCEL without a final response.
// - Callee (UAS): 100 and 180 at once on the INVITE server transaction; 200 with our SDP answer
//   (or our offer when the INVITE had none: the answer then comes in the ACK) when answered; the
//   2xx retransmitted from T1 doubling to T2 until the ACK (RFC 3261 §13.3.1.4: the UAS core's
//   job, not the transaction's), a BYE when it never comes; CANCEL before the 200 → 200 on the
//   CANCEL and 487 on the INVITE transaction.
// - Either side: BYE (a non-INVITE client transaction); a BYE from the peer → 200; a re-INVITE →
//   200 with the same SDP (a session refresh or a relay's re-INVITE must not end the call; the
//   peer's new address is taken); OPTIONS/INFO/UPDATE within the dialog → 200; requests whose
//   tags do not match → 481.
//
// Threads: owned by the UserAgent's loop, used on its event-loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "sip/message.h"
#include "txn/transaction_table.h"
#include "ua/digest_client.h"
#include "ua/media_sdp.h"
#include "ua/registration.h"

namespace pinhole::ua {

// What every call takes from the UA: who we are and the flow we talk on.
struct CallSetup {
  std::string aor;          // "sip:alice@example.com": our From (caller) / the To we answer
  std::string contact_uri;  // our Contact: the registered (learned) address when there is one
  FlowInfo flow;            // for Via: the flow's real local address and transport
  bool via_alias = true;
  std::string user_agent;
  std::string digest_user, password;
  std::chrono::milliseconds t1{500};                     // our 2xx's retransmission interval starts here
  std::chrono::milliseconds transaction_timeout{32000};  // 64×T1: ACK for our 2xx, 487 after CANCEL
};

enum class CallRole : uint8_t { kCaller, kCallee };

enum class CallState : uint8_t {
  kCalling,      // caller: INVITE sent, nothing back yet
  kProceeding,   // caller: a provisional came; callee: 180 sent, not answered
  kAnswering,    // callee: 200 sent, waiting for the ACK
  kConfirmed,    // the dialog is up
  kTerminating,  // BYE or CANCEL sent, or a failure response waiting for its ACK
  kEnded
};
std::string_view call_state_name(CallState state);

enum class CallEventKind : uint8_t {
  kRinging,   // caller: a 180/183 (status)
  kAnswered,  // caller: 2xx received; callee: 200 sent (status 200)
  kEnded,     // an established or cancelled call is over (text: who and why)
  kFailed,    // the call never got up (status: the final response, 408 on timeout)
};

struct CallEvent {
  CallEventKind kind = CallEventKind::kFailed;
  uint16_t status = 0;
  std::string text;
};

// A response for one of the Call's server transactions.
struct CallResponse {
  txn::TransactionId txn = txn::kNoTransaction;
  uint16_t status = 0;
  std::string bytes;
};

// Carried out in this order: `send`, `responses`, `requests`.
struct CallOutput {
  std::vector<std::string> send;        // straight to the flow (the ACK for a 2xx)
  std::vector<CallResponse> responses;  // TransactionTable::respond, in order
  std::vector<std::string> requests;    // a new client transaction each (INVITE, CANCEL, BYE)
  std::vector<CallEvent> events;
  std::optional<RemoteMedia> media;  // start media towards this, or update it
};

class Call {
 public:
  // Caller: builds and sends the INVITE to `target` ("sip:bob@example.com"). Errors (400) when
  // the target is not a sip/sips URI or the AOR is unusable.
  static Result<std::unique_ptr<Call>> place(const CallSetup& setup, std::string_view target, const LocalMedia& media,
                                             TimePoint now, CallOutput& out);
  // Callee: takes a new INVITE (no To tag; the caller has checked Via, From, To, Call-ID and
  // CSeq) that created server transaction `txn`, and answers 100 and 180 on it (or 488 when the
  // offer is unusable: the call is then over, and kFailed says so).
  static std::unique_ptr<Call> receive(const CallSetup& setup, const sip::Message& invite, txn::TransactionId txn,
                                       const LocalMedia& media, TimePoint now, CallOutput& out);

  // Callee: sends the 200 (ignored unless ringing).
  CallOutput answer(TimePoint now);
  // Ends the call the way its state allows: CANCEL (caller, before the final response), 603
  // (callee, not answered yet), BYE (established; the callee waits for the ACK first).
  CallOutput hangup(TimePoint now);

  // A request for this Call-ID that created server transaction `txn` (kNoTransaction for an ACK,
  // which has none); for a CANCEL, `cancelled` is the INVITE transaction it matched.
  CallOutput on_request(const sip::Message& request, txn::TransactionId txn, txn::TransactionId cancelled,
                        TimePoint now);
  // A response to one of our requests (matched by branch), or a 2xx for our INVITE after its
  // transaction ended.
  CallOutput on_response(const sip::Message& response, TimePoint now);
  // Our client transaction with top-Via `branch` gave up: 408 (Timer B/F) or 503 (transport).
  CallOutput on_failure(std::string_view branch, uint16_t status, TimePoint now);
  // The wait for our 2xx's ACK (and its retransmission), the wait for a 487 after a CANCEL.
  CallOutput on_timer(TimePoint now);
  // The flow is gone: nothing can be sent any more; the call ends here.
  CallOutput flow_lost(std::string_view why);

  std::optional<TimePoint> next_deadline() const;
  // Over: the owner may delete it (the table absorbs what still comes for its transactions).
  bool finished() const { return state_ == CallState::kEnded; }
  CallState state() const { return state_; }
  CallRole role() const { return role_; }
  const std::string& call_id() const { return call_id_; }
  const std::string& remote_target() const { return remote_target_; }
  const std::vector<std::string>& route_set() const { return route_set_; }
  const std::string& peer() const { return peer_; }  // the other party's URI, for logs

 private:
  // A request of ours whose transaction is still running (INVITE, BYE, CANCEL).
  struct ClientTransaction {
    bool active = false;
    std::string branch;
    uint32_t cseq = 0;
  };
  // Our 2xx to an INVITE, repeated until the ACK (RFC 3261 §13.3.1.4).
  struct PendingOk {
    bool active = false;
    txn::TransactionId txn = txn::kNoTransaction;
    std::string bytes;
    TimePoint retransmit_at{}, give_up_at{};
    std::chrono::milliseconds interval{0};
  };

  Call(const CallSetup& setup, CallRole role, const LocalMedia& media);

  std::string via(const std::string& branch) const;
  std::string new_branch() const;
  std::string build_invite();
  std::string build_in_dialog(std::string_view method, uint32_t cseq, const std::string& branch,
                              std::string_view extra_headers = {});
  std::string build_ack_for_2xx();
  static void start_client(ClientTransaction& t, std::string request, std::string branch, uint32_t cseq,
                           CallOutput& out);
  void send_bye(CallOutput& out);
  void send_cancel(TimePoint now, CallOutput& out);
  // The final response to `request` on server transaction `txn` (a 2xx is also kept in pending_).
  void send_final(const sip::Message& request, txn::TransactionId txn, uint16_t status, bool with_sdp, TimePoint now,
                  CallOutput& out);
  void end(CallOutput& out, CallEventKind kind, uint16_t status, std::string text);
  bool tags_match(const sip::Message& request) const;

  CallOutput on_invite_response(const sip::Message& response, TimePoint now);
  CallOutput on_ack(const sip::Message& ack);
  CallOutput on_in_dialog_invite(const sip::Message& invite, txn::TransactionId txn, TimePoint now);

  CallSetup setup_;
  CallRole role_;
  CallState state_ = CallState::kCalling;
  LocalMedia media_;
  std::string local_sdp_;     // what we sent (offer or answer); re-INVITEs get it again
  bool sdp_offered_ = false;  // we made the offer (the answer is still to come in a 2xx/ACK)
  std::optional<RemoteMedia> remote_media_;
  DigestClient digest_;
  int challenges_ = 0;
  std::string invite_auth_;  // the credentials line of the last INVITE (repeated in its ACK)

  // Dialog (RFC 3261 §12).
  std::string call_id_;
  std::string local_tag_, remote_tag_;
  std::string local_party_;   // our From/To value without the tag: "<sip:alice@example.com>"
  std::string remote_party_;  // theirs without the tag
  std::string request_uri_;   // the INVITE's (caller)
  std::string remote_target_;
  std::vector<std::string> route_set_;  // Route header values in the order to send them
  uint32_t local_cseq_ = 0;
  uint32_t remote_cseq_ = 0;
  std::string peer_;

  ClientTransaction invite_, bye_, cancel_;
  bool cancel_wanted_ = false;  // hangup() before any provisional: CANCEL when one comes
  // RFC 3261 §9.1: no final response within 64×T1 of our CANCEL: the call is given up (the
  // INVITE client transaction in Proceeding has no timer of its own).
  std::optional<TimePoint> cancel_give_up_at_;
  std::string ack_;  // the ACK for our 2xx, sent again for each retransmission

  // Callee side.
  txn::TransactionId invite_txn_ = txn::kNoTransaction;  // the initial INVITE's server transaction
  sip::MessagePtr received_invite_;                      // the initial INVITE, until it has a final response
  PendingOk pending_;
  bool bye_after_ack_ = false;  // hangup() while the 200 waits for its ACK
};

}  // namespace pinhole::ua
