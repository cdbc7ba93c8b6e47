// RFC 5626 §4.4 client keepalives on one flow: a CRLF CRLF ping on TCP answered by a CRLF pong,
// a STUN Binding Request on UDP answered by a Binding response whose mapped address must not
// change. A pure state machine: the caller passes `now`, sends what on_timer() asks for and arms
// one timer for next_deadline(), so tests drive it with a fake clock.
//
// Interval: the registrar's Flow-Timer when it sent one (> 0), else the configured one (0: 30 s
// on UDP, 120 s on TCP, RFC 5626 §4.4.1), each time a random 80–100 % of it so that many UAs
// behind one NAT do not ping in lockstep.
//
// Threads: owned by the UserAgent, used on its event-loop thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "nat/stun.h"
#include "net/address.h"
#include "net/transport.h"

namespace pinhole::ua {

class OutboundKeepalive {
 public:
  OutboundKeepalive(net::Transport transport, std::chrono::milliseconds configured_interval,
                    std::chrono::milliseconds pong_timeout);

  // (Re)starts the pings: the first one after one interval. `flow_timer` is the Flow-Timer of
  // the last 200 OK (nullopt or 0: use the configured interval). `must_answer`: a missed pong
  // means a dead flow (the registrar does outbound, so its edge answers pings); without it a
  // missed pong is only counted.
  void start(TimePoint now, std::optional<uint32_t> flow_timer, bool must_answer);
  void stop();
  bool running() const { return running_; }

  // When on_timer() wants to run next; nullopt when stopped.
  std::optional<TimePoint> next_deadline() const;

  enum class Action : uint8_t { kNone, kSendPing, kFlowDead };
  struct Tick {
    Action action = Action::kNone;
    std::string bytes;  // kSendPing: what to send on the flow
  };
  Tick on_timer(TimePoint now);

  // A CRLF pong arrived (TCP).
  void on_pong(TimePoint now);

  enum class StunVerdict : uint8_t { kNotOurs, kAnswered, kMappedChanged };
  // A STUN datagram arrived on the UDP flow. kMappedChanged: RFC 5626 §4.4.2 says to treat it as
  // a flow failure.
  StunVerdict on_stun(std::string_view datagram, TimePoint now);

  std::chrono::milliseconds interval() const { return base_interval_; }
  const std::optional<net::Endpoint>& mapped() const { return mapped_; }
  uint64_t missed_pongs() const { return missed_pongs_; }

 private:
  void schedule_next_ping(TimePoint now);

  net::Transport transport_;
  std::chrono::milliseconds configured_interval_;
  std::chrono::milliseconds pong_timeout_;
  std::chrono::milliseconds base_interval_{0};
  bool running_ = false;
  bool must_answer_ = false;
  bool awaiting_ = false;
  TimePoint next_ping_{};
  TimePoint pong_deadline_{};
  nat::StunTransactionId stun_id_{};
  std::optional<net::Endpoint> mapped_;
  uint64_t missed_pongs_ = 0;
};

}  // namespace pinhole::ua
