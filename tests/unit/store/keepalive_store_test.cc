// Keepalive endpoints in the store (issue 5, persistence), run against every backend: memory (the
// reference), SQLite (a file in a temporary directory) and Redis (a redis-server this binary starts
// on a free loopback port, emptied before each test). Save/load/replace/remove, per-node isolation,
// expired reasons still loaded, and per backend: the record codec, corrupt records skipped and
// counted, the SQLite migration of a version 1 file, the Redis key layout and TTL.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "net/address.h"
#include "net/transport.h"
#include "sqlite_test_support.h"
#include "store/record_codec.h"
#include "store/redis_store.h"
#include "store/sqlite_store.h"
#include "store/store.h"
#include "store_test_support.h"

namespace pinhole::store {

// gtest's printer (ADL), so that a failed comparison shows the records. Only this file compares
// KeepaliveRecords.
inline void PrintTo(const KeepaliveRecord& k, std::ostream* os) {  // NOLINT(readability-identifier-naming)
  *os << "{node=\"" << k.node << "\" flow=" << net::transport_name(k.flow.transport) << "/" << k.flow.local_socket_id
      << "/" << k.flow.remote.to_string() << "/" << k.flow.connection_id << " interval=" << k.interval_s
      << " reasons=[";
  for (const KeepaliveReasonRecord& r : k.reasons)
    *os << "(" << static_cast<int>(r.kind) << "," << r.key_hash << "," << r.expires_at << ")";
  *os << "]}";
}

namespace {

using test::unix_now;

// An endpoint with every field distinct, derived from `i`: even `i` UDP over IPv4, odd TLS over
// IPv6 with a connection id and key hashes above INT64_MAX (SQLite and Lua numbers are signed).
KeepaliveRecord sample_keepalive(const std::string& node, int i) {
  KeepaliveRecord k;
  k.node = node;
  if (i % 2 == 0) {
    k.flow.transport = net::Transport::kUdp;
    k.flow.remote = {net::Address::v4(0xCB007100U + static_cast<uint32_t>(i % 250)), static_cast<uint16_t>(40000 + i)};
  } else {
    k.flow.transport = net::Transport::kTls;
    k.flow.remote = {*net::Address::parse("2001:db8::" + std::to_string(i % 9000 + 1)),
                     static_cast<uint16_t>(50000 + i)};
    k.flow.connection_id = (uint64_t{1} << 63) + static_cast<uint32_t>(i);
  }
  k.flow.local_socket_id = static_cast<uint32_t>(i % 4);
  k.interval_s = static_cast<uint32_t>(5 + i % 11);
  int64_t now = unix_now();
  k.reasons.push_back({0, uint64_t{0x0123456789abcdef} + static_cast<uint64_t>(i), now + 3600 + i});
  if (i % 3 != 0) k.reasons.push_back({1, std::numeric_limits<uint64_t>::max() - static_cast<uint64_t>(i), now + 600});
  if (i % 5 == 1) k.reasons.push_back({2, static_cast<uint64_t>(i), now + 60});
  return k;
}

// The promised order, by the promised key (checked independently of the backends in KeyFormat).
std::vector<KeepaliveRecord> sorted(std::vector<KeepaliveRecord> v) {
  std::sort(v.begin(), v.end(), [](const KeepaliveRecord& a, const KeepaliveRecord& b) {
    return keepalive_flow_key(a.flow) < keepalive_flow_key(b.flow);
  });
  return v;
}

class KeepaliveStore : public test::StoreBackendTest {
 protected:
  std::vector<KeepaliveRecord> load(const std::string& node) {
    auto r = store_->load_keepalives(node);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().what);
    return r.ok() ? *r : std::vector<KeepaliveRecord>{};
  }
};

TEST_P(KeepaliveStore, StartsEmpty) { EXPECT_TRUE(load("edge-1").empty()); }

TEST_P(KeepaliveStore, SaveAndLoadEveryField) {
  std::vector<KeepaliveRecord> saved;
  saved.reserve(13);
  for (int i = 0; i < 12; ++i) saved.push_back(sample_keepalive("edge-1", i));
  // A v4-mapped remote, zero hashes and interval, reasons out of kind order.
  KeepaliveRecord odd = sample_keepalive("edge-1", 20);
  odd.flow.remote = {*net::Address::parse("::ffff:203.0.113.9"), 1};
  odd.reasons = {{2, 0, unix_now() + 5}, {0, 1, unix_now() + 1}};
  odd.interval_s = 0;
  saved.push_back(odd);
  for (const KeepaliveRecord& k : saved) store_->save_keepalive(k);
  store_->flush();
  std::vector<KeepaliveRecord> got = load("edge-1");
  EXPECT_EQ(got, sorted(saved));
  for (size_t i = 1; i < got.size(); ++i)
    EXPECT_LT(keepalive_flow_key(got[i - 1].flow), keepalive_flow_key(got[i].flow));
  StoreStats s = store_->stats();
  EXPECT_EQ(s.writes, saved.size());
  EXPECT_EQ(s.write_errors, 0U);
  EXPECT_EQ(s.decode_errors, 0U);
}

TEST_P(KeepaliveStore, ASaveReplacesTheEndpointsWholeRecord) {
  KeepaliveRecord k = sample_keepalive("edge-1", 1);
  ASSERT_GE(k.reasons.size(), 2U);
  store_->save_keepalive(k);
  store_->flush();
  // A reason ended, another was refreshed, the interval was learned shorter.
  k.reasons.erase(k.reasons.begin());
  k.reasons.front().expires_at += 100;
  k.interval_s = 5;
  store_->save_keepalive(k);
  store_->flush();
  EXPECT_EQ(load("edge-1"), std::vector<KeepaliveRecord>{k});

  // Within one batch: save, remove, save again; and save then remove.
  KeepaliveRecord other = sample_keepalive("edge-1", 2);
  store_->save_keepalive(other);
  store_->remove_keepalive(other.node, other.flow);
  other.interval_s = 9;
  store_->save_keepalive(other);
  KeepaliveRecord gone = sample_keepalive("edge-1", 3);
  store_->save_keepalive(gone);
  store_->remove_keepalive(gone.node, gone.flow);
  store_->flush();
  EXPECT_EQ(load("edge-1"), sorted({k, other}));
}

TEST_P(KeepaliveStore, RemoveTakesOnlyThatFlow) {
  KeepaliveRecord a = sample_keepalive("edge-1", 0);
  // Same remote, another connection / local socket / transport: other endpoints.
  KeepaliveRecord b = a;
  b.flow.local_socket_id += 1;
  KeepaliveRecord c = a;
  c.flow.transport = net::Transport::kTcp;
  c.flow.connection_id = 42;
  for (const KeepaliveRecord& k : {a, b, c}) store_->save_keepalive(k);
  store_->remove_keepalive("edge-1", a.flow);
  store_->remove_keepalive("edge-1", sample_keepalive("edge-1", 7).flow);  // never saved
  store_->flush();
  EXPECT_EQ(load("edge-1"), sorted({b, c}));

  // A record without reasons keeps nothing alive: saving one removes the endpoint.
  KeepaliveRecord empty = b;
  empty.reasons.clear();
  store_->save_keepalive(empty);
  store_->flush();
  EXPECT_EQ(load("edge-1"), std::vector<KeepaliveRecord>{c});
  store_->remove_keepalive("edge-1", c.flow);
  store_->flush();
  EXPECT_TRUE(load("edge-1").empty());
}

TEST_P(KeepaliveStore, EachNodeSeesOnlyItsOwnEndpoints) {
  // Node names that prefix each other or carry the key separator.
  const std::vector<std::string> nodes = {"edge", "edge-1", "edge:1", "edge%3A1", ""};
  std::vector<std::vector<KeepaliveRecord>> expected(nodes.size());
  for (size_t n = 0; n < nodes.size(); ++n) {
    for (int i = 0; i < 3; ++i) {
      // The same flows on every node, with reasons that differ per node.
      KeepaliveRecord k = sample_keepalive(nodes[n], i);
      k.interval_s = static_cast<uint32_t>(10 + n);
      k.reasons.front().key_hash += n;
      expected[n].push_back(k);
      store_->save_keepalive(k);
    }
  }
  store_->flush();
  for (size_t n = 0; n < nodes.size(); ++n) EXPECT_EQ(load(nodes[n]), sorted(expected[n])) << "node " << nodes[n];
  EXPECT_TRUE(load("edge-2").empty());

  // Removing a flow on one node leaves the same flow of the others.
  store_->remove_keepalive("edge", expected[0][1].flow);
  store_->flush();
  EXPECT_EQ(load("edge"), sorted({expected[0][0], expected[0][2]}));
  EXPECT_EQ(load("edge-1"), sorted(expected[1]));
  EXPECT_EQ(load("edge:1"), sorted(expected[2]));
}

TEST_P(KeepaliveStore, ExpiredReasonsAreStillLoaded) {
  // Expired a moment ago (within Redis's TTL grace): the caller decides what to drop.
  KeepaliveRecord lapsed = sample_keepalive("edge-1", 0);
  for (KeepaliveReasonRecord& r : lapsed.reasons) r.expires_at = unix_now() - 10;
  KeepaliveRecord mixed = sample_keepalive("edge-1", 1);
  mixed.reasons.front().expires_at = unix_now() - 20;
  store_->save_keepalive(lapsed);
  store_->save_keepalive(mixed);
  store_->flush();
  EXPECT_EQ(load("edge-1"), sorted({lapsed, mixed}));
}

TEST_P(KeepaliveStore, BindingsAndKeepalivesDoNotMix) {
  BindingRecord b = test::sample_binding("sip:alice@example.com", 0);
  b.node = "edge-1";
  KeepaliveRecord k = sample_keepalive("edge-1", 0);
  k.flow = b.flow;
  store_->save_binding(b);
  store_->save_keepalive(k);
  store_->flush();
  EXPECT_EQ(load("edge-1"), std::vector<KeepaliveRecord>{k});
  auto bindings = store_->load_bindings();
  ASSERT_TRUE(bindings.ok());
  EXPECT_EQ(bindings->size(), 1U);
  store_->remove_aor(b.aor);
  store_->flush();
  EXPECT_EQ(load("edge-1"), std::vector<KeepaliveRecord>{k});
}

// The backends that outlive the Store object (memory keeps nothing across instances, by design).
class DurableKeepaliveStore : public KeepaliveStore {};

TEST_P(DurableKeepaliveStore, WritesQueuedBeforeTheStoreClosesAreKept) {
  std::vector<KeepaliveRecord> saved;
  for (int i = 0; i < 300; ++i) {  // more than one batch
    saved.push_back(sample_keepalive("edge-1", i));
    store_->save_keepalive(saved.back());
  }
  open();  // no flush: the destructor drains the queue
  EXPECT_EQ(load("edge-1"), sorted(saved));
}

std::string backend_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

INSTANTIATE_TEST_SUITE_P(Backends, KeepaliveStore, ::testing::Values("memory", "sqlite", "redis"), backend_name);
INSTANTIATE_TEST_SUITE_P(Backends, DurableKeepaliveStore, ::testing::Values("sqlite", "redis"), backend_name);

// --- the codec and the key ---

TEST(KeepaliveCodec, RoundTripsEveryField) {
  for (int i = 0; i < 8; ++i) {
    KeepaliveRecord k = sample_keepalive("node-x", i);
    std::string value = encode_keepalive_value(k);
    ASSERT_TRUE(value.starts_with("1;")) << value;
    auto back = decode_keepalive_value("node-x", value);
    ASSERT_TRUE(back.ok()) << back.error().what;
    EXPECT_EQ(*back, k);
  }
  KeepaliveRecord none = sample_keepalive("n", 0);
  none.reasons.clear();
  auto back = decode_keepalive_value("n", encode_keepalive_value(none));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, none);
}

