// The registrar's moving parts as the daemon runs them: the store, the in-memory location service
// loaded from it at start-up, the users, digest authentication, the REGISTER logic, and the timer
// that expires bindings. Built only when the config has a `registrar:` section.
//
// Threads: create() on the main thread before the workers start; services() is then handed to
// every worker's proxy (each part is thread-safe, see proxy/registrar_services.h); start() and
// stop() on the thread that runs `io` (the daemon's main loop, which also serves the admin API).
#pragma once

#include <spdlog/logger.h>

#include <memory>

#include "app/config.h"
#include "common/metrics.h"
#include "common/result.h"
#include "proxy/registrar_services.h"
#include "transport/asio.h"

namespace pinhole::app {

class RegistrarRuntime {
 public:
  // Opens the store and loads bindings and users. Errors: the store cannot be opened (a path
  // that cannot be created, a malformed URL).
  static Result<std::unique_ptr<RegistrarRuntime>> create(const Config& config, MetricsRegistry& metrics,
                                                          std::shared_ptr<spdlog::logger> log);
  ~RegistrarRuntime();
  RegistrarRuntime(const RegistrarRuntime&) = delete;
  RegistrarRuntime& operator=(const RegistrarRuntime&) = delete;

  proxy::RegistrarServices& services();
  registrar::Location& location();
  registrar::UserDirectory& users();
  store::Store& store();

  // Starts the once-a-second expiry of lapsed bindings on `io`.
  void start(boost::asio::io_context& io);
  // Drops the timer (before its io_context goes) and writes what is queued to the store. After
  // the io_context has stopped running.
  void stop();

 private:
  struct Parts;
  explicit RegistrarRuntime(std::unique_ptr<Parts> parts);
  std::unique_ptr<Parts> parts_;
};

}  // namespace pinhole::app
