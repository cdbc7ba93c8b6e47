// The Redis store beyond the shared contract, against redis-server children this test starts:
// the key layout and TTLs other nodes rely on, lost and late connections (writes queued during an
// outage arrive after the reconnection, and are counted), reads that fail with 503 while Redis is
// down, database selection, IPv6 literals, and values that cannot be read back.
#include "store/redis_store.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "store/record_codec.h"
#include "store/store.h"
#include "store_test_support.h"

namespace pinhole::store {
namespace {

using test::eventually;
using test::sample_binding;

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PINHOLE_REQUIRE_REDIS_SERVER();
    std::string error;
    redis_ = test::RedisServer::start(error);
    ASSERT_NE(redis_, nullptr) << error;
  }

  std::unique_ptr<Store> open(const std::string& url, StoreOptions options = {}) {
    auto s = open_store(url, options);
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().what);
    return s.ok() ? std::move(s).value() : nullptr;
  }

  static StoreOptions fast_reconnect() {
    StoreOptions o;
    o.reconnect_min = std::chrono::milliseconds(10);
    o.reconnect_max = std::chrono::milliseconds(50);
    return o;
  }

  int64_t integer(std::initializer_list<std::string_view> args, uint32_t db = 0) {
    test::RedisReply r = redis_->command(args, db);
    EXPECT_TRUE(r && r->type == REDIS_REPLY_INTEGER);
    return r && r->type == REDIS_REPLY_INTEGER ? r->integer : -999;
  }

  std::vector<std::string> members(std::string_view key) {
    test::RedisReply r = redis_->command({"SMEMBERS", key});
    std::vector<std::string> out;
    if (r && r->type == REDIS_REPLY_ARRAY)
      for (size_t i = 0; i < r->elements; ++i) out.emplace_back(r->element[i]->str, r->element[i]->len);
    std::sort(out.begin(), out.end());
    return out;
  }

  std::unique_ptr<test::RedisServer> redis_;
};

TEST_F(RedisStoreTest, KeyLayoutOtherNodesRelyOn) {
  auto store = open(redis_->url());
  ASSERT_NE(store, nullptr);
  BindingRecord a = sample_binding("sip:alice@example.com", 1);
  store->save_binding(a);
  ASSERT_TRUE(store->put_user(UserRecord{"alice", "example.com", std::string(32, 'a'), ""}).ok());
  store->flush();

  EXPECT_EQ(members(kRedisAorsKey), std::vector<std::string>{a.aor});
  test::RedisReply value = redis_->command({"HGET", "pinhole:aor:sip:alice@example.com", a.binding_id});
  ASSERT_TRUE(value && value->type == REDIS_REPLY_STRING);
  auto decoded = decode_binding_value(a.aor, a.binding_id, std::string_view(value->str, value->len));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(*decoded, a);
  test::RedisReply user = redis_->command({"HGET", "pinhole:user:example.com:alice", "ha1_md5"});
  ASSERT_TRUE(user && user->type == REDIS_REPLY_STRING);
  EXPECT_EQ(std::string_view(user->str, user->len), std::string(32, 'a'));
  EXPECT_EQ(redis_user_key("a:b%c", "d:e"), "pinhole:user:a%3Ab%25c:d:e");
}

TEST_F(RedisStoreTest, TheAorTtlFollowsItsLatestBinding) {
  auto store = open(redis_->url());
  ASSERT_NE(store, nullptr);
  const std::string key = redis_aor_key("sip:alice@example.com");
  const int64_t grace = kRedisTtlGrace.count();
  BindingRecord early = sample_binding("sip:alice@example.com", 1);
  BindingRecord late = sample_binding("sip:alice@example.com", 2);
  early.expires_at = test::unix_now() + 600;
  late.expires_at = test::unix_now() + 7200;

  store->save_binding(early);
  store->flush();
  EXPECT_EQ(integer({"EXPIRETIME", key}), early.expires_at + grace);
  store->save_binding(late);
  store->flush();
  EXPECT_EQ(integer({"EXPIRETIME", key}), late.expires_at + grace);
  // Refreshing the earlier one does not shorten the AOR's life.
  early.expires_at += 60;
  store->save_binding(early);
  store->flush();
  EXPECT_EQ(integer({"EXPIRETIME", key}), late.expires_at + grace);
  // Removing the latest one does.
  store->remove_binding(late.aor, late.binding_id);
  store->flush();
  EXPECT_EQ(integer({"EXPIRETIME", key}), early.expires_at + grace);
  // The last removal takes the hash and the set entry.
  store->remove_binding(early.aor, early.binding_id);
  store->flush();
  EXPECT_EQ(integer({"EXISTS", key}), 0);
  EXPECT_TRUE(members(kRedisAorsKey).empty());
}

