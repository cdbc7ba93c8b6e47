// AdminServer on 127.0.0.1 port 0: routes, status codes, limits, keep-alive and stop(). The server
// and the test's client share one io_context run by the test thread, so nothing races; every wait
// is bounded and ends on a condition (a response, a close), never on elapsed time.
#include "app/admin_server.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace pinhole::app {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;

constexpr auto kWaitLimit = std::chrono::seconds(10);

// Runs `io` until `done()` holds; false if kWaitLimit passed first (a hung server fails the test
// rather than the test hanging).
template <typename Pred>
bool run_until(asio::io_context& io, Pred done) {
  auto deadline = std::chrono::steady_clock::now() + kWaitLimit;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (io.stopped()) io.restart();
    io.run_one_for(std::chrono::milliseconds(50));
  }
  return true;
}

// A raw HTTP client: sends exact bytes, reads responses with Beast.
class Client {
 public:
  Client(asio::io_context& io, uint16_t port) : io_(io), socket_(io) {
    bool done = false;
    socket_.async_connect({asio::ip::make_address("127.0.0.1"), port}, [&](const error_code& ec) {
      connect_error_ = ec;
      done = true;
    });
    EXPECT_TRUE(run_until(io_, [&] { return done; }));
  }
  const error_code& connect_error() const { return connect_error_; }

  void send(const std::string& bytes) {
    bool done = false;
    asio::async_write(socket_, asio::buffer(bytes), [&](const error_code& ec, size_t) {
      EXPECT_FALSE(ec) << ec.message();
      done = true;
    });
    EXPECT_TRUE(run_until(io_, [&] { return done; }));
  }

  // The next response, or nullopt if the connection ended first.
  std::optional<http::response<http::string_body>> read(bool head = false) {
    http::response_parser<http::string_body> parser;
    parser.skip(head);
    bool done = false;
    error_code result;
    http::async_read(socket_, buffer_, parser, [&](const error_code& ec, size_t) {
      result = ec;
      done = true;
    });
    EXPECT_TRUE(run_until(io_, [&] { return done; }));
    if (result) return std::nullopt;
    return parser.release();
  }

  // Whether the server closes the connection (EOF or reset) without sending anything more.
  bool closed_by_server() {
    bool done = false;
    size_t got = 0;
    error_code result;
    std::array<char, 256> scratch{};
    socket_.async_read_some(asio::buffer(scratch), [&](const error_code& ec, size_t n) {
      result = ec;
      got = n;
      done = true;
    });
    if (!run_until(io_, [&] { return done; })) return false;
    return got == 0 && (result == asio::error::eof || result == asio::error::connection_reset);
  }

  std::optional<http::response<http::string_body>> get(const std::string& target, bool keep_alive = false) {
    send("GET " + target + " HTTP/1.1\r\nHost: localhost\r\n" + (keep_alive ? "" : "Connection: close\r\n") + "\r\n");
    return read();
  }

 private:
  asio::io_context& io_;
  tcp::socket socket_;
  beast::flat_buffer buffer_;
  error_code connect_error_;
};

class AdminServerTest : public ::testing::Test {
 protected:
  void start(AdminServerOptions options = {}) {
    server_ = std::make_unique<AdminServer>(io_, net::Endpoint::parse("127.0.0.1:0").value(), metrics_, log_, options);
    for (auto& [path, handler] : routes_) server_->add_route(path, handler);
    server_->start();
    ASSERT_NE(server_->bound_port(), 0);
  }
  Client client() { return Client(io_, server_->bound_port()); }
  bool wait_connections(size_t n) {
    return run_until(io_, [&] { return server_->connection_count() == n; });
  }

  asio::io_context io_;
  MetricsRegistry metrics_;
  std::shared_ptr<spdlog::logger> log_ =
      std::make_shared<spdlog::logger>("admin", std::make_shared<spdlog::sinks::null_sink_mt>());
  std::vector<std::pair<std::string, AdminServer::Handler>> routes_;
  std::unique_ptr<AdminServer> server_;
};

