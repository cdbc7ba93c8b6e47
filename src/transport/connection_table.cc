#include "transport/connection_table.h"

#include <utility>

namespace pinhole::transport {

void ConnectionTable::add(uint64_t id, std::shared_ptr<StreamConnection> connection) {
  by_id_[id] = std::move(connection);
}

StreamConnection* ConnectionTable::find(uint64_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second.get();
}

void ConnectionTable::remove(uint64_t id) { by_id_.erase(id); }

std::vector<std::shared_ptr<StreamConnection>> ConnectionTable::snapshot() const {
  std::vector<std::shared_ptr<StreamConnection>> out;
  out.reserve(by_id_.size());
  for (const auto& [id, connection] : by_id_) out.push_back(connection);
  return out;
}

bool ConnectionDirectory::admit(const net::Flow& flow, bool accepted) {
  const uint64_t id = flow.connection_id;
  const net::Endpoint& remote = flow.remote;
  std::lock_guard lock(mu_);
  if (open_.size() >= limits_.max_connections) return false;
  if (accepted) {
    uint32_t& count = per_ip_[remote.address];
    if (count >= limits_.max_per_source_ip) {
      if (count == 0) per_ip_.erase(remote.address);
      return false;
    }
    ++count;
  }
  open_.emplace(id, Entry{flow, accepted});
  reuse_[ReuseKey{worker_of(id), flow.transport, remote}] = id;
  return true;
}

void ConnectionDirectory::remove(uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = open_.find(id);
  if (it == open_.end()) return;
  const Entry& e = it->second;
  auto reuse = reuse_.find(ReuseKey{worker_of(id), e.flow.transport, e.flow.remote});
  if (reuse != reuse_.end() && reuse->second == id) reuse_.erase(reuse);
  if (e.accepted) {
    auto ip = per_ip_.find(e.flow.remote.address);
    if (ip != per_ip_.end() && --ip->second == 0) per_ip_.erase(ip);
  }
  open_.erase(it);
}

bool ConnectionDirectory::contains(uint64_t id) const {
  std::lock_guard lock(mu_);
  return open_.contains(id);
}

std::optional<net::Flow> ConnectionDirectory::find_reusable(uint32_t worker, net::Transport transport,
                                                            const net::Endpoint& remote) const {
  std::lock_guard lock(mu_);
  auto it = reuse_.find(ReuseKey{worker, transport, remote});
  if (it == reuse_.end()) return std::nullopt;
  auto entry = open_.find(it->second);
  if (entry == open_.end()) return std::nullopt;
  return entry->second.flow;
}

size_t ConnectionDirectory::size() const {
  std::lock_guard lock(mu_);
  return open_.size();
}

}  // namespace pinhole::transport
