// pinhole-ua: registers one AOR through an outbound proxy from behind NAT and keeps the
// registration alive (src/ua/, docs/ua.md) until --duration runs out or SIGINT/SIGTERM, then
// unregisters. Each SIP step is logged on stderr; --json also prints one JSON object per event on
// stdout for scripts.
//
// Threads: the main thread parses the command line, starts the UserAgent and waits for a
// signal, the deadline or a fatal event; the UA's events arrive on its own thread and only set
// the exit state (under a mutex) and print.
#include <CLI/CLI.hpp>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "common/log.h"
#include "ua/instance_id.h"
#include "ua/user_agent.h"

namespace {

using namespace pinhole;  // NOLINT(google-build-using-namespace): a main file

// Exit codes (also in --help).
constexpr int kExitOk = 0;
constexpr int kExitUsage = 1;
constexpr int kExitStart = 2;
constexpr int kExitAuth = 3;
constexpr int kExitRegister = 4;
constexpr int kExitUnregister = 5;

constexpr const char* kExitHelp =
    "Exit codes: 0 registered and unregistered cleanly; 1 bad command line; 2 could not start (outbound "
    "proxy does not resolve); 3 credentials refused; 4 the first registration failed (error response or "
    "no answer); 5 the unregister at shutdown was not confirmed.";

struct ExitState {
  std::mutex mutex;
  bool registered_once = false;
  bool unregistered = false;
  std::optional<int> fatal;
};

int run(int argc, char** argv) {
  CLI::App cli{"pinhole-ua: a SIP user agent that registers from behind NAT"};
  cli.footer(kExitHelp);
  cli.require_subcommand(1);
  std::string log_level = "info";
  cli.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical, off");

  auto* reg = cli.add_subcommand("register", "register an AOR and keep the registration alive");
  ua::UaConfig config;
  std::string proxy;
  std::string instance_file;
  bool json = false;
  bool no_outbound = false;
  bool no_alias = false;
  double duration = 0;
  double keepalive = 0;
  reg->add_option("--aor", config.aor, "address of record, e.g. sip:alice@example.com")->required();
  reg->add_option("--password", config.password, "digest password")->required();
  reg->add_option("--user", config.user, "digest user name (default: the AOR's user part)");
  reg->add_option("--outbound-proxy", proxy, "tcp:HOST:PORT, udp:HOST:PORT or a sip: URI (resolved once, pinned)")
      ->required();
  reg->add_option("--expires", config.expires, "registration lifetime asked for, seconds")
      ->check(CLI::Range(1U, 86400U));
  reg->add_option("--duration", duration, "seconds to stay registered (default: until SIGINT/SIGTERM)")
      ->check(CLI::NonNegativeNumber);
  reg->add_option("--instance-file", instance_file,
                  "file keeping the +sip.instance UUID (default: $XDG_STATE_HOME or ~/.local/state/pinhole-ua/)");
  reg->add_option("--keepalive", keepalive, "keepalive interval without Flow-Timer, seconds (0: 30 UDP / 120 TCP)")
      ->check(CLI::NonNegativeNumber);
  reg->add_flag("--no-outbound", no_outbound, "no RFC 5626 instance/reg-id/;ob/Supported: outbound");
  reg->add_flag("--no-alias", no_alias, "no ;alias on the TCP Via");
  reg->add_flag("--json", json, "print one JSON object per event on stdout");

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = cli.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }

  std::unique_ptr<Logging> logging;
  try {
    logging = std::make_unique<Logging>(log_level, std::map<std::string, std::string>{});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pinhole-ua: %s\n", e.what());
    return kExitUsage;
  }
  auto log = logging->logger("main");

  config.proxy.uri = proxy;
  config.outbound = !no_outbound;
  config.via_alias = !no_alias;
  config.keepalive_interval = std::chrono::milliseconds(static_cast<int64_t>(keepalive * 1000));
  if (config.outbound) {
    std::string path = instance_file.empty() ? ua::default_instance_file() : instance_file;
    auto id = ua::load_or_create_instance_id(path);
    if (id) {
      config.instance_id = *id;
    } else {
      log->warn("cannot keep the instance id in {} ({}); using a new one for this run", path, id.error().what);
    }
  }

  // Blocked before any thread starts, so that only sigtimedwait below sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ExitState state;
  std::mutex print_mutex;
  auto on_event = [&](const ua::UaEvent& event) {
    if (json) {
      nlohmann::json line = {{"event", std::string(ua::event_name(event.kind))},
                             {"text", event.text},
                             {"time", static_cast<int64_t>(std::time(nullptr))}};
      if (event.status != 0) line["status"] = event.status;
      std::lock_guard lock(print_mutex);
      std::cout << line.dump() << std::endl;
    }
    std::lock_guard lock(state.mutex);
    switch (event.kind) {
      case ua::UaEventKind::kRegistered:
        state.registered_once = true;
        break;
      case ua::UaEventKind::kAuthFailed:
        if (!state.registered_once) state.fatal = kExitAuth;
        break;
      case ua::UaEventKind::kRegisterFailed:
      case ua::UaEventKind::kTimeout:
        if (!state.registered_once) state.fatal = kExitRegister;
        break;
      case ua::UaEventKind::kUnregistered:
        state.unregistered = true;
        break;
      default:
        break;
    }
  };

  auto agent = ua::UserAgent::create(config, on_event, log);
  if (!agent) {
    log->error("{}", agent.error().what);
    return kExitUsage;
  }
  if (auto started = (*agent)->start(); !started) {
    log->error("{}", started.error().what);
    return kExitStart;
  }

  auto deadline = duration > 0 ? std::optional(std::chrono::steady_clock::now() +
                                               std::chrono::milliseconds(static_cast<int64_t>(duration * 1000)))
                               : std::nullopt;
  int code = kExitOk;
  for (;;) {
    // Wakes every 200 ms to look at the deadline and the events; a signal ends the wait at once.
    timespec tick{0, 200'000'000};
    int sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) {
      log->info("signal {}: unregistering", sig);
      break;
    }
    {
      std::lock_guard lock(state.mutex);
      if (state.fatal) {
        code = *state.fatal;
        break;
      }
    }
    if (deadline && std::chrono::steady_clock::now() >= *deadline) break;
  }
  (*agent)->stop();
  std::lock_guard lock(state.mutex);
  if (code == kExitOk && state.registered_once && !state.unregistered) code = kExitUnregister;
  if (code == kExitOk && !state.registered_once) code = kExitRegister;
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pinhole-ua: %s\n", e.what());
    return kExitUsage;
  }
}
