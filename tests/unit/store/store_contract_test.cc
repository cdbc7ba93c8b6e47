// The Store contract, run against every implementation: memory (the reference), SQLite (a file in
// a temporary directory) and Redis (a redis-server this test binary starts on a free loopback
// port, emptied before each test). Expected results are built from the records the test wrote,
// never read back from the store under test.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "store/store.h"
#include "store_test_support.h"

namespace pinhole::store {
namespace {

using namespace std::string_literals;
using test::sample_binding;

class StoreContract : public test::StoreBackendTest {
 protected:
  std::vector<BindingRecord> all() {
    auto r = store_->load_bindings();
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().what);
    return r.ok() ? *r : std::vector<BindingRecord>{};
  }

  std::vector<BindingRecord> aor(const std::string& name) {
    auto r = store_->load_aor(name);
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().what);
    return r.ok() ? *r : std::vector<BindingRecord>{};
  }

  std::vector<UserRecord> users() {
    auto r = store_->list_users();
    EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().what);
    return r.ok() ? *r : std::vector<UserRecord>{};
  }

  static std::vector<BindingRecord> sorted(std::vector<BindingRecord> v) {
    std::sort(v.begin(), v.end(), [](const BindingRecord& a, const BindingRecord& b) {
      return std::tie(a.aor, a.binding_id) < std::tie(b.aor, b.binding_id);
    });
    return v;
  }
};

TEST_P(StoreContract, ReportsItsKind) { EXPECT_EQ(store_->kind(), GetParam()); }

TEST_P(StoreContract, StartsEmpty) {
  EXPECT_TRUE(all().empty());
  EXPECT_TRUE(aor("sip:nobody@example.com").empty());
  EXPECT_TRUE(users().empty());
  StoreStats s = store_->stats();
  EXPECT_EQ(s.writes, 0U);
  EXPECT_EQ(s.write_errors, 0U);
  EXPECT_EQ(s.queued, 0U);
}

TEST_P(StoreContract, EveryFieldRoundTrips) {
  BindingRecord v4 = sample_binding("sip:alice@example.com", 2);
  BindingRecord v6 = sample_binding("sip:alice@example.com", 7);
  ASSERT_TRUE(v6.flow.remote.address.is_v6());
  ASSERT_TRUE(v4.flow.remote.address.is_v4());
  // Empty strings everywhere they are allowed, no Path, no q, no instance.
  BindingRecord bare;
  bare.aor = "sip:bob@example.com";
  bare.binding_id = "<sip:bob@198.51.100.7:5062>";
  bare.contact = "<sip:bob@198.51.100.7:5062>";
  bare.expires_at = test::unix_now() + 60;
  // Bytes a JSON writer would refuse, and the codec's own separators.
  BindingRecord odd = sample_binding("sip:carol@example.com", 4);
  odd.user_agent = "\xff\xfe\x01 UA;1:2"s;
  odd.path = {"", "<sip:\xc3\x28;lr>"s, "3:x;"};
  odd.flow.remote = {*net::Address::parse("::ffff:203.0.113.9"), 1};
  odd.q_milli = 0;

  for (const BindingRecord& b : {v4, v6, bare, odd}) store_->save_binding(b);
  store_->flush();

  EXPECT_EQ(all(), sorted({v4, v6, bare, odd}));
  EXPECT_EQ(aor("sip:alice@example.com"), sorted({v4, v6}));
  EXPECT_EQ(aor("sip:bob@example.com"), std::vector<BindingRecord>{bare});
  EXPECT_EQ(aor("sip:carol@example.com"), std::vector<BindingRecord>{odd});
  EXPECT_EQ(store_->stats().decode_errors, 0U);
}

TEST_P(StoreContract, LaterWritesOfABindingWin) {
  BindingRecord b = sample_binding("sip:alice@example.com", 1);
  store_->save_binding(b);
  b.cseq += 1;
  b.contact = "<sip:alice@203.0.113.5:6000>";
  b.flow.remote.port = 6000;
  store_->save_binding(b);
  store_->flush();
  EXPECT_EQ(aor(b.aor), std::vector<BindingRecord>{b});

  // In one batch: save, remove, save again; and remove after save.
  BindingRecord other = sample_binding("sip:alice@example.com", 2);
  store_->save_binding(other);
  store_->remove_binding(other.aor, other.binding_id);
  other.cseq = 77;
  store_->save_binding(other);
  BindingRecord gone = sample_binding("sip:alice@example.com", 3);
  store_->save_binding(gone);
  store_->remove_binding(gone.aor, gone.binding_id);
  store_->flush();
  EXPECT_EQ(aor(b.aor), sorted({b, other}));
}

