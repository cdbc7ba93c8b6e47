// Monotonic time for the data plane: the types every layer passes around, and an injectable
// clock for the code that reads the time itself (the event loops).
//
// Protocol state (transactions, keepalives, flows, media latching) never reads a clock: it takes
// an explicit `now` (DESIGN.md §2), so tests drive time by hand and nothing sleeps. Only the
// event loop asks a Clock for the time and passes it down.
#pragma once

#include <chrono>

namespace pinhole {

using MonoClock = std::chrono::steady_clock;
using TimePoint = MonoClock::time_point;
using Duration = MonoClock::duration;

// Source of `now`, injected into the objects that need one (DESIGN.md §4: no globals).
// Implementations are read from the thread that owns the object they were given to.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual TimePoint now() const = 0;
};

// The real monotonic clock.
class SteadyClock final : public Clock {
 public:
  TimePoint now() const override { return MonoClock::now(); }
};

// A clock that moves only when told to: for tests, and for replaying captures.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(TimePoint start = TimePoint{}) : now_(start) {}
  TimePoint now() const override { return now_; }
  void advance(Duration d) { now_ += d; }
  void set(TimePoint t) { now_ = t; }

 private:
  TimePoint now_;
};

}  // namespace pinhole
