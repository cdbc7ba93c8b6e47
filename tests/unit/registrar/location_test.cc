// The in-memory location service: bindings per AOR, ordering, expiry, the optimistic commit, the
// flow index, sharding and concurrent use from two threads.
#include "registrar/location.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace pinhole::registrar {
namespace {

using store::BindingRecord;

net::Flow udp_flow(uint16_t port) {
  net::Flow f;
  f.transport = net::Transport::kUdp;
  f.remote = *net::Endpoint::parse("203.0.113.5", port);
  return f;
}

BindingRecord binding(std::string aor, std::string id, int64_t expires_at, int32_t q_milli = -1,
                      int64_t registered_at = 100, uint16_t port = 5060) {
  BindingRecord b;
  b.aor = std::move(aor);
  b.binding_id = std::move(id);
  b.contact = "sip:" + b.binding_id + "@192.0.2.1";
  b.q_milli = q_milli;
  b.expires_at = expires_at;
  b.registered_at = registered_at;
  b.flow = udp_flow(port);
  return b;
}

std::vector<std::string> ids(const std::vector<BindingRecord>& records) {
  std::vector<std::string> out;
  out.reserve(records.size());
  for (const auto& r : records) out.push_back(r.binding_id);
  return out;
}

TEST(Location, UpsertLookupRemove) {
  Location loc;
  loc.upsert(binding("sip:a@x", "1", 1000));
  loc.upsert(binding("sip:a@x", "2", 1000));
  loc.upsert(binding("sip:b@x", "1", 1000));
  EXPECT_EQ(loc.aor_count(), 2u);
  EXPECT_EQ(loc.binding_count(), 3u);
  EXPECT_EQ(loc.lookup("sip:a@x", 0).size(), 2u);
  EXPECT_TRUE(loc.lookup("sip:c@x", 0).empty());

  // Replacing keeps one binding per id.
  auto changed = binding("sip:a@x", "1", 2000);
  changed.contact = "sip:new@192.0.2.9";
  loc.upsert(changed);
  EXPECT_EQ(loc.binding_count(), 3u);
  auto found = loc.lookup("sip:a@x", 0);
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(std::count(found.begin(), found.end(), changed), 1);

  EXPECT_TRUE(loc.remove("sip:a@x", "1"));
  EXPECT_FALSE(loc.remove("sip:a@x", "1"));
  EXPECT_FALSE(loc.remove("sip:none@x", "1"));
  EXPECT_EQ(loc.binding_count(), 2u);
  EXPECT_TRUE(loc.remove("sip:a@x", "2"));
  EXPECT_EQ(loc.aor_count(), 1u);  // an AOR without bindings is gone

  auto removed = loc.remove_aor("sip:b@x");
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].binding_id, "1");
  EXPECT_TRUE(loc.remove_aor("sip:b@x").empty());
  EXPECT_EQ(loc.aor_count(), 0u);
  EXPECT_EQ(loc.binding_count(), 0u);
}

TEST(Location, LookupSkipsLapsedBindings) {
  Location loc;
  loc.upsert(binding("sip:a@x", "short", 500));
  loc.upsert(binding("sip:a@x", "long", 1500));
  EXPECT_EQ(ids(loc.lookup("sip:a@x", 499)), (std::vector<std::string>{"long", "short"}));
  EXPECT_EQ(ids(loc.lookup("sip:a@x", 500)), (std::vector<std::string>{"long"}));  // lapses at expires_at
  EXPECT_TRUE(loc.lookup("sip:a@x", 1500).empty());
}

TEST(Location, LookupOrdersByQThenMostRecent) {
  Location loc;
  loc.upsert(binding("sip:a@x", "low", 1000, 100, 50));
  loc.upsert(binding("sip:a@x", "high", 1000, 900, 10));
  loc.upsert(binding("sip:a@x", "none-old", 1000, -1, 10));  // no q ranks as 1.0
  loc.upsert(binding("sip:a@x", "none-new", 1000, -1, 20));
  loc.upsert(binding("sip:a@x", "one", 1000, 1000, 15));
  loc.upsert(binding("sip:a@x", "zero", 1000, 0, 99));
  EXPECT_EQ(ids(loc.lookup("sip:a@x", 0)),
            (std::vector<std::string>{"none-new", "one", "none-old", "high", "low", "zero"}));
}

TEST(Location, LoadDropsLapsedRecords) {
  Location loc;
  std::vector<BindingRecord> records = {binding("sip:a@x", "gone", 100), binding("sip:a@x", "edge", 200),
                                        binding("sip:a@x", "live", 201), binding("sip:b@x", "gone", 50)};
  EXPECT_EQ(loc.load(records, 200), 1u);
  EXPECT_EQ(loc.aor_count(), 1u);
  EXPECT_EQ(loc.binding_count(), 1u);
  EXPECT_EQ(ids(loc.lookup("sip:a@x", 0)), (std::vector<std::string>{"live"}));
}