TEST(KeepaliveCodec, EveryTruncationAndCorruptionIsAnError) {
  std::string value = encode_keepalive_value(sample_keepalive("n", 1));
  for (size_t n = 0; n < value.size(); ++n) {
    auto r = decode_keepalive_value("n", value.substr(0, n));
    EXPECT_FALSE(r.ok()) << "prefix of " << n << " bytes decoded";
    if (!r.ok()) {
      EXPECT_EQ(r.error().status, 500);
    }
  }
  // Each changes one field of the valid base below.
  const std::vector<std::string> must_fail = {
      "",
      "garbage",
      "{\"json\":true}",
      "1;2:153:sct1:07:1.2.3.41:51:01:01:0",          // unknown transport
      "1;2:153:udp1:05:1.2.31:51:01:01:0",            // not an address
      "1;2:153:udp1:07:1.2.3.46:9999991:01:01:0",     // port out of range
      "1;2:153:udp1:07:1.2.3.41:51:04:5000",          // more reasons than allowed
      "1;2:153:udp1:07:1.2.3.41:51:01:13:2561:11:1",  // reason kind 256
      "1;2:153:udp1:07:1.2.3.41:51:01:21:01:71:9",    // two reasons announced, one present
      "1;2:153:udp1:07:1.2.3.41:51:01:11:01:71:x",    // expiry not a number
  };
  for (const std::string& v : must_fail) {
    auto r = decode_keepalive_value("n", v);
    EXPECT_FALSE(r.ok()) << v;
  }
  // The hand-encoded base of the above is valid: the failures are the changed fields.
  auto base = decode_keepalive_value("n", "1;2:153:udp1:07:1.2.3.41:51:01:11:01:71:9");
  ASSERT_TRUE(base.ok()) << base.error().what;
  EXPECT_EQ(base->interval_s, 15U);
  EXPECT_EQ(base->flow.remote.to_string(), "1.2.3.4:5");
  ASSERT_EQ(base->reasons.size(), 1U);
  EXPECT_EQ(base->reasons[0], (KeepaliveReasonRecord{0, 7, 9}));

  auto future = decode_keepalive_value("n", "7;1:0");
  ASSERT_FALSE(future.ok());
  EXPECT_NE(future.error().what.find("version"), std::string_view::npos);
}

