// Helpers for the transport tests: a handler that records what the layer reports (thread-safe,
// waited on with a bounded deadline, never a sleep), plain POSIX client sockets on loopback, a
// self-signed certificate written to a temporary directory, and small SIP messages.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "net/address.h"
#include "net/flow.h"
#include "sip/message.h"
#include "transport/transport_layer.h"

namespace pinhole::transport::test {

inline constexpr auto kDeadline = std::chrono::seconds(10);

struct Received {
  net::Flow flow;
  uint32_t worker = 0;
  std::string bytes;
  std::string call_id;
};

struct Unparsable {
  net::Flow flow;
  uint32_t worker = 0;
  std::string bytes;
  uint16_t status = 0;
};

struct Closed {
  net::Flow flow;
  bool connected = false;
};

// Records every callback. Optional hooks run on the worker thread before recording.
class RecordingHandler : public MessageHandler {
 public:
  std::function<void(const Inbound&)> on_message_hook;
  std::function<void(const net::Flow&, const Error&)> on_unparsable_hook;

  void on_message(Inbound inbound) override;
  void on_unparsable(const net::Flow& flow, uint32_t worker, std::string_view bytes, const Error& error) override;
  void on_flow_closed(const net::Flow& flow, bool connected) override;
  void on_binary_datagram(const net::Flow& flow, uint32_t worker, std::string_view bytes) override;

  // Waits (bounded) until pred() holds under the lock; returns pred().
  bool wait(const std::function<bool()>& pred);
  bool wait_messages(size_t n) {
    return wait([&] { return messages.size() >= n; });
  }

  std::mutex mu;
  std::condition_variable cv;
  std::vector<Received> messages;
  std::vector<Unparsable> unparsable;
  std::vector<Unparsable> binary;  // status unused
  std::vector<Closed> closed;
};

// Waits with a bounded deadline for a condition the test cannot be told about (polls).
bool eventually(const std::function<bool()>& pred);

// A blocking POSIX socket with a receive timeout, for the peers of the layer.
class Peer {
 public:
  static Peer udp(const net::Endpoint& bind);
  static Peer tcp_connect(const net::Endpoint& to);
  Peer() = default;
  explicit Peer(int fd) : fd_(fd) {}
  Peer(Peer&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Peer& operator=(Peer&& o) noexcept;
  ~Peer();

  int fd() const { return fd_; }
  bool ok() const { return fd_ >= 0; }
  net::Endpoint local() const;
  bool send_to(const net::Endpoint& to, std::string_view bytes) const;
  bool send(std::string_view bytes) const;
  // One datagram or read; nullopt on timeout; "" on orderly close.
  std::optional<std::string> receive() const;
  // One datagram and who sent it; nullopt on timeout.
  std::optional<std::pair<std::string, net::Endpoint>> receive_from() const;
  // Reads until `needle` has been seen (or close/timeout); returns all that was read.
  std::string receive_until(std::string_view needle) const;
  // True when the peer closed (EOF or reset) within the deadline, reading past any data.
  bool wait_closed() const;

 private:
  int fd_ = -1;
};

// A listening TCP socket on loopback with a bounded accept.
class TcpServer {
 public:
  explicit TcpServer(const net::Endpoint& bind);
  ~TcpServer();
  net::Endpoint local() const;
  std::optional<Peer> accept(std::chrono::milliseconds timeout = std::chrono::milliseconds(10000)) const;

 private:
  int fd_ = -1;
};

// A free loopback port nothing listens on (bound then closed).
uint16_t unused_tcp_port();

// A self-signed certificate for "localhost" and 127.0.0.1 and its key, as PEM files in a
// temporary directory removed by the destructor.
class TestCertificate {
 public:
  TestCertificate();
  ~TestCertificate();
  const std::string& cert_file() const { return cert_; }
  const std::string& key_file() const { return key_; }

 private:
  std::string dir_, cert_, key_;
};

std::string make_request(std::string_view call_id, std::string_view transport = "UDP", std::string_view body = "");
std::string make_response(std::string_view call_id, int status);

net::Endpoint loopback4(uint16_t port = 0);
net::Endpoint loopback6(uint16_t port = 0);

// A started layer with one RecordingHandler per worker. Handlers are declared first so they
// outlive the layer's threads.
struct Harness {
  std::vector<std::unique_ptr<RecordingHandler>> handlers;
  std::unique_ptr<TransportLayer> layer;

