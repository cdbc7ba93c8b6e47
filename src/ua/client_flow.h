// One client flow (RFC 5626 §3.3): a connected UDP socket, one TCP connection or one TLS
// connection to the pinned outbound proxy, used for everything the UA sends and receives. Its
// real local address (after connect(), so the kernel has picked the source address and port) is
// what Via and Contact show.
//
// On TCP and TLS the stream framer splits messages from CRLF keepalives: a CRLF CRLF ping from
// the server is answered with a CRLF pong, a lone CRLF is reported as a pong. Bytes that cannot be
// framed (garbage) fail the flow; a framed message that does not parse is dropped with a warning.
// A TLS flow is connected (on_connected) only once the handshake and the certificate check
// (tls_client.h) have passed; a refused certificate fails the flow naming OpenSSL's reason.
// On UDP a STUN datagram is told from SIP by looks_like_stun() and handed over raw.
//
// Ownership and threads: created, used and closed on the thread that runs its io_context (the
// UA's event loop); callbacks run there too. Held by shared_ptr because Asio's completion
// handlers keep it alive until they have run, after the owner has let go; after close() no
// callback runs. on_failure runs at most once and the flow is closed after it.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/address.h"
#include "net/transport.h"
#include "sip/message.h"
#include "sip/stream_framer.h"
#include "transport/asio.h"  // NOLINT(misc-include-cleaner): Asio headers in their one place
#include "ua/registration.h"
#include "ua/tls_client.h"

namespace pinhole::ua {

class ClientFlow : public std::enable_shared_from_this<ClientFlow> {
 public:
  struct Callbacks {
    std::function<void(const FlowInfo&)> on_connected;
    std::function<void(sip::MessagePtr)> on_message;
    std::function<void()> on_pong;
    std::function<void(std::string_view)> on_stun;
    std::function<void(std::string_view)> on_warning;  // odd input we survive
    std::function<void(std::string_view)> on_failure;  // the flow is dead
  };

  // What a TLS flow needs besides the address.
  struct TlsOptions {
    // Shared with the UserAgent and every other flow: the stream points into it and Asio's
    // handlers may keep this flow alive after its owner let go.
    std::shared_ptr<boost::asio::ssl::context> context;
    std::string server_name;  // SNI and the name (or IP text) the certificate must carry
    bool verify = true;       // false: --insecure, no certificate or name check
  };

  // Starts connecting to `remote` over `transport` (UDP, TCP, or TLS with `tls` set);
  // on_connected or on_failure follows, never from inside open(). The connect timeout covers the
  // TLS handshake too.
  static std::shared_ptr<ClientFlow> open(boost::asio::io_context& io, net::Transport transport,
                                          const net::Endpoint& remote, Callbacks callbacks,
                                          std::chrono::milliseconds connect_timeout,
                                          std::optional<TlsOptions> tls = std::nullopt);
  ~ClientFlow();
  ClientFlow(const ClientFlow&) = delete;
  ClientFlow& operator=(const ClientFlow&) = delete;

  // Queues bytes for the peer (one datagram on UDP). Ignored once closed.
  void send(std::string bytes);
  // Closes the socket; no callback runs afterwards.
  void close();

  bool connected() const { return connected_; }
  const FlowInfo& info() const { return info_; }
  const net::Endpoint& remote() const { return remote_; }

 private:
  ClientFlow(boost::asio::io_context& io, net::Transport transport, const net::Endpoint& remote, Callbacks callbacks,
             std::optional<TlsOptions> tls);
  void start_udp();
  void start_tcp(std::chrono::milliseconds connect_timeout);
  void on_tcp_connected();
  void start_stream();  // TCP connected, or the TLS handshake done
  void connected_at(const boost::asio::ip::address& address, uint16_t port);
  void read_udp();
  void read_tcp();
  void drain_framer();
  void write_next();
  void fail(std::string_view why);
  // The TCP socket under the stream (the TLS stream's lowest layer on TLS).
  boost::asio::ip::tcp::socket& tcp_socket() { return tls_ ? tls_->next_layer() : tcp_; }
  const char* stream_name() const { return tls_ ? "tls" : "tcp"; }

  boost::asio::io_context& io_;
  net::Transport transport_;
  net::Endpoint remote_;
  Callbacks callbacks_;
  boost::asio::ip::udp::socket udp_;
  boost::asio::ip::tcp::socket tcp_;  // unused on TLS: the stream owns its socket
  std::optional<TlsOptions> tls_options_;
  std::unique_ptr<TlsStream> tls_;
  boost::asio::steady_timer connect_timer_;
  sip::StreamFramer framer_;
  std::vector<char> read_buffer_;
  std::deque<std::string> write_queue_;
  bool writing_ = false;
  bool connected_ = false;
  bool closed_ = false;
  bool icmp_reported_ = false;
  FlowInfo info_;
};

}  // namespace pinhole::ua
