// The SQLite store beyond the shared contract: data survives a restart and a crash (a child
// process that writes, flushes and dies by _exit or SIGKILL), the file is set up as promised
// (WAL, schema version), bad files are refused with a clear error, two stores can share a file,
// and rows that cannot be read back are skipped and counted.
#include "store/sqlite_store.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "sqlite_test_support.h"
#include "store/store.h"
#include "store_test_support.h"

namespace pinhole::store {
namespace {

using test::sample_binding;

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_FALSE(dir_.path().empty()); }

  std::string file() const { return dir_.path() + "/state/pinhole.db"; }
  std::string url() const { return "sqlite://" + file(); }

  std::unique_ptr<Store> open() {
    auto s = open_store(url());
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().what);
    return s.ok() ? std::move(s).value() : nullptr;
  }

  std::string query(const std::string& sql) { return test::sqlite_query(file(), sql); }

  bool exec(const std::string& sql) { return test::sqlite_exec(file(), sql); }

  test::TempDir dir_;
};

TEST_F(SqliteStoreTest, CreatesTheDirectoryAndAWalFileWithTheSchemaVersion) {
  ASSERT_FALSE(std::filesystem::exists(dir_.path() + "/state"));
  auto store = open();
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(std::filesystem::exists(file()));
  EXPECT_EQ(query("PRAGMA journal_mode"), "wal");
  EXPECT_EQ(query("PRAGMA user_version"), std::to_string(kSqliteSchemaVersion));
}

TEST_F(SqliteStoreTest, DataSurvivesARestart) {
  BindingRecord a = sample_binding("sip:alice@example.com", 1);
  BindingRecord b = sample_binding("sip:bob@example.com", 2);
  UserRecord u{"alice", "example.com", std::string(32, 'e'), std::string(64, 'f')};
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    store->save_binding(a);
    store->save_binding(b);
    ASSERT_TRUE(store->put_user(u).ok());
    store->flush();
  }
  auto store = open();
  ASSERT_NE(store, nullptr);
  auto loaded = store->load_bindings();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(*loaded, (std::vector<BindingRecord>{a, b}));
  auto users = store->list_users();
  ASSERT_TRUE(users.ok());
  EXPECT_EQ(*users, std::vector<UserRecord>{u});
}

TEST_F(SqliteStoreTest, DestroyingTheStoreWritesWhatWasQueued) {
  std::vector<BindingRecord> expected;
  {
    StoreOptions options;
    options.batch_window = std::chrono::hours(1);  // nothing goes out before the destructor
    auto opened = open_store(url(), options);
    ASSERT_TRUE(opened.ok());
    for (int i = 0; i < 300; ++i) {
      expected.push_back(sample_binding("sip:alice@example.com", i));
      (*opened)->save_binding(expected.back());
    }
  }
  auto store = open();
  ASSERT_NE(store, nullptr);
  auto loaded = store->load_aor("sip:alice@example.com");
  ASSERT_TRUE(loaded.ok());
  sort_bindings(expected);
  EXPECT_EQ(*loaded, expected);
}

// The child writes, flushes, and dies without any destructor: by _exit, or by SIGKILL.
void crash_after_flush(const std::string& url, bool sigkill, int count) {
  auto opened = open_store(url);
  if (!opened.ok()) ::_exit(3);
  std::unique_ptr<Store> store = std::move(opened).value();
  for (int i = 0; i < count; ++i) store->save_binding(sample_binding("sip:alice@example.com", i));
  if (!store->put_user(UserRecord{"alice", "example.com", std::string(32, '1'), ""}).ok()) ::_exit(4);
  store->flush();
  // Queued after the flush: may or may not make it, the parent does not care.
  store->save_binding(sample_binding("sip:late@example.com", 0));
  if (sigkill) ::kill(::getpid(), SIGKILL);
  ::_exit(0);
}

void check_crash_survivor(const std::string& url, int count) {
  auto opened = open_store(url);
  ASSERT_TRUE(opened.ok()) << opened.error().what;
  auto loaded = (*opened)->load_aor("sip:alice@example.com");
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->size(), static_cast<size_t>(count));
  std::vector<BindingRecord> expected;
  expected.reserve(static_cast<size_t>(count));
  for (int i = 0; i < count; ++i) expected.push_back(sample_binding("sip:alice@example.com", i));
  sort_bindings(expected);
  for (size_t i = 0; i < expected.size(); ++i) {
    // expires_at/registered_at came from the child's clock.
    expected[i].expires_at = (*loaded)[i].expires_at;
    expected[i].registered_at = (*loaded)[i].registered_at;
    EXPECT_EQ((*loaded)[i], expected[i]);
  }
  auto users = (*opened)->list_users();
  ASSERT_TRUE(users.ok());
  EXPECT_EQ(users->size(), 1U);
}

