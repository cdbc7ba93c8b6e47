// BorderRuntime: border mode's parts in the daemon (docs/config.md `border:`): the binding table
// the workers share, its counters and gauge, the timer that drops bindings the upstream let
// expire, and the admin API's `GET /border` listing.
//
// Threads: create() before the workers start; start()/stop() and the admin route on the main
// io_context's thread; services() is handed to the workers (thread-safe, border_services.h).
#pragma once

#include <memory>

#include "app/admin_server.h"
#include "app/config.h"
#include "common/metrics.h"
#include "proxy/border_services.h"

namespace boost::asio {
class io_context;
}

namespace pinhole::app {

class BorderRuntime {
 public:
  BorderRuntime(const BorderSettings& settings, MetricsRegistry& metrics);
  ~BorderRuntime();
  BorderRuntime(const BorderRuntime&) = delete;
  BorderRuntime& operator=(const BorderRuntime&) = delete;

  proxy::BorderServices& services() { return services_; }
  void start(boost::asio::io_context& io);
  void stop();
  // GET /border: every binding with its flows, the upstream's remaining time and the lease.
  void add_routes(AdminServer& admin);

 private:
  struct Timer;
  registrar::BorderBindings bindings_;
  proxy::BorderMetrics metrics_;
  proxy::BorderServices services_;
  Counter& expired_;
  std::unique_ptr<Timer> timer_;
};

}  // namespace pinhole::app
