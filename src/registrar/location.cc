// The sharded in-memory location service (see location.h).
#include "registrar/location.h"

#include <algorithm>
#include <functional>
#include <limits>

#include "absl/strings/string_view.h"

namespace pinhole::registrar {
namespace {

constexpr int64_t kNever = std::numeric_limits<int64_t>::max();

// Debian's Abseil is built with its own absl::string_view (not std::string_view), which is what
// the maps' heterogeneous lookup takes.
absl::string_view key(std::string_view s) { return {s.data(), s.size()}; }

int32_t effective_q(const store::BindingRecord& b) { return b.q_milli < 0 ? 1000 : b.q_milli; }

bool list_order(const store::BindingRecord& a, const store::BindingRecord& b) {
  if (a.aor != b.aor) return a.aor < b.aor;
  return binding_order(a, b);
}

}  // namespace

bool binding_order(const store::BindingRecord& a, const store::BindingRecord& b) {
  if (effective_q(a) != effective_q(b)) return effective_q(a) > effective_q(b);
  if (a.registered_at != b.registered_at) return a.registered_at > b.registered_at;
  return a.binding_id < b.binding_id;
}

Location::Location(size_t shards) {
  shards_.resize(std::max<size_t>(shards, 1));
  for (auto& s : shards_) {
    s = std::make_unique<Shard>();
    s->earliest_expiry = kNever;
  }
}

Location::~Location() = default;

size_t Location::shard_of(std::string_view aor) const {
  // std::hash rather than absl::Hash: the shard's own map hashes the same keys with absl::Hash, and
  // picking the shard from those bits would give every key in a shard the same low hash bits.
  return std::hash<std::string_view>{}(aor) % shards_.size();
}

Location::Shard& Location::shard_for(std::string_view aor) const { return *shards_[shard_of(aor)]; }

void Location::unindex_locked(Shard& shard, const store::BindingRecord& record) {
  auto it = shard.by_flow.find(record.flow);
  if (it == shard.by_flow.end()) return;
  it->second.erase(BindingKey(record.aor, record.binding_id));
  if (it->second.empty()) shard.by_flow.erase(it);
}

void Location::insert_locked(Shard& shard, AorEntry& entry, store::BindingRecord record) {
  shard.earliest_expiry = std::min(shard.earliest_expiry, record.expires_at);
  auto same = std::find_if(entry.bindings.begin(), entry.bindings.end(),
                           [&](const store::BindingRecord& b) { return b.binding_id == record.binding_id; });
  if (same != entry.bindings.end()) {
    if (same->flow != record.flow) {
      unindex_locked(shard, *same);
      shard.by_flow[record.flow].emplace(record.aor, record.binding_id);
    }
    *same = std::move(record);
    return;
  }
  shard.by_flow[record.flow].emplace(record.aor, record.binding_id);
  entry.bindings.push_back(std::move(record));
  binding_count_.fetch_add(1, std::memory_order_relaxed);
}

bool Location::erase_locked(Shard& shard, AorEntry& entry, std::string_view binding_id,
                            std::vector<store::BindingRecord>* removed) {
  auto it = std::find_if(entry.bindings.begin(), entry.bindings.end(),
                         [&](const store::BindingRecord& b) { return b.binding_id == binding_id; });
  if (it == entry.bindings.end()) return false;
  unindex_locked(shard, *it);
  if (removed != nullptr) removed->push_back(std::move(*it));
  entry.bindings.erase(it);
  binding_count_.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

void Location::touched_locked(Shard& shard, std::string_view aor) {
  auto it = shard.aors.find(key(aor));
  if (it == shard.aors.end()) return;
  if (it->second.bindings.empty()) {
    shard.aors.erase(it);
    aor_count_.fetch_sub(1, std::memory_order_relaxed);
  } else {
    it->second.version = ++shard.last_version;
  }
}

size_t Location::load(std::vector<store::BindingRecord> records, int64_t now) {
  size_t kept = 0;
  for (auto& r : records) {
    if (r.expires_at <= now) continue;
    upsert(std::move(r));
    ++kept;
  }
  return kept;
}

std::vector<store::BindingRecord> Location::lookup(std::string_view aor, int64_t now) const {
  std::vector<store::BindingRecord> out;
  {
    Shard& shard = shard_for(aor);
    std::lock_guard lock(shard.mutex);
    auto it = shard.aors.find(key(aor));
    if (it == shard.aors.end()) return out;
    out.reserve(it->second.bindings.size());
    for (const auto& b : it->second.bindings)
      if (b.expires_at > now) out.push_back(b);
  }
  std::sort(out.begin(), out.end(), binding_order);
  return out;
}

void Location::upsert(store::BindingRecord record) {
  Shard& shard = shard_for(record.aor);
  std::lock_guard lock(shard.mutex);
  auto [it, inserted] = shard.aors.try_emplace(record.aor);
  if (inserted) aor_count_.fetch_add(1, std::memory_order_relaxed);
  std::string aor = record.aor;
  insert_locked(shard, it->second, std::move(record));
  touched_locked(shard, aor);
}

bool Location::remove(std::string_view aor, std::string_view binding_id) {
  Shard& shard = shard_for(aor);
  std::lock_guard lock(shard.mutex);
  auto it = shard.aors.find(key(aor));
  if (it == shard.aors.end() || !erase_locked(shard, it->second, binding_id, nullptr)) return false;
  touched_locked(shard, aor);
  return true;
}

std::vector<store::BindingRecord> Location::remove_aor(std::string_view aor) {
  std::vector<store::BindingRecord> removed;
  Shard& shard = shard_for(aor);
  std::lock_guard lock(shard.mutex);
  auto it = shard.aors.find(key(aor));
  if (it == shard.aors.end()) return removed;
  removed = std::move(it->second.bindings);
  for (const auto& b : removed) unindex_locked(shard, b);
  binding_count_.fetch_sub(removed.size(), std::memory_order_relaxed);
  shard.aors.erase(it);
  aor_count_.fetch_sub(1, std::memory_order_relaxed);
  return removed;
}

std::vector<store::BindingRecord> Location::expire(int64_t now) {
  std::vector<store::BindingRecord> removed;
  for (auto& s : shards_) {
    Shard& shard = *s;
    std::lock_guard lock(shard.mutex);
    if (shard.earliest_expiry > now) continue;
    int64_t earliest = kNever;
    for (auto it = shard.aors.begin(); it != shard.aors.end();) {
      auto& bindings = it->second.bindings;
      auto live_end = std::partition(bindings.begin(), bindings.end(),
                                     [now](const store::BindingRecord& b) { return b.expires_at > now; });
      size_t lapsed = static_cast<size_t>(bindings.end() - live_end);
      for (auto b = live_end; b != bindings.end(); ++b) {
        unindex_locked(shard, *b);
        removed.push_back(std::move(*b));
      }
      bindings.erase(live_end, bindings.end());
      for (const auto& b : bindings) earliest = std::min(earliest, b.expires_at);
      if (lapsed > 0) binding_count_.fetch_sub(lapsed, std::memory_order_relaxed);
      if (bindings.empty()) {
        shard.aors.erase(it++);  // absl: erasing does not invalidate the other iterators
        aor_count_.fetch_sub(1, std::memory_order_relaxed);
        continue;
      }
      if (lapsed > 0) it->second.version = ++shard.last_version;
      ++it;
    }
    shard.earliest_expiry = earliest;
  }
  return removed;
}

Location::Snapshot Location::snapshot(std::string_view aor) const {
  Snapshot snap;
  Shard& shard = shard_for(aor);
  std::lock_guard lock(shard.mutex);
  auto it = shard.aors.find(key(aor));
  if (it == shard.aors.end()) return snap;
  snap.bindings = it->second.bindings;
  snap.version = it->second.version;
  return snap;
}

bool Location::commit(std::string_view aor, uint64_t version, std::span<const std::string> remove_ids,
                      std::vector<store::BindingRecord> upserts) {
  Shard& shard = shard_for(aor);
  std::lock_guard lock(shard.mutex);
  auto it = shard.aors.find(key(aor));
  uint64_t current = it == shard.aors.end() ? 0 : it->second.version;
  if (current != version) return false;
  if (it == shard.aors.end()) {
    if (upserts.empty()) return true;  // removals from an AOR with no binding: nothing to do
    it = shard.aors.try_emplace(std::string(aor)).first;
    aor_count_.fetch_add(1, std::memory_order_relaxed);
  }
  AorEntry& entry = it->second;
  for (const auto& id : remove_ids) erase_locked(shard, entry, id, nullptr);
  for (auto& u : upserts) {
    if (u.aor != aor) u.aor.assign(aor);
    insert_locked(shard, entry, std::move(u));
  }
  touched_locked(shard, aor);
  return true;
}

std::vector<store::BindingRecord> Location::list(std::string_view substring_filter, size_t limit) const {
  std::vector<store::BindingRecord> out;
  if (limit == 0) return out;
  auto matches = [&](const store::BindingRecord& b) {
    return substring_filter.empty() || b.aor.find(substring_filter) != std::string::npos ||
           b.contact.find(substring_filter) != std::string::npos;
  };
  std::vector<const store::BindingRecord*> picked;
  for (const auto& s : shards_) {
    std::lock_guard lock(s->mutex);
    picked.clear();
    for (const auto& [aor, entry] : s->aors)
      for (const auto& b : entry.bindings)
        if (matches(b)) picked.push_back(&b);
    // Only this shard's first `limit` can make the overall first `limit`: copy no more than that.
    auto by_order = [](const store::BindingRecord* a, const store::BindingRecord* b) { return list_order(*a, *b); };
    if (picked.size() > limit) {
      std::nth_element(picked.begin(), picked.begin() + static_cast<std::ptrdiff_t>(limit), picked.end(), by_order);
      picked.resize(limit);
    }
    for (const auto* b : picked) out.push_back(*b);
  }
  std::sort(out.begin(), out.end(), list_order);
  if (out.size() > limit) out.resize(limit);
  return out;
}

std::vector<store::BindingRecord> Location::find_by_flow(const net::Flow& flow) const {
  std::vector<store::BindingRecord> out;
  for (const auto& s : shards_) {
    std::lock_guard lock(s->mutex);
    auto keys = s->by_flow.find(flow);
    if (keys == s->by_flow.end()) continue;
    for (const auto& [aor, id] : keys->second) {
      auto entry = s->aors.find(aor);
      if (entry == s->aors.end()) continue;
      for (const auto& b : entry->second.bindings)
        if (b.binding_id == id) out.push_back(b);
    }
  }
  std::sort(out.begin(), out.end(), list_order);
  return out;
}

}  // namespace pinhole::registrar
