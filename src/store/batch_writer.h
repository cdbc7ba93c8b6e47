// The write path the SQLite and Redis stores share: a queue that any thread appends binding writes
// to without blocking on I/O, and one writer thread that drains it in batches into a BatchSink
// (one SQLite transaction, one Redis pipeline), keeps a batch the backend could not take (Redis
// down) and replays it, bounds what it keeps, and lets flush() wait for durability.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "store/records.h"
#include "store/store.h"

namespace pinhole::store {

// One queued write. kRemove uses binding.aor and binding.binding_id, kRemoveAor binding.aor;
// kSaveKeepalive the whole keepalive, kRemoveKeepalive keepalive.node and keepalive.flow.
struct WriteOp {
  enum class Kind : uint8_t { kSave, kRemove, kRemoveAor, kSaveKeepalive, kRemoveKeepalive };
  Kind kind = Kind::kSave;
  BindingRecord binding;  // kRemove: only aor and binding_id; kRemoveAor: only aor
  KeepaliveRecord keepalive;

  static WriteOp save(const BindingRecord& b) { return {Kind::kSave, b, {}}; }
  static WriteOp remove(std::string_view aor, std::string_view binding_id) {
    WriteOp op{Kind::kRemove, {}, {}};
    op.binding.aor = std::string(aor);
    op.binding.binding_id = std::string(binding_id);
    return op;
  }
  static WriteOp remove_aor(std::string_view aor) {
    WriteOp op{Kind::kRemoveAor, {}, {}};
    op.binding.aor = std::string(aor);
    return op;
  }
  static WriteOp save_keepalive(const KeepaliveRecord& k) { return {Kind::kSaveKeepalive, {}, k}; }
  static WriteOp remove_keepalive(std::string_view node, const net::Flow& flow) {
    WriteOp op{Kind::kRemoveKeepalive, {}, {}};
    op.keepalive.node = std::string(node);
    op.keepalive.flow = flow;
    return op;
  }
};

// What a sink did with a batch.
struct BatchResult {
  size_t failed = 0;   // writes the backend refused: counted in write_errors, not retried
  bool retry = false;  // the backend is unreachable: keep the whole batch and offer it again later
  std::chrono::milliseconds retry_after{0};
};

// The backend side. Both members run on the writer thread only, one at a time.
class BatchSink {
 public:
  virtual ~BatchSink() = default;
  // Applies `ops` in order, as one unit where the backend has one. A retried batch is offered again
  // whole, so applying a prefix of it twice must be harmless: every op sets or deletes state.
  virtual BatchResult write(std::span<const WriteOp> ops) = 0;
  // Runs when nothing is queued (first right after start()), then again after the returned delay;
  // nullopt: not again until the writer has been busy. Redis reconnects and checks its link here.
  virtual std::optional<std::chrono::milliseconds> idle() { return std::nullopt; }
};

// Ownership: the sink is borrowed and must outlive the writer's thread: its owner calls shutdown()
// before destroying the sink (the destructor calls shutdown() only as a safety net).
//
// Threads: push, flush, flush_for and the counters from any thread; start and shutdown from the
// owner, once each.
class BatchWriter {
 public:
  static constexpr size_t kDefaultMaxQueued = 100'000;

  // Batches of at most `max_batch` writes; after the first write of a batch it waits up to
  // `window` for more. Beyond `max_queued` waiting writes the oldest ones are dropped (and counted
  // as write errors): a long Redis outage must not eat the node's memory.
  BatchWriter(BatchSink& sink, size_t max_batch, std::chrono::milliseconds window,
              size_t max_queued = kDefaultMaxQueued);
  ~BatchWriter();
  BatchWriter(const BatchWriter&) = delete;
  BatchWriter& operator=(const BatchWriter&) = delete;

  void start();
  // Never blocks on I/O (takes the queue lock for the append).
  void push(WriteOp op);
  // Until every write pushed before the call was written, refused or dropped. flush_for gives up
  // after `timeout` and says whether it got there.
  void flush();
  bool flush_for(std::chrono::milliseconds timeout);
  // Stops taking idle calls, keeps writing for at most `grace`, then drops what is left (counted
  // as write errors) and joins the thread. Later pushes are dropped and counted.
  void shutdown(std::chrono::milliseconds grace);

  uint64_t writes() const;
  uint64_t batches() const;
  uint64_t write_errors() const;
  size_t queued() const;
  // The four above as the store's statistics (the backend adds its own fields).
  StoreStats stats() const {
    StoreStats s;
    s.writes = writes();
    s.batches = batches();
    s.write_errors = write_errors();
    s.queued = queued();
    return s;
  }

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;
  struct Pending {
    WriteOp op;
    uint64_t seq = 0;
    SteadyTime queued_at;
  };

  void run();
  // The caller holds mutex_.
  uint64_t oldest_pending_seq() const;
  bool past_stop_deadline() const;
  void drop_everything();

  BatchSink& sink_;
  const size_t max_batch_;
  const std::chrono::milliseconds window_;
  const size_t max_queued_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;  // the writer: work, flush requests, shutdown
  std::condition_variable done_;  // flushers: progress
  std::deque<Pending> queue_;
  std::vector<WriteOp> inflight_;  // the batch the writer holds (writer thread only outside mutex_)
  uint64_t inflight_first_seq_ = 0;
  size_t inflight_count_ = 0;  // inflight_.size(), readable under mutex_
  uint64_t next_seq_ = 1;
  size_t flush_waiters_ = 0;
  bool stopping_ = false;
  bool stopped_ = false;
  SteadyTime stop_deadline_{};
  uint64_t writes_ = 0;
  uint64_t batches_ = 0;
  uint64_t write_errors_ = 0;
  std::thread thread_;
};

}  // namespace pinhole::store
