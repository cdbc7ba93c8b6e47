// Location: the in-memory location service (RFC 3261 §10) — every binding of every AOR this
// registrar holds, shared by all worker threads. The store (src/store/) persists the same records;
// this table stays the source of truth while pinhole runs and is filled from the store at start-up.
//
// Sharded by a hash of the AOR: N shards, each a map AOR -> bindings under its own std::mutex.
// Locking is fine here (DESIGN.md §2 prefers posting to an owner's loop) because every critical
// section is a short map operation on one AOR — a few bindings copied or replaced, no I/O, no
// allocation-heavy work, no callback into the caller — so a worker holds a shard for well under a
// microsecond, and with many shards two workers rarely want the same one. Posting a REGISTER to an
// owner thread would cost more than the lock it saves. The sweeps (expire, list) walk a shard at a
// time, never holding two locks at once.
//
// Read-modify-write of one AOR (a REGISTER: look at the bindings, decide, change several) uses
// optimistic concurrency instead of a lock held across the decision: snapshot() returns the AOR's
// bindings with a version, commit() applies the changes only if the version is unchanged, and the
// caller retries on a clash. Nothing runs under a lock but the table's own code.
//
// Ownership: Location owns copies of the records; every call returns copies, never references into
// the table. Threads: every member may be called from any thread, concurrently.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "net/flow.h"
#include "store/records.h"

namespace pinhole::registrar {

// The order in which a lookup returns bindings (RFC 3261 §16.6 forks by q): highest q first; a
// binding without q ranks as q=1.0 (RFC 3261 gives no default; 1.0 is what resiprocate and most
// UAs assume, so a phone that says nothing does not lose to one that says q=0.5); equal q: the most
// recently (re)registered first; then by binding_id so the order is total and repeatable.
bool binding_order(const store::BindingRecord& a, const store::BindingRecord& b);

class Location {
 public:
  static constexpr size_t kDefaultShards = 64;

  // `shards` is rounded up to at least 1.
  explicit Location(size_t shards = kDefaultShards);
  ~Location();
  Location(const Location&) = delete;
  Location& operator=(const Location&) = delete;

  // Start-up: adds `records` (from the store) and drops those lapsed at `now` (expires_at <= now).
  // A record whose (aor, binding_id) is already present replaces it. Returns how many were kept.
  size_t load(std::vector<store::BindingRecord> records, int64_t now);

  // The live bindings of `aor` (expires_at > now), in binding_order(). Empty when none.
  std::vector<store::BindingRecord> lookup(std::string_view aor, int64_t now) const;

  // Inserts or replaces the binding (record.aor, record.binding_id).
  void upsert(store::BindingRecord record);
  // Removes one binding; false when there was none.
  bool remove(std::string_view aor, std::string_view binding_id);
  // Removes every binding of `aor` and returns them (so the caller can delete them from the store).
  std::vector<store::BindingRecord> remove_aor(std::string_view aor);
  // Removes every binding lapsed at `now` (expires_at <= now) and returns them: the caller deletes
  // them from the store and drops their keepalives. A shard with nothing due is skipped without
  // walking it (each shard remembers a lower bound of its earliest expiry).
  std::vector<store::BindingRecord> expire(int64_t now);

  // Optimistic read-modify-write of one AOR (see the file comment).
  struct Snapshot {
    std::vector<store::BindingRecord> bindings;  // every binding held, lapsed ones included
    uint64_t version = 0;                        // 0: the AOR has no binding
  };
  Snapshot snapshot(std::string_view aor) const;
  // Removes `remove_ids` (absent ones are ignored), then inserts or replaces `upserts` (whose aor
  // must be `aor`), all at once — if the AOR is still at `version`. Returns false and changes
  // nothing when another commit (or upsert/remove/expire) touched the AOR since the snapshot.
  bool commit(std::string_view aor, uint64_t version, std::span<const std::string> remove_ids,
              std::vector<store::BindingRecord> upserts);

  // Operations view: up to `limit` bindings whose AOR or Contact contains `substring_filter` (all
  // when empty), lapsed ones not yet expired included, ordered by AOR and then binding_order().
  // Walks every shard: meant for `pinhole ctl`, not for the data path.
  std::vector<store::BindingRecord> list(std::string_view substring_filter, size_t limit) const;

  // Every binding whose flow is `flow` (a connection closed: RFC 5626 flow failure), lapsed ones
  // not yet expired included. Each shard keeps a flow index, so this is one hash lookup per shard.
  // Flows are only meaningful on the node that holds them: the caller filters by record.node.
  std::vector<store::BindingRecord> find_by_flow(const net::Flow& flow) const;

  // For metrics: read without locking (kept up to date by every change).
  size_t aor_count() const { return aor_count_.load(std::memory_order_relaxed); }
  size_t binding_count() const { return binding_count_.load(std::memory_order_relaxed); }

  size_t shard_count() const { return shards_.size(); }
  // Which shard holds `aor` (exposed for tests and diagnostics).
  size_t shard_of(std::string_view aor) const;

 private:
  struct AorEntry {
    uint64_t version = 0;
    std::vector<store::BindingRecord> bindings;  // few (max_bindings_per_aor): a vector beats a map
  };
  using BindingKey = std::pair<std::string, std::string>;  // (aor, binding_id)
  struct Shard {
    mutable std::mutex mutex;
    absl::flat_hash_map<std::string, AorEntry> aors;
    absl::flat_hash_map<net::Flow, absl::flat_hash_set<BindingKey>> by_flow;
    uint64_t last_version = 0;    // versions are unique within a shard: an erased AOR never reappears
                                  // at a version a stale snapshot holds
    int64_t earliest_expiry = 0;  // no binding in the shard lapses before this (a lower bound)
  };

  Shard& shard_for(std::string_view aor) const;
  // The helpers below run with the shard's mutex held.
  void insert_locked(Shard& shard, AorEntry& entry, store::BindingRecord record);
  bool erase_locked(Shard& shard, AorEntry& entry, std::string_view binding_id,
                    std::vector<store::BindingRecord>* removed);
  void unindex_locked(Shard& shard, const store::BindingRecord& record);
  // Bumps the version, or erases the AOR when it has no binding left.
  void touched_locked(Shard& shard, std::string_view aor);

  std::vector<std::unique_ptr<Shard>> shards_;
  std::atomic<size_t> aor_count_{0};
  std::atomic<size_t> binding_count_{0};
};

}  // namespace pinhole::registrar
