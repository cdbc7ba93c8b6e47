// The "redis://" store, for clusters: several pinhole nodes share registrations through one Redis,
// and each binding names the node that holds its flow (BindingRecord::node) so that a request
// reaches the UA through that node.
//
// Keys (a standalone Redis; the scripts touch two keys, which Redis Cluster would refuse):
//   pinhole:aor:<aor>               hash: binding_id -> record_codec.h value; TTL at the latest
//                                   expires_at of its bindings + kRedisTtlGrace, so lapsed AORs go
//   pinhole:aors                    set of the AORs that have a hash (load_bindings walks it)
//   pinhole:user:<realm>:<username> hash: username, realm, ha1_md5, ha1_sha256 (':' and '%' in the
//                                   realm are written %3A and %25, so the key is unambiguous)
//   pinhole:keepalive:<node>:<flow> string: a keepalive endpoint (record_codec.h value); <flow> is
//                                   keepalive_flow_key, ':' and '%' in <node> escaped as above; TTL
//                                   at its latest reason expiry + kRedisTtlGrace
//   pinhole:keepalives:<node>       set of the flow keys of that node's endpoints (load_keepalives
//                                   reads it; members whose key expired are pruned then)
// Keepalives are one key per endpoint (not one hash per node) so that each gets its own TTL: an
// endpoint left behind by a node that died goes away on its own.
// Each binding or keepalive write is one Lua script call (kept as EVALSHA), so the hash, its TTL and the set
// change together.
//
// Connections: the writer thread owns one (pipelined batches; lost connections are retried with
// exponential backoff, counted, and the batch replayed; PING when idle so `connected` tells the
// truth); reads, user operations and async lookups share a second one under a mutex, with a
// kRedisIoTimeout timeout, and answer Error 503 while Redis is unreachable.
//
// hiredis writes with write(2): every call that may write blocks SIGPIPE on its thread for its
// duration, so a dead Redis gives EPIPE instead of killing the process.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/result.h"
#include "net/flow.h"
#include "store/store.h"

namespace pinhole::store {

struct RedisTarget {
  std::string host;  // name or address literal (IPv6 without brackets)
  uint16_t port = 6379;
  uint32_t db = 0;
};

// How long after its last binding lapsed an AOR's hash lives on (clock skew between nodes).
inline constexpr std::chrono::seconds kRedisTtlGrace{300};
// Connect and per-command timeout of both connections.
inline constexpr std::chrono::milliseconds kRedisIoTimeout{1000};
// How often the idle writer checks its connection.
inline constexpr std::chrono::milliseconds kRedisPingInterval{2000};

inline constexpr std::string_view kRedisAorsKey = "pinhole:aors";
std::string redis_aor_key(std::string_view aor);
std::string redis_user_key(std::string_view realm, std::string_view username);
std::string redis_keepalive_key(std::string_view node, const net::Flow& flow);
std::string redis_keepalive_set_key(std::string_view node);
// "pinhole:keepalive:<escaped node>:", what redis_keepalive_key puts before the flow key.
std::string keepalive_key_prefix(std::string_view node);

// Never fails for an unreachable Redis (the writer connects in the background and counts its
// attempts); the Result is for the interface's sake. Threads: see Store.
Result<std::unique_ptr<Store>> open_redis_store(const RedisTarget& target, const StoreOptions& options);

}  // namespace pinhole::store
