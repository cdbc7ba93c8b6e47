#include "ua/call.h"

#include <algorithm>
#include <utility>

#include "sip/builder.h"
#include "sip/charset.h"
#include "sip/uri.h"
#include "ua/random.h"

namespace pinhole::ua {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kT2{4000};  // RFC 3261 T2: cap of non-INVITE and 2xx retransmissions
constexpr std::string_view kAllow = "INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE";
constexpr Error kBadTarget{400, "call: target must be a sip: or sips: URI"};
constexpr Error kBadAor{400, "call: AOR must be a sip: URI with a user"};

std::string header_line(std::string_view name, std::string_view value) {
  return std::string(name) + ": " + std::string(value) + "\r\n";
}

// The name-addr of a From/To without its tag parameter (the rest of the parameters stay).
std::string without_tag(const sip::NameAddr& party) {
  std::string out(party.raw.substr(0, party.raw.size() - party.params.size()));
  std::string_view params = party.params;
  while (!params.empty()) {
    auto next = params.find(';', 1);
    std::string_view one = params.substr(0, next);
    std::string_view name =
        one.substr(1, one.find('=') == std::string_view::npos ? std::string_view::npos : one.find('=') - 1);
    if (!sip::iequals(name, "tag")) out += one;
    if (next == std::string_view::npos) break;
    params.remove_prefix(next);
  }
  return out;
}

}  // namespace

std::string_view call_state_name(CallState state) {
  switch (state) {
    case CallState::kCalling:
      return "calling";
    case CallState::kProceeding:
      return "proceeding";
    case CallState::kAnswering:
      return "answering";
    case CallState::kConfirmed:
      return "confirmed";
    case CallState::kTerminating:
      return "terminating";
    case CallState::kEnded:
      return "ended";
  }
  return "?";
}

Call::Call(const CallSetup& setup, CallRole role, const LocalMedia& media)
    : setup_(setup), role_(role), media_(media), digest_(setup.digest_user, setup.password) {}

std::string Call::new_branch() const { return std::string(sip::kBranchMagicCookie) + random_hex(12); }

std::string Call::via(const std::string& branch) const {
  std::string v = "SIP/2.0/" + std::string(via_transport_token(setup_.flow.transport)) + " " +
                  setup_.flow.local.to_string() + ";branch=" + branch + ";rport";
  if (setup_.via_alias && net::is_stream(setup_.flow.transport)) v += ";alias";
  return v;
}

// ---------------------------------------------------------------------------------------------
// Caller

Result<std::unique_ptr<Call>> Call::place(const CallSetup& setup, std::string_view target, const LocalMedia& media,
                                          TimePoint now, CallOutput& out) {
  auto uri = sip::parse_uri(target);
  if (!uri || !uri->is_sip() || uri->host.empty()) return kBadTarget;
  auto aor = sip::parse_uri(setup.aor);
  if (!aor || !aor->is_sip() || !aor->has_user) return kBadAor;
  std::unique_ptr<Call> call(new Call(setup, CallRole::kCaller, media));
  call->call_id_ = random_hex(16);
  call->local_tag_ = random_hex(8);
  call->local_party_ = "<" + setup.aor + ">";
  call->remote_party_ = "<" + std::string(target) + ">";
  call->request_uri_ = std::string(target);
  call->remote_target_ = call->request_uri_;
  call->peer_ = call->request_uri_;
  call->local_sdp_ = build_offer(media);
  call->sdp_offered_ = true;
  (void)now;                                  // the INVITE's timers are its transaction's (the UA's table)
  std::string invite = call->build_invite();  // sets the branch and CSeq start_client records
  start_client(call->invite_, std::move(invite), call->invite_.branch, call->local_cseq_, out);
  return call;
}

