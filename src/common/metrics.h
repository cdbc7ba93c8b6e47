// Counters and gauges for the Prometheus endpoint (DESIGN.md §4: every drop, reject and degraded
// path increments a named counter).
//
// Threads: counter()/gauge() may be called from any thread (creation takes a lock; call them at
// start-up and keep the reference). Counter::inc and Gauge::set/add are lock-free (relaxed
// atomics) and may be called from any thread. References stay valid for the registry's life.
// render_prometheus() may run on any thread concurrently with updates.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace pinhole {

// Label name/value pairs, e.g. {{"method", "INVITE"}}. Order is kept as given.
using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void add(int64_t d) { value_.fetch_add(d, std::memory_order_relaxed); }
  int64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

class MetricsRegistry {
 public:
  // The same name and labels give the same object (labels compare as a set: order does not matter,
  // the order of the first call is the one rendered). `name` must be a valid Prometheus metric name
  // ([a-zA-Z_:][a-zA-Z0-9_:]*; counters should end in `_total`), label names valid label names
  // ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__", no duplicates); `help` is kept from the first
  // call for a name. A name used once as a counter and once as a gauge, or an invalid name, is a
  // start-up bug: std::logic_error. Label values may hold any text (escaped when rendered).
  Counter& counter(std::string_view name, std::string_view help, const Labels& labels = {});
  Gauge& gauge(std::string_view name, std::string_view help, const Labels& labels = {});
  // A gauge read at scrape time (open connections, table sizes). `read` must be callable from any
  // thread for the registry's life. Registering the same name and labels again replaces the
  // function (a component rebuilt on reload registers itself again); a plain Gauge with the same
  // name and labels is a bug (std::logic_error).
  void gauge_function(std::string_view name, std::string_view help, const Labels& labels, std::function<double()> read);

  // Text exposition format 0.0.4: HELP and TYPE once per name, then one line per label set.
  // Families come sorted by name, label sets in the order they were first registered. The
  // gauge_function reads run after the registry lock is released, so they may take their own
  // locks (or even register metrics) without deadlocking a scrape.
  std::string render_prometheus() const;

  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

 private:
  enum class Type : uint8_t { kCounter, kGauge };
  struct Series;
  struct Family;
  // Finds or creates the family and the series for `labels`; the caller holds mutex_.
  Series& series(std::string_view name, std::string_view help, Type type, const Labels& labels);
  mutable std::mutex mutex_;
  // Families and series are only ever added, never removed, and live behind unique_ptr: the
  // Counter/Gauge references handed out and the pointers a render snapshot keeps stay valid.
  std::map<std::string, std::unique_ptr<Family>, std::less<>> families_;
};

}  // namespace pinhole
