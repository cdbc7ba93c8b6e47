// AdminServer: Boost.Beast HTTP/1.1 on one io_context (see admin_server.h for the contract).
#include "app/admin_server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <map>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "common/clock.h"
#include "common/log.h"

namespace pinhole::app {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

namespace {

constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kJsonContentType = "application/json";
constexpr std::string_view kTextContentType = "text/plain; charset=utf-8";
// After an error answer the connection is closed, but only once the client has stopped sending
// (or this much was read, or this long passed): closing with unread input makes the kernel send a
// RST, which can destroy the answer before the client reads it.
constexpr size_t kLingerMaxBytes = size_t{64} * 1024;
constexpr auto kLingerTime = std::chrono::seconds(1);
// Pause before accepting again after accept() failed (EMFILE...), so the loop does not spin.
constexpr auto kAcceptRetry = std::chrono::milliseconds(100);
constexpr auto kWarnInterval = std::chrono::seconds(10);

tcp::endpoint to_asio(const net::Endpoint& e) {
  auto bytes = e.address.bytes();
  if (e.address.is_v4()) {
    asio::ip::address_v4::bytes_type b{};
    std::copy(bytes.begin(), bytes.end(), b.begin());
    return {asio::ip::address_v4(b), e.port};
  }
  asio::ip::address_v6::bytes_type b{};
  std::copy(bytes.begin(), bytes.end(), b.begin());
  return {asio::ip::address_v6(b), e.port};
}

}  // namespace

class Session;

// The server's state, co-owned by AdminServer and every pending operation. A namespace-scope type
// (AdminServer::Core, private in the header, derives from it) so that Session can name it.
struct AdminCore : std::enable_shared_from_this<AdminCore> {
  AdminCore(asio::io_context& io_context, const net::Endpoint& endpoint, MetricsRegistry& registry,
            std::shared_ptr<spdlog::logger> logger, AdminServerOptions opts)
      : io(io_context),
        listen(endpoint),
        metrics(registry),
        log(std::move(logger)),
        warn_log(log, kWarnInterval),
        options(opts),
        acceptor(io_context),
        retry_timer(io_context),
        requests(registry.counter("pinhole_admin_requests_total", "HTTP requests answered by the admin server")),
        rejected_connections(registry.counter("pinhole_admin_connections_rejected_total",
                                              "Admin connections closed at once: max_connections were open")),
        bad_requests(registry.counter("pinhole_admin_bad_requests_total",
                                      "Admin requests refused as malformed, oversized or carrying a body")),
        open(std::make_shared<std::atomic<size_t>>(0)) {
    // The gauge reads a counter it co-owns, never the Core, which may be gone before the registry.
    registry.gauge_function("pinhole_admin_connections", "Admin HTTP connections open", {},
                            [count = open] { return static_cast<double>(count->load()); });
  }

  void accept();
  void on_accept(const error_code& ec, tcp::socket socket);

  asio::io_context& io;
  net::Endpoint listen;
  MetricsRegistry& metrics;
  std::shared_ptr<spdlog::logger> log;
  RateLimitedLog warn_log;
  SteadyClock clock;  // the admin loop reads the time itself, only for rate-limiting its warnings
  AdminServerOptions options;
  std::map<std::string, AdminServer::Handler, std::less<>> routes;
  tcp::acceptor acceptor;
  asio::steady_timer retry_timer;
  bool started = false;
  bool stopped = false;
  uint16_t port = 0;
  Counter& requests;
  Counter& rejected_connections;
  Counter& bad_requests;
  std::shared_ptr<std::atomic<size_t>> open;
  // Open connections by id, so stop() can close them; an entry leaves when its Session dies.
  uint64_t next_session_id = 0;
  std::map<uint64_t, std::weak_ptr<Session>> sessions;
};

struct AdminServer::Core : AdminCore {
  using AdminCore::AdminCore;
};

// One HTTP connection. shared_ptr (enable_shared_from_this) because the pending Asio operation
// owns the connection: it lives exactly as long as a read or write is outstanding.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(std::shared_ptr<AdminCore> core, tcp::socket socket, uint64_t id)
      : core_(std::move(core)),
        stream_(std::move(socket)),
        buffer_(size_t{core_->options.max_header_bytes} * 2),
        id_(id) {
    core_->open->fetch_add(1);
  }
  ~Session() {
    core_->sessions.erase(id_);
    core_->open->fetch_sub(1);
  }
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void start() { read_request(); }
  void close() {
    // tcp_stream::close also cancels its timer; pending operations finish with an error.
    stream_.close();
  }

 private:
  void read_request();
  void on_read(const error_code& ec);
  void answer(const http::request<http::empty_body>& request);
  void answer_error(http::status status, std::string_view body);
  // What follows a response: the next request (keep-alive), a close (the client asked for it),
  // or a drain then close (an error answer while input may still be arriving).
  enum class After : uint8_t { kReadNext, kClose, kLingerThenClose };
  void write(After after);
  void linger();
  void discard();