TEST(Location, ExpireRemovesAndReturnsLapsedBindings) {
  Location loc(4);
  loc.upsert(binding("sip:a@x", "1", 100));
  loc.upsert(binding("sip:a@x", "2", 300));
  loc.upsert(binding("sip:b@x", "1", 150));
  loc.upsert(binding("sip:c@x", "1", 400));
  EXPECT_TRUE(loc.expire(99).empty());
  auto removed = loc.expire(150);
  std::set<std::pair<std::string, std::string>> got;
  for (const auto& r : removed) got.emplace(r.aor, r.binding_id);
  EXPECT_EQ(got, (std::set<std::pair<std::string, std::string>>{{"sip:a@x", "1"}, {"sip:b@x", "1"}}));
  EXPECT_EQ(loc.aor_count(), 2u);
  EXPECT_EQ(loc.binding_count(), 2u);
  EXPECT_TRUE(loc.expire(150).empty());  // once only

  // A binding added after a sweep with an earlier expiry than anything left is still swept.
  loc.upsert(binding("sip:d@x", "1", 160));
  removed = loc.expire(170);
  ASSERT_EQ(removed.size(), 1u);
  EXPECT_EQ(removed[0].aor, "sip:d@x");
  EXPECT_EQ(loc.binding_count(), 2u);
}

TEST(Location, CommitAppliesOnlyOnTheSnapshotVersion) {
  Location loc;
  auto empty = loc.snapshot("sip:a@x");
  EXPECT_EQ(empty.version, 0u);
  EXPECT_TRUE(empty.bindings.empty());
  ASSERT_TRUE(loc.commit("sip:a@x", 0, {}, {binding("sip:a@x", "1", 1000), binding("sip:a@x", "2", 1000)}));
  EXPECT_EQ(loc.binding_count(), 2u);

  auto snap = loc.snapshot("sip:a@x");
  EXPECT_NE(snap.version, 0u);
  EXPECT_EQ(snap.bindings.size(), 2u);
  // A stale version (the empty one) changes nothing.
  EXPECT_FALSE(loc.commit("sip:a@x", 0, {}, {binding("sip:a@x", "3", 1000)}));
  EXPECT_EQ(loc.binding_count(), 2u);

  std::vector<std::string> remove = {"1", "missing"};
  ASSERT_TRUE(loc.commit("sip:a@x", snap.version, remove, {binding("sip:a@x", "3", 1000)}));
  EXPECT_EQ(ids(loc.lookup("sip:a@x", 0)), (std::vector<std::string>{"2", "3"}));
  // The same snapshot cannot be committed twice.
  EXPECT_FALSE(loc.commit("sip:a@x", snap.version, {}, {}));

  // An AOR emptied and made again never comes back at a version an old snapshot holds.
  auto before = loc.snapshot("sip:a@x");
  loc.remove_aor("sip:a@x");
  loc.upsert(binding("sip:a@x", "9", 1000));
  EXPECT_FALSE(loc.commit("sip:a@x", before.version, {}, {}));
}

TEST(Location, CommitRemovingEverythingErasesTheAor) {
  Location loc;
  loc.upsert(binding("sip:a@x", "1", 1000));
  auto snap = loc.snapshot("sip:a@x");
  std::vector<std::string> remove = {"1"};
  ASSERT_TRUE(loc.commit("sip:a@x", snap.version, remove, {}));
  EXPECT_EQ(loc.aor_count(), 0u);
  EXPECT_EQ(loc.binding_count(), 0u);
}

TEST(Location, FindByFlowFollowsFlowChanges) {
  Location loc;
  loc.upsert(binding("sip:a@x", "1", 1000, -1, 0, 4000));
  loc.upsert(binding("sip:b@x", "1", 1000, -1, 0, 4000));
  loc.upsert(binding("sip:c@x", "1", 1000, -1, 0, 4001));
  EXPECT_EQ(loc.find_by_flow(udp_flow(4000)).size(), 2u);
  EXPECT_EQ(loc.find_by_flow(udp_flow(4001)).size(), 1u);

  loc.upsert(binding("sip:a@x", "1", 1000, -1, 0, 4001));  // the UA moved to another flow
  auto on_4000 = loc.find_by_flow(udp_flow(4000));
  ASSERT_EQ(on_4000.size(), 1u);
  EXPECT_EQ(on_4000[0].aor, "sip:b@x");
  EXPECT_EQ(loc.find_by_flow(udp_flow(4001)).size(), 2u);

  loc.remove("sip:b@x", "1");
  EXPECT_TRUE(loc.find_by_flow(udp_flow(4000)).empty());
  loc.expire(1000);
  EXPECT_TRUE(loc.find_by_flow(udp_flow(4001)).empty());
}

