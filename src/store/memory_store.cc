// The in-memory store (see memory_store.h).
#include "store/memory_store.h"

#include <map>
#include <mutex>
#include <string>
#include <utility>

#include "store/lookup_thread.h"
#include "store/record_codec.h"

namespace pinhole::store {
namespace {

class MemoryStore final : public Store {
 public:
  MemoryStore() : lookups_([this](std::string_view aor) { return load_aor(aor); }) {}
  ~MemoryStore() override { lookups_.shutdown(); }
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  Result<std::vector<BindingRecord>> load_bindings() override {
    std::lock_guard lock(mutex_);
    std::vector<BindingRecord> out;
    for (const auto& [aor, bindings] : aors_)
      for (const auto& [id, b] : bindings) out.push_back(b);
    return out;  // map order is the promised (aor, binding_id) byte order
  }

  Result<std::vector<BindingRecord>> load_aor(std::string_view aor) override {
    std::lock_guard lock(mutex_);
    std::vector<BindingRecord> out;
    if (auto it = aors_.find(aor); it != aors_.end())
      for (const auto& [id, b] : it->second) out.push_back(b);
    return out;
  }

  void load_aor_async(std::string aor, std::function<void(Result<std::vector<BindingRecord>>)> done) override {
    lookups_.post(std::move(aor), std::move(done));
  }

  void save_binding(const BindingRecord& b) override {
    std::lock_guard lock(mutex_);
    auto& bindings = aors_[b.aor];
    bindings.insert_or_assign(b.binding_id, b);
    count_write();
  }

  void remove_binding(std::string_view aor, std::string_view binding_id) override {
    std::lock_guard lock(mutex_);
    if (auto it = aors_.find(aor); it != aors_.end()) {
      if (auto b = it->second.find(binding_id); b != it->second.end()) it->second.erase(b);
      if (it->second.empty()) aors_.erase(it);
    }
    count_write();
  }

  void remove_aor(std::string_view aor) override {
    std::lock_guard lock(mutex_);
    if (auto it = aors_.find(aor); it != aors_.end()) aors_.erase(it);
    count_write();
  }

  void save_keepalive(const KeepaliveRecord& k) override {
    if (k.reasons.empty()) {
      remove_keepalive(k.node, k.flow);
      return;
    }
    std::lock_guard lock(mutex_);
    keepalives_.insert_or_assign(std::pair(k.node, keepalive_flow_key(k.flow)), k);
    count_write();
  }

  void remove_keepalive(std::string_view node, const net::Flow& flow) override {
    std::lock_guard lock(mutex_);
    keepalives_.erase(std::pair(std::string(node), keepalive_flow_key(flow)));
    count_write();
  }

  Result<std::vector<KeepaliveRecord>> load_keepalives(std::string_view node) override {
    std::lock_guard lock(mutex_);
    std::vector<KeepaliveRecord> out;
    // Map order is (node, flow key) byte order: one node's endpoints are contiguous and sorted.
    for (auto it = keepalives_.lower_bound(std::pair(std::string(node), std::string()));
         it != keepalives_.end() && it->first.first == node; ++it)
      out.push_back(it->second);
    return out;
  }

  Status put_user(const UserRecord& u) override {
    PINHOLE_TRY(validate_user(u));
    std::lock_guard lock(mutex_);
    users_.insert_or_assign(std::pair(u.username, u.realm), u);
    return Status::Ok();
  }

  Result<bool> delete_user(std::string_view username, std::string_view realm) override {
    std::lock_guard lock(mutex_);
    return users_.erase(std::pair(std::string(username), std::string(realm))) > 0;
  }

  Result<std::vector<UserRecord>> list_users() override {
    std::lock_guard lock(mutex_);
    std::vector<UserRecord> out;
    out.reserve(users_.size());
    for (const auto& [key, u] : users_) out.push_back(u);
    return out;
  }

  void flush() override {}

  StoreStats stats() const override {
    std::lock_guard lock(mutex_);
    return stats_;
  }

  std::string_view kind() const override { return "memory"; }

 private:
  void count_write() {
    ++stats_.writes;
    ++stats_.batches;
  }

  mutable std::mutex mutex_;
  std::map<std::string, std::map<std::string, BindingRecord, std::less<>>, std::less<>> aors_;
  std::map<std::pair<std::string, std::string>, UserRecord> users_;            // (username, realm)
  std::map<std::pair<std::string, std::string>, KeepaliveRecord> keepalives_;  // (node, flow key)
  StoreStats stats_;
  // Last: its thread calls load_aor, so it stops before the maps go.
  LookupThread lookups_;
};

}  // namespace

std::unique_ptr<Store> make_memory_store() { return std::make_unique<MemoryStore>(); }

}  // namespace pinhole::store
