// UserDirectory: copy-on-write snapshots of the user table.
#include "registrar/user_directory.h"

#include <algorithm>
#include <tuple>

namespace pinhole::registrar {
namespace {

// Lower-cases `hex` in place; false when it is not empty and not `length` hex digits.
bool normalise_hex(std::string& hex, size_t length) {
  if (hex.empty()) return true;
  if (hex.size() != length) return false;
  for (char& c : hex) {
    if (c >= 'A' && c <= 'F') c = static_cast<char>(c - 'A' + 'a');
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

constexpr size_t kMd5HexSize = 32;
constexpr size_t kSha256HexSize = 64;

Status check_and_normalise(store::UserRecord& user) {
  if (user.username.empty() || user.realm.empty()) return kUserBadName;
  if (!normalise_hex(user.ha1_md5, kMd5HexSize) || !normalise_hex(user.ha1_sha256, kSha256HexSize)) return kUserBadHa1;
  if (user.ha1_md5.empty() && user.ha1_sha256.empty()) return kUserNoHa1;
  return {};
}

}  // namespace

size_t UserDirectory::KeyHash::operator()(const KeyView& k) const {
  // Any reasonable mix will do: the key set is chosen by the operator, not by the network.
  size_t h = std::hash<std::string_view>{}(k.first);
  return h ^ (std::hash<std::string_view>{}(k.second) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}

UserDirectory::UserDirectory() : table_(std::make_shared<const Table>()) {}
UserDirectory::~UserDirectory() = default;

std::shared_ptr<const UserDirectory::Table> UserDirectory::snapshot() const {
  std::lock_guard lock(snapshot_mutex_);
  return table_;
}

void UserDirectory::publish(Table table) {
  ++generation_;
  std::shared_ptr<const Table> next = std::make_shared<const Table>(std::move(table));
  {
    std::lock_guard lock(snapshot_mutex_);
    table_.swap(next);
  }
  // `next` now holds the previous snapshot: freed here, outside the reader's lock, unless a
  // reader still uses it.
}

UserDirectory::Table UserDirectory::build_table(std::vector<store::UserRecord> users, size_t& skipped) {
  Table table;
  table.reserve(users.size());
  skipped = 0;
  for (auto& user : users) {
    if (!check_and_normalise(user).ok()) {
      ++skipped;
      continue;
    }
    Key key(user.realm, user.username);
    table.insert_or_assign(std::move(key), std::make_shared<const store::UserRecord>(std::move(user)));
  }
  return table;
}

size_t UserDirectory::replace_all(std::vector<store::UserRecord> users) {
  size_t skipped = 0;
  Table table = build_table(std::move(users), skipped);
  std::lock_guard lock(write_mutex_);
  publish(std::move(table));
  return skipped;
}

uint64_t UserDirectory::generation() const {
  std::lock_guard lock(write_mutex_);
  return generation_;
}

std::optional<size_t> UserDirectory::replace_all_if(uint64_t generation, std::vector<store::UserRecord> users) {
  size_t skipped = 0;
  Table table = build_table(std::move(users), skipped);  // outside the lock: O(users)
  std::lock_guard lock(write_mutex_);
  if (generation_ != generation) return std::nullopt;
  publish(std::move(table));
  return skipped;
}

Status UserDirectory::put(store::UserRecord user) {
  PINHOLE_TRY(check_and_normalise(user));
  auto record = std::make_shared<const store::UserRecord>(std::move(user));
  std::lock_guard lock(write_mutex_);
  Table table = *snapshot();
  table.insert_or_assign(Key(record->realm, record->username), std::move(record));
  publish(std::move(table));
  return {};
}

bool UserDirectory::remove(std::string_view username, std::string_view realm) {
  std::lock_guard lock(write_mutex_);
  auto current = snapshot();
  if (current->find(KeyView(realm, username)) == current->end()) return false;
  Table table = *current;
  table.erase(table.find(KeyView(realm, username)));
  publish(std::move(table));
  return true;
}

std::shared_ptr<const store::UserRecord> UserDirectory::find(std::string_view username, std::string_view realm) const {
  auto current = snapshot();
  auto it = current->find(KeyView(realm, username));
  if (it == current->end()) return nullptr;
  return it->second;
}

std::vector<store::UserRecord> UserDirectory::list() const {
  auto current = snapshot();
  std::vector<store::UserRecord> out;
  out.reserve(current->size());
  for (const auto& [key, record] : *current) out.push_back(*record);
  std::sort(out.begin(), out.end(), [](const store::UserRecord& a, const store::UserRecord& b) {
    return std::tie(a.realm, a.username) < std::tie(b.realm, b.username);
  });
  return out;
}

size_t UserDirectory::size() const { return snapshot()->size(); }

}  // namespace pinhole::registrar
