// The admin HTTP endpoint: Prometheus metrics (GET /metrics), a liveness check (GET /health) and
// JSON routes added by the daemon (`pinhole ctl` reads registrations, flows... through them).
//
// Not on the data plane: one io_context, typically on a thread of its own, so that a slow scrape
// never delays SIP. HTTP/1.1 with keep-alive via Boost.Beast; small and defensive: headers up to
// 8 KiB, no request bodies, a read timeout, a cap on concurrent connections.
//
// Threads: the io_context passed in must be run by ONE thread. start(), stop(), add_route() and
// the destructor are called on that thread, or while it is not running (e.g. before it starts);
// from elsewhere post them (boost::asio::post(io, [&] { server.stop(); })). Route handlers and
// MetricsRegistry::render_prometheus() run on that thread.
#pragma once

#include <spdlog/logger.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "common/metrics.h"
#include "net/address.h"
#include "transport/asio.h"  // Asio with a GCC false positive silenced (see there)

namespace pinhole::app {

struct AdminServerOptions {
  // Connections open at once; a connection beyond this is accepted and closed at once (and counted).
  size_t max_connections = 64;
  // Time allowed to receive one whole request (request line and headers), which is also how long
  // an idle keep-alive connection is kept, and to send one response.
  std::chrono::milliseconds read_timeout = std::chrono::seconds(10);
  // Request line plus headers; more is answered 431 and the connection closed.
  uint32_t max_header_bytes = 8 * 1024;
};

class AdminServer {
 public:
  // Returns the HTTP status (100-599; anything else becomes 500) and a JSON body. Runs on the
  // io_context's thread; an exception it throws is answered 500, never propagated.
  using Handler = std::function<std::pair<int, std::string>()>;

  // `metrics` must outlive the io_context's run (handlers render it until stop()). It also gets the
  // server's own counters (pinhole_admin_*). `log` is the "admin" component logger.
  AdminServer(boost::asio::io_context& io, const net::Endpoint& listen, MetricsRegistry& metrics,
              std::shared_ptr<spdlog::logger> log, AdminServerOptions options = {});
  ~AdminServer();  // stop()s
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // Adds GET `path` (exact match, query string ignored) answering application/json. Before start().
  // /metrics, /health and paths already added are taken: std::logic_error.
  void add_route(std::string path, Handler handler);

  // Opens, binds and listens, then accepts on the io_context. Failing to listen is a start-up
  // error: std::runtime_error naming the endpoint and the reason ("address already in use").
  void start();
  // Closes the listener and every open connection; their pending operations end with
  // operation_aborted when the io_context next runs, touching nothing but state they co-own.
  // Idempotent.
  void stop();

  // The port actually bound (the one asked for, or the kernel's choice for port 0). After start().
  uint16_t bound_port() const;
  // Connections open now. Any thread.
  size_t connection_count() const;

 private:
  struct Core;
  // Shared with every connection and pending accept: Asio handlers can still run after stop()
  // (until the io_context drains), so they co-own what they touch instead of pointing at `this`.
  std::shared_ptr<Core> core_;
};

}  // namespace pinhole::app
