// The ng control endpoint of pinhole-media: one datagram in, one reply out. NgServer::handle()
// frames the message, answers retransmissions from a reply cache, parses the command and lets the
// MediaController execute it; serve() is the UDP socket loop around it.
//
// Reply cache (as rtpengine's cookie cache): a request whose cookie was answered within the last
// `cache_ttl` gets the same reply bytes again without being executed a second time, since
// Kamailio's rtpengine module retransmits on timeout with the same cookie. Bounded by
// `max_cached`: the oldest entries go first.
//
// Ownership and threads: the server does not own the controller (which must outlive it); it owns
// its socket and cache. handle(), bind() and serve() belong to one thread (the controller's);
// stop() may be called from any thread and makes serve() return.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

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
};

struct NgServerCounters {
  uint64_t received = 0;
  uint64_t dropped = 0;          // no usable cookie: nothing to answer to
  uint64_t retransmissions = 0;  // answered from the cache
  uint64_t errors = 0;           // error replies sent (malformed body, unknown command...)
};

class NgServer {
 public:
  // `controller` and `clock` must outlive the server.
  NgServer(MediaController& controller, const Clock& clock, NgServerConfig config = {});
  ~NgServer() = default;
  NgServer(const NgServer&) = delete;
  NgServer& operator=(const NgServer&) = delete;

  // One ng message (a UDP datagram). The reply bytes, or nullopt when it is dropped.
  std::optional<std::string> handle(std::string_view message);

  // Binds the UDP control socket. Error{500} when the socket cannot be bound.
  Status bind(const net::Endpoint& endpoint);
  // The bound address (its port when bind() was given 0).
  const net::Endpoint& local_endpoint() const { return local_; }
  // Receives, handles and answers datagrams until stop(). Needs bind() first.
  void serve();
  void stop();

  const NgServerCounters& counters() const { return counters_; }
  size_t cached() const { return cache_.size(); }

 private:
  void expire(TimePoint now);

  MediaController& controller_;
  const Clock& clock_;
  NgServerConfig config_;
  std::unordered_map<std::string, std::string> cache_;   // cookie -> reply
  std::deque<std::pair<std::string, TimePoint>> order_;  // cookies, oldest first
  UniqueFd socket_;
  UniqueFd wake_;
  net::Endpoint local_;
  std::atomic<bool> stopping_{false};
  NgServerCounters counters_;
};

}  // namespace pinhole::media
