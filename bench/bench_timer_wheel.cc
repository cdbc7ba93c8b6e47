// bench_timer_wheel: the transaction table's timer wheel (txn/timer_wheel.h) against the
// lazy-deletion binary min-heap it replaced (issue 3), on the edge's timer pattern: every call
// starts timers of which about half are stopped early (Timer A/B/E/F on the first response) and
// the rest run to 32 s (Timers D/J/K, 64*T1), time moves in 1 ms steps, and the event loop asks
// for the next deadline after every message.
//
// Google Benchmark; items/s counts timers scheduled. The heap here is the old table's (same
// (deadline, seq) order, stale entries skipped when they reach the top), with its staleness
// check on a flat vector rather than the table's hash map, which flatters the heap.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <vector>

#include "txn/timer_wheel.h"

namespace {

using pinhole::Duration;
using pinhole::TimePoint;
using std::chrono::milliseconds;
using std::chrono::seconds;

// The old TransactionTable scheme: a min-heap on (deadline, seq); a stop only bumps the timer's
// generation, and stale entries are skipped (and popped) when they reach the top.
class HeapTimers {
 public:
  using Handle = uint32_t;  // the timer's slot in generations_
  Handle schedule(TimePoint /*now*/, TimePoint deadline, uint64_t /*id*/) {
    Handle h;
    if (!free_.empty()) {
      h = free_.back();
      free_.pop_back();
    } else {
      h = static_cast<Handle>(generations_.size());
      generations_.push_back(0);
    }
    heap_.push_back({deadline, seq_++, h, generations_[h]});
    std::push_heap(heap_.begin(), heap_.end(), later);
    return h;
  }
  void cancel(Handle h) {
    ++generations_[h];
    free_.push_back(h);
  }
  // Fires what is due; returns how many fired.
  size_t advance(TimePoint now) {
    size_t fired = 0;
    while (!heap_.empty() && heap_.front().deadline <= now) {
      const Entry e = heap_.front();
      std::pop_heap(heap_.begin(), heap_.end(), later);
      heap_.pop_back();
      if (generations_[e.handle] != e.generation) continue;
      ++generations_[e.handle];
      free_.push_back(e.handle);
      ++fired;
    }
    prune();
    return fired;
  }
  TimePoint next() {
    prune();
    return heap_.empty() ? TimePoint::max() : heap_.front().deadline;
  }
  size_t bytes() const {
    return heap_.capacity() * sizeof(Entry) + generations_.capacity() * sizeof(uint32_t) +
           free_.capacity() * sizeof(Handle);
  }

 private:
  struct Entry {
    TimePoint deadline;
    uint64_t seq;
    Handle handle;
    uint32_t generation;
  };
  static bool later(const Entry& a, const Entry& b) {
    return a.deadline != b.deadline ? a.deadline > b.deadline : a.seq > b.seq;
  }
  void prune() {
    while (!heap_.empty() && generations_[heap_.front().handle] != heap_.front().generation) {
      std::pop_heap(heap_.begin(), heap_.end(), later);
      heap_.pop_back();
    }
  }
  std::vector<Entry> heap_;
  std::vector<uint32_t> generations_;
  std::vector<Handle> free_;
  uint64_t seq_ = 0;
};

class WheelTimers {
 public:
  using Handle = pinhole::txn::TimerWheel::Handle;
  Handle schedule(TimePoint now, TimePoint deadline, uint64_t id) { return wheel_.schedule(now, deadline, id, 0); }
  void cancel(Handle h) { wheel_.cancel(h); }
  size_t advance(TimePoint now) {
    size_t fired = 0;
    while (wheel_.pop_expired(now)) ++fired;
    return fired;
  }
  TimePoint next() const { return wheel_.next_deadline().value_or(TimePoint::max()); }
  size_t bytes() const { return wheel_.memory_bytes(); }

