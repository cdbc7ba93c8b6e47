// Per-worker transport counters. Each worker increments its own (relaxed atomics: no ordering is
// needed, only that counters() on another thread reads whole values); the layer sums them.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "transport/transport_layer.h"

namespace pinhole::transport {

struct WorkerCounters {
  using Cell = std::atomic<uint64_t>;
  Cell udp_datagrams_in{0}, udp_datagrams_out{0};
  Cell stream_messages_in{0}, stream_messages_out{0};
  Cell pings_answered{0}, pongs_received{0};
  Cell connections_accepted{0}, connections_opened{0}, connections_closed{0};
  std::array<Cell, 8> drops{};
  Cell send_failures{0};

  static void inc(Cell& c, uint64_t n = 1) { c.fetch_add(n, std::memory_order_relaxed); }
  void drop(DropReason r) { inc(drops[static_cast<size_t>(r)]); }

  void add_to(TransportCounters& out) const {
    auto get = [](const Cell& c) { return c.load(std::memory_order_relaxed); };
    out.udp_datagrams_in += get(udp_datagrams_in);
    out.udp_datagrams_out += get(udp_datagrams_out);
    out.stream_messages_in += get(stream_messages_in);
    out.stream_messages_out += get(stream_messages_out);
    out.pings_answered += get(pings_answered);
    out.pongs_received += get(pongs_received);
    out.connections_accepted += get(connections_accepted);
    out.connections_opened += get(connections_opened);
    out.connections_closed += get(connections_closed);
    for (size_t i = 0; i < drops.size(); ++i) out.drops[i] += get(drops[i]);
    out.send_failures += get(send_failures);
  }
};

}  // namespace pinhole::transport
