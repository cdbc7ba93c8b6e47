// The ng control endpoint of pinhole-media: one datagram in, one reply out. NgServer::handle()
// frames the message, answers retransmissions from a reply cache, parses the command and lets the
// MediaController execute it; serve() is the socket loop around it: the UDP socket and, with
// bind_tcp(), a TCP listener and its connections (rtpengine's --listen-tcp-ng).
//
// ng over TCP: each connection has an NgStreamSplitter (cookie + one bencode value, no length
// prefix); every complete message goes through the same handle() as a datagram, so the reply
// cache is shared with UDP, and the reply is queued on that connection and written as the socket
// takes it (POLLOUT). A framing error or an over-size message (the splitter's 400 / 413) closes
// only that connection, since the rest of its stream cannot be resynchronised. Limits, each
// counted when hit: `tcp_max_connections` (one more is accepted and closed at once, so it does
// not sit in the backlog), `tcp_idle_timeout` (no byte in either direction), `tcp_max_output`
// (replies queued to a peer that does not read: closed rather than buffered without bound).
//
// Reply cache (as rtpengine's cookie cache): a request whose cookie was answered within the last
// `cache_ttl` gets the same reply bytes again without being executed a second time, since
// Kamailio's rtpengine module retransmits on timeout with the same cookie. Bounded by
// `max_cached`: the oldest entries go first.
//
// Ownership and threads: the server does not own the controller (which must outlive it); it owns
// its sockets, connections and cache. handle(), bind(), bind_tcp() and serve() belong to one
// thread (the controller's); stop() may be called from any thread and makes serve() return.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/clock.h"
#include "common/result.h"
#include "media/media_controller.h"
#include "media/port_pool.h"
#include "net/address.h"

namespace pinhole::media {

struct NgServerConfig {
  Duration cache_ttl = std::chrono::seconds(30);
  size_t max_cached = 10000;
  // How often serve() wakes without traffic to run the controller's tick().
  std::chrono::milliseconds tick_interval{500};
  // ng over TCP (bind_tcp()).
  size_t tcp_max_connections = 256;
  Duration tcp_idle_timeout = std::chrono::minutes(5);
  size_t tcp_max_output = size_t{1024} * 1024;  // queued reply bytes per connection
};

struct NgServerCounters {
  uint64_t received = 0;
  uint64_t dropped = 0;          // no usable cookie: nothing to answer to
  uint64_t retransmissions = 0;  // answered from the cache
  uint64_t errors = 0;           // error replies sent (malformed body, unknown command...)
  // ng over TCP.
  uint64_t tcp_connections = 0;      // accepted and served
  uint64_t tcp_open = 0;             // open now
  uint64_t tcp_rejected = 0;         // over tcp_max_connections: closed at once
  uint64_t tcp_closed_bad = 0;       // framing error (400)
  uint64_t tcp_closed_oversize = 0;  // message over kNgMaxMessage (413)
  uint64_t tcp_closed_idle = 0;      // tcp_idle_timeout
  uint64_t tcp_closed_output = 0;    // over tcp_max_output (a peer that sends but does not read)
};

class NgServer {
 public:
  // `controller` and `clock` must outlive the server.
  NgServer(MediaController& controller, const Clock& clock, NgServerConfig config = {});
  ~NgServer();
  NgServer(const NgServer&) = delete;
  NgServer& operator=(const NgServer&) = delete;

  // One ng message (a UDP datagram, or one message cut from a TCP stream). The reply bytes, or
  // nullopt when it is dropped.
  std::optional<std::string> handle(std::string_view message);

  // Binds the UDP control socket. Error{500} when the socket cannot be bound.
  Status bind(const net::Endpoint& endpoint);
  // The bound address (its port when bind() was given 0).
  const net::Endpoint& local_endpoint() const { return local_; }
  // Adds a listening TCP socket for ng over TCP, served by serve() next to the UDP socket.
  // Optional; may be the only socket. Error{500} when it cannot be bound or listened on.
  Status bind_tcp(const net::Endpoint& endpoint);
  // The bound TCP address (its port when bind_tcp() was given 0).
  const net::Endpoint& local_tcp_endpoint() const { return local_tcp_; }
  // Receives, handles and answers datagrams and TCP messages until stop(). Needs bind() or
  // bind_tcp() first. Open TCP connections are closed when it returns.
  void serve();
  void stop();

  // Read on the serving thread, or after serve() returned.
  const NgServerCounters& counters() const { return counters_; }
  size_t cached() const { return cache_.size(); }

 private:
  struct TcpConnection;
  enum class CloseReason : uint8_t { kPeer, kBad, kOversize, kIdle, kOutput, kShutdown };

  void expire(TimePoint now);
  bool ensure_wake();
  void receive_udp(std::vector<char>& buffer);
  void accept_tcp(TimePoint now);
  // Reads what the connection has and answers every complete message; why to close it, if so.
  std::optional<CloseReason> read_tcp(TcpConnection& c, std::vector<char>& buffer, TimePoint now);
  // Writes queued reply bytes as far as the socket takes them. False: close it.
  bool flush_tcp(TcpConnection& c, TimePoint now);
  void close_tcp(size_t index, CloseReason reason);

  MediaController& controller_;
  const Clock& clock_;
  NgServerConfig config_;
  std::unordered_map<std::string, std::string> cache_;   // cookie -> reply
  std::deque<std::pair<std::string, TimePoint>> order_;  // cookies, oldest first
  UniqueFd socket_;
  UniqueFd wake_;
  UniqueFd listener_;
  net::Endpoint local_;
  net::Endpoint local_tcp_;
  std::vector<std::unique_ptr<TcpConnection>> connections_;
  std::atomic<bool> stopping_{false};
  NgServerCounters counters_;
};

}  // namespace pinhole::media