 private:
  pinhole::txn::TimerWheel wheel_;
};

// Steady load: state.range(0) calls per ms (2 = the 2,000 calls/s benchmark), each starting
// four timers: two stopped 20 ms later (first response), one 500 ms retransmit that is stopped
// too, one 32 s linger timer that fires. 40 s of simulated time per iteration (the last 32 s
// with the lingering timers of the first 8 s firing).
template <typename Timers>
void steady_load(benchmark::State& state) {
  const auto calls_per_ms = static_cast<int>(state.range(0));
  constexpr int kMs = 40'000;
  constexpr int kStopAfterMs = 20;
  size_t scheduled = 0;
  size_t fired = 0;
  size_t peak_bytes = 0;
  for (auto _ : state) {
    Timers timers;
    std::vector<std::vector<typename Timers::Handle>> to_stop(kStopAfterMs + 1);
    TimePoint now = TimePoint{} + seconds(1000);
    TimePoint sink{};
    for (int ms = 0; ms < kMs; ++ms) {
      now += milliseconds(1);
      auto& stop_now = to_stop[static_cast<size_t>(ms % (kStopAfterMs + 1))];
      for (auto h : stop_now) timers.cancel(h);
      stop_now.clear();
      for (int c = 0; c < calls_per_ms; ++c) {
        const uint64_t id = static_cast<uint64_t>(ms) * static_cast<uint64_t>(calls_per_ms) + static_cast<uint64_t>(c);
        stop_now.push_back(timers.schedule(now, now + milliseconds(500), id));  // A/E
        stop_now.push_back(timers.schedule(now, now + seconds(32), id));        // B/F
        stop_now.push_back(timers.schedule(now, now + milliseconds(500), id));  // the other leg's
        (void)timers.schedule(now, now + seconds(32), id);                      // D/J/K: fires
        sink = std::max(sink, timers.next());                                   // the event loop, after each message
        scheduled += 4;
      }
      fired += timers.advance(now);
      sink = std::max(sink, timers.next());
    }
    peak_bytes = std::max(peak_bytes, timers.bytes());
    benchmark::DoNotOptimize(sink);
  }
  state.SetItemsProcessed(static_cast<int64_t>(scheduled));
  state.counters["fired_per_iter"] = static_cast<double>(fired) / static_cast<double>(state.iterations());
  state.counters["bytes"] = static_cast<double>(peak_bytes);
}

// A burst: 20,000 calls at 2,000 calls/s (10 s), then the 32 s drain; per iteration.
template <typename Timers>
void burst_then_drain(benchmark::State& state) {
  size_t scheduled = 0;
  for (auto _ : state) {
    Timers timers;
    std::vector<typename Timers::Handle> stop;
    TimePoint now = TimePoint{} + seconds(1000);
    TimePoint sink{};
    for (int ms = 0; ms < 45'000; ++ms) {
      now += milliseconds(1);
      if (ms < 10'000) {
        for (int c = 0; c < 2; ++c) {
          const uint64_t id = static_cast<uint64_t>(ms) * 2 + static_cast<uint64_t>(c);
          stop.push_back(timers.schedule(now, now + milliseconds(500), id));
          stop.push_back(timers.schedule(now, now + seconds(32), id));
          (void)timers.schedule(now, now + seconds(32), id);
          scheduled += 3;
          sink = std::max(sink, timers.next());
        }
        if (ms % 10 == 0) {
          for (auto h : stop) timers.cancel(h);
          stop.clear();
        }
      }
      timers.advance(now);
      sink = std::max(sink, timers.next());
    }
    benchmark::DoNotOptimize(sink);
  }
  state.SetItemsProcessed(static_cast<int64_t>(scheduled));
}

BENCHMARK_TEMPLATE(steady_load, WheelTimers)->Arg(2)->Arg(20)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(steady_load, HeapTimers)->Arg(2)->Arg(20)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(burst_then_drain, WheelTimers)->Unit(benchmark::kMillisecond);
BENCHMARK_TEMPLATE(burst_then_drain, HeapTimers)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
