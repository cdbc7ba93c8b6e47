// Who owns which stream connection, and which connections are open.
//
// ConnectionTable: one per worker, touched only on that worker's thread; it holds the owning
// reference of every connection the worker accepted or opened, by connection id.
//
// ConnectionDirectory: one per layer, shared by every worker under a mutex (a lookup is a few
// hash probes; contention is low next to the syscalls around it). It answers what must be known
// on any thread at once: whether a connection id is open (flow_alive, send), which open
// connection of a worker goes to a remote endpoint (send_to reuse), and the connection limits
// (total, per source IP for accepted connections), so admission is decided in one place.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <tuple>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "net/address.h"
#include "net/flow.h"
#include "net/transport.h"
#include "transport/transport_layer.h"

namespace pinhole::transport {

class StreamConnection;

// Connection ids: the owning worker in the top 8 bits, a per-worker counter below (never 0).
inline constexpr int kWorkerShift = 56;
inline uint32_t worker_of(uint64_t connection_id) { return static_cast<uint32_t>(connection_id >> kWorkerShift); }

class ConnectionTable {
 public:
  void add(uint64_t id, std::shared_ptr<StreamConnection> connection);
  StreamConnection* find(uint64_t id) const;
  // Drops the table's reference; the connection lives on while an Asio handler holds one.
  void remove(uint64_t id);
  std::vector<std::shared_ptr<StreamConnection>> snapshot() const;
  size_t size() const { return by_id_.size(); }

 private:
  absl::flat_hash_map<uint64_t, std::shared_ptr<StreamConnection>> by_id_;
};

class ConnectionDirectory {
 public:
  explicit ConnectionDirectory(const ConnectionLimits& limits) : limits_(limits) {}

  // Registers a new connection if the limits allow it (per source IP only when `accepted`).
  // False: refused, nothing recorded.
  bool admit(const net::Flow& flow, bool accepted);
  void remove(uint64_t id);
  bool contains(uint64_t id) const;
  // The flow of an open connection of `worker` to `remote` over `transport` (the most recent).
  std::optional<net::Flow> find_reusable(uint32_t worker, net::Transport transport, const net::Endpoint& remote) const;
  size_t size() const;

 private:
  struct Entry {
    net::Flow flow;
    bool accepted;
  };
  using ReuseKey = std::tuple<uint32_t, net::Transport, net::Endpoint>;

  ConnectionLimits limits_;
  mutable std::mutex mu_;
  absl::flat_hash_map<uint64_t, Entry> open_;
  absl::flat_hash_map<ReuseKey, uint64_t> reuse_;
  absl::flat_hash_map<net::Address, uint32_t> per_ip_;
};

}  // namespace pinhole::transport
