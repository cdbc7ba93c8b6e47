// Helpers for the UA tests: a scripted SIP server on loopback (plain POSIX sockets, optionally
// wrapped in OpenSSL for TLS, every read bounded by a deadline, never a sleep), a self-signed
// certificate made at test time, an event recorder, and an MD5 digest computed here
// independently of the UA's own hashing.
#pragma once

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <array>
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
#include <vector>

#include "sip/builder.h"
#include "sip/message.h"
#include "sip/stream_framer.h"
#include "ua/contact_learning.h"
#include "ua/user_agent.h"

namespace pinhole::ua::test {

inline constexpr auto kWait = std::chrono::seconds(10);

inline std::string md5_hex(const std::string& text) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int n = 0;
  EVP_Digest(text.data(), text.size(), out.data(), &n, EVP_md5(), nullptr);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (unsigned int i = 0; i < n; ++i) {
    hex.push_back(kDigits[out[i] >> 4]);
    hex.push_back(kDigits[out[i] & 0xf]);
  }
  return hex;
}

inline int remaining_ms(std::chrono::steady_clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

// Records the UA's events; waits on them with a bounded deadline.
class Events {
 public:
  UserAgent::EventHandler handler() {
    return [this](const UaEvent& e) {
      std::lock_guard lock(mu_);
      events_.push_back(e);
      cv_.notify_all();
    };
  }
  size_t count(UaEventKind kind) {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& e : events_) n += e.kind == kind ? 1 : 0;
    return n;
  }
  // Waits until `n` events of `kind` have been seen.
  bool wait(UaEventKind kind, size_t n = 1) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] {
      size_t seen = 0;
      for (const auto& e : events_) seen += e.kind == kind ? 1 : 0;
      return seen >= n;
    });
  }
  std::vector<UaEvent> all() {
    std::lock_guard lock(mu_);
    return events_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<UaEvent> events_;
};

inline sip::MessagePtr parse(const std::string& bytes) {
  auto m = sip::Message::parse(bytes, sip::Framing::kDatagram);
  return m.ok() ? std::move(m).value() : nullptr;
}

// A response to `request` with the top Via's received/rport set to `seen` (what a server behind
// which the UA sits would see) and extra header lines.
inline std::string reply(const sip::Message& request, uint16_t status, const HostPort& seen,
                         const std::string& headers = {}) {
  sip::ResponseBuilder b(request, status);
  b.to_tag("srv");
  b.via_received(seen.host, seen.port);
  std::string text = b.build();
  text.insert(text.find("\r\n\r\n") + 2, headers);
  return text;
}

// A view into `m`: valid while the message lives.
inline std::string_view header(const sip::Message& m, std::string_view name) {
  const auto* f = m.header(name);
  return f != nullptr ? f->value : std::string_view();
}

// One UDP socket on 127.0.0.1 playing the proxy/registrar.
class UdpServer {
 public:
  UdpServer() {
    fd_ = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~UdpServer() { ::close(fd_); }
  UdpServer(const UdpServer&) = delete;
  UdpServer& operator=(const UdpServer&) = delete;
  uint16_t port() const { return port_; }

  struct Datagram {
    std::string bytes;
    sockaddr_in from{};
    uint16_t from_port() const { return ntohs(from.sin_port); }
  };
  // The next datagram, or nullopt after the deadline.
  std::optional<Datagram> receive(std::chrono::milliseconds within = kWait) {
    auto deadline = std::chrono::steady_clock::now() + within;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, remaining_ms(deadline)) <= 0) return std::nullopt;
    Datagram d;
    std::array<char, 65536> buf{};
    socklen_t len = sizeof d.from;
    ssize_t n = ::recvfrom(fd_, buf.data(), buf.size(), 0, reinterpret_cast<sockaddr*>(&d.from), &len);
    if (n < 0) return std::nullopt;
    d.bytes.assign(buf.data(), static_cast<size_t>(n));
    return d;
  }
  // The next SIP request (skipping anything else, STUN included), parsed.
  std::optional<std::pair<Datagram, sip::MessagePtr>> request(std::chrono::milliseconds within = kWait) {
    auto deadline = std::chrono::steady_clock::now() + within;
    for (;;) {
      auto d = receive(std::chrono::milliseconds(remaining_ms(deadline)));
      if (!d) return std::nullopt;
      auto m = parse(d->bytes);
      if (m && m->is_request()) return std::make_pair(std::move(*d), std::move(m));
    }
  }
  void send(const std::string& bytes, const sockaddr_in& to) {
    ::sendto(fd_, bytes.data(), bytes.size(), 0, reinterpret_cast<const sockaddr*>(&to), sizeof to);
  }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// One accepted TCP connection (TLS when `ssl` is set: the handshake is done), framed like the
