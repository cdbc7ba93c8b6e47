// The daemon's media relay from the config (media_runtime.h).
#include "app/media_runtime.h"

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <string>
#include <utility>

#include "common/startup_error.h"
#include "media/builtin_relay.h"
#include "media/ng_relay_pool.h"

namespace pinhole::app {
namespace {

// The relay engine's counters, read at scrape time (the workers' atomics; the fast path's map and
// per-CPU counters through bpf() calls). The runtime lives as long as the daemon's registry is
// scraped, as every component the daemon registers (daemon.cc).
void register_relay_metrics(const media::RelayRuntime& runtime, MetricsRegistry& metrics) {
  const auto* workers = &runtime.workers();
  auto sum = [workers](auto field) {
    return [workers, field] {
      uint64_t n = 0;
      for (const auto& w : *workers) n += field(w->counters()).load(std::memory_order_relaxed);
      return static_cast<double>(n);
    };
  };
  using C = media::RelayWorkerCounters;
  metrics.gauge_function("pinhole_relay_packets_forwarded", "RTP/RTCP packets the built-in relay forwarded, by path",
                         {{"path", "user"}}, sum([](const C& c) -> const auto& { return c.forwarded; }));
  metrics.gauge_function("pinhole_relay_packets_dropped",
                         "Packets the relay's user space dropped (foreign source, malformed, no peer yet)", {},
                         sum([](const C& c) -> const auto& { return c.dropped; }));
  metrics.gauge_function("pinhole_relay_send_errors", "Datagrams the relay's sendmmsg refused", {},
                         sum([](const C& c) -> const auto& { return c.send_errors; }));
  metrics.gauge_function("pinhole_relay_fast_path_errors", "Streams the kernel fast path refused (map full, no route)",
                         {}, sum([](const C& c) -> const auto& { return c.fast_path_errors; }));
  const media::FastPath* fast = runtime.fast_path();
  if (fast == nullptr) return;
  metrics.gauge_function("pinhole_relay_packets_forwarded", "RTP/RTCP packets the built-in relay forwarded, by path",
                         {{"path", "kernel"}}, [fast] { return static_cast<double>(fast->counters().forwarded); });
  metrics.gauge_function("pinhole_relay_kernel_streams", "Streams the kernel fast path forwards now", {},
                         [fast] { return static_cast<double>(fast->rule_count()); });
  metrics.gauge_function("pinhole_relay_kernel_redirect_errors", "Packets the kernel fast path dropped half-rewritten",
                         {}, [fast] { return static_cast<double>(fast->counters().redirect_errors); });
}

class BuiltinRuntime final : public MediaRuntime {
 public:
  BuiltinRuntime(const media::RelayRuntimeConfig& config, std::string description, MetricsRegistry& metrics)
      : relay_(config) {
    relay_addresses_.push_back(relay_.advertised());
    description_ = std::move(description) + ", kernel fast path " + relay_.fast_path_description();
    register_relay_metrics(relay_.runtime(), metrics);
  }
  void start() override { relay_.start(); }
  void stop() override { relay_.stop(); }
  proxy::MediaRelay& relay() override { return relay_; }

 private:
  media::BuiltinRelay relay_;
};

class RemoteRuntime final : public MediaRuntime {
 public:
  RemoteRuntime(const media::NgRelayPoolConfig& config, MetricsRegistry& metrics) : pool_(config, metrics) {
    for (const auto& r : config.relays)
      if (std::find(relay_addresses_.begin(), relay_addresses_.end(), r.endpoint.address) == relay_addresses_.end())
        relay_addresses_.push_back(r.endpoint.address);
    description_ = std::to_string(config.relays.size()) + " remote ng relay(s)";
  }
  void start() override { pool_.start(); }
  void stop() override { pool_.stop(); }
  proxy::MediaRelay& relay() override { return pool_; }

 private:
  media::NgRelayPool pool_;
};

media::RelayRuntimeConfig builtin_config(const BuiltinRelaySettings& b) {
  media::RelayRuntimeConfig c;
  c.interface = b.interface;
  c.advertised = b.advertised.value_or(b.interface);
  c.min_port = b.min_port;
  c.max_port = b.max_port;
  c.workers = b.workers;
  c.session.latch.learning_window = b.learning_window;
  c.worker.inactivity_timeout = b.inactivity_timeout;
  c.worker.hold_timeout = b.hold_timeout;
  c.delete_delay = b.delete_delay;
  c.fast_path = b.fast_path;
  return c;
}

}  // namespace

Result<std::unique_ptr<MediaRuntime>> MediaRuntime::create(const Config& config, MetricsRegistry& metrics) {
  const MediaBackendSettings& media = config.media;
  try {
    if (media.relays.empty()) {
      const BuiltinRelaySettings& b = media.builtin;
      std::string description = "built-in relay on " + b.interface.to_string() + " ports " +
                                std::to_string(b.min_port) + "-" + std::to_string(b.max_port);
      return std::unique_ptr<MediaRuntime>(std::make_unique<BuiltinRuntime>(builtin_config(b), description, metrics));
    }
    media::NgRelayPoolConfig pool;
    for (const auto& r : media.relays) pool.relays.push_back(media::NgRelayTarget{r.endpoint, r.weight});
    pool.timeout = media.ng_timeout;
    pool.tries = media.ng_tries;
    pool.down_time = media.relay_down_time;
    pool.pin_idle = media.call_idle_timeout;
    pool.max_outstanding = media.max_outstanding;
    return std::unique_ptr<MediaRuntime>(std::make_unique<RemoteRuntime>(pool, metrics));
  } catch (const std::exception& e) {
    // Start-up only: sockets, eventfds and threads that cannot be created.
    return startup_error(500, std::string("media relay: ") + e.what());
  }
}

}  // namespace pinhole::app