  explicit Harness(const TransportConfig& config, bool start = true) {
    auto created = TransportLayer::create(config);
    if (!created) {
      error = created.error();
      return;
    }
    layer = std::move(created).value();
    for (uint32_t w = 0; w < layer->worker_count(); ++w) {
      handlers.push_back(std::make_unique<RecordingHandler>());
      layer->set_handler(w, handlers.back().get());
    }
    if (start) layer->run();
  }
  ~Harness() {
    if (layer) layer->stop();
  }
  RecordingHandler& handler(uint32_t w = 0) { return *handlers.at(w); }
  net::Endpoint bound(uint32_t socket_id) const { return layer->local_sockets().at(socket_id).bound; }
  // Runs fn on `worker`'s thread and waits for it.
  template <typename F>
  auto on_worker(uint32_t worker, F fn) -> decltype(fn()) {
    std::mutex m;
    std::condition_variable c;
    std::optional<decltype(fn())> result;
    layer->post(worker, [&] {
      auto r = fn();
      std::lock_guard lock(m);
      result.emplace(std::move(r));
      c.notify_all();
    });
    std::unique_lock lock(m);
    if (!c.wait_for(lock, kDeadline, [&] { return result.has_value(); })) {
      std::fprintf(stderr, "worker %u did not run the task in time\n", worker);
      std::abort();  // the task still refers to this frame: no way to fail softly
    }
    return std::move(*result);
  }

  std::optional<Error> error;
};

inline ListenerSpec listener(net::Transport t, const net::Endpoint& bind) {
  ListenerSpec s;
  s.transport = t;
  s.bind = bind;
  return s;
}

// ---- implementation (header-only: the test glob builds *_test.cc files only) ----

inline void RecordingHandler::on_message(Inbound inbound) {
  if (on_message_hook) on_message_hook(inbound);
  Received r{inbound.flow, inbound.worker, std::string(inbound.message->bytes()), {}};
  if (auto id = inbound.message->call_id()) r.call_id = std::string(*id);
  std::lock_guard lock(mu);
  messages.push_back(std::move(r));
  cv.notify_all();
}

inline void RecordingHandler::on_unparsable(const net::Flow& flow, uint32_t worker, std::string_view bytes,
                                            const Error& error) {
  if (on_unparsable_hook) on_unparsable_hook(flow, error);
  std::lock_guard lock(mu);
  unparsable.push_back({flow, worker, std::string(bytes), error.status});
  cv.notify_all();
}

inline void RecordingHandler::on_binary_datagram(const net::Flow& flow, uint32_t worker, std::string_view bytes) {
  std::lock_guard lock(mu);
  binary.push_back({flow, worker, std::string(bytes), 0});
  cv.notify_all();
}

inline void RecordingHandler::on_flow_closed(const net::Flow& flow, bool connected) {
  std::lock_guard lock(mu);
  closed.push_back({flow, connected});
  cv.notify_all();
}

inline bool RecordingHandler::wait(const std::function<bool()>& pred) {
  std::unique_lock lock(mu);
  return cv.wait_for(lock, kDeadline, pred);
}

inline bool eventually(const std::function<bool()>& pred) {
  auto until = std::chrono::steady_clock::now() + kDeadline;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > until) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling only; never decides
  }
  return true;
}

inline net::Endpoint loopback4(uint16_t port) { return {net::Address::v4(0x7f000001u), port}; }
inline net::Endpoint loopback6(uint16_t port) {
  std::array<uint8_t, 16> b{};
  b[15] = 1;
  return {net::Address::v6(b), port};
}

namespace detail {
inline void set_timeout(int fd) {
  timeval tv{};
  tv.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(kDeadline).count();
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}
inline int family_of(const net::Endpoint& e) { return e.address.is_v6() ? AF_INET6 : AF_INET; }
}  // namespace detail

inline Peer& Peer::operator=(Peer&& o) noexcept {
  if (this != &o) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = o.fd_;
    o.fd_ = -1;
  }
  return *this;
}

inline Peer::~Peer() {
  if (fd_ >= 0) ::close(fd_);
}

inline Peer Peer::udp(const net::Endpoint& bind) {
  int fd = ::socket(detail::family_of(bind), SOCK_DGRAM, 0);
  sockaddr_storage ss{};
  socklen_t len = bind.to_sockaddr(ss);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    ::close(fd);
    return Peer();
  }
  int size = 4 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  detail::set_timeout(fd);
  return Peer(fd);
}

inline Peer Peer::tcp_connect(const net::Endpoint& to) {
  int fd = ::socket(detail::family_of(to), SOCK_STREAM, 0);
  detail::set_timeout(fd);
  sockaddr_storage ss{};
  socklen_t len = to.to_sockaddr(ss);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
    ::close(fd);
    return Peer();
  }
  return Peer(fd);
}

inline net::Endpoint Peer::local() const {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
  auto e = net::Endpoint::from_sockaddr(ss, len);
  return e ? *e : net::Endpoint{};
}

inline bool Peer::send_to(const net::Endpoint& to, std::string_view bytes) const {
  sockaddr_storage ss{};
  socklen_t len = to.to_sockaddr(ss);
  return ::sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&ss), len) ==
         static_cast<ssize_t>(bytes.size());
}