std::string Call::build_invite() {
  ++local_cseq_;
  invite_.branch = new_branch();
  sip::RequestBuilder b("INVITE", request_uri_);
  b.header("Via", via(invite_.branch))
      .header("Max-Forwards", "70")
      .header("From", local_party_ + ";tag=" + local_tag_)
      .header("To", remote_party_)
      .header("Call-ID", call_id_)
      .header("CSeq", std::to_string(local_cseq_) + " INVITE")
      .header("Contact", "<" + setup_.contact_uri + ">")
      .header("Allow", kAllow);
  invite_auth_.clear();
  if (digest_.has_challenge()) {
    auto credentials = digest_.credentials("INVITE", request_uri_);
    if (credentials) {
      b.header(digest_.header_name(), *credentials);
      invite_auth_ = header_line(digest_.header_name(), *credentials);
    }
  }
  if (!setup_.user_agent.empty()) b.header("User-Agent", setup_.user_agent);
  b.body("application/sdp", local_sdp_);
  return b.build();
}

void Call::start_client(ClientTransaction& t, std::string request, std::string branch, uint32_t cseq, CallOutput& out) {
  t.active = true;
  t.branch = std::move(branch);
  t.cseq = cseq;
  out.requests.push_back(std::move(request));
}

// An in-dialog request: to the remote target, through the route set (RFC 3261 §12.2.1.1).
std::string Call::build_in_dialog(std::string_view method, uint32_t cseq, const std::string& branch,
                                  std::string_view extra_headers) {
  sip::RequestBuilder b(method, remote_target_);
  b.header("Via", via(branch)).header("Max-Forwards", "70");
  for (const auto& route : route_set_) b.header("Route", route);
  b.header("From", local_party_ + ";tag=" + local_tag_)
      .header("To", remote_party_ + (remote_tag_.empty() ? std::string() : ";tag=" + remote_tag_))
      .header("Call-ID", call_id_)
      .header("CSeq", std::to_string(cseq) + " " + std::string(method));
  if (method != "ACK" && digest_.has_challenge()) {
    auto credentials = digest_.credentials(method, remote_target_);
    if (credentials) b.header(digest_.header_name(), *credentials);
  }
  if (!setup_.user_agent.empty()) b.header("User-Agent", setup_.user_agent);
  std::string text = b.build();
  if (!extra_headers.empty()) text.insert(text.find("\r\n\r\n") + 2, extra_headers);
  return text;
}

std::string Call::build_ack_for_2xx() {
  // A transaction of its own (new branch), the INVITE's CSeq number, the INVITE's credentials
  // (RFC 3261 §13.2.2.4).
  std::string ack = build_in_dialog("ACK", invite_.cseq, new_branch(), invite_auth_);
  return ack;
}

void Call::send_cancel(TimePoint now, CallOutput& out) {
  // RFC 3261 §9.1: the INVITE's Request-URI, Call-ID, From, To, CSeq number and branch.
  sip::RequestBuilder b("CANCEL", request_uri_);
  b.header("Via", via(invite_.branch))
      .header("Max-Forwards", "70")
      .header("From", local_party_ + ";tag=" + local_tag_)
      .header("To", remote_party_)
      .header("Call-ID", call_id_)
      .header("CSeq", std::to_string(invite_.cseq) + " CANCEL");
  if (!setup_.user_agent.empty()) b.header("User-Agent", setup_.user_agent);
  start_client(cancel_, b.build(), invite_.branch, invite_.cseq, out);
  cancel_give_up_at_ = now + setup_.transaction_timeout;
  state_ = CallState::kTerminating;
}

void Call::send_bye(CallOutput& out) {
  ++local_cseq_;
  std::string branch = new_branch();
  start_client(bye_, build_in_dialog("BYE", local_cseq_, branch), branch, local_cseq_, out);
  state_ = CallState::kTerminating;
}

void Call::end(CallOutput& out, CallEventKind kind, uint16_t status, std::string text) {
  if (state_ == CallState::kEnded) return;
  state_ = CallState::kEnded;
  invite_.active = bye_.active = cancel_.active = false;
  cancel_give_up_at_.reset();
  pending_.active = false;  // a 2xx does not outlive the call
  out.events.push_back({kind, status, std::move(text)});
}

