// `pinhole ctl` end to end on loopback: an AdminServer with RegistrarAdmin's routes runs on
// 127.0.0.1 port 0 in a thread of its own, and the ctl command functions (and the CLI wiring) run
// against it from the test thread, checking their output, their exit codes and what they changed.
#include "app/ctl.h"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "app/admin_server.h"
#include "app/registrar_admin.h"
#include "ctl_test_support.h"
#include "registrar/location.h"
#include "registrar/user_directory.h"
#include "store/store.h"

namespace pinhole::app {
namespace {

namespace asio = boost::asio;
using nlohmann::json;

constexpr int64_t kNow = 1'700'000'000;

class CtlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RegistrarAdminOptions admin_options;
    admin_options.wall_seconds = [] { return kNow; };
    admin_ = std::make_unique<RegistrarAdmin>(location_, users_, *store_, admin_options);
    server_ = std::make_unique<AdminServer>(io_, net::Endpoint::parse("127.0.0.1:0").value(), metrics_, log_);
    admin_->add_routes(*server_);
    server_->start();
    options_.admin = net::Endpoint::parse("127.0.0.1:" + std::to_string(server_->bound_port())).value();
    thread_ = std::thread([this] { io_.run(); });
  }
  void TearDown() override {
    asio::post(io_, [this] { server_->stop(); });
    work_.reset();
    thread_.join();
    server_.reset();
  }

  void add_binding(const std::string& aor, const std::string& id, const std::string& received, const std::string& nat) {
    store::BindingRecord b;
    b.aor = aor;
    b.binding_id = id;
    b.contact = id;
    b.call_id = "c-" + id;
    b.cseq = 1;
    b.expires_at = kNow + 3725;  // 1h02m05s
    b.registered_at = kNow;
    b.flow.remote = net::Endpoint::parse(received).value();
    b.flow.local_socket_id = 1;
    b.nat = nat;
    b.node = "edge-1";
    location_.upsert(b);
    store_->save_binding(b);
  }

  template <typename F>
  static test::CtlRun run(F command) {
    return test::run_ctl(command);
  }

  registrar::Location location_;
  registrar::UserDirectory users_;
  std::unique_ptr<store::Store> store_ = store::open_store("memory:").value();
  std::unique_ptr<RegistrarAdmin> admin_;
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_ = asio::make_work_guard(io_);
  MetricsRegistry metrics_;
  std::shared_ptr<spdlog::logger> log_ =
      std::make_shared<spdlog::logger>("admin", std::make_shared<spdlog::sinks::null_sink_mt>());
  std::unique_ptr<AdminServer> server_;
  std::thread thread_;
  CtlOptions options_;
};

TEST_F(CtlTest, UsersAddListDel) {
  auto r = run([&](auto& out, auto& err) { return ctl_users_add(options_, "alice@example.com", "s3cret", out, err); });
  EXPECT_EQ(r.code, kCtlOk) << r.err;
  EXPECT_EQ(r.out, "added user alice@example.com\n");
  ASSERT_TRUE(users_.find("alice", "example.com"));
  // H("alice:example.com:s3cret"), computed independently (Python hashlib).
  EXPECT_EQ(users_.find("alice", "example.com")->ha1_md5, "d2d0c8958e1b1c2b989afda0efb9663e");
  EXPECT_EQ(store_->list_users().value().size(), 1u);

  r = run([&](auto& out, auto& err) { return ctl_users_add(options_, "alice@example.com", "other", out, err); });
  EXPECT_EQ(r.code, kCtlOk) << r.err;
  EXPECT_EQ(r.out, "changed the password of alice@example.com\n");
  EXPECT_NE(users_.find("alice", "example.com")->ha1_md5, "d2d0c8958e1b1c2b989afda0efb9663e");

  ASSERT_EQ(run([&](auto& out, auto& err) { return ctl_users_add(options_, "bob@example.org", "pw", out, err); }).code,
            kCtlOk);
  r = run([&](auto& out, auto& err) { return ctl_users_list(options_, out, err); });
  EXPECT_EQ(r.code, kCtlOk) << r.err;
  EXPECT_EQ(r.out,
            "USER   REALM\n"
            "alice  example.com\n"
            "bob    example.org\n"
            "2 users\n");

  r = run([&](auto& out, auto& err) { return ctl_users_del(options_, "alice@example.com", out, err); });
  EXPECT_EQ(r.code, kCtlOk) << r.err;
  EXPECT_EQ(r.out, "deleted user alice@example.com\n");
  EXPECT_FALSE(users_.find("alice", "example.com"));
  EXPECT_EQ(store_->list_users().value().size(), 1u);

  // Deleting again: the daemon's 404, exit 1, its message on stderr.
  r = run([&](auto& out, auto& err) { return ctl_users_del(options_, "alice@example.com", out, err); });
  EXPECT_EQ(r.code, kCtlDaemonError);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("no user alice@example.com"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("HTTP 404"), std::string::npos) << r.err;
}

