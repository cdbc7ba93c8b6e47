// The admin HTTP endpoint: Prometheus metrics (GET /metrics), a liveness check (GET /health) and
// JSON routes added by the daemon (`pinhole ctl` reads and changes registrations, users... through
// them).
//
// Not on the data plane: one io_context, typically on a thread of its own, so that a slow scrape
// never delays SIP. HTTP/1.1 with keep-alive via Boost.Beast; small and defensive: headers up to
// 8 KiB, request bodies only on POST and up to 64 KiB, a read timeout, a cap on concurrent
// connections.
//
// No authentication, by design: the port is meant for loopback (the default admin.listen is
// 127.0.0.1:9060) and for the operators who can reach it there. Whoever reaches it can list and
// remove registrations and add users, so it must never listen on an address others can reach;
// put a reverse proxy with authentication in front if it must be reachable remotely.
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
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/metrics.h"
#include "common/result.h"
#include "net/address.h"
#include "transport/asio.h"  // Asio with a GCC false positive silenced (see there)

namespace pinhole::app {

struct AdminServerOptions {
  // Connections open at once; a connection beyond this is accepted and closed at once (and counted).
  size_t max_connections = 64;
  // Time allowed to receive one whole request (request line, headers and body), which is also how
  // long an idle keep-alive connection is kept, and to send one response.
  std::chrono::milliseconds read_timeout = std::chrono::seconds(10);
  // Request line plus headers; more is answered 431 and the connection closed.
  uint32_t max_header_bytes = 8 * 1024;
  // A POST body; more is answered 413 and the connection closed. Other methods carry no body (413).
  uint32_t max_body_bytes = 64 * 1024;
};

// The methods a route can answer. HEAD is served by GET routes (the body is dropped).
enum class HttpMethod : uint8_t { kGet, kPost, kDelete };

// "GET", "POST", "DELETE".
std::string_view http_method_name(HttpMethod method);

// What a route handler gets. The views point into the connection's buffers: valid for the
// duration of the handler call only (copy what must outlive it).
struct AdminRequest {
  HttpMethod method = HttpMethod::kGet;
  std::string_view path;  // as sent, without the query string, still percent-encoded
  // Prefix routes: the path after the prefix, split at '/', each part percent-decoded
  // ("/users/" + "example.com/alice" gives {"example.com", "alice"}; nothing after the prefix
  // gives none). Exact routes: empty.
  std::vector<std::string> segments;
  // The query string as application/x-www-form-urlencoded ('+' is a space, %XX escapes decoded).
  // A name given twice keeps its last value.
  std::map<std::string, std::string, std::less<>> query;
  std::string_view body;  // POST only; empty otherwise

  // The query parameter `name`, or nullopt.
  std::optional<std::string_view> param(std::string_view name) const;
};

// Decodes %XX escapes (and '+' as a space when `plus_is_space`, for query strings). A '%' not
// followed by two hex digits, or an escape giving NUL, is an Error (status 400).
Result<std::string> percent_decode(std::string_view text, bool plus_is_space);

class AdminServer {
 public:
  // Returns the HTTP status (100-599; anything else becomes 500) and a JSON body. Runs on the
  // io_context's thread; an exception it throws is answered 500, never propagated.
  using Handler = std::function<std::pair<int, std::string>()>;
  // The same, for routes that read the request (method, path segments, query, body).
  using RequestHandler = std::function<std::pair<int, std::string>(const AdminRequest&)>;

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
  // Adds `method` on exactly `path` (query string decoded into AdminRequest::query). Before
  // start(). /metrics, /health, a (method, path) already added, or a path not starting with '/':
  // std::logic_error.
  void add_route(HttpMethod method, std::string path, RequestHandler handler);
  // Adds `method` on every path starting with `prefix`, which must start and end with '/'
  // ("/registrations/"); the rest of the path arrives in AdminRequest::segments. An exact route
  // for a path wins over a prefix route; among prefix routes the longest prefix wins. A path
  // that some route matches but not for the request's method is answered 405 with Allow. Before
  // start(); mistakes as for add_route: std::logic_error.
  void add_prefix_route(HttpMethod method, std::string prefix, RequestHandler handler);

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
