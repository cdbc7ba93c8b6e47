// The batching writer thread (see batch_writer.h).
#include "store/batch_writer.h"

#include <algorithm>
#include <iterator>
#include <utility>

namespace pinhole::store {

BatchWriter::BatchWriter(BatchSink& sink, size_t max_batch, std::chrono::milliseconds window, size_t max_queued)
    : sink_(sink),
      max_batch_(std::max<size_t>(max_batch, 1)),
      window_(window),
      max_queued_(std::max<size_t>(max_queued, 1)) {}

BatchWriter::~BatchWriter() { shutdown(std::chrono::milliseconds(0)); }

void BatchWriter::start() {
  std::lock_guard lock(mutex_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { run(); });
}

void BatchWriter::push(WriteOp op) {
  std::lock_guard lock(mutex_);
  if (stopping_ && (stopped_ || past_stop_deadline())) {
    ++write_errors_;
    done_.notify_all();
    return;
  }
  // Oldest first: during an outage the newest state of a binding is the one worth keeping.
  while (!queue_.empty() && queue_.size() + inflight_count_ >= max_queued_) {
    queue_.pop_front();
    ++write_errors_;
  }
  queue_.push_back(Pending{std::move(op), next_seq_++, std::chrono::steady_clock::now()});
  // The writer waits for the first write of a batch, then for a full batch.
  if (queue_.size() == 1 || queue_.size() >= max_batch_) wake_.notify_one();
}

void BatchWriter::flush() {
  std::unique_lock lock(mutex_);
  uint64_t target = next_seq_ - 1;
  ++flush_waiters_;
  wake_.notify_one();
  done_.wait(lock, [&] { return oldest_pending_seq() > target; });
  --flush_waiters_;
}

bool BatchWriter::flush_for(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  uint64_t target = next_seq_ - 1;
  ++flush_waiters_;
  wake_.notify_one();
  bool done = done_.wait_for(lock, timeout, [&] { return oldest_pending_seq() > target; });
  --flush_waiters_;
  return done;
}

void BatchWriter::shutdown(std::chrono::milliseconds grace) {
  std::thread thread;
  {
    std::lock_guard lock(mutex_);
    // Once is enough: a second call (the destructor after the owner's) has nothing left to do.
    if (stopping_) return;
    stopping_ = true;
    stop_deadline_ = std::chrono::steady_clock::now() + grace;
    thread = std::move(thread_);
    if (!thread.joinable()) {
      drop_everything();
      stopped_ = true;
      return;
    }
    wake_.notify_all();
  }
  thread.join();
  std::lock_guard lock(mutex_);
  drop_everything();  // nothing, unless a bug stranded a write: count it rather than let flush() hang
  stopped_ = true;
}

uint64_t BatchWriter::writes() const {
  std::lock_guard lock(mutex_);
  return writes_;
}

uint64_t BatchWriter::batches() const {
  std::lock_guard lock(mutex_);
  return batches_;
}

uint64_t BatchWriter::write_errors() const {
  std::lock_guard lock(mutex_);
  return write_errors_;
}

size_t BatchWriter::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size() + inflight_count_;
}

uint64_t BatchWriter::oldest_pending_seq() const {
  // The in-flight batch is always older than anything still queued.
  if (inflight_count_ > 0) return inflight_first_seq_;
  if (!queue_.empty()) return queue_.front().seq;
  return next_seq_;
}

bool BatchWriter::past_stop_deadline() const { return stopping_ && std::chrono::steady_clock::now() >= stop_deadline_; }

void BatchWriter::drop_everything() {
  write_errors_ += queue_.size() + inflight_count_;
  queue_.clear();
  inflight_.clear();
  inflight_count_ = 0;
  done_.notify_all();
}

void BatchWriter::run() {
  std::unique_lock lock(mutex_);
  std::optional<SteadyTime> idle_due = std::chrono::steady_clock::now();
  for (;;) {
    // stopped_ is set before the lock is let go for good: later pushes are counted, not stranded.
    if (past_stop_deadline()) {
      drop_everything();
      stopped_ = true;
      return;
    }
    if (queue_.empty()) {
      if (stopping_) {
        stopped_ = true;
        return;
      }
      if (idle_due && std::chrono::steady_clock::now() >= *idle_due) {
        lock.unlock();
        std::optional<std::chrono::milliseconds> next = sink_.idle();
        lock.lock();
        idle_due = next ? std::optional(std::chrono::steady_clock::now() + *next) : std::nullopt;
        continue;
      }
      auto woken = [&] { return !queue_.empty() || stopping_; };
      if (idle_due)
        wake_.wait_until(lock, *idle_due, woken);
      else
        wake_.wait(lock, woken);
      continue;
    }
    // Wait for a fuller batch unless someone is waiting for this one.
    if (queue_.size() < max_batch_ && !stopping_ && flush_waiters_ == 0) {
      SteadyTime until = queue_.front().queued_at + window_;
      wake_.wait_until(lock, until, [&] { return queue_.size() >= max_batch_ || stopping_ || flush_waiters_ > 0; });
    }
    size_t n = std::min(max_batch_, queue_.size());
    inflight_.clear();
    inflight_.reserve(n);
    inflight_first_seq_ = queue_.front().seq;
    for (size_t i = 0; i < n; ++i) inflight_.push_back(std::move(queue_[i].op));
    queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(n));
    inflight_count_ = n;
    for (;;) {
      lock.unlock();
      BatchResult result = sink_.write(inflight_);
      lock.lock();
      if (!result.retry) {
        size_t failed = std::min(result.failed, inflight_count_);
        writes_ += inflight_count_ - failed;
        write_errors_ += failed;
        ++batches_;
        inflight_.clear();
        inflight_count_ = 0;
        done_.notify_all();
        break;
      }
      // Backend unreachable: keep the batch, wait out the backoff (shutdown cuts it to its deadline).
      SteadyTime retry_at = std::chrono::steady_clock::now() + result.retry_after;
      while (!past_stop_deadline() && std::chrono::steady_clock::now() < retry_at) {
        SteadyTime until = stopping_ ? std::min(retry_at, stop_deadline_) : retry_at;
        wake_.wait_until(lock, until);
      }
      if (past_stop_deadline()) break;  // the outer loop drops it
    }
    // A sink that asked for no more idle calls gets one again once the queue runs dry.
    if (!idle_due) idle_due = std::chrono::steady_clock::now();
  }
}

}  // namespace pinhole::store