TEST_F(CtlTest, UsersErrors) {
  // Usage errors never reach the daemon.
  for (const char* bad : {"alice", "@example.com", "alice@", ""}) {
    auto r = run([&](auto& out, auto& err) { return ctl_users_add(options_, bad, "pw", out, err); });
    EXPECT_EQ(r.code, kCtlUsage) << bad;
    r = run([&](auto& out, auto& err) { return ctl_users_del(options_, bad, out, err); });
    EXPECT_EQ(r.code, kCtlUsage) << bad;
  }
  auto r = run([&](auto& out, auto& err) { return ctl_users_add(options_, "alice@example.com", "", out, err); });
  EXPECT_EQ(r.code, kCtlUsage);
  // The daemon refuses a user name with a ':' (400): exit 1 with its reason.
  r = run([&](auto& out, auto& err) { return ctl_users_add(options_, "al:ice@example.com", "pw", out, err); });
  EXPECT_EQ(r.code, kCtlDaemonError);
  EXPECT_NE(r.err.find("username"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("HTTP 400"), std::string::npos) << r.err;
  EXPECT_EQ(users_.size(), 0u);

  // A username with characters that need escaping in the URL path goes through intact.
  r = run([&](auto& out, auto& err) { return ctl_users_add(options_, "a/b?c;d@example.com", "pw", out, err); });
  EXPECT_EQ(r.code, kCtlOk) << r.err;
  EXPECT_TRUE(users_.find("a/b?c;d", "example.com"));
  r = run([&](auto& out, auto& err) { return ctl_users_del(options_, "a/b?c;d@example.com", out, err); });
  EXPECT_EQ(r.code, kCtlOk) << r.err;
  EXPECT_EQ(users_.size(), 0u);
}

TEST_F(CtlTest, RegistrationsShowRemove) {
  add_binding("sip:alice@example.com", "sip:alice@192.168.1.10:5060", "203.0.113.101:40000", "private_contact");
  add_binding("sip:alice@example.com", "sip:alice@198.51.100.20", "198.51.100.20:5060", "");
  add_binding("sip:bob@example.com", "sip:bob@192.168.2.10", "203.0.113.102:1024", "private_contact,port_differs");

  auto r = run([&](auto& out, auto& err) { return ctl_registrations(options_, "", 0, out, err); });
  ASSERT_EQ(r.code, kCtlOk) << r.err;
  std::istringstream lines(r.out);
  std::string header;
  std::getline(lines, header);
  EXPECT_EQ(header.find("AOR"), 0u);
  for (const char* column : {"CONTACT", "RECEIVED", "TRANSPORT", "NAT", "EXPIRES IN", "NODE"}) {
    EXPECT_NE(header.find(column), std::string::npos) << column;
  }
  EXPECT_NE(r.out.find("sip:alice@192.168.1.10:5060"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("203.0.113.101:40000"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("private_contact,port_differs"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1h02m05s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("edge-1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("3 bindings of 2 AORs\n"), std::string::npos) << r.out;

  r = run([&](auto& out, auto& err) { return ctl_registrations(options_, "bob", 0, out, err); });
  ASSERT_EQ(r.code, kCtlOk) << r.err;
  EXPECT_EQ(r.out.find("sip:alice"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 binding of 1 AOR\n"), std::string::npos) << r.out;

  r = run([&](auto& out, auto& err) { return ctl_registrations(options_, "", 1, out, err); });
  ASSERT_EQ(r.code, kCtlOk) << r.err;
  EXPECT_NE(r.out.find("1 binding of 1 AOR (more not shown"), std::string::npos) << r.out;

  // --json: the API's JSON as is.
  CtlOptions json_options = options_;
  json_options.json = true;
  r = run([&](auto& out, auto& err) { return ctl_registrations(json_options, "", 0, out, err); });
  ASSERT_EQ(r.code, kCtlOk) << r.err;
  json j = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["bindings"].size(), 3u);
  EXPECT_EQ(j["aors"], 2);

  r = run([&](auto& out, auto& err) { return ctl_show(options_, "alice@example.com", out, err); });
  ASSERT_EQ(r.code, kCtlOk) << r.err;
  EXPECT_EQ(r.out.find("sip:alice@example.com: 2 bindings\n"), 0u) << r.out;
  EXPECT_NE(r.out.find("203.0.113.101:40000 over udp"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("sip:alice@198.51.100.20"), std::string::npos) << r.out;

  r = run([&](auto& out, auto& err) { return ctl_show(options_, "sip:nobody@example.com", out, err); });
  EXPECT_EQ(r.code, kCtlDaemonError);
  EXPECT_NE(r.err.find("no registrations for sip:nobody@example.com"), std::string::npos) << r.err;

  r = run([&](auto& out, auto& err) {
    return ctl_remove(options_, "sip:alice@example.com", "sip:alice@192.168.1.10:5060", out, err);
  });
  ASSERT_EQ(r.code, kCtlOk) << r.err;
  EXPECT_EQ(r.out, "removed 1 binding of sip:alice@example.com\n");
  auto left = location_.lookup("sip:alice@example.com", kNow);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].binding_id, "sip:alice@198.51.100.20");

  r = run([&](auto& out, auto& err) { return ctl_remove(options_, "sip:alice@example.com", "no-such", out, err); });
  EXPECT_EQ(r.code, kCtlDaemonError);

  r = run([&](auto& out, auto& err) { return ctl_remove(options_, "sip:bob@example.com", "", out, err); });
  ASSERT_EQ(r.code, kCtlOk) << r.err;
  EXPECT_TRUE(location_.lookup("sip:bob@example.com", kNow).empty());
  store_->flush();
  EXPECT_TRUE(store_->load_aor("sip:bob@example.com").value().empty());

  r = run([&](auto& out, auto& err) { return ctl_stats(options_, out, err); });
  ASSERT_EQ(r.code, kCtlOk) << r.err;
  EXPECT_NE(r.out.find("registrations.bindings: 1\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("store.kind: memory\n"), std::string::npos) << r.out;
}

TEST_F(CtlTest, UnreachablePortIsExit3AndSaysWhereAndHow) {
  // A port bound but not listening: connections to it are refused, and no one else can take it.
  asio::io_context io;
  asio::ip::tcp::socket holder(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  CtlOptions options;
  options.admin = net::Endpoint::parse("127.0.0.1:" + std::to_string(holder.local_endpoint().port())).value();
  options.admin_source = "--admin";
  auto r = run([&](auto& out, auto& err) { return ctl_stats(options, out, err); });
  EXPECT_EQ(r.code, kCtlUnreachable);
  EXPECT_NE(r.err.find(options.admin.to_string()), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("refused"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--admin HOST:PORT"), std::string::npos) << r.err;
  EXPECT_EQ(r.out, "");
}

TEST_F(CtlTest, SilentPeerIsExit3) {
  // Listening but never answering (never accepted): the read times out.
  asio::io_context io;
  asio::ip::tcp::acceptor silent(io, asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  CtlOptions options;
  options.admin = net::Endpoint::parse("127.0.0.1:" + std::to_string(silent.local_endpoint().port())).value();
  options.timeout = std::chrono::milliseconds(100);
  auto r = run([&](auto& out, auto& err) { return ctl_users_list(options, out, err); });
  EXPECT_EQ(r.code, kCtlUnreachable);
  EXPECT_NE(r.err.find("timed out"), std::string::npos) << r.err;
}

TEST_F(CtlTest, CommandLineUsesAdminFromConfigAndRunsTheCommand) {
  add_binding("sip:carol@example.com", "sip:carol@10.0.0.5", "203.0.113.77:5060", "private_contact");
  // The shipped example with admin.listen pointed at the test's server.
  std::ifstream example(std::string(PINHOLE_SOURCE_DIR) + "/examples/edge.yaml");
  ASSERT_TRUE(example) << "examples/edge.yaml";
  std::stringstream text;
  text << example.rdbuf();
  std::string yaml = text.str();
  size_t at = yaml.find("listen: 127.0.0.1:9060");
  ASSERT_NE(at, std::string::npos);
  yaml.replace(at, std::string("listen: 127.0.0.1:9060").size(), "listen: " + options_.admin.to_string());
  auto path = std::filesystem::path(::testing::TempDir()) / "ctl_test_edge.yaml";
  std::ofstream(path) << yaml;

  CLI::App cli;
  std::string config_path;
  cli.add_option("-c,--config", config_path);
  CtlCommand ctl(cli);
  std::vector<std::string> args = {"ctl", "--config", path.string(), "registrations", "--search", "carol"};
  std::reverse(args.begin(), args.end());  // CLI11 takes them last first
  cli.parse(args);
  ASSERT_TRUE(ctl.selected());
  EXPECT_EQ(config_path, path.string());
  ::testing::internal::CaptureStdout();
  int code = ctl.run(config_path);
  std::cout << std::flush;
  std::string out = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(code, kCtlOk);
  EXPECT_NE(out.find("203.0.113.77:5060"), std::string::npos) << out;
  std::filesystem::remove(path);
}

TEST(CtlCommandLine, UsageErrorsAreFlagged) {
  for (std::vector<std::string> args : std::vector<std::vector<std::string>>{
           {"ctl"}, {"ctl", "bogus"}, {"ctl", "show"}, {"ctl", "users"}, {"ctl", "registrations", "--limit", "x"}}) {
    CLI::App cli;
    CtlCommand ctl(cli);
    std::reverse(args.begin(), args.end());
    EXPECT_THROW(cli.parse(args), CLI::ParseError);
    EXPECT_TRUE(ctl.selected());  // so main answers 2
  }
  CLI::App cli;
  CtlCommand ctl(cli);
  std::vector<std::string> args = {"ctl", "--admin", "not-an-address", "stats"};
  std::reverse(args.begin(), args.end());
  cli.parse(args);
  ::testing::internal::CaptureStderr();
  EXPECT_EQ(ctl.run(""), kCtlUsage);
  EXPECT_NE(::testing::internal::GetCapturedStderr().find("not-an-address"), std::string::npos);
}

TEST(CtlPassword, ReadsOneLineOrTwoThatMatch) {
  std::ostringstream prompt;
  std::istringstream one("s3cret\r\nignored\n");
  EXPECT_EQ(read_password(one, prompt, false).value_or("?"), "s3cret");
  EXPECT_EQ(prompt.str(), "");  // no prompt when not interactive

  std::istringstream twice("pw\npw\n");
  EXPECT_EQ(read_password(twice, prompt, true).value_or("?"), "pw");
  EXPECT_NE(prompt.str().find("Password: "), std::string::npos);
  EXPECT_NE(prompt.str().find("Password again: "), std::string::npos);

  std::istringstream differ("pw\nwp\n");
  EXPECT_FALSE(read_password(differ, prompt, true));
  std::istringstream empty("\n");
  EXPECT_FALSE(read_password(empty, prompt, false));
  std::istringstream eof("");
  EXPECT_FALSE(read_password(eof, prompt, false));
  std::istringstream half("pw\n");
  EXPECT_FALSE(read_password(half, prompt, true));
}

TEST(CtlUrlEncode, KeepsOnlyUnreserved) {
  EXPECT_EQ(url_encode("sip:alice@example.com"), "sip%3Aalice%40example.com");
  EXPECT_EQ(url_encode("a-b_c.d~e"), "a-b_c.d~e");
  EXPECT_EQ(url_encode("<urn:uuid:1>;reg-id=1"), "%3Curn%3Auuid%3A1%3E%3Breg-id%3D1");
  EXPECT_EQ(url_encode("a/b c+%"), "a%2Fb%20c%2B%25");
  EXPECT_EQ(url_encode("\xe2\x82\xac"), "%E2%82%AC");
  // What the server decodes gives back the original.
  EXPECT_EQ(percent_decode(url_encode("x y/z?&=%+\x7f"), true).value(), "x y/z?&=%+\x7f");
}

}  // namespace
}  // namespace pinhole::app
