#include "app/daemon.h"
// Before any other Asio include: it silences a GCC false positive inside Asio's own lines.
#include "transport/asio.h"
// (a separate block, so clang-format keeps the order)
#include <malloc.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <optional>
#include <thread>

#include "app/admin_server.h"
#include "app/border_runtime.h"
#include "app/keepalive_runtime.h"
#include "app/media_runtime.h"
#include "app/registrar_admin.h"
#include "app/registrar_runtime.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/startup_error.h"
#include "nat/flow_token.h"
#include "net/sip_resolver.h"
#include "proxy/edge_proxy.h"
#include "proxy/local_identity.h"
#include "proxy/proxy_metrics.h"
#include "transport/transport_layer.h"

namespace pinhole::app {
namespace {

// Heap growth in bigger steps. Each worker thread allocates from its own glibc arena, and an arena
// other than the main one grows by exactly what is missing: one mprotect() per new page. Under a
// load burst every live transaction keeps its messages for Timer J/K/D (32 s over UDP), so the
// heap grows for 32 s and the signaling benchmark measured 5.4 mprotect() calls per call
// (docs/benchmarks.md). With a top pad the arena grows, and is trimmed, by 64 MiB at a time
// instead; only address space is reserved (pages are still touched on first use).
void set_malloc_growth_step() {
  constexpr int kTopPad = 64 << 20;
  (void)mallopt(M_TOP_PAD, kTopPad);
}

// Re-arms one worker's timer for its proxy's next transaction deadline. Lives on that worker's
// thread; only moves the timer earlier between firings, so a busy worker does not cancel and
// re-post a timer for every message.
class WorkerTimer {
 public:
  WorkerTimer(boost::asio::io_context& io, proxy::EdgeProxy& proxy) : timer_(io), proxy_(proxy) {}

  // Deadlines are rounded up to a 50 ms tick: SIP timers are 500 ms and up (T1), and with one
  // wake-up per tick instead of one per transaction timer, the thousands of Timer J/K/D expiries
  // that follow a load burst cost a few hundred wake-ups rather than one each. Under steady load
  // some timer is always due within a tick, so the tick is also the wake-up rate: at 10 ms, the
  // 32 s of Timer J/D/L after a 10 s burst cost 0.38 CPU s of the benchmark's 2.46 ("after",
  // docs/benchmarks.md). 50 ms keeps retransmissions within 10 % of T1 (Kamailio's timer ticks
  // at 62.5 ms).
  static constexpr auto kTick = std::chrono::milliseconds(50);

  void on_deadline(std::optional<TimePoint> deadline) {
    if (!deadline || shut_down_) return;
    TimePoint at = TimePoint(((deadline->time_since_epoch() + kTick - Duration(1)) / kTick) * kTick);
    if (armed_ && at >= armed_at_) return;
    armed_ = true;
    armed_at_ = at;
    timer_.expires_at(at);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled: re-armed earlier, or shutting down
      armed_ = false;
      proxy_.advance();  // calls on_deadline with the next one
    });
  }
  // For shutdown, on the worker's thread: a pending timer would keep the worker's loop from
  // running dry, so the transport's stop() would wait for it (up to Timer D's 32 s).
  void shut_down() {
    shut_down_ = true;
    timer_.cancel();
  }

 private:
  boost::asio::steady_timer timer_;
  proxy::EdgeProxy& proxy_;
  bool armed_ = false;
  bool shut_down_ = false;
  TimePoint armed_at_{};
};

}  // namespace