TEST_F(AdminServerTest, MetricsServesTheRegistry) {
  metrics_.counter("pinhole_test_drops_total", "Test drops", {{"reason", "parse"}}).inc(5);
  start();
  auto c = client();
  auto r = c.get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ((*r)[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  EXPECT_NE(r->body().find("# TYPE pinhole_test_drops_total counter\n"), std::string::npos) << r->body();
  EXPECT_NE(r->body().find("pinhole_test_drops_total{reason=\"parse\"} 5\n"), std::string::npos) << r->body();
  // The server counts itself too.
  EXPECT_NE(r->body().find("pinhole_admin_requests_total 1\n"), std::string::npos) << r->body();
  EXPECT_NE(r->body().find("pinhole_admin_connections 1\n"), std::string::npos) << r->body();
  EXPECT_TRUE(c.closed_by_server());  // Connection: close honoured
}

TEST_F(AdminServerTest, HealthAndQueryStringIgnored) {
  start();
  auto c = client();
  auto r = c.get("/health?verbose=1");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ(r->body(), "ok\n");
}

TEST_F(AdminServerTest, UnknownPathIs404AndOtherMethodsAre405) {
  start();
  {
    auto c = client();
    auto r = c.get("/nope");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 404);
  }
  {
    auto c = client();
    c.send("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    auto r = c.read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 405);
    EXPECT_EQ((*r)[http::field::allow], "GET, HEAD");
  }
  {
    auto c = client();
    c.send("DELETE /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    auto r = c.read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 405);
  }
}

TEST_F(AdminServerTest, HeadGivesTheHeaderOnly) {
  start();
  auto c = client();
  c.send("HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n");
  auto r = c.read(/*head=*/true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ((*r)[http::field::content_length], "3");
  EXPECT_EQ(r->body(), "");
  // Keep-alive still works after a HEAD (no stray body bytes on the connection).
  auto again = c.get("/health");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->body(), "ok\n");
}

TEST_F(AdminServerTest, ExtraRoutesAnswerJson) {
  routes_.emplace_back("/registrations", [] { return std::pair<int, std::string>{200, R"({"count":2})"}; });
  routes_.emplace_back("/missing", [] { return std::pair<int, std::string>{404, R"({"error":"none"})"}; });
  routes_.emplace_back("/throws", []() -> std::pair<int, std::string> { throw std::runtime_error("boom"); });
  routes_.emplace_back("/bad-status", [] { return std::pair<int, std::string>{1000, "{}"}; });
  start();
  auto c = client();
  auto r = c.get("/registrations", /*keep_alive=*/true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ((*r)[http::field::content_type], "application/json");
  EXPECT_EQ(r->body(), R"({"count":2})");

  r = c.get("/missing", true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 404);
  EXPECT_EQ(r->body(), R"({"error":"none"})");

  r = c.get("/throws", true);  // the exception stays inside: 500, connection still usable
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 500);
  r = c.get("/bad-status", true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 500);
  r = c.get("/health", true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
}

TEST_F(AdminServerTest, RouteRegistrationMistakesThrow) {
  AdminServer server(io_, net::Endpoint::parse("127.0.0.1:0").value(), metrics_, log_);
  auto h = [] { return std::pair<int, std::string>{200, "{}"}; };
  server.add_route("/a", h);
  EXPECT_THROW(server.add_route("/a", h), std::logic_error);
  EXPECT_THROW(server.add_route("/metrics", h), std::logic_error);
  EXPECT_THROW(server.add_route("/health", h), std::logic_error);
  EXPECT_THROW(server.add_route("/b", nullptr), std::logic_error);
  server.start();
  EXPECT_THROW(server.add_route("/c", h), std::logic_error);
}

TEST_F(AdminServerTest, KeepAliveServesSeveralRequestsIncludingPipelined) {
  start();
  auto c = client();
  for (int i = 0; i < 3; ++i) {
    auto r = c.get("/health", /*keep_alive=*/true);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->body(), "ok\n");
    EXPECT_TRUE(r->keep_alive());
  }
  c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n");
  auto first = c.read();
  auto second = c.read();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->result_int(), 200);
  EXPECT_EQ(second->result_int(), 404);
  EXPECT_EQ(server_->connection_count(), 1u);
}

TEST_F(AdminServerTest, OversizedHeaderIsRefusedAndClosed) {
  start();
  auto c = client();
  c.send("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n");
  auto r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 431);
  EXPECT_FALSE(r->keep_alive());
  EXPECT_TRUE(c.closed_by_server());
  EXPECT_EQ(metrics_.counter("pinhole_admin_bad_requests_total", "").value(), 1u);
}

TEST_F(AdminServerTest, MalformedRequestAndBodyAreRefused) {
  start();
  {
    auto c = client();
    c.send("THIS IS NOT HTTP\r\n\r\n");
    auto r = c.read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 400);
    EXPECT_TRUE(c.closed_by_server());
  }
  {
    auto c = client();
    c.send("GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    auto r = c.read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 413);
    EXPECT_TRUE(c.closed_by_server());
  }
  EXPECT_EQ(metrics_.counter("pinhole_admin_bad_requests_total", "").value(), 2u);
}

TEST_F(AdminServerTest, IdleConnectionIsClosedAfterTheReadTimeout) {
  AdminServerOptions options;
  options.read_timeout = std::chrono::milliseconds(50);
  start(options);
  auto c = client();
  c.send("GET /health HTTP/1.1\r\n");  // never finished
  EXPECT_TRUE(c.closed_by_server());
  EXPECT_TRUE(wait_connections(0));
}

TEST_F(AdminServerTest, ConnectionsBeyondTheLimitAreClosed) {
  AdminServerOptions options;
  options.max_connections = 2;
  start(options);
  auto a = client();
  auto b = client();
  ASSERT_TRUE(a.get("/health", true));  // both accepted and served
  ASSERT_TRUE(b.get("/health", true));
  EXPECT_EQ(server_->connection_count(), 2u);

  auto refused = client();
  EXPECT_TRUE(refused.closed_by_server());
  EXPECT_EQ(metrics_.counter("pinhole_admin_connections_rejected_total", "").value(), 1u);

  // Once one closes, a new connection is served again.
  a.send("GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  ASSERT_TRUE(a.read());
  EXPECT_TRUE(wait_connections(1));
  auto c = client();
  auto r = c.get("/health");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
}

TEST_F(AdminServerTest, StopClosesListenerAndConnections) {
  start();
  auto c = client();
  ASSERT_TRUE(c.get("/health", true));
  uint16_t port = server_->bound_port();
  server_->stop();
  EXPECT_TRUE(c.closed_by_server());
  EXPECT_TRUE(wait_connections(0));
  Client late(io_, port);
  EXPECT_TRUE(late.connect_error());
  server_->stop();  // idempotent
  server_.reset();  // destroy after stop, with the io_context still alive
  io_.restart();
  io_.poll();
}

TEST_F(AdminServerTest, ListenFailureIsAStartUpError) {
  start();
  AdminServer second(io_, net::Endpoint::parse("127.0.0.1:" + std::to_string(server_->bound_port())).value(), metrics_,
                     log_);
  EXPECT_THROW(second.start(), std::runtime_error);
}

TEST_F(AdminServerTest, DestroyingTheServerWithConnectionsOpenIsSafe) {
  start();
  auto c = client();
  ASSERT_TRUE(c.get("/health", true));
  c.send("GET /health HTTP/1.1\r\n");  // a read in progress
  server_.reset();                     // stop() from the destructor; handlers still queued
  EXPECT_TRUE(c.closed_by_server());   // runs the aborted handlers: nothing dangles
}

// --- method and prefix routes, query strings, request bodies ---

// What a RequestHandler saw, copied out of the request (whose views die with the call).
struct Seen {
  int calls = 0;
  HttpMethod method = HttpMethod::kGet;
  std::string path;
  std::vector<std::string> segments;
  std::map<std::string, std::string, std::less<>> query;
  std::string body;
};

AdminServer::RequestHandler recorder(Seen& seen, std::string answer) {
  return [&seen, answer = std::move(answer)](const AdminRequest& r) {
    ++seen.calls;
    seen.method = r.method;
    seen.path = std::string(r.path);
    seen.segments = r.segments;
    seen.query = r.query;
    seen.body = std::string(r.body);
    return std::pair<int, std::string>{200, answer};
  };
}

class AdminRoutesTest : public AdminServerTest {
 protected:
  void start_with_routes(AdminServerOptions options = {}) {
    server_ = std::make_unique<AdminServer>(io_, net::Endpoint::parse("127.0.0.1:0").value(), metrics_, log_, options);
    server_->add_route(HttpMethod::kGet, "/things", recorder(list_, R"({"route":"list"})"));
    server_->add_route(HttpMethod::kPost, "/things", recorder(create_, R"({"route":"create"})"));
    server_->add_prefix_route(HttpMethod::kGet, "/things/", recorder(show_, R"({"route":"show"})"));
    server_->add_prefix_route(HttpMethod::kDelete, "/things/", recorder(remove_, R"({"route":"remove"})"));
    server_->add_prefix_route(HttpMethod::kGet, "/things/special/", recorder(special_, R"({"route":"special"})"));
    server_->add_route(HttpMethod::kGet, "/things/exact", recorder(exact_, R"({"route":"exact"})"));
    server_->start();
  }
  std::optional<http::response<http::string_body>> request(Client& c, const std::string& method,
                                                           const std::string& target, const std::string& body = "",
                                                           bool keep_alive = true) {
    std::string text = method + " " + target + " HTTP/1.1\r\nHost: x\r\n";
    if (!body.empty()) text += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    if (!keep_alive) text += "Connection: close\r\n";
    c.send(text + "\r\n" + body);
    return c.read();
  }

  Seen list_, create_, show_, remove_, special_, exact_;
};

TEST_F(AdminRoutesTest, MethodsSelectTheHandlerAndOthersGet405WithAllow) {
  start_with_routes();
  auto c = client();
  auto r = request(c, "GET", "/things");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ(r->body(), R"({"route":"list"})");
  EXPECT_EQ((*r)[http::field::content_type], "application/json");

  r = request(c, "POST", "/things", R"({"name":"a"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body(), R"({"route":"create"})");
  EXPECT_EQ(create_.method, HttpMethod::kPost);
  EXPECT_EQ(create_.body, R"({"name":"a"})");

  r = request(c, "DELETE", "/things");  // no DELETE on the exact path
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 405);
  EXPECT_EQ((*r)[http::field::allow], "GET, HEAD, POST");

  r = request(c, "PUT", "/things/x");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 405);
  EXPECT_EQ((*r)[http::field::allow], "GET, HEAD, DELETE");

  r = request(c, "DELETE", "/things/x");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body(), R"({"route":"remove"})");
  EXPECT_EQ(remove_.method, HttpMethod::kDelete);
  EXPECT_EQ(list_.calls, 1);
  EXPECT_EQ(show_.calls, 0);

  // HEAD runs the GET handler and sends its header only.
  c.send("HEAD /things HTTP/1.1\r\nHost: x\r\n\r\n");
  r = c.read(/*head=*/true);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ((*r)[http::field::content_length], std::to_string(std::string(R"({"route":"list"})").size()));
  EXPECT_EQ(list_.calls, 2);

  r = request(c, "GET", "/thingsx");  // not under the "/things/" prefix
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 404);
}

