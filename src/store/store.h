// The location/user store (DESIGN.md §2 store/): persists registrations (BindingRecord), digest
// users (UserRecord) and NAT keepalive endpoints (KeepaliveRecord) so that they survive restarts and, with Redis, are
// shared by several pinhole nodes. Three implementations behind one interface: "memory" (tests; the behaviour
// reference), "sqlite" (the default, one node) and "redis" (clusters). open_store() picks one from a URL.
//
// The in-memory location service stays the source of truth while pinhole runs: it writes every
// change through (save/remove, which never block) and reads the store only at start-up and for
// bindings another node holds (load_aor, load_aor_async).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "store/records.h"

namespace pinhole::store {

// Counters for the metrics endpoint. `writes`: binding and keepalive writes (save/remove) that reached
// the backend; `batches`: transactions/pipelines that carried them; `write_errors`: writes lost
// (refused by the backend, dropped from a full queue, or still queued when the store was destroyed);
// `reconnects`: Redis connections re-established after a failure; `connection_failures`: failed
// Redis connection attempts and connections lost; `queued`: writes not yet durable; `connected`:
// the writer's Redis connection is up (always true for memory and SQLite); `decode_errors`: stored
// records that could not be read back (corrupt, or written by a newer pinhole) and were skipped.
struct StoreStats {
  uint64_t writes = 0, batches = 0, write_errors = 0, reconnects = 0, connection_failures = 0;
  size_t queued = 0;
  bool connected = true;
  uint64_t decode_errors = 0;
};

// Ownership: the caller owns the Store (open_store returns a unique_ptr) and must keep it alive
// while any call on it runs; destroying it flushes what it can within 2 s (the rest is counted in
// write_errors), answers pending load_aor_async callbacks with an Error (503) and joins its threads.
//
// Threads: every member may be called from any thread, concurrently. The blocking members
// (load_*, users, flush) must not run on a worker's event loop except at start-up.
//
// Ordering and visibility: writes are applied in the order they were queued (one writer thread),
// so the last save/remove of an (aor, binding_id) wins. A read sees the writes that were durable
// when it ran: call flush() first to read your own writes. Results are sorted: bindings by
// (aor, binding_id), users by (username, realm), comparing bytes.
class Store {
 public:
  virtual ~Store() = default;

  // Start-up and cluster lookups (blocking; never call from a worker's event loop except at start-up).
  // Every binding, lapsed ones included (the caller filters). Redis alone also lets an AOR vanish
  // once all its bindings lapsed more than kRedisTtlGrace ago (key TTL).
  virtual Result<std::vector<BindingRecord>> load_bindings() = 0;
  // The bindings of one AOR (empty when it has none).
  virtual Result<std::vector<BindingRecord>> load_aor(std::string_view aor) = 0;
  // Asynchronous lookup for the hot path: `done` runs on the store's own thread (never inside
  // this call), exactly once; the caller posts the result back to its loop.
  virtual void load_aor_async(std::string aor, std::function<void(Result<std::vector<BindingRecord>>)> done) = 0;

  // Writes: any thread, never block on I/O: queued and written by the store's writer thread in batches
  // (one SQLite transaction / one Redis pipeline per batch). Later writes of the same (aor, binding_id) win.
  virtual void save_binding(const BindingRecord& b) = 0;
  virtual void remove_binding(std::string_view aor, std::string_view binding_id) = 0;
  virtual void remove_aor(std::string_view aor) = 0;

  // Keepalive endpoints (issue 5), written behind like the bindings: any thread, never block on I/O;
  // later writes of the same (node, flow) win. save_keepalive replaces the endpoint's whole record
  // (all its reasons); a record without reasons removes it (nothing would reload from it).
  virtual void save_keepalive(const KeepaliveRecord& k) = 0;
  virtual void remove_keepalive(std::string_view node, const net::Flow& flow) = 0;
  // Start-up (blocking): every endpoint `node` saved, reasons already expired included (the caller
  // filters), sorted by keepalive_flow_key (record_codec.h) bytes. Another node's endpoints are
  // never returned. Redis alone also drops an endpoint once its latest reason expired more than
  // kRedisTtlGrace ago (key TTL). Records that cannot be read back are skipped and counted in
  // decode_errors.
  virtual Result<std::vector<KeepaliveRecord>> load_keepalives(std::string_view node) = 0;

  // Users (operations path; blocking is fine). put_user checks the record with validate_user().
  virtual Status put_user(const UserRecord& u) = 0;  // insert or replace (username, realm)
  virtual Result<bool> delete_user(std::string_view username, std::string_view realm) = 0;  // false: none
  virtual Result<std::vector<UserRecord>> list_users() = 0;

  // Blocks until every write queued before the call is durable (or failed and counted). Tests, shutdown.
  // With Redis down this waits for the reconnection (writes are kept, not failed).
  virtual void flush() = 0;
  virtual StoreStats stats() const = 0;       // any thread
  virtual std::string_view kind() const = 0;  // "memory", "sqlite", "redis"
};

struct StoreOptions {
  size_t max_batch = 256;  // writes per transaction/pipeline
  // How long the writer waits for more writes after the first one of a batch (flush() cuts it short).
  std::chrono::milliseconds batch_window{20};
  std::chrono::milliseconds reconnect_min{100}, reconnect_max{5000};  // Redis reconnection backoff
};

// URL: "memory:" | "sqlite:///abs/path.db" (or "sqlite://relative/path.db") | "redis://host:port/db"
// (port optional, default 6379; db optional, default 0; host may be an IPv4 literal, an IPv6 literal
// in brackets or a name). Errors name the problem for the operator: bad URL (400), a database file
// that cannot be opened or created (500). Redis unreachable at start is NOT an error: it is retried
// in the background and counted. Start-up only (may block on file I/O).
Result<std::unique_ptr<Store>> open_store(std::string_view url, const StoreOptions& options = {});

// Checks a user before it is stored: a non-empty username, each HA1 either empty or lowercase hex
// of the right length (32 for MD5, 64 for SHA-256), at least one of them set. Error status 400.
Status validate_user(const UserRecord& u);

// The orders the loads promise (see Store); the implementations share them.
void sort_bindings(std::vector<BindingRecord>& bindings);
void sort_users(std::vector<UserRecord>& users);
void sort_keepalives(std::vector<KeepaliveRecord>& keepalives);

}  // namespace pinhole::store