inline bool Peer::send(std::string_view bytes) const {
  return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
}

inline std::optional<std::string> Peer::receive() const {
  std::string buf(70000, '\0');
  ssize_t n = ::recv(fd_, buf.data(), buf.size(), 0);
  if (n < 0) return std::nullopt;
  buf.resize(static_cast<size_t>(n));
  return buf;
}

inline std::optional<std::pair<std::string, net::Endpoint>> Peer::receive_from() const {
  std::string buf(70000, '\0');
  sockaddr_storage from{};
  socklen_t length = sizeof(from);
  ssize_t n = ::recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&from), &length);
  if (n < 0) return std::nullopt;
  buf.resize(static_cast<size_t>(n));
  auto sender = net::Endpoint::from_sockaddr(from, length);
  if (!sender.ok()) return std::nullopt;
  return std::make_pair(std::move(buf), *sender);
}

inline std::string Peer::receive_until(std::string_view needle) const {
  std::string all;
  while (all.find(needle) == std::string::npos) {
    auto chunk = receive();
    if (!chunk || chunk->empty()) break;
    all += *chunk;
  }
  return all;
}

inline bool Peer::wait_closed() const {
  for (;;) {
    char buf[4096];
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n == 0) return true;
    if (n < 0) return errno == ECONNRESET;
  }
}

inline TcpServer::TcpServer(const net::Endpoint& bind) {
  fd_ = ::socket(detail::family_of(bind), SOCK_STREAM, 0);
  sockaddr_storage ss{};
  socklen_t len = bind.to_sockaddr(ss);
  if (::bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd_, 16) != 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

inline TcpServer::~TcpServer() {
  if (fd_ >= 0) ::close(fd_);
}

inline net::Endpoint TcpServer::local() const {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len);
  auto e = net::Endpoint::from_sockaddr(ss, len);
  return e ? *e : net::Endpoint{};
}

inline std::optional<Peer> TcpServer::accept(std::chrono::milliseconds timeout) const {
  pollfd p{fd_, POLLIN, 0};
  if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
  int fd = ::accept(fd_, nullptr, nullptr);
  if (fd < 0) return std::nullopt;
  detail::set_timeout(fd);
  return Peer(fd);
}

inline uint16_t unused_tcp_port() {
  TcpServer s(loopback4());
  return s.local().port;  // closed (not listening any more) when `s` goes
}

inline TestCertificate::TestCertificate() {
  std::string templ = (std::filesystem::temp_directory_path() / "pinhole-tls-XXXXXX").string();
  dir_ = ::mkdtemp(templ.data());
  cert_ = dir_ + "/cert.pem";
  key_ = dir_ + "/key.pem";
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  X509* x = X509_new();
  X509_set_version(x, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
  X509_gmtime_adj(X509_getm_notBefore(x), -3600);
  X509_gmtime_adj(X509_getm_notAfter(x), 86400);
  X509_set_pubkey(x, key);
  X509_NAME* name = X509_get_subject_name(x);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(x, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, x, x, nullptr, nullptr, 0);
  for (auto [nid, value] : {std::pair{NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1"},
                            std::pair{NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
  }
  X509_sign(x, key, EVP_sha256());
  FILE* f = std::fopen(cert_.c_str(), "w");
  PEM_write_X509(f, x);
  std::fclose(f);
  f = std::fopen(key_.c_str(), "w");
  PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(f);
  X509_free(x);
  EVP_PKEY_free(key);
}

inline TestCertificate::~TestCertificate() {
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

inline std::string make_request(std::string_view call_id, std::string_view transport, std::string_view body) {
  std::string m = "OPTIONS sip:edge@127.0.0.1 SIP/2.0\r\n";
  m += "Via: SIP/2.0/" + std::string(transport) + " 127.0.0.1:5099;branch=z9hG4bK" + std::string(call_id) + "\r\n";
  m += "Max-Forwards: 70\r\nFrom: <sip:a@example.com>;tag=1\r\nTo: <sip:edge@example.com>\r\n";
  m += "Call-ID: " + std::string(call_id) + "\r\nCSeq: 1 OPTIONS\r\n";
  m += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + std::string(body);
  return m;
}

inline std::string make_response(std::string_view call_id, int status) {
  std::string m = "SIP/2.0 " + std::to_string(status) + " Whatever\r\n";
  m += "Via: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK1\r\nFrom: <sip:a@example.com>;tag=1\r\n";
  m += "To: <sip:edge@example.com>;tag=2\r\nCall-ID: " + std::string(call_id) + "\r\nCSeq: 1 OPTIONS\r\n";
  m += "Content-Length: 0\r\n\r\n";
  return m;
}

}  // namespace pinhole::transport::test
