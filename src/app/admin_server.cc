// AdminServer: Boost.Beast HTTP/1.1 on one io_context (see admin_server.h for the contract).
#include "app/admin_server.h"

#include <array>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <map>
#include <optional>
#include <stdexcept>
#include <string_view>
#include <tuple>
#include <vector>

#include "common/clock.h"
#include "common/log.h"
#include "transport/socket_util.h"

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

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Query parameters beyond this many are refused (400): no route takes more than a few, and the
// header limit already bounds the target's length.
constexpr size_t kMaxQueryParams = 32;

Result<std::map<std::string, std::string, std::less<>>> decode_query(std::string_view query) {
  std::map<std::string, std::string, std::less<>> out;
  size_t count = 0;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;  // "a=1&&b=2", a trailing '&'
    if (++count > kMaxQueryParams) return bad_request("too many query parameters");
    size_t eq = pair.find('=');
    auto name = percent_decode(pair.substr(0, eq), true);
    if (!name) return name.error();
    auto value = percent_decode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1), true);
    if (!value) return value.error();
    out.insert_or_assign(std::move(*name), std::move(*value));
  }
  return out;
}

Result<std::vector<std::string>> decode_segments(std::string_view rest) {
  std::vector<std::string> out;
  if (rest.empty()) return out;
  while (true) {
    size_t slash = rest.find('/');
    auto part = percent_decode(rest.substr(0, slash), false);
    if (!part) return part.error();
    out.push_back(std::move(*part));
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return out;
}

std::optional<HttpMethod> route_method(http::verb verb) {
  switch (verb) {
    case http::verb::get:
    case http::verb::head:
      return HttpMethod::kGet;
    case http::verb::post:
      return HttpMethod::kPost;
    case http::verb::delete_:
      return HttpMethod::kDelete;
    default:
      return std::nullopt;
  }
}

constexpr size_t kMethodCount = 3;

// The handlers of one path or prefix, by method.
struct RouteSet {
  std::array<AdminServer::RequestHandler, kMethodCount> by_method;

  const AdminServer::RequestHandler* find(HttpMethod method) const {
    const auto& h = by_method[static_cast<size_t>(method)];
    return h ? &h : nullptr;
  }
  // The Allow header of a 405.
  std::string allow() const {
    std::string out;
    for (size_t i = 0; i < kMethodCount; ++i) {
      if (!by_method[i]) continue;
      if (!out.empty()) out += ", ";
      out += http_method_name(static_cast<HttpMethod>(i));
      if (static_cast<HttpMethod>(i) == HttpMethod::kGet) out += ", HEAD";
    }
    return out;
  }
};

}  // namespace

std::string_view http_method_name(HttpMethod method) {
  switch (method) {
    case HttpMethod::kGet:
      return "GET";
    case HttpMethod::kPost:
      return "POST";
    case HttpMethod::kDelete:
      return "DELETE";
  }
  return "?";
}

std::optional<std::string_view> AdminRequest::param(std::string_view name) const {
  auto it = query.find(name);
  if (it == query.end()) return std::nullopt;
  return std::string_view(it->second);
}

Result<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else if (c == '%') {
      int hi = i + 2 < text.size() ? hex_digit(text[i + 1]) : -1;
      int lo = i + 2 < text.size() ? hex_digit(text[i + 2]) : -1;
      if (hi < 0 || lo < 0) return bad_request("malformed percent escape");
      int byte = hi * 16 + lo;
      if (byte == 0) return bad_request("percent escape of NUL");
      out.push_back(static_cast<char>(byte));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

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
                                      "Admin requests refused as malformed, oversized or carrying a body "
                                      "where none is accepted")),
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
  // Exact paths and prefixes; RouteSet holds a handler per method.
  std::map<std::string, RouteSet, std::less<>> routes;
  std::map<std::string, RouteSet, std::less<>> prefix_routes;
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
  void on_header(const error_code& ec);
  void on_read(const error_code& ec);
  // Answers a read error; false when there was none.
  bool read_failed(const error_code& ec);
  void answer(const http::request<http::string_body>& request);
  // Runs a route handler; the status and JSON body, or 400 with text for a malformed target.
  std::pair<http::status, std::string> call_route(const http::request<http::string_body>& request,
                                                  const AdminServer::RequestHandler& handler, std::string_view path,
                                                  std::string_view query, std::string_view prefix,
                                                  std::string_view& content_type);
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
  std::optional<http::request_parser<http::string_body>> parser_;
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
  // Checked against Content-Length as soon as the header is in, and against a chunked body as it
  // arrives; whether this method may carry a body at all is decided in on_header().
  parser_->body_limit(core_->options.max_body_bytes);
  // One deadline for the whole request, header and body.
  stream_.expires_after(core_->options.read_timeout);
  http::async_read_header(stream_, buffer_, *parser_,
                          [self = shared_from_this()](const error_code& ec, size_t) { self->on_header(ec); });
}

