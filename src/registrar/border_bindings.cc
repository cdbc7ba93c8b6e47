// Border-mode binding table (see border_bindings.h).
#include "registrar/border_bindings.h"

#include <algorithm>
#include <tuple>

namespace pinhole::registrar {

namespace {

// Earlier flows of one binding that still route to it: a dialog set up before a rebinding keeps
// its Record-Route token; more than a few moves within one registration means a flapping NAT.
constexpr size_t kMaxEarlierFlows = 4;

bool same_address(const net::Flow& a, const net::Flow& b) {
  return a.transport == b.transport && a.remote.address == b.remote.address;
}

std::chrono::seconds seconds_until(TimePoint t, TimePoint now) {
  return t > now ? std::chrono::duration_cast<std::chrono::seconds>(t - now) : std::chrono::seconds(0);
}

}  // namespace

bool BorderBindings::absorbable(const Binding& b, const BorderRegister& reg, const BorderContact& c, TimePoint now,
                                bool& moved) const {
  if (b.lease.count() == 0 || !reg.nat_udp) return false;
  // A new Call-ID is a phone that restarted; an old CSeq is a retransmission or reordering: the
  // upstream judges both.
  if (reg.call_id != b.call_id || reg.cseq <= b.cseq) return false;
  if (!c.expires || *c.expires == 0) return false;
  // The upstream binding must outlive the next refresh (within one lease) with room to spare.
  if (b.upstream_expiry - now <= b.lease + config_.refresh_margin) return false;
  if (reg.source == b.flow) return true;
  if (!config_.absorb_rebinding || !same_address(reg.source, b.flow)) return false;
  moved = true;
  return true;
}

BorderDecision BorderBindings::decide(const BorderRegister& reg, TimePoint now) {
  BorderDecision d;
  std::lock_guard lock(mu_);
  if (reg.star || reg.contacts.empty()) return d;  // removals and queries are the upstream's
  bool all = true;
  bool moved_any = false;
  std::optional<uint32_t> asked;
  for (const auto& c : reg.contacts) {
    auto it = bindings_.find(BindingKey{reg.aor, c.key});
    if (it == bindings_.end()) {
      all = false;
      continue;
    }
    // A client that adopted our lease as its ask gets the original interval upstream.
    if (it->second.lease.count() > 0 && c.expires && *c.expires != 0 &&
        *c.expires <= static_cast<uint32_t>(it->second.lease.count()) && it->second.asked_expires > *c.expires) {
      asked = std::max(asked.value_or(0), it->second.asked_expires);
    }
    bool moved = false;
    if (!absorbable(it->second, reg, c, now, moved)) all = false;
    moved_any = moved_any || moved;
  }
  if (!all) {
    d.upstream_expires = asked;
    return d;
  }
  d.kind = BorderDecision::Kind::kAnswerLocally;
  d.rebinding = moved_any;
  for (const auto& c : reg.contacts) {
    auto it = bindings_.find(BindingKey{reg.aor, c.key});
    Binding& b = it->second;
    b.cseq = reg.cseq;
    b.refreshed = now;
    if (!(b.flow == reg.source)) {
      if (b.earlier_flows.size() == kMaxEarlierFlows) {
        if (!(b.earlier_flows.front() == b.path_flow)) unindex_flow(b.earlier_flows.front(), it->first);
        b.earlier_flows.erase(b.earlier_flows.begin());
      }
      b.earlier_flows.push_back(b.flow);
      b.flow = reg.source;
      ++b.rebindings;
      index_flow(b.flow, it->first);
    }
    auto lease = std::min<uint32_t>(*c.expires, static_cast<uint32_t>(b.lease.count()));
    d.grants.push_back(LocalGrant{c.key, lease});
  }
  return d;
}

std::vector<LocalGrant> BorderBindings::learn(const BorderRegister& reg, const net::Flow& path_flow,
                                              const std::vector<LocalGrant>& granted, TimePoint now) {
  std::vector<LocalGrant> told;
  std::lock_guard lock(mu_);
  if (reg.star) {
    // Contact: * with Expires 0 accepted: every binding of the AOR is gone.
    std::vector<BindingKey> gone;
    for (const auto& [key, b] : bindings_) {
      if (key.first == reg.aor) gone.push_back(key);
    }
    for (const auto& key : gone) erase(bindings_.find(key));
    return told;
  }
  for (const auto& c : reg.contacts) {
    BindingKey key{reg.aor, c.key};
    auto g = std::find_if(granted.begin(), granted.end(), [&](const LocalGrant& x) { return x.key == c.key; });
    auto it = bindings_.find(key);
    if (g == granted.end() || g->expires == 0) {
      if (it != bindings_.end()) erase(it);
      continue;
    }
    if (it == bindings_.end()) {
      if (bindings_.size() >= config_.max_bindings) {
        told.push_back(*g);
        continue;
      }
      it = bindings_.emplace(key, Binding{}).first;
      it->second.aor = reg.aor;
      it->second.key = c.key;
    }
    Binding& b = it->second;
    if (!(b.path_flow == path_flow) || !(b.flow == reg.source)) {
      unindex(b);
      b.earlier_flows.clear();
    }
    b.call_id = reg.call_id;
    b.cseq = reg.cseq;
    b.refreshed = now;
    b.flow = reg.source;
    b.path_flow = path_flow;
    // What the client asked is what the upstream keeps; when the request was rewritten to the
    // original ask, `c.expires` is the lease the client adopted and the original stays.
    uint32_t asked = c.expires.value_or(g->expires);
    if (b.lease.count() == 0 || asked > static_cast<uint32_t>(b.lease.count())) b.asked_expires = asked;
    if (b.asked_expires == 0) b.asked_expires = g->expires;
    b.upstream_expiry = now + std::chrono::seconds(g->expires);
    b.lease = reg.nat_udp && config_.lease.count() > 0 ? std::min(config_.lease, std::chrono::seconds(g->expires))
                                                       : std::chrono::seconds(0);
    index_flow(b.flow, key);
    index_flow(b.path_flow, key);
    told.push_back(LocalGrant{c.key, b.lease.count() > 0 ? static_cast<uint32_t>(b.lease.count()) : g->expires});
  }
  return told;
}

std::optional<net::Flow> BorderBindings::current_flow(const net::Flow& named) const {
  std::lock_guard lock(mu_);
  auto f = by_flow_.find(named);
  if (f == by_flow_.end()) return std::nullopt;
  const Binding* latest = nullptr;
  for (const auto& key : f->second) {
    auto b = bindings_.find(key);
    if (b != bindings_.end() && (latest == nullptr || b->second.refreshed > latest->refreshed)) latest = &b->second;
  }
  if (latest == nullptr) return std::nullopt;
  return latest->flow;
}

size_t BorderBindings::expire(TimePoint now) {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (auto it = bindings_.begin(); it != bindings_.end();) {
    auto next = std::next(it);
    if (it->second.upstream_expiry <= now) {
      erase(it);
      ++n;
    }
    it = next;
  }
  return n;
}

size_t BorderBindings::size() const {
  std::lock_guard lock(mu_);
  return bindings_.size();
}

std::vector<BorderBindingView> BorderBindings::list(TimePoint now) const {
  std::lock_guard lock(mu_);
  std::vector<BorderBindingView> out;
  out.reserve(bindings_.size());
  for (const auto& [key, b] : bindings_) {
    out.push_back(BorderBindingView{.aor = b.aor,
                                    .key = b.key,
                                    .flow = b.flow,
                                    .path_flow = b.path_flow,
                                    .asked_expires = b.asked_expires,
                                    .upstream_remaining = seconds_until(b.upstream_expiry, now),
                                    .lease = b.lease,
                                    .rebindings = b.rebindings});
  }
  std::sort(out.begin(), out.end(), [](const BorderBindingView& a, const BorderBindingView& b) {
    return std::tie(a.aor, a.key) < std::tie(b.aor, b.key);
  });
  return out;
}

void BorderBindings::index_flow(const net::Flow& flow, const BindingKey& key) {
  auto& keys = by_flow_[flow];
  if (std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
}

void BorderBindings::unindex_flow(const net::Flow& flow, const BindingKey& key) {
  auto it = by_flow_.find(flow);
  if (it == by_flow_.end()) return;
  std::erase(it->second, key);
  if (it->second.empty()) by_flow_.erase(it);
}

void BorderBindings::unindex(const Binding& b) {
  BindingKey key{b.aor, b.key};
  unindex_flow(b.flow, key);
  unindex_flow(b.path_flow, key);
  for (const auto& f : b.earlier_flows) unindex_flow(f, key);
}

void BorderBindings::erase(absl::flat_hash_map<BindingKey, Binding>::iterator it) {
  unindex(it->second);
  bindings_.erase(it);
}

}  // namespace pinhole::registrar
