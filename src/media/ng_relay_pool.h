// The edge's remote media relays: pinhole-media or rtpengine instances driven over the ng
// protocol (UDP), as Kamailio's rtpengine module drives its set. Implements proxy::MediaRelay.
//
// Choosing a relay. Each relay has a weight. A call (its Call-ID) is pinned to one relay, chosen
// by weight among the relays that are up when its first request arrives, and every later request
// of the call goes there: its sessions live on that relay. The pin ends with a delete of the
// whole call (no to-tag, no via-branch) or after `pin_idle` without a request.
//
// Timeouts and failover (the rtpengine module's scheme): a request is sent up to `tries` times,
// `timeout` apart, with one cookie; replies are matched by cookie and nothing is cached here (the
// relay's own cookie cache answers a retransmission without running the command twice). A relay
// that lets every try time out is marked down for `down_time`, then pinged (`ping`) until it
// answers `pong`, and meanwhile gets no new calls. A request for a call not yet pinned (an offer)
// then fails over to another relay that is up, with a fresh cookie; a request for a call pinned
// to the dead relay fails with 503 (its sessions are there; a new relay could not answer it).
//
// Ownership and threads: the pool owns its sockets and its I/O thread (a poll loop), started by
// start() and ended by stop() or the destructor. request() may be called from any thread; `done`
// runs on the I/O thread, except for a request refused at once (pool stopped, or more than
// `max_outstanding` requests in flight: 503), whose `done` runs inside request(). stop() answers
// every request still in flight with 503. Counters are registered in the MetricsRegistry given
// to the constructor (which must outlive the pool) and readable from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/metrics.h"
#include "common/result.h"
#include "media/port_pool.h"
#include "net/address.h"
#include "proxy/media_services.h"

namespace pinhole::media {

// One remote relay: "udp:HOST:PORT" with a numeric host (IPv6 in brackets: udp:[::1]:2223).
struct NgRelayTarget {
  net::Endpoint endpoint;
  // New calls go to relays in proportion to their weights; 0 takes no new calls (draining) but
  // keeps serving the calls pinned to it.
  uint32_t weight = 1;
};

// Parses "udp:HOST:PORT". Error{400} for another scheme (tcp: is not supported yet), a host name,
// or a missing port.
Result<net::Endpoint> parse_ng_relay_address(std::string_view text);

struct NgRelayPoolConfig {
  std::vector<NgRelayTarget> relays;
  // Wait for a reply per try, and tries per relay (rtpengine module: rtpengine_tout_ms 1000,
  // rtpengine_retr 5; 2 tries keep a dead relay's cost to a call setup at 2 s).
  std::chrono::milliseconds timeout{1000};
  uint32_t tries = 2;
  // A relay that timed out takes no new calls this long, then is pinged back.
  std::chrono::milliseconds down_time{10000};
  // A pin with no request for this long is forgotten (a call whose delete was lost).
  std::chrono::milliseconds pin_idle{std::chrono::hours(2)};
  // Requests in flight (sent, or queued for the I/O thread) beyond which request() answers 503.
  size_t max_outstanding = 10000;
  // The random source for the weighted choice; empty: a generator seeded from std::random_device.
  // Tests inject a fixed sequence.
  std::function<uint64_t()> random;
};

// Counters, in the MetricsRegistry (names pinhole_media_ng_*).
struct NgRelayPoolCounters {
  explicit NgRelayPoolCounters(MetricsRegistry& registry);
  Counter& requests;         // accepted by request()
  Counter& replies;          // answered by a relay (ok or error)
  Counter& retransmissions;  // tries after the first
  Counter& timeouts;         // a relay let every try of a request time out
  Counter& failovers;        // an offer moved to another relay after a timeout
  Counter& rejected;         // 503 at once: too many in flight, no relay up, pinned relay down
  Counter& relay_down;       // a relay marked down
  Counter& relay_up;         // a relay back after answering a ping
  Counter& stray_replies;    // a reply whose cookie matched nothing in flight (late, duplicate)
};

class NgRelayPool final : public proxy::MediaRelay {
 public:
  // Opens one UDP socket per relay (connected to it). Throws std::system_error when a socket
  // cannot be created (start-up); `config.relays` must not be empty (std::invalid_argument).
  NgRelayPool(NgRelayPoolConfig config, MetricsRegistry& metrics);
  ~NgRelayPool() override;
  NgRelayPool(const NgRelayPool&) = delete;
  NgRelayPool& operator=(const NgRelayPool&) = delete;