// edge frames it. Owns the fd and the SSL object.
class TcpPeer {
 public:
  explicit TcpPeer(int fd, SSL* ssl = nullptr) : fd_(fd), ssl_(ssl) {}
  ~TcpPeer() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }
  TcpPeer(const TcpPeer&) = delete;
  TcpPeer& operator=(const TcpPeer&) = delete;

  struct Frame {
    sip::StreamFramer::Kind kind = sip::StreamFramer::Kind::kNeedMore;
    sip::MessagePtr message;
  };
  // The next message or keepalive; kind kNeedMore on deadline, kError when the UA closed.
  Frame next(std::chrono::milliseconds within = kWait) {
    auto deadline = std::chrono::steady_clock::now() + within;
    for (;;) {
      auto f = framer_.next();
      if (f.kind == sip::StreamFramer::Kind::kMessage) {
        auto m = sip::Message::parse(f.bytes, sip::Framing::kStream);
        return {f.kind, m.ok() ? std::move(m).value() : nullptr};
      }
      if (f.kind != sip::StreamFramer::Kind::kNeedMore) return {f.kind, nullptr};
      // Decrypted bytes OpenSSL already holds do not make the fd readable.
      if (ssl_ == nullptr || SSL_pending(ssl_) == 0) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, remaining_ms(deadline)) <= 0) return {};
      }
      std::array<char, 65536> buf{};
      ssize_t n = 0;
      if (ssl_ != nullptr) {
        int r = SSL_read(ssl_, buf.data(), static_cast<int>(buf.size()));
        if (r <= 0 && SSL_get_error(ssl_, r) == SSL_ERROR_WANT_READ) continue;  // a record not complete yet
        n = r;
      } else {
        n = ::read(fd_, buf.data(), buf.size());
      }
      if (n <= 0) return {sip::StreamFramer::Kind::kError, nullptr};
      framer_.append({buf.data(), static_cast<size_t>(n)});
    }
  }
  // The next SIP message (keepalives skipped); null on deadline or close.
  sip::MessagePtr message(std::chrono::milliseconds within = kWait) {
    auto deadline = std::chrono::steady_clock::now() + within;
    for (;;) {
      auto f = next(std::chrono::milliseconds(remaining_ms(deadline)));
      if (f.kind == sip::StreamFramer::Kind::kMessage) return std::move(f.message);
      if (f.kind == sip::StreamFramer::Kind::kNeedMore || f.kind == sip::StreamFramer::Kind::kError) return nullptr;
    }
  }
  void send(const std::string& bytes) {
    if (ssl_ != nullptr) {
      SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()));
      return;
    }
    size_t done = 0;
    while (done < bytes.size()) {
      ssize_t n = ::write(fd_, bytes.data() + done, bytes.size() - done);
      if (n <= 0) return;
      done += static_cast<size_t>(n);
    }
  }
  // The SNI the client sent on TLS; empty without one (or on TCP).
  std::string server_name() const {
    const char* name = ssl_ != nullptr ? SSL_get_servername(ssl_, TLSEXT_NAMETYPE_host_name) : nullptr;
    return name != nullptr ? std::string(name) : std::string();
  }
  HostPort remote() const {
    sockaddr_in a{};
    socklen_t len = sizeof a;
    ::getpeername(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    return {"127.0.0.1", ntohs(a.sin_port)};
  }

 private:
  int fd_;
  SSL* ssl_;
  sip::StreamFramer framer_;
};