TEST_F(SqliteStoreTest, FlushedDataSurvivesSigkill) {
  std::filesystem::create_directories(dir_.path() + "/state");
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) crash_after_flush(url(), true, 500);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited with " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
  check_crash_survivor(url(), 500);
}

TEST_F(SqliteStoreTest, FlushedDataSurvivesExitWithoutDestructors) {
  pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) crash_after_flush(url(), false, 50);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  ASSERT_EQ(WEXITSTATUS(status), 0);
  check_crash_survivor(url(), 50);
}

TEST_F(SqliteStoreTest, TwoStoresShareAFile) {
  auto one = open();
  auto two = open();
  ASSERT_NE(one, nullptr);
  ASSERT_NE(two, nullptr);
  std::thread a([&] {
    for (int i = 0; i < 300; ++i) one->save_binding(sample_binding("sip:one@example.com", i));
    one->flush();
  });
  std::thread b([&] {
    for (int i = 0; i < 300; ++i) two->save_binding(sample_binding("sip:two@example.com", i));
    two->flush();
  });
  a.join();
  b.join();
  EXPECT_EQ(one->stats().write_errors, 0U);
  EXPECT_EQ(two->stats().write_errors, 0U);
  auto loaded = one->load_bindings();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(loaded->size(), 600U);
}

TEST_F(SqliteStoreTest, ANewerSchemaIsRefused) {
  { ASSERT_NE(open(), nullptr); }
  ASSERT_TRUE(exec("PRAGMA user_version = " + std::to_string(kSqliteSchemaVersion + 1)));
  auto again = open_store(url());
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().status, 500);
  EXPECT_NE(again.error().what.find("newer pinhole"), std::string::npos) << again.error().what;
  EXPECT_NE(again.error().what.find(file()), std::string::npos) << again.error().what;
}

TEST_F(SqliteStoreTest, AFileThatIsNotADatabaseIsRefused) {
  std::filesystem::create_directories(dir_.path() + "/state");
  std::ofstream(file()) << "this is not an SQLite database, it is long enough to have a header........\n";
  auto store = open_store(url());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().status, 500);
  EXPECT_NE(store.error().what.find(file()), std::string::npos) << store.error().what;
  EXPECT_NE(store.error().what.find("not a database"), std::string::npos) << store.error().what;
}

TEST_F(SqliteStoreTest, ADirectoryInThePlaceOfTheFileIsRefused) {
  std::filesystem::create_directories(file());
  auto store = open_store(url());
  ASSERT_FALSE(store.ok());
  EXPECT_EQ(store.error().status, 500);
  EXPECT_NE(store.error().what.find(file()), std::string::npos) << store.error().what;
}

TEST_F(SqliteStoreTest, UnreadableRowsAreSkippedAndCounted) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  BindingRecord good = sample_binding("sip:alice@example.com", 1);
  store->save_binding(good);
  store->flush();
  // Rows another program broke: an unknown transport, an address that is not one, a bad Path blob,
  // a reg_id out of range.
  constexpr const char* kInsert =
      "INSERT INTO bindings (aor, binding_id, contact, instance, reg_id, call_id, cseq, q_milli, expires_at, "
      "registered_at, transport, local_socket_id, remote_address, remote_port, connection_id, path, user_agent, nat, "
      "node) VALUES ('sip:alice@example.com', '%s', '', '', %s, '', 0, -1, 0, 0, '%s', 0, '%s', 0, 0, %s, '', '', '')";
  auto row = [&](const char* id, const char* reg_id, const char* transport, const char* address, const char* path) {
    char sql[1024];
    std::snprintf(sql, sizeof sql, kInsert, id, reg_id, transport, address, path);
    return exec(sql);
  };
  ASSERT_TRUE(row("bad-transport", "0", "sctp", "192.0.2.1", "x''"));
  ASSERT_TRUE(row("bad-address", "0", "udp", "192.0.2.300", "x''"));
  ASSERT_TRUE(row("bad-path", "0", "udp", "192.0.2.1", "x'393a61'"));  // "9:a"
  ASSERT_TRUE(row("bad-reg-id", "4294967296", "udp", "192.0.2.1", "x''"));
  ASSERT_TRUE(row("fine", "4294967295", "UDP", "192.0.2.1", "x'313a61'"));  // "1:a"

  auto loaded = store->load_aor("sip:alice@example.com");
  ASSERT_TRUE(loaded.ok());
  ASSERT_EQ(loaded->size(), 2U);
  EXPECT_EQ((*loaded)[0], good);
  EXPECT_EQ((*loaded)[1].binding_id, "fine");
  EXPECT_EQ((*loaded)[1].reg_id, 4294967295U);
  EXPECT_EQ((*loaded)[1].path, std::vector<std::string>{"a"});
  EXPECT_EQ(store->stats().decode_errors, 4U);
}

}  // namespace
}  // namespace pinhole::store