TEST(KeepaliveCodec, FlowKeyFormat) {
  net::Flow udp{net::Transport::kUdp, 2, *net::Endpoint::parse("203.0.113.5:4000"), 0};
  EXPECT_EQ(keepalive_flow_key(udp), "udp/2/203.0.113.5:4000/0");
  net::Flow tls{net::Transport::kTls, 1, *net::Endpoint::parse("[2001:DB8:0:0::1]:5061"), 7};
  EXPECT_EQ(keepalive_flow_key(tls), "tls/1/[2001:db8::1]:5061/7");
}

// --- SQLite ---

class SqliteKeepalives : public ::testing::Test {
 protected:
  std::string file() const { return dir_.path() + "/store.db"; }

  std::unique_ptr<Store> open() {
    auto s = open_store("sqlite://" + file());
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().what);
    return s.ok() ? std::move(s).value() : nullptr;
  }

  bool exec(const std::string& sql) { return test::sqlite_exec(file(), sql); }

  std::string query(const std::string& sql) { return test::sqlite_query(file(), sql); }

  test::TempDir dir_;
};

TEST_F(SqliteKeepalives, CorruptRowsAreSkippedAndCounted) {
  auto store = open();
  ASSERT_NE(store, nullptr);
  std::vector<KeepaliveRecord> saved;
  for (int i = 0; i < 4; ++i) {
    saved.push_back(sample_keepalive("edge-1", i));
    store->save_keepalive(saved.back());
  }
  store->flush();
  std::string key1 = keepalive_flow_key(saved[1].flow);
  std::string key2 = keepalive_flow_key(saved[2].flow);
  ASSERT_TRUE(exec("UPDATE keepalives SET value = 'garbage' WHERE flow_key = '" + key1 + "'"));
  ASSERT_TRUE(exec("UPDATE keepalives SET value = '7;1:0' WHERE flow_key = '" + key2 + "'"));
  auto loaded = store->load_keepalives("edge-1");
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(*loaded, sorted({saved[0], saved[3]}));
  EXPECT_EQ(store->stats().decode_errors, 2U);
}