TEST_F(AdminRoutesTest, PrefixRoutesGetDecodedSegmentsExactAndLongestWin) {
  start_with_routes();
  auto c = client();
  auto r = request(c, "GET", "/things/sip%3Aalice%40example.com");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body(), R"({"route":"show"})");
  EXPECT_EQ(show_.path, "/things/sip%3Aalice%40example.com");
  EXPECT_EQ(show_.segments, std::vector<std::string>({"sip:alice@example.com"}));

  // A '/' escaped inside a segment stays in it; a literal one splits.
  r = request(c, "GET", "/things/a%2Fb/c+d");
  ASSERT_TRUE(r);
  EXPECT_EQ(show_.segments, std::vector<std::string>({"a/b", "c+d"}));  // '+' is a space only in queries

  r = request(c, "GET", "/things/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_TRUE(show_.segments.empty());

  r = request(c, "GET", "/things/special/one");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body(), R"({"route":"special"})");
  EXPECT_EQ(special_.segments, std::vector<std::string>({"one"}));

  r = request(c, "GET", "/things/exact");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->body(), R"({"route":"exact"})");
  EXPECT_TRUE(exact_.segments.empty());

  // DELETE on the longer prefix is not routed to the shorter prefix's DELETE: the path belongs
  // to "/things/special/", which has GET only.
  r = request(c, "DELETE", "/things/special/one");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 405);
  EXPECT_EQ((*r)[http::field::allow], "GET, HEAD");
}

