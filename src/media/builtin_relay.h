// The pinhole edge's built-in media relay: the relay engine (media/relay_runtime.h) inside the
// daemon, driven through proxy::MediaRelay with the same ng commands a remote relay gets
// (media/ng_request.h encodes them; MediaController executes them), so the built-in and remote
// relays behave alike down to the reply texts.
//
// Ownership and threads: owns the relay runtime (port pool, workers, controller) and a timer
// thread that ticks the controller every second (delayed deletes, idle sessions). request() may
// be called from any thread: it takes a mutex around the controller (single-threaded by design;
// a call's setup is a few microseconds of SDP work) and calls `done` before it returns, on the
// caller's thread. start() before the first request; stop() (or the destructor) drops every
// session and joins the threads.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/result.h"
#include "media/relay_runtime.h"
#include "net/address.h"
#include "proxy/media_services.h"

namespace pinhole::media {

class BuiltinRelay final : public proxy::MediaRelay {
 public:
  // Throws std::system_error when a worker cannot be created (start-up).
  explicit BuiltinRelay(const RelayRuntimeConfig& config);
  ~BuiltinRelay() override;
  BuiltinRelay(const BuiltinRelay&) = delete;
  BuiltinRelay& operator=(const BuiltinRelay&) = delete;

  // Starts the relay workers and the tick thread. Once.
  void start();
  // Drops every session, stops the threads; later requests get 503. Idempotent.
  void stop();

  // proxy::MediaRelay. Any thread; `done` runs before this returns. 503 when not started.
  void request(proxy::MediaRequest request, Done done) override;

  // The address the relay writes into SDPs.
  const net::Address& advertised() const { return advertised_; }
  // Any thread (a snapshot under the controller's mutex).
  size_t call_count();
  size_t free_ports() { return runtime_.pool().free_count(); }
  size_t port_capacity() { return runtime_.pool().capacity(); }
  // "on (lo, eth0)" or "off (why)", for the start-up log.
  std::string fast_path_description() const { return runtime_.fast_path_description(); }
  // The relay engine, for its counters (atomics and the fast path's: readable from any thread).
  const RelayRuntime& runtime() const { return runtime_; }

 private:
  void tick_loop();
  // The controller's reply bytes for `request`, under the mutex.
  Result<std::string> execute(const proxy::MediaRequest& request);

  SteadyClock clock_;
  net::Address advertised_;
  RelayRuntime runtime_;
  std::mutex mutex_;  // guards the controller, `running_` and `cookie_`
  std::condition_variable wake_;
  bool running_ = false;
  bool stopped_ = false;
  uint64_t cookie_ = 0;
  std::thread ticker_;
};

}  // namespace pinhole::media
