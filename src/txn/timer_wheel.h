// TimerWheel: the transaction table's timers (RFC 3261 Timers A–M) on a hierarchical timing wheel
// with O(1) schedule and cancel, and expiry in exact (deadline, schedule order) order.
//
// Why not a heap: stopped timers and the timers of retired transactions stayed in the table's old
// min-heap until they reached the top (lazy deletion), so under load Timers D/J/K kept 32 s of
// garbage and every pop sifted through ~10 MB (issue 3: 17–19 % of the edge's CPU after a burst).
// Here a stopped timer is unlinked at once and its node reused; nothing is ever garbage.
//
// Shape (the hierarchical wheel of Varghese & Lauck, placed as Tokio's and Linux's are):
//  - Time is cut into ticks of 2^tick_shift ns (default 2^20 ns = 1.048576 ms): a shift instead of
//    a division. Ticks only choose the bucket; every comparison with `now` uses the exact deadline.
//  - kLevels = 6 levels of kSlots = 64 slots; a level-L slot covers 64^L ticks, so the levels span
//    2^36 ticks (~834 days at the default tick). A timer goes to the level of the highest 6-bit
//    digit in which its tick differs from the wheel's current tick, so level 0 holds the current
//    64-tick block, level 1 the rest of the current 4096-tick block, and so on: each level's
//    timers are all earlier than the next level's, and each level's non-empty slots are those at
//    or after the current one, so the earliest slot is the lowest set bit of the lowest non-empty
//    level (a 64-bit occupancy mask per level: no scanning).
//  - Deadlines beyond the top level's block go to an overflow list, re-placed when the wheel's
//    time enters a new top-level block: correct for any duration.
//  - When time reaches an upper-level slot, its timers are re-placed (cascaded) one level down or
//    more; a timer is touched at most once per level on its way down (a 32 s timer: twice).
//  - Nodes live in one slab (vector) linked by 32-bit indices into intrusive doubly linked lists,
//    one per slot; freed nodes go on a free list, so in steady state nothing is allocated.
//
// Firing is exact, not tick-rounded: pop_expired(now) returns a timer only when its deadline <=
// now, in (deadline, schedule order) order, which is exactly the order the table's old heap gave
// (deadline, then FIFO by schedule order). The current tick's slot is sorted once when time
// reaches it (the lists are unordered otherwise); timers scheduled into it afterwards are put in
// order (they are usually the latest, so from the tail this is O(1)).
//
// next_deadline() is a LOWER BOUND of the earliest deadline, never later: each slot keeps the
// smallest deadline ever put into it since it was last empty, so the answer is exact unless the
// earliest timer of the earliest slot was cancelled, in which case it is earlier (one spurious
// wake-up: the advance that follows visits that slot and the bound becomes exact or moves past
// `now`). After pop_expired(now) has returned nullopt, next_deadline() is either nullopt or later
// than `now`, so an event loop that waits for it never spins.
//
// Time may be given out of order (a `now` earlier than a previous one): a deadline at or before
// the wheel's current tick is kept in the current tick's slot and still fires only when a `now`
// reaches it.
//
// Ownership and threads: a wheel is owned by one TransactionTable (or a test) and used only from
// the thread that owns it. It stores the owner's (id, tag) pair per timer and never looks inside.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "common/clock.h"

namespace pinhole::txn {

class TimerWheel {
 public:
  static constexpr int kSlotBits = 6;
  static constexpr uint32_t kSlots = 1U << kSlotBits;
  static constexpr int kLevels = 6;
  static constexpr int kDefaultTickShift = 20;  // 2^20 ns = 1.048576 ms per tick
  static constexpr uint32_t kNoNode = std::numeric_limits<uint32_t>::max();

  // Names one scheduled timer. Stale handles (fired, cancelled, or default) are harmless: the
  // generation no longer matches, so cancel() ignores them.
  struct Handle {
    uint32_t index = kNoNode;
    uint32_t generation = 0;
    bool empty() const { return index == kNoNode; }
  };

  struct Expired {
    uint64_t id = 0;
    uint16_t tag = 0;
    TimePoint deadline{};
  };

  // `tick_shift` (0..40): a tick is 2^tick_shift ns. Tests use small ticks to exercise the
  // cascades and the overflow list with short durations.
  explicit TimerWheel(int tick_shift = kDefaultTickShift);

