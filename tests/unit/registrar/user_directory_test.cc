// UserDirectory: the copy-on-write user table digest authentication reads on every worker.
#include "registrar/user_directory.h"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace pinhole::registrar {
namespace {

constexpr std::string_view kMd5 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
constexpr std::string_view kSha = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

store::UserRecord user(std::string name, std::string realm = "example.com") {
  return store::UserRecord{std::move(name), std::move(realm), std::string(kMd5), std::string(kSha)};
}

TEST(UserDirectory, PutFindRemove) {
  UserDirectory dir;
  EXPECT_EQ(dir.size(), 0U);
  EXPECT_EQ(dir.find("alice", "example.com"), nullptr);
  ASSERT_TRUE(dir.put(user("alice")).ok());
  ASSERT_TRUE(dir.put(user("alice", "other.org")).ok());
  EXPECT_EQ(dir.size(), 2U);
  auto found = dir.find("alice", "example.com");
  ASSERT_NE(found, nullptr);
  EXPECT_EQ(*found, user("alice"));
  // Names and realms compare exactly: the HA1 hashes them as written.
  EXPECT_EQ(dir.find("Alice", "example.com"), nullptr);
  EXPECT_EQ(dir.find("alice", "EXAMPLE.COM"), nullptr);
  EXPECT_EQ(dir.find("alice", "example.co"), nullptr);

  EXPECT_TRUE(dir.remove("alice", "example.com"));
  EXPECT_FALSE(dir.remove("alice", "example.com"));
  EXPECT_EQ(dir.find("alice", "example.com"), nullptr);
  EXPECT_NE(dir.find("alice", "other.org"), nullptr);
  EXPECT_EQ(dir.size(), 1U);
  // A record handed out stays valid after the user is gone from the table.
  EXPECT_EQ(found->username, "alice");
  EXPECT_EQ(found->ha1_sha256, kSha);
}

TEST(UserDirectory, PutReplaces) {
  UserDirectory dir;
  ASSERT_TRUE(dir.put(user("alice")).ok());
  auto changed = user("alice");
  changed.ha1_md5 = std::string(32, 'c');
  ASSERT_TRUE(dir.put(changed).ok());
  EXPECT_EQ(dir.size(), 1U);
  EXPECT_EQ(dir.find("alice", "example.com")->ha1_md5, std::string(32, 'c'));
}

TEST(UserDirectory, PutChecksAndNormalisesHa1) {
  UserDirectory dir;
  auto upper = user("alice");
  upper.ha1_md5 = "0123456789ABCDEF0123456789abcdef";
  ASSERT_TRUE(dir.put(upper).ok());
  EXPECT_EQ(dir.find("alice", "example.com")->ha1_md5, "0123456789abcdef0123456789abcdef");

  auto only_sha = user("bob");
  only_sha.ha1_md5.clear();
  EXPECT_TRUE(dir.put(only_sha).ok());

  auto bad = user("carol");
  bad.ha1_md5 = std::string(31, 'a');
  EXPECT_EQ(dir.put(bad).error(), kUserBadHa1);
  bad = user("carol");
  bad.ha1_sha256 = std::string(63, 'a') + "g";
  EXPECT_EQ(dir.put(bad).error(), kUserBadHa1);
  bad = user("carol");
  bad.ha1_sha256 = std::string(kMd5);  // an MD5-sized value in the SHA-256 slot
  EXPECT_EQ(dir.put(bad).error(), kUserBadHa1);
  bad = user("carol");
  bad.ha1_md5.clear();
  bad.ha1_sha256.clear();
  EXPECT_EQ(dir.put(bad).error(), kUserNoHa1);
  EXPECT_EQ(dir.put(user("")).error(), kUserBadName);
  EXPECT_EQ(dir.put(user("carol", "")).error(), kUserBadName);
  EXPECT_EQ(dir.find("carol", "example.com"), nullptr);
  EXPECT_EQ(dir.size(), 2U);
}

TEST(UserDirectory, ReplaceAllSkipsInvalidRecords) {
  UserDirectory dir;
  ASSERT_TRUE(dir.put(user("old")).ok());
  auto broken = user("broken");
  broken.ha1_md5 = "not hex";
  auto second_dave = user("dave");
  second_dave.ha1_md5 = std::string(32, 'd');
  size_t skipped = dir.replace_all({user("dave"), broken, user("erin", "other.org"), second_dave});
  EXPECT_EQ(skipped, 1U);
  EXPECT_EQ(dir.size(), 2U);
  EXPECT_EQ(dir.find("old", "example.com"), nullptr);  // replaced, not merged
  EXPECT_EQ(dir.find("broken", "example.com"), nullptr);
  ASSERT_NE(dir.find("dave", "example.com"), nullptr);
  EXPECT_EQ(dir.find("dave", "example.com")->ha1_md5, std::string(32, 'd'));  // the later duplicate wins
  EXPECT_EQ(dir.replace_all({}), 0U);
  EXPECT_EQ(dir.size(), 0U);
}

TEST(UserDirectory, ResyncDoesNotUndoAChangeMadeWhileTheStoreWasRead) {
  UserDirectory dir;
  ASSERT_TRUE(dir.put(user("alice")).ok());
  uint64_t before = dir.generation();
  // While the resync reads the store (which still lacks bob), bob is added here.
  ASSERT_TRUE(dir.put(user("bob")).ok());
  EXPECT_EQ(dir.replace_all_if(before, {user("alice")}), std::nullopt);
  EXPECT_NE(dir.find("bob", "example.com"), nullptr);
  // With no change in between the store's list wins (a user removed on another node goes).
  EXPECT_EQ(dir.replace_all_if(dir.generation(), {user("bob")}), std::optional<size_t>(0));
  EXPECT_EQ(dir.find("alice", "example.com"), nullptr);
  EXPECT_NE(dir.find("bob", "example.com"), nullptr);
}

TEST(UserDirectory, ListIsOrderedByRealmThenUsername) {
  UserDirectory dir;
  for (auto [name, realm] : {std::pair{"zed", "a.org"}, {"bob", "b.org"}, {"amy", "b.org"}, {"carl", "a.org"}})
    ASSERT_TRUE(dir.put(user(name, realm)).ok());
  std::vector<std::string> seen;
  for (const auto& u : dir.list()) seen.push_back(u.realm + "/" + u.username);
  EXPECT_EQ(seen, (std::vector<std::string>{"a.org/carl", "a.org/zed", "b.org/amy", "b.org/bob"}));
}

// Readers on two threads look up a user that is always present while a writer keeps adding and
// removing others: a reader never misses it and never sees a half-written table.
TEST(UserDirectory, ConcurrentReadersAndWriter) {
  UserDirectory dir;
  ASSERT_TRUE(dir.put(user("stable")).ok());
  std::atomic<bool> done{false};
  std::atomic<int> misses{0};
  std::atomic<long> lookups{0};
  auto reader = [&] {
    while (!done.load()) {
      auto u = dir.find("stable", "example.com");
      if (u == nullptr || u->ha1_sha256 != kSha) ++misses;
      auto churn = dir.find("churn-7", "example.com");
      if (churn != nullptr && churn->username != "churn-7") ++misses;
      ++lookups;
    }
  };
  std::thread r1(reader), r2(reader);
  std::thread w2([&] {
    for (int i = 0; i < 300; ++i) (void)dir.put(user("other-" + std::to_string(i), "other.org"));
  });
  for (int i = 0; i < 300; ++i) {
    EXPECT_TRUE(dir.put(user("churn-" + std::to_string(i % 10))).ok());
    if (i % 3 == 0) dir.remove("churn-" + std::to_string(i % 10), "example.com");
  }
  w2.join();
  done = true;
  r1.join();
  r2.join();
  EXPECT_EQ(misses.load(), 0);
  EXPECT_GT(lookups.load(), 0);
  // Both writers' changes survived each other (writers are serialised, none lost).
  for (int i = 0; i < 300; ++i) EXPECT_NE(dir.find("other-" + std::to_string(i), "other.org"), nullptr) << i;
  EXPECT_NE(dir.find("stable", "example.com"), nullptr);
  // Each churn user is present exactly when its last write (i = 290..299) was not followed by a removal.
  for (int i = 290; i < 300; ++i)
    EXPECT_EQ(dir.find("churn-" + std::to_string(i % 10), "example.com") != nullptr, i % 3 != 0) << i;
  EXPECT_EQ(dir.size(), 1U + 300U + 7U);
}

}  // namespace
}  // namespace pinhole::registrar