TEST_P(StoreContract, RemoveBinding) {
  BindingRecord a1 = sample_binding("sip:alice@example.com", 1);
  BindingRecord a2 = sample_binding("sip:alice@example.com", 2);
  BindingRecord b1 = sample_binding("sip:bob@example.com", 3);
  for (const BindingRecord& b : {a1, a2, b1}) store_->save_binding(b);
  store_->remove_binding(a1.aor, a1.binding_id);
  store_->remove_binding(a1.aor, "no-such-binding");
  store_->remove_binding("sip:nobody@example.com", a1.binding_id);
  store_->flush();
  EXPECT_EQ(all(), sorted({a2, b1}));

  // The last binding of an AOR takes the AOR with it.
  store_->remove_binding(b1.aor, b1.binding_id);
  store_->flush();
  EXPECT_TRUE(aor(b1.aor).empty());
  EXPECT_EQ(all(), std::vector<BindingRecord>{a2});
}

TEST_P(StoreContract, RemoveAor) {
  BindingRecord a1 = sample_binding("sip:alice@example.com", 1);
  BindingRecord a2 = sample_binding("sip:alice@example.com", 2);
  BindingRecord b1 = sample_binding("sip:bob@example.com", 3);
  for (const BindingRecord& b : {a1, a2, b1}) store_->save_binding(b);
  store_->remove_aor(a1.aor);
  store_->remove_aor("sip:nobody@example.com");
  store_->flush();
  EXPECT_TRUE(aor(a1.aor).empty());
  EXPECT_EQ(all(), std::vector<BindingRecord>{b1});

  // An AOR can come back after removal.
  store_->save_binding(a2);
  store_->flush();
  EXPECT_EQ(aor(a1.aor), std::vector<BindingRecord>{a2});
}

TEST_P(StoreContract, LoadAorSeesOnlyThatAor) {
  // AORs that share prefixes must not leak into each other.
  BindingRecord a = sample_binding("sip:al@example.com", 1);
  BindingRecord b = sample_binding("sip:al@example.com.evil", 2);
  BindingRecord c = sample_binding("sip:al@example.co", 3);
  for (const BindingRecord& x : {a, b, c}) store_->save_binding(x);
  store_->flush();
  EXPECT_EQ(aor(a.aor), std::vector<BindingRecord>{a});
  EXPECT_EQ(aor(b.aor), std::vector<BindingRecord>{b});
  EXPECT_EQ(aor(c.aor), std::vector<BindingRecord>{c});
  EXPECT_TRUE(aor("sip:al@example").empty());
}

TEST_P(StoreContract, LapsedBindingsAreStillReturned) {
  // A binding that lapsed a moment ago (within Redis's TTL grace): the caller filters.
  BindingRecord lapsed = sample_binding("sip:alice@example.com", 1);
  lapsed.expires_at = test::unix_now() - 10;
  BindingRecord live = sample_binding("sip:alice@example.com", 2);
  store_->save_binding(lapsed);
  store_->save_binding(live);
  store_->flush();
  EXPECT_EQ(aor(lapsed.aor), sorted({lapsed, live}));
}

TEST_P(StoreContract, FlushMakesEveryQueuedWriteDurable) {
  // More than one batch (max_batch 256) from several threads at once.
  constexpr int kThreads = 4;
  constexpr int kPerThread = 150;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i)
        store_->save_binding(sample_binding("sip:u" + std::to_string(t) + "@example.com", i));
    });
  for (std::thread& t : threads) t.join();
  store_->flush();
  StoreStats s = store_->stats();
  EXPECT_EQ(s.queued, 0U);
  EXPECT_EQ(s.writes, static_cast<uint64_t>(kThreads * kPerThread));
  EXPECT_EQ(s.write_errors, 0U);
  EXPECT_GE(s.batches, 1U);
  EXPECT_LE(s.batches, s.writes);
  std::vector<BindingRecord> expected;
  for (int t = 0; t < kThreads; ++t)
    for (int i = 0; i < kPerThread; ++i)
      expected.push_back(sample_binding("sip:u" + std::to_string(t) + "@example.com", i));
  // sample_binding reads the clock: compare what cannot drift, then the count.
  std::vector<BindingRecord> got = all();
  ASSERT_EQ(got.size(), expected.size());
  expected = sorted(expected);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].aor, expected[i].aor);
    EXPECT_EQ(got[i].binding_id, expected[i].binding_id);
    EXPECT_EQ(got[i].contact, expected[i].contact);
    EXPECT_EQ(got[i].flow, expected[i].flow);
  }
}

TEST_P(StoreContract, FlushWithNothingQueuedReturns) {
  store_->flush();
  store_->flush();
  EXPECT_EQ(store_->stats().queued, 0U);
}

TEST_P(StoreContract, SmallBatchesAndAWindowStillDeliverEverything) {
  StoreOptions options;
  options.max_batch = 3;
  options.batch_window = std::chrono::milliseconds(1);
  open(options);
  std::vector<BindingRecord> expected;
  for (int i = 0; i < 10; ++i) {
    expected.push_back(sample_binding("sip:alice@example.com", i));
    store_->save_binding(expected.back());
  }
  store_->flush();
  EXPECT_EQ(aor("sip:alice@example.com"), sorted(expected));
  StoreStats s = store_->stats();
  EXPECT_EQ(s.writes, 10U);
  if (GetParam() != "memory") {
    EXPECT_GE(s.batches, 4U);  // at most 3 per batch
  }
}

