// One TCP or TLS connection, accepted or opened by a worker: framing of the byte stream into SIP
// messages and RFC 5626 keepalives (StreamFramer), a bounded write queue, the connect/handshake,
// idle and lingering-close timer, and the close that tells the handler (on_flow_closed).
//
// Ownership and threads: everything runs on the owning worker's thread. The worker's
// ConnectionTable holds the owning reference; every pending Asio handler holds one more
// (shared_from_this). This is the one place pinhole uses shared_ptr: a connection often dies
// inside its own completion handler (read error, peer close, write failure), and the handler's
// reference keeps it alive until that handler and every other pending one have returned, so the
// object is deleted after its callbacks, never from inside them (DESIGN.md §4 deferred delete).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/flow.h"
#include "sip/stream_framer.h"
#include "transport/asio.h"

namespace pinhole::transport {

class Worker;

class StreamConnection : public std::enable_shared_from_this<StreamConnection> {
 public:
  using Clock = std::chrono::steady_clock;
  using TlsStream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;

  // A connection a listener accepted (TLS: the server handshake runs first).
  static std::shared_ptr<StreamConnection> accepted(Worker& worker, const net::Flow& flow,
                                                    boost::asio::ip::tcp::socket socket);
  // A connection to open to flow.remote from `local` (port 0; unspecified address: any). For
  // TLS the server certificate is checked against `server_name` when verifying upstream.
  static std::shared_ptr<StreamConnection> outbound(Worker& worker, const net::Flow& flow,
                                                    const std::optional<net::Endpoint>& local, std::string server_name);

  // Use the factories; public for make_shared.
  StreamConnection(Worker& worker, const net::Flow& flow, bool outbound);
  ~StreamConnection();
  StreamConnection(const StreamConnection&) = delete;
  StreamConnection& operator=(const StreamConnection&) = delete;

  // Starts the handshake or connect, then reading.
  void start();
  // Queues bytes (sent once connected). False when closed or the queue limit was hit (the
  // connection is then closed: a peer that does not read is cut off).
  bool send(std::string_view bytes);
  void keep_until(Clock::time_point until) {
    if (until > keep_until_) keep_until_ = until;
  }
  // Idempotent. Removes the connection from the table and directory and calls on_flow_closed.
  void close();

  const net::Flow& flow() const { return flow_; }

 private:
  enum class State : uint8_t {
    kConnecting,   // outbound, TCP connect in progress
    kHandshaking,  // TLS handshake in progress
    kOpen,
    kDraining,   // framing error: writing what is queued (a 413/400), reading no more
    kLingering,  // write side shut down; reading and discarding until the peer closes
    kClosed,
  };

  boost::asio::ip::tcp::socket& lowest() { return tls_ ? tls_->next_layer() : tcp_; }
  template <typename F>
  void with_stream(F&& f) {
    if (tls_) {
      f(*tls_);
    } else {
      f(tcp_);
    }
  }

  void connect(const std::optional<net::Endpoint>& local);
  void on_connected(const boost::system::error_code& ec);
  void handshake();
  void on_established();
  void read();
  void on_read(const boost::system::error_code& ec, size_t n);
  void process(std::string_view chunk);
  void track_head(std::string_view chunk);
  bool enqueue(std::string_view bytes);
  void start_write();
  void on_write(const boost::system::error_code& ec);
  void begin_drain();
  void begin_linger();
  void arm_timer(Clock::time_point deadline);
  void on_timer(const boost::system::error_code& ec);
  Clock::time_point deadline() const;

  Worker& worker_;
  net::Flow flow_;
  bool outbound_;
  bool connected_ = false;  // reached kOpen (outbound) or was accepted
  State state_ = State::kConnecting;
  std::string server_name_;

  boost::asio::ip::tcp::socket tcp_;  // plain TCP (unused for TLS: the stream owns its socket)
  std::optional<TlsStream> tls_;
  boost::asio::steady_timer timer_;
  Clock::time_point phase_deadline_{};  // connect, handshake, drain and linger phases
  Clock::time_point last_activity_{};
  Clock::time_point keep_until_{};

  sip::StreamFramer framer_;
  std::unique_ptr<char[]> read_buffer_;
  // The first bytes of the frame the framer has not completed, for on_unparsable: the framer
  // reports an error without the bytes, and the proxy needs the Via to answer.
  std::string head_;

  std::deque<std::string> write_queue_;  // strings never move while queued: buffers point in
  size_t queued_bytes_ = 0;
  size_t in_flight_ = 0;  // entries at the queue front being written
  bool writing_ = false;
  std::vector<boost::asio::const_buffer> write_buffers_;
};

}  // namespace pinhole::transport