struct Daemon::Parts {
  Config config;
  Logging logging;
  std::shared_ptr<spdlog::logger> log;
  MetricsRegistry metrics;
  std::unique_ptr<transport::TransportLayer> transport;
  std::optional<nat::FlowTokenCodec> tokens;
  proxy::AliasTable aliases;
  std::unique_ptr<net::ResolvedUpstream> upstream;
  std::unique_ptr<proxy::LocalIdentity> identity;
  std::unique_ptr<proxy::ProxyMetrics> proxy_metrics;
  std::unique_ptr<RegistrarRuntime> registrar;    // registrar mode only
  std::unique_ptr<BorderRuntime> border;          // border mode only
  std::unique_ptr<store::Store> keepalive_store;  // edge/border mode with a persistent `store:`
  std::unique_ptr<KeepaliveRuntime> keepalive;    // `keepalive.enabled` (the default)
  // `media.enabled`: the relay (built-in or remote) and what the workers see of it. Declared
  // before the proxies so that it outlives them.
  std::unique_ptr<MediaRuntime> media;
  std::unique_ptr<proxy::MediaMetrics> media_metrics;
  std::unique_ptr<proxy::MediaServices> media_services;
  std::unique_ptr<proxy::ProxyShared> shared;
  SteadyClock clock;
  std::vector<std::unique_ptr<proxy::EdgeProxy>> proxies;
  std::vector<std::unique_ptr<WorkerTimer>> timers;
  boost::asio::io_context main_io;
  std::unique_ptr<AdminServer> admin;
  std::unique_ptr<RegistrarAdmin> registrar_admin;
  std::atomic<bool> stopping{false};

  explicit Parts(Config c) : config(std::move(c)), logging(config.log.level, config.log.components) {}
};

