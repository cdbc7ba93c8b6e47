// Hierarchical timing wheel for the transaction table (see timer_wheel.h for the design).
#include "txn/timer_wheel.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <chrono>

namespace pinhole::txn {
namespace {

// Ticks are unsigned so that the digit arithmetic works; flipping the sign bit of the signed
// nanosecond count maps it onto uint64 in the same order (TimePoint{} - 1ns < TimePoint{}).
constexpr uint64_t kSignBit = uint64_t{1} << 63;
constexpr TimePoint kNever = TimePoint::max();

}  // namespace

TimerWheel::TimerWheel(int tick_shift) : tick_shift_(std::clamp(tick_shift, 0, 40)) { mins_.fill(kNever); }

uint64_t TimerWheel::tick_of(TimePoint t) const {
  const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  return (static_cast<uint64_t>(ns) ^ kSignBit) >> tick_shift_;
}

TimePoint TimerWheel::time_of(uint64_t tick) const {
  const auto ns = static_cast<int64_t>((tick << tick_shift_) ^ kSignBit);
  return TimePoint(std::chrono::duration_cast<Duration>(std::chrono::nanoseconds(ns)));
}

void TimerWheel::set_elapsed(uint64_t tick) {
  elapsed_ = tick;
  current_sorted_ = false;  // another list is current now (it is sorted when first popped from)
}

TimerWheel::Handle TimerWheel::schedule(TimePoint now, TimePoint deadline, uint64_t id, uint16_t tag) {
  // An empty wheel can be put anywhere: start at the caller's time, so the first timers land in
  // the low levels rather than cascading down from wherever the wheel last stopped.
  if (live_ == 0) set_elapsed(tick_of(now));
  uint32_t n = free_;
  if (n != kNoNode) {
    free_ = nodes_[n].next;
  } else {
    assert(nodes_.size() < kNoNode);
    n = static_cast<uint32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  Node& node = nodes_[n];
  node.deadline = deadline;
  node.seq = next_seq_++;
  node.id = id;
  node.tag = tag;
  ++live_;
  place(n);
  return Handle{n, node.generation};
}

bool TimerWheel::cancel(Handle h) {
  if (h.index >= nodes_.size()) return false;
  const Node& node = nodes_[h.index];
  if (node.list == kFreeList || node.generation != h.generation) return false;
  unlink(h.index);
  release(h.index);
  return true;
}

bool TimerWheel::cancel(uint32_t index, uint64_t id, uint16_t tag) {
  if (index >= nodes_.size()) return false;
  const Node& node = nodes_[index];
  if (node.list == kFreeList || node.id != id || node.tag != tag) return false;
  unlink(index);
  release(index);
  return true;
}

std::optional<TimerWheel::Expired> TimerWheel::pop_expired(TimePoint now) {
  const uint64_t target = tick_of(now);
  if (live_ == 0) {
    if (target > elapsed_) set_elapsed(target);
    return std::nullopt;
  }
  for (;;) {
    const uint32_t cur = current_list();
    if (lists_[cur].head != kNoNode) {
      // Everything before elapsed_ has been popped or is in here (clamped), and everything in
      // here is earlier than any other list: its first entry in (deadline, seq) order is the
      // earliest timer of the wheel.
      if (!current_sorted_) sort_current();
      const uint32_t h = lists_[cur].head;
      const Node& node = nodes_[h];
      if (node.deadline > now) return std::nullopt;
      Expired e{node.id, node.tag, node.deadline};
      unlink(h);
      release(h);
      return e;
    }
    if (target <= elapsed_) return std::nullopt;
    auto slot = next_slot();
    if (!slot || slot->start > target) {
      // No slot starts on the way to `target`: jumping there keeps every timer's placement valid
      // (each still differs from the new time in the same digit, and is later in it).
      set_elapsed(target);
      return std::nullopt;
    }
    set_elapsed(slot->start);
    if (slot->list < kSlots) continue;  // a level-0 slot: the current tick's list now
    // An upper-level slot (or the overflow list) whose time has come: re-place its timers
    // relative to the new time; they go to lower levels (overflow ones may stay in overflow).
    uint32_t n = lists_[slot->list].head;
    lists_[slot->list] = List{};
    mins_[slot->list] = kNever;
    if (slot->list < kWheelLists) occupied_[slot->list / kSlots] &= ~(uint64_t{1} << (slot->list % kSlots));
    while (n != kNoNode) {
      const uint32_t next = nodes_[n].next;
      place(n);
      n = next;
    }
  }
}

std::optional<TimePoint> TimerWheel::next_deadline() const {
  auto slot = next_slot();
  if (!slot) return std::nullopt;
  return mins_[slot->list];
}

void TimerWheel::place(uint32_t n) {
  Node& node = nodes_[n];
  // A deadline already past (time given out of order, a 0-duration timer) waits in the current
  // tick's list, where every entry is compared with `now` exactly.
  const uint64_t when = std::max(tick_of(node.deadline), elapsed_);
  const uint64_t differing = (when ^ elapsed_) | (kSlots - 1);
  uint32_t list = kOverflowList;
  if ((differing >> kWheelBits) == 0) {
    const auto level = static_cast<uint32_t>((63 - std::countl_zero(differing)) / kSlotBits);
    const auto slot = static_cast<uint32_t>((when >> (level * kSlotBits)) & (kSlots - 1));
    list = level * kSlots + slot;
    occupied_[level] |= uint64_t{1} << slot;
  }
  if (list == current_list() && current_sorted_) {
    insert_sorted(list, n);
  } else {
    append(list, n);
  }
  mins_[list] = std::min(mins_[list], node.deadline);
}

void TimerWheel::append(uint32_t list, uint32_t n) {
  Node& node = nodes_[n];
  List& l = lists_[list];
  node.list = static_cast<uint16_t>(list);
  node.next = kNoNode;
  node.prev = l.tail;
  if (l.tail != kNoNode) {
    nodes_[l.tail].next = n;
  } else {
    l.head = n;
  }
  l.tail = n;
}

void TimerWheel::insert_sorted(uint32_t list, uint32_t n) {
  // New timers have the largest seq and usually the largest deadline: search from the tail.
  uint32_t after = lists_[list].tail;
  while (after != kNoNode && before(nodes_[n], nodes_[after])) after = nodes_[after].prev;
  if (after == lists_[list].tail) {
    append(list, n);
    return;
  }
  Node& node = nodes_[n];
  List& l = lists_[list];
  node.list = static_cast<uint16_t>(list);
  node.prev = after;
  node.next = after == kNoNode ? l.head : nodes_[after].next;
  nodes_[node.next].prev = n;  // not the tail, so there is a next
  if (after == kNoNode) {
    l.head = n;
  } else {
    nodes_[after].next = n;
  }
}

void TimerWheel::unlink(uint32_t n) {
  Node& node = nodes_[n];
  const uint32_t list = node.list;
  List& l = lists_[list];
  if (node.prev != kNoNode) {
    nodes_[node.prev].next = node.next;
  } else {
    l.head = node.next;
  }
  if (node.next != kNoNode) {
    nodes_[node.next].prev = node.prev;
  } else {
    l.tail = node.prev;
  }
  if (l.head == kNoNode) {
    mins_[list] = kNever;
    if (list < kWheelLists) occupied_[list / kSlots] &= ~(uint64_t{1} << (list % kSlots));
  } else if (list == current_list() && current_sorted_) {
    mins_[list] = nodes_[l.head].deadline;  // sorted: the bound stays exact
  }
}

void TimerWheel::release(uint32_t n) {
  Node& node = nodes_[n];
  node.list = kFreeList;
  ++node.generation;  // outstanding handles to this node go stale
  node.prev = kNoNode;
  node.next = free_;
  free_ = n;
  --live_;
}

void TimerWheel::sort_current() {
  const uint32_t list = current_list();
  scratch_.clear();
  for (uint32_t n = lists_[list].head; n != kNoNode; n = nodes_[n].next) scratch_.push_back(n);
  auto by_expiry = [this](uint32_t a, uint32_t b) { return before(nodes_[a], nodes_[b]); };
  // Usually already in order (one schedule order, one duration); sort only when not.
  if (!std::is_sorted(scratch_.begin(), scratch_.end(), by_expiry))
    std::sort(scratch_.begin(), scratch_.end(), by_expiry);
  lists_[list] = List{};
  for (uint32_t n : scratch_) append(list, n);
  mins_[list] = nodes_[lists_[list].head].deadline;
  current_sorted_ = true;
}

std::optional<TimerWheel::Slot> TimerWheel::next_slot() const {
  for (uint32_t level = 0; level < kLevels; ++level) {
    if (occupied_[level] == 0) continue;
    const auto slot = static_cast<uint32_t>(std::countr_zero(occupied_[level]));
    const uint32_t shift = level * kSlotBits;
    const uint64_t block = (elapsed_ >> (shift + kSlotBits)) << (shift + kSlotBits);
    const uint64_t start = block | (uint64_t{slot} << shift);
    // Placement keeps every non-empty slot at or after the current time's digit (level 0) or
    // strictly after it (upper levels), so the lowest set bit is the earliest slot.
    assert(start >= elapsed_ && (level == 0 || start > elapsed_));
    return Slot{level * kSlots + slot, start};
  }
  if (lists_[kOverflowList].head == kNoNode) return std::nullopt;
  // Overflow timers are in a later top-level block than the current time, so the last block
  // cannot be current; saturate anyway rather than wrap.
  const uint64_t top = elapsed_ >> kWheelBits;
  const uint64_t start = top == (~uint64_t{0} >> kWheelBits) ? ~uint64_t{0} : (top + 1) << kWheelBits;
  return Slot{kOverflowList, start};
}

}  // namespace pinhole::txn