TEST_F(AdminRoutesTest, QueryStringIsDecoded) {
  start_with_routes();
  auto c = client();
  auto r = request(c, "GET", "/things?search=a%40b+c&limit=5&flag&&x=1&x=2&empty=");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  std::map<std::string, std::string, std::less<>> expected{
      {"search", "a@b c"}, {"limit", "5"}, {"flag", ""}, {"x", "2"}, {"empty", ""}};
  EXPECT_EQ(list_.query, expected);
  EXPECT_EQ(list_.path, "/things");

  r = request(c, "GET", "/things/k%3D1?binding=%3Curn%3Auuid%3A1%3E%3Breg-id%3D1");
  ASSERT_TRUE(r);
  EXPECT_EQ(show_.segments, std::vector<std::string>({"k=1"}));
  EXPECT_EQ(show_.query.at("binding"), "<urn:uuid:1>;reg-id=1");
}

TEST_F(AdminRoutesTest, MalformedEscapesAre400AndTheConnectionStaysUsable) {
  start_with_routes();
  auto c = client();
  for (const char* target :
       {"/things?search=%4", "/things?search=%zz", "/things/%G1", "/things/a%00b", "/things?a%=1"}) {
    auto r = request(c, "GET", target);
    ASSERT_TRUE(r) << target;
    EXPECT_EQ(r->result_int(), 400) << target;
    EXPECT_TRUE(r->keep_alive()) << target;
  }
  EXPECT_EQ(list_.calls + show_.calls, 0);
  auto r = request(c, "GET", "/things");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ(metrics_.counter("pinhole_admin_bad_requests_total", "").value(), 5u);
}

