// The relay engine assembled: a port pool on one interface, the forwarding workers and the
// MediaController that runs ng commands against them. pinhole-media (app/media_main.cc) puts
// its ng server in front of it; the pinhole edge's built-in relay (media/builtin_relay.h) calls
// the controller in process. One assembly, so both shut down in the same safe order.
//
// Ownership and threads: owns the pool, the workers and the controller. Construct, then
// start() (the workers' threads), then use controller() from one thread at a time (the
// controller is single-threaded: the owner serialises), then shutdown() (or the destructor):
// the controller goes first, removing its sessions while the workers still run, then the
// workers stop. The workers' timeout reports reach the controller from their threads through
// MediaController::on_session_timeout, which only queues.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "media/fast_path.h"
#include "media/media_controller.h"
#include "media/port_pool.h"
#include "media/relay_worker.h"
#include "net/address.h"

namespace pinhole::media {

struct RelayRuntimeConfig {
  net::Address interface;   // the relay sockets bind here
  net::Address advertised;  // written into SDPs: `interface` unless behind a 1:1 NAT
  uint16_t min_port = 30000;
  uint16_t max_port = 39999;
  unsigned workers = 1;  // at least 1
  SessionConfig session;
  RelayWorkerConfig worker;
  Duration delete_delay = std::chrono::seconds(30);
  // Latched streams forwarded by the kernel (fast_path.h) when it allows (root or CAP_BPF +
  // CAP_NET_ADMIN, a specific `interface`); otherwise, or when off, all in user space.
  bool fast_path = true;
  FastPathConfig fast_path_config;
};

class RelayRuntime {
 public:
  // `clock` must outlive the runtime. Throws std::system_error when a worker cannot be created.
  RelayRuntime(const RelayRuntimeConfig& config, const Clock& clock);
  ~RelayRuntime();
  RelayRuntime(const RelayRuntime&) = delete;
  RelayRuntime& operator=(const RelayRuntime&) = delete;

  // Starts the worker threads. Once.
  void start();
  // Drops every session and stops the workers; controller() is gone afterwards. Idempotent.
  void shutdown();

  // Valid until shutdown(). One thread at a time.
  MediaController& controller() { return *controller_; }
  PortPool& pool() { return pool_; }
  // The kernel fast path, if it is on; fast_path_status() says why not otherwise (for the log).
  const FastPath* fast_path() const { return fast_path_.get(); }
  const Status& fast_path_status() const { return fast_path_status_; }
  // "on (lo, eth0; bpf program 42)" or "off (why)", for the start-up log (bench/media.sh reads
  // the program id from it).
  std::string fast_path_description() const;
  const std::vector<std::unique_ptr<RelayWorker>>& workers() const { return workers_; }

 private:
  PortPool pool_;
  // Before the workers: they hold rules in it until they are destroyed.
  std::unique_ptr<FastPath> fast_path_;
  Status fast_path_status_;
  // Read by the workers' timeout callbacks: set while the controller lives.
  std::atomic<MediaController*> controller_ptr_{nullptr};
  std::vector<std::unique_ptr<RelayWorker>> workers_;
  std::unique_ptr<MediaController> controller_;
  bool started_ = false;
};

}  // namespace pinhole::media
