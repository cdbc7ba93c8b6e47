// NAT keepalives in the edge proxy (issue 5; nat/keepalive_engine.h does the timing and the
// matching). This file learns why a flow must stay open from what the proxy routes:
//   registration  a 2xx to REGISTER: per Contact the granted expires (0 or not listed: removed),
//                 whoever answered (an upstream registrar, border mode, our own registrar);
//   subscription  a 2xx to SUBSCRIBE: its Expires;
//   dialog        an INVITE: its caller's flow and each NATed callee branch's flow during setup,
//                 kept by the answering branch on 2xx, dropped on a failure, CANCEL or BYE.
// Only the worker that owns a flow keeps it alive (keepalive_owner): stream flows belong to their
// connection's worker, UDP flows to the worker the kernel hands their datagrams to (the reuseport
// steering program of transport/udp_steering.h), so a client's own requests need no post; reasons
// learned elsewhere are posted there,
// and answers that the kernel hands to another worker are passed back by the shard in their token.
#include <spdlog/spdlog.h>

#include "nat/nat_detect.h"
#include "proxy/edge_proxy.h"
#include "proxy/register_contacts.h"
#include "transport/connection_table.h"
#include "transport/udp_steering.h"

namespace pinhole::proxy {

using txn::TransactionId;
using Reason = nat::KeepaliveReason;

namespace {

// How long an INVITE's flows are kept alive while it is being set up: Timer C plus the 32 s a
// final answer may still take to be retransmitted.
std::chrono::seconds setup_lifetime(const ProxyConfig& config) {
  return std::chrono::seconds(config.timer_c_seconds + 32);
}

std::string dialog_key(const sip::Message& msg) {
  auto id = msg.call_id();
  return id.ok() ? std::string(*id) : std::string();
}

// The subscriber's dialog: Call-ID and the subscriber's tag (From of the SUBSCRIBE).
std::string subscription_key(const sip::Message& subscribe) {
  auto id = subscribe.call_id();
  auto from = subscribe.from();
  if (!id.ok() || !from.ok() || !*from) return {};
  return std::string(*id) + ";" + std::string((*from)->tag);
}

// A registration reason's key: the AOR and the binding within it.
std::string registration_key(std::string_view aor, std::string_view binding) {
  std::string key;
  key.reserve(aor.size() + 1 + binding.size());
  key.append(aor).append("|").append(binding);
  return key;
}

std::string advertised_sent_by(const transport::LocalSocket& s) {
  bool v6 = s.advertised_host.find(':') != std::string::npos && s.advertised_host.front() != '[';
  return (v6 ? "[" + s.advertised_host + "]" : s.advertised_host) + ":" + std::to_string(s.advertised_port);
}

}  // namespace

uint32_t EdgeProxy::keepalive_owner(const net::Flow& flow, size_t workers) {
  if (workers <= 1) return 0;
  if (net::is_stream(flow.transport)) return transport::worker_of(flow.connection_id);
  return transport::udp_steering_worker(flow.remote, workers);  // the worker that reads its datagrams
}

bool EdgeProxy::wants_keepalive(const Call& call, const sip::Message& request) const {
  if (shared_.keepalive == nullptr) return false;
  if (!shared_.config.keepalive.only_natted) return true;
  if (!call.natted) {
    auto nat = nat::detect_nat(shared_.config.nat_tests, request, call.source.remote, call.source.transport);
    call.natted = nat.ok() && !nat->empty();
  }
  return *call.natted;
}

void EdgeProxy::keepalive_reason(const net::Flow& flow, Reason reason, std::string key, std::chrono::seconds expires,
                                 bool create) {
  if (shared_.keepalive == nullptr || key.empty()) return;
  uint32_t owner = keepalive_owner(flow, shared_.workers.size());
  if (owner == worker_ || owner >= shared_.workers.size()) {
    apply_keepalive_reason(flow, reason, key, expires, create);
    return;
  }
  EdgeProxy* target = shared_.workers[owner];
  shared_.transport.post(owner, [target, flow, reason, key = std::move(key), expires, create] {
    target->apply_keepalive_reason(flow, reason, key, expires, create);
    target->notify_deadline();
  });
}

void EdgeProxy::apply_keepalive_reason(const net::Flow& flow, Reason reason, const std::string& key,
                                       std::chrono::seconds expires, bool create) {
  if (!keepalive_) return;
  if (expires.count() > 0 && !create && !keepalive_->contains(flow)) return;
  if (!keepalive_->set_reason(flow, reason, key, expires)) {
    shared_.keepalive->metrics.full.inc();
    return;
  }
  keepalive_changed(flow);
}

void EdgeProxy::keepalive_suppress(const net::Flow& flow, bool client_keeps_alive) {
  if (shared_.keepalive == nullptr) return;
  uint32_t owner = keepalive_owner(flow, shared_.workers.size());
  EdgeProxy* target = owner < shared_.workers.size() ? shared_.workers[owner] : this;
  auto apply = [target, flow, client_keeps_alive] {
    if (target->keepalive_) target->keepalive_->suppress(flow, client_keeps_alive);
    target->notify_deadline();
  };
  if (target == this) {
    apply();
  } else {
    shared_.transport.post(owner, apply);
  }
}

void EdgeProxy::restore_keepalive(const net::Flow& flow, Reason reason, uint64_t key_hash,
                                  std::chrono::seconds remaining) {
  if (!keepalive_ || remaining.count() <= 0) return;
  if (!keepalive_->set_reason_hashed(flow, reason, key_hash, remaining)) shared_.keepalive->metrics.full.inc();
  publish_keepalive_counters();
  notify_deadline();
}

// ---------------------------------------------------------------- learning

void EdgeProxy::keepalive_branch_started(const Call& call, const sip::Message& request, const Branch& branch) {
  if (shared_.keepalive == nullptr) return;
  sip::Method m = request.method();
  if (m == sip::Method::kInvite && !has_to_tag(request)) {
    // Setup: the caller (when it is our NATed client) and each NATed callee branch.
    if (call.from_client && call.branches.size() == 1) {
      keepalive_reason(call.source, Reason::kDialog, dialog_key(request), setup_lifetime(shared_.config),
                       wants_keepalive(call, request));
    }
    if (branch.client_flow) {
      keepalive_reason(*branch.client_flow, Reason::kDialog, dialog_key(request), setup_lifetime(shared_.config),
                       false);
    }
  } else if (m == sip::Method::kBye) {
    if (call.from_client) keepalive_reason(call.source, Reason::kDialog, dialog_key(request), {}, false);
    if (branch.client_flow) keepalive_reason(*branch.client_flow, Reason::kDialog, dialog_key(request), {}, false);
  }
}

void EdgeProxy::keepalive_final(const Call& call, const Branch* branch, uint16_t status, const sip::Message* response) {
  if (shared_.keepalive == nullptr || call.server == txn::kNoTransaction) return;
  const sip::Message* request = table_.request(call.server);
  if (request == nullptr) return;
  sip::Method m = request->method();
  bool ok = status >= 200 && status < 300;
  if (m == sip::Method::kInvite) {
    // A dialog (or re-INVITE) established keeps both its NATed ends; a failure ends the setup
    // reason of the branch (or, as the call's final answer, the caller's). A failed re-INVITE
    // (491, 488...) leaves its dialog as it was (RFC 3261 §14.1).
    if (!ok && has_to_tag(*request)) return;
    auto lifetime = ok ? std::chrono::seconds(shared_.config.dialog_flow_seconds) : std::chrono::seconds(0);
    if (branch != nullptr && branch->client_flow) {
      keepalive_reason(*branch->client_flow, Reason::kDialog, dialog_key(*request), lifetime, false);
    }
    if (call.from_client && (ok || branch == nullptr)) {
      keepalive_reason(call.source, Reason::kDialog, dialog_key(*request), lifetime,
                       ok && !has_to_tag(*request) && wants_keepalive(call, *request));
    }
    return;
  }
  if (!ok || response == nullptr || !call.from_client) return;  // negative replies change nothing
  if (m == sip::Method::kSubscribe) {
    auto expires = response->expires();
    std::optional<uint32_t> granted = expires.ok() ? *expires : std::nullopt;
    if (!granted) {
      auto asked = request->expires();
      if (asked.ok()) granted = *asked;
    }
    if (granted) {
      keepalive_reason(call.source, Reason::kSubscription, subscription_key(*request), std::chrono::seconds(*granted),
                       wants_keepalive(call, *request));
    }
    return;
  }
  if (m != sip::Method::kRegister) return;
  // An upstream registrar's (or border mode's) 2xx: per Contact asked, what it granted.
  auto to = request->to();
  auto asked = request->contacts();
  auto listed = response->contacts();
  if (!to.ok() || !*to || !asked.ok() || !listed.ok()) return;
  std::string aor((*to)->uri.raw);
  bool create = wants_keepalive(call, *request);
  for (const auto& a : *asked) {
    if (a.star) continue;
    uint32_t granted = 0;
    for (const auto& l : *listed) {
      if (l.star || !same_contact(a, l)) continue;
      granted = contact_expires(l, *response, true).value_or(0);
      break;
    }
    keepalive_reason(call.source, Reason::kRegistration, registration_key(aor, contact_key(a)),
                     std::chrono::seconds(granted), create);
  }
  // RFC 5626 §5.4: a Flow-Timer in the 2xx tells the client to keep the flow alive itself.
  keepalive_suppress(call.source, response->header(sip::HeaderKind::kFlowTimer) != nullptr);
}

void EdgeProxy::keepalive_registered(const sip::Message& request, const net::Flow& source,
                                     const registrar::RegisterOutcome& outcome, int64_t now, bool natted) {
  if (shared_.keepalive == nullptr || outcome.status >= 300) return;
  // Through another proxy (a Path): that proxy holds the NATed flow and keeps it alive.
  if (auto paths = request.paths(); !paths.ok() || !paths->empty()) return;
  // The registrar ran the NAT tests already (`natted`).
  bool create = natted || !shared_.config.keepalive.only_natted;
  for (const auto& b : outcome.saved) {
    if (!(b.flow == source)) continue;
    keepalive_reason(source, Reason::kRegistration, registration_key(b.aor, b.binding_id),
                     std::chrono::seconds(std::max<int64_t>(b.expires_at - now, 0)), create);
  }
  for (const auto& [aor, id] : outcome.removed)
    keepalive_reason(source, Reason::kRegistration, registration_key(aor, id), {}, false);
  keepalive_suppress(source, outcome.headers.find("Flow-Timer:") != std::string::npos);
}

// ---------------------------------------------------------------- answers and timers

bool EdgeProxy::keepalive_sip_reply(transport::Inbound& in) {
  auto shard = nat::KeepaliveEngine::reply_shard(*in.message);
  if (!shard) return false;
  if (*shard != worker_ && *shard < shared_.workers.size()) {
    auto moved = std::make_shared<transport::Inbound>(std::move(in));
    EdgeProxy* target = shared_.workers[*shard];
    shared_.transport.post(*shard, [target, moved] { target->keepalive_sip_reply(*moved); });
    return true;
  }
  if (!keepalive_) return true;  // our token format, but keepalives are off: nothing to forward
  auto kind = keepalive_->on_sip_response(*in.message, in.flow);
  if (kind == nat::KeepaliveEngine::ReplyKind::kNotOurs)
    reject(Drop::kStrayResponse, in.flow.remote, "stale keepalive answer");
  publish_keepalive_counters();
  notify_deadline();
  return true;
}

bool EdgeProxy::keepalive_stun_reply(const net::Flow& flow, std::string_view bytes) {
  auto shard = nat::KeepaliveEngine::stun_reply_shard(bytes);
  if (!shard) return false;
  if (*shard != worker_ && *shard < shared_.workers.size()) {
    EdgeProxy* target = shared_.workers[*shard];
    shared_.transport.post(*shard,
                           [target, flow, data = std::string(bytes)] { target->keepalive_stun_reply(flow, data); });
    return true;
  }
  if (keepalive_) {
    (void)keepalive_->on_stun(bytes, flow);
    publish_keepalive_counters();
    notify_deadline();
  }
  return true;
}

void EdgeProxy::on_pong(const net::Flow& flow) {
  if (!keepalive_) return;
  keepalive_->on_pong(flow);
  publish_keepalive_counters();
  notify_deadline();
}

void EdgeProxy::run_keepalive(TimePoint t) {
  if (!keepalive_) return;
  auto next = keepalive_->next_deadline();
  if (!next || *next > t) return;
  keepalive_->advance(t, keepalive_due_);
  for (const auto& s : keepalive_due_.sends) (void)shared_.transport.send(s.flow, s.bytes);
  for (const auto& f : keepalive_due_.dead) keepalive_dead(f);
  if (shared_.keepalive->persist) {
    for (const auto& f : keepalive_due_.expired) shared_.keepalive->persist(f, std::nullopt);
  }
  publish_keepalive_counters();
}

void EdgeProxy::keepalive_dead(const net::Flow& flow) {
  shared_.log->info("keepalive: {} {} stopped answering: flow closed", net::transport_name(flow.transport),
                    flow.remote.to_string());
  if (shared_.keepalive->persist) shared_.keepalive->persist(flow, std::nullopt);
  shared_.transport.close_flow(flow);
  if (shared_.registrar == nullptr || !shared_.config.keepalive.remove_bindings_on_dead) return;
  RegistrarServices& reg = *shared_.registrar;
  for (const auto& b : reg.location.find_by_flow(flow)) {
    if (!reg.location.remove(b.aor, b.binding_id)) continue;
    reg.store.remove_binding(b.aor, b.binding_id);
    shared_.keepalive->metrics.bindings_removed.inc();
  }
}

void EdgeProxy::keepalive_changed(const net::Flow& flow) {
  publish_keepalive_counters();
  if (shared_.keepalive->persist) shared_.keepalive->persist(flow, keepalive_->find(flow));
}

void EdgeProxy::publish_keepalive_counters() {
  if (!keepalive_) return;
  KeepaliveMetrics& m = shared_.keepalive->metrics;
  nat::KeepaliveEngine::Counters now = keepalive_->counters();
  nat::KeepaliveEngine::Counters& was = keepalive_published_;
  m.sent.inc(now.sent - was.sent);
  m.replies.inc(now.replies - was.replies);
  m.timeouts.inc(now.timeouts - was.timeouts);
  m.dead.inc(now.dead - was.dead);
  m.rebindings.inc(now.rebindings - was.rebindings);
  for (size_t r = 0; r < nat::kKeepaliveReasonCount; ++r) {
    m.endpoints_by_reason[r]->add(static_cast<int64_t>(now.endpoints_by_reason[r]) -
                                  static_cast<int64_t>(was.endpoints_by_reason[r]));
  }
  m.endpoints_udp.add(static_cast<int64_t>(now.endpoints_udp) - static_cast<int64_t>(was.endpoints_udp));
  m.endpoints_stream.add(static_cast<int64_t>(now.endpoints_stream) - static_cast<int64_t>(was.endpoints_stream));
  was = now;
}

std::unique_ptr<nat::KeepaliveEngine> EdgeProxy::make_keepalive(ProxyShared& shared, uint32_t worker,
                                                                const Clock& clock) {
  if (shared.keepalive == nullptr || !shared.config.keepalive.enabled) return nullptr;
  transport::TransportLayer* transport = &shared.transport;
  auto advertised = [transport](uint32_t socket_id) -> std::string {
    const auto& sockets = transport->local_sockets();
    return socket_id < sockets.size() ? advertised_sent_by(sockets[socket_id]) : std::string();
  };
  return std::make_unique<nat::KeepaliveEngine>(shared.config.keepalive.engine, clock, advertised, std::nullopt,
                                                static_cast<uint8_t>(worker));
}

}  // namespace pinhole::proxy
