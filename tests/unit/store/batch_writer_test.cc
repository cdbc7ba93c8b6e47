// BatchWriter against a scripted sink: order, batch sizes, flush, retry of a batch the backend
// could not take, the queue bound, and shutdown. The sink can hold the writer inside write() on a
// gate the test opens, so every state is reached without relying on timing.
#include "store/batch_writer.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "store_test_support.h"

namespace pinhole::store {
namespace {

using std::chrono::milliseconds;

WriteOp save(int i) {
  WriteOp op;
  op.kind = WriteOp::Kind::kSave;
  op.binding.aor = "sip:u@example.com";
  op.binding.binding_id = std::to_string(i);
  return op;
}

class ScriptedSink : public BatchSink {
 public:
  BatchResult write(std::span<const WriteOp> ops) override {
    std::unique_lock lock(mu_);
    ++calls_;
    entered_.notify_all();
    cv_.wait(lock, [&] { return open_; });
    BatchResult result;
    if (!script_.empty()) {
      result = script_.front();
      script_.pop_front();
    }
    std::vector<std::string> ids;
    for (const WriteOp& op : ops) ids.push_back(op.binding.binding_id);
    offered_.push_back(ids);
    if (!result.retry) written_.push_back(ids);
    return result;
  }

  std::optional<milliseconds> idle() override {
    std::lock_guard lock(mu_);
    ++idle_calls_;
    entered_.notify_all();
    return idle_every_;
  }

