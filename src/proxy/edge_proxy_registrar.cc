// Registrar mode of the edge proxy (docs/config.md `registrar:`): REGISTER for our domains is
// answered here, requests for our users fork in parallel to their bindings over the flows the
// bindings came on, users authenticate with digest, and nobody relays through us to a foreign
// domain without being one of our users.
//
// Dialogs between two of our NATed users: each leg is a flow only this edge can reach, so the
// Record-Route we add names both — the user part is "<caller token>-<callee token>" — and an
// in-dialog request goes out on whichever of the two it did not arrive on (RFC 5626 §5.3 with two
// flows instead of one). Tokens are base32 (a-z, 2-7), so '-' cannot occur inside one.
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/edge_proxy.h"
#include "proxy/request_rewrite.h"
#include "registrar/aor.h"
#include "sip/method.h"

namespace pinhole::proxy {

using txn::TransactionId;

namespace {

constexpr char kTokenSeparator = '-';

bool same_peer(const net::Flow& a, const net::Flow& b) {
  return a.transport == b.transport && a.local_socket_id == b.local_socket_id && a.remote == b.remote &&
         a.connection_id == b.connection_id;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

}  // namespace

bool EdgeProxy::is_registrar_domain(const sip::Uri& uri) const {
  if (shared_.registrar == nullptr || !uri.is_sip()) return false;
  std::string host = lower(canonical_host(uri.host));
  const auto& domains = shared_.registrar->config.domains;
  return std::find(domains.begin(), domains.end(), host) != domains.end();
}

Result<EdgeProxy::TokenFlows> EdgeProxy::decode_route_token(std::string_view token) const {
  TokenFlows out;
  size_t dash = token.find(kTokenSeparator);
  auto first = shared_.tokens.decode(token.substr(0, dash));
  if (!first.ok()) return first.error();
  if (first->key == nat::KeySlot::kPrevious) shared_.metrics.flow_token_previous_key().inc();
  out.first = first->flow;
  if (dash != std::string_view::npos) {
    auto second = shared_.tokens.decode(token.substr(dash + 1));
    if (!second.ok()) return second.error();
    if (second->key == nat::KeySlot::kPrevious) shared_.metrics.flow_token_previous_key().inc();
    out.second = second->flow;
  }
  return out;
}

std::optional<net::Flow> EdgeProxy::token_target(const TokenFlows& flows, const net::Flow& source) {
  if (!flows.second) {
    // One flow: requests from anyone else go to it; from that flow itself the token is just the
    // client's own route set through us, and normal routing applies.
    if (same_peer(source, flows.first)) return std::nullopt;
    return flows.first;
  }
  if (same_peer(source, flows.first)) return flows.second;
  if (same_peer(source, *flows.second)) return flows.first;
  // Neither leg matches exactly (a NAT rebound the sender's port mid-dialog): go by address.
  if (source.remote.address == flows.first.remote.address) return flows.second;
  return flows.first;
}

bool EdgeProxy::route_as_registrar(Call& call, TransactionId txn, const sip::Message& request,
                                   const RouteAnalysis& routes) {
  RegistrarServices& reg = *shared_.registrar;
  const net::Flow& source = call.source;

  // 1. A route set through us naming a flow: in-dialog requests and requests sent along a Path.
  if (!routes.token.empty()) {
    auto flows = decode_route_token(routes.token);
    if (!flows.ok()) {
      reject(Drop::kFlowTokenTampered, source.remote, flows.error().what);
      respond(txn, request, 403);
      return true;
    }
    if (auto target = token_target(*flows, source)) {
      if (!shared_.transport.flow_alive(*target)) {
        reject(Drop::kFlowFailed, source.remote, "the flow the route names is gone: 430");
        respond(txn, request, 430);  // RFC 5626 §5.3
        return true;
      }
      call.client_flow = *target;
      call.has_client_flow = true;
      if (!fork_to_flow(call, request, *target, routes.token)) {
        reject(Drop::kFlowFailed, source.remote, "the flow the route names is gone: 430");
        respond(txn, request, 430);
      }
      return true;
    }
  }
  // 2. A route set that goes on past us (after our own entries were popped): to its next hop
  // (§16.6 steps 6-7) when that is an address; a name is the core's to resolve (edge logic).
  if (auto all = request.routes(); all.ok() && all->size() > routes.our_routes) {
    auto hop = route_destination((*all)[routes.our_routes].raw);
    if (!hop) return false;
    const transport::LocalSocket* out = shared_.transport.socket_for(hop->transport, hop->endpoint.address.family());
    std::string token;
    if (call.from_client) {
      if (auto t = shared_.tokens.encode(source); t.ok()) token = std::move(*t);
    }
    if (out == nullptr || !start_branch(call, request, *hop, *out, token, false, 0)) {
      reject(Drop::kNoRoute, source.remote, "the next hop of the route set cannot be reached: 503");
      respond(txn, request, 503);
    }
    return true;
  }
  bool in_dialog = has_to_tag(request);
  const sip::Uri& ruri = request.request_uri();

  // 3. REGISTER: ours to answer when it names one of our domains.
  if (request.method() == sip::Method::kRegister) {
    if (is_registrar_domain(ruri)) {
      register_here(txn, request, source);
      return true;
    }
    if (call.from_client && !shared_.config.upstream.uri.empty()) return false;  // the core's registrar
    reg.metrics.forbidden_relay.inc();
    reject(Drop::kForbidden, source.remote, "REGISTER for a domain we do not serve: 403");
    respond(txn, request, 403);
    return true;
  }
  if (in_dialog) return false;  // no route set and not ours: the edge's Request-URI logic

  // 4. Out-of-dialog requests: who is asking, and may they go where they ask?
  bool local_target = is_registrar_domain(ruri);
  if (call.from_client) {
    auto from = request.from();
    bool from_ours = from.ok() && is_registrar_domain((*from)->uri);
    if (from_ours && reg.auth != nullptr && reg.auth_requests && request.method() != sip::Method::kAck) {
      std::string user;
      if (!authenticate(txn, request, registrar::ChallengeKind::kProxy, canonical_host((*from)->uri.host), user))
        return true;  // answered: 407 or 403
      call.authenticated = true;
      if (user != (*from)->uri.user) {
        reg.metrics.identity_mismatch.inc();
        reject(Drop::kForbidden, source.remote, "authenticated user differs from the From user: 403");
        respond(txn, request, 403);
        return true;
      }
    }
    if (!local_target && !from_ours) {
      // No open relay: someone who is not our user asks us to reach another domain.
      reg.metrics.forbidden_relay.inc();
      reject(Drop::kForbidden, source.remote, "foreign target from a source that is not our user: 403");
      respond(txn, request, 403);
      return true;
    }
  }
  if (local_target) {
    fork_to_bindings(call, txn, request);
    return true;
  }
  if (shared_.config.upstream.uri.empty()) {
    // One of our users calls another domain and there is no core to hand it to.
    reject(Drop::kNoRoute, source.remote, "target outside our domains and no upstream configured: 404");
    respond(txn, request, 404);
    return true;
  }
  return false;  // to the core
}

bool EdgeProxy::authenticate(TransactionId txn, const sip::Message& request, registrar::ChallengeKind kind,
                             std::string_view realm, std::string& user) {
  RegistrarServices& reg = *shared_.registrar;
  auto result = reg.auth->verify(request, kind, realm);
  switch (result.verdict) {
    case registrar::AuthVerdict::kOk:
      user = std::move(result.username);
      return true;
    case registrar::AuthVerdict::kStale:
      reg.metrics.stale_nonces.inc();
      challenge(txn, request, kind, realm, true);
      return false;
    case registrar::AuthVerdict::kChallenge:
      if (result.why != registrar::auth_why::kNoCredentials) {
        // Credentials were given and failed (wrong answer, unknown user, replay): counted and
        // logged; a request with none is just the first step of every login.
        reg.metrics.auth_failures.inc();
        reject(Drop::kAuthFailed, call_source_or_current(txn), result.why);
      } else {
        reg.metrics.challenges.inc();
      }
      challenge(txn, request, kind, realm, false);
      return false;
    case registrar::AuthVerdict::kForbidden:
      reg.metrics.auth_failures.inc();
      reject(Drop::kAuthFailed, call_source_or_current(txn), result.why);
      respond(txn, request, 403);
      return false;
    case registrar::AuthVerdict::kBadRequest:
      reg.metrics.auth_failures.inc();
      reject(Drop::kAuthFailed, call_source_or_current(txn), result.why);
      respond(txn, request, 400);
      return false;
  }
  return false;
}

void EdgeProxy::challenge(TransactionId txn, const sip::Message& request, registrar::ChallengeKind kind,
                          std::string_view realm, bool stale) {
  auto headers = shared_.registrar->auth->challenge_headers(kind, realm, stale);
  if (!headers.ok()) {
    respond(txn, request, 500);  // OpenSSL failed to make a nonce
    return;
  }
  respond(txn, request, registrar::challenge_status(kind), *headers);
}

net::Endpoint EdgeProxy::call_source_or_current(TransactionId txn) const {
  if (const TxnRecord* rec = record_of(txn); rec != nullptr && rec->role == Role::kServer && rec->call != nullptr) {
    return rec->call->source.remote;
  }
  return current_flow_ != nullptr ? current_flow_->remote : net::Endpoint{};
}

void EdgeProxy::register_here(TransactionId txn, const sip::Message& request, const net::Flow& source) {
  RegistrarServices& reg = *shared_.registrar;
  auto to = request.to();
  if (!to.ok()) {
    respond(txn, request, 400);
    return;
  }
  std::string realm = canonical_host((*to)->uri.host);
  if (reg.auth != nullptr && reg.auth_register) {
    std::string user;
    if (!authenticate(txn, request, registrar::ChallengeKind::kWww, realm, user)) return;
    if (user != (*to)->uri.user) {
      // RFC 3261 §10.3 step 3: is this user allowed to change this AOR's bindings? Only its own.
      reg.metrics.identity_mismatch.inc();
      reject(Drop::kForbidden, source.remote, "authenticated user registers another user's AOR: 403");
      respond(txn, request, 403);
      return;
    }
  }
  registrar::RegisterContext ctx;
  ctx.flow = source;
  if (auto nat = nat::detect_nat(shared_.config.nat_tests, request, source.remote, source.transport); nat.ok()) {
    ctx.nat = nat::format_nat_tests(*nat);
  }
  ctx.node = reg.node_id;
  ctx.now = reg.wall_seconds();
  ctx.first_hop = true;
  if (auto paths = request.paths(); paths.ok() && !paths->empty()) {
    // Another proxy sits between the UA and us: outbound needs the first hop (the bottom Path
    // value: each proxy adds its own on top) to support it too (;ob, RFC 5626 §6).
    ctx.first_hop = paths->back().uri.has_param("ob");
  }
  registrar::RegisterOutcome outcome = reg.handler.handle(request, ctx);
  keepalive_registered(request, source, outcome, ctx.now, !ctx.nat.empty());
  if (outcome.status >= 200 && outcome.status < 300) {
    reg.metrics.registers_ok.inc();
  } else {
    reg.metrics.registers_failed.inc();
  }
  int64_t longest = 0;
  for (auto& b : outcome.saved) {
    if (reg.cluster) {
      // Other nodes reach this binding through us: they send along this Path, we own the flow.
      auto token = shared_.tokens.encode(source);
      const auto& sockets = shared_.transport.local_sockets();
      if (token.ok() && source.local_socket_id < sockets.size() && b.path.empty()) {
        b.path.push_back(proxy_uri(sockets[source.local_socket_id], *token, !b.instance.empty()));
      }
    }
    longest = std::max(longest, b.expires_at - ctx.now);
    reg.store.save_binding(b);
  }
  for (const auto& [aor, id] : outcome.removed) reg.store.remove_binding(aor, id);
  if (longest > 0) keep_flow(source, std::chrono::seconds(longest));
  if (!reg.cluster || outcome.status >= 300 || outcome.aor.empty()) {
    respond(txn, request, outcome.status, outcome.headers, outcome.reason);
    return;
  }
  // A cluster: the 200 lists every binding of the AOR (RFC 3261 §10.3 step 8), those other nodes
  // hold too, which only the shared store knows. Read off this thread; answered when it returns.
  load_aor_here(outcome.aor, [this, txn, status = outcome.status, headers = std::move(outcome.headers),
                              reason = outcome.reason](Result<std::vector<store::BindingRecord>> found) {
    answer_register_in_cluster(txn, status, headers, reason, std::move(found));
  });
}

void EdgeProxy::answer_register_in_cluster(TransactionId txn, uint16_t status, std::string headers,
                                           std::string_view reason, Result<std::vector<store::BindingRecord>> found) {
  RegistrarServices& reg = *shared_.registrar;
  const sip::Message* request = table_.request(txn);
  if (request == nullptr) return;
  if (found.ok()) {
    int64_t now = reg.wall_seconds();
    std::sort(found->begin(), found->end(), registrar::binding_order);
    std::string others;
    for (const auto& b : *found) {
      if (b.node != reg.node_id && b.expires_at > now) registrar::append_contact(others, b, now);
    }
    // After our own Contact lines, so that all of them stay together.
    size_t last = headers.rfind("Contact: ");
    size_t at = last == std::string::npos ? 0 : headers.find("\r\n", last) + 2;
    headers.insert(at, others);
  } else {
    // The shared store is unreachable: the 200 lists what this node holds.
    const Call* call = call_of(txn);
    reject(Drop::kStoreUnavailable, call != nullptr ? call->source.remote : net::Endpoint{}, found.error().what);
  }
  respond(txn, *request, status, headers, reason);
  notify_deadline();
}

void EdgeProxy::load_aor_here(std::string aor, std::function<void(Result<std::vector<store::BindingRecord>>)> then) {
  transport::TransportLayer* transport = &shared_.transport;
  uint32_t worker = worker_;
  shared_.registrar->store.load_aor_async(
      std::move(aor), [transport, worker, then = std::move(then)](Result<std::vector<store::BindingRecord>> r) {
        auto found = std::make_shared<Result<std::vector<store::BindingRecord>>>(std::move(r));
        transport->post(worker, [then, found] { then(std::move(*found)); });
      });
}

void EdgeProxy::fork_to_bindings(Call& call, TransactionId txn, const sip::Message& request) {
  RegistrarServices& reg = *shared_.registrar;
  auto aor = registrar::canonical_aor(request.request_uri());
  if (!aor.ok()) {
    respond(txn, request, aor.error().status);
    return;
  }
  if (!reg.cluster) {
    fork_to_found_bindings(call, txn, request, reg.location.lookup(*aor, reg.wall_seconds()));
    return;
  }
  // A shared store: the AOR's bindings may be held by other nodes too, so the store, not our
  // memory, says where it is registered. Looked up off this thread; the answer comes back to
  // this worker, where the request may have been CANCELled meanwhile.
  std::string key = *aor;
  load_aor_here(key, [this, txn, key](Result<std::vector<store::BindingRecord>> found) {
    on_bindings_loaded(txn, key, std::move(found));
  });
}

void EdgeProxy::on_bindings_loaded(TransactionId txn, const std::string& aor,
                                   Result<std::vector<store::BindingRecord>> found) {
  RegistrarServices& reg = *shared_.registrar;
  Call* call = call_of(txn);
  const sip::Message* request = table_.request(txn);
  if (call == nullptr || request == nullptr || call->final_sent || call->cancelled) return;
  int64_t now = reg.wall_seconds();
  std::vector<store::BindingRecord> bindings;
  if (found.ok()) {
    for (auto& b : *found)
      if (b.expires_at > now) bindings.push_back(std::move(b));
    std::sort(bindings.begin(), bindings.end(), registrar::binding_order);
  } else {
    // The shared store is unreachable: serve from what this node holds itself.
    reject(Drop::kStoreUnavailable, call->source.remote, found.error().what);
    bindings = reg.location.lookup(aor, now);
  }
  fork_to_found_bindings(*call, txn, *request, bindings);
  notify_deadline();
}

void EdgeProxy::fork_to_found_bindings(Call& call, TransactionId txn, const sip::Message& request,
                                       const std::vector<store::BindingRecord>& bindings) {
  RegistrarServices& reg = *shared_.registrar;
  if (bindings.empty()) {
    reg.metrics.lookups_empty.inc();
    // 404: no such user at all; 480: a user of ours who is not reachable now (RFC 3261 §21.4.18).
    bool known = reg.users.find(request.request_uri().user, canonical_host(request.request_uri().host)) != nullptr;
    reject(Drop::kNoRoute, call.source.remote, known ? "user has no live binding: 480" : "no such user: 404");
    respond(txn, request, known ? 480 : 404);
    return;
  }
  reg.metrics.lookups_found.inc();
  std::string caller_token;
  if (call.from_client) {
    if (auto t = shared_.tokens.encode(call.source); t.ok()) caller_token = std::move(*t);
  }
  const auto& sockets = shared_.transport.local_sockets();
  size_t started = 0;
  for (const auto& b : bindings) {
    Retarget retarget{.request_uri = b.contact, .routes = {}};
    bool ours = b.node.empty() || b.node == reg.node_id;
    if (ours) {
      if (!shared_.transport.flow_alive(b.flow) || b.flow.local_socket_id >= sockets.size()) continue;
      std::string token;
      if (auto t = shared_.tokens.encode(b.flow); t.ok()) token = std::move(*t);
      std::string rr_token = caller_token;
      if (!rr_token.empty()) rr_token += kTokenSeparator;
      rr_token += token;
      // A Path from a proxy in front of us (RFC 3327); not the entry naming ourselves that a
      // cluster binding carries for the other nodes.
      for (const auto& hop : b.path)
        if (!names_us(hop)) retarget.routes.push_back(hop);
      call.client_flow = b.flow;
      call.has_client_flow = true;
      Destination dest{.flow = b.flow, .transport = b.flow.transport, .endpoint = b.flow.remote, .server_name = {}};
      if (!retarget.routes.empty()) {
        // Along the Path: its first hop, reached by address (numeric hosts only, like any
        // hop a client names).
        auto hop = route_destination(retarget.routes.front());
        if (!hop) continue;
        dest = *hop;
      }
      if (start_branch(call, request, dest, sockets[dest.flow ? dest.flow->local_socket_id : b.flow.local_socket_id],
                       rr_token, false, 0, &retarget))
        ++started;
      continue;
    }
    // Another node holds this flow: send along the Path it stored (its own URI with the token).
    if (b.path.empty()) continue;
    auto hop = route_destination(b.path.front());
    if (!hop) continue;
    const transport::LocalSocket* out = shared_.transport.socket_for(hop->transport, hop->endpoint.address.family());
    if (out == nullptr) continue;
    retarget.routes = b.path;
    if (start_branch(call, request, *hop, *out, caller_token, false, 0, &retarget)) ++started;
  }
  if (started == 0) {
    reg.metrics.lookups_empty.inc();
    reject(Drop::kFlowFailed, call.source.remote, "every binding's flow is gone: 480");
    respond(txn, request, 480);
  }
}

namespace {
// The URI of a Route/Path value ("<sip:token@203.0.113.10:5060;transport=tcp;lr>").
std::optional<sip::Uri> route_uri(std::string_view value) {
  if (auto open = value.find('<'); open != std::string_view::npos) {
    auto close = value.find('>', open);
    if (close == std::string_view::npos) return std::nullopt;
    value = value.substr(open + 1, close - open - 1);
  }
  auto uri = sip::parse_uri(value);
  if (!uri.ok() || !uri->is_sip()) return std::nullopt;
  return *uri;
}
}  // namespace

bool EdgeProxy::names_us(std::string_view route_value) const {
  auto uri = route_uri(route_value);
  return uri && shared_.identity.is_us(*uri);
}

std::optional<EdgeProxy::Destination> EdgeProxy::route_destination(std::string_view route_value) const {
  // The hop's numeric address and transport.
  auto uri = route_uri(route_value);
  if (!uri) return std::nullopt;
  auto addr = net::Address::parse(canonical_host(uri->host));
  if (!addr.ok()) return std::nullopt;
  net::Transport t = uri->scheme == sip::UriScheme::kSips ? net::Transport::kTls : net::Transport::kUdp;
  if (!uri->transport().empty()) {
    auto parsed = net::parse_transport(uri->transport());
    if (!parsed) return std::nullopt;
    t = *parsed;
  }
  net::Endpoint ep{addr->unmapped(), uri->port != 0 ? uri->port : net::default_sip_port(t)};
  return Destination{.flow = std::nullopt, .transport = t, .endpoint = ep, .server_name = {}};
}

bool EdgeProxy::forward_stateless_registrar(const sip::Message& request, const net::Flow& source,
                                            const RouteAnalysis& routes, Rewrite& rw, std::string_view branch) {
  // ACK for a 2xx: the same routing as the in-dialog requests of route_as_registrar, statelessly.
  const auto& sockets = shared_.transport.local_sockets();
  if (!routes.token.empty()) {
    auto flows = decode_route_token(routes.token);
    if (!flows.ok()) {
      reject(Drop::kFlowTokenTampered, source.remote, flows.error().what);
      return true;
    }
    if (auto target = token_target(*flows, source)) {
      if (target->local_socket_id >= sockets.size()) return true;
      rw.via = via_value(sockets[target->local_socket_id], branch);
      if (!shared_.transport.send(*target, apply_rewrite(request, rw))) {
        reject(Drop::kFlowFailed, source.remote, "the flow the route names is gone: ACK dropped");
      }
      return true;
    }
  }
  // The route set goes on past us (another node of a cluster, a proxy behind us): its next hop.
  auto all = request.routes();
  if (!all.ok() || all->size() <= routes.our_routes) return false;
  auto hop = route_destination((*all)[routes.our_routes].raw);
  if (!hop) return false;  // a name: the edge logic (the core) takes it
  const transport::LocalSocket* out = shared_.transport.socket_for(hop->transport, hop->endpoint.address.family());
  if (out == nullptr) {
    reject(Drop::kNoRoute, source.remote, "no listener for the route set's next hop: ACK dropped");
    return true;
  }
  rw.via = via_value(*out, branch);
  if (!shared_.transport.send_to(worker_, hop->transport, hop->endpoint, apply_rewrite(request, rw)).ok()) {
    reject(Drop::kNoRoute, source.remote, "the route set's next hop cannot be reached: ACK dropped");
  }
  return true;
}

}  // namespace pinhole::proxy
