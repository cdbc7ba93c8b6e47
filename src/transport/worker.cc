#include "transport/worker.h"

#include <cstdio>
#include <exception>

#include "transport/asio.h"
#include "transport/stream_connection.h"
#include "transport/stream_listener.h"
#include "transport/udp_endpoint.h"

namespace pinhole::transport {
namespace {

thread_local Worker* t_current_worker = nullptr;

}  // namespace

Worker::Worker(uint32_t index, LayerShared& shared) : index_(index), shared_(shared), io_(1) {
  guard_.emplace(io_.get_executor());
}

Worker::~Worker() {
  join();
  // Members go in reverse order: connections, listeners and sockets first, the io_context last
  // (which destroys, without running them, handlers still queued, and what they own).
}

UdpEndpoint* Worker::udp(uint32_t socket_id) const { return socket_id < udp_.size() ? udp_[socket_id].get() : nullptr; }

uint64_t Worker::next_connection_id() {
  uint64_t n = next_id_.fetch_add(1, std::memory_order_relaxed) + 1;
  return (uint64_t{index_} << kWorkerShift) | (n & ((uint64_t{1} << kWorkerShift) - 1));
}

Worker* Worker::current() { return t_current_worker; }

void Worker::end_batch() {
  batching_ = false;
  // Index loop: a flush never defers again (batching_ is off), but stay safe if it did.
  for (size_t i = 0; i < deferred_.size(); ++i) deferred_[i]->flush_deferred();
  deferred_.clear();
}

void Worker::start_thread() {
  thread_ = std::thread([this] {
    t_current_worker = this;
    for (;;) {
      // Handlers do not throw (error_code overloads everywhere); a throw is a bug, reported and
      // survived so one bad message does not take the edge down.
      try {
        io_.run();
        break;
      } catch (const std::exception& e) {
        std::fprintf(stderr, "pinhole transport worker %u: unexpected exception: %s\n", index_, e.what());
      }
    }
    t_current_worker = nullptr;
  });
}

void Worker::request_stop() {
  boost::asio::post(io_, [this] {
    close_all();
    guard_.reset();
  });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::close_all() {
  for (auto& u : udp_) {
    if (u) u->close();
  }
  for (auto& u : udp_client_) {
    if (u) u->close();
  }
  for (auto& l : listeners_) {
    if (l) l->close();
  }
  for (auto& c : connections_.snapshot()) c->close();
  guard_.reset();
}

}  // namespace pinhole::transport
