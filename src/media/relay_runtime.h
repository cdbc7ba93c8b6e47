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
#include <vector>

#include "common/clock.h"
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
  const std::vector<std::unique_ptr<RelayWorker>>& workers() const { return workers_; }

 private:
  PortPool pool_;
  // Read by the workers' timeout callbacks: set while the controller lives.
  std::atomic<MediaController*> controller_ptr_{nullptr};
  std::vector<std::unique_ptr<RelayWorker>> workers_;
  std::unique_ptr<MediaController> controller_;
  bool started_ = false;
};

}  // namespace pinhole::media
