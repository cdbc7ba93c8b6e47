// A scripted outbound proxy for the call tests: one UDP socket or one TCP or TLS listener (a
// certificate made for 127.0.0.1, see ca_file()) on 127.0.0.1 that answers the UA's REGISTERs with 200 by itself and
// hands every other SIP message to the test, plus a UDP socket playing the far end's RTP. Plain POSIX sockets, every
// read bounded by a deadline (ua_test_support.h), never a sleep.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/transport.h"
#include "sip/message.h"
#include "ua_test_support.h"

namespace pinhole::ua::test {

class FakeProxy {
 public:
  explicit FakeProxy(net::Transport transport) : transport_(transport) {
    if (transport_ == net::Transport::kTls) {
      certificate_ = std::make_unique<TestCertificate>();
      tcp_ = std::make_unique<TcpServer>(certificate_->server_context());
    } else if (transport_ == net::Transport::kTcp) {
      tcp_ = std::make_unique<TcpServer>();
    } else {
      udp_ = std::make_unique<UdpServer>();
    }
  }
  uint16_t port() const { return tcp_ ? tcp_->port() : udp_->port(); }
  std::string uri() const {
    return std::string(net::transport_name(transport_)) + ":127.0.0.1:" + std::to_string(port());
  }
  // The certificate to trust (UaConfig::tls_ca_file) on TLS; empty otherwise.
  std::string ca_file() const { return certificate_ ? certificate_->cert_file() : std::string(); }
  std::string via_transport() const {
    return transport_ == net::Transport::kTls ? "TLS" : transport_ == net::Transport::kTcp ? "TCP" : "UDP";
  }
  // Our Via sent-by for requests we send the UA.
  std::string sent_by() const { return "127.0.0.1:" + std::to_string(port()); }
  // The Contact of the last REGISTER (where an INVITE for the AOR goes).
  const std::string& registered_contact() const { return contact_; }
  size_t registers() const { return registers_; }

  // The next message the predicate accepts (others are dropped, REGISTERs answered 200 first);
  // null after the deadline.
  sip::MessagePtr next(const std::function<bool(const sip::Message&)>& wanted,
                       std::chrono::milliseconds within = kWait) {
    auto deadline = std::chrono::steady_clock::now() + within;
    for (;;) {
      auto m = receive(std::chrono::milliseconds(remaining_ms(deadline)));
      if (!m) return nullptr;
      if (m->is_request() && m->method() == sip::Method::kRegister) {
        answer_register(*m);
        if (wanted(*m)) return m;
        continue;
      }
      if (wanted(*m)) return m;
    }
  }
  sip::MessagePtr request(sip::Method method, std::chrono::milliseconds within = kWait) {
    return next([method](const sip::Message& m) { return m.is_request() && m.method() == method; }, within);
  }
  // A response to a request of `method` with `status`.
  sip::MessagePtr response(uint16_t status, sip::Method method, std::chrono::milliseconds within = kWait) {
    return next(
        [status, method](const sip::Message& m) {
          if (!m.is_response() || m.status() != status) return false;
          auto cseq = m.cseq();
          return cseq.ok() && cseq->method == method;
        },
        within);
  }
  // Waits for the first REGISTER and answers it (the flow is then known).
  bool wait_registered() {
    return next([](const sip::Message& m) { return m.is_request() && m.method() == sip::Method::kRegister; }) !=
           nullptr;
  }

  void send(const std::string& bytes) {
    if (tcp_peer_) {
      tcp_peer_->send(bytes);
    } else if (udp_peer_) {
      udp_->send(bytes, *udp_peer_);
    }
  }

 private:
  sip::MessagePtr receive(std::chrono::milliseconds within) {
    auto deadline = std::chrono::steady_clock::now() + within;
    if (tcp_) {
      if (!tcp_peer_) tcp_peer_ = tcp_->accept(within);
      if (!tcp_peer_) return nullptr;
      return tcp_peer_->message(std::chrono::milliseconds(remaining_ms(deadline)));
    }
    for (;;) {
      auto d = udp_->receive(std::chrono::milliseconds(remaining_ms(deadline)));
      if (!d) return nullptr;
      auto m = parse(d->bytes);
      if (!m) continue;  // STUN keepalives and the like
      udp_peer_ = d->from;
      return m;
    }
  }

  void answer_register(const sip::Message& m) {
    ++registers_;
    std::string contacts;
    auto list = m.contacts();
    if (list.ok()) {
      for (const auto& c : *list) {
        if (c.expires == "0") continue;
        contacts += "Contact: " + std::string(c.raw) + "\r\n";
        contact_ = std::string(c.uri.raw);
      }
    }
    auto via = m.top_via();
    HostPort seen{"127.0.0.1", via.ok() ? (*via)->port : uint16_t{0}};
    send(reply(m, 200, seen, contacts));
  }

  net::Transport transport_;
  std::unique_ptr<TestCertificate> certificate_;  // before tcp_: its SSL_CTX outlives the server
  std::unique_ptr<UdpServer> udp_;
  std::unique_ptr<TcpServer> tcp_;
  std::unique_ptr<TcpPeer> tcp_peer_;
  std::optional<sockaddr_in> udp_peer_;
  std::string contact_;
  size_t registers_ = 0;
};

// One RTP packet as the tests read it.
struct RtpPacket {
  uint8_t payload_type = 0;
  bool marker = false;
  uint16_t sequence = 0;
  uint32_t timestamp = 0;
  uint32_t ssrc = 0;
  std::string payload;
  uint16_t from_port = 0;
};

// The far end's RTP socket on 127.0.0.1.
class RtpPeer {
 public:
  RtpPeer() : socket_() {}
  uint16_t port() const { return socket_.port(); }

  static std::string packet(uint8_t payload_type, uint16_t sequence, uint32_t timestamp, uint32_t ssrc,
                            const std::string& payload) {
    std::string p(12, '\0');
    p[0] = static_cast<char>(0x80);
    p[1] = static_cast<char>(payload_type);
    p[2] = static_cast<char>(sequence >> 8);
    p[3] = static_cast<char>(sequence & 0xff);
    for (size_t i = 0; i < 4; ++i) {
      p[4 + i] = static_cast<char>((timestamp >> (24 - 8 * i)) & 0xff);
      p[8 + i] = static_cast<char>((ssrc >> (24 - 8 * i)) & 0xff);
    }
    return p + payload;
  }
  void send_to(uint16_t port, const std::string& bytes) {
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    to.sin_port = htons(port);
    socket_.send(bytes, to);
  }
  std::optional<RtpPacket> receive(std::chrono::milliseconds within = kWait) {
    auto d = socket_.receive(within);
    if (!d || d->bytes.size() < 12) return std::nullopt;
    const auto* b = reinterpret_cast<const uint8_t*>(d->bytes.data());
    RtpPacket p;
    p.payload_type = b[1] & 0x7f;
    p.marker = (b[1] & 0x80) != 0;
    p.sequence = static_cast<uint16_t>((b[2] << 8) | b[3]);
    p.timestamp = (uint32_t{b[4]} << 24) | (uint32_t{b[5]} << 16) | (uint32_t{b[6]} << 8) | b[7];
    p.ssrc = (uint32_t{b[8]} << 24) | (uint32_t{b[9]} << 16) | (uint32_t{b[10]} << 8) | b[11];
    p.payload = d->bytes.substr(12);
    p.from_port = d->from_port();
    return p;
  }

 private:
  UdpServer socket_;
};

}  // namespace pinhole::ua::test
