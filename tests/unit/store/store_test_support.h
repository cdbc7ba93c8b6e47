// Helpers for the store tests: sample bindings that fill every field, temporary directories, and
// a redis-server child process on a free loopback port (started and killed by the tests
// themselves, killed with the test process too), with a raw hiredis client to look at what the
// store wrote.
//
// redis-server (Debian redis-server) is required in CI: with CI set in the environment its
// absence fails the test; elsewhere the test is skipped with the reason.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "net/address.h"
#include "net/transport.h"
#include "store/records.h"
#include "store/store.h"

namespace pinhole::store {

// gtest's printers (found by ADL), so that a failed comparison shows the records. Every test file
// that compares records includes this header: gtest's printer templates must not be instantiated
// without them in one file and with them in another (the linker would keep either).
inline void PrintTo(const BindingRecord& b, std::ostream* os) {  // NOLINT(readability-identifier-naming)
  *os << "{aor=\"" << b.aor << "\" id=\"" << b.binding_id << "\" contact=\"" << b.contact << "\" instance=\""
      << b.instance << "\" reg_id=" << b.reg_id << " call_id=\"" << b.call_id << "\" cseq=" << b.cseq
      << " q=" << b.q_milli << " expires_at=" << b.expires_at << " registered_at=" << b.registered_at
      << " flow=" << net::transport_name(b.flow.transport) << "/" << b.flow.local_socket_id << "/"
      << b.flow.remote.to_string() << "/" << b.flow.connection_id << " path=[";
  for (const std::string& p : b.path) *os << "\"" << p << "\" ";
  *os << "] ua=\"" << b.user_agent << "\" nat=\"" << b.nat << "\" node=\"" << b.node << "\"}";
}
inline void PrintTo(const UserRecord& u, std::ostream* os) {  // NOLINT(readability-identifier-naming)
  *os << "{" << u.username << "@" << u.realm << " md5=" << u.ha1_md5 << " sha256=" << u.ha1_sha256 << "}";
}

}  // namespace pinhole::store

namespace pinhole::store::test {

inline constexpr auto kDeadline = std::chrono::seconds(15);

// Polls `done` (every few milliseconds) until it holds or kDeadline passes; whether it held.
inline bool eventually(const std::function<bool()>& done) {
  auto until = std::chrono::steady_clock::now() + kDeadline;
  while (std::chrono::steady_clock::now() < until) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return done();
}

inline int64_t unix_now() { return static_cast<int64_t>(std::time(nullptr)); }

// A binding with every field set to something distinct, derived from `i`; odd values of `i` get
// an IPv6 flow over TLS, even ones IPv4 over UDP.
inline BindingRecord sample_binding(const std::string& aor, int i) {
  BindingRecord b;
  b.aor = aor;
  b.instance = "<urn:uuid:6f0e1f6a-0000-4000-8000-" + std::to_string(100000000000 + i) + ">";
  b.reg_id = static_cast<uint32_t>(i % 3 + 1);
  b.binding_id = b.instance + ";reg-id=" + std::to_string(b.reg_id);
  b.contact = "<sip:u" + std::to_string(i) + "@192.168.1." + std::to_string(i % 250 + 1) +
              ":5060;transport=udp;ob>;+sip.instance=\"" + b.instance + "\";reg-id=" + std::to_string(b.reg_id);
  b.call_id = "call-" + std::to_string(i) + "@ua";
  b.cseq = static_cast<uint32_t>(1000 + i);
  b.q_milli = i % 2 == 0 ? 500 : 1000;
  b.expires_at = unix_now() + 3600 + i;
  b.registered_at = unix_now() - i;
  if (i % 2 == 0) {
    b.flow.transport = net::Transport::kUdp;
    b.flow.remote = {net::Address::v4(0xCB007100U + static_cast<uint32_t>(i % 250)), static_cast<uint16_t>(40000 + i)};
    b.flow.connection_id = 0;
  } else {
    b.flow.transport = net::Transport::kTls;
    b.flow.remote = {*net::Address::parse("2001:db8::" + std::to_string(i % 9000 + 1)),
                     static_cast<uint16_t>(50000 + i)};
    b.flow.connection_id = (uint64_t{1} << 63) + static_cast<uint32_t>(i);  // above INT64_MAX
  }
  b.flow.local_socket_id = static_cast<uint32_t>(i % 4);
  b.path = {"<sip:edge" + std::to_string(i) + ".example.net;lr>", "<sip:core.example.net;lr;ob>",
            "<sip:[2001:db8::1]:5061;transport=tls;lr>"};
  b.user_agent = "softphone/" + std::to_string(i);
  b.nat = i % 2 == 0 ? "via_received,contact_private" : "";
  b.node = "node-" + std::to_string(i % 3);
  return b;
}

// A temporary directory removed with the object.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/pinhole-store-XXXXXX";
    if (::mkdtemp(tmpl) != nullptr) path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    if (!path_.empty()) std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline std::string find_redis_server() {
  for (const char* p : {"/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server"})
    if (::access(p, X_OK) == 0) return p;
  return {};
}

inline constexpr const char* kNoRedisServer =
    "redis-server not found (looked in /usr/bin, /usr/local/bin, /usr/sbin): install the Debian package "
    "redis-server (scripts/install-deps.sh does)";

// Skips the test, or fails it when CI is set, if there is no redis-server.
#define PINHOLE_REQUIRE_REDIS_SERVER()                                                    \
  do {                                                                                    \
    if (::pinhole::store::test::find_redis_server().empty()) {                            \
      if (std::getenv("CI") != nullptr) FAIL() << ::pinhole::store::test::kNoRedisServer; \
      GTEST_SKIP() << ::pinhole::store::test::kNoRedisServer;                             \
    }                                                                                     \
  } while (0)

struct RedisContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct RedisReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using RedisClient = std::unique_ptr<redisContext, RedisContextFree>;
using RedisReply = std::unique_ptr<redisReply, RedisReplyFree>;

// A TCP port on 127.0.0.1 that was free a moment ago.
inline uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return 0;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

// A redis-server child: --save "" --appendonly no (nothing survives its death), on 127.0.0.1 (and
// ::1 when asked) with a port of its own, in a temporary directory.
class RedisServer {
 public:
  ~RedisServer() { kill(); }
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Null on failure, with the reason in `error`. port 0: a free one.
  static std::unique_ptr<RedisServer> start(std::string& error, uint16_t port = 0, bool with_ipv6 = false) {
    auto server = std::unique_ptr<RedisServer>(new RedisServer);
    server->binary_ = find_redis_server();
    if (server->binary_.empty()) {
      error = kNoRedisServer;
      return nullptr;
    }
    server->with_ipv6_ = with_ipv6;
    for (int attempt = 0; attempt < 5; ++attempt) {
      server->port_ = port != 0 ? port : free_port();
      if (server->launch()) return server;
      if (port != 0) break;
    }
    error = "redis-server did not start; its log:\n" + server->log();
    return nullptr;
  }