Result<std::unique_ptr<Daemon>> Daemon::create(Config config) {
  set_malloc_growth_step();
  auto parts = std::make_unique<Parts>(std::move(config));
  Parts& p = *parts;
  p.log = p.logging.logger("main");

  auto tokens = nat::FlowTokenCodec::create(
      p.config.proxy.flow_token_key, p.config.proxy.flow_token_previous_key.empty()
                                         ? std::nullopt
                                         : std::optional<std::string_view>(p.config.proxy.flow_token_previous_key));
  if (!tokens.ok()) return startup_error(500, "flow_tokens: " + std::string(tokens.error().what));
  p.tokens.emplace(std::move(*tokens));

  auto transport = transport::TransportLayer::create(p.config.transport);
  if (!transport.ok()) return transport.error();
  p.transport = std::move(*transport);

  // A registrar serving its site alone has no core to forward to.
  if (!p.config.proxy.upstream.uri.empty()) {
    auto upstream = net::ResolvedUpstream::start(p.config.proxy.upstream.uri, net::ResolverOptions{});
    if (!upstream.ok()) return startup_error(500, "upstream: " + std::string(upstream.error().what));
    p.upstream = std::move(*upstream);
  }
  if (p.config.registrar.enabled) {
    auto registrar = RegistrarRuntime::create(p.config, p.metrics, p.logging.logger("registrar"));
    if (!registrar.ok()) return registrar.error();
    p.registrar = std::move(*registrar);
  }

  if (p.config.border.enabled) p.border = std::make_unique<BorderRuntime>(p.config.border, p.metrics);
  if (p.config.proxy.keepalive.enabled) {
    // Endpoints persist where bindings do: the registrar's store, or in edge/border mode the
    // configured one (an in-memory store would not survive the restart it is for).
    store::Store* store = p.registrar ? &p.registrar->store() : nullptr;
    if (store == nullptr && p.config.store != "memory:") {
      auto opened = store::open_store(p.config.store);
      if (!opened.ok()) return startup_error(500, "store: " + std::string(opened.error().what));
      p.keepalive_store = std::move(*opened);
      store = p.keepalive_store.get();
    }
    p.keepalive = std::make_unique<KeepaliveRuntime>(p.metrics, store, p.config.node_id, p.logging.logger("nat"));
  }

  if (p.config.proxy.media.enabled) {
    auto media = MediaRuntime::create(p.config, p.metrics);
    if (!media.ok()) return startup_error(500, "media: " + std::string(media.error().what));
    p.media = std::move(*media);
    p.media_metrics = std::make_unique<proxy::MediaMetrics>(p.metrics);
    p.media_services = std::make_unique<proxy::MediaServices>(
        proxy::MediaServices{p.media->relay(), *p.media_metrics, p.media->relay_addresses()});
  }

  p.identity = std::make_unique<proxy::LocalIdentity>(p.transport->local_sockets());
  p.proxy_metrics = std::make_unique<proxy::ProxyMetrics>(p.metrics);
  net::ResolvedUpstream* up = p.upstream.get();
  p.shared = std::make_unique<proxy::ProxyShared>(proxy::ProxyShared{
      .config = p.config.proxy,
      .transport = *p.transport,
      .identity = *p.identity,
      .tokens = *p.tokens,
      .aliases = p.aliases,
      .upstream = [up]() -> std::shared_ptr<const proxy::UpstreamTargets> {
        return up != nullptr ? up->snapshot() : nullptr;
      },
      .metrics = *p.proxy_metrics,
      .log = p.logging.logger("proxy"),
      .workers = {},
      .registrar = p.registrar ? &p.registrar->services() : nullptr,
      .border = p.border ? &p.border->services() : nullptr,
      .keepalive = p.keepalive ? &p.keepalive->services() : nullptr,
      .media = p.media_services.get(),
  });
  for (uint32_t w = 0; w < p.transport->worker_count(); ++w) {
    auto proxy = std::make_unique<proxy::EdgeProxy>(*p.shared, w, p.config.timers, p.clock);
    auto timer = std::make_unique<WorkerTimer>(p.transport->io(w), *proxy);
    WorkerTimer* t = timer.get();
    proxy->set_deadline_listener([t](std::optional<TimePoint> d) { t->on_deadline(d); });
    p.transport->set_handler(w, proxy.get());
    p.shared->workers.push_back(proxy.get());
    p.proxies.push_back(std::move(proxy));
    p.timers.push_back(std::move(timer));
  }

  if (p.keepalive) p.keepalive->restore(p.shared->workers, *p.transport);

  // Gauges read at scrape time, from the admin thread: every source is thread-safe (atomics
  // the workers refresh, the transport's locked directory and counters).
  std::vector<proxy::EdgeProxy*> workers = p.shared->workers;
  p.metrics.gauge_function("pinhole_transactions", "Live SIP transactions, all workers", {}, [workers] {
    size_t n = 0;
    for (const auto* w : workers) n += w->transactions();
    return static_cast<double>(n);
  });
  p.metrics.gauge_function("pinhole_proxied_requests", "Requests being proxied (server transaction and branches)", {},
                           [workers] {
                             size_t n = 0;
                             for (const auto* w : workers) n += w->calls();
                             return static_cast<double>(n);
                           });
  transport::TransportLayer* tl = p.transport.get();
  p.metrics.gauge_function("pinhole_connections_open", "Open TCP/TLS connections (flows)", {},
                           [tl] { return static_cast<double>(tl->open_connections()); });
  auto counter_gauge = [&](const char* name, const char* help, auto field) {
    p.metrics.gauge_function(name, help, {}, [tl, field] { return static_cast<double>(field(tl->counters())); });
  };
  counter_gauge("pinhole_transport_udp_datagrams_in", "UDP datagrams received",
                [](const transport::TransportCounters& c) { return c.udp_datagrams_in; });
  counter_gauge("pinhole_transport_udp_datagrams_out", "UDP datagrams sent",
                [](const transport::TransportCounters& c) { return c.udp_datagrams_out; });
  counter_gauge("pinhole_transport_stream_messages_in", "SIP messages received on TCP/TLS",
                [](const transport::TransportCounters& c) { return c.stream_messages_in; });
  counter_gauge("pinhole_transport_pings_answered", "RFC 5626 CRLF keepalive pings answered",
                [](const transport::TransportCounters& c) { return c.pings_answered; });
  counter_gauge("pinhole_transport_connections_accepted", "TCP/TLS connections accepted",
                [](const transport::TransportCounters& c) { return c.connections_accepted; });
  for (uint8_t r = 0; r <= static_cast<uint8_t>(transport::DropReason::kWriteQueueFull); ++r) {
    auto reason = static_cast<transport::DropReason>(r);
    p.metrics.gauge_function("pinhole_transport_drops", "Transport-level drops by reason",
                             {{"reason", std::string(transport::drop_reason_name(reason))}},
                             [tl, r] { return static_cast<double>(tl->counters().drops[r]); });
  }

  if (p.config.admin.enabled) {
    try {
      p.admin = std::make_unique<AdminServer>(p.main_io, p.config.admin.listen, p.metrics, p.logging.logger("admin"));
      if (p.registrar) {
        RegistrarAdminOptions options;
        proxy::RegistrarMetrics* m = &p.registrar->services().metrics;
        options.extra_stats = [m] {
          return nlohmann::json{
              {"registers_ok", m->registers_ok.value()},      {"registers_failed", m->registers_failed.value()},
              {"auth_challenges", m->challenges.value()},     {"auth_failures", m->auth_failures.value()},
              {"auth_stale_nonces", m->stale_nonces.value()}, {"forbidden_relay", m->forbidden_relay.value()},
              {"lookups_found", m->lookups_found.value()},    {"lookups_empty", m->lookups_empty.value()}};
        };
        p.registrar_admin = std::make_unique<RegistrarAdmin>(p.registrar->location(), p.registrar->users(),
                                                             p.registrar->store(), std::move(options));
        p.registrar_admin->add_routes(*p.admin);
      }
      if (p.border) p.border->add_routes(*p.admin);
      if (p.keepalive) p.keepalive->add_routes(*p.admin, p.shared->workers, *p.transport);
      p.admin->start();
    } catch (const std::exception& e) {
      return startup_error(500, std::string("admin: ") + e.what());
    }
  }
  return std::unique_ptr<Daemon>(new Daemon(std::move(parts)));
}