TEST_F(SqliteKeepalives, AVersion1FileGainsTheTableAndKeepsItsBindings) {
  BindingRecord b = test::sample_binding("sip:alice@example.com", 2);
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    store->save_binding(b);
    store->flush();
  }
  // What pinhole with schema version 1 left behind: no keepalives table.
  ASSERT_TRUE(exec("DROP TABLE keepalives; PRAGMA user_version = 1;"));
  ASSERT_EQ(query("SELECT count(*) FROM sqlite_master WHERE name = 'keepalives'"), "0");

  auto store = open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(query("PRAGMA user_version"), std::to_string(kSqliteSchemaVersion));
  EXPECT_EQ(kSqliteSchemaVersion, 2);
  auto bindings = store->load_bindings();
  ASSERT_TRUE(bindings.ok());
  EXPECT_EQ(*bindings, std::vector<BindingRecord>{b});
  KeepaliveRecord k = sample_keepalive("edge-1", 1);
  store->save_keepalive(k);
  store->flush();
  auto loaded = store->load_keepalives("edge-1");
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(*loaded, std::vector<KeepaliveRecord>{k});
  // The latest reason expiry is a column, for operators' queries.
  EXPECT_EQ(query("SELECT expires_at FROM keepalives"), std::to_string(keepalive_latest_expiry(k)));
}