  // Adds a timer due at `deadline` carrying the owner's (id, tag). `now` is the caller's time,
  // used only to position an empty wheel. O(1); allocates only when more timers are live than
  // ever before.
  Handle schedule(TimePoint now, TimePoint deadline, uint64_t id, uint16_t tag);
  // Removes the timer if it is still pending (true), and frees its node for reuse. O(1).
  bool cancel(Handle h);
  // The same for an owner that keeps only Handle::index (4 bytes a timer instead of 8): the timer
  // at `index` is cancelled only if it is pending with this (id, tag), which names one timer as
  // long as the owner never runs two timers with the same pair (the table: one per TimerName of a
  // transaction, ids never reused).
  bool cancel(uint32_t index, uint64_t id, uint16_t tag);
  // The earliest pending timer (by deadline, then schedule order) if its deadline <= now,
  // removed from the wheel (its handle is stale from now on); otherwise nullopt. Moves the
  // wheel's time forward to `now` on the way (cascading the upper-level slots it passes).
  // Amortised O(1) per timer plus O(levels) per call.
  std::optional<Expired> pop_expired(TimePoint now);
  // At or before the earliest pending deadline (see the file comment); nullopt when empty. O(levels).
  std::optional<TimePoint> next_deadline() const;

  size_t size() const { return live_; }
  bool empty() const { return live_ == 0; }
  // Nodes in the slab (live + free): never more than the most timers ever live at once.
  size_t node_capacity() const { return nodes_.size(); }
  Duration tick() const { return Duration(int64_t{1} << tick_shift_); }
  // Bytes held by the wheel (its arrays and the node slab), for memory accounting.
  size_t memory_bytes() const {
    return sizeof(*this) + nodes_.capacity() * sizeof(Node) + scratch_.capacity() * sizeof(uint32_t);
  }

 private:
  static constexpr uint32_t kWheelLists = kSlots * kLevels;
  static constexpr uint32_t kOverflowList = kWheelLists;
  static constexpr uint32_t kLists = kWheelLists + 1;
  static constexpr uint16_t kFreeList = 0xffff;
  static constexpr int kWheelBits = kSlotBits * kLevels;  // ticks spanned by all levels: 2^36

  struct Node {
    TimePoint deadline{};
    uint64_t seq = 0;  // schedule order: FIFO among equal deadlines
    uint64_t id = 0;
    uint32_t prev = kNoNode;
    uint32_t next = kNoNode;
    uint32_t generation = 0;
    uint16_t list = kFreeList;
    uint16_t tag = 0;
  };
  static_assert(sizeof(Node) <= 40, "a node per live timer: keep it small");
  struct List {
    uint32_t head = kNoNode;
    uint32_t tail = kNoNode;
  };
  struct Slot {
    uint32_t list = 0;
    uint64_t start = 0;  // first tick the slot covers
  };

  uint64_t tick_of(TimePoint t) const;
  TimePoint time_of(uint64_t tick) const;
  uint32_t current_list() const { return static_cast<uint32_t>(elapsed_ & (kSlots - 1)); }
  static bool before(const Node& a, const Node& b) {
    return a.deadline != b.deadline ? a.deadline < b.deadline : a.seq < b.seq;
  }
  // Puts node `n` (deadline set) in the list its tick belongs to relative to elapsed_.
  void place(uint32_t n);
  void append(uint32_t list, uint32_t n);
  void insert_sorted(uint32_t list, uint32_t n);
  void unlink(uint32_t n);
  void release(uint32_t n);
  void sort_current();
  // The earliest non-empty slot (the overflow list counts as a slot starting at the next
  // top-level block); nullopt when the wheel is empty.
  std::optional<Slot> next_slot() const;
  void set_elapsed(uint64_t tick);

  int tick_shift_;
  uint64_t elapsed_ = 0;         // the current tick (biased, see tick_of)
  bool current_sorted_ = false;  // the current tick's list is in (deadline, seq) order
  uint64_t next_seq_ = 0;
  size_t live_ = 0;
  uint32_t free_ = kNoNode;
  std::array<uint64_t, kLevels> occupied_{};  // bit s of level L: list L*64+s is non-empty
  std::array<List, kLists> lists_{};
  // Per list: no pending deadline in it is earlier (the smallest deadline put in since it was
  // last empty; exact for the sorted current list).
  std::array<TimePoint, kLists> mins_{};
  std::vector<Node> nodes_;
  std::vector<uint32_t> scratch_;  // sort_current's buffer, kept to avoid reallocating
};

}  // namespace pinhole::txn