Daemon::Daemon(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

Daemon::~Daemon() {
  stop();
  if (parts_->transport) parts_->transport->stop();
  if (parts_->upstream) parts_->upstream->stop();
}

int Daemon::run() {
  Parts& p = *parts_;
  boost::asio::signal_set signals(p.main_io, SIGTERM, SIGINT);
  signals.async_wait([this](const boost::system::error_code& ec, int sig) {
    if (ec) return;
    parts_->log->info("signal {}: stopping", sig);
    stop();
  });
  if (p.media) {
    p.media->start();  // before the first INVITE can arrive
    p.log->info("media: {}", p.media->description());
  }
  p.transport->run();
  for (const auto& s : p.transport->local_sockets()) {
    p.log->info("listening on {} {} (advertised {}:{})", net::transport_name(s.transport), s.bound.to_string(),
                s.advertised_host, s.advertised_port);
    if (s.transport == net::Transport::kUdp && p.transport->worker_count() > 1 && !s.steered) {
      p.log->warn(
          "UDP {}: the kernel refused the reuseport steering program; a client's datagrams may reach "
          "another worker than the one keeping its flow alive (correct, with one post per change)",
          s.bound.to_string());
    }
  }
  if (p.registrar) p.registrar->start(p.main_io);
  if (p.border) p.border->start(p.main_io);
  p.log->info("pinhole running: {} workers, upstream {}, registrar {}", p.transport->worker_count(),
              p.config.proxy.upstream.uri.empty() ? "none" : p.config.proxy.upstream.uri,
              p.config.registrar.enabled ? "on"
              : p.config.border.enabled  ? "upstream (border mode)"
                                         : "off");
  auto guard = boost::asio::make_work_guard(p.main_io);
  p.main_io.run();
  for (uint32_t w = 0; w < p.transport->worker_count(); ++w) {
    WorkerTimer* t = p.timers[w].get();
    p.transport->post(w, [t] { t->shut_down(); });
  }
  p.transport->stop();
  if (p.registrar) p.registrar->stop();  // after the workers: their last writes are queued by now
  if (p.border) p.border->stop();
  if (p.media) p.media->stop();  // after the workers: none asks it anything any more
  p.log->info("stopped");
  return 0;
}

void Daemon::stop() {
  Parts& p = *parts_;
  if (p.stopping.exchange(true)) return;
  boost::asio::post(p.main_io, [&p] {
    if (p.admin) p.admin->stop();
    p.main_io.stop();
  });
}

}  // namespace pinhole::app