TEST(Location, ListFiltersAndLimitsAcrossShards) {
  Location loc(8);
  for (int i = 0; i < 100; ++i) {
    std::string aor = "sip:user" + std::to_string(100 + i) + "@x";
    loc.upsert(binding(aor, "a", 1000));
    loc.upsert(binding(aor, "b", 1000));
  }
  EXPECT_EQ(loc.list("", 1000).size(), 200u);
  // The first ones by AOR, whichever shard holds them.
  auto first = loc.list("", 5);
  ASSERT_EQ(first.size(), 5u);
  EXPECT_EQ(first[0].aor, "sip:user100@x");
  EXPECT_EQ(first[1].aor, "sip:user100@x");
  EXPECT_EQ(first[2].aor, "sip:user101@x");
  EXPECT_EQ(first[4].aor, "sip:user102@x");
  EXPECT_TRUE(loc.list("", 0).empty());
  // By AOR text, or by Contact text.
  EXPECT_EQ(loc.list("user15", 1000).size(), 20u);  // user150..user159
  EXPECT_EQ(loc.list("sip:b@", 1000).size(), 100u);
  EXPECT_TRUE(loc.list("nobody", 1000).empty());
}

TEST(Location, ShardsSpreadAorsAndAgreeWithOneShard) {
  Location many(16), one(1);
  EXPECT_EQ(many.shard_count(), 16u);
  EXPECT_EQ(Location(0).shard_count(), 1u);
  std::set<size_t> used;
  for (int i = 0; i < 1000; ++i) {
    std::string aor = "sip:u" + std::to_string(i) + "@x";
    used.insert(many.shard_of(aor));
    EXPECT_EQ(many.shard_of(aor), many.shard_of(aor));
    many.upsert(binding(aor, "1", 100 + i));
    one.upsert(binding(aor, "1", 100 + i));
  }
  EXPECT_EQ(used.size(), 16u);
  EXPECT_EQ(many.aor_count(), 1000u);
  EXPECT_EQ(many.list("", 2000), one.list("", 2000));
  for (int i = 0; i < 1000; i += 97) {
    std::string aor = "sip:u" + std::to_string(i) + "@x";
    EXPECT_EQ(many.lookup(aor, 0), one.lookup(aor, 0));
  }
  EXPECT_EQ(many.expire(600).size(), one.expire(600).size());
  EXPECT_EQ(many.binding_count(), one.binding_count());
}

TEST(Location, ConcurrentUpsertsFromTwoThreads) {
  Location loc(4);
  constexpr int kPerThread = 2000;
  auto work = [&](const std::string& tag) {
    for (int i = 0; i < kPerThread; ++i) {
      // 20 AORs shared by both threads, so both hit the same shards and entries.
      loc.upsert(binding("sip:u" + std::to_string(i % 20) + "@x", tag + std::to_string(i), 1000 + i));
      if (i % 7 == 0) (void)loc.lookup("sip:u" + std::to_string((i + 3) % 20) + "@x", 0);
    }
  };
  std::thread t1(work, "t1-"), t2(work, "t2-");
  t1.join();
  t2.join();
  EXPECT_EQ(loc.aor_count(), 20u);
  EXPECT_EQ(loc.binding_count(), 2u * kPerThread);
  EXPECT_EQ(loc.list("", size_t{10} * kPerThread).size(), 2u * kPerThread);
}

TEST(Location, ConcurrentReadModifyWriteLosesNoUpdate) {
  // Both threads add bindings to the same AOR through snapshot + commit, retrying on a clash, as
  // the REGISTER handler does: without the version check one thread's additions would be lost
  // when it committed a set computed from a snapshot the other had changed since.
  Location loc(2);
  constexpr int kPerThread = 150;
  auto work = [&](const std::string& tag) {
    for (int i = 0; i < kPerThread; ++i) {
      for (;;) {
        auto snap = loc.snapshot("sip:shared@x");
        // Rewrite every binding (as a refresh would) and add one.
        std::vector<BindingRecord> upserts = snap.bindings;
        for (auto& b : upserts) b.cseq += 1;
        upserts.push_back(binding("sip:shared@x", tag + std::to_string(i), 1000));
        if (loc.commit("sip:shared@x", snap.version, {}, upserts)) break;
      }
    }
  };
  std::thread t1(work, "t1-"), t2(work, "t2-");
  t1.join();
  t2.join();
  auto all = loc.lookup("sip:shared@x", 0);
  ASSERT_EQ(all.size(), 2u * kPerThread);
  // Every commit rewrote all the bindings present then: the first binding was refreshed once by
  // each later commit, so the refresh counts add up to the number of commits after it.
  uint32_t max_cseq = 0;
  for (const auto& b : all) max_cseq = std::max(max_cseq, b.cseq);
  EXPECT_EQ(max_cseq, 2u * kPerThread - 1);
}

}  // namespace
}  // namespace pinhole::registrar
