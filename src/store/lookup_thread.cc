// The asynchronous lookup thread (see lookup_thread.h).
#include "store/lookup_thread.h"

namespace pinhole::store {
namespace {

constexpr Error kClosing{503, "store closing"};

}  // namespace

LookupThread::LookupThread(Load load) : load_(std::move(load)) {
  thread_ = std::thread([this] { run(); });
}

LookupThread::~LookupThread() { shutdown(); }

void LookupThread::post(std::string aor, Done done) {
  {
    std::lock_guard lock(mutex_);
    if (!stopping_) {
      queue_.emplace_back(std::move(aor), std::move(done));
      wake_.notify_one();
      return;
    }
  }
  done(kClosing);
}

void LookupThread::shutdown() {
  std::deque<std::pair<std::string, Done>> left;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    wake_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lock(mutex_);
    left.swap(queue_);
  }
  for (auto& [aor, done] : left) done(kClosing);
}

void LookupThread::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    {
      // The callback (and what it captured) dies before the lock is taken again: its destructor
      // may post another lookup.
      std::pair<std::string, Done> item = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      item.second(load_(item.first));
    }
    lock.lock();
  }
}

}  // namespace pinhole::store
