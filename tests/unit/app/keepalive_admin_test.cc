// The keepalive admin view and its persistence glue, on endpoints of a real KeepaliveEngine driven
// by a manual clock: the JSON of one endpoint (relative and wall-clock times), the list and show
// answers, the record for the store and the reasons to restore from it (round trip into a fresh
// engine), and `pinhole ctl keepalive list|show` end to end against an AdminServer on 127.0.0.1
// port 0 (including a daemon without the routes: keepalives off).
#include "app/keepalive_admin.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/post.hpp>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "app/admin_server.h"
#include "app/ctl.h"
#include "common/clock.h"
#include "ctl_test_support.h"
#include "nat/keepalive_engine.h"
#include "net/address.h"

namespace pinhole::app {
namespace {

namespace asio = boost::asio;
using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using Reason = nat::KeepaliveReason;

constexpr int64_t kWallStart = 1'700'000'000;  // the system clock when the engine starts

net::Flow udp_flow(const char* remote, uint32_t socket = 1) {
  return {net::Transport::kUdp, socket, net::Endpoint::parse(remote).value(), 0};
}

// Written independently of the code under test.
std::string hex(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, v);
  return buf;
}

class KeepaliveAdminTest : public ::testing::Test {
 protected:
  KeepaliveAdminTest() : engine_(config(), clock_) {}

  static nat::KeepaliveConfig config() {
    nat::KeepaliveConfig c;
    c.udp_interval = seconds(20);
    c.stream_interval = seconds(90);
    return c;
  }

  // Both clocks `elapsed` after the engine started.
  KeepaliveClocks at(seconds elapsed) const { return {start_ + elapsed, SystemTime(seconds(kWallStart)) + elapsed}; }

  // Three endpoints: alice (registration + dialog), the same remote over TCP (subscription), and
  // bob over a v4-mapped IPv6 remote (registration).
  void populate() {
    engine_.set_reason(alice_, Reason::kRegistration, "alice-binding", seconds(300));
    engine_.set_reason(alice_, Reason::kDialog, "call-1", seconds(3600));
    engine_.set_reason(alice_tcp_, Reason::kSubscription, "sub-1", seconds(600));
    engine_.set_reason(bob_, Reason::kRegistration, "bob-binding", seconds(120));
  }

  std::vector<nat::KeepaliveEngine::EndpointView> shuffled_list() const {
    auto list = engine_.list();
    std::reverse(list.begin(), list.end());
    return list;
  }

