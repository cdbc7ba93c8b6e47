// RFC 5923 connection reuse: a client that puts `;alias` in its Via over TCP/TLS asks that
// requests for its sent-by address come over the connection it opened. The table maps
// (transport, sent-by) to that flow, for requests routed by address rather than by flow token.
//
// Whose alias is honoured is policy (proxy_config.h AliasPolicy): anyone could claim any
// sent-by, so by default only TLS peers (which proved a name) and configured trusted peers.
//
// Threads: any worker may record and look up (a request can land on any worker); one mutex,
// held for a hash lookup only. Entries die with their connection (forget_connection).
#pragma once

#include <mutex>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "net/flow.h"
#include "proxy/proxy_config.h"
#include "sip/via.h"

namespace pinhole::proxy {

// Whether `policy` lets a peer at `source` over `transport` have its alias honoured.
bool alias_allowed(const ProxyConfig& config, net::Transport transport, const net::Address& source);

class AliasTable {
 public:
  // Records the alias of `via` (sent-by must be a numeric address) for the stream `flow`.
  void record(const sip::Via& via, const net::Flow& flow);
  std::optional<net::Flow> find(net::Transport transport, const net::Endpoint& sent_by) const;
  void forget_connection(uint64_t connection_id);
  size_t size() const;

 private:
  using Key = std::pair<net::Transport, net::Endpoint>;
  mutable std::mutex mutex_;
  absl::flat_hash_map<Key, net::Flow> flows_;
};

}  // namespace pinhole::proxy