CallOutput Call::on_response(const sip::Message& response, TimePoint now) {
  CallOutput out;
  auto cseq = response.cseq();
  auto via = response.top_via();
  if (!cseq || !via) return out;
  std::string_view branch = (*via)->branch;
  if (cseq->method == sip::Method::kInvite && branch == invite_.branch && cseq->number == invite_.cseq) {
    return on_invite_response(response, now);
  }
  if (cseq->method == sip::Method::kInvite && response.status() >= 200 && response.status() < 300 && !ack_.empty() &&
      cseq->number == invite_.cseq) {
    out.send.push_back(ack_);  // a 2xx retransmission after the transaction: ACK again
    return out;
  }
  if (response.status() < 200) return out;
  if (cseq->method == sip::Method::kBye && bye_.active && branch == bye_.branch) {
    bye_.active = false;
    uint16_t status = response.status();
    if ((status == 401 || status == 407) && challenges_ < 2 && digest_.take_challenge(response).ok()) {
      ++challenges_;
      send_bye(out);
      return out;
    }
    end(out, CallEventKind::kEnded, status, "hung up by us (BYE answered " + std::to_string(status) + ")");
    return out;
  }
  if (cseq->method == sip::Method::kCancel && cancel_.active && branch == cancel_.branch) {
    cancel_.active = false;  // the 487 to the INVITE is what ends the call
  }
  return out;
}

CallOutput Call::on_invite_response(const sip::Message& response, TimePoint now) {
  CallOutput out;
  uint16_t status = response.status();
  if (!invite_.active) {
    // The transaction is over; only a 2xx retransmission matters (ACK it again).
    if (status >= 200 && status < 300 && !ack_.empty()) out.send.push_back(ack_);
    return out;
  }
  if (status < 200) {
    if (state_ == CallState::kCalling) state_ = CallState::kProceeding;
    if (cancel_wanted_ && !cancel_.active) {
      cancel_wanted_ = false;
      send_cancel(now, out);
      return out;
    }
    if (status == 180 || status == 183) {
      out.events.push_back({CallEventKind::kRinging, status, std::string(response.reason())});
    }
    return out;
  }
  invite_.active = false;
  cancel_give_up_at_.reset();
  if (status >= 300) {
    // The INVITE client transaction has ACKed it (RFC 3261 §17.1.1.3).
    if ((status == 401 || status == 407) && state_ != CallState::kTerminating && challenges_ < 2) {
      auto stale = digest_.take_challenge(response);
      if (stale && (challenges_ == 0 || *stale)) {
        ++challenges_;
        state_ = CallState::kCalling;
        std::string invite = build_invite();
        start_client(invite_, std::move(invite), invite_.branch, local_cseq_, out);
        return out;
      }
    }
    if (status == 487 && !cancel_.branch.empty()) {  // we sent a CANCEL
      end(out, CallEventKind::kEnded, status, "cancelled by us");
    } else {
      end(out, CallEventKind::kFailed, status,
          "call rejected: " + std::to_string(status) + " " + std::string(response.reason()));
    }
    return out;
  }
  // 2xx: the dialog (RFC 3261 §12.1.2).
  auto to = response.to();
  if (to && (*to)->has_tag) remote_tag_ = std::string((*to)->tag);
  route_set_.clear();
  if (auto rr = response.record_routes(); rr) {
    for (auto it = rr->rbegin(); it != rr->rend(); ++it) route_set_.emplace_back(it->raw);
  }
  if (auto contacts = response.contacts(); contacts && !contacts->empty() && !(*contacts)[0].star) {
    remote_target_ = std::string((*contacts)[0].uri.raw);
  }
  ack_ = build_ack_for_2xx();
  out.send.push_back(ack_);
  if (!response.body().empty()) {
    auto remote = read_answer(response.body());
    if (remote) {
      remote_media_ = *remote;
      out.media = *remote;
    }
  }
  bool cancelling = state_ == CallState::kTerminating || cancel_wanted_;
  state_ = CallState::kConfirmed;
  out.events.push_back({CallEventKind::kAnswered, status, std::string(response.reason())});
  if (!remote_media_) {
    // No usable answer: the call cannot carry media; end it the proper way.
    send_bye(out);
    return out;
  }
  if (cancelling) send_bye(out);  // the 200 crossed our CANCEL: end it with a BYE
  return out;
}