  // SIGKILL, as a crash would; the port is free again when this returns.
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  // Starts again on the same port (empty: it keeps nothing).
  bool restart() {
    kill();
    return launch();
  }

  uint16_t port() const { return port_; }
  std::string url(uint32_t db = 0) const {
    return "redis://127.0.0.1:" + std::to_string(port_) + "/" + std::to_string(db);
  }

  // A fresh client connection (database `db`), or null.
  RedisClient client(uint32_t db = 0, const char* host = "127.0.0.1") const {
    timeval tv{1, 0};
    RedisClient c(redisConnectWithTimeout(host, port_, tv));
    if (!c || c->err != 0) return nullptr;
    redisSetTimeout(c.get(), tv);
    if (db != 0) RedisReply(static_cast<redisReply*>(redisCommand(c.get(), "SELECT %u", db)));
    return c;
  }

  // Runs one command on a fresh connection; null when Redis cannot be reached.
  RedisReply command(std::initializer_list<std::string_view> args, uint32_t db = 0) const {
    RedisClient c = client(db);
    if (!c) return nullptr;
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (std::string_view a : args) {
      argv.push_back(a.data());
      lengths.push_back(a.size());
    }
    return RedisReply(static_cast<redisReply*>(
        redisCommandArgv(c.get(), static_cast<int>(argv.size()), argv.data(), lengths.data())));
  }

  bool answers_ping() const {
    RedisReply r = command({"PING"});
    return r && r->type == REDIS_REPLY_STATUS && std::string_view(r->str, r->len) == "PONG";
  }

  std::string log() const {
    std::ifstream in(dir_.path() + "/redis.log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  RedisServer() = default;

  bool launch() {
    std::vector<std::string> args = {binary_, "--port", std::to_string(port_), "--bind", "127.0.0.1"};
    if (with_ipv6_) args.emplace_back("::1");
    for (const char* a : {"--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no"})
      args.emplace_back(a);
    args.insert(args.end(), {"--dir", dir_.path(), "--logfile", dir_.path() + "/redis.log"});
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t parent = ::getpid();
    pid_t pid = ::fork();
    if (pid < 0) return false;
    if (pid == 0) {
      // Only async-signal-safe calls until exec. The server dies with the test process, even
      // when a crash skips the destructor.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    pid_ = pid;
    bool up = eventually([&] {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return true;
      }
      return answers_ping();
    });
    if (up && pid_ > 0) return true;
    kill();
    return false;
  }

  std::string binary_;
  bool with_ipv6_ = false;
  TempDir dir_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

// One redis-server for the whole test binary (ctest runs each test in a process of its own, so
// each gets its own server and port). `error` says why it could not start.
inline RedisServer* shared_redis(std::string& error) {
  static std::string start_error;
  static std::unique_ptr<RedisServer> server = RedisServer::start(start_error);
  error = start_error;
  return server.get();
}

// A fresh store of the backend the test parameter names ("memory", "sqlite" or "redis"): the
// fixture of the tests every backend must pass. Redis is flushed before each test.
class StoreBackendTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string& kind = GetParam();
    if (kind == "redis") {
      PINHOLE_REQUIRE_REDIS_SERVER();
      std::string error;
      RedisServer* redis = shared_redis(error);
      ASSERT_NE(redis, nullptr) << error;
      RedisReply flushed = redis->command({"FLUSHALL"});
      ASSERT_TRUE(flushed && flushed->type == REDIS_REPLY_STATUS);
      url_ = redis->url();
    } else if (kind == "sqlite") {
      ASSERT_FALSE(dir_.path().empty());
      url_ = "sqlite://" + dir_.path() + "/store.db";
    } else {
      url_ = "memory:";
    }
    open();
  }

  // (Re)opens the store on the same URL, as a restart would.
  void open(const StoreOptions& options = {}) {
    store_.reset();
    auto opened = open_store(url_, options);
    ASSERT_TRUE(opened.ok()) << opened.error().what;
    store_ = std::move(opened).value();
  }

  TempDir dir_;
  std::string url_;
  std::unique_ptr<Store> store_;
};

}  // namespace pinhole::store::test