TEST_F(RedisStoreTest, AnAorLapsedBeyondTheGraceDisappears) {
  auto store = open(redis_->url());
  ASSERT_NE(store, nullptr);
  BindingRecord old = sample_binding("sip:alice@example.com", 1);
  old.expires_at = test::unix_now() - kRedisTtlGrace.count() - 60;
  BindingRecord live = sample_binding("sip:bob@example.com", 2);
  store->save_binding(old);
  store->save_binding(live);
  store->flush();
  EXPECT_EQ(integer({"EXISTS", redis_aor_key(old.aor)}), 0);
  EXPECT_EQ(members(kRedisAorsKey), std::vector<std::string>{live.aor});
  auto loaded = store->load_bindings();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(*loaded, std::vector<BindingRecord>{live});
}

TEST_F(RedisStoreTest, LoadBindingsPrunesAorsWhoseHashExpired) {
  auto store = open(redis_->url());
  ASSERT_NE(store, nullptr);
  BindingRecord live = sample_binding("sip:bob@example.com", 2);
  store->save_binding(live);
  store->flush();
  // As if the hash had expired by its TTL: the set still names the AOR.
  ASSERT_EQ(integer({"SADD", kRedisAorsKey, "sip:ghost@example.com"}), 1);
  auto loaded = store->load_bindings();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(*loaded, std::vector<BindingRecord>{live});
  EXPECT_EQ(members(kRedisAorsKey), std::vector<std::string>{live.aor});
}

TEST_F(RedisStoreTest, ValuesThatCannotBeReadAreSkippedAndCounted) {
  auto store = open(redis_->url());
  ASSERT_NE(store, nullptr);
  BindingRecord good = sample_binding("sip:alice@example.com", 1);
  store->save_binding(good);
  store->flush();
  const std::string key = redis_aor_key(good.aor);
  ASSERT_EQ(integer({"HSET", key, "garbage", "{\"json\":true}"}), 1);
  ASSERT_EQ(integer({"HSET", key, "future", "7;1:0"}), 1);
  ASSERT_EQ(integer({"HSET", "pinhole:user:example.com:broken", "ha1_md5", std::string(32, 'a')}), 1);
  auto loaded = store->load_aor(good.aor);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(*loaded, std::vector<BindingRecord>{good});
  EXPECT_EQ(store->stats().decode_errors, 2U);
  auto users = store->list_users();
  ASSERT_TRUE(users.ok());
  EXPECT_TRUE(users->empty());
  EXPECT_EQ(store->stats().decode_errors, 3U);
}

TEST_F(RedisStoreTest, ADatabaseNumberKeepsTheDataApart) {
  auto store = open(redis_->url(3));
  ASSERT_NE(store, nullptr);
  BindingRecord a = sample_binding("sip:alice@example.com", 1);
  store->save_binding(a);
  ASSERT_TRUE(store->put_user(UserRecord{"alice", "example.com", std::string(32, 'a'), ""}).ok());
  store->flush();
  EXPECT_EQ(integer({"EXISTS", redis_aor_key(a.aor)}, 3), 1);
  EXPECT_EQ(integer({"DBSIZE"}, 0), 0);
  auto zero = open(redis_->url(0));
  ASSERT_NE(zero, nullptr);
  auto loaded = zero->load_bindings();
  ASSERT_TRUE(loaded.ok());
  EXPECT_TRUE(loaded->empty());
}

TEST_F(RedisStoreTest, DataOutlivesTheStoreThatWroteIt) {
  BindingRecord a = sample_binding("sip:alice@example.com", 1);
  {
    StoreOptions options;
    options.batch_window = std::chrono::hours(1);  // only the destructor sends it
    auto store = open(redis_->url(), options);
    ASSERT_NE(store, nullptr);
    store->save_binding(a);
  }
  auto other = open(redis_->url());
  ASSERT_NE(other, nullptr);
  auto loaded = other->load_bindings();
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(*loaded, std::vector<BindingRecord>{a});
}

TEST_F(RedisStoreTest, WritesQueuedDuringAnOutageArriveAfterTheReconnection) {
  auto store = open(redis_->url(), fast_reconnect());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(eventually([&] { return store->stats().connected; }));
  BindingRecord before = sample_binding("sip:alice@example.com", 1);
  store->save_binding(before);
  store->flush();
  ASSERT_EQ(store->stats().reconnects, 0U);

  redis_->kill();
  std::vector<BindingRecord> during;
  for (int i = 2; i < 40; ++i) {
    during.push_back(sample_binding("sip:alice@example.com", i));
    store->save_binding(during.back());
  }
  store->remove_binding("sip:alice@example.com", during.front().binding_id);
  during.erase(during.begin());
  ASSERT_TRUE(eventually([&] {
    StoreStats s = store->stats();
    return !s.connected && s.connection_failures >= 2;
  }));
  StoreStats down = store->stats();
  EXPECT_GT(down.queued, 0U);
  EXPECT_EQ(down.write_errors, 0U);

  // The new server starts empty (no persistence): what it ends up with came from the queue.
  ASSERT_TRUE(redis_->restart()) << redis_->log();
  ASSERT_TRUE(eventually([&] { return store->stats().queued == 0; }));
  store->flush();
  StoreStats up = store->stats();
  EXPECT_TRUE(up.connected);
  EXPECT_GE(up.reconnects, 1U);
  EXPECT_EQ(up.write_errors, 0U);
  auto loaded = store->load_aor("sip:alice@example.com");
  ASSERT_TRUE(loaded.ok()) << loaded.error().what;
  sort_bindings(during);
  EXPECT_EQ(*loaded, during);
}

