// TimerWheel against a reference model (an ordered map of (deadline, schedule order)), plus the
// properties the transaction table and the event loop rely on: exact firing order (the old
// heap's), next_deadline never later than the earliest timer, no spin after an advance, node reuse.
#include "txn/timer_wheel.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <utility>
#include <vector>

namespace pinhole::txn {
namespace {

using std::chrono::hours;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;

// Pops everything due at `now`.
std::vector<TimerWheel::Expired> pop_all(TimerWheel& w, TimePoint now) {
  std::vector<TimerWheel::Expired> out;
  while (auto e = w.pop_expired(now)) out.push_back(*e);
  return out;
}

// The model: every live timer keyed by (deadline, schedule order), which is the order the
// table's heap fired them in and the order the wheel must reproduce exactly.
struct Model {
  struct Live {
    TimerWheel::Handle handle;
    uint64_t id;
  };
  std::map<std::pair<TimePoint, uint64_t>, Live> live;
  std::map<uint64_t, std::pair<TimePoint, uint64_t>> key_of_id;
};

struct ModelParams {
  int tick_shift;
  uint32_t seed;
  int steps;
  Duration max_duration;  // well beyond the wheel's span for small ticks
  Duration max_jump;
};

void run_model(const ModelParams& p) {
  SCOPED_TRACE(testing::Message() << "tick_shift=" << p.tick_shift << " seed=" << p.seed);
  TimerWheel wheel(p.tick_shift);
  Model model;
  std::mt19937_64 rng(p.seed);
  auto uniform = [&](int64_t lo, int64_t hi) { return std::uniform_int_distribution<int64_t>(lo, hi)(rng); };
  const int64_t tick_ns = wheel.tick().count();
  // Starts off the tick grid and before the epoch, so negative times and unaligned deadlines are covered.
  TimePoint now = TimePoint{} - seconds(1) + nanoseconds(uniform(0, 1'000'000));
  uint64_t next_id = 1;
  uint64_t seq = 0;
  size_t max_live = 0;
  std::vector<TimerWheel::Handle> dead;  // fired or cancelled: cancelling them must do nothing
  uint64_t fired = 0;
  uint64_t cancelled = 0;

  auto check_fire = [&](const TimerWheel::Expired& e) {
    ASSERT_FALSE(model.live.empty()) << "fired with nothing live";
    auto first = model.live.begin();
    // Exactly the earliest (deadline, schedule order): implies never early, FIFO among equals.
    ASSERT_EQ(e.id, first->second.id);
    ASSERT_EQ(e.deadline, first->first.first);
    ASSERT_LE(e.deadline, now) << "fired before its deadline";
    EXPECT_EQ(e.tag, static_cast<uint16_t>(e.id * 7));
    dead.push_back(first->second.handle);
    model.key_of_id.erase(e.id);
    model.live.erase(first);
    ++fired;
  };

  auto advance_to = [&](TimePoint t) {
    now = t;
    for (const auto& e : pop_all(wheel, now)) {
      check_fire(e);
      if (testing::Test::HasFatalFailure()) return;
    }
    // Nothing left behind that was due: never late.
    if (!model.live.empty()) {
      ASSERT_GT(model.live.begin()->first.first, now) << "a due timer did not fire";
    }
    // No spin: a loop sleeping until next_deadline() will not be woken at or before `now` again.
    if (auto d = wheel.next_deadline()) {
      ASSERT_GT(*d, now);
    }
  };

  for (int step = 0; step < p.steps && !testing::Test::HasFatalFailure(); ++step) {
    const int64_t op = uniform(0, 99);
    if (op < 45) {
      // Durations: zero, sub-tick, around tick and level boundaries, and far beyond the span.
      Duration after{};
      switch (uniform(0, 5)) {
        case 0:
          after = Duration(0);
          break;
        case 1:
          after = Duration(uniform(0, tick_ns * 2));
          break;
        case 2:
          after = Duration(uniform(0, tick_ns * 64 * 64));
          break;
        case 3:
          after = Duration(uniform(0, tick_ns * (int64_t{1} << 20)));
          break;
        default:
          after = Duration(uniform(0, p.max_duration.count()));
          break;
      }
      // Sometimes the same deadline as a running timer, to check FIFO among equals across levels.
      TimePoint deadline = now + after;
      if (!model.live.empty() && uniform(0, 9) == 0) {
        auto it = model.live.begin();
        std::advance(it, uniform(0, static_cast<int64_t>(model.live.size()) - 1));
        if (it->first.first >= now) deadline = it->first.first;
      }
      const uint64_t id = next_id++;
      auto h = wheel.schedule(now, deadline, id, static_cast<uint16_t>(id * 7));
      const auto key = std::make_pair(deadline, seq++);
      model.live.emplace(key, Model::Live{h, id});
      model.key_of_id.emplace(id, key);
      max_live = std::max(max_live, model.live.size());
    } else if (op < 65) {
      if (!model.live.empty()) {
        auto it = model.live.begin();
        std::advance(it, uniform(0, static_cast<int64_t>(model.live.size()) - 1));
        ASSERT_TRUE(wheel.cancel(it->second.handle));
        dead.push_back(it->second.handle);
        model.key_of_id.erase(it->second.id);
        model.live.erase(it);
        ++cancelled;
      }
      if (!dead.empty()) {
        // A stale handle, possibly to a node reused since: must not cancel anything.
        ASSERT_FALSE(wheel.cancel(dead[static_cast<size_t>(uniform(0, static_cast<int64_t>(dead.size()) - 1))]));
      }
    } else if (op < 80) {
      // The event loop: sleep until next_deadline(), never past the earliest timer.
      auto d = wheel.next_deadline();
      ASSERT_EQ(d.has_value(), !model.live.empty());
      if (d) {
        ASSERT_LE(*d, model.live.begin()->first.first) << "next_deadline later than the earliest timer";
        advance_to(std::max(*d, now));
      }
    } else if (op < 97) {
      const int64_t jump_kind = uniform(0, 3);
      Duration jump = jump_kind == 0   ? Duration(0)
                      : jump_kind == 1 ? Duration(uniform(1, tick_ns))
                      : jump_kind == 2 ? Duration(uniform(1, tick_ns * 300))
                                       : Duration(uniform(1, p.max_jump.count()));
      advance_to(now + jump);
    } else {
      // A `now` earlier than before (a caller whose clock reads are out of order): nothing
      // fires early, and timers scheduled "in the past" fire at their own deadline.
      now -= Duration(uniform(0, tick_ns * 3));
      advance_to(now);
    }
    ASSERT_EQ(wheel.size(), model.live.size());
    ASSERT_LE(wheel.node_capacity(), max_live) << "nodes not reused";
  }
  // Drain: everything still live fires exactly once, at or after its deadline, in order.
  while (!model.live.empty() && !testing::Test::HasFatalFailure()) {
    auto d = wheel.next_deadline();
    ASSERT_TRUE(d.has_value());
    advance_to(std::max(*d, now));
  }
  EXPECT_TRUE(wheel.empty());
  EXPECT_FALSE(wheel.next_deadline().has_value());
  // The run must have exercised both paths substantially.
  EXPECT_GT(fired, static_cast<uint64_t>(p.steps) / 10);
  EXPECT_GT(cancelled, static_cast<uint64_t>(p.steps) / 20);
}

// A 1 ns tick: the wheel spans 2^36 ns = 68.7 s, so 10-minute durations ride the overflow list
// and every level cascades often.
TEST(TimerWheelModelTest, NanosecondTicksWithOverflow) {
  for (uint32_t seed : {1U, 2U, 3U}) run_model({0, seed, 40'000, std::chrono::minutes(10), seconds(90)});
}

// ~1 µs ticks: a 70-minute span; durations up to 3 hours.
TEST(TimerWheelModelTest, MicrosecondTicks) {
  for (uint32_t seed : {11U, 12U}) run_model({10, seed, 40'000, hours(3), std::chrono::minutes(20)});
}

// The table's default tick with RFC-sized durations (T1 = 500 ms ... 64*T1 = 32 s) and beyond.
TEST(TimerWheelModelTest, DefaultTickProtocolDurations) {
  for (uint32_t seed : {21U, 22U}) run_model({TimerWheel::kDefaultTickShift, seed, 40'000, seconds(200), seconds(40)});
}

TEST(TimerWheelTest, FiresAtExactDeadlineNotTickRounded) {
  TimerWheel w;  // ~1 ms ticks
  const TimePoint t0 = TimePoint{} + seconds(1000);
  (void)w.schedule(t0, t0 + milliseconds(500) + nanoseconds(1), 1, 0);
  EXPECT_FALSE(w.pop_expired(t0 + milliseconds(500)).has_value());
  auto e = w.pop_expired(t0 + milliseconds(500) + nanoseconds(1));
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->id, 1u);
}

TEST(TimerWheelTest, NextDeadlineIsExactWithoutCancellations) {
  TimerWheel w;
  const TimePoint t0 = TimePoint{} + seconds(1000);
  EXPECT_FALSE(w.next_deadline().has_value());
  (void)w.schedule(t0, t0 + seconds(32), 1, 0);  // an upper level
  EXPECT_EQ(w.next_deadline(), t0 + seconds(32));
  (void)w.schedule(t0, t0 + milliseconds(500), 2, 0);
  EXPECT_EQ(w.next_deadline(), t0 + milliseconds(500));
  (void)w.schedule(t0, t0, 3, 0);  // 0-duration (reliable transports)
  EXPECT_EQ(w.next_deadline(), t0);
}

TEST(TimerWheelTest, NextDeadlineAfterCancelIsEarlierNeverLaterAndSettles) {
  TimerWheel w;
  const TimePoint t0 = TimePoint{} + seconds(1000);
  auto a = w.schedule(t0, t0 + milliseconds(500), 1, 0);
  (void)w.schedule(t0, t0 + milliseconds(500) + microseconds(300), 2, 0);  // same slot
  ASSERT_TRUE(w.cancel(a));
  auto d = w.next_deadline();
  ASSERT_TRUE(d.has_value());
  EXPECT_LE(*d, t0 + milliseconds(500) + microseconds(300));
  // The spurious wake-up fires nothing and leaves an exact answer behind.
  EXPECT_FALSE(w.pop_expired(*d).has_value());
  EXPECT_EQ(w.next_deadline(), t0 + milliseconds(500) + microseconds(300));
}

TEST(TimerWheelTest, EqualDeadlinesFireInScheduleOrderAcrossLevels) {
  // RFC 3261 with T2 == T1: Timer F (64*T1, started first, on an upper level) and the last
  // Timer E (restarted late, on level 0) share a deadline. The heap fired F first; so must we.
  TimerWheel w;
  const TimePoint t0 = TimePoint{} + seconds(1000);
  const TimePoint deadline = t0 + milliseconds(6400);
  (void)w.schedule(t0, deadline, 1, 0);  // F
  TimePoint now = t0;
  std::vector<uint64_t> order;
  for (int i = 1; i <= 64; ++i) {
    const TimePoint e_at = t0 + milliseconds(100) * i;
    if (i < 64) {
      (void)w.schedule(now, e_at, 100 + static_cast<uint64_t>(i), 0);
    } else {
      // The last E is scheduled at 6.3 s for 6.4 s: after F, same deadline.
      (void)w.schedule(now, deadline, 2, 0);
      break;
    }
    now = e_at;
    for (const auto& e : pop_all(w, now)) order.push_back(e.id);
  }
  for (const auto& e : pop_all(w, deadline)) order.push_back(e.id);
  ASSERT_GE(order.size(), 2u);
  EXPECT_EQ(order[order.size() - 2], 1u);
  EXPECT_EQ(order.back(), 2u);
}

TEST(TimerWheelTest, CancelledTimersNeverFireAndHandlesGoStale) {
  TimerWheel w;
  const TimePoint t0 = TimePoint{} + seconds(5);
  auto a = w.schedule(t0, t0 + seconds(1), 1, 0);
  EXPECT_TRUE(w.cancel(a));
  EXPECT_FALSE(w.cancel(a));
  auto b = w.schedule(t0, t0 + seconds(2), 2, 0);
  EXPECT_EQ(b.index, a.index) << "the cancelled node is reused";
  EXPECT_FALSE(w.cancel(a)) << "a stale handle must not cancel the node's new timer";
  EXPECT_FALSE(w.cancel(TimerWheel::Handle{}));
  auto fired = pop_all(w, t0 + seconds(3));
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].id, 2u);
  EXPECT_FALSE(w.cancel(b)) << "fired: stale";
  // By index and (id, tag), as the table does.
  auto c = w.schedule(t0, t0 + seconds(9), 3, 5);
  EXPECT_FALSE(w.cancel(c.index, 3, 6)) << "another tag";
  EXPECT_FALSE(w.cancel(c.index, 4, 5)) << "another id";
  EXPECT_EQ(w.size(), 1u);
  EXPECT_TRUE(w.cancel(c.index, 3, 5));
  EXPECT_FALSE(w.cancel(c.index, 3, 5));
  EXPECT_TRUE(w.empty());
}

TEST(TimerWheelTest, FarDeadlinesBeyondTheSpanFire) {
  TimerWheel w;  // default span ~834 days
  const TimePoint t0 = TimePoint{} + hours(24);
  const TimePoint far = t0 + hours(24 * 2000);
  (void)w.schedule(t0, far, 1, 0);
  (void)w.schedule(t0, t0 + seconds(32), 2, 0);
  EXPECT_EQ(pop_all(w, t0 + seconds(32)).size(), 1u);
  // Stepping by next_deadline() (spurious wake-ups allowed) reaches it in a few steps, never past it.
  TimePoint now = t0 + seconds(32);
  int steps = 0;
  std::vector<TimerWheel::Expired> fired;
  while (fired.empty()) {
    auto d = w.next_deadline();
    ASSERT_TRUE(d.has_value());
    ASSERT_LE(*d, far);
    now = std::max(now, *d);
    fired = pop_all(w, now);
    ASSERT_LT(++steps, 20);
  }
  EXPECT_EQ(fired[0].id, 1u);
  EXPECT_EQ(now, far);
}

TEST(TimerWheelTest, NodesAreBoundedByTheLiveMaximumUnderChurn) {
  // Steady load: each "call" keeps three timers, a third of them stopped early, for 32 s.
  TimerWheel w;
  TimePoint now = TimePoint{} + seconds(1000);
  std::vector<TimerWheel::Handle> to_stop;
  size_t max_live = 0;
  for (int ms = 0; ms < 100'000; ++ms) {
    now += milliseconds(1);
    for (int c = 0; c < 2; ++c) {
      (void)w.schedule(now, now + seconds(32), 1, 0);
      (void)w.schedule(now, now + milliseconds(500), 2, 0);
      to_stop.push_back(w.schedule(now, now + seconds(32), 3, 0));
    }
    max_live = std::max(max_live, w.size());
    if (ms % 10 == 0) {
      for (auto h : to_stop) EXPECT_TRUE(w.cancel(h));
      to_stop.clear();
    }
    (void)pop_all(w, now);
  }
  EXPECT_LE(w.node_capacity(), max_live);
  // 2 calls/ms * 32 s of Timer D-like timers: about 64k live at the peak, nothing more.
  EXPECT_LT(max_live, 2u * 32'000 + 2u * 501 + 2u * 11 + 16);
}

}  // namespace
}  // namespace pinhole::txn
