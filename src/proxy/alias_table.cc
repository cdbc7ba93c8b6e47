#include "proxy/alias_table.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "proxy/local_identity.h"

namespace pinhole::proxy {

bool alias_allowed(const ProxyConfig& config, net::Transport transport, const net::Address& source) {
  if (!net::is_stream(transport)) return false;  // an alias names a connection
  auto trusted = [&] {
    return std::any_of(config.trusted_peers.begin(), config.trusted_peers.end(),
                       [&](const net::Address& a) { return a.unmapped() == source.unmapped(); });
  };
  switch (config.alias) {
    case AliasPolicy::kNever:
      return false;
    case AliasPolicy::kTlsAndTrusted:
      return net::is_secure(transport) || trusted();
    case AliasPolicy::kTrusted:
      return trusted();
    case AliasPolicy::kAlways:
      return true;
  }
  return false;
}

void AliasTable::record(const sip::Via& via, const net::Flow& flow) {
  auto addr = net::Address::parse(canonical_host(via.host));
  if (!addr.ok()) return;  // a name cannot be matched against a later request's address
  auto t = net::parse_transport(via.transport);
  if (!t) return;
  Key key{*t, net::Endpoint{addr->unmapped(), via.port != 0 ? via.port : net::default_sip_port(*t)}};
  std::lock_guard lock(mutex_);
  flows_[key] = flow;
}

std::optional<net::Flow> AliasTable::find(net::Transport transport, const net::Endpoint& sent_by) const {
  std::lock_guard lock(mutex_);
  auto it = flows_.find(Key{transport, sent_by.unmapped()});
  if (it == flows_.end()) return std::nullopt;
  return it->second;
}

void AliasTable::forget_connection(uint64_t connection_id) {
  std::lock_guard lock(mutex_);
  absl::erase_if(flows_, [&](const auto& kv) { return kv.second.connection_id == connection_id; });
}

size_t AliasTable::size() const {
  std::lock_guard lock(mutex_);
  return flows_.size();
}

}  // namespace pinhole::proxy