  void close_gate() {
    std::lock_guard lock(mu_);
    open_ = false;
  }
  void open_gate() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Waits until write() has been entered `n` times in all.
  bool wait_calls(int n) {
    std::unique_lock lock(mu_);
    return entered_.wait_for(lock, test::kDeadline, [&] { return calls_ >= n; });
  }
  bool wait_idle_calls(int n) {
    std::unique_lock lock(mu_);
    return entered_.wait_for(lock, test::kDeadline, [&] { return idle_calls_ >= n; });
  }
  void then(BatchResult r) {
    std::lock_guard lock(mu_);
    script_.push_back(r);
  }
  void set_idle_every(std::optional<milliseconds> d) {
    std::lock_guard lock(mu_);
    idle_every_ = d;
  }
  std::vector<std::vector<std::string>> written() {
    std::lock_guard lock(mu_);
    return written_;
  }
  std::vector<std::vector<std::string>> offered() {
    std::lock_guard lock(mu_);
    return offered_;
  }
  std::vector<std::string> written_flat() {
    std::vector<std::string> out;
    for (const auto& batch : written())
      for (const std::string& id : batch) out.push_back(id);
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable entered_;
  bool open_ = true;
  int calls_ = 0;
  int idle_calls_ = 0;
  std::optional<milliseconds> idle_every_;
  std::deque<BatchResult> script_;
  std::vector<std::vector<std::string>> offered_;
  std::vector<std::vector<std::string>> written_;
};

std::vector<std::string> ids(int from, int to) {
  std::vector<std::string> out;
  for (int i = from; i < to; ++i) out.push_back(std::to_string(i));
  return out;
}

TEST(BatchWriter, KeepsOrderAndBatchLimit) {
  ScriptedSink sink;
  BatchWriter writer(sink, 3, milliseconds(1));
  writer.start();
  for (int i = 0; i < 20; ++i) writer.push(save(i));
  ASSERT_TRUE(writer.flush_for(test::kDeadline));
  EXPECT_EQ(sink.written_flat(), ids(0, 20));
  for (const auto& batch : sink.written()) EXPECT_LE(batch.size(), 3U);
  EXPECT_EQ(writer.writes(), 20U);
  EXPECT_EQ(writer.batches(), sink.written().size());
  EXPECT_EQ(writer.write_errors(), 0U);
  EXPECT_EQ(writer.queued(), 0U);
  writer.shutdown(milliseconds(0));
}

TEST(BatchWriter, WritesQueuedWhileBusyGoOutTogether) {
  ScriptedSink sink;
  BatchWriter writer(sink, 100, milliseconds(0));
  writer.start();
  sink.close_gate();
  writer.push(save(0));
  ASSERT_TRUE(sink.wait_calls(1));  // the writer holds {0} inside the sink
  for (int i = 1; i < 6; ++i) writer.push(save(i));
  EXPECT_EQ(writer.queued(), 6U);
  sink.open_gate();
  ASSERT_TRUE(writer.flush_for(test::kDeadline));
  EXPECT_EQ(sink.written(), (std::vector<std::vector<std::string>>{ids(0, 1), ids(1, 6)}));
}

TEST(BatchWriter, FlushCutsTheBatchWindowShort) {
  ScriptedSink sink;
  // A window no test would wait out: only the flush can release the batch.
  BatchWriter writer(sink, 100, std::chrono::hours(1));
  writer.start();
  writer.push(save(0));
  writer.push(save(1));
  ASSERT_TRUE(writer.flush_for(test::kDeadline));
  EXPECT_EQ(sink.written_flat(), ids(0, 2));
}

TEST(BatchWriter, FullBatchesDoNotWaitForTheWindow) {
  ScriptedSink sink;
  BatchWriter writer(sink, 2, std::chrono::hours(1));
  writer.start();
  for (int i = 0; i < 4; ++i) writer.push(save(i));
  ASSERT_TRUE(sink.wait_calls(2));
  EXPECT_EQ(sink.written(), (std::vector<std::vector<std::string>>{ids(0, 2), ids(2, 4)}));
}

TEST(BatchWriter, FlushWaitsForTheBatchInFlight) {
  ScriptedSink sink;
  BatchWriter writer(sink, 10, milliseconds(0));
  writer.start();
  sink.close_gate();
  writer.push(save(0));
  ASSERT_TRUE(sink.wait_calls(1));
  // The batch cannot finish while the gate is shut, so this flush cannot succeed.
  EXPECT_FALSE(writer.flush_for(milliseconds(20)));
  EXPECT_EQ(writer.queued(), 1U);
  sink.open_gate();
  EXPECT_TRUE(writer.flush_for(test::kDeadline));
  EXPECT_EQ(writer.queued(), 0U);
}

TEST(BatchWriter, RetriedBatchesAreReplayedWhole) {
  ScriptedSink sink;
  sink.then(BatchResult{0, true, milliseconds(1)});
  sink.then(BatchResult{0, true, milliseconds(1)});
  BatchWriter writer(sink, 10, milliseconds(0));
  writer.start();
  sink.close_gate();
  for (int i = 0; i < 3; ++i) writer.push(save(i));
  sink.open_gate();
  ASSERT_TRUE(writer.flush_for(test::kDeadline));
  std::vector<std::vector<std::string>> offered = sink.offered();
  ASSERT_GE(offered.size(), 3U);
  // Offered until taken; nothing lost, nothing written twice, order kept.
  EXPECT_EQ(sink.written_flat(), ids(0, 3));
  EXPECT_EQ(offered[0], offered[1]);
  EXPECT_EQ(writer.writes(), 3U);
  EXPECT_EQ(writer.write_errors(), 0U);
}

TEST(BatchWriter, RefusedWritesAreCounted) {
  ScriptedSink sink;
  sink.then(BatchResult{2, false, {}});
  // The window holds the five writes together until the flush.
  BatchWriter writer(sink, 10, std::chrono::hours(1));
  writer.start();
  for (int i = 0; i < 5; ++i) writer.push(save(i));
  ASSERT_TRUE(writer.flush_for(test::kDeadline));
  ASSERT_EQ(sink.written().size(), 1U);
  EXPECT_EQ(writer.writes(), 3U);
  EXPECT_EQ(writer.write_errors(), 2U);
}

TEST(BatchWriter, BeyondTheBoundTheOldestQueuedWritesAreDropped) {
  ScriptedSink sink;
  BatchWriter writer(sink, 1, milliseconds(0), /*max_queued=*/5);
  writer.start();
  sink.close_gate();
  writer.push(save(0));
  ASSERT_TRUE(sink.wait_calls(1));  // {0} in flight
  for (int i = 1; i <= 10; ++i) writer.push(save(i));
  EXPECT_EQ(writer.queued(), 5U);
  EXPECT_EQ(writer.write_errors(), 6U);  // 1..6 made way for 7..10
  sink.open_gate();
  ASSERT_TRUE(writer.flush_for(test::kDeadline));
  std::vector<std::string> expected = {"0"};
  for (const std::string& id : ids(7, 11)) expected.push_back(id);
  EXPECT_EQ(sink.written_flat(), expected);
  EXPECT_EQ(writer.writes(), 5U);
}

TEST(BatchWriter, FlushReturnsWhenItsWritesWereDropped) {
  ScriptedSink sink;
  BatchWriter writer(sink, 1, milliseconds(0), /*max_queued=*/2);
  writer.start();
  sink.close_gate();
  writer.push(save(0));
  ASSERT_TRUE(sink.wait_calls(1));
  writer.push(save(1));
  std::thread flusher([&] { writer.flush(); });  // waits for 0 and 1
  writer.push(save(2));                          // drops 1
  sink.open_gate();
  flusher.join();
  EXPECT_EQ(writer.write_errors(), 1U);
  ASSERT_TRUE(writer.flush_for(test::kDeadline));
  EXPECT_EQ(sink.written_flat(), (std::vector<std::string>{"0", "2"}));
}

TEST(BatchWriter, ShutdownDropsWhatTheBackendNeverTook) {
  ScriptedSink sink;
  for (int i = 0; i < 1000; ++i) sink.then(BatchResult{0, true, milliseconds(1)});
  BatchWriter writer(sink, 2, milliseconds(0));
  writer.start();
  for (int i = 0; i < 5; ++i) writer.push(save(i));
  ASSERT_TRUE(sink.wait_calls(1));
  writer.shutdown(milliseconds(0));
  EXPECT_TRUE(sink.written().empty());
  EXPECT_EQ(writer.write_errors(), 5U);
  EXPECT_EQ(writer.queued(), 0U);
  writer.push(save(9));  // after shutdown: dropped and counted
  EXPECT_EQ(writer.write_errors(), 6U);
  EXPECT_TRUE(writer.flush_for(test::kDeadline));
}

TEST(BatchWriter, ShutdownWritesWhatItCanWithinTheGrace) {
  ScriptedSink sink;
  BatchWriter writer(sink, 100, std::chrono::hours(1));
  writer.start();
  for (int i = 0; i < 5; ++i) writer.push(save(i));
  writer.shutdown(test::kDeadline);  // skips the window
  EXPECT_EQ(sink.written_flat(), ids(0, 5));
  EXPECT_EQ(writer.write_errors(), 0U);
}

TEST(BatchWriter, IdleRunsAtStartAndWhenAskedAgain) {
  ScriptedSink sink;
  sink.set_idle_every(milliseconds(1));
  BatchWriter writer(sink, 10, milliseconds(0));
  writer.start();
  EXPECT_TRUE(sink.wait_idle_calls(3));
  writer.shutdown(milliseconds(0));
}

TEST(BatchWriter, WithoutStartShutdownCountsTheQueue) {
  ScriptedSink sink;
  BatchWriter writer(sink, 10, milliseconds(0));
  writer.push(save(0));
  writer.push(save(1));
  writer.shutdown(milliseconds(0));
  EXPECT_EQ(writer.write_errors(), 2U);
  EXPECT_TRUE(sink.offered().empty());
}

}  // namespace
}  // namespace pinhole::store