// A self-signed certificate (its own CA) for the given subjectAltName list, e.g.
// "DNS:localhost,IP:127.0.0.1", with a server SSL_CTX using it and the certificate as a PEM file
// (what --ca-file names). The files are removed with the object.
class TestCertificate {
 public:
  explicit TestCertificate(const std::string& subject_alt_names = "DNS:localhost,IP:127.0.0.1") {
    std::string templ = (std::filesystem::temp_directory_path() / "pinhole-ua-tls-XXXXXX").string();
    if (::mkdtemp(templ.data()) != nullptr) dir_ = templ;
    cert_file_ = dir_ + "/cert.pem";
    EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
    X509* x = X509_new();
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("pinhole-ua test"), -1,
                               -1, 0);
    X509_set_issuer_name(x, name);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, nullptr, nullptr, 0);
    for (const auto& [nid, value] : {std::pair<int, std::string>{NID_subject_alt_name, subject_alt_names},
                                     std::pair<int, std::string>{NID_basic_constraints, "critical,CA:TRUE"}}) {
      X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &v3, nid, value.c_str());
      X509_add_ext(x, ext, -1);
      X509_EXTENSION_free(ext);
    }
    X509_sign(x, key, EVP_sha256());
    if (FILE* f = std::fopen(cert_file_.c_str(), "w")) {
      PEM_write_X509(f, x);
      std::fclose(f);
    }
    context_ = SSL_CTX_new(TLS_server_method());
    SSL_CTX_use_certificate(context_, x);
    SSL_CTX_use_PrivateKey(context_, key);
    X509_free(x);
    EVP_PKEY_free(key);
  }
  ~TestCertificate() {
    SSL_CTX_free(context_);
    std::error_code ec;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
  }
  TestCertificate(const TestCertificate&) = delete;
  TestCertificate& operator=(const TestCertificate&) = delete;

  const std::string& cert_file() const { return cert_file_; }
  SSL_CTX* server_context() const { return context_; }

 private:
  std::string dir_;
  std::string cert_file_;
  SSL_CTX* context_ = nullptr;
};

// A TCP listener on 127.0.0.1; with `tls` (borrowed, must outlive the server) every accepted
// connection is a TLS server that has completed its handshake.
class TcpServer {
 public:
  explicit TcpServer(SSL_CTX* tls = nullptr) : tls_(tls) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd_, 8);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~TcpServer() { ::close(fd_); }
  TcpServer(const TcpServer&) = delete;
  TcpServer& operator=(const TcpServer&) = delete;
  uint16_t port() const { return port_; }
  // The next connection, or null after the deadline (or when its TLS handshake failed: then
  // tls_failed() says so).
  std::unique_ptr<TcpPeer> accept(std::chrono::milliseconds within = kWait) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(within.count())) <= 0) return nullptr;
    int c = ::accept(fd_, nullptr, nullptr);
    if (c < 0) return nullptr;
    if (tls_ == nullptr) return std::make_unique<TcpPeer>(c);
    // The handshake and every later SSL_read/SSL_write block: bound them.
    timeval limit{static_cast<time_t>(std::chrono::duration_cast<std::chrono::seconds>(kWait).count()), 0};
    ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    ::setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    SSL* ssl = SSL_new(tls_);
    SSL_set_fd(ssl, c);
    if (SSL_accept(ssl) != 1) {
      tls_failed_ = true;
      SSL_free(ssl);
      ::close(c);
      return nullptr;
    }
    return std::make_unique<TcpPeer>(c, ssl);
  }
  bool tls_failed() const { return tls_failed_; }

 private:
  int fd_ = -1;
  uint16_t port_ = 0;
  SSL_CTX* tls_ = nullptr;
  bool tls_failed_ = false;
};

// A UserAgent reporting to `events`; null (and a test failure) when the config is refused.
inline std::unique_ptr<UserAgent> make_ua(const UaConfig& config, Events& events) {
  auto ua = UserAgent::create(config, events.handler());
  EXPECT_TRUE(ua.ok());
  return ua.ok() ? std::move(ua).value() : nullptr;
}

}  // namespace pinhole::ua::test
