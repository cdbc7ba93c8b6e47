// The pinhole daemon's wiring: builds the layers from a validated Config in dependency order
// (transport, flow tokens, upstream resolution, metrics, one EdgeProxy per worker, the admin
// server), runs them until stop(), and tears them down in reverse.
//
// Threads: create() and run() on the main thread. run() blocks until stop() is called (from a
// signal handler set up by run(), or any thread) and returns after every worker has joined.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "app/config.h"
#include "common/result.h"

namespace pinhole::app {

class Daemon {
 public:
  // Start-up errors (a port in use, an unreadable certificate, a bad flow-token key) come back
  // as an Error whose text says what failed.
  static Result<std::unique_ptr<Daemon>> create(Config config);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Runs until SIGTERM/SIGINT or stop(). Returns the process exit code.
  int run();
  void stop();

 private:
  struct Parts;
  explicit Daemon(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace pinhole::app
