// The media forwarding loop: one RelayWorker per core, each owning a set of relay sessions and
// their sockets. An epoll loop reads each readable socket in recvmmsg batches, asks the session
// where every datagram goes (latching, counters), and sends the batch with sendmmsg from the other
// leg's socket. Buffers are allocated once per worker: nothing is allocated per packet.
//
// Ownership and threads:
// - The worker owns its sessions (and so their sockets and port leases) from add_session() until
//   remove_session() or its own destruction; a session lives on one worker only.
// - run() is the loop; start() runs it on a thread the worker owns, stop() ends and joins it
//   (the destructor stops too). Sessions, add/remove/find and every RelaySession method belong to
//   the worker thread: from elsewhere reach them with post() or call().
// - post() and call() may be used from any thread: the function goes into a mutex-guarded queue
//   and an eventfd wakes the loop, which runs the queue in order. call() blocks until the function
//   ran and hands its result back; never use it from the worker thread itself (it would wait on
//   itself forever: it returns an error instead).
// - The timeout callback runs on the worker thread for a session idle longer than the inactivity
//   timeout (the hold timeout when a leg is on hold), once until traffic resumes. It must not
//   delete the session inline; the controller posts remove_session (a removal from inside the
//   loop is deferred anyway: the session is closed at once and freed after the current batch).
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "media/fast_path.h"
#include "media/port_pool.h"
#include "media/relay_session.h"
#include "media/session_fast_path.h"

namespace pinhole::media {

struct RelayWorkerConfig {
  Duration inactivity_timeout = std::chrono::seconds(60);
  Duration hold_timeout = std::chrono::hours(1);
  // How often idle sessions are looked for.
  Duration sweep_interval = std::chrono::seconds(1);
  size_t batch = 32;           // datagrams per recvmmsg/sendmmsg
  size_t max_datagram = 2048;  // larger datagrams are truncated and dropped
};

// Worker-wide counters (atomics: read from any thread).
struct RelayWorkerCounters {
  std::atomic<uint64_t> received{0};
  std::atomic<uint64_t> forwarded{0};
  std::atomic<uint64_t> dropped{0};
  std::atomic<uint64_t> send_errors{0};
  std::atomic<uint64_t> truncated{0};
  std::atomic<uint64_t> timeouts_reported{0};
  // Kernel fast path rules (fast_path.h) this worker installed, removed, or failed to install.
  std::atomic<uint64_t> fast_path_installed{0};
  std::atomic<uint64_t> fast_path_removed{0};
  std::atomic<uint64_t> fast_path_errors{0};
};

class RelayWorker {
 public:
  using TimeoutCallback = std::function<void(const SessionKey&)>;

  // `clock` must outlive the worker and be readable from its thread. Throws std::system_error if
  // epoll or eventfd cannot be created (start-up).
  RelayWorker(RelayWorkerConfig config, const Clock& clock, TimeoutCallback on_timeout);
  ~RelayWorker();
  RelayWorker(const RelayWorker&) = delete;
  RelayWorker& operator=(const RelayWorker&) = delete;

  // Hands latched streams to the kernel (fast_path.h). Before start(); `fast_path` must outlive
  // the worker; `local` is the address the relay sockets are bound to (not a wildcard).
  void enable_fast_path(FastPath& fast_path, const net::Address& local);

  void start();
  void stop();
  // The loop itself, on the calling thread, until stop().
  void run();

  // Any thread.
  void post(std::function<void()> fn);
  template <typename F>
  auto call(F fn) -> Result<std::invoke_result_t<F>>;

  // Worker thread only (or before start()). A session with the same key: Error{409}.
  Status add_session(std::unique_ptr<RelaySession> session);
  bool remove_session(const SessionKey& key);
  RelaySession* find(const SessionKey& key);
  size_t session_count() const { return sessions_.size(); }
  // After changing a session from outside the packet path (new SDP through find()), and before
  // reading its statistics: folds in what the kernel counted and makes the kernel's rules match
  // the session's latching again. Nothing without a fast path.
  void refresh_fast_path(const SessionKey& key);
  // Whether the kernel forwards the stream arriving on leg `leg`'s RTP or RTCP socket (ng
  // `query` shows it as rtpengine does: the stream flag "kernelized").
  bool kernelized(const SessionKey& key, size_t leg, bool rtcp_socket) const;

  const RelayWorkerCounters& counters() const { return counters_; }

 private:
  // What an epoll event points at: one socket of one leg. Lives inside Entry (stable address).
  struct Entry;
  struct SocketRef {
    Entry* entry = nullptr;
    uint8_t leg = 0;
    bool rtcp = false;
  };
  struct Entry {
    std::unique_ptr<RelaySession> session;
    std::array<SocketRef, 4> refs{};
    SessionFastPath fast;
    bool closed = false;
  };

  void run_posted();
  void sweep(TimePoint now);
  void on_readable(SocketRef& ref);
  void flush(int fd, size_t count, LegStats& stats);
  Status watch(int fd, SocketRef* ref);
  void unwatch(Entry& entry);
  void reconcile_fast_path(Entry& entry, TimePoint now);
  void clear_fast_path(Entry& entry, TimePoint now);

  RelayWorkerConfig config_;
  const Clock& clock_;
  TimeoutCallback on_timeout_;
  FastPath* fast_path_ = nullptr;
  net::Address fast_path_local_;
  UniqueFd epoll_;
  UniqueFd wake_;

  std::mutex queue_mutex_;
  std::vector<std::function<void()>> queue_;
  std::vector<std::function<void()>> running_;  // swapped with queue_, keeps its capacity

  std::unordered_map<SessionKey, std::unique_ptr<Entry>, SessionKeyHash> sessions_;
  std::vector<std::unique_ptr<Entry>> graveyard_;  // removed inside the loop; freed after the batch
  TimePoint next_sweep_{};

  // Per-packet buffers, sized once.
  std::vector<uint8_t> buffers_;
  std::vector<mmsghdr> in_msgs_;
  std::vector<iovec> in_iov_;
  std::vector<sockaddr_storage> in_addr_;
  std::vector<mmsghdr> out_msgs_;
  std::vector<iovec> out_iov_;
  std::vector<sockaddr_storage> out_addr_;

  std::atomic<bool> stopping_{false};
  std::atomic<std::thread::id> loop_thread_{};
  std::thread thread_;
  RelayWorkerCounters counters_;
};

template <typename F>
auto RelayWorker::call(F fn) -> Result<std::invoke_result_t<F>> {
  using T = std::invoke_result_t<F>;
  if (loop_thread_.load() == std::this_thread::get_id()) return Error{500, "call() from the worker thread"};
  auto promise = std::make_shared<std::promise<T>>();  // shared: the queued function and we both hold it
  std::future<T> done = promise->get_future();
  post([promise, fn = std::move(fn)]() mutable { promise->set_value(fn()); });
  return done.get();
}

}  // namespace pinhole::media
