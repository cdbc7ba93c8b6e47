// The keepalive engine's timer wheel: a hashed wheel of fixed-width ticks (10 ms by default) whose
// slots hold intrusive doubly linked lists of 32-bit endpoint ids, with rounds for deadlines
// further away than one turn.
//
// Why this shape: a million endpoints each need one pending deadline, re-armed every interval.
// A heap would cost O(log n) per re-arm and a pointer-rich node each; here an id costs 16 bytes
// (prev, next, due tick) in one flat array indexed by the id, re-arming is O(1), and advance() is
// O(due + slots passed) (plus the few entries that are more than one turn away, visited once per
// turn). With 16,384 slots of 10 ms a turn is 163.84 s, longer than any keepalive interval, so in
// practice only reason expiries of suppressed endpoints ride more than one round.
//
// Ticks are uint64 counts of `tick` since the caller's epoch: no wrap in any process lifetime.
//
// Ownership and threads: a wheel is owned by one KeepaliveEngine and used only by the thread
// that owns the engine. Ids are the caller's (dense, small: the wheel's arrays grow to the largest
// id scheduled).
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

namespace pinhole::nat {

class KeepaliveWheel {
 public:
  static constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();
  static constexpr uint32_t kDefaultSlots = 16384;

  // `slots` is rounded up to a power of two (at least 2). `start_tick` is "now" in ticks: nothing
  // at or before it will fire.
  explicit KeepaliveWheel(uint64_t start_tick = 0, uint32_t slots = kDefaultSlots);

  // Arms (or re-arms) `id` for `due_tick`. A due tick at or before the current tick fires at the
  // next advance(). O(1) (amortised: the id arrays may grow).
  void schedule(uint32_t id, uint64_t due_tick);
  // Disarms `id`; no-op when not armed. O(1).
  void cancel(uint32_t id);
  bool scheduled(uint32_t id) const { return id < nodes_.size() && nodes_[id].due != kUnscheduled; }
  std::optional<uint64_t> due(uint32_t id) const;

  // Moves the current tick to `now_tick` and appends to `fired` every id due at or before it
  // (each disarmed first, so the caller may re-arm it). `fired` is the caller's scratch vector
  // (cleared here), reused across calls so firing allocates nothing in steady state.
  // O(fired + slots passed), at most one full turn of slots however far time jumped.
  void advance(uint64_t now_tick, std::vector<uint32_t>& fired);

  // A tick at or before the earliest armed deadline (the first non-empty slot; it can be early
  // when that slot holds only later rounds, never late), or nullopt when nothing is armed. Scans at
  // most one turn of slots; in a busy engine the next slot is almost always non-empty.
  std::optional<uint64_t> next_tick() const;

  uint64_t current_tick() const { return current_; }
  size_t size() const { return armed_; }
  // Bytes held by the wheel's arrays (for the engine's memory accounting).
  size_t memory_bytes() const;
  void reserve(size_t ids) { nodes_.reserve(ids); }

 private:
  static constexpr uint64_t kUnscheduled = std::numeric_limits<uint64_t>::max();
  struct Node {
    uint32_t prev = kNone;  // kNone: first in its slot
    uint32_t next = kNone;
    uint64_t due = kUnscheduled;
  };
  void unlink(uint32_t id);
  size_t slot_of(uint64_t tick) const { return static_cast<size_t>(tick & mask_); }

  std::vector<uint32_t> heads_;  // one list head per slot
  std::vector<Node> nodes_;      // indexed by id
  uint64_t mask_;
  uint64_t current_;
  size_t armed_ = 0;
  // No slot for a tick in (current_, scan_from_) holds anything: next_tick() starts there, so a
  // few armed entries far ahead (a quiet engine asked for its deadline after every message) cost
  // one scan, not one per call. schedule() lowers it; cancel and advance keep it true.
  mutable uint64_t scan_from_ = 0;
};

}  // namespace pinhole::nat