TEST_F(AdminRoutesTest, TooManyQueryParametersAre400) {
  start_with_routes();
  auto c = client();
  std::string target = "/things?";
  for (int i = 0; i < 33; ++i) target += "p" + std::to_string(i) + "=1&";
  auto r = request(c, "GET", target);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 400);
  target = "/things?";
  for (int i = 0; i < 32; ++i) target += "p" + std::to_string(i) + "=1&";
  r = request(c, "GET", target);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ(list_.query.size(), 32u);
}

TEST_F(AdminRoutesTest, PostBodiesUpToTheLimitAreAccepted) {
  AdminServerOptions options;
  options.max_body_bytes = 100;
  start_with_routes(options);
  auto c = client();
  std::string body(100, 'b');
  auto r = request(c, "POST", "/things", body);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ(create_.body, body);

  // Chunked transfer coding is read too.
  c.send(
      "POST /things HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  r = c.read();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_EQ(create_.body, "hello world");

  // The connection goes on after a body (keep-alive).
  r = request(c, "GET", "/things");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->result_int(), 200);
  EXPECT_TRUE(list_.body.empty());
}

TEST_F(AdminRoutesTest, OversizedBodyIs413AndClosed) {
  AdminServerOptions options;
  options.max_body_bytes = 100;
  start_with_routes(options);
  {
    auto c = client();  // Content-Length over the limit: refused before the body is read
    auto r = request(c, "POST", "/things", std::string(101, 'b'), false);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 413);
    EXPECT_FALSE(r->keep_alive());
    EXPECT_TRUE(c.closed_by_server());
  }
  {
    auto c = client();  // chunked: refused once the chunks pass the limit
    c.send("POST /things HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" + std::string(64, 'a') +
           "\r\n40\r\n" + std::string(64, 'a') + "\r\n0\r\n\r\n");
    auto r = c.read();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 413);
    EXPECT_TRUE(c.closed_by_server());
  }
  {
    auto c = client();  // a body on DELETE (or GET) is refused whatever its size
    auto r = request(c, "DELETE", "/things/x", "{}", false);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result_int(), 413);
    EXPECT_TRUE(c.closed_by_server());
  }
  EXPECT_EQ(create_.calls, 0);
  EXPECT_EQ(remove_.calls, 0);
  EXPECT_EQ(metrics_.counter("pinhole_admin_bad_requests_total", "").value(), 3u);
}