// ---------------------------------------------------------------------------------------------
// Callee

std::unique_ptr<Call> Call::receive(const CallSetup& setup, const sip::Message& invite, txn::TransactionId txn,
                                    const LocalMedia& media, TimePoint now, CallOutput& out) {
  std::unique_ptr<Call> call(new Call(setup, CallRole::kCallee, media));
  call->state_ = CallState::kProceeding;
  call->call_id_ = std::string(*invite.call_id());
  call->local_tag_ = random_hex(8);
  const auto* from = *invite.from();
  const auto* to = *invite.to();
  call->remote_party_ = without_tag(*from);
  call->remote_tag_ = std::string(from->tag);
  call->local_party_ = without_tag(*to);
  call->peer_ = std::string(from->uri.raw);
  call->invite_txn_ = txn;
  if (auto rr = invite.record_routes(); rr) {
    for (const auto& r : *rr) call->route_set_.emplace_back(r.raw);
  }
  if (auto contacts = invite.contacts(); contacts && !contacts->empty() && !(*contacts)[0].star) {
    call->remote_target_ = std::string((*contacts)[0].uri.raw);
  } else {
    call->remote_target_ = call->peer_;
  }
  call->remote_cseq_ = (*invite.cseq()).number;
  auto copy = sip::Message::parse(invite.bytes(), sip::Framing::kDatagram);
  if (copy) call->received_invite_ = std::move(copy).value();

  sip::ResponseBuilder trying(invite, 100);
  out.responses.push_back({txn, 100, trying.build()});
  if (invite.body().empty()) {
    // No offer: ours goes in the 200, the answer in the ACK.
    call->local_sdp_ = build_offer(media);
    call->sdp_offered_ = true;
  } else {
    auto answer = answer_offer(invite.body(), media);
    if (!answer) {
      call->send_final(invite, txn, 488, false, now, out);
      call->end(out, CallEventKind::kFailed, 488, "offer refused: " + std::string(answer.error().what));
      return call;
    }
    call->local_sdp_ = answer->sdp;
    call->remote_media_ = answer->remote;
  }
  sip::ResponseBuilder ringing(invite, 180);
  ringing.to_tag(call->local_tag_).header("Contact", "<" + setup.contact_uri + ">");
  for (const auto& r : call->route_set_) ringing.header("Record-Route", r);
  out.responses.push_back({txn, 180, ringing.build()});
  return call;
}

void Call::send_final(const sip::Message& request, txn::TransactionId txn, uint16_t status, bool with_sdp,
                      TimePoint now, CallOutput& out) {
  sip::ResponseBuilder b(request, status);
  b.to_tag(local_tag_);
  bool success = status >= 200 && status < 300;
  if (success) {
    b.header("Contact", "<" + setup_.contact_uri + ">").header("Allow", kAllow);
    for (const auto& r : route_set_) b.header("Record-Route", r);
  }
  if (with_sdp) b.body("application/sdp", local_sdp_);
  std::string bytes = b.build();
  if (success) {
    // The transaction sends it once (RFC 6026 Accepted); repeating it until the ACK is ours.
    pending_.active = true;
    pending_.txn = txn;
    pending_.bytes = bytes;
    pending_.interval = setup_.t1;
    pending_.retransmit_at = now + setup_.t1;
    pending_.give_up_at = now + setup_.transaction_timeout;
  } else {
    state_ = CallState::kTerminating;  // the transaction retransmits it and absorbs its ACK
  }
  out.responses.push_back({txn, status, std::move(bytes)});
}

