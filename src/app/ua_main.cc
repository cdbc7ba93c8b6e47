// pinhole-ua: registers one AOR through an outbound proxy from behind NAT and keeps the
// registration alive, answering calls with an echo or a tone when asked (`register`), or places
// one call through the proxy, holds it and hangs up (`call`); see src/ua/ and docs/ua.md. Each
// SIP step is logged on stderr; --json also prints one JSON object per event on stdout for
// scripts.
//
// Threads: the main thread parses the command line, starts the UserAgent and drives it (call,
// hang up, stop) while waiting for a signal, a deadline or an event; the UA's events arrive on
// its own thread and only record state (under a mutex) and print.
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
using Clock = std::chrono::steady_clock;

// Exit codes (also in --help and docs/ua.md).
constexpr int kExitOk = 0;
constexpr int kExitUsage = 1;
constexpr int kExitStart = 2;
constexpr int kExitAuth = 3;
constexpr int kExitRegister = 4;
constexpr int kExitUnregister = 5;
constexpr int kExitCallRejected = 6;
constexpr int kExitNoAnswer = 7;
constexpr int kExitNoMedia = 8;

constexpr const char* kExitHelp =
    "Exit codes: 0 ok; 1 bad command line; 2 could not start (outbound proxy does not resolve); 3 "
    "credentials refused by the registrar; 4 the first registration failed (error response or no answer); 5 "
    "the unregister at shutdown was not confirmed; 6 call rejected (a final error response, status logged); 7 "
    "call not answered (ring timeout, INVITE unanswered, flow lost); 8 --expect-media and no RTP received.";

struct ExitState {
  std::mutex mutex;
  bool registered_once = false;
  bool unregistered = false;
  std::optional<int> fatal;
  // The call of `call`.
  bool answered = false;
  bool ended = false;
  std::optional<uint16_t> failed_status;
  std::optional<ua::RtpStats> final_stats;
};

// Options both subcommands take.
struct Common {
  ua::UaConfig config;
  std::string proxy;
  std::string instance_file;
  bool json = false;
  bool no_outbound = false;
  bool no_alias = false;
  double keepalive = 0;
  bool echo = false;
  bool tone = false;
};

void add_common(CLI::App* app, Common& c) {
  app->add_option("--aor", c.config.aor, "address of record, e.g. sip:alice@example.com")->required();
  app->add_option("--password", c.config.password, "digest password")->required();
  app->add_option("--user", c.config.user, "digest user name (default: the AOR's user part)");
  app->add_option("--outbound-proxy", c.proxy,
                  "tcp:HOST:PORT, udp:HOST:PORT, tls:HOST:PORT or a sip:/sips: URI (resolved once, pinned)")
      ->required();
  auto* ca_file = app->add_option("--ca-file", c.config.tls_ca_file,
                                  "TLS: trust only the PEM CA certificates in PATH (default: the system's CA store)")
                      ->check(CLI::ExistingFile);
  app->add_flag("--insecure", c.config.tls_insecure,
                "TLS: do not verify the proxy's certificate or name (labs with throwaway certificates only)")
      ->excludes(ca_file);
  app->add_option("--expires", c.config.expires, "registration lifetime asked for, seconds")
      ->check(CLI::Range(1U, 86400U));
  app->add_option("--instance-file", c.instance_file,
                  "file keeping the +sip.instance UUID (default: $XDG_STATE_HOME or ~/.local/state/pinhole-ua/)");
  app->add_option("--keepalive", c.keepalive,
                  "keepalive interval without Flow-Timer, seconds (0: 30 UDP / 120 TCP, TLS)")
      ->check(CLI::NonNegativeNumber);
  app->add_flag("--no-outbound", c.no_outbound, "no RFC 5626 instance/reg-id/;ob/Supported: outbound");
  app->add_flag("--no-alias", c.no_alias, "no ;alias on the TCP/TLS Via");
  app->add_flag("--json", c.json, "print one JSON object per event on stdout");
  auto* echo = app->add_flag("--echo", c.echo, "media: send back every RTP packet received");
  auto* tone = app->add_flag("--tone", c.tone, "media: send a 440 Hz tone (20 ms PCMU/PCMA frames)");
  echo->excludes(tone);
}