  std::shared_ptr<AdminCore> core_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::empty_body>> parser_;
  http::response<http::string_body> response_;
  std::array<char, 4096> discard_{};
  size_t discarded_ = 0;
  uint64_t id_;
};

void AdminCore::accept() {
  acceptor.async_accept([self = shared_from_this()](const error_code& ec, tcp::socket socket) {
    self->on_accept(ec, std::move(socket));
  });
}

void AdminCore::on_accept(const error_code& ec, tcp::socket socket) {
  if (stopped || ec == asio::error::operation_aborted) return;
  if (ec) {
    warn_log.warn(clock.now(), "admin_accept_error", "admin: accept failed: {}", ec.message());
    retry_timer.expires_after(kAcceptRetry);
    retry_timer.async_wait([self = shared_from_this()](const error_code& wait_ec) {
      if (!wait_ec && !self->stopped) self->accept();
    });
    return;
  }
  if (open->load() >= options.max_connections) {
    rejected_connections.inc();
    warn_log.warn(clock.now(), "admin_connections_rejected",
                  "admin: connection refused, {} connections open (max_connections)", open->load());
    error_code ignored;
    socket.close(ignored);
  } else {
    // Responses are written whole; without NODELAY a pipelined second response can wait for the
    // delayed ACK of the first (Nagle).
    error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    uint64_t id = next_session_id++;
    auto session = std::make_shared<Session>(shared_from_this(), std::move(socket), id);
    sessions.emplace(id, session);
    session->start();
  }
  accept();
}

void Session::read_request() {
  parser_.emplace();
  parser_->header_limit(core_->options.max_header_bytes);
  parser_->body_limit(0);  // no admin request has a body
  stream_.expires_after(core_->options.read_timeout);
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](const error_code& ec, size_t) { self->on_read(ec); });
}

void Session::on_read(const error_code& ec) {
  if (core_->stopped) return;
  if (ec) {
    const auto& http_category = http::make_error_code(http::error::end_of_stream).category();
    if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
      core_->bad_requests.inc();
      core_->warn_log.warn(core_->clock.now(), "admin_header_limit", "admin: request header over {} bytes",
                           core_->options.max_header_bytes);
      answer_error(http::status::request_header_fields_too_large, "request header too large\n");
    } else if (ec == http::error::body_limit || ec == http::error::unexpected_body) {
      core_->bad_requests.inc();
      core_->warn_log.warn(core_->clock.now(), "admin_body", "admin: request with a body refused");
      answer_error(http::status::payload_too_large, "request bodies are not accepted\n");
    } else if (ec.category() == http_category && ec != http::error::end_of_stream &&
               ec != http::error::partial_message) {
      core_->bad_requests.inc();
      core_->warn_log.warn(core_->clock.now(), "admin_bad_request", "admin: malformed request: {}", ec.message());
      answer_error(http::status::bad_request, "bad request\n");
    } else {
      // The client closed, reset, or timed out (tcp_stream has already closed the socket then).
      if (ec == beast::error::timeout) core_->log->debug("admin: connection timed out");
      close();
    }
    return;
  }
  try {
    answer(parser_->get());
  } catch (const std::exception& e) {
    // Nothing may escape into the io_context; building the answer failed (bad_alloc...).
    core_->log->error("admin: cannot answer {}: {}", std::string(parser_->get().target()), e.what());
    close();
  }
}

void Session::answer(const http::request<http::empty_body>& request) {
  core_->requests.inc();
  std::string_view target(request.target().data(), request.target().size());
  std::string_view path = target.substr(0, target.find('?'));

  http::status status = http::status::ok;
  std::string_view content_type = kTextContentType;
  std::string body;
  const AdminServer::Handler* handler = nullptr;
  bool known = path == "/metrics" || path == "/health";
  if (!known) {
    auto it = core_->routes.find(path);
    if (it != core_->routes.end()) handler = &it->second;
  }
  bool is_get = request.method() == http::verb::get || request.method() == http::verb::head;

  if (!known && handler == nullptr) {
    status = http::status::not_found;
    body = "not found\n";
  } else if (!is_get) {
    status = http::status::method_not_allowed;
    body = "method not allowed\n";
  } else if (path == "/metrics") {
    content_type = kMetricsContentType;
    body = core_->metrics.render_prometheus();
  } else if (path == "/health") {
    body = "ok\n";
  } else {
    content_type = kJsonContentType;
    try {
      auto [code, json] = (*handler)();
      if (code < 100 || code > 599) throw std::out_of_range("HTTP status " + std::to_string(code));
      status = static_cast<http::status>(code);
      body = std::move(json);
    } catch (const std::exception& e) {
      core_->log->error("admin: handler for {} failed: {}", std::string(path), e.what());
      status = http::status::internal_server_error;
      body = R"({"error":"internal error"})";
    } catch (...) {
      core_->log->error("admin: handler for {} failed", std::string(path));
      status = http::status::internal_server_error;
      body = R"({"error":"internal error"})";
    }
  }

  response_ = {};
  response_.result(status);
  response_.version(request.version());
  response_.keep_alive(request.keep_alive());
  response_.set(http::field::server, "pinhole");
  response_.set(http::field::content_type, beast::string_view(content_type.data(), content_type.size()));
  if (status == http::status::method_not_allowed) response_.set(http::field::allow, "GET, HEAD");
  response_.body() = std::move(body);
  response_.prepare_payload();
  // HEAD: the same header (Content-Length of the GET answer), no body.
  if (request.method() == http::verb::head) response_.body().clear();
  write(response_.keep_alive() ? After::kReadNext : After::kClose);
}