  ManualClock clock_{TimePoint(seconds(1000))};
  TimePoint start_ = clock_.now();
  nat::KeepaliveEngine engine_;
  net::Flow alice_ = udp_flow("203.0.113.5:4000");
  net::Flow alice_tcp_{net::Transport::kTcp, 2, net::Endpoint::parse("203.0.113.5:4000").value(), 7};
  net::Flow bob_ = udp_flow("[::ffff:198.51.100.7]:5060", 3);
};

TEST_F(KeepaliveAdminTest, EndpointJsonHasRelativeAndWallClockTimes) {
  populate();
  auto view = engine_.find(alice_);
  ASSERT_TRUE(view);
  KeepaliveClocks now = at(seconds(10));
  json e = keepalive_endpoint_json(*view, now);
  EXPECT_EQ(e["transport"], "udp");
  EXPECT_EQ(e["local_socket"], 1);
  EXPECT_EQ(e["remote"], "203.0.113.5:4000");
  EXPECT_EQ(e["connection_id"], 0);
  EXPECT_EQ(e["interval_s"], 20);
  EXPECT_EQ(e["misses"], 0);
  EXPECT_EQ(e["sent"], 0);
  EXPECT_EQ(e["replies"], 0);
  EXPECT_EQ(e["rebindings"], 0);
  EXPECT_EQ(e["suppressed"], false);
  ASSERT_EQ(e["reasons"].size(), 2U);
  json reg = e["reasons"][0]["kind"] == "registration" ? e["reasons"][0] : e["reasons"][1];
  json dlg = e["reasons"][0]["kind"] == "dialog" ? e["reasons"][0] : e["reasons"][1];
  EXPECT_EQ(reg["kind"], "registration");
  EXPECT_EQ(reg["key"], hex(nat::KeepaliveEngine::key_hash("alice-binding")));
  EXPECT_EQ(reg["expires_in_s"], 290);
  EXPECT_EQ(reg["expires_at"], kWallStart + 300);
  EXPECT_EQ(dlg["kind"], "dialog");
  EXPECT_EQ(dlg["key"], hex(nat::KeepaliveEngine::key_hash("call-1")));
  EXPECT_EQ(dlg["expires_in_s"], 3590);
  EXPECT_EQ(dlg["expires_at"], kWallStart + 3600);
  // The first ping is somewhere within the first interval (its hash phase).
  auto next_ms = std::chrono::duration_cast<milliseconds>(view->next_send - start_).count();
  ASSERT_GE(next_ms, 0);
  ASSERT_LE(next_ms, 20'000);
  EXPECT_EQ(e["next_send_in_ms"], std::max<int64_t>(0, next_ms - 10'000));
  EXPECT_EQ(e["next_send_at_ms"], kWallStart * 1000 + next_ms);
}

TEST_F(KeepaliveAdminTest, CountersAndSuppressionShow) {
  populate();
  engine_.suppress(bob_, true);
  // 45 s: alice was pinged (first ping within 20 s) and missed (no answer within the 10 s pong
  // timeout), but not 3 times in a row yet (dead).
  for (int i = 0; i < 45; ++i) {
    clock_.advance(seconds(1));
    (void)engine_.advance(clock_.now());
  }
  ASSERT_TRUE(engine_.find(alice_));
  json e = keepalive_endpoint_json(*engine_.find(alice_), at(seconds(45)));
  EXPECT_GE(e["sent"].get<int>(), 1);
  EXPECT_EQ(e["replies"], 0);
  EXPECT_GE(e["misses"].get<int>(), 1);
  ASSERT_TRUE(engine_.find(bob_));
  json b = keepalive_endpoint_json(*engine_.find(bob_), at(seconds(45)));
  EXPECT_EQ(b["suppressed"], true);
  EXPECT_EQ(b["sent"], 0);
}

TEST_F(KeepaliveAdminTest, ListIsSortedByRemoteAndLimited) {
  populate();
  auto [status, body] = keepalive_list_answer(shuffled_list(), at(seconds(0)), 100);
  ASSERT_EQ(status, 200);
  json answer = json::parse(body);
  EXPECT_EQ(answer["total"], 3);
  EXPECT_EQ(answer["truncated"], false);
  ASSERT_EQ(answer["endpoints"].size(), 3U);
  // IPv4 before IPv6 (bob's mapped address is IPv6), then UDP before TCP for the same remote.
  EXPECT_EQ(answer["endpoints"][0]["transport"], "udp");
  EXPECT_EQ(answer["endpoints"][0]["remote"], "203.0.113.5:4000");
  EXPECT_EQ(answer["endpoints"][1]["transport"], "tcp");
  EXPECT_EQ(answer["endpoints"][1]["connection_id"], 7);
  EXPECT_EQ(answer["endpoints"][2]["remote"], "[::ffff:198.51.100.7]:5060");

  std::tie(status, body) = keepalive_list_answer(shuffled_list(), at(seconds(0)), 2);
  answer = json::parse(body);
  EXPECT_EQ(answer["total"], 3);
  EXPECT_EQ(answer["truncated"], true);
  EXPECT_EQ(answer["endpoints"].size(), 2U);

  std::tie(status, body) = keepalive_list_answer({}, at(seconds(0)), 2);
  answer = json::parse(body);
  EXPECT_EQ(answer["total"], 0);
  EXPECT_TRUE(answer["endpoints"].empty());
}

TEST_F(KeepaliveAdminTest, ShowFindsEveryEndpointTowardsARemote) {
  populate();
  auto [status, body] = keepalive_show_answer(shuffled_list(), "203.0.113.5:4000", at(seconds(0)));
  ASSERT_EQ(status, 200) << body;
  json answer = json::parse(body);
  EXPECT_EQ(answer["remote"], "203.0.113.5:4000");
  ASSERT_EQ(answer["endpoints"].size(), 2U);
  EXPECT_EQ(answer["endpoints"][0]["transport"], "udp");
  EXPECT_EQ(answer["endpoints"][1]["transport"], "tcp");

  // The operator types bob's IPv4 address; the socket reported it v4-mapped. Either form works.
  for (const char* text : {"198.51.100.7:5060", "[::ffff:198.51.100.7]:5060"}) {
    std::tie(status, body) = keepalive_show_answer(shuffled_list(), text, at(seconds(0)));
    ASSERT_EQ(status, 200) << text << " " << body;
    EXPECT_EQ(json::parse(body)["endpoints"].size(), 1U);
  }

  std::tie(status, body) = keepalive_show_answer(shuffled_list(), "203.0.113.5:4001", at(seconds(0)));
  EXPECT_EQ(status, 404);
  EXPECT_NE(json::parse(body)["error"].get<std::string>().find("203.0.113.5:4001"), std::string::npos);
  for (const char* bad : {"203.0.113.5", "nonsense", "", "203.0.113.5:70000"}) {
    std::tie(status, body) = keepalive_show_answer(shuffled_list(), bad, at(seconds(0)));
    EXPECT_EQ(status, 400) << bad;
    EXPECT_TRUE(json::parse(body).contains("error"));
  }
}

TEST_F(KeepaliveAdminTest, RecordForTheStoreAndBackIntoAFreshEngine) {
  populate();
  KeepaliveClocks now = at(seconds(10));
  store::KeepaliveRecord record = to_keepalive_record(*engine_.find(alice_), "edge-1", now.steady, now.system);
  EXPECT_EQ(record.node, "edge-1");
  EXPECT_EQ(record.flow, alice_);
  EXPECT_EQ(record.interval_s, 20U);
  ASSERT_EQ(record.reasons.size(), 2U);
  auto by_kind = [&](uint8_t kind) {
    auto it = std::find_if(record.reasons.begin(), record.reasons.end(),
                           [&](const store::KeepaliveReasonRecord& r) { return r.kind == kind; });
    return it == record.reasons.end() ? store::KeepaliveReasonRecord{255, 0, 0} : *it;
  };
  EXPECT_EQ(by_kind(0),
            (store::KeepaliveReasonRecord{0, nat::KeepaliveEngine::key_hash("alice-binding"), kWallStart + 300}));
  EXPECT_EQ(by_kind(2), (store::KeepaliveReasonRecord{2, nat::KeepaliveEngine::key_hash("call-1"), kWallStart + 3600}));

  // Restarted 400 s after the engine started: the registration (300 s) is over, the dialog not.
  // A kind this pinhole does not know is dropped too.
  record.reasons.push_back({7, 99, kWallStart + 5000});
  SystemTime restart = SystemTime(seconds(kWallStart + 400)) + milliseconds(300);
  std::vector<RestoredReason> restored = reasons_to_restore(record, restart);
  ASSERT_EQ(restored.size(), 1U);
  EXPECT_EQ(restored[0],
            (RestoredReason{alice_, Reason::kDialog, nat::KeepaliveEngine::key_hash("call-1"), seconds(3200)}));

  // Into a fresh engine, as the lead's start-up does: the endpoint comes back with the dialog.
  ManualClock clock(TimePoint(seconds(50)));
  nat::KeepaliveEngine fresh(config(), clock);
  for (const RestoredReason& r : restored) fresh.set_reason_hashed(r.flow, r.kind, r.key_hash, r.remaining);
  auto view = fresh.find(alice_);
  ASSERT_TRUE(view);
  ASSERT_EQ(view->details.size(), 1U);
  EXPECT_EQ(view->details[0].reason, Reason::kDialog);
  EXPECT_EQ(view->details[0].key_hash, nat::KeepaliveEngine::key_hash("call-1"));
  EXPECT_EQ(view->details[0].expires, clock.now() + seconds(3200));

  // A reason that ends exactly now is over.
  store::KeepaliveRecord edge = record;
  edge.reasons = {{1, 5, kWallStart + 400}};
  EXPECT_TRUE(reasons_to_restore(edge, restart).empty());
  edge.reasons = {{1, 5, kWallStart + 401}};
  ASSERT_EQ(reasons_to_restore(edge, restart).size(), 1U);
  EXPECT_EQ(reasons_to_restore(edge, restart)[0].remaining, seconds(1));
}

TEST_F(KeepaliveAdminTest, WallClockConversionRoundsExpiriesUp) {
  KeepaliveClocks now{TimePoint(seconds(100)), SystemTime(seconds(kWallStart))};
  EXPECT_EQ(to_unix_seconds_ceil(TimePoint(seconds(100)), now), kWallStart);
  EXPECT_EQ(to_unix_seconds_ceil(TimePoint(seconds(100)) + milliseconds(1), now), kWallStart + 1);
  EXPECT_EQ(to_unix_seconds_ceil(TimePoint(seconds(40)), now), kWallStart - 60);
  EXPECT_EQ(to_system_time(TimePoint(seconds(103)), now), SystemTime(seconds(kWallStart + 3)));
}

// --- the admin routes and `pinhole ctl keepalive` ---

class KeepaliveCtlTest : public KeepaliveAdminTest {
 protected:
  void start(bool with_routes) {
    server_ = std::make_unique<AdminServer>(io_, net::Endpoint::parse("127.0.0.1:0").value(), metrics_, log_);
    if (with_routes) {
      KeepaliveAdminOptions options;
      options.clocks = [this] { return at(seconds(10)); };
      options.default_limit = 2;
      // The test thread leaves the engine alone while the server runs.
      add_keepalive_routes(
          *server_, [this] { return engine_.list(); }, options);
    }
    server_->start();
    options_.admin = net::Endpoint::parse("127.0.0.1:" + std::to_string(server_->bound_port())).value();
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    if (!server_) return;
    asio::post(io_, [this] { server_->stop(); });
    work_.reset();
    thread_.join();
    server_.reset();
  }

  template <typename F>
  static test::CtlRun run(F command) {
    return test::run_ctl(command);
  }

  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  MetricsRegistry metrics_;
  std::shared_ptr<spdlog::logger> log_ =
      std::make_shared<spdlog::logger>("admin", std::make_shared<spdlog::sinks::null_sink_mt>());
  std::unique_ptr<AdminServer> server_;
  std::thread thread_;
  CtlOptions options_;
};

TEST_F(KeepaliveCtlTest, ListPrintsATableAndHonoursTheLimit) {
  populate();
  start(true);
  auto r = run([&](auto& out, auto& err) { return ctl_keepalive_list(options_, 10, out, err); });
  ASSERT_EQ(r.code, kCtlOk) << r.err;
  std::istringstream lines(r.out);
  std::string header, first, second, third, footer;
  std::getline(lines, header);
  std::getline(lines, first);
  std::getline(lines, second);
  std::getline(lines, third);
  std::getline(lines, footer);
  EXPECT_TRUE(header.starts_with("REMOTE")) << r.out;
  EXPECT_NE(header.find("NEXT PING"), std::string::npos);
  EXPECT_TRUE(first.starts_with("203.0.113.5:4000")) << r.out;
  EXPECT_NE(first.find("udp"), std::string::npos);
  EXPECT_NE(first.find("registration,dialog"), std::string::npos) << first;
  EXPECT_NE(first.find("20s"), std::string::npos) << first;
  EXPECT_NE(second.find("tcp"), std::string::npos);
  EXPECT_NE(second.find("subscription"), std::string::npos);
  EXPECT_TRUE(third.starts_with("[::ffff:198.51.100.7]:5060")) << r.out;
  EXPECT_EQ(footer, "3 endpoints");

  // The daemon's default limit (2 here) without --limit.
  r = run([&](auto& out, auto& err) { return ctl_keepalive_list(options_, 0, out, err); });
  ASSERT_EQ(r.code, kCtlOk) << r.err;
  EXPECT_NE(r.out.find("2 endpoints of 3 (more not shown: raise --limit)"), std::string::npos) << r.out;

  // --json passes the API's answer through.
  CtlOptions json_options = options_;
  json_options.json = true;
  r = run([&](auto& out, auto& err) { return ctl_keepalive_list(json_options, 10, out, err); });
  ASSERT_EQ(r.code, kCtlOk) << r.err;
  json answer = json::parse(r.out);
  EXPECT_EQ(answer["total"], 3);
  EXPECT_EQ(answer["endpoints"][0]["reasons"].size(), 2U);
}

TEST_F(KeepaliveCtlTest, ShowPrintsTheEndpointsOfARemote) {
  populate();
  start(true);
  auto r = run([&](auto& out, auto& err) { return ctl_keepalive_show(options_, "203.0.113.5:4000", out, err); });
  ASSERT_EQ(r.code, kCtlOk) << r.err;
  EXPECT_TRUE(r.out.starts_with("203.0.113.5:4000: 2 keepalive endpoints\n")) << r.out;
  EXPECT_NE(r.out.find("over udp (local socket 1, connection 0)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("over tcp (local socket 2, connection 7)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("reason      registration " + hex(nat::KeepaliveEngine::key_hash("alice-binding")) +
                       ", expires in 4m50s"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("reason      dialog " + hex(nat::KeepaliveEngine::key_hash("call-1")) + ", expires in 59m50s"),
            std::string::npos)
      << r.out;

  // IPv6 text in brackets is URL-encoded on the way and decoded by the server.
  r = run([&](auto& out, auto& err) { return ctl_keepalive_show(options_, "[::ffff:198.51.100.7]:5060", out, err); });
  ASSERT_EQ(r.code, kCtlOk) << r.err;
  EXPECT_NE(r.out.find("1 keepalive endpoint\n"), std::string::npos) << r.out;

  r = run([&](auto& out, auto& err) { return ctl_keepalive_show(options_, "192.0.2.1:5060", out, err); });
  EXPECT_EQ(r.code, kCtlDaemonError);
  EXPECT_NE(r.err.find("no keepalive endpoint towards 192.0.2.1:5060 (HTTP 404)"), std::string::npos) << r.err;
  r = run([&](auto& out, auto& err) { return ctl_keepalive_show(options_, "not-an-address", out, err); });
  EXPECT_EQ(r.code, kCtlDaemonError);
  EXPECT_NE(r.err.find("(HTTP 400)"), std::string::npos) << r.err;
}

TEST_F(KeepaliveCtlTest, ADaemonWithoutKeepalivesSaysSo) {
  populate();
  start(false);
  for (int i = 0; i < 2; ++i) {
    auto r = run([&](auto& out, auto& err) {
      return i == 0 ? ctl_keepalive_list(options_, 0, out, err)
                    : ctl_keepalive_show(options_, "203.0.113.5:4000", out, err);
    });
    EXPECT_EQ(r.code, kCtlDaemonError);
    EXPECT_NE(r.err.find("keepalives are off"), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "");
  }
}

TEST_F(KeepaliveCtlTest, TheCommandLineReachesTheCommands) {
  start(true);
  CLI::App cli;
  std::string config_path;
  cli.add_option("-c,--config", config_path);
  CtlCommand ctl(cli);
  // No endpoints: `show` answers 404 (exit 1); `list` succeeds.
  std::vector<std::string> args = {"ctl", "--admin", options_.admin.to_string(), "keepalive", "show", "192.0.2.1:5"};
  std::reverse(args.begin(), args.end());  // CLI11 takes them last first
  cli.parse(args);
  ASSERT_TRUE(ctl.selected());
  EXPECT_EQ(ctl.run(config_path), kCtlDaemonError);

  CLI::App cli2;
  cli2.add_option("-c,--config", config_path);
  CtlCommand ctl2(cli2);
  args = {"ctl", "keepalive", "list", "--limit", "5", "--admin", options_.admin.to_string()};
  std::reverse(args.begin(), args.end());
  cli2.parse(args);
  ASSERT_TRUE(ctl2.selected());
  EXPECT_EQ(ctl2.run(config_path), kCtlOk);
}

}  // namespace
}  // namespace pinhole::app
