// UserDirectory: the in-memory table of digest users (username + realm -> HA1s) that digest
// authentication reads on every worker thread.
//
// Reads are the hot path (every REGISTER and every authenticated request looks a user up) and
// writes are rare (start-up load from the store, `pinhole ctl users add/del`), so the table is an
// immutable snapshot: a reader takes a reference to the current snapshot and looks up in it with
// no lock held; a writer copies the snapshot, changes the copy and publishes it. Writers are
// serialised by a mutex so that two concurrent edits cannot lose each other (read-copy-update). A
// write costs O(users) (pointer copies: records are shared between snapshots), fine at ctl rates
// even for 100k users.
//
// The current-snapshot pointer sits behind a plain mutex held only to copy or swap it (one
// reference count change), not std::atomic<std::shared_ptr>: libstdc++ 12 implements that with a
// spin lock bit anyway, so it is no faster, and ThreadSanitizer reports its accesses as races
// (google/sanitizers#1558), which would hide real ones in the workers.
//
// Threads: every member may be called from any thread at any time. Records handed out by find()
// stay valid as long as the caller holds the pointer, even after a writer removed or replaced
// them.
#pragma once

#include <cstddef>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/result.h"
#include "store/records.h"

namespace pinhole::registrar {

// Why put() refused a record (400: the ctl/admin caller answers its client with it).
inline constexpr Error kUserBadName{400, "user: empty username or realm"};
inline constexpr Error kUserBadHa1{400, "user: HA1 is not 32 (MD5) or 64 (SHA-256) hex digits"};
inline constexpr Error kUserNoHa1{400, "user: neither an MD5 nor a SHA-256 HA1"};

class UserDirectory {
 public:
  UserDirectory();
  ~UserDirectory();
  UserDirectory(const UserDirectory&) = delete;
  UserDirectory& operator=(const UserDirectory&) = delete;

  // Replaces the whole table (start-up load from the store, or a resync). Records that fail the
  // checks of put() are skipped; the return value is how many were skipped (the caller logs and
  // counts them: one corrupt row must not lock every other user out). A later duplicate of
  // (username, realm) replaces an earlier one.
  size_t replace_all(std::vector<store::UserRecord> users);

  // Counts the table's changes (every put, remove, replace). A resync reads it, lists the store,
  // and replaces the table only if nothing changed in between (replace_all_if): otherwise a
  // `ctl users add` made here while the list was read could be undone by the older list.
  uint64_t generation() const;
  // replace_all when generation() still equals `generation`; nullopt (nothing changed) when not.
  std::optional<size_t> replace_all_if(uint64_t generation, std::vector<store::UserRecord> users);

  // Inserts or replaces the user (username, realm). HA1s are stored in lower case; an empty HA1
  // means "no credentials for that algorithm", but at least one must be present. Refused
  // (nothing changes): kUserBadName, kUserBadHa1, kUserNoHa1.
  Status put(store::UserRecord user);

  // False when there was no such user.
  bool remove(std::string_view username, std::string_view realm);

  // The user, or null. Usernames and realms compare exactly (case-sensitive, RFC 7616 §3.4: the
  // HA1 hashes them as written). shared_ptr: the record is shared by the snapshots that contain
  // it and by readers that may still hold it after a writer dropped it from the table.
  std::shared_ptr<const store::UserRecord> find(std::string_view username, std::string_view realm) const;

  // Every user, ordered by realm then username (stable output for `pinhole ctl users list`).
  std::vector<store::UserRecord> list() const;

  size_t size() const;

 private:
  using Key = std::pair<std::string, std::string>;  // (realm, username)
  using KeyView = std::pair<std::string_view, std::string_view>;
  // Transparent hash and equality so find() looks up string_views without building strings.
  struct KeyHash {
    using is_transparent = void;
    size_t operator()(const KeyView& k) const;
    size_t operator()(const Key& k) const { return (*this)(KeyView(k.first, k.second)); }
  };
  struct KeyEqual {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return std::string_view(a.first) == std::string_view(b.first) &&
             std::string_view(a.second) == std::string_view(b.second);
    }
  };
  using Table = std::unordered_map<Key, std::shared_ptr<const store::UserRecord>, KeyHash, KeyEqual>;

  // The current snapshot (never null).
  std::shared_ptr<const Table> snapshot() const;
  // Makes `table` the current snapshot. Caller holds write_mutex_.
  void publish(Table table);
  // The checked table replace_all publishes; the count of skipped records in `skipped`.
  static Table build_table(std::vector<store::UserRecord> users, size_t& skipped);

  mutable std::mutex snapshot_mutex_;  // guards table_ (the pointer, not the table)
  // shared_ptr: readers on every worker keep the snapshot they took while a writer publishes the
  // next one; the last holder frees it.
  std::shared_ptr<const Table> table_;
  mutable std::mutex write_mutex_;  // serialises writers only; readers never take it
  uint64_t generation_ = 0;         // guarded by write_mutex_
};

}  // namespace pinhole::registrar
