// The ng commands' effect on the relay: see media_controller.h.
#include "media/media_controller.h"

#include <chrono>
#include <deque>
#include <memory>
#include <utility>

#include "sdp/session_description.h"

namespace pinhole::media {
namespace {

// Texts as rtpengine answers them (daemon/call_interfaces.c; Kamailio's rtpengine.c matches
// "Ran out of ports" to tell port exhaustion apart).
constexpr std::string_view kUnknownCall = "Unknown call-id";
constexpr std::string_view kDeleteNotFound = "Call-ID not found or tags didn't match";
constexpr std::string_view kOutOfPorts = "Ran out of ports";
constexpr std::string_view kBadSdp = "Failed to parse SDP";
constexpr std::string_view kInternal = "Relay worker unavailable";

std::string error_reply(std::string_view cookie, std::string_view reason) {
  NgReply reply;
  reply.result = NgResult::kError;
  reply.error_reason = reason;
  return encode_ng_reply(cookie, reply);
}

std::optional<net::Address> parse_address(std::string_view text) {
  if (text.empty()) return std::nullopt;
  auto parsed = net::Address::parse(text);
  if (!parsed) return std::nullopt;
  return *parsed;
}

// What the SDP (and the command's address flags) say about one stream's sender. Every leg's
// ports are allocated as a pair without rtcp-mux, since the SDPs we write drop a=rtcp-mux.
LegSetup leg_setup(const sdp::MediaDescription& m, const NgCommand& command) {
  LegSetup setup;
  std::optional<net::Address> received;
  if (command.received_from) received = parse_address(command.received_from->address);
  std::optional<net::Address> address;
  if (m.connection && m.connection->address && !m.connection->unspecified()) address = m.connection->address;
  if (auto media = parse_address(command.media_address)) {
    address = media;
  } else if (command.flags.has(NgFlag::kSipSourceAddress) && received) {
    address = received;
  }
  if (address) {
    setup.sdp_rtp = net::Endpoint{*address, m.port};
    if (m.rtcp) {
      setup.sdp_rtcp = net::Endpoint{m.rtcp->address.value_or(*address), m.rtcp->port};
    } else if (m.port < 65535) {
      setup.sdp_rtcp = net::Endpoint{*address, static_cast<uint16_t>(m.port + 1)};
    }
  }
  if (!command.flags.has(NgFlag::kTrustAddress) && received) setup.signaling_ip = received;
  setup.rtcp_mux = false;
  setup.media_handover = command.flags.has(NgFlag::kMediaHandover);
  // `symmetric` is the default and changes nothing; given with `asymmetric`, asymmetric wins
  // (as in rtpengine, which only looks at the latter).
  setup.asymmetric = command.flags.has(NgFlag::kAsymmetric);
  setup.strict_source = command.flags.has(NgFlag::kStrictSource);
  return setup;
}

sdp::RewriteOptions rewrite_options(const NgCommand& command) {
  sdp::RewriteOptions options;
  options.ice = command.ice == NgIce::kForce ? sdp::IcePolicy::kKeepAndAdd : sdp::IcePolicy::kRemove;
  options.rtcp_mux = sdp::RtcpMuxPolicy::kRemove;
  options.replace_origin = command.replace.has(NgReplace::kOrigin) || command.replace.has(NgReplace::kOriginFull);
  options.replace_zero_address = command.replace.has(NgReplace::kZeroAddress);
  return options;
}

}  // namespace

MediaController::MediaController(MediaControllerConfig config, PortPool& pool, std::vector<RelayWorker*> workers,
                                 const Clock& clock)
    : config_(config), pool_(pool), workers_(std::move(workers)), clock_(clock) {}

MediaController::~MediaController() {
  while (!calls_.empty()) erase_call(calls_.begin());
}

int64_t MediaController::unix_now() const {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

size_t MediaController::session_count() const {
  size_t n = 0;
  for (const auto& [id, call] : calls_) {
    for (const auto& branch : call.branches) n += branch.streams.size();
  }
  return n;
}

std::string MediaController::execute(std::string_view cookie, const NgCommand& command) {
  switch (command.kind) {
    case NgCommandKind::kOffer:
      return offer(cookie, command);
    case NgCommandKind::kAnswer:
      return answer(cookie, command);
    case NgCommandKind::kDelete:
      return remove(cookie, command);
    case NgCommandKind::kQuery:
      return query(cookie, command);
    case NgCommandKind::kList:
      return list(cookie, command);
    case NgCommandKind::kPing: {
      std::string warning = ng_warning(command);
      NgReply reply;
      reply.result = NgResult::kPong;
      reply.warning = warning;
      return encode_ng_reply(cookie, reply);
    }
    case NgCommandKind::kOther:
      break;
  }
  return error_reply(cookie, "Unrecognized command");
}

std::string MediaController::offer(std::string_view cookie, const NgCommand& command) {
  auto parsed = sdp::parse_sdp(command.sdp);
  if (!parsed) return error_reply(cookie, kBadSdp);
  const sdp::SessionDescription& desc = *parsed;
  TimePoint now = clock_.now();

  bool new_call = false;
  auto it = calls_.find(command.call_id);
  if (it == calls_.end()) {
    it = calls_.emplace(std::string(command.call_id), Call{}).first;
    it->second.created = unix_now();
    new_call = true;
  }
  Call& call = it->second;
  call.last_signal = unix_now();
  call.delete_at.reset();  // a new offer revives a call whose delete was pending
  auto [branch, side] = find_branch(call, command.from_tag, command.to_tag, command.via_branch);
  bool new_branch = branch == nullptr;
  Branch fresh;
  if (new_branch) {
    fresh.from_tag = std::string(command.from_tag);
    fresh.via_branch = std::string(command.via_branch);
    fresh.created = unix_now();
    branch = &fresh;
  }

  std::vector<std::optional<sdp::RelayEndpoint>> relays(desc.media.size());
  std::vector<Stream> created;
  for (size_t i = 0; i < desc.media.size(); ++i) {
    const sdp::MediaDescription& m = desc.media[i];
    if (m.disabled()) continue;
    LegSetup setup = leg_setup(m, command);
    Stream* existing = nullptr;
    for (auto& s : branch->streams) {
      if (s.media_index == i) existing = &s;
    }
    if (existing != nullptr) {
      // Re-offer: the offering leg learns its peer again from the new SDP.
      RelayWorker* worker = workers_[existing->worker];
      auto done = worker->call([worker, key = existing->key, setup, now, side = side] {
        RelaySession* s = worker->find(key);
        if (s == nullptr) return false;
        s->leg(side).reset_expected(setup, now);
        worker->refresh_fast_path(key);  // a moved peer must leave the kernel at once
        return true;
      });
      if (done && *done) {
        relays[i] = sdp::RelayEndpoint{config_.advertised, existing->leg_ports[1 - side]};
        continue;
      }
    }
    SessionKey key{std::string(command.call_id), branch->from_tag, branch->via_branch + "#" + std::to_string(i)};
    auto session = side == 0 ? RelaySession::create(key, pool_, setup, LegSetup{}, config_.session, now)
                             : RelaySession::create(key, pool_, LegSetup{}, setup, config_.session, now);
    if (!session) {
      drop_streams(created);
      if (new_call) calls_.erase(it);
      ++counters_.out_of_ports;
      return error_reply(cookie, session.error().status == 503 ? kOutOfPorts : session.error().what);
    }
    Stream stream;
    stream.media_index = i;
    stream.key = key;
    stream.worker = next_worker_++ % workers_.size();
    stream.leg_ports[0] = (*session)->leg(0).ports().rtp_port();
    stream.leg_ports[1] = (*session)->leg(1).ports().rtp_port();
    // std::function needs a copyable callable: the session travels in a shared holder.
    auto holder = std::make_shared<std::unique_ptr<RelaySession>>(std::move(*session));
    RelayWorker* worker = workers_[stream.worker];
    auto added = worker->call([worker, holder] { return worker->add_session(std::move(*holder)).ok(); });
    if (!added || !*added) {
      drop_streams(created);
      if (new_call) calls_.erase(it);
      return error_reply(cookie, kInternal);
    }
    relays[i] = sdp::RelayEndpoint{config_.advertised, stream.leg_ports[1 - side]};
    if (existing != nullptr) {
      *existing = stream;
    } else {
      created.push_back(stream);
    }
  }

  auto rewritten = sdp::rewrite_sdp(desc, relays, rewrite_options(command), branch->previous[side]);
  if (!rewritten) {
    drop_streams(created);
    if (new_call) calls_.erase(it);
    return error_reply(cookie, rewritten.error().what);
  }
  branch->previous[side] = sdp::PreviousRewrite{rewritten->version, rewritten->content_hash};
  for (auto& s : created) branch->streams.push_back(std::move(s));
  counters_.sessions_created += created.size();
  if (new_branch) call.branches.push_back(std::move(fresh));
  if (new_call) ++counters_.calls_created;

  return sdp_reply(cookie, command, rewritten->body);
}

// The ok reply of offer/answer: the rewritten SDP, and a warning naming what was ignored.
std::string MediaController::sdp_reply(std::string_view cookie, const NgCommand& command, std::string_view body) {
  std::string warning = ng_warning(command);  // NgReply holds views: both strings outlive the encoding
  NgReply reply;
  reply.sdp = body;
  reply.warning = warning;
  return encode_ng_reply(cookie, reply);
}

std::string MediaController::answer(std::string_view cookie, const NgCommand& command) {
  auto it = calls_.find(command.call_id);
  if (it == calls_.end()) return error_reply(cookie, kUnknownCall);
  // `side`: 0 answers an offer of the branch's offerer (leg A), 1 one of its answerer (a re-INVITE
  // from the callee, whose answer comes from leg A).
  auto [branch, side] = find_branch(it->second, command.from_tag, command.to_tag, command.via_branch);
  if (branch == nullptr) return error_reply(cookie, kUnknownCall);
  auto parsed = sdp::parse_sdp(command.sdp);
  if (!parsed) return error_reply(cookie, kBadSdp);
  const sdp::SessionDescription& desc = *parsed;
  TimePoint now = clock_.now();
  it->second.last_signal = unix_now();
  if (side == 0) branch->to_tag = std::string(command.to_tag);
  size_t answering = 1 - side;  // the leg whose SDP this is

  std::vector<std::optional<sdp::RelayEndpoint>> relays(desc.media.size());
  for (const Stream& stream : branch->streams) {
    size_t i = stream.media_index;
    if (i >= desc.media.size() || desc.media[i].disabled()) continue;
    LegSetup setup = leg_setup(desc.media[i], command);
    RelayWorker* worker = workers_[stream.worker];
    auto done = worker->call([worker, key = stream.key, setup, now, answering] {
      RelaySession* s = worker->find(key);
      if (s == nullptr) return false;
      s->leg(answering).reset_expected(setup, now);
      worker->refresh_fast_path(key);
      return true;
    });
    if (done && *done) relays[i] = sdp::RelayEndpoint{config_.advertised, stream.leg_ports[side]};
  }
  auto rewritten = sdp::rewrite_sdp(desc, relays, rewrite_options(command), branch->previous[answering]);
  if (!rewritten) return error_reply(cookie, rewritten.error().what);
  branch->previous[answering] = sdp::PreviousRewrite{rewritten->version, rewritten->content_hash};

  return sdp_reply(cookie, command, rewritten->body);
}

std::pair<MediaController::Branch*, size_t> MediaController::find_branch(Call& call, std::string_view from_tag,
                                                                         std::string_view to_tag,
                                                                         std::string_view via_branch) {
  // The branch `from_tag` offered (side 0): the one whose answerer is `to_tag` when there are
  // several (forks without via-branch), else the first. A via-branch names it exactly.
  Branch* any = nullptr;
  for (auto& b : call.branches) {
    if (b.from_tag != from_tag || (!via_branch.empty() && b.via_branch != via_branch)) continue;
    if (to_tag.empty() || b.to_tag.empty() || b.to_tag == to_tag) return {&b, 0};
    if (any == nullptr) any = &b;
  }
  if (any != nullptr) return {any, 0};
  // The other direction of an established dialog (side 1): a re-INVITE or UPDATE from the
  // callee, whose tag the branch learned from the answer. Its SDP goes on leg B.
  if (via_branch.empty()) {
    for (auto& b : call.branches) {
      if (!b.to_tag.empty() && b.to_tag == from_tag && (to_tag.empty() || b.from_tag == to_tag)) return {&b, 1};
    }
  }
  return {nullptr, 0};
}

std::string MediaController::remove(std::string_view cookie, const NgCommand& command) {
  auto it = calls_.find(command.call_id);
  bool found = it != calls_.end();
  if (found && !command.via_branch.empty()) {
    // One forked branch only (rtpengine: delete with via-branch).
    auto& branches = it->second.branches;
    found = false;
    for (auto b = branches.begin(); b != branches.end();) {
      if (b->via_branch == command.via_branch && (command.from_tag.empty() || b->from_tag == command.from_tag)) {
        drop_streams(b->streams);
        b = branches.erase(b);
        found = true;
      } else {
        ++b;
      }
    }
    if (found && branches.empty()) calls_.erase(it);
  } else if (found) {
    Duration delay = command.delete_delay ? std::chrono::seconds(*command.delete_delay) : config_.default_delete_delay;
    if (delay <= Duration::zero()) {
      erase_call(it);
    } else {
      it->second.delete_at = clock_.now() + delay;
    }
  }
  NgReply reply;
  std::string warning = ng_warning(command);
  if (!found) {
    if (command.flags.has(NgFlag::kFatal)) return error_reply(cookie, kDeleteNotFound);
    warning = warning.empty() ? std::string(kDeleteNotFound) : std::string(kDeleteNotFound) + "; " + warning;
  }
  reply.warning = warning;
  return encode_ng_reply(cookie, reply);
}

std::string MediaController::query(std::string_view cookie, const NgCommand& command) {
  auto it = calls_.find(command.call_id);
  if (it == calls_.end()) return error_reply(cookie, kUnknownCall);
  const Call& call = it->second;
  // A copy of what the worker knows about one leg, taken on the worker's thread.
  struct LegView {
    LegStats stats;
    std::optional<net::Endpoint> peer[2];  // [rtp, rtcp]: learned by latching
    std::optional<net::Endpoint> sdp[2];   // what signaling gave
    LatchState state[2] = {LatchState::kLearning, LatchState::kLearning};
    bool kernelized[2] = {false, false};  // forwarded by the kernel fast path
  };
  struct Views {
    bool found = false;
    LegView legs[2];
  };
  // The reply holds views: the endpoint texts live here until it is encoded.
  std::deque<std::string> texts;
  auto endpoint = [&texts](const net::Endpoint& e) {
    texts.push_back(e.address.to_string());
    return NgEndpoint{e.address.is_v6() ? NgFamily::kIp6 : NgFamily::kIp4, texts.back(), e.port};
  };
  auto latch_flag = [](LatchState state) -> std::string_view {
    switch (state) {
      case LatchState::kLocked:
        return "confirmed";  // rtpengine's word for a stream whose peer is known
      case LatchState::kProvisional:
        return "provisional";
      case LatchState::kLearning:
        break;
    }
    return "";
  };
  NgCallStats stats;
  stats.created = call.created;
  stats.last_signal = call.last_signal;
  for (const Branch& branch : call.branches) {
    NgTagStats tags[2];
    tags[0].tag = branch.from_tag;
    tags[0].created = branch.created;
    tags[0].in_dialogue_with = branch.to_tag;
    tags[1].tag = branch.to_tag;
    tags[1].created = branch.created;
    tags[1].in_dialogue_with = branch.from_tag;
    for (const Stream& stream : branch.streams) {
      RelayWorker* worker = workers_[stream.worker];
      auto views = worker->call([worker, key = stream.key] {
        Views v;
        worker->refresh_fast_path(key);  // the kernel's counts into the statistics first
        const RelaySession* s = worker->find(key);
        if (s == nullptr) return v;
        v.found = true;
        for (size_t leg = 0; leg < 2; ++leg) {
          const RelayLeg& l = s->leg(leg);
          v.legs[leg].stats = l.stats();
          const Latch* latches[2] = {&l.rtp_latch(), &l.rtcp_latch()};
          for (size_t k = 0; k < 2; ++k) {
            v.legs[leg].peer[k] = latches[k]->peer();
            v.legs[leg].sdp[k] = latches[k]->sdp_peer();
            v.legs[leg].state[k] = latches[k]->state();
            v.legs[leg].kernelized[k] = worker->kernelized(key, leg, k == 1);
          }
        }
        return v;
      });
      Views v = views ? *views : Views{};
      for (size_t leg = 0; leg < 2; ++leg) {
        const LegView& lv = v.legs[leg];
        const LegStats& ls = lv.stats;
        NgMediaStats media;
        media.index = static_cast<int64_t>(stream.media_index) + 1;
        NgStreamStats rtp;
        rtp.local_port = stream.leg_ports[leg];
        rtp.stats.packets = ls.rtp_received.packets;
        rtp.stats.bytes = ls.rtp_received.bytes;
        rtp.flags.emplace_back("RTP");
        NgStreamStats rtcp;
        rtcp.local_port = static_cast<uint16_t>(stream.leg_ports[leg] + 1);
        rtcp.stats.packets = ls.rtcp_received.packets;
        rtcp.stats.bytes = ls.rtcp_received.bytes;
        rtcp.flags.emplace_back("RTCP");
        NgStreamStats* parts[2] = {&rtp, &rtcp};
        for (size_t k = 0; k < 2 && v.found; ++k) {
          if (lv.peer[k]) parts[k]->endpoint = endpoint(*lv.peer[k]);
          if (lv.sdp[k]) parts[k]->advertised_endpoint = endpoint(*lv.sdp[k]);
          if (std::string_view flag = latch_flag(lv.state[k]); !flag.empty()) parts[k]->flags.push_back(flag);
          if (lv.kernelized[k]) parts[k]->flags.emplace_back("kernelized");  // rtpengine's word
        }
        if (v.found) {
          NgRelayStats relay;
          relay.first_seq = ls.rtp_received.first_seq;
          relay.first_forwarded_seq = ls.rtp_forwarded.first_seq;
          relay.last_forwarded_seq = ls.rtp_forwarded.last_seq;
          relay.forwarded = ls.rtp_forwarded.packets;
          relay.forwarded_unlatched = ls.forwarded_unlatched;
          relay.dropped_foreign = ls.dropped_foreign;
          relay.dropped_no_peer = ls.dropped_no_peer;
          relay.dropped_malformed = ls.dropped_malformed;
          relay.send_errors = ls.send_errors;
          rtp.relay = relay;
        }
        media.streams = {rtp, rtcp};
        tags[leg].medias.push_back(std::move(media));
        stats.rtp_totals.packets += ls.rtp_received.packets;
        stats.rtp_totals.bytes += ls.rtp_received.bytes;
        stats.rtcp_totals.packets += ls.rtcp_received.packets;
        stats.rtcp_totals.bytes += ls.rtcp_received.bytes;
      }
    }
    stats.tags.push_back(std::move(tags[0]));
    if (!branch.to_tag.empty()) stats.tags.push_back(std::move(tags[1]));
  }
  std::string warning = ng_warning(command);
  NgReply reply;
  reply.stats = &stats;
  reply.warning = warning;
  return encode_ng_reply(cookie, reply);
}

std::string MediaController::list(std::string_view cookie, const NgCommand& command) {
  std::vector<std::string_view> ids;
  size_t limit = command.limit && *command.limit >= 0 ? static_cast<size_t>(*command.limit) : calls_.size();
  for (const auto& [id, call] : calls_) {
    if (ids.size() >= limit) break;
    ids.push_back(id);
  }
  NgReply reply;
  reply.call_ids = &ids;
  return encode_ng_reply(cookie, reply);
}

void MediaController::tick() {
  std::vector<SessionKey> timed_out;
  {
    std::lock_guard lock(timeouts_mutex_);
    timed_out.swap(timeouts_);
  }
  for (const SessionKey& key : timed_out) {
    // rtpengine ends the whole call when its media times out.
    auto it = calls_.find(key.call_id);
    if (it == calls_.end()) continue;
    ++counters_.timeouts;
    erase_call(it);
  }
  TimePoint now = clock_.now();
  for (auto it = calls_.begin(); it != calls_.end();) {
    auto next = std::next(it);
    if (it->second.delete_at && *it->second.delete_at <= now) erase_call(it);
    it = next;
  }
}

void MediaController::on_session_timeout(const SessionKey& key) {
  std::lock_guard lock(timeouts_mutex_);
  timeouts_.push_back(key);
}

void MediaController::drop_streams(const std::vector<Stream>& streams) {
  for (const Stream& stream : streams) {
    RelayWorker* worker = workers_[stream.worker];
    auto removed = worker->call([worker, key = stream.key] { return worker->remove_session(key); });
    if (removed && *removed) ++counters_.sessions_deleted;
  }
}

void MediaController::erase_call(std::map<std::string, Call, std::less<>>::iterator it) {
  for (const Branch& branch : it->second.branches) drop_streams(branch.streams);
  calls_.erase(it);
}

}  // namespace pinhole::media
