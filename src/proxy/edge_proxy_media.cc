// Media anchoring by the edge (issue 6, docs/architecture.md "Media through the edge"): what
// Kamailio scripts do with rtpengine_offer/answer/delete, done by default.
//
// - An INVITE or UPDATE with SDP gets an offer per branch (via-branch = the branch's Via branch
//   for a new call, so forks get their own relay sessions; none inside a dialog, where the tags
//   name the session). The branch is sent once the relay has rewritten its SDP.
// - A 18x or 2xx with SDP to an anchored branch gets an answer; one to a request without SDP
//   is the callee's (late) offer, and the ACK that carries the caller's SDP gets the answer.
// - BYE deletes the call; CANCEL and a failed branch of a new call delete that branch.
// - relay: auto leaves a call direct when both ends are known and share a public address (two
//   phones behind one NAT, or on one host); an SDP that already names one of our relays (a call
//   passing the edge twice, caller and callee both behind it) is left alone.
//
// The relay answers off this thread; its answer is posted back to this worker, where the call
// may have been CANCELled or answered meanwhile.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>

#include "proxy/edge_proxy.h"
#include "sdp/session_description.h"
#include "sip/editor.h"

namespace pinhole::proxy {
namespace {

using txn::TransactionId;

// The body when it is an SDP (multipart bodies are not looked into).
std::optional<std::string_view> sdp_of(const sip::Message& msg) {
  if (msg.body().empty()) return std::nullopt;
  auto type = msg.content_type();
  if (!type.ok() || !type->has_value() || !(*type)->is("application", "sdp")) return std::nullopt;
  return msg.body();
}

bool carries_offer(sip::Method m) { return m == sip::Method::kInvite || m == sip::Method::kUpdate; }

std::string from_tag(const sip::Message& msg) {
  auto from = msg.from();
  return from.ok() ? std::string((*from)->tag) : std::string();
}

std::string to_tag(const sip::Message& msg) {
  auto to = msg.to();
  return to.ok() ? std::string((*to)->tag) : std::string();
}

std::string with_body(std::string_view message, std::string_view body) {
  auto parsed = sip::Message::parse(message, sip::Framing::kDatagram);
  if (!parsed.ok()) return std::string(message);
  sip::Editor ed(**parsed);
  ed.set_body(body);
  return ed.serialize();
}

MediaRequest request_for(MediaOp op, const sip::Message& msg, std::string_view sdp, const MediaSettings& settings) {
  MediaRequest r;
  r.op = op;
  if (auto id = msg.call_id(); id.ok()) r.call_id = std::string(*id);
  r.sdp = std::string(sdp);
  r.flags = settings.flags;
  return r;
}

}  // namespace

bool EdgeProxy::refuse_bad_sdp(TransactionId txn, const sip::Message& request) {
  if (shared_.media == nullptr || !carries_offer(request.method())) return false;
  auto sdp = sdp_of(request);
  if (!sdp) return false;
  auto parsed = sdp::parse_sdp(*sdp);
  if (parsed.ok()) return false;
  reject(Drop::kBadSdp, call_source_or_current(txn), parsed.error().what);
  respond(txn, request, 488);
  return true;
}

bool EdgeProxy::media_offer(Call& call, size_t branch_index, const sip::Message& request, const Destination& dest) {
  if (shared_.media == nullptr || !carries_offer(request.method())) return false;
  const MediaSettings& settings = shared_.config.media;
  auto sdp = sdp_of(request);
  if (!sdp || settings.mode == MediaRelayMode::kNever) return false;
  auto parsed = sdp::parse_sdp(*sdp);
  if (!parsed.ok()) return false;  // refused with 488 before routing
  const auto& ours = shared_.media->relay_addresses;
  for (const auto& m : parsed->media) {
    if (m.connection && m.connection->address &&
        std::find(ours.begin(), ours.end(), m.connection->address->unmapped()) != ours.end()) {
      return false;  // anchored already, by us on an earlier pass or a relay of ours
    }
  }
  // Who sends this SDP and who gets it, where known: our client, or someone beyond upstream.
  std::optional<net::Address> offerer;
  std::optional<net::Address> answerer;
  if (call.from_client) offerer = call.source.remote.address.unmapped();
  if (dest.flow && !call.branches[branch_index].to_upstream) answerer = dest.flow->remote.address.unmapped();
  if (settings.mode == MediaRelayMode::kAuto && offerer && answerer && *offerer == *answerer) {
    shared_.media->metrics.not_relayed.inc();  // one public address: same LAN or same host
    return false;
  }
  Branch& branch = call.branches[branch_index];
  MediaRequest r = request_for(MediaOp::kOffer, request, *sdp, settings);
  r.from_tag = from_tag(request);
  r.to_tag = to_tag(request);
  r.via_branch = has_to_tag(request) ? std::string() : branch.relay_branch;
  if (call.from_client) r.received_from = call.source.remote;
  if (!r.via_branch.empty()) {
    call.media_call_id = r.call_id;
    call.media_from_tag = r.from_tag;
  }
  branch.relay_branch = r.via_branch;
  branch.media = true;
  branch.media_pending = true;
  ask_relay(std::move(r), [this, key = call.record, context = branch.context](Result<MediaReply> reply) {
    media_offer_done(key, context, std::move(reply));
  });
  return true;
}

void EdgeProxy::media_offer_done(uint64_t call_key, uint64_t context, Result<MediaReply> reply) {
  Call* call = call_at(call_key);
  Branch* branch = nullptr;
  if (call != nullptr) {
    for (auto& b : call->branches) {
      if (b.media_pending && b.context == context) branch = &b;
    }
  }
  if (branch == nullptr) {
    // The call ended while the relay worked (and freed the branch's record): nothing to send.
    if (const TxnRecord* rec = record_at(context); rec != nullptr && rec->role == Role::kPending) {
      free_record(context);
    }
    return;
  }
  branch->media_pending = false;
  if (!reply.ok()) {
    branch->media = false;
    bool refused = reply.error().status == 488;
    reject(refused ? Drop::kBadSdp : Drop::kMediaRelay, call->source.remote, reply.error().what);
    if (!refused) shared_.media->metrics.relay_failures.inc();
    if (refused || !shared_.config.media.continue_without_relay) {
      branch_final(*call, *branch, refused ? 488 : 503, {});
      notify_deadline();
      return;
    }
  } else {
    shared_.media->metrics.offers.inc();
    if (!reply->warning.empty()) shared_.log->debug("media relay warning: {}", reply->warning);
    branch->forwarded = with_body(branch->forwarded, reply->sdp);
  }
  if (call->cancelled || (call->final_sent && call->invite)) {
    branch_final(*call, *branch, 487, {});  // CANCELled or answered elsewhere meanwhile
  } else if (!launch_branch(*call, *branch)) {
    branch_final(*call, *branch, 503, {});
  }
  notify_deadline();
}

bool EdgeProxy::media_response(Call& call, size_t branch_index, uint16_t status, std::string& bytes,
                               const sip::Message& response) {
  if (shared_.media == nullptr || shared_.config.media.mode == MediaRelayMode::kNever) return false;
  auto cseq = response.cseq();
  if (!cseq.ok() || !carries_offer(cseq->method) || status < 180 || status >= 300) return false;
  auto sdp = sdp_of(response);
  if (!sdp) return false;
  Branch& branch = call.branches[branch_index];
  const sip::Message* request = call.server != txn::kNoTransaction ? table_.request(call.server) : nullptr;
  MediaRequest r = request_for(MediaOp::kAnswer, response, *sdp, shared_.config.media);
  r.via_branch = branch.relay_branch;
  if (branch.client_flow) r.received_from = branch.client_flow->remote;
  if (branch.media) {
    r.from_tag = from_tag(response);  // the offerer's
    r.to_tag = to_tag(response);
  } else if (request != nullptr && !sdp_of(*request) && request->method() == sip::Method::kInvite) {
    // A late offer: the callee's SDP, answered by the caller's ACK.
    std::optional<net::Address> callee;
    if (branch.client_flow) callee = branch.client_flow->remote.address.unmapped();
    if (shared_.config.media.mode == MediaRelayMode::kAuto && call.from_client && callee &&
        *callee == call.source.remote.address.unmapped()) {
      shared_.media->metrics.not_relayed.inc();
      return false;
    }
    r.op = MediaOp::kOffer;
    r.from_tag = to_tag(response);
    r.to_tag = from_tag(response);
    r.via_branch.clear();  // the callee's tag names it; the ACK knows no branch
    branch.media = true;
  } else {
    return false;
  }
  ask_relay(std::move(r),
            [this, key = call.record, status, bytes = std::move(bytes)](Result<MediaReply> reply) mutable {
              media_response_done(key, status, std::move(bytes), std::move(reply));
            });
  return true;
}

void EdgeProxy::media_response_done(uint64_t call_key, uint16_t status, std::string bytes, Result<MediaReply> reply) {
  Call* call = call_at(call_key);
  if (call == nullptr) return;
  if (reply.ok()) {
    shared_.media->metrics.answers.inc();
    bytes = with_body(bytes, reply->sdp);
  } else {
    // The caller gets the callee's SDP unchanged: without the relay the call may still work
    // (public phones), and dropping a 2xx would leave the callee retransmitting it.
    shared_.media->metrics.relay_failures.inc();
    reject(Drop::kMediaRelay, call->source.remote, reply.error().what);
  }
  send_upstream_response(*call, status, std::move(bytes));
  notify_deadline();
}

bool EdgeProxy::media_ack(const sip::Message& ack, const net::Flow& source) {
  if (shared_.media == nullptr || shared_.config.media.mode == MediaRelayMode::kNever) return false;
  auto sdp = sdp_of(ack);
  if (!sdp) return false;
  // The caller's answer to the callee's late offer (the 2xx's SDP): the callee's tag offered.
  MediaRequest r = request_for(MediaOp::kAnswer, ack, *sdp, shared_.config.media);
  r.from_tag = to_tag(ack);
  r.to_tag = from_tag(ack);
  if (!is_from_upstream(source.remote)) r.received_from = source.remote;
  ask_relay(std::move(r), [this, bytes = std::string(ack.bytes()), source](Result<MediaReply> reply) {
    // No session (the call was not anchored): the ACK goes on as it came.
    std::string out = reply.ok() ? with_body(bytes, reply->sdp) : bytes;
    if (reply.ok()) shared_.media->metrics.answers.inc();
    auto parsed = sip::Message::parse(out, sip::Framing::kDatagram);
    if (parsed.ok()) forward_stateless(**parsed, source, true);
  });
  return true;
}

void EdgeProxy::media_bye(const sip::Message& request) {
  if (shared_.media == nullptr || shared_.config.media.mode == MediaRelayMode::kNever) return;
  MediaRequest r = request_for(MediaOp::kDelete, request, {}, shared_.config.media);
  r.from_tag = from_tag(request);
  r.delete_delay = 0;  // the edge saw the BYE itself: no retransmission can still need the ports
  shared_.media->metrics.deletes.inc();
  ask_relay(std::move(r), [](const Result<MediaReply>&) {});  // an unknown call (never anchored) is fine
}

void EdgeProxy::media_branch_failed(const Call& call, const Branch& branch) {
  // Only a new call's branches: a failed re-INVITE keeps its dialog's media. A pending branch
  // is deleted when its offer returns (media_offer_done sees the CANCEL).
  if (shared_.media == nullptr || call.media_call_id.empty() || !branch.media || branch.media_pending ||
      branch.relay_branch.empty()) {
    return;
  }
  MediaRequest r;
  r.op = MediaOp::kDelete;
  r.call_id = call.media_call_id;
  r.from_tag = call.media_from_tag;
  r.via_branch = branch.relay_branch;
  r.flags = shared_.config.media.flags;
  shared_.media->metrics.deletes.inc();
  ask_relay(std::move(r), [](const Result<MediaReply>&) {});
}

void EdgeProxy::ask_relay(MediaRequest request, std::function<void(Result<MediaReply>)> then) {
  transport::TransportLayer* transport = &shared_.transport;
  uint32_t worker = worker_;
  shared_.media->relay.request(std::move(request), [transport, worker, then = std::move(then)](Result<MediaReply> r) {
    auto reply = std::make_shared<Result<MediaReply>>(std::move(r));
    transport->post(worker, [then, reply] { then(std::move(*reply)); });
  });
}

}  // namespace pinhole::proxy
