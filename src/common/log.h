// Logging: one spdlog logger per component, made by a Logging object that the daemon builds from
// the `log:` config and hands to each component (DESIGN.md §4: injected, no globals), and
// RateLimitedLog, which keeps a drop or reject path that fires per packet from flooding the log
// (§4: every drop logs once at warn, rate-limited).
//
// Our code never touches spdlog's global registry or default logger: loggers are built directly
// on a shared sink and reach the components only through Logging.
#pragma once

#include <spdlog/logger.h>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "common/result.h"

namespace pinhole {

using LogLevel = spdlog::level::level_enum;

// The components with a logger of their own; config keys under `log.components` are these.
inline constexpr std::array<std::string_view, 9> kLogComponents = {"transport", "txn",   "proxy",  "nat", "registrar",
                                                                   "store",     "admin", "config", "main"};

// "trace" "debug" "info" "warn" "error" "critical" "off" (exactly, lower case); anything else is
// an Error (status 400) whose text lists the valid names.
Result<LogLevel> parse_log_level(std::string_view name);

// Checks a `log:` config: the default level and, for each entry, the component name (one of
// kLogComponents) and its level. The config loader calls this and adds the key to the message.
Status validate_log_config(std::string_view level, const std::map<std::string, std::string>& components);

// Hands out the per-component loggers. Build one at start-up and pass it (or the loggers it
// gives) to the components.
//
// Threads: logger() and set_levels() may be called from any thread; the loggers themselves are
// thread-safe (spdlog *_mt sinks, atomic levels).
class Logging {
 public:
  // Lines go to `sink`, stderr when null (tests pass an ostream sink). Every line carries the time,
  // the level and the component: "2024-05-01 12:00:00.123 warning [transport] ...". Invalid levels or
  // component names throw std::invalid_argument: the config was validated before (start-up bug).
  Logging(std::string_view level, const std::map<std::string, std::string>& components,
          spdlog::sink_ptr sink = nullptr);

  // The logger of a component from kLogComponents; another name is a bug (std::logic_error).
  // shared_ptr because spdlog's API is built on it (loggers and sinks are shared between the
  // objects that log); holders keep the logger alive even if Logging goes first.
  std::shared_ptr<spdlog::logger> logger(std::string_view component) const;

  // New levels for every logger (config reload); same rules as the constructor.
  void set_levels(std::string_view level, const std::map<std::string, std::string>& components);

 private:
  spdlog::sink_ptr sink_;
  // Filled in the constructor and never changed afterwards, so logger() reads it without a lock.
  std::map<std::string, std::shared_ptr<spdlog::logger>, std::less<>> loggers_;
};

// "Log at most once per `interval` per key", counting what it held back and saying so in the next
// line that gets through: "... (42 similar lines suppressed)". Keys name the event ("udp_drop_parse",
// usually the counter's name), never per-peer data: the key table is capped at kMaxKeys and any
// further keys share one budget.
//
// Threads: any thread; a mutex guards the key table for one lookup, the line is formatted and
// written outside it. Time is passed in (`now`), so tests drive it by hand.
class RateLimitedLog {
 public:
  static constexpr size_t kMaxKeys = 1024;

  RateLimitedLog(std::shared_ptr<spdlog::logger> logger, Duration interval)
      : logger_(std::move(logger)), interval_(interval) {}

  // Whether a line for `key` may go out at `now`: the number of lines suppressed for that key since
  // the last one that went out, or nullopt (and the line is counted as suppressed).
  std::optional<uint64_t> admit(TimePoint now, std::string_view key);

  // Logs at warn (or `level`) when admit() allows it; formats nothing otherwise. Returns whether a
  // line was written.
  template <typename... Args>
  bool warn(TimePoint now, std::string_view key, fmt::format_string<Args...> format, Args&&... args) {
    return log(now, key, LogLevel::warn, format, std::forward<Args>(args)...);
  }
  template <typename... Args>
  bool log(TimePoint now, std::string_view key, LogLevel level, fmt::format_string<Args...> format, Args&&... args) {
    if (!logger_->should_log(level)) return false;
    std::optional<uint64_t> suppressed = admit(now, key);
    if (!suppressed) return false;
    write(level, *suppressed, fmt::format(format, std::forward<Args>(args)...));
    return true;
  }

  const std::shared_ptr<spdlog::logger>& logger() const { return logger_; }

 private:
  struct KeyState {
    TimePoint last_logged;
    uint64_t suppressed = 0;
  };
  void write(LogLevel level, uint64_t suppressed, const std::string& message);

  std::shared_ptr<spdlog::logger> logger_;
  Duration interval_;
  std::mutex mutex_;
  std::map<std::string, KeyState, std::less<>> keys_;
};

}  // namespace pinhole