void Session::on_header(const error_code& ec) {
  if (core_->stopped || read_failed(ec)) return;
  const auto& request = parser_->get();
  bool has_body = parser_->chunked() || parser_->content_length().value_or(0) > 0;
  if (has_body && request.method() != http::verb::post) {
    core_->bad_requests.inc();
    core_->warn_log.warn(core_->clock.now(), "admin_body", "admin: request with a body refused ({})",
                         std::string(request.method_string()));
    answer_error(http::status::payload_too_large, "request bodies are accepted on POST only\n");
    return;
  }
  if (parser_->is_done()) {
    on_read({});
    return;
  }
  http::async_read(stream_, buffer_, *parser_,
                   [self = shared_from_this()](const error_code& read_ec, size_t) { self->on_read(read_ec); });
}

bool Session::read_failed(const error_code& ec) {
  if (!ec) return false;
  const auto& http_category = http::make_error_code(http::error::end_of_stream).category();
  if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
    core_->bad_requests.inc();
    core_->warn_log.warn(core_->clock.now(), "admin_header_limit", "admin: request header over {} bytes",
                         core_->options.max_header_bytes);
    answer_error(http::status::request_header_fields_too_large, "request header too large\n");
  } else if (ec == http::error::body_limit) {
    core_->bad_requests.inc();
    core_->warn_log.warn(core_->clock.now(), "admin_body_limit", "admin: request body over {} bytes",
                         core_->options.max_body_bytes);
    answer_error(http::status::payload_too_large, "request body too large\n");
  } else if (ec.category() == http_category && ec != http::error::end_of_stream && ec != http::error::partial_message) {
    core_->bad_requests.inc();
    core_->warn_log.warn(core_->clock.now(), "admin_bad_request", "admin: malformed request: {}", ec.message());
    answer_error(http::status::bad_request, "bad request\n");
  } else {
    // The client closed, reset, or timed out (tcp_stream has already closed the socket then).
    if (ec == beast::error::timeout) core_->log->debug("admin: connection timed out");
    close();
  }
  return true;
}

void Session::on_read(const error_code& ec) {
  if (core_->stopped || read_failed(ec)) return;
  try {
    answer(parser_->get());
  } catch (const std::exception& e) {
    // Nothing may escape into the io_context; building the answer failed (bad_alloc...).
    core_->log->error("admin: cannot answer {}: {}", std::string(parser_->get().target()), e.what());
    close();
  }
}

void Session::answer(const http::request<http::string_body>& request) {
  core_->requests.inc();
  std::string_view target(request.target().data(), request.target().size());
  size_t question = target.find('?');
  std::string_view path = target.substr(0, question);
  std::string_view query = question == std::string_view::npos ? std::string_view{} : target.substr(question + 1);

  http::status status = http::status::ok;
  std::string_view content_type = kTextContentType;
  std::string body;
  std::string allow;
  bool builtin = path == "/metrics" || path == "/health";
  const RouteSet* routes = nullptr;
  std::string_view prefix;
  if (!builtin) {
    if (auto it = core_->routes.find(path); it != core_->routes.end()) {
      routes = &it->second;
    } else {
      // Longest matching prefix; a handful of routes, so a scan is fine.
      for (const auto& [p, set] : core_->prefix_routes) {
        if (path.starts_with(p) && p.size() > prefix.size()) {
          prefix = p;
          routes = &set;
        }
      }
    }
  }
  std::optional<HttpMethod> method = route_method(request.method());
  bool is_get = method == HttpMethod::kGet;

  if (!builtin && routes == nullptr) {
    status = http::status::not_found;
    body = "not found\n";
  } else if (builtin && !is_get) {
    status = http::status::method_not_allowed;
    allow = "GET, HEAD";
    body = "method not allowed\n";
  } else if (path == "/metrics") {
    content_type = kMetricsContentType;
    body = core_->metrics.render_prometheus();
  } else if (path == "/health") {
    body = "ok\n";
  } else if (const AdminServer::RequestHandler* handler = method ? routes->find(*method) : nullptr;
             handler == nullptr) {
    status = http::status::method_not_allowed;
    allow = routes->allow();
    body = "method not allowed\n";
  } else {
    std::tie(status, body) = call_route(request, *handler, path, query, prefix, content_type);
  }

  response_ = {};
  response_.result(status);
  response_.version(request.version());
  response_.keep_alive(request.keep_alive());
  response_.set(http::field::server, "pinhole");
  response_.set(http::field::content_type, beast::string_view(content_type.data(), content_type.size()));
  if (!allow.empty()) response_.set(http::field::allow, allow);
  response_.body() = std::move(body);
  response_.prepare_payload();
  // HEAD: the same header (Content-Length of the GET answer), no body.
  if (request.method() == http::verb::head) response_.body().clear();
  write(response_.keep_alive() ? After::kReadNext : After::kClose);
}