nlohmann::json event_json(const ua::UaEvent& event) {
  nlohmann::json line = {{"event", std::string(ua::event_name(event.kind))},
                         {"text", event.text},
                         {"time", static_cast<int64_t>(std::time(nullptr))}};
  if (event.status != 0) line["status"] = event.status;
  if (event.call != 0) line["call"] = event.call;
  if (event.media) {
    line["packets_sent"] = event.media->packets_sent;
    line["packets_received"] = event.media->packets_received;
    line["bytes_sent"] = event.media->bytes_sent;
    line["bytes_received"] = event.media->bytes_received;
    if (event.media->latched) line["latched"] = event.media->latched->to_string();
    line["final"] = event.final_stats;
  }
  return line;
}

// Waits up to `limit` (a signal ends it early) or until `done` says so; returns the signal or 0.
template <typename Done>
int wait_until(const sigset_t& signals, std::optional<Clock::time_point> limit, Done done) {
  for (;;) {
    if (done()) return 0;
    if (limit && Clock::now() >= *limit) return 0;
    timespec tick{0, 100'000'000};  // wakes every 100 ms to look at the state
    int sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig == SIGINT || sig == SIGTERM) return sig;
  }
}

Clock::time_point after_seconds(double seconds) {
  return Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

int run(int argc, char** argv) {
  CLI::App cli{"pinhole-ua: a SIP user agent that registers and places/takes calls from behind NAT"};
  cli.footer(kExitHelp);
  cli.require_subcommand(1);
  std::string log_level = "info";
  cli.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical, off");

  Common reg_options;
  auto* reg = cli.add_subcommand("register", "register an AOR and keep the registration alive (answering calls)");
  add_common(reg, reg_options);
  double duration = 0;
  bool answer = false;
  uint32_t answer_delay_ms = 0;
  reg->add_option("--duration", duration, "seconds to stay registered (default: until SIGINT/SIGTERM)")
      ->check(CLI::NonNegativeNumber);
  reg->add_flag("--answer", answer, "answer incoming calls (180 at once, 200 after --answer-delay)");
  reg->add_option("--answer-delay", answer_delay_ms, "milliseconds between 180 and 200")
      ->check(CLI::Range(0U, 600000U));

  Common call_options;
  auto* call = cli.add_subcommand("call", "place one call through the outbound proxy, hold it, hang up");
  add_common(call, call_options);
  std::string target;
  double hold = 5;
  double ring_timeout = 60;
  bool also_register = false;
  bool expect_media = false;
  call->add_option("target", target, "who to call, e.g. sip:bob@example.com")->required();
  call->add_option("--duration", hold, "seconds to hold the call once answered")->check(CLI::NonNegativeNumber);
  call->add_option("--ring-timeout", ring_timeout, "seconds to wait for an answer before cancelling")
      ->check(CLI::PositiveNumber);
  call->add_flag("--register", also_register, "register the AOR first (and unregister at the end)");
  call->add_flag("--expect-media", expect_media, "exit 8 when no RTP packet was received");

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = cli.exit(e);
    return code == 0 ? kExitOk : kExitUsage;
  }
  const bool calling = call->parsed();
  Common& opts = calling ? call_options : reg_options;

  std::unique_ptr<Logging> logging;
  try {
    logging = std::make_unique<Logging>(log_level, std::map<std::string, std::string>{});
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pinhole-ua: %s\n", e.what());
    return kExitUsage;
  }
  auto log = logging->logger("main");

  ua::UaConfig config = opts.config;
  config.proxy.uri = opts.proxy;
  config.outbound = !opts.no_outbound;
  config.via_alias = !opts.no_alias;
  config.keepalive_interval = std::chrono::milliseconds(static_cast<int64_t>(opts.keepalive * 1000));
  config.media = opts.echo ? ua::MediaMode::kEcho : opts.tone ? ua::MediaMode::kTone : ua::MediaMode::kNone;
  config.register_binding = !calling || also_register;
  config.auto_answer = !calling && answer;
  config.answer_after = std::chrono::milliseconds(answer_delay_ms);
  if (config.outbound) {
    std::string path = opts.instance_file.empty() ? ua::default_instance_file() : opts.instance_file;
    auto id = ua::load_or_create_instance_id(path);
    if (id) {
      config.instance_id = *id;
    } else {
      log->warn("cannot keep the instance id in {} ({}); using a new one for this run", path, id.error().what);
    }
  }

  // Blocked before any thread starts, so that only sigtimedwait sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  ExitState state;
  std::mutex print_mutex;
  const bool json = opts.json;
  auto on_event = [&](const ua::UaEvent& event) {
    if (json) {
      std::lock_guard lock(print_mutex);
      std::cout << event_json(event).dump() << std::endl;
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
      case ua::UaEventKind::kAnswered:
        state.answered = true;
        break;
      case ua::UaEventKind::kCallFailed:
        state.failed_status = event.status;
        state.ended = true;
        break;
      case ua::UaEventKind::kCallEnded:
        state.ended = true;
        break;
      case ua::UaEventKind::kMediaStats:
        if (event.final_stats && event.media) state.final_stats = event.media;
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
  auto& ua_ref = **agent;
  if (auto started = ua_ref.start(); !started) {
    log->error("{}", started.error().what);
    return kExitStart;
  }
  auto fatal = [&] {
    std::lock_guard lock(state.mutex);
    return state.fatal.has_value();
  };

  int code = kExitOk;
  if (!calling) {
    auto deadline = duration > 0 ? std::optional(after_seconds(duration)) : std::nullopt;
    int sig = wait_until(signals, deadline, fatal);
    if (sig != 0) log->info("signal {}: unregistering", sig);
  } else {
    int sig = 0;
    if (also_register) {
      sig = wait_until(signals, std::nullopt, [&] {
        std::lock_guard lock(state.mutex);
        return state.registered_once || state.fatal.has_value();
      });
    }
    if (sig == 0 && !fatal())
      code = [&] {
        auto id = ua_ref.call(target);
        if (!id) {
          log->error("{}", id.error().what);
          return kExitUsage;
        }
        auto answered_or_over = [&] {
          std::lock_guard lock(state.mutex);
          return state.answered || state.ended;
        };
        sig = wait_until(signals, after_seconds(ring_timeout), answered_or_over);
        bool answered = false;
        {
          std::lock_guard lock(state.mutex);
          answered = state.answered;
        }
        if (!answered) {
          {
            std::lock_guard lock(state.mutex);
            if (state.failed_status) {
              uint16_t status = *state.failed_status;
              return status >= 300 && status != 408 ? kExitCallRejected : kExitNoAnswer;
            }
          }
          log->warn("call not answered within {} s: cancelling", ring_timeout);
          ua_ref.cancel(*id);
          wait_until(signals, after_seconds(5), [&] {
            std::lock_guard lock(state.mutex);
            return state.ended;
          });
          return kExitNoAnswer;
        }
        if (sig == 0) {
          sig = wait_until(signals, after_seconds(hold), [&] {
            std::lock_guard lock(state.mutex);
            return state.ended;
          });
        }
        ua_ref.hangup(*id);
        // The BYE's answer and the final media counters.
        wait_until(signals, after_seconds(5), [&] {
          std::lock_guard lock(state.mutex);
          return state.ended && state.final_stats.has_value();
        });
        std::lock_guard lock(state.mutex);
        if (state.final_stats) {
          const auto& s = *state.final_stats;
          log->info("media: sent {} RTP packets, received {}", s.packets_sent, s.packets_received);
          if (expect_media && s.packets_received == 0) {
            log->error("no RTP received during the call");
            return kExitNoMedia;
          }
        } else if (expect_media) {
          return kExitNoMedia;
        }
        return kExitOk;
      }();
  }
  ua_ref.stop();
  std::lock_guard lock(state.mutex);
  if (state.fatal && code == kExitOk) code = *state.fatal;
  if (config.register_binding && code == kExitOk) {
    if (!state.registered_once)
      code = kExitRegister;
    else if (!state.unregistered)
      code = kExitUnregister;
  }
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