CallOutput Call::answer(TimePoint now) {
  CallOutput out;
  if (role_ != CallRole::kCallee || state_ != CallState::kProceeding || !received_invite_) return out;
  send_final(*received_invite_, invite_txn_, 200, true, now, out);
  state_ = CallState::kAnswering;
  if (remote_media_) out.media = remote_media_;
  out.events.push_back({CallEventKind::kAnswered, 200, "answered"});
  return out;
}

CallOutput Call::hangup(TimePoint now) {
  CallOutput out;
  switch (state_) {
    case CallState::kCalling:
      if (role_ == CallRole::kCaller) cancel_wanted_ = true;  // RFC 3261 §9.1: not before a 1xx
      break;
    case CallState::kProceeding:
      if (role_ == CallRole::kCaller) {
        send_cancel(now, out);
      } else if (received_invite_) {
        send_final(*received_invite_, invite_txn_, 603, false, now, out);
        end(out, CallEventKind::kEnded, 603, "declined by us");
      }
      break;
    case CallState::kAnswering:
      bye_after_ack_ = true;  // RFC 3261 §15: no BYE before the ACK (or its timeout)
      break;
    case CallState::kConfirmed:
      send_bye(out);
      break;
    case CallState::kTerminating:
    case CallState::kEnded:
      break;
  }
  return out;
}

bool Call::tags_match(const sip::Message& request) const {
  auto to = request.to();
  auto from = request.from();
  if (!to || !from) return false;
  return (*to)->has_tag && (*to)->tag == local_tag_ && (*from)->tag == remote_tag_;
}

CallOutput Call::on_request(const sip::Message& request, txn::TransactionId txn, txn::TransactionId cancelled,
                            TimePoint now) {
  CallOutput out;
  auto reply = [&](uint16_t status, bool with_allow) {
    sip::ResponseBuilder b(request, status);
    if (status != 481) b.to_tag(local_tag_);
    if (with_allow) b.header("Allow", kAllow);
    out.responses.push_back({txn, status, b.build()});
  };
  switch (request.method()) {
    case sip::Method::kAck:
      return on_ack(request);
    case sip::Method::kCancel:
      if (role_ == CallRole::kCallee && cancelled != txn::kNoTransaction && cancelled == invite_txn_) {
        reply(200, false);
        if (state_ == CallState::kProceeding && received_invite_) {
          send_final(*received_invite_, invite_txn_, 487, false, now, out);
          end(out, CallEventKind::kEnded, 487, "cancelled by the caller");
        }
        return out;
      }
      reply(481, false);  // RFC 3261 §9.2: no transaction of ours to cancel
      return out;
    case sip::Method::kInvite:
      // Retransmissions of the initial INVITE never get here (its transaction absorbs them).
      if (!tags_match(request) || state_ == CallState::kEnded) break;
      return on_in_dialog_invite(request, txn, now);
    case sip::Method::kBye:
      if (!tags_match(request)) break;
      reply(200, false);
      end(out, CallEventKind::kEnded, 200, "hung up by the peer (BYE)");
      return out;
    default:
      if (!tags_match(request) || state_ == CallState::kEnded) break;
      // OPTIONS, INFO (DTMF), UPDATE (session timers), NOTIFY: nothing to change here.
      reply(200, true);
      return out;
  }
  reply(481, false);
  return out;
}

CallOutput Call::on_ack(const sip::Message& ack) {
  CallOutput out;
  if (!pending_.active && state_ != CallState::kAnswering) return out;  // a duplicate: absorbed
  pending_.active = false;
  if (sdp_offered_ && !ack.body().empty()) {
    auto remote = read_answer(ack.body());
    if (remote) {
      remote_media_ = *remote;
      out.media = *remote;
    }
    sdp_offered_ = false;
  }
  if (state_ == CallState::kAnswering) state_ = CallState::kConfirmed;
  if (bye_after_ack_) {
    bye_after_ack_ = false;
    send_bye(out);
  }
  return out;
}