std::pair<http::status, std::string> Session::call_route(const http::request<http::string_body>& request,
                                                         const AdminServer::RequestHandler& handler,
                                                         std::string_view path, std::string_view query,
                                                         std::string_view prefix, std::string_view& content_type) {
  AdminRequest admin_request;
  admin_request.method = *route_method(request.method());
  admin_request.path = path;
  admin_request.body = request.body();
  auto decoded_query = decode_query(query);
  auto segments = decode_segments(prefix.empty() ? std::string_view{} : path.substr(prefix.size()));
  if (!decoded_query || !segments) {
    // A well-formed HTTP request with a bad target: answered, and the connection kept.
    core_->bad_requests.inc();
    core_->warn_log.warn(core_->clock.now(), "admin_bad_target", "admin: malformed request target: {}",
                         !decoded_query ? decoded_query.error().what : segments.error().what);
    return {
        http::status::bad_request,
        fmt::format("bad request target: {}\n", !decoded_query ? decoded_query.error().what : segments.error().what)};
  }
  admin_request.query = std::move(*decoded_query);
  admin_request.segments = std::move(*segments);
  content_type = kJsonContentType;
  try {
    auto [code, json] = handler(admin_request);
    if (code < 100 || code > 599) throw std::out_of_range("HTTP status " + std::to_string(code));
    return {static_cast<http::status>(code), std::move(json)};
  } catch (const std::exception& e) {
    core_->log->error("admin: handler for {} {} failed: {}", http_method_name(admin_request.method), std::string(path),
                      e.what());
  } catch (...) {
    core_->log->error("admin: handler for {} {} failed", http_method_name(admin_request.method), std::string(path));
  }
  return {http::status::internal_server_error, R"({"error":"internal error"})"};
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
  if (!handler) throw std::logic_error("admin: empty handler for " + path);
  add_route(HttpMethod::kGet, std::move(path),
            [handler = std::move(handler)](const AdminRequest&) { return handler(); });
}

void AdminServer::add_route(HttpMethod method, std::string path, RequestHandler handler) {
  if (core_->started) throw std::logic_error("admin: add_route after start");
  if (!path.starts_with('/')) throw std::logic_error("admin: route " + path + " does not start with '/'");
  if (path == "/metrics" || path == "/health") throw std::logic_error("admin: route " + path + " is built in");
  if (!handler) throw std::logic_error("admin: empty handler for " + path);
  auto route = core_->routes.try_emplace(std::move(path)).first;
  auto& slot = route->second.by_method[static_cast<size_t>(method)];
  if (slot) {
    throw std::logic_error("admin: route " + std::string(http_method_name(method)) + " " + route->first +
                           " registered twice");
  }
  slot = std::move(handler);
}

void AdminServer::add_prefix_route(HttpMethod method, std::string prefix, RequestHandler handler) {
  if (core_->started) throw std::logic_error("admin: add_prefix_route after start");
  if (prefix.size() < 2 || !prefix.starts_with('/') || !prefix.ends_with('/')) {
    throw std::logic_error("admin: route prefix " + prefix + " must start and end with '/'");
  }
  if (!handler) throw std::logic_error("admin: empty handler for " + prefix);
  auto route = core_->prefix_routes.try_emplace(std::move(prefix)).first;
  auto& slot = route->second.by_method[static_cast<size_t>(method)];
  if (slot) {
    throw std::logic_error("admin: route " + std::string(http_method_name(method)) + " " + route->first +
                           " registered twice");
  }
  slot = std::move(handler);
}

void AdminServer::start() {
  Core& core = *core_;
  if (core.started || core.stopped) throw std::logic_error("admin: start after start or stop");
  tcp::endpoint endpoint = transport::to_asio<tcp::endpoint>(core.listen);
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
  size_t more = core.routes.size() + core.prefix_routes.size();
  core.log->info("admin: listening on {} (/metrics, /health{})", core.listen.to_string(),
                 more == 0 ? "" : ", and " + std::to_string(more) + " more");
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
