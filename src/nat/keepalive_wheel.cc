// Hashed timer wheel with intrusive 32-bit links.
#include "nat/keepalive_wheel.h"

#include <algorithm>
#include <bit>

namespace pinhole::nat {

KeepaliveWheel::KeepaliveWheel(uint64_t start_tick, uint32_t slots)
    : heads_(std::bit_ceil(slots < 2 ? 2U : slots), kNone), mask_(heads_.size() - 1), current_(start_tick) {}

std::optional<uint64_t> KeepaliveWheel::due(uint32_t id) const {
  if (!scheduled(id)) return std::nullopt;
  return nodes_[id].due;
}

void KeepaliveWheel::schedule(uint32_t id, uint64_t due_tick) {
  if (id >= nodes_.size()) nodes_.resize(static_cast<size_t>(id) + 1);
  if (nodes_[id].due != kUnscheduled) unlink(id);
  // Anything already due goes to the next tick: advance() only visits slots after current_.
  if (due_tick <= current_) due_tick = current_ + 1;
  Node& n = nodes_[id];
  n.due = due_tick;
  uint32_t& head = heads_[slot_of(due_tick)];
  n.prev = kNone;
  n.next = head;
  if (head != kNone) nodes_[head].prev = id;
  head = id;
  ++armed_;
  // The first tick after current_ that visits this slot (due_tick itself within one turn).
  uint64_t visit = current_ + 1 + ((due_tick - current_ - 1) & mask_);
  if (visit < scan_from_) scan_from_ = visit;
}

void KeepaliveWheel::cancel(uint32_t id) {
  if (scheduled(id)) unlink(id);
}

void KeepaliveWheel::unlink(uint32_t id) {
  Node& n = nodes_[id];
  if (n.prev != kNone) {
    nodes_[n.prev].next = n.next;
  } else {
    heads_[slot_of(n.due)] = n.next;
  }
  if (n.next != kNone) nodes_[n.next].prev = n.prev;
  n.prev = kNone;
  n.next = kNone;
  n.due = kUnscheduled;
  --armed_;
}

void KeepaliveWheel::advance(uint64_t now_tick, std::vector<uint32_t>& fired) {
  fired.clear();
  if (now_tick <= current_) return;
  // Past one full turn every slot is visited once; the due check below still fires exactly the
  // entries whose tick has come, whichever round they were on.
  uint64_t steps = now_tick - current_;
  if (steps > heads_.size()) steps = heads_.size();
  for (uint64_t s = 1; s <= steps; ++s) {
    uint32_t id = heads_[slot_of(current_ + s)];
    while (id != kNone) {
      uint32_t next = nodes_[id].next;
      if (nodes_[id].due <= now_tick) {
        unlink(id);
        fired.push_back(id);
      }
      id = next;
    }
  }
  current_ = now_tick;
}

std::optional<uint64_t> KeepaliveWheel::next_tick() const {
  if (armed_ == 0) return std::nullopt;
  for (uint64_t t = std::max(scan_from_, current_ + 1); t <= current_ + heads_.size(); ++t) {
    if (heads_[slot_of(t)] != kNone) {
      scan_from_ = t;
      return t;
    }
  }
  return current_ + 1;  // unreachable while armed_ > 0
}

size_t KeepaliveWheel::memory_bytes() const {
  return heads_.capacity() * sizeof(uint32_t) + nodes_.capacity() * sizeof(Node);
}

}  // namespace pinhole::nat