CallOutput Call::on_in_dialog_invite(const sip::Message& invite, txn::TransactionId txn, TimePoint now) {
  CallOutput out;
  auto cseq = invite.cseq();
  if (cseq && cseq->number <= remote_cseq_) {
    // A new transaction with an old CSeq (retransmissions are the table's): RFC 3261 §12.2.2.
    sip::ResponseBuilder b(invite, 500);
    b.to_tag(local_tag_);
    out.responses.push_back({txn, 500, b.build()});
    return out;
  }
  if (cseq) remote_cseq_ = cseq->number;
  if (auto contacts = invite.contacts(); contacts && !contacts->empty() && !(*contacts)[0].star) {
    remote_target_ = std::string((*contacts)[0].uri.raw);  // RFC 3261 §12.2.2: target refresh
  }
  sdp_offered_ = invite.body().empty();
  if (!invite.body().empty()) {
    // The same SDP back (the session does not change from our side); the peer's new address
    // is taken, so that media follows a relay's change.
    auto answer = answer_offer(invite.body(), media_);
    if (answer) {
      remote_media_ = answer->remote;
      out.media = answer->remote;
    }
  }
  send_final(invite, txn, 200, true, now, out);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Timers

std::optional<TimePoint> Call::next_deadline() const {
  std::optional<TimePoint> next;
  auto consider = [&next](TimePoint t) {
    if (!next || t < *next) next = t;
  };
  if (invite_.active && cancel_give_up_at_) consider(*cancel_give_up_at_);
  if (pending_.active) {
    consider(pending_.retransmit_at);
    consider(pending_.give_up_at);
  }
  return next;
}

CallOutput Call::on_failure(std::string_view branch, uint16_t status, TimePoint /*now*/) {
  CallOutput out;
  std::string how = status == 408 ? "unanswered" : "could not be sent";
  if (invite_.active && branch == invite_.branch) {
    invite_.active = false;
    if (state_ == CallState::kTerminating) {
      end(out, CallEventKind::kEnded, status, "cancelled by us (INVITE " + how + ")");
    } else {
      end(out, CallEventKind::kFailed, status, "INVITE " + how);
    }
  } else if (bye_.active && branch == bye_.branch) {
    end(out, CallEventKind::kEnded, status, "hung up by us (BYE " + how + ")");
  } else if (cancel_.active && branch == cancel_.branch) {
    cancel_.active = false;  // the INVITE's final response (or cancel_give_up_at_) decides
  }
  return out;
}

CallOutput Call::on_timer(TimePoint now) {
  CallOutput out;
  if (invite_.active && cancel_give_up_at_ && now >= *cancel_give_up_at_) {
    end(out, CallEventKind::kEnded, 408, "cancelled by us (no final response to the INVITE)");
    return out;
  }
  if (pending_.active) {
    if (now >= pending_.give_up_at) {
      pending_.active = false;
      // RFC 3261 §13.3.1.4: no ACK for our 2xx: the dialog is ended with a BYE.
      if (state_ == CallState::kAnswering || state_ == CallState::kConfirmed) {
        state_ = CallState::kConfirmed;
        bye_after_ack_ = false;
        send_bye(out);
      }
    } else if (now >= pending_.retransmit_at) {
      // Through the INVITE server transaction, which lets a 2xx out again while Accepted.
      out.responses.push_back({pending_.txn, 200, pending_.bytes});
      pending_.interval = std::min(pending_.interval * 2, kT2);
      pending_.retransmit_at = now + pending_.interval;
    }
  }
  return out;
}

CallOutput Call::flow_lost(std::string_view why) {
  CallOutput out;
  pending_.active = false;  // nothing can be sent any more
  if (state_ == CallState::kConfirmed || state_ == CallState::kTerminating || state_ == CallState::kAnswering) {
    end(out, CallEventKind::kEnded, 0, "flow lost: " + std::string(why));
  } else {
    end(out, CallEventKind::kFailed, 0, "flow lost: " + std::string(why));
  }
  return out;
}

}  // namespace pinhole::ua