void Session::answer_error(http::status status, std::string_view body) {
  response_ = {};
  response_.result(status);
  response_.version(11);
  response_.keep_alive(false);
  response_.set(http::field::server, "pinhole");
  response_.set(http::field::content_type, beast::string_view(kTextContentType.data(), kTextContentType.size()));
  response_.body() = std::string(body);
  response_.prepare_payload();
  write(After::kLingerThenClose);
}

void Session::write(After after) {
  stream_.expires_after(core_->options.read_timeout);
  http::async_write(stream_, response_, [self = shared_from_this(), after](const error_code& ec, size_t) {
    if (self->core_->stopped) return;
    if (ec) {
      self->close();
    } else if (after == After::kReadNext) {
      self->read_request();  // keep-alive: the buffer may already hold the next (pipelined) request
    } else if (after == After::kLingerThenClose) {
      self->linger();
    } else {
      // The client asked to close and has sent its whole request: FIN then close, no RST risk.
      error_code ignored;
      self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      self->close();
    }
  });
}

void Session::linger() {
  error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  stream_.expires_after(kLingerTime);  // one deadline for the whole drain
  discard();
}

void Session::discard() {
  stream_.async_read_some(asio::buffer(discard_), [self = shared_from_this()](const error_code& ec, size_t n) {
    if (self->core_->stopped) return;
    self->discarded_ += n;
    if (ec || self->discarded_ >= kLingerMaxBytes) {
      self->close();
    } else {
      self->discard();
    }
  });
}

AdminServer::AdminServer(asio::io_context& io, const net::Endpoint& listen, MetricsRegistry& metrics,
                         std::shared_ptr<spdlog::logger> log, AdminServerOptions options)
    : core_(std::make_shared<Core>(io, listen, metrics, std::move(log), options)) {}

AdminServer::~AdminServer() {
  try {
    stop();
  } catch (...) {  // NOLINT(bugprone-empty-catch): only bad_alloc/timer errors; a destructor must not throw
  }
}

void AdminServer::add_route(std::string path, Handler handler) {
  if (core_->started) throw std::logic_error("admin: add_route after start");
  if (path == "/metrics" || path == "/health" || core_->routes.contains(path)) {
    throw std::logic_error("admin: route " + path + " registered twice");
  }
  if (!handler) throw std::logic_error("admin: empty handler for " + path);
  core_->routes.emplace(std::move(path), std::move(handler));
}

void AdminServer::start() {
  Core& core = *core_;
  if (core.started || core.stopped) throw std::logic_error("admin: start after start or stop");
  tcp::endpoint endpoint = to_asio(core.listen);
  error_code ec;
  auto fail = [&](std::string_view what) {
    error_code ignored;
    core.acceptor.close(ignored);
    throw std::runtime_error(fmt::format("admin: cannot {} {}: {}", what, core.listen.to_string(), ec.message()));
  };
  if (core.acceptor.open(endpoint.protocol(), ec)) fail("open a socket for");
  // A restarted daemon must not wait for the old connections' TIME_WAIT to pass.
  if (core.acceptor.set_option(tcp::acceptor::reuse_address(true), ec)) fail("set SO_REUSEADDR on");
  if (core.acceptor.bind(endpoint, ec)) fail("bind");
  if (core.acceptor.listen(asio::socket_base::max_listen_connections, ec)) fail("listen on");
  core.port = core.acceptor.local_endpoint(ec).port();
  if (ec) fail("read the port of");
  core.started = true;
  core.log->info("admin: listening on {} (/metrics, /health{})", core.listen.to_string(),
                 core.routes.empty() ? "" : ", and " + std::to_string(core.routes.size()) + " more");
  core.accept();
}

void AdminServer::stop() {
  Core& core = *core_;
  if (core.stopped) return;
  core.stopped = true;
  error_code ignored;
  core.acceptor.close(ignored);
  core.retry_timer.cancel();
  // Copy first: a session may leave the table while we close the others.
  std::vector<std::shared_ptr<Session>> open;
  for (auto& [id, weak] : core.sessions) {
    if (auto session = weak.lock()) open.push_back(std::move(session));
  }
  for (auto& session : open) session->close();
}

uint16_t AdminServer::bound_port() const { return core_->port; }

size_t AdminServer::connection_count() const { return core_->open->load(); }

}  // namespace pinhole::app