TEST_P(StoreContract, AsyncLookupAnswersOnTheStoreThread) {
  BindingRecord a = sample_binding("sip:alice@example.com", 1);
  store_->save_binding(a);
  store_->flush();

  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, std::vector<BindingRecord>> answers;
  std::vector<std::thread::id> threads;
  int errors = 0;
  const std::vector<std::string> asked = {"sip:alice@example.com", "sip:nobody@example.com", "sip:alice@example.com"};
  for (const std::string& name : asked)
    store_->load_aor_async(name, [&, name](Result<std::vector<BindingRecord>> r) {
      std::lock_guard lock(mu);
      threads.push_back(std::this_thread::get_id());
      if (r.ok())
        answers[name] = *r;
      else
        ++errors;
      cv.notify_all();
    });
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, test::kDeadline, [&] { return threads.size() == asked.size(); }));
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(answers["sip:alice@example.com"], std::vector<BindingRecord>{a});
  EXPECT_TRUE(answers["sip:nobody@example.com"].empty());
  for (std::thread::id id : threads) EXPECT_NE(id, std::this_thread::get_id());
}

TEST_P(StoreContract, PendingAsyncLookupsAreAnsweredWhenTheStoreCloses) {
  std::atomic<int> calls{0};
  for (int i = 0; i < 20; ++i)
    store_->load_aor_async("sip:alice@example.com", [&](const Result<std::vector<BindingRecord>>& r) {
      // Either looked up (empty) or refused because the store closes; never both, never dropped.
      if (r.ok()) {
        EXPECT_TRUE(r->empty());
      } else {
        EXPECT_EQ(r.error().status, 503);
      }
      calls.fetch_add(1);
    });
  store_.reset();
  EXPECT_EQ(calls.load(), 20);
}

TEST_P(StoreContract, UsersPutReplaceDeleteList) {
  UserRecord alice{"alice", "example.com", std::string(32, 'a'), std::string(64, 'b')};
  UserRecord alice_other_realm{"alice", "example.org", std::string(32, 'c'), ""};
  UserRecord bob{"bob", "example.com", "", std::string(64, 'd')};
  for (const UserRecord& u : {bob, alice_other_realm, alice}) ASSERT_TRUE(store_->put_user(u).ok());
  EXPECT_EQ(users(), (std::vector<UserRecord>{alice, alice_other_realm, bob}));

  UserRecord alice2 = alice;
  alice2.ha1_md5 = "0123456789abcdef0123456789abcdef";
  alice2.ha1_sha256 = "";
  ASSERT_TRUE(store_->put_user(alice2).ok());
  EXPECT_EQ(users(), (std::vector<UserRecord>{alice2, alice_other_realm, bob}));

  auto deleted = store_->delete_user("alice", "example.com");
  ASSERT_TRUE(deleted.ok());
  EXPECT_TRUE(*deleted);
  auto again = store_->delete_user("alice", "example.com");
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again);
  auto never = store_->delete_user("carol", "example.com");
  ASSERT_TRUE(never.ok());
  EXPECT_FALSE(*never);
  EXPECT_EQ(users(), (std::vector<UserRecord>{alice_other_realm, bob}));
}

TEST_P(StoreContract, UserKeysDoNotCollide) {
  // The same text split differently between realm and username.
  UserRecord a{"c", "a:b", std::string(32, '1'), ""};
  UserRecord b{"b:c", "a", std::string(32, '2'), ""};
  UserRecord c{"c", "a%3Ab", std::string(32, '3'), ""};
  for (const UserRecord& u : {a, b, c}) ASSERT_TRUE(store_->put_user(u).ok());
  EXPECT_EQ(users(), (std::vector<UserRecord>{b, c, a}));
}

TEST_P(StoreContract, InvalidUsersAreRefusedAndNotStored) {
  const std::vector<UserRecord> bad = {
      {"", "example.com", std::string(32, 'a'), ""},       // no username
      {"alice", "example.com", "", ""},                    // no HA1
      {"alice", "example.com", std::string(31, 'a'), ""},  // short
      {"alice", "example.com", std::string(32, 'A'), ""},  // upper case
      {"alice", "example.com", std::string(32, 'g'), ""},  // not hex
      {"alice", "example.com", std::string(32, 'a'), std::string(63, 'b')},
  };
  for (const UserRecord& u : bad) {
    Status s = store_->put_user(u);
    ASSERT_FALSE(s.ok()) << u.username << " " << u.ha1_md5 << " " << u.ha1_sha256;
    EXPECT_EQ(s.error().status, 400);
  }
  EXPECT_TRUE(users().empty());
}

std::string backend_name(const ::testing::TestParamInfo<std::string>& info) { return info.param; }

INSTANTIATE_TEST_SUITE_P(Backends, StoreContract, ::testing::Values("memory", "sqlite", "redis"), backend_name);

}  // namespace
}  // namespace pinhole::store
