// pinhole-ua's public API: a SIP user agent that registers one AOR through an outbound proxy
// from behind NAT and keeps that registration alive, and places and takes calls with a simple
// RTP endpoint (echo, tone) to check media (see docs/ua.md). It pins the proxy's address, keeps
// one flow (UDP socket, TCP or TLS connection) for everything, learns its public address from the
// registrar, sends RFC 5626 keepalives and replaces a dead flow. Its SIP transactions run on the
// edge's transaction layer: one txn::TransactionTable on the event-loop thread.
//
// Ownership and threads: the application owns the UserAgent. start(), refresh(), call(),
// hangup(), cancel() and stop() are called from the application's thread (never from inside a
// callback); the UA runs its own event-loop thread, on which every callback (events, the message
// inspector) and all call and RTP work runs. The destructor stops the UA (hanging up and
// unregistering first) if the application has not.
#pragma once

#include <spdlog/logger.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/result.h"
#include "net/sip_resolver.h"
#include "ua/rtp_endpoint.h"
#include "ua/ua_config.h"

namespace pinhole::ua {

enum class UaEventKind : uint8_t {
  kFlowUp,          // a flow is connected (text: local -> remote)
  kFlowFailed,      // the flow died (text: why); a new one follows per the backoff
  kRegistered,      // 200 OK with our binding
  kContactChanged,  // the registrar sees us at another address
  kAuthFailed,      // credentials refused
  kRegisterFailed,  // another failure (text: status and reason); retried with backoff
  kTimeout,         // REGISTER unanswered
  kUnregistered,    // after stop(): the binding is gone (or could not be removed)
  kWarning,         // odd server behaviour survived (garbage, foreign bindings, Flow-Timer: 0)
  kRequest,         // a request arrived on the flow (text: method and From)
  // Calls (UaEvent::call says which):
  kIncomingCall,  // an INVITE arrived (text: from whom; answered or refused per UaConfig)
  kRinging,       // our INVITE got a 180/183 (status)
  kAnswered,      // our INVITE got a 2xx, or we answered an incoming one (status)
  kCallEnded,     // an answered or cancelled call is over (text: who hung up and why)
  kCallFailed,    // the call never got up (status: the final response; 408 unanswered)
  kMediaStats,    // RTP counters (UaEvent::media): periodically and once when the call ends
};
std::string_view event_name(UaEventKind kind);

struct UaEvent {
  UaEventKind kind = UaEventKind::kWarning;
  uint16_t status = 0;
  std::string text;
  uint64_t call = 0;              // the call's id for call events, 0 otherwise
  std::optional<RtpStats> media;  // kMediaStats
  bool final_stats = false;       // kMediaStats sent as the call ended
};

struct CallOptions {
  std::optional<MediaMode> media;  // unset: UaConfig::media
};

class UserAgent {
 public:
  using EventHandler = std::function<void(const UaEvent&)>;
  // Sees every message we send (requests, responses, not keepalives) as wire bytes before it is
  // written, and may change it. The flow is pinned, so the destination is chosen afterwards only
  // in the sense that the inspector's edits are what goes out.
  using MessageInspector = std::function<void(std::string& message)>;

  // Fails (400) when the AOR or the outbound proxy is unusable, (500) when a TLS proxy's CA
  // file or the system CA store cannot be loaded. `logger` may be null (no log).
  static Result<std::unique_ptr<UserAgent>> create(UaConfig config, EventHandler on_event,
                                                   std::shared_ptr<spdlog::logger> logger = nullptr);
  ~UserAgent();
  UserAgent(const UserAgent&) = delete;
  UserAgent& operator=(const UserAgent&) = delete;

  // Before start().
  void set_inspector(MessageInspector inspector) { inspector_ = std::move(inspector); }
  // Resolver settings for the outbound proxy (tests point it at a local DNS); before start().
  void set_resolver_options(net::ResolverOptions options) { resolver_options_ = std::move(options); }

  // Resolves the outbound proxy once (blocking this thread, RFC 3263), pins the first target,
  // starts the event loop and the registration. Errors (503) when the name does not resolve,
  // (500) when it resolved to TLS and the CA store cannot be loaded.
  Status start();
  // Re-REGISTER now (e.g. the application saw the network change).
  void refresh();

  // Places a call to `target_uri` ("sip:bob@example.com") through the outbound proxy on the
  // flow (opened first when it is not up). Returns the call's id at once; kRinging, kAnswered,
  // kCallFailed, kCallEnded and kMediaStats follow with that id. Errors: 400 for a target that
  // is not a sip/sips URI, 503 before start().
  Result<uint64_t> call(std::string target_uri, CallOptions options = {});
  // Ends a call: CANCEL before the final response, BYE once answered (603 for an incoming one
  // not answered yet). Unknown or ended ids are ignored.
  void hangup(uint64_t call);
  // Cancels a call of ours that is not answered yet; ignored once it is.
  void cancel(uint64_t call);
  // Hangs up the calls, unregisters (waiting at most `timeout` for the answer) and stops the
  // event loop.
  void stop(std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // The address the outbound proxy was pinned to (after start()).
  const net::SipTarget& pinned_target() const { return target_; }

 private:
  struct Loop;  // the event-loop state (Asio objects), in the .cc
  UserAgent(UaConfig config, EventHandler on_event, std::shared_ptr<spdlog::logger> logger);

  UaConfig config_;
  EventHandler on_event_;
  MessageInspector inspector_;
  std::shared_ptr<spdlog::logger> logger_;
  net::ResolverOptions resolver_options_;
  net::SipTarget target_;
  std::unique_ptr<Loop> loop_;
  std::thread thread_;
  std::atomic<uint64_t> next_call_id_{1};

  std::mutex mutex_;  // guards unregistered_
  std::condition_variable unregistered_cv_;
  bool unregistered_ = false;
  bool running_ = false;  // owner's thread only
};

}  // namespace pinhole::ua
