// Logging (levels, components, line format) and RateLimitedLog (one line per interval per key,
// with the count of what was held back), driven by a ManualClock.
#include "common/log.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>

#include <sstream>
#include <thread>
#include <vector>

namespace pinhole {
namespace {

using std::chrono::seconds;

std::vector<std::string> lines_of(const std::ostringstream& out) {
  std::vector<std::string> lines;
  std::istringstream in(out.str());
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

bool ends_with(std::string_view s, std::string_view suffix) { return s.ends_with(suffix); }

TEST(LogLevelTest, ParsesTheSevenNames) {
  EXPECT_EQ(parse_log_level("trace").value(), LogLevel::trace);
  EXPECT_EQ(parse_log_level("debug").value(), LogLevel::debug);
  EXPECT_EQ(parse_log_level("info").value(), LogLevel::info);
  EXPECT_EQ(parse_log_level("warn").value(), LogLevel::warn);
  EXPECT_EQ(parse_log_level("error").value(), LogLevel::err);
  EXPECT_EQ(parse_log_level("critical").value(), LogLevel::critical);
  EXPECT_EQ(parse_log_level("off").value(), LogLevel::off);
  for (std::string_view bad : {"", "INFO", "warning", "err", "verbose", "info "}) {
    auto r = parse_log_level(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().status, 400);
    EXPECT_NE(r.error().what.find("trace"), std::string_view::npos);  // lists the valid names
  }
}

TEST(LogLevelTest, ValidatesAWholeLogConfig) {
  EXPECT_TRUE(validate_log_config("info", {}).ok());
  EXPECT_TRUE(validate_log_config("warn", {{"transport", "debug"}, {"main", "off"}}).ok());
  EXPECT_FALSE(validate_log_config("loud", {}).ok());
  EXPECT_FALSE(validate_log_config("info", {{"transport", "loud"}}).ok());
  Status unknown = validate_log_config("info", {{"sdp", "debug"}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().what.find("component"), std::string_view::npos);
}

TEST(LoggingTest, OneLoggerPerComponentWithItsLevel) {
  std::ostringstream out;
  Logging logging("warn", {{"transport", "debug"}}, std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  for (std::string_view c : kLogComponents) {
    auto logger = logging.logger(c);
    ASSERT_NE(logger, nullptr);
    EXPECT_EQ(logger->name(), c);
    EXPECT_EQ(logger->level(), c == "transport" ? LogLevel::debug : LogLevel::warn);
  }
  EXPECT_EQ(logging.logger("txn"), logging.logger("txn"));  // one logger, handed out many times
  EXPECT_THROW(logging.logger("nope"), std::logic_error);

  logging.logger("transport")->debug("shown {}", 1);
  logging.logger("proxy")->info("hidden");
  logging.logger("proxy")->warn("shown {}", 2);
  auto lines = lines_of(out);
  ASSERT_EQ(lines.size(), 2u);
  // "YYYY-MM-DD HH:MM:SS.mmm level [component] message"
  EXPECT_TRUE(ends_with(lines[0], " debug [transport] shown 1")) << lines[0];
  EXPECT_TRUE(ends_with(lines[1], " warning [proxy] shown 2")) << lines[1];
  EXPECT_EQ(lines[0][4], '-');
  EXPECT_EQ(lines[0][13], ':');
  EXPECT_EQ(lines[0][19], '.');
}

TEST(LoggingTest, InvalidConfigThrowsAndSetLevelsChangesLevels) {
  EXPECT_THROW(Logging("loud", {}), std::invalid_argument);
  EXPECT_THROW(Logging("info", {{"sdp", "info"}}), std::invalid_argument);

  std::ostringstream out;
  Logging logging("info", {}, std::make_shared<spdlog::sinks::ostream_sink_mt>(out));
  auto nat = logging.logger("nat");  // a component keeps its logger across reloads
  logging.set_levels("error", {{"nat", "trace"}});
  EXPECT_EQ(nat->level(), LogLevel::trace);
  EXPECT_EQ(logging.logger("main")->level(), LogLevel::err);
  EXPECT_THROW(logging.set_levels("info", {{"nat", "loud"}}), std::invalid_argument);
  EXPECT_EQ(nat->level(), LogLevel::trace);  // unchanged by the refused reload
}

class RateLimitedLogTest : public ::testing::Test {
 protected:
  std::ostringstream out_;
  Logging logging_{"info", {}, std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)};
  ManualClock clock_;
};

TEST_F(RateLimitedLogTest, OneLinePerIntervalPerKeyThenTheSuppressedCount) {
  RateLimitedLog log(logging_.logger("transport"), seconds(10));
  EXPECT_TRUE(log.warn(clock_.now(), "udp_drop", "dropped datagram from {}", "192.0.2.1:5060"));
  EXPECT_FALSE(log.warn(clock_.now(), "udp_drop", "dropped datagram from {}", "192.0.2.2:5060"));
  clock_.advance(seconds(9));
  EXPECT_FALSE(log.warn(clock_.now(), "udp_drop", "dropped datagram from {}", "192.0.2.3:5060"));
  // Another key has its own budget.
  EXPECT_TRUE(log.warn(clock_.now(), "tcp_reject", "too many connections"));
  clock_.advance(seconds(1));  // 10 s after the first line
  EXPECT_TRUE(log.warn(clock_.now(), "udp_drop", "dropped datagram from {}", "192.0.2.4:5060"));
  clock_.advance(seconds(10));
  EXPECT_TRUE(log.warn(clock_.now(), "udp_drop", "dropped datagram from {}", "192.0.2.5:5060"));

  auto lines = lines_of(out_);
  ASSERT_EQ(lines.size(), 4u);
  EXPECT_TRUE(ends_with(lines[0], "warning [transport] dropped datagram from 192.0.2.1:5060")) << lines[0];
  EXPECT_TRUE(ends_with(lines[1], "warning [transport] too many connections")) << lines[1];
  EXPECT_TRUE(ends_with(lines[2], "dropped datagram from 192.0.2.4:5060 (2 similar lines suppressed)")) << lines[2];
  EXPECT_TRUE(ends_with(lines[3], "dropped datagram from 192.0.2.5:5060")) << lines[3];
}

TEST_F(RateLimitedLogTest, AdmitCountsWithoutALogger) {
  RateLimitedLog log(logging_.logger("nat"), seconds(1));
  EXPECT_EQ(log.admit(clock_.now(), "k"), std::optional<uint64_t>(0));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(log.admit(clock_.now(), "k"), std::nullopt);
  clock_.advance(seconds(1));
  EXPECT_EQ(log.admit(clock_.now(), "k"), std::optional<uint64_t>(5));
  EXPECT_EQ(log.admit(clock_.now(), "k"), std::nullopt);
}

TEST_F(RateLimitedLogTest, LevelAndDisabledLoggerCostNothing) {
  logging_.set_levels("error", {});
  RateLimitedLog log(logging_.logger("proxy"), seconds(10));
  EXPECT_FALSE(log.warn(clock_.now(), "k", "not shown"));
  EXPECT_TRUE(log.log(clock_.now(), "k", LogLevel::err, "shown at error"));
  auto lines = lines_of(out_);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_TRUE(ends_with(lines[0], "error [proxy] shown at error")) << lines[0];
}

TEST_F(RateLimitedLogTest, KeyTableIsBounded) {
  RateLimitedLog log(logging_.logger("nat"), seconds(10));
  for (size_t i = 0; i < RateLimitedLog::kMaxKeys; ++i) {
    EXPECT_TRUE(log.admit(clock_.now(), "key" + std::to_string(i)).has_value());
  }
  // Beyond the cap, new keys share one budget.
  EXPECT_TRUE(log.admit(clock_.now(), "overflow-a").has_value());
  EXPECT_FALSE(log.admit(clock_.now(), "overflow-b").has_value());
  EXPECT_FALSE(log.admit(clock_.now(), "key0").has_value());  // known keys keep their own
}

TEST_F(RateLimitedLogTest, ConcurrentCallersCountEveryLine) {
  RateLimitedLog log(logging_.logger("proxy"), seconds(10));
  constexpr int kThreads = 4;
  constexpr int kPerThread = 10000;
  std::atomic<int> written{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kPerThread; ++i) {
        if (log.warn(clock_.now(), "k", "drop")) ++written;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(written.load(), 1);
  clock_.advance(seconds(10));
  EXPECT_EQ(log.admit(clock_.now(), "k"), std::optional<uint64_t>(kThreads * kPerThread - 1));
}

}  // namespace
}  // namespace pinhole