TEST_F(SqliteKeepalives, EndpointsSurviveARestart) {
  KeepaliveRecord k = sample_keepalive("edge-1", 3);
  {
    auto store = open();
    ASSERT_NE(store, nullptr);
    store->save_keepalive(k);
  }
  auto store = open();
  ASSERT_NE(store, nullptr);
  auto loaded = store->load_keepalives("edge-1");
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ(*loaded, std::vector<KeepaliveRecord>{k});
}

// --- Redis ---

class RedisKeepalives : public ::testing::Test {
 protected:
  void SetUp() override {
    PINHOLE_REQUIRE_REDIS_SERVER();
    std::string error;
    redis_ = test::RedisServer::start(error);
    ASSERT_NE(redis_, nullptr) << error;
    auto s = open_store(redis_->url());
    ASSERT_TRUE(s.ok());
    store_ = std::move(s).value();
  }

  int64_t integer(std::initializer_list<std::string_view> args) {
    test::RedisReply r = redis_->command(args);
    EXPECT_TRUE(r && r->type == REDIS_REPLY_INTEGER);
    return r && r->type == REDIS_REPLY_INTEGER ? r->integer : -999;
  }

  std::unique_ptr<test::RedisServer> redis_;
  std::unique_ptr<Store> store_;
};

TEST_F(RedisKeepalives, KeyLayoutAndTtlFollowTheLatestReason) {
  KeepaliveRecord k = sample_keepalive("edge:1", 1);
  store_->save_keepalive(k);
  store_->flush();
  const std::string key = "pinhole:keepalive:edge%3A1:" + keepalive_flow_key(k.flow);
  const std::string set = "pinhole:keepalives:edge%3A1";
  EXPECT_EQ(redis_keepalive_key("edge:1", k.flow), key);
  EXPECT_EQ(redis_keepalive_set_key("edge:1"), set);
  test::RedisReply value = redis_->command({"GET", key});
  ASSERT_TRUE(value && value->type == REDIS_REPLY_STRING);
  EXPECT_EQ(std::string(value->str, value->len), encode_keepalive_value(k));
  EXPECT_EQ(integer({"SISMEMBER", set, keepalive_flow_key(k.flow)}), 1);
  int64_t latest = 0;
  for (const KeepaliveReasonRecord& r : k.reasons) latest = std::max(latest, r.expires_at);
  EXPECT_EQ(integer({"EXPIRETIME", key}), latest + kRedisTtlGrace.count());

  // A shorter expiry on the next save shortens the TTL.
  k.reasons.resize(1);
  k.reasons[0].expires_at = unix_now() + 30;
  store_->save_keepalive(k);
  store_->flush();
  EXPECT_EQ(integer({"EXPIRETIME", key}), k.reasons[0].expires_at + kRedisTtlGrace.count());

  store_->remove_keepalive("edge:1", k.flow);
  store_->flush();
  EXPECT_EQ(integer({"EXISTS", key}), 0);
  EXPECT_EQ(integer({"SISMEMBER", set, keepalive_flow_key(k.flow)}), 0);
}

