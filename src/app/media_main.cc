// pinhole-media: the media relay daemon, driven over rtpengine's ng protocol (Kamailio's or
// OpenSIPS's rtpengine module, or the pinhole edge). Runs in the foreground until SIGINT/SIGTERM.
//
// Threads: the main thread runs the ng socket loop (UDP, and TCP with --ng-tcp) and owns the MediaController (call
// state, assembled with the pool and workers by media::RelayRuntime, shared with the edge's built-in relay); each relay
// worker owns its sessions on its own thread. A signal thread stops the ng loop.
#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/log.h"
#include "media/ng_server.h"
#include "media/relay_runtime.h"
#include "net/address.h"

namespace {

using namespace pinhole;  // NOLINT(google-build-using-namespace): a main file

struct PortRange {
  uint16_t min = 0;
  uint16_t max = 0;
};

// "30000-39999".
bool parse_range(const std::string& text, PortRange& out) {
  size_t dash = text.find('-');
  if (dash == std::string::npos) return false;
  try {
    unsigned long lo = std::stoul(text.substr(0, dash));
    unsigned long hi = std::stoul(text.substr(dash + 1));
    if (lo == 0 || hi > 65535 || lo > hi) return false;
    out = {static_cast<uint16_t>(lo), static_cast<uint16_t>(hi)};
  } catch (const std::exception&) {
    return false;
  }
  return true;
}

int run(int argc, char** argv) {
  CLI::App cli{"pinhole-media: RTP relay driven by rtpengine's ng protocol"};
  std::string ng_listen = "127.0.0.1:2223";
  std::string ng_tcp_listen;  // off unless given (rtpengine's --listen-tcp-ng)
  std::string interface;
  std::string ports = "30000-39999";
  unsigned workers = 1;
  std::string log_level = "info";
  bool fast_path = true;
  std::vector<std::string> fast_path_interfaces;
  cli.add_option("--ng", ng_listen, "ng control address (UDP)");
  cli.add_option("--ng-tcp", ng_tcp_listen, "ng control address over TCP (optional; off by default)");
  cli.add_option("--interface", interface, "relay address (bound, and written into SDPs)")->required();
  cli.add_option("--ports", ports, "RTP port range MIN-MAX");
  cli.add_option("--workers", workers, "relay worker threads")->check(CLI::Range(1U, 64U));
  cli.add_option("--fast-path", fast_path,
                 "forward latched streams in the kernel (eBPF) when allowed: true (default) or false");
  cli.add_option("--fast-path-interface", fast_path_interfaces,
                 "attach the fast path to this interface (repeatable; default: every interface that is up)");
  cli.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical, off");
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }

  auto ng_endpoint = net::Endpoint::parse(ng_listen);
  auto relay_address = net::Address::parse(interface);
  std::optional<net::Endpoint> ng_tcp_endpoint;
  if (!ng_tcp_listen.empty()) {
    auto parsed = net::Endpoint::parse(ng_tcp_listen);
    if (!parsed) {
      std::fprintf(stderr, "pinhole-media: bad --ng-tcp\n");
      return 2;
    }
    ng_tcp_endpoint = *parsed;
  }
  PortRange range;
  if (!ng_endpoint || !relay_address || !parse_range(ports, range)) {
    std::fprintf(stderr, "pinhole-media: bad --ng, --interface or --ports\n");
    return 2;
  }
  std::unique_ptr<Logging> logging;
  try {
    logging = std::make_unique<Logging>(log_level, std::map<std::string, std::string>{});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pinhole-media: %s\n", e.what());
    return 2;
  }
  auto log = logging->logger("main");

  // Signals go to a dedicated thread (blocked everywhere else, so worker threads inherit the mask).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  SteadyClock clock;
  media::RelayRuntimeConfig relay_config;
  relay_config.interface = *relay_address;
  relay_config.advertised = *relay_address;
  relay_config.min_port = range.min;
  relay_config.max_port = range.max;
  relay_config.workers = workers;
  relay_config.delete_delay = std::chrono::seconds(30);
  relay_config.fast_path = fast_path;
  relay_config.fast_path_config.interfaces = fast_path_interfaces;
  media::RelayRuntime runtime(relay_config, clock);
  media::NgServer server(runtime.controller(), clock);
  if (auto bound = server.bind(*ng_endpoint); !bound.ok()) {
    log->critical("cannot bind the ng socket {}: {}", ng_listen, bound.error().what);
    return 1;
  }
  if (ng_tcp_endpoint) {
    if (auto bound = server.bind_tcp(*ng_tcp_endpoint); !bound.ok()) {
      log->critical("cannot listen for ng over TCP on {}: {}", ng_tcp_listen, bound.error().what);
      return 1;
    }
    log->info("pinhole-media: ng over TCP on {}", server.local_tcp_endpoint().to_string());
  }
  runtime.start();
  std::thread signal_thread([&server, &signals] {
    int sig = 0;
    sigwait(&signals, &sig);
    server.stop();
  });
  log->info("pinhole-media: ng on {}, relay {} ports {}-{}, {} worker(s), kernel fast path {}",
            server.local_endpoint().to_string(), relay_address->to_string(), range.min, range.max, workers,
            runtime.fast_path_description());
  server.serve();
  signal_thread.join();
  log->info("pinhole-media: stopping ({} calls open)", runtime.controller().call_count());
  if (const media::FastPath* fast = runtime.fast_path()) {
    media::FastPathCounters c = fast->counters();
    log->info("pinhole-media: the kernel fast path forwarded {} packets ({} left to user space, {} redirect errors)",
              c.forwarded, c.passed, c.redirect_errors);
  }
  // The controller removes its sessions while the workers still run, then the workers stop.
  runtime.shutdown();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Exceptions are for start-up bugs only (DESIGN.md §4); say what happened rather than abort.
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pinhole-media: fatal: %s\n", e.what());
    return 1;
  }
}