TEST_F(RedisStoreTest, UnreachableAtStartIsNotAnErrorAndIsRetried) {
  uint16_t port = redis_->port();
  std::string url = redis_->url();
  redis_->kill();
  auto store = open(url, fast_reconnect());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(eventually([&] { return store->stats().connection_failures >= 2; }));
  EXPECT_FALSE(store->stats().connected);
  BindingRecord a = sample_binding("sip:alice@example.com", 1);
  store->save_binding(a);

  std::string error;
  redis_ = test::RedisServer::start(error, port);
  ASSERT_NE(redis_, nullptr) << error;
  ASSERT_TRUE(eventually([&] { return store->stats().queued == 0; }));
  StoreStats s = store->stats();
  EXPECT_TRUE(s.connected);
  EXPECT_GE(s.reconnects, 1U);
  auto loaded = store->load_aor(a.aor);
  ASSERT_TRUE(loaded.ok()) << loaded.error().what;
  EXPECT_EQ(*loaded, std::vector<BindingRecord>{a});
}

TEST_F(RedisStoreTest, ReadsAnswer503WhileRedisIsDown) {
  auto store = open(redis_->url(), fast_reconnect());
  ASSERT_NE(store, nullptr);
  ASSERT_TRUE(store->load_bindings().ok());  // the read connection is up
  redis_->kill();

  auto all = store->load_bindings();
  ASSERT_FALSE(all.ok());
  EXPECT_EQ(all.error().status, 503);
  auto one = store->load_aor("sip:alice@example.com");
  ASSERT_FALSE(one.ok());
  EXPECT_EQ(one.error().status, 503);
  Status put = store->put_user(UserRecord{"alice", "example.com", std::string(32, 'a'), ""});
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.error().status, 503);
  auto del = store->delete_user("alice", "example.com");
  ASSERT_FALSE(del.ok());
  EXPECT_EQ(del.error().status, 503);
  auto list = store->list_users();
  ASSERT_FALSE(list.ok());
  EXPECT_EQ(list.error().status, 503);

  std::mutex mu;
  std::condition_variable cv;
  std::optional<uint16_t> async_status;
  store->load_aor_async("sip:alice@example.com", [&](const Result<std::vector<BindingRecord>>& r) {
    std::lock_guard lock(mu);
    async_status = r.ok() ? 200 : r.error().status;
    cv.notify_all();
  });
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, test::kDeadline, [&] { return async_status.has_value(); }));
    EXPECT_EQ(*async_status, 503);
  }

  // Back again: the reads recover without a new store.
  ASSERT_TRUE(redis_->restart()) << redis_->log();
  auto recovered = store->load_bindings();
  ASSERT_TRUE(recovered.ok()) << recovered.error().what;
  EXPECT_TRUE(recovered->empty());
}

TEST_F(RedisStoreTest, DestroyingAStoreWhileRedisIsDownGivesUpAndCounts) {
  auto store = open(redis_->url(), fast_reconnect());
  ASSERT_NE(store, nullptr);
  redis_->kill();
  for (int i = 0; i < 5; ++i) store->save_binding(sample_binding("sip:alice@example.com", i));
  auto started = std::chrono::steady_clock::now();
  store.reset();  // must return: the grace is bounded
  EXPECT_LT(std::chrono::steady_clock::now() - started, test::kDeadline);
}

TEST_F(RedisStoreTest, IPv6LiteralUrls) {
  // A server of its own that also listens on ::1.
  std::string error;
  auto v6 = test::RedisServer::start(error, 0, /*with_ipv6=*/true);
  if (!v6) {
    GTEST_SKIP() << "redis-server could not listen on ::1 (no IPv6 loopback on this host?): " << error;
  }
  auto store = open("redis://[::1]:" + std::to_string(v6->port()) + "/0");
  ASSERT_NE(store, nullptr);
  BindingRecord a = sample_binding("sip:alice@example.com", 1);
  store->save_binding(a);
  store->flush();
  EXPECT_TRUE(store->stats().connected);
  auto loaded = store->load_aor(a.aor);
  ASSERT_TRUE(loaded.ok()) << loaded.error().what;
  EXPECT_EQ(*loaded, std::vector<BindingRecord>{a});
}

}  // namespace
}  // namespace pinhole::store
