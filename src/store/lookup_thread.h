// The thread that runs Store::load_aor_async lookups, so that a worker's event loop hands a
// blocking read to it and gets the answer in a callback (which it posts back to its own loop).
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "common/result.h"
#include "store/records.h"

namespace pinhole::store {

// Ownership: `load` is called on the lookup thread and must stay callable until shutdown()
// returns; the owner calls shutdown() before destroying what `load` uses.
//
// Threads: post from any thread; shutdown from the owner.
class LookupThread {
 public:
  using Load = std::function<Result<std::vector<BindingRecord>>(std::string_view aor)>;
  using Done = std::function<void(Result<std::vector<BindingRecord>>)>;

  explicit LookupThread(Load load);
  ~LookupThread();
  LookupThread(const LookupThread&) = delete;
  LookupThread& operator=(const LookupThread&) = delete;

  // Queues a lookup; `done` runs on the lookup thread with load(aor). After shutdown() began it
  // runs at once, on the caller's thread, with an Error (503).
  void post(std::string aor, Done done);
  // Finishes the lookup under way, joins, and answers the queued ones with an Error (503) on the
  // calling thread.
  void shutdown();

 private:
  void run();

  Load load_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::pair<std::string, Done>> queue_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace pinhole::store
