// open_store() and the helpers every Store implementation shares (see store.h).
#include "store/store.h"

#include <algorithm>
#include <string>
#include <tuple>
#include <utility>

#include "store/memory_store.h"
#include "store/record_codec.h"
#include "store/redis_store.h"
#include "store/sqlite_store.h"
#include "store/store_url.h"

namespace pinhole::store {
namespace {

bool is_lower_hex(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

Result<std::unique_ptr<Store>> open_store(std::string_view url, const StoreOptions& options) {
  Result<StoreUrl> parsed = parse_store_url(url);
  if (!parsed) return parsed.error();
  switch (parsed->kind) {
    case StoreUrl::Kind::kMemory:
      return make_memory_store();
    case StoreUrl::Kind::kSqlite:
      return open_sqlite_store(parsed->path, options);
    case StoreUrl::Kind::kRedis:
      return open_redis_store(RedisTarget{parsed->host, parsed->port, parsed->db}, options);
  }
  return Error{500, "unknown store kind"};
}

Status validate_user(const UserRecord& u) {
  if (u.username.empty()) return Error{400, "user without a username"};
  if (!u.ha1_md5.empty() && (u.ha1_md5.size() != 32 || !is_lower_hex(u.ha1_md5)))
    return Error{400, "ha1_md5 is not 32 lowercase hex digits"};
  if (!u.ha1_sha256.empty() && (u.ha1_sha256.size() != 64 || !is_lower_hex(u.ha1_sha256)))
    return Error{400, "ha1_sha256 is not 64 lowercase hex digits"};
  if (u.ha1_md5.empty() && u.ha1_sha256.empty()) return Error{400, "user without any HA1"};
  return Status::Ok();
}

void sort_bindings(std::vector<BindingRecord>& bindings) {
  std::sort(bindings.begin(), bindings.end(), [](const BindingRecord& a, const BindingRecord& b) {
    return std::tie(a.aor, a.binding_id) < std::tie(b.aor, b.binding_id);
  });
}

void sort_users(std::vector<UserRecord>& users) {
  std::sort(users.begin(), users.end(), [](const UserRecord& a, const UserRecord& b) {
    return std::tie(a.username, a.realm) < std::tie(b.username, b.realm);
  });
}

void sort_keepalives(std::vector<KeepaliveRecord>& keepalives) {
  // Keys computed once: the comparison would otherwise format two flows per step.
  std::vector<std::pair<std::string, KeepaliveRecord>> keyed;
  keyed.reserve(keepalives.size());
  for (KeepaliveRecord& k : keepalives) keyed.emplace_back(keepalive_flow_key(k.flow), std::move(k));
  std::sort(keyed.begin(), keyed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  keepalives.clear();
  for (auto& [key, k] : keyed) keepalives.push_back(std::move(k));
}

}  // namespace pinhole::store
