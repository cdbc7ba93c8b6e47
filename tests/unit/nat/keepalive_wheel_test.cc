// Timer wheel: exact firing ticks, cancel/re-arm, rounds beyond one turn, time jumps, next_tick.
#include "nat/keepalive_wheel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <vector>

namespace pinhole::nat {
namespace {

std::vector<uint32_t> fire(KeepaliveWheel& w, uint64_t tick) {
  std::vector<uint32_t> out;
  w.advance(tick, out);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(KeepaliveWheel, FiresAtItsTickNotBefore) {
  KeepaliveWheel w(100, 64);
  w.schedule(1, 105);
  w.schedule(2, 110);
  w.schedule(3, 105);
  EXPECT_EQ(w.size(), 3U);
  EXPECT_TRUE(fire(w, 104).empty());
  EXPECT_EQ(fire(w, 105), (std::vector<uint32_t>{1, 3}));
  EXPECT_FALSE(w.scheduled(1));
  EXPECT_TRUE(w.scheduled(2));
  EXPECT_TRUE(fire(w, 109).empty());
  EXPECT_EQ(fire(w, 110), (std::vector<uint32_t>{2}));
  EXPECT_EQ(w.size(), 0U);
}

TEST(KeepaliveWheel, CancelAndRearm) {
  KeepaliveWheel w(0, 16);
  w.schedule(7, 5);
  w.schedule(8, 5);
  w.cancel(7);
  w.cancel(7);   // twice is fine
  w.cancel(99);  // never scheduled
  w.schedule(8, 9);
  EXPECT_EQ(w.due(8), 9U);
  EXPECT_FALSE(w.due(7).has_value());
  EXPECT_TRUE(fire(w, 8).empty());
  EXPECT_EQ(fire(w, 9), (std::vector<uint32_t>{8}));
}

TEST(KeepaliveWheel, LaterRoundsWaitForTheirTurn) {
  KeepaliveWheel w(0, 8);  // a turn is 8 ticks
  w.schedule(1, 3);
  w.schedule(2, 3 + 8);       // same slot, next round
  w.schedule(3, 3 + 8 * 10);  // same slot, ten rounds on
  EXPECT_EQ(fire(w, 3), (std::vector<uint32_t>{1}));
  EXPECT_TRUE(fire(w, 10).empty());
  EXPECT_EQ(fire(w, 11), (std::vector<uint32_t>{2}));
  for (uint64_t t = 12; t < 83; ++t) EXPECT_TRUE(fire(w, t).empty()) << t;
  EXPECT_EQ(fire(w, 83), (std::vector<uint32_t>{3}));
}

TEST(KeepaliveWheel, JumpFiresEverythingDueOnce) {
  KeepaliveWheel w(0, 8);
  for (uint32_t id = 0; id < 20; ++id) w.schedule(id, 1 + id * 3);  // ticks 1..58, several turns
  auto fired = fire(w, 30);                                         // jump past several turns at once
  EXPECT_EQ(fired, (std::vector<uint32_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));
  EXPECT_EQ(fire(w, 1000).size(), 10U);
  EXPECT_EQ(w.size(), 0U);
}

TEST(KeepaliveWheel, PastDueFiresOnNextAdvance) {
  KeepaliveWheel w(50, 16);
  w.schedule(4, 10);  // already past
  EXPECT_EQ(w.due(4), 51U);
  EXPECT_EQ(fire(w, 51), (std::vector<uint32_t>{4}));
}

TEST(KeepaliveWheel, RearmFromInsideAFiringIsKept) {
  KeepaliveWheel w(0, 8);
  w.schedule(1, 2);
  std::vector<uint32_t> out;
  w.advance(2, out);
  ASSERT_EQ(out, (std::vector<uint32_t>{1}));
  w.schedule(1, 2 + 8);  // same slot, next turn
  EXPECT_TRUE(fire(w, 9).empty());
  EXPECT_EQ(fire(w, 10), (std::vector<uint32_t>{1}));
}

TEST(KeepaliveWheel, NextTickIsNeverLate) {
  KeepaliveWheel w(0, 16);
  EXPECT_FALSE(w.next_tick().has_value());
  w.schedule(1, 40);  // beyond one turn: next_tick may be early, never late
  ASSERT_TRUE(w.next_tick().has_value());
  EXPECT_LE(*w.next_tick(), 40U);
  w.schedule(2, 5);
  EXPECT_EQ(w.next_tick(), 5U);
  (void)fire(w, 5);
  EXPECT_LE(*w.next_tick(), 40U);
  EXPECT_GT(*w.next_tick(), 5U);
}

// next_tick() remembers where its last scan stopped; against a model that knows every deadline,
// through random schedules, re-arms, cancels and advances (some beyond one turn), it is never late
// and never before the next tick.
TEST(KeepaliveWheel, NextTickAgainstAModel) {
  KeepaliveWheel w(0, 64);
  std::map<uint32_t, uint64_t> armed;
  std::vector<uint32_t> out;
  uint64_t now = 0;
  uint64_t seed = 12345;
  auto next = [&seed](uint64_t n) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return (seed >> 33) % n;
  };
  for (int step = 0; step < 20000; ++step) {
    auto id = static_cast<uint32_t>(next(32));
    switch (next(4)) {
      case 0:
      case 1: {
        uint64_t due = now + 1 + next(next(2) == 0 ? 10 : 300);
        w.schedule(id, due);
        armed[id] = due;
        break;
      }
      case 2:
        w.cancel(id);
        armed.erase(id);
        break;
      default:
        now += next(20);
        w.advance(now, out);
        for (uint32_t fired : out) armed.erase(fired);
        break;
    }
    auto t = w.next_tick();
    if (armed.empty()) {
      ASSERT_FALSE(t.has_value()) << "step " << step;
      continue;
    }
    uint64_t earliest = UINT64_MAX;
    for (const auto& [i, due] : armed) earliest = std::min(earliest, due);
    ASSERT_TRUE(t.has_value()) << "step " << step;
    ASSERT_LE(*t, earliest) << "late at step " << step;
    ASSERT_GT(*t, now) << "step " << step;
  }
}

}  // namespace
}  // namespace pinhole::nat
