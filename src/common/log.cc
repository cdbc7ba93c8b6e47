// Logging and RateLimitedLog (see log.h).
#include "common/log.h"

#include <spdlog/sinks/stdout_sinks.h>

#include <stdexcept>

namespace pinhole {

namespace {

constexpr std::array<std::pair<std::string_view, LogLevel>, 7> kLevelNames = {{
    {"trace", LogLevel::trace},
    {"debug", LogLevel::debug},
    {"info", LogLevel::info},
    {"warn", LogLevel::warn},
    {"error", LogLevel::err},
    {"critical", LogLevel::critical},
    {"off", LogLevel::off},
}};

bool known_component(std::string_view name) {
  for (std::string_view c : kLogComponents) {
    if (c == name) return true;
  }
  return false;
}

// Level of each component: its own entry, else the default. Throws on invalid input (the
// constructor's and set_levels' contract).
std::map<std::string_view, LogLevel> resolve_levels(std::string_view level,
                                                    const std::map<std::string, std::string>& components) {
  Status status = validate_log_config(level, components);
  if (!status) {
    throw std::invalid_argument(std::string("log config: ") + std::string(status.error().what));
  }
  LogLevel fallback = parse_log_level(level).value();
  std::map<std::string_view, LogLevel> levels;
  for (std::string_view c : kLogComponents) {
    auto it = components.find(std::string(c));
    levels[c] = it == components.end() ? fallback : parse_log_level(it->second).value();
  }
  return levels;
}

}  // namespace

Result<LogLevel> parse_log_level(std::string_view name) {
  for (const auto& [text, level] : kLevelNames) {
    if (text == name) return level;
  }
  return Error{400, "unknown log level (trace, debug, info, warn, error, critical, off)"};
}

Status validate_log_config(std::string_view level, const std::map<std::string, std::string>& components) {
  PINHOLE_TRY(parse_log_level(level));
  for (const auto& [component, component_level] : components) {
    if (!known_component(component)) {
      return Error{400, "unknown log component (transport, txn, proxy, nat, admin, config, main)"};
    }
    PINHOLE_TRY(parse_log_level(component_level));
  }
  return Status::Ok();
}

Logging::Logging(std::string_view level, const std::map<std::string, std::string>& components, spdlog::sink_ptr sink)
    : sink_(sink ? std::move(sink) : std::make_shared<spdlog::sinks::stderr_sink_mt>()) {
  // The pattern lives on the shared sink (spdlog formats per sink); %n is the logger's name,
  // which is the component.
  sink_->set_pattern("%Y-%m-%d %H:%M:%S.%e %l [%n] %v");
  for (const auto& [component, component_level] : resolve_levels(level, components)) {
    auto logger = std::make_shared<spdlog::logger>(std::string(component), sink_);
    logger->set_level(component_level);
    // Warnings and errors reach the terminal/journal at once even if a sink buffers.
    logger->flush_on(LogLevel::warn);
    loggers_.emplace(std::string(component), std::move(logger));
  }
}

std::shared_ptr<spdlog::logger> Logging::logger(std::string_view component) const {
  auto it = loggers_.find(component);
  if (it == loggers_.end()) throw std::logic_error("no logger for component '" + std::string(component) + "'");
  return it->second;
}

void Logging::set_levels(std::string_view level, const std::map<std::string, std::string>& components) {
  // Resolve everything first so an invalid config changes nothing.
  auto levels = resolve_levels(level, components);
  for (const auto& [component, component_level] : levels) {
    loggers_.find(component)->second->set_level(component_level);  // atomic inside spdlog
  }
}

std::optional<uint64_t> RateLimitedLog::admit(TimePoint now, std::string_view key) {
  std::lock_guard lock(mutex_);
  auto it = keys_.find(key);
  if (it == keys_.end()) {
    // A full table folds new keys into one shared entry (""), so a caller that puts per-peer
    // text in keys costs bounded memory and is still rate-limited.
    std::string_view slot = keys_.size() >= kMaxKeys ? std::string_view{} : key;
    it = keys_.find(slot);
    if (it == keys_.end()) {
      keys_.emplace(std::string(slot), KeyState{now, 0});
      return uint64_t{0};
    }
  }
  if (now - it->second.last_logged < interval_) {
    ++it->second.suppressed;
    return std::nullopt;
  }
  uint64_t suppressed = it->second.suppressed;
  it->second = KeyState{now, 0};
  return suppressed;
}

void RateLimitedLog::write(LogLevel level, uint64_t suppressed, const std::string& message) {
  if (suppressed == 0) {
    logger_->log(level, "{}", message);
  } else {
    logger_->log(level, "{} ({} similar lines suppressed)", message, suppressed);
  }
}

}  // namespace pinhole
