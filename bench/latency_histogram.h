// Fixed-size log-linear latency histogram for pinhole-bench: constant-time record() with no
// allocation (the receive path records one value per packet), percentiles within ~3 % of the
// true value. Values are nanoseconds; 0..63 ns are exact, above that each power of two is split
// into 32 equal buckets.
//
// Threads: a plain value; each bench worker fills its own and the main thread merges them after
// the workers have joined.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>

namespace pinhole::bench {

class LatencyHistogram {
 public:
  static constexpr unsigned kSubBits = 5;  // 32 buckets per power of two
  static constexpr uint64_t kSub = uint64_t{1} << kSubBits;
  static constexpr size_t kBuckets = 2 * kSub + (64 - kSubBits - 1) * kSub;  // shifts 1..58

  void record(uint64_t ns) {
    ++buckets_[index(ns)];
    ++count_;
    if (ns > max_) max_ = ns;
  }

  void merge(const LatencyHistogram& other) {
    for (size_t i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
    count_ += other.count_;
    if (other.max_ > max_) max_ = other.max_;
  }

  uint64_t count() const { return count_; }
  uint64_t max() const { return max_; }

  // The value at quantile q (0 < q <= 1): the midpoint of the bucket holding the
  // ceil(q * count)-th smallest value; 0 when empty.
  uint64_t quantile(double q) const {
    if (count_ == 0) return 0;
    auto rank = static_cast<uint64_t>(q * static_cast<double>(count_));
    if (static_cast<double>(rank) < q * static_cast<double>(count_)) ++rank;
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < kBuckets; ++i) {
      seen += buckets_[i];
      if (seen >= rank) {
        uint64_t lo = lower_bound(i);
        uint64_t hi = lower_bound(i + 1) - 1;
        if (hi > max_) hi = max_;
        return lo + (hi - lo) / 2;
      }
    }
    return max_;
  }

  static size_t index(uint64_t ns) {
    if (ns < 2 * kSub) return static_cast<size_t>(ns);
    unsigned msb = 63 - static_cast<unsigned>(std::countl_zero(ns));  // >= kSubBits + 1
    unsigned shift = msb - kSubBits;
    uint64_t mantissa = ns >> shift;  // in [kSub, 2 * kSub)
    return static_cast<size_t>(2 * kSub + (shift - 1) * kSub + (mantissa - kSub));
  }

  // Smallest value that lands in bucket i (i may be kBuckets: one past the last).
  static uint64_t lower_bound(size_t i) {
    if (i < 2 * kSub) return i;
    size_t rest = i - 2 * kSub;
    unsigned shift = static_cast<unsigned>(rest / kSub) + 1;
    uint64_t mantissa = kSub + rest % kSub;
    if (shift >= 64 - kSubBits) return UINT64_MAX;  // past the last bucket
    return mantissa << shift;
  }

 private:
  std::array<uint64_t, kBuckets> buckets_{};
  uint64_t count_ = 0;
  uint64_t max_ = 0;
};

}  // namespace pinhole::bench
