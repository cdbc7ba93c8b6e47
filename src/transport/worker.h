// One worker: an io_context run by one thread, with the sockets, acceptors and connections it
// owns (DESIGN.md §2: shared-nothing per loop). Everything here except post(), the id counter
// and the counters is touched only on the worker's own thread once run() started.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "transport/asio.h"
#include "transport/connection_table.h"
#include "transport/layer_shared.h"
#include "transport/worker_counters.h"

namespace pinhole::transport {

class UdpEndpoint;
class StreamListener;

class Worker {
 public:
  Worker(uint32_t index, LayerShared& shared);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  uint32_t index() const { return index_; }
  boost::asio::io_context& io() { return io_; }
  LayerShared& shared() { return shared_; }
  WorkerCounters& counters() { return counters_; }
  const WorkerCounters& counters() const { return counters_; }
  MessageHandler* handler() const { return handler_; }
  void set_handler(MessageHandler* handler) { handler_ = handler; }
  ConnectionTable& connections() { return connections_; }

  // Sockets by listener id (null where the listener is of the other kind). Filled by create().
  std::vector<std::unique_ptr<UdpEndpoint>>& udp() { return udp_; }
  std::vector<std::unique_ptr<StreamListener>>& listeners() { return listeners_; }
  UdpEndpoint* udp(uint32_t socket_id) const;
  // This worker's own socket per UDP listener (same address, a port of its own) for requests it
  // sends with send_to: the responses, addressed to that port by our Via, come back to this
  // worker. The listener's shared port would let the kernel hand them to any worker.
  std::vector<std::unique_ptr<UdpEndpoint>>& udp_client() { return udp_client_; }
  UdpEndpoint* udp_client(uint32_t socket_id) const {
    return socket_id < udp_client_.size() ? udp_client_[socket_id].get() : nullptr;
  }

  // Any thread. Never 0; the worker index is in the top 8 bits.
  uint64_t next_connection_id();

  // Worker thread. While a UDP receive batch is being handled, datagrams sent on this worker's
  // UDP sockets wait for end_batch(), which sends each socket's queue with one sendmmsg (e.g. the
  // 100 Trying to the client and the forwarded INVITE upstream, from one wake-up). Without it a
  // flush is posted to the loop, and a queued handler makes Asio poll epoll once more (timeout 0)
  // before it can sleep: one system call per wake-up for nothing.
  void begin_batch() { batching_ = true; }
  bool batching() const { return batching_; }
  // `endpoint` is flushed at end_batch(); each endpoint asks once per batch.
  void defer_flush(UdpEndpoint* endpoint) { deferred_.push_back(endpoint); }
  void end_batch();

  // The worker whose thread this is, or null on any other thread (of any layer).
  static Worker* current();
  bool on_own_thread() const { return current() == this; }

  void start_thread();
  // Any thread: closes everything on the worker's thread and lets its loop run dry.
  void request_stop();
  void join();
  // Worker thread (or any thread once no loop runs): closes sockets, acceptors and connections.
  void close_all();

 private:
  uint32_t index_;
  LayerShared& shared_;
  // Declared first so it is destroyed last: sockets and handlers below belong to it.
  boost::asio::io_context io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> guard_;
  WorkerCounters counters_;
  MessageHandler* handler_ = nullptr;
  ConnectionTable connections_;
  std::vector<std::unique_ptr<UdpEndpoint>> udp_;
  std::vector<std::unique_ptr<UdpEndpoint>> udp_client_;
  std::vector<std::unique_ptr<StreamListener>> listeners_;
  std::atomic<uint64_t> next_id_{0};
  bool batching_ = false;
  std::vector<UdpEndpoint*> deferred_;  // endpoints with datagrams queued in this batch
  std::thread thread_;
};

}  // namespace pinhole::transport