TEST_F(AdminRoutesTest, RouteMistakesThrow) {
  AdminServer server(io_, net::Endpoint::parse("127.0.0.1:0").value(), metrics_, log_);
  auto h = [](const AdminRequest&) { return std::pair<int, std::string>{200, "{}"}; };
  server.add_route(HttpMethod::kGet, "/a", h);
  server.add_route(HttpMethod::kPost, "/a", h);  // another method on the same path is fine
  EXPECT_THROW(server.add_route(HttpMethod::kPost, "/a", h), std::logic_error);
  EXPECT_THROW(server.add_route("/a", [] { return std::pair<int, std::string>{200, "{}"}; }), std::logic_error);
  EXPECT_THROW(server.add_route(HttpMethod::kPost, "/metrics", h), std::logic_error);
  EXPECT_THROW(server.add_route(HttpMethod::kGet, "relative", h), std::logic_error);
  server.add_prefix_route(HttpMethod::kGet, "/p/", h);
  EXPECT_THROW(server.add_prefix_route(HttpMethod::kGet, "/p/", h), std::logic_error);
  EXPECT_THROW(server.add_prefix_route(HttpMethod::kGet, "/q", h), std::logic_error);
  EXPECT_THROW(server.add_prefix_route(HttpMethod::kGet, "/", h), std::logic_error);
  EXPECT_THROW(server.add_prefix_route(HttpMethod::kGet, "/r/", nullptr), std::logic_error);
  server.start();
  EXPECT_THROW(server.add_prefix_route(HttpMethod::kGet, "/s/", h), std::logic_error);
  EXPECT_THROW(server.add_route(HttpMethod::kGet, "/t", h), std::logic_error);
}

TEST(PercentDecode, DecodesEscapesAndPlusOnlyWhenAsked) {
  EXPECT_EQ(percent_decode("sip%3Aal%69ce%40example.com", false).value(), "sip:alice@example.com");
  EXPECT_EQ(percent_decode("a+b%2Bc", true).value(), "a b+c");
  EXPECT_EQ(percent_decode("a+b", false).value(), "a+b");
  EXPECT_EQ(percent_decode("%e2%82%AC", false).value(), "\xe2\x82\xac");
  EXPECT_EQ(percent_decode("", true).value(), "");
  for (const char* bad : {"%", "%4", "a%", "%g0", "%0g", "%00"}) {
    auto r = percent_decode(bad, false);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().status, 400) << bad;
  }
}

}  // namespace
}  // namespace pinhole::app