  // Starts the I/O thread. Call once.
  void start();
  // Ends the I/O thread after answering everything in flight with 503. Idempotent.
  void stop();

  // proxy::MediaRelay. Any thread.
  void request(proxy::MediaRequest request, Done done) override;

  const NgRelayPoolCounters& counters() const { return counters_; }
  // Any thread: whether relay `index` (config order) currently takes new calls.
  bool relay_is_up(size_t index) const;
  // Any thread: calls currently pinned.
  size_t pinned_calls() const { return pinned_count_.load(std::memory_order_relaxed); }

 private:
  using Clock = std::chrono::steady_clock;

  struct Relay {
    NgRelayTarget target;
    UniqueFd socket;
    bool up = true;
    Clock::time_point down_until{};
    bool ping_in_flight = false;
    std::atomic<bool> up_flag{true};  // mirror of `up` for relay_is_up()
  };
  struct Pending {
    proxy::MediaRequest request;
    Done done;
    std::string cookie;  // of the current relay's tries
    size_t relay = 0;
    uint32_t tries = 0;  // sent so far to `relay`
    Clock::time_point deadline{};
    bool may_fail_over = false;  // the call was not pinned when the request arrived
    std::vector<bool> tried;     // relays this request already timed out on
    std::string wire;            // the message as sent (cookie included)
    bool ping = false;           // a liveness probe, no request behind it
  };
  struct Pin {
    size_t relay = 0;
    Clock::time_point last_used{};
  };

  void run();
  void wake() const;
  void take_inbox();
  void dispatch(Pending pending);
  void send_to(Pending pending, size_t relay);
  void transmit(const Pending& pending);
  void on_readable(size_t relay);
  void on_reply(Pending& pending, std::string_view body);
  void expire(Clock::time_point now);
  void on_timeout(Pending pending, Clock::time_point now);
  void mark_down(size_t relay, Clock::time_point now);
  void send_pings(Clock::time_point now);
  void forget_idle_pins(Clock::time_point now);
  void finish(Pending& pending, Result<proxy::MediaReply> result);
  // A relay among the up ones (and not in `exclude`) by weight; SIZE_MAX when none.
  size_t choose(const std::vector<bool>& exclude);
  std::string next_cookie();

  NgRelayPoolConfig config_;
  NgRelayPoolCounters counters_;
  std::vector<std::unique_ptr<Relay>> relays_;
  UniqueFd wake_;

  // request() -> I/O thread.
  std::mutex inbox_mutex_;
  std::deque<std::pair<proxy::MediaRequest, Done>> inbox_;
  std::atomic<size_t> outstanding_{0};
  std::atomic<bool> running_{false};
  std::atomic<bool> stopping_{false};

  // I/O thread only.
  std::unordered_map<std::string, Pending> pending_;  // by cookie
  std::unordered_map<std::string, Pin> pins_;         // by Call-ID
  // Try deadlines; an entry whose pending request is gone or has moved on is skipped.
  std::multimap<Clock::time_point, std::string> deadlines_;
  std::atomic<size_t> pinned_count_{0};
  Clock::time_point next_pin_sweep_{};
  uint64_t cookie_seq_ = 0;
  std::string cookie_prefix_;
  std::string recv_buffer_;

  std::thread thread_;
};

}  // namespace pinhole::media
