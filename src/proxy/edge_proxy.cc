#include "proxy/edge_proxy.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <string>

#include "nat/nat_detect.h"
#include "nat/stun.h"
#include "proxy/branch.h"
#include "proxy/raw_error_response.h"
#include "proxy/request_rewrite.h"
#include "sip/builder.h"
#include "sip/sanity.h"

namespace pinhole::proxy {
namespace {

using txn::TransactionId;

txn::Reliability reliability_of(net::Transport t) {
  return net::is_stream(t) ? txn::Reliability::kReliable : txn::Reliability::kUnreliable;
}

// Requests that create a dialog and so get Record-Route (RFC 3261 §16.6 step 4; RFC 6665 for
// SUBSCRIBE/REFER/NOTIFY).
bool dialog_forming(sip::Method m) {
  return m == sip::Method::kInvite || m == sip::Method::kSubscribe || m == sip::Method::kRefer ||
         m == sip::Method::kNotify;
}

// §16.7 step 6: 6xx first, then the lowest class; within 4xx prefer the more useful codes
// (401/407 challenges, 415/420/484) over 408 and 503, which only say nothing answered.
int response_rank(uint16_t status) {
  if (status >= 600) return 0;
  if (status == 401 || status == 407) return 1;
  if (status >= 300 && status < 400) return 2;
  if (status >= 400 && status < 500 && status != 408) return 3;
  if (status >= 500 && status != 503) return 4;
  if (status == 503) return 5;  // §16.7 step 6: a 503 is passed on as 500
  return 6;                     // 408
}

// The expires a 2xx to REGISTER granted (largest of the Contact expires or the Expires header).
std::chrono::seconds granted_expires(const sip::Message& response, std::chrono::seconds fallback) {
  uint32_t best = 0;
  bool any = false;
  auto header_expires = response.expires();
  auto contacts = response.contacts();
  if (contacts.ok()) {
    for (const auto& c : *contacts) {
      uint32_t value = 0;
      if (!c.expires.empty()) {
        auto [p, ec] = std::from_chars(c.expires.data(), c.expires.data() + c.expires.size(), value);
        if (ec != std::errc{}) continue;
      } else if (header_expires.ok() && header_expires->has_value()) {
        value = **header_expires;
      } else {
        continue;
      }
      best = std::max(best, value);
      any = true;
    }
  }
  if (!any) return fallback;
  return std::chrono::seconds(best);
}

}  // namespace

EdgeProxy::EdgeProxy(ProxyShared& shared, uint32_t worker, const txn::TimerConfig& timers, const Clock& clock)
    : shared_(shared),
      worker_(worker),
      clock_(clock),
      table_(timers, *this, *this),
      reject_log_(shared.log, std::chrono::seconds(10)),
      keepalive_(make_keepalive(shared, worker, clock)) {}

EdgeProxy::~EdgeProxy() = default;

// ---------------------------------------------------------------- inbound

void EdgeProxy::on_message(transport::Inbound inbound) {
  if (inbound.message->is_request()) {
    handle_request(inbound);
  } else {
    handle_response(inbound);
  }
  notify_deadline();
}

void EdgeProxy::on_unparsable(const net::Flow& flow, uint32_t /*worker*/, std::string_view bytes, const Error& error) {
  reject(Drop::kUnparsable, flow.remote, error.what);
  uint16_t status = error.status >= 400 ? error.status : 400;
  if (auto response = raw_error_response(bytes, status, shared_.config.server_name)) {
    shared_.metrics.response_sent(status);
    shared_.transport.send(flow, *response);
  }
}

void EdgeProxy::on_binary_datagram(const net::Flow& flow, uint32_t /*worker*/, std::string_view bytes) {
  // RFC 5626 §4.4.2 / §8: a UA keeping its UDP flow alive sends STUN Binding requests to the SIP
  // port, and the edge answers with the address it sees (the UA learns its NAT mapping from it).
  if (keepalive_stun_reply(flow, bytes)) return;  // the answer to our own keepalive
  auto stun = nat::decode_stun(bytes);
  if (!stun.ok() || stun->type != nat::kStunBindingRequest) {
    reject(Drop::kBadStun, flow.remote, stun.ok() ? "STUN message other than a Binding request" : stun.error().what);
    return;
  }
  std::string answer;
  nat::append_binding_success(answer, stun->transaction_id, flow.remote, stun->has_fingerprint);
  if (shared_.transport.send(flow, answer)) shared_.metrics.stun_answered().inc();
}

void EdgeProxy::on_flow_closed(const net::Flow& flow, bool connected) {
  shared_.aliases.forget_connection(flow.connection_id);
  if (keepalive_ && keepalive_->remove_endpoint(flow)) keepalive_changed(flow);
  auto it = connection_txns_.find(flow.connection_id);
  if (it == connection_txns_.end()) return;
  std::vector<TransactionId> txns = std::move(it->second);
  connection_txns_.erase(it);
  // A connection that dropped with requests on it: they failed (RFC 3261 §18.4); the
  // transactions answer 503 or fail over.
  for (TransactionId t : txns) table_.transport_error(t, now());
  shared_.log->debug("connection {} to {} closed (connected={}) with {} transactions", flow.connection_id,
                     flow.remote.to_string(), connected, txns.size());
  notify_deadline();
}

void EdgeProxy::advance() {
  TimePoint t = now();
  table_.advance(t);
  fire_timer_c(t);
  run_keepalive(t);
  notify_deadline();
}

std::optional<TimePoint> EdgeProxy::next_deadline() const {
  std::optional<TimePoint> d = table_.next_deadline();
  if (!timer_c_heap_.empty() && (!d || timer_c_heap_.front().first < *d)) d = timer_c_heap_.front().first;
  if (keepalive_) {
    if (auto k = keepalive_->next_deadline(); k && (!d || *k < *d)) d = k;
  }
  return d;
}

namespace {
constexpr auto kEarliestFirst = [](const auto& a, const auto& b) { return a.first > b.first; };
}  // namespace

void EdgeProxy::start_timer_c(TxnRecord& branch, uint64_t handle) {
  TimePoint deadline = now() + std::chrono::seconds(shared_.config.timer_c_seconds);
  branch.timer_c = deadline;
  branch.timer_c_running = true;
  timer_c_heap_.emplace_back(deadline, handle);
  std::push_heap(timer_c_heap_.begin(), timer_c_heap_.end(), kEarliestFirst);
}

void EdgeProxy::fire_timer_c(TimePoint t) {
  while (!timer_c_heap_.empty() && timer_c_heap_.front().first <= t) {
    auto [deadline, handle] = timer_c_heap_.front();
    std::pop_heap(timer_c_heap_.begin(), timer_c_heap_.end(), kEarliestFirst);
    timer_c_heap_.pop_back();
    TxnRecord* rec = record_at(handle);
    // Restarted, or its transaction ended (the record is freed, or reused under a new handle).
    if (rec == nullptr || !rec->timer_c_running || rec->timer_c != deadline) continue;
    rec->timer_c_running = false;
    if (rec->role != Role::kBranch) continue;
    Call& call = *rec->call;
    const size_t index = rec->branch;
    if (call.branches[index].done) continue;
    reject(Drop::kTimerC, call.source.remote, "INVITE branch without a final answer at Timer C: 408");
    cancel_branch(call, call.branches[index]);  // CANCEL now if it rang; else when (if) it does
    branch_final(call, call.branches[index], 408, {});
  }
}

void EdgeProxy::notify_deadline() {
  transactions_.store(table_.size(), std::memory_order_relaxed);
  calls_count_.store(live_calls_, std::memory_order_relaxed);
  if (deadline_listener_) deadline_listener_(next_deadline());
}

void EdgeProxy::handle_request(transport::Inbound& in) {
  const sip::Message& msg = *in.message;
  shared_.metrics.request_received(msg.method());
  static constexpr std::string_view kNoOptions[] = {""};
  sip::SanityPolicy policy{.forwarding = true, .proxy_options = std::span(kNoOptions, 0)};
  if (Status st = sip::check_request(msg, policy); !st.ok()) {
    reject(Drop::kInsane, in.flow.remote, st.error().what);
    if (msg.method() == sip::Method::kAck) return;  // never answered (§17.2.3)
    std::string extra;
    if (st.error().status == 420) {
      extra = "Unsupported: " + sip::unsupported_options(msg, sip::HeaderKind::kProxyRequire, {}) + "\r\n";
    }
    respond_stateless(msg, in.flow, st.error().status, extra);
    return;
  }
  if (auto top_via = msg.top_via();
      top_via.ok() && (*top_via)->alias && alias_allowed(shared_.config, in.flow.transport, in.flow.remote.address)) {
    shared_.aliases.record(**top_via, in.flow);
  }
  // Loop detection (§16.3 step 4): our own Via with the hash this request would get again.
  if (auto vias = msg.vias(); vias.ok()) {
    uint32_t hash = loop_hash(msg);
    for (const auto& v : *vias) {
      if (!shared_.identity.is_our_via(v)) continue;
      if (auto h = branch_loop_hash(v.branch); h && *h == hash) {
        reject(Drop::kLoop, in.flow.remote, "loop detected: 482");
        if (msg.method() != sip::Method::kAck) respond_stateless(msg, in.flow, 482);
        return;
      }
    }
  }
  // Responses go back to the source (RFC 3581) unless rport is neither asked nor forced: then
  // to the sent-by port at the source address (RFC 3261 §18.2.2).
  Destination reply;
  reply.flow = in.flow;
  reply.transport = in.flow.transport;
  reply.endpoint = in.flow.remote;
  auto top = msg.top_via();
  if (in.flow.transport == net::Transport::kUdp && top.ok()) {
    bool rport = (*top)->has_rport || shared_.config.force_rport == ForceRport::kAlways;
    if (!rport && shared_.config.force_rport == ForceRport::kNatDetected) {
      auto nat = nat::detect_nat(shared_.config.nat_tests, msg, in.flow.remote, in.flow.transport);
      rport = nat.ok() && !nat->empty();
    }
    if (!rport) {
      reply.flow->remote.port = (*top)->port != 0 ? (*top)->port : 5060;
      reply.endpoint = reply.flow->remote;
    }
  }
  uint64_t ctx = new_record(reply);
  current_flow_ = &in.flow;
  current_record_ = ctx;
  txn::Received r = table_.receive_request(std::move(in.message), reliability_of(in.flow.transport), ctx, now());
  current_flow_ = nullptr;
  current_record_ = 0;
  // A new transaction's record was bound in on_request (which a new server transaction always
  // gets), before anything could end the transaction.
  if (r.disposition == txn::Disposition::kNewTransaction) return;
  free_record(ctx);
  if (r.disposition == txn::Disposition::kNoMatch && r.message && r.message->method() == sip::Method::kAck) {
    forward_stateless(*r.message, in.flow);  // ACK for a 2xx: end to end (§16.11)
  }
}

void EdgeProxy::handle_response(transport::Inbound& in) {
  const sip::Message& msg = *in.message;
  if (!sip::check_response(msg).ok()) {
    reject(Drop::kBadResponse, in.flow.remote, "response failed its checks: dropped");
    return;
  }
  if (keepalive_sip_reply(in)) return;
  auto top = msg.top_via();
  if (top.ok()) {
    auto owner = branch_worker((*top)->branch);
    if (owner && *owner != worker_ && *owner < shared_.workers.size()) {
      // The kernel gave this response to our socket but another worker sent the request.
      auto moved = std::make_shared<transport::Inbound>(std::move(in));
      EdgeProxy* target = shared_.workers[*owner];
      shared_.transport.post(*owner, [target, moved] { target->on_message(std::move(*moved)); });
      return;
    }
  }
  shared_.metrics.response_received(msg.status());  // counted once, by the worker that owns it
  txn::Received r = table_.receive_response(std::move(in.message), now());
  if (r.disposition == txn::Disposition::kNoMatch && r.message) forward_stray_response(*r.message, in.flow.remote);
}

// ---------------------------------------------------------------- routing

void EdgeProxy::on_request(TransactionId txn, const sip::Message& request, TransactionId cancelled) {
  bind_record(txn, current_record_, Role::kServer);
  current_txn_ = txn;
  if (request.method() == sip::Method::kCancel) {
    handle_cancel(txn, cancelled);
  } else {
    route_new_request(txn, request);
  }
  current_txn_ = txn::kNoTransaction;
}

bool EdgeProxy::answer_options_to_us(TransactionId txn, const sip::Message& request) {
  if (request.method() != sip::Method::kOptions || has_to_tag(request)) return false;
  auto routes = request.routes();
  if (!routes.ok() || !routes->empty() || !shared_.identity.is_us(request.request_uri())) return false;
  // OPTIONS to the proxy itself (a keepalive or a capability probe): answered here.
  respond(txn, request, 200,
          "Allow: INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, REFER, "
          "INFO, UPDATE, PRACK, MESSAGE\r\nSupported: path, outbound\r\n");
  return true;
}

void EdgeProxy::route_new_request(TransactionId txn, const sip::Message& request) {
  const net::Flow source = *current_flow_;
  if (request.method() == sip::Method::kInvite) respond(txn, request, 100);  // §16.2: stop retransmissions
  if (answer_options_to_us(txn, request)) return;

  TxnRecord* server = record_at(current_record_);
  if (server == nullptr) return;  // cannot happen: on_request bound it
  server->owned = std::make_unique<Call>();
  server->call = server->owned.get();
  ++live_calls_;
  Call& c = *server->call;
  c.record = current_record_;
  c.server = txn;
  c.source = source;
  c.invite = request.method() == sip::Method::kInvite;
  c.from_client = !is_from_upstream(source.remote);
  if (refuse_bad_sdp(txn, request)) return;
  if (request.method() == sip::Method::kBye) media_bye(request);

  RouteAnalysis routes = analyse_routes(request, shared_.identity);
  if (shared_.registrar != nullptr && route_as_registrar(c, txn, request, routes)) return;
  std::optional<nat::DecodedFlow> decoded;
  if (!routes.token.empty()) {
    auto d = shared_.tokens.decode(routes.token);
    if (!d.ok()) {
      reject(Drop::kFlowTokenTampered, source.remote, d.error().what);
      respond(txn, request, 403);
      return;
    }
    if (d->key == nat::KeySlot::kPrevious) shared_.metrics.flow_token_previous_key().inc();
    decoded = *d;
  }

  if (c.from_client) {
    c.client_flow = source;
    c.has_client_flow = true;
    if (shared_.border != nullptr && request.method() == sip::Method::kRegister &&
        border_answer_register(c, txn, request)) {
      return;
    }
    c.targets = shared_.upstream();
    if (!c.targets || c.targets->empty() || !fork_to_upstream(c, request, 0)) {
      reject(Drop::kUpstreamUnavailable, source.remote, "no upstream target could be reached: 503");
      respond(txn, request, 503);
    }
    return;
  }
  // From upstream: the flow token names the client's flow.
  if (!decoded) {
    if (!fork_to_request_uri(c, request)) {
      reject(Drop::kNoRoute, source.remote, "request from upstream names no client: 480");
      respond(txn, request, 480);  // no client of ours can be named by this request
    }
    return;
  }
  net::Flow target = follow_rebinding(decoded->flow);
  if (!shared_.transport.flow_alive(target)) {
    reject(Drop::kFlowFailed, source.remote, "the client's flow is gone: 430");
    respond(txn, request, 430);  // RFC 5626 §5.3
    return;
  }
  c.client_flow = target;
  c.has_client_flow = true;
  // A binding that moved gets Record-Route tokens naming its new flow.
  std::string moved_token;
  if (!(target == decoded->flow)) {
    if (auto t = shared_.tokens.encode(target); t.ok()) moved_token = std::move(*t);
  }
  if (!fork_to_flow(c, request, target, moved_token.empty() ? routes.token : std::string_view(moved_token))) {
    reject(Drop::kFlowFailed, source.remote, "the client's flow is gone: 430");
    respond(txn, request, 430);
  }
}

const transport::LocalSocket* EdgeProxy::socket_for_upstream(const UpstreamTarget& t) const {
  return shared_.transport.socket_for(t.transport, t.endpoint.address.family());
}

bool EdgeProxy::fork_to_upstream(Call& call, const sip::Message& request, size_t index) {
  for (; call.targets && index < call.targets->size(); ++index) {
    const UpstreamTarget& t = (*call.targets)[index];
    const transport::LocalSocket* out = socket_for_upstream(t);
    if (out == nullptr) continue;
    Destination dest{.flow = std::nullopt, .transport = t.transport, .endpoint = t.endpoint, .server_name = t.host};
    std::string token;
    if (auto tok = shared_.tokens.encode(call.client_flow); tok.ok()) token = std::move(*tok);
    if (start_branch(call, request, dest, *out, token, true, index)) return true;
  }
  return false;
}

bool EdgeProxy::fork_to_flow(Call& call, const sip::Message& request, const net::Flow& flow, std::string_view token) {
  const auto& sockets = shared_.transport.local_sockets();
  if (flow.local_socket_id >= sockets.size()) return false;
  Destination dest{.flow = flow, .transport = flow.transport, .endpoint = flow.remote, .server_name = {}};
  return start_branch(call, request, dest, sockets[flow.local_socket_id], token, false, 0);
}

bool EdgeProxy::fork_to_request_uri(Call& call, const sip::Message& request) {
  const sip::Uri& ruri = request.request_uri();
  if (!ruri.is_sip() || shared_.identity.is_us(ruri)) return false;
  auto addr = net::Address::parse(canonical_host(ruri.host));
  if (!addr.ok()) return false;  // a name: not ours to resolve for a client
  net::Transport t = ruri.scheme == sip::UriScheme::kSips ? net::Transport::kTls : net::Transport::kUdp;
  if (!ruri.transport().empty()) {
    auto parsed = net::parse_transport(ruri.transport());
    if (!parsed) return false;
    t = *parsed;
  }
  net::Endpoint target{addr->unmapped(), ruri.port != 0 ? ruri.port : net::default_sip_port(t)};
  if (auto flow = shared_.aliases.find(t, target); flow && shared_.transport.flow_alive(*flow)) {
    call.client_flow = *flow;
    call.has_client_flow = true;
    auto token = shared_.tokens.encode(*flow);
    return fork_to_flow(call, request, *flow, token.ok() ? std::string_view(*token) : std::string_view{});
  }
  const transport::LocalSocket* out = shared_.transport.socket_for(t, target.address.family());
  if (out == nullptr) return false;
  Destination dest{.flow = std::nullopt, .transport = t, .endpoint = target, .server_name = {}};
  return start_branch(call, request, dest, *out, {}, false, 0);
}

bool EdgeProxy::start_branch(Call& call, const sip::Message& request, const Destination& dest,
                             const transport::LocalSocket& out, std::string_view rr_token, bool to_upstream,
                             size_t target_index, const Retarget* retarget) {
  if (call.branches.size() >= kMaxBranches) return false;
  Rewrite rw;
  auto top = request.top_via();
  if (call.from_client && top.ok()) {
    bool force = shared_.config.force_rport == ForceRport::kAlways;
    if (shared_.config.force_rport == ForceRport::kNatDetected) {
      auto nat = nat::detect_nat(shared_.config.nat_tests, request, call.source.remote, call.source.transport);
      force = nat.ok() && !nat->empty();
    }
    rw.via_fix = via_fix_for(**top, call.source.remote, force);
  }
  RouteAnalysis routes = analyse_routes(request, shared_.identity);
  rw.pop_routes = routes.our_routes;
  rw.strict_route = routes.strict_router;
  rw.consume_credentials = call.authenticated;
  if (retarget != nullptr) {
    rw.request_uri = retarget->request_uri;
    rw.routes = retarget->routes;
  }
  std::string branch = make_branch(static_cast<uint8_t>(worker_), loop_hash(request), next_branch_++);
  // A UDP request sent by address goes out of this worker's own socket, and its Via names that
  // port, so the responses come straight back to this worker (no post from another one).
  // Not when the listener advertises another port than it binds (a port-forwarding NAT in front):
  // only the listener's port is forwarded there, so the responses must come to it.
  uint16_t via_port = 0;
  if (!dest.flow && dest.transport == net::Transport::kUdp && out.advertised_port == out.bound.port) {
    via_port = shared_.transport.udp_client_port(worker_, out.id);
  }
  rw.via = via_value(out, branch, via_port);
  const auto& sockets = shared_.transport.local_sockets();
  const transport::LocalSocket* in =
      call.source.local_socket_id < sockets.size() ? &sockets[call.source.local_socket_id] : &out;
  if (dialog_forming(request.method()) && !has_to_tag(request)) {
    // Double Record-Route when the two sides are different sockets (transport or interface):
    // each side must see an address it can reach (RFC 5658).
    rw.record_routes.push_back(proxy_uri(out, rr_token, false));
    if (in->id != out.id) rw.record_routes.push_back(proxy_uri(*in, rr_token, false));
  }
  if (request.method() == sip::Method::kRegister && call.from_client) {
    rw.register_expires = call.border_upstream_expires;
    // RFC 3327 + RFC 5626 §5.1: the registrar routes requests for this binding back through us,
    // naming the flow; ;ob when the client asked for outbound (reg-id in its Contact).
    bool outbound = false;
    if (auto contacts = request.contacts(); contacts.ok()) {
      for (const auto& ct : *contacts) outbound = outbound || !ct.reg_id.empty();
    }
    rw.path = proxy_uri(out, rr_token, outbound);
  }
  call.branches.push_back(Branch{.forwarded = apply_rewrite(request, rw),
                                 .target_index = target_index,
                                 .to_upstream = to_upstream,
                                 .client_flow = std::nullopt,
                                 .context = new_record(dest),
                                 .relay_branch = branch,
                                 .via_branch = branch});
  Branch& started = call.branches.back();
  if (dest.flow && !to_upstream && (retarget == nullptr || retarget->routes.empty())) started.client_flow = dest.flow;
  if (media_offer(call, call.branches.size() - 1, request, dest)) {
    keepalive_branch_started(call, request, call.branches.back());
    return true;  // goes out when the relay has rewritten its SDP
  }
  if (!launch_branch(call, started)) {
    free_record(started.context);
    call.branches.pop_back();
    return false;
  }
  keepalive_branch_started(call, request, call.branches.back());
  return true;
}

bool EdgeProxy::launch_branch(Call& call, Branch& branch) {
  TxnRecord* rec = record_at(branch.context);
  if (rec == nullptr) return false;
  // The table takes the bytes unparsed (it parses them only if it needs to: the ACK for a
  // non-2xx, a CANCEL built from the INVITE). Our rewrite keeps the request line as received,
  // so its first token is the method, which sanity checks made the CSeq's too.
  const std::string method = branch.forwarded.substr(0, branch.forwarded.find(' '));  // short: no allocation
  auto id = table_.send_request(std::move(branch.forwarded), method, branch.via_branch,
                                reliability_of(rec->dest.transport), branch.context, now());
  if (!id.ok()) {
    shared_.log->error("client transaction refused: {}", id.error().what);
    return false;
  }
  bind_record(*id, branch.context, Role::kBranch);
  rec->call = &call;
  rec->branch = static_cast<uint32_t>(&branch - call.branches.data()) & kMaxBranches;  // below it: start_branch
  ++call.live_branches;
  branch.txn = *id;
  // The transaction holds the request now (and frees it at the final response); the call,
  // which lives 32 s longer, would hold a second copy for nothing.
  std::string().swap(branch.forwarded);
  std::string().swap(branch.via_branch);
  if (call.invite) start_timer_c(*rec, branch.context);
  return true;
}

void EdgeProxy::forward_stateless(const sip::Message& request, const net::Flow& source, bool media_checked) {
  // ACK for a 2xx (§16.11): the same routing as any request, without a transaction.
  if (!media_checked && media_ack(request, source)) return;  // forwarded once the relay answered
  RouteAnalysis routes = analyse_routes(request, shared_.identity);
  Rewrite rw;
  rw.pop_routes = routes.our_routes;
  rw.strict_route = routes.strict_router;
  auto top = request.top_via();
  if (!top.ok()) return;
  std::string branch = stateless_branch(static_cast<uint8_t>(worker_), (*top)->branch);
  if (shared_.registrar != nullptr && forward_stateless_registrar(request, source, routes, rw, branch)) return;
  if (!is_from_upstream(source.remote)) {
    rw.via_fix = via_fix_for(**top, source.remote, shared_.config.force_rport == ForceRport::kAlways);
    auto targets = shared_.upstream();
    if (!targets || targets->empty()) {
      reject(Drop::kNoRoute, source.remote, "ACK with nowhere to go (no route set, no upstream): dropped");
      return;
    }
    const UpstreamTarget& t = targets->front();
    const transport::LocalSocket* out = socket_for_upstream(t);
    if (out == nullptr) return;
    rw.via = via_value(*out, branch);
    (void)shared_.transport.send_to(worker_, t.transport, t.endpoint, apply_rewrite(request, rw), t.host);
    return;
  }
  if (routes.token.empty()) return;
  auto d = shared_.tokens.decode(routes.token);
  if (!d.ok()) {
    reject(Drop::kFlowTokenTampered, source.remote, d.error().what);
    return;
  }
  const auto& sockets = shared_.transport.local_sockets();
  net::Flow target = follow_rebinding(d->flow);
  if (target.local_socket_id >= sockets.size()) return;
  rw.via = via_value(sockets[target.local_socket_id], branch);
  if (!shared_.transport.send(target, apply_rewrite(request, rw))) {
    reject(Drop::kFlowFailed, source.remote, "the client's flow is gone: ACK dropped");
  }
}

void EdgeProxy::forward_stray_response(const sip::Message& response, const net::Endpoint& from) {
  // §16.7 / §18.2.2: a response matching no transaction (a retransmitted 2xx after ours ended)
  // is forwarded by its Vias when the top one is ours.
  auto vias = response.vias();
  if (!vias.ok() || vias->size() < 2 || !shared_.identity.is_our_via((*vias)[0]) || !branch_worker((*vias)[0].branch)) {
    reject(Drop::kStrayResponse, from, "response for no transaction, not ours to forward");
    return;
  }
  const sip::Via& next = (*vias)[1];
  std::string_view host = next.has_received ? next.received : next.host;
  auto addr = net::Address::parse(canonical_host(host));
  if (!addr.ok()) {
    reject(Drop::kStrayResponse, from, "response for no transaction, not ours to forward");
    return;
  }
  uint16_t port = next.port != 0 ? next.port : 5060;
  if (!next.rport_value.empty()) {
    auto [p, ec] = std::from_chars(next.rport_value.data(), next.rport_value.data() + next.rport_value.size(), port);
    (void)p;
    (void)ec;
  }
  auto transport = net::parse_transport(next.transport).value_or(net::Transport::kUdp);
  (void)shared_.transport.send_to(worker_, transport, net::Endpoint{*addr, port}, strip_top_via(response));
}

// ---------------------------------------------------------------- CANCEL

void EdgeProxy::handle_cancel(TransactionId txn, TransactionId invite) {
  const sip::Message* cancel = table_.request(txn);
  if (cancel == nullptr) return;
  if (invite == txn::kNoTransaction) {
    respond(txn, *cancel, 481);  // §9.2
    return;
  }
  respond(txn, *cancel, 200);
  Call* found = call_of(invite);
  if (found == nullptr) return;
  Call& call = *found;
  call.cancelled = true;
  cancel_others(call, nullptr);
  if (call.branches.empty() && !call.final_sent) {
    if (const sip::Message* inv = table_.request(invite)) respond(invite, *inv, 487);
    call.final_sent = true;
  }
}

void EdgeProxy::cancel_others(Call& call, const Branch* except) {
  for (auto& b : call.branches) {
    if (&b == except || b.done) continue;
    cancel_branch(call, b);
  }
}

void EdgeProxy::cancel_branch(Call& call, Branch& branch) {
  if (!call.invite || branch.done) return;
  if (!branch.provisional) {
    branch.cancel_pending = true;  // §9.1: CANCEL only once a provisional response arrived
    return;
  }
  branch.cancel_pending = false;
  // The INVITE as sent, which its client transaction keeps until a final response (after which
  // the branch is done), parsed from our bytes only now: most branches are never cancelled.
  const sip::Message* sent = branch.txn != txn::kNoTransaction ? table_.request(branch.txn) : nullptr;
  if (sent == nullptr) return;
  const sip::Message& inv = *sent;
  auto top = inv.top_via();
  auto cseq = inv.cseq();
  const auto* from = inv.header(sip::HeaderKind::kFrom);
  const auto* to = inv.header(sip::HeaderKind::kTo);
  auto call_id = inv.call_id();
  if (!top.ok() || !cseq.ok() || from == nullptr || to == nullptr || !call_id.ok()) return;
  // §9.1: same Request-URI, Call-ID, To, From, CSeq number and top Via (branch) as the INVITE;
  // the same Route set.
  sip::RequestBuilder b("CANCEL", inv.request_uri().raw);
  b.header("Via", (*top)->raw);
  for (const auto& h : inv.headers()) {
    if (h.kind == sip::HeaderKind::kRoute) b.header("Route", h.value);
  }
  b.header("From", from->value).header("To", to->value).header("Call-ID", *call_id);
  b.header("CSeq", std::to_string(cseq->number) + " CANCEL").header("Max-Forwards", "70");
  // The branch's record lives as long as its transaction (and it has none before it was sent).
  const TxnRecord* invite = record_at(branch.context);
  if (invite == nullptr || invite->role != Role::kBranch) return;
  uint64_t ctx = new_record(invite->dest);
  // Handed over unparsed: its key is the INVITE's branch with method CANCEL.
  auto id =
      table_.send_request(b.build(), "CANCEL", (*top)->branch, reliability_of(invite->dest.transport), ctx, now());
  if (!id.ok()) {
    free_record(ctx);
    return;
  }
  bind_record(*id, ctx, Role::kOther);  // the CANCEL's own responses are absorbed in on_response
  shared_.metrics.cancels().inc();
}

// ---------------------------------------------------------------- responses

void EdgeProxy::on_ack(TransactionId /*txn*/, sip::MessagePtr& ack) {
  if (ack && current_flow_) forward_stateless(*ack, *current_flow_);
}

void EdgeProxy::on_response(TransactionId txn, sip::MessagePtr& response) {
  auto it = txn_records_.find(txn);
  if (it == txn_records_.end()) return;
  TxnRecord& rec = record(it->second);
  if (rec.role != Role::kBranch) return;  // a CANCEL's response: nothing to pass on
  Call& call = *rec.call;
  const size_t branch_index = rec.branch;
  uint16_t status = response->status();
  if (status == 100) return;  // hop by hop (§16.7 step 5)
  if (status < 200) {
    call.branches[branch_index].provisional = true;
    if (rec.timer_c_running) start_timer_c(rec, handle_of(it->second, rec.generation));
    if (call.branches[branch_index].cancel_pending) cancel_branch(call, call.branches[branch_index]);
    if (!call.final_sent) pass_response(call, branch_index, status, strip_top_via(*response), *response);
    return;
  }
  if (status < 300) {
    // Forward every 2xx at once (§16.7 step 5), and keep the client's flow open for what the
    // 2xx established: the registration's granted expires, or the dialog.
    if (call.has_client_flow && call.client_flow.transport != net::Transport::kUdp) {
      auto cseq = response->cseq();
      bool reg = cseq.ok() && cseq->method == sip::Method::kRegister;
      keep_flow(call.client_flow,
                reg ? granted_expires(*response, std::chrono::seconds(shared_.config.default_registration_seconds))
                    : std::chrono::seconds(shared_.config.dialog_flow_seconds));
    }
    call.branches[branch_index].done = true;
    keepalive_final(call, &call.branches[branch_index], status, response.get());
    if (call.server != txn::kNoTransaction) {
      bool border_register = false;
      if (shared_.border != nullptr && call.from_client) {
        auto cseq = response->cseq();
        border_register = cseq.ok() && cseq->method == sip::Method::kRegister;
      }
      pass_response(call, branch_index, status,
                    border_register ? border_learn(call, *response) : strip_top_via(*response), *response);
    }
    call.final_sent = true;
    cancel_others(call, &call.branches[branch_index]);
    return;
  }
  branch_final(call, call.branches[branch_index], status, strip_top_via(*response));
}

void EdgeProxy::on_failure(TransactionId txn, txn::Failure failure) {
  TxnRecord* rec = record_of(txn);
  if (rec == nullptr || rec->role != Role::kBranch) return;
  Call& call = *rec->call;
  Branch& b = call.branches[rec->branch];
  if (b.txn == txn && !b.done) branch_final(call, b, failure.status, {});
}

void EdgeProxy::branch_final(Call& call, Branch& branch, uint16_t status, std::string response_bytes) {
  branch.done = true;
  keepalive_final(call, &branch, status, nullptr);
  media_branch_failed(call, branch);
  // RFC 3263 §4.3: on 503 or no answer, try the next upstream target. A target that sent a
  // provisional answered: its later 408 (Timer C) is the callee's, not a dead server.
  // A branch that never went out (its media relay failed) is no sign of a dead server.
  if (branch.to_upstream && branch.txn != txn::kNoTransaction && !branch.provisional &&
      (status == 503 || status == 408) && !call.cancelled && !call.final_sent && call.server != txn::kNoTransaction) {
    size_t next = branch.target_index + 1;
    if (const sip::Message* request = table_.request(call.server);
        request && call.targets && next < call.targets->size()) {
      shared_.metrics.failovers().inc();
      if (fork_to_upstream(call, *request, next)) return;
    }
  }
  if (call.best_status == 0 || response_rank(status) < response_rank(call.best_status)) {
    call.best_status = status;
    call.best_response = std::move(response_bytes);
  }
  if (status >= 600) cancel_others(call, &branch);  // §16.7 step 5
  maybe_finish(call);
}

void EdgeProxy::maybe_finish(Call& call) {
  if (call.final_sent || call.server == txn::kNoTransaction) return;
  bool pending = std::any_of(call.branches.begin(), call.branches.end(), [](const Branch& b) { return !b.done; });
  if (pending) return;
  call.final_sent = true;
  uint16_t status = call.best_status;
  keepalive_final(call, nullptr, status == 0 ? 500 : status, nullptr);
  const sip::Message* request = table_.request(call.server);
  // §16.7 step 6: a 503 received from the next hop is not passed on (it would make the client
  // think *we* are unavailable); we answer 500. A 503 we generate ourselves (nothing upstream
  // could be reached) is sent as is.
  bool received = !call.best_response.empty();
  if (received && status != 503) {
    shared_.metrics.response_sent(status);
    (void)table_.respond(call.server, status, std::move(call.best_response), now());
  } else if (request != nullptr) {
    respond(call.server, *request, received || status == 0 ? 500 : status);
  }
}

void EdgeProxy::on_terminated(TransactionId txn) {
  auto it = txn_records_.find(txn);
  if (it == txn_records_.end()) return;
  const uint32_t slot = it->second;
  txn_records_.erase(it);
  TxnRecord& rec = record(slot);
  if (rec.in_connection && rec.dest.flow) {
    if (auto ct = connection_txns_.find(rec.dest.flow->connection_id); ct != connection_txns_.end()) {
      std::erase(ct->second, txn);
      if (ct->second.empty()) connection_txns_.erase(ct);
    }
  }
  rec.timer_c_running = false;
  // A call lives while its server transaction or any of its branches does: a 2xx can still
  // come for an INVITE branch after the server transaction has ended.
  Call* call = rec.call;
  switch (rec.role) {
    case Role::kBranch:
      free_record(handle_of(slot, rec.generation));
      --call->live_branches;
      break;
    case Role::kServer:
      if (call == nullptr) {
        free_record(handle_of(slot, rec.generation));
        return;
      }
      call->server = txn::kNoTransaction;
      break;
    case Role::kPending:  // not bound: cannot be in txn_records_
    case Role::kOther:
      free_record(handle_of(slot, rec.generation));
      return;
  }
  if (call->server == txn::kNoTransaction && call->live_branches == 0) end_call(*call);
}

void EdgeProxy::end_call(Call& call) {
  for (const Branch& b : call.branches) {
    if (record_at(b.context) != nullptr) free_record(b.context);  // never got a transaction
  }
  --live_calls_;
  free_record(call.record);  // deletes `call`
}

EdgeProxy::TxnRecord* EdgeProxy::record_at(uint64_t handle) {
  const auto slot = static_cast<uint32_t>(handle);
  if (slot >= records_made_) return nullptr;
  TxnRecord& rec = record(slot);
  return rec.generation == static_cast<uint32_t>(handle >> 32) ? &rec : nullptr;
}

EdgeProxy::TxnRecord* EdgeProxy::record_of(TransactionId txn) {
  auto it = txn_records_.find(txn);
  return it == txn_records_.end() ? nullptr : &record(it->second);
}

const EdgeProxy::TxnRecord* EdgeProxy::record_of(TransactionId txn) const {
  auto it = txn_records_.find(txn);
  return it == txn_records_.end() ? nullptr : &record(it->second);
}

uint64_t EdgeProxy::new_record(const Destination& dest) {
  uint32_t slot = 0;
  if (!free_records_.empty()) {
    slot = free_records_.back();
    free_records_.pop_back();
  } else {
    slot = records_made_++;
    if (slot % kRecordChunk == 0) record_chunks_.push_back(std::make_unique<TxnRecord[]>(kRecordChunk));
  }
  TxnRecord& rec = record(slot);
  rec.dest = dest;
  return handle_of(slot, rec.generation);
}

void EdgeProxy::free_record(uint64_t handle) {
  TxnRecord* found = record_at(handle);
  if (found == nullptr) return;  // freed already: its slot may be another record's now
  TxnRecord& rec = *found;
  const auto slot = static_cast<uint32_t>(handle);
  uint32_t generation = rec.generation + 1;
  if (generation == 0) generation = 1;  // 0 would make handle 0 ("no record") valid
  rec = TxnRecord{};                    // a server's call dies with it
  rec.generation = generation;
  free_records_.push_back(slot);
}

void EdgeProxy::bind_record(TransactionId txn, uint64_t handle, Role role) {
  TxnRecord* rec = record_at(handle);
  if (rec == nullptr) return;
  rec->role = role;
  txn_records_.emplace(txn, static_cast<uint32_t>(handle));
}

EdgeProxy::Call* EdgeProxy::call_of(TransactionId server) {
  TxnRecord* rec = record_of(server);
  return rec != nullptr && rec->role == Role::kServer ? rec->call : nullptr;
}

EdgeProxy::Call* EdgeProxy::call_at(uint64_t handle) {
  TxnRecord* rec = record_at(handle);
  return rec != nullptr && rec->role == Role::kServer ? rec->call : nullptr;
}

void EdgeProxy::pass_response(Call& call, size_t branch_index, uint16_t status, std::string bytes,
                              const sip::Message& response) {
  if (media_response(call, branch_index, status, bytes, response)) return;  // sent once the relay answered
  send_upstream_response(call, status, std::move(bytes));
}

void EdgeProxy::send_upstream_response(Call& call, uint16_t status, std::string bytes) {
  // A provisional that lost the race with a final answer is not passed on (§16.7 step 5).
  if (call.server == txn::kNoTransaction || (status < 200 && call.final_sent)) return;
  shared_.metrics.response_sent(status);
  (void)table_.respond(call.server, status, std::move(bytes), now());
}

// ---------------------------------------------------------------- sending

bool EdgeProxy::send(TransactionId txn, uint64_t context, std::string_view bytes) {
  TxnRecord* rec = record_at(context);
  if (rec == nullptr) return false;
  Destination& d = rec->dest;
  if (d.flow) return shared_.transport.send(*d.flow, bytes);
  auto flow = shared_.transport.send_to(worker_, d.transport, d.endpoint, bytes, d.server_name);
  if (!flow.ok()) return false;
  if (flow->connection_id != 0) {
    d.flow = *flow;  // retransmissions and the CANCEL reuse the connection
    connection_txns_[flow->connection_id].push_back(txn);
    rec->in_connection = true;
  }
  return true;
}

void EdgeProxy::reject(Drop d, const net::Endpoint& peer, std::string_view why) {
  shared_.metrics.drop(d);
  reject_log_.warn(now(), drop_name(d), "{} from {}: {}", drop_name(d), peer.to_string(), why);
}

void EdgeProxy::keep_flow(const net::Flow& flow, std::chrono::seconds how_long) {
  shared_.transport.keep_flow_until(flow, MonoClock::now() + how_long);
}

bool EdgeProxy::is_from_upstream(const net::Endpoint& source) const {
  // A configured trusted source is upstream whatever its port. A resolved target must match by
  // address and port: on one host (or behind one NAT) clients and the core can share an address.
  const net::Address a = source.address.unmapped();
  for (const auto& t : shared_.config.upstream.trusted_sources) {
    if (t.unmapped() == a) return true;
  }
  auto targets = shared_.upstream();
  if (!targets) return false;
  return std::any_of(targets->begin(), targets->end(), [&](const UpstreamTarget& t) {
    return t.endpoint.address.unmapped() == a && t.endpoint.port == source.port;
  });
}

std::string EdgeProxy::build_response(const sip::Message& request, const net::Endpoint& source, uint16_t status,
                                      std::string_view extra_headers, std::string_view reason) {
  sip::ResponseBuilder b(request, status, reason);
  b.via_received(source.address.to_string(), source.port);
  if (status > 100) b.to_tag("ph" + std::to_string(worker_) + "x" + std::to_string(next_tag_++));
  b.header("Server", shared_.config.server_name);
  std::string out = b.build();
  if (!extra_headers.empty()) {
    // Extra fields go just before the blank line that ends the header section.
    size_t end = out.find("\r\n\r\n");
    if (end != std::string::npos) out.insert(end + 2, extra_headers);
  }
  return out;
}

void EdgeProxy::respond(TransactionId server, const sip::Message& request, uint16_t status,
                        std::string_view extra_headers, std::string_view reason) {
  net::Endpoint source;
  // The request being handled (a 100, a local answer) is the current record: no lookup.
  const TxnRecord* rec = nullptr;
  if (const TxnRecord* current = record_at(current_record_); current != nullptr && server == current_txn_) {
    rec = current;
  } else {
    rec = record_of(server);
  }
  if (rec != nullptr && rec->role == Role::kServer && rec->call != nullptr) {
    source = rec->call->source.remote;
  } else if (current_flow_) {
    source = current_flow_->remote;
  }
  shared_.metrics.response_sent(status);
  (void)table_.respond(server, status, build_response(request, source, status, extra_headers, reason), now());
}

void EdgeProxy::respond_stateless(const sip::Message& request, const net::Flow& flow, uint16_t status,
                                  std::string_view extra_headers) {
  shared_.metrics.response_sent(status);
  shared_.transport.send(flow, build_response(request, flow.remote, status, extra_headers));
}

}  // namespace pinhole::proxy