TEST_F(RedisKeepalives, EndpointsLapsedBeyondTheGraceGoAndArePruned) {
  KeepaliveRecord old = sample_keepalive("edge-1", 0);
  for (KeepaliveReasonRecord& r : old.reasons) r.expires_at = unix_now() - kRedisTtlGrace.count() - 10;
  KeepaliveRecord live = sample_keepalive("edge-1", 2);
  store_->save_keepalive(old);
  store_->save_keepalive(live);
  store_->flush();
  const std::string set = redis_keepalive_set_key("edge-1");
  EXPECT_EQ(integer({"EXISTS", redis_keepalive_key("edge-1", old.flow)}), 0);
  EXPECT_EQ(integer({"SCARD", set}), 1);

  // A member whose key expired later (as a TTL would do it) is taken out of the set by the load.
  ASSERT_EQ(integer({"DEL", redis_keepalive_key("edge-1", live.flow)}), 1);
  auto loaded = store_->load_keepalives("edge-1");
  ASSERT_TRUE(loaded.ok());
  EXPECT_TRUE(loaded->empty());
  EXPECT_EQ(integer({"SCARD", set}), 0);
}

TEST_F(RedisKeepalives, ValuesThatCannotBeReadAreSkippedAndCounted) {
  KeepaliveRecord good = sample_keepalive("edge-1", 1);
  store_->save_keepalive(good);
  store_->flush();
  const std::string set = redis_keepalive_set_key("edge-1");
  const std::string prefix = keepalive_key_prefix("edge-1");
  ASSERT_EQ(integer({"SADD", set, "udp/0/192.0.2.1:1/0", "udp/0/192.0.2.2:1/0", "udp/0/192.0.2.3:1/0"}), 3);
  test::RedisReply r1 = redis_->command({"SET", prefix + "udp/0/192.0.2.1:1/0", "garbage"});
  test::RedisReply r2 = redis_->command({"SET", prefix + "udp/0/192.0.2.2:1/0", "7;1:0"});
  ASSERT_EQ(integer({"HSET", prefix + "udp/0/192.0.2.3:1/0", "a", "b"}), 1);  // WRONGTYPE for GET
  auto loaded = store_->load_keepalives("edge-1");
  ASSERT_TRUE(loaded.ok()) << loaded.error().what;
  EXPECT_EQ(*loaded, std::vector<KeepaliveRecord>{good});
  EXPECT_EQ(store_->stats().decode_errors, 3U);
}

TEST_F(RedisKeepalives, WritesQueuedDuringAnOutageArrive) {
  StoreOptions o;
  o.reconnect_min = std::chrono::milliseconds(10);
  o.reconnect_max = std::chrono::milliseconds(50);
  auto s = open_store(redis_->url(), o);
  ASSERT_TRUE(s.ok());
  std::unique_ptr<Store> store = std::move(s).value();
  redis_->kill();
  KeepaliveRecord k = sample_keepalive("edge-1", 4);
  store->save_keepalive(k);  // must return at once: nothing to write to
  ASSERT_TRUE(redis_->restart());
  store->flush();
  auto loaded = store->load_keepalives("edge-1");
  ASSERT_TRUE(loaded.ok()) << loaded.error().what;
  EXPECT_EQ(*loaded, std::vector<KeepaliveRecord>{k});
}

}  // namespace
}  // namespace pinhole::store
