// Store URLs: what parse_store_url accepts, and that open_store refuses bad URLs and unusable
// files with an error that names the problem.
#include "store/store_url.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "store/store.h"

namespace pinhole::store {
namespace {

StoreUrl must_parse(std::string_view url) {
  auto r = parse_store_url(url);
  EXPECT_TRUE(r.ok()) << url << ": " << (r.ok() ? "" : r.error().what);
  return r.ok() ? *r : StoreUrl{};
}

std::string error_of(std::string_view url) {
  auto r = parse_store_url(url);
  EXPECT_FALSE(r.ok()) << url << " was accepted";
  if (r.ok()) return {};
  EXPECT_EQ(r.error().status, 400) << url;
  return std::string(r.error().what);
}

TEST(StoreUrl, Memory) {
  EXPECT_EQ(must_parse("memory:").kind, StoreUrl::Kind::kMemory);
  EXPECT_NE(error_of("memory:x").find("takes nothing"), std::string::npos);
  error_of("memory");
}

TEST(StoreUrl, Sqlite) {
  StoreUrl abs = must_parse("sqlite:///var/lib/pinhole/store.db");
  EXPECT_EQ(abs.kind, StoreUrl::Kind::kSqlite);
  EXPECT_EQ(abs.path, "/var/lib/pinhole/store.db");
  EXPECT_EQ(must_parse("sqlite://data/store.db").path, "data/store.db");
  EXPECT_EQ(must_parse("sqlite://store.db").path, "store.db");
  EXPECT_NE(error_of("sqlite://").find("no database file"), std::string::npos);
  EXPECT_NE(error_of("sqlite:///").find("no database file"), std::string::npos);
  EXPECT_NE(error_of("sqlite:///var/lib/").find("directory"), std::string::npos);
  error_of("sqlite:/var/lib/pinhole.db");
}

TEST(StoreUrl, RedisHostsPortsAndDatabases) {
  StoreUrl full = must_parse("redis://10.0.0.5:6380/2");
  EXPECT_EQ(full.kind, StoreUrl::Kind::kRedis);
  EXPECT_EQ(full.host, "10.0.0.5");
  EXPECT_EQ(full.port, 6380);
  EXPECT_EQ(full.db, 2U);

  StoreUrl bare = must_parse("redis://redis.example.net");
  EXPECT_EQ(bare.host, "redis.example.net");
  EXPECT_EQ(bare.port, kDefaultRedisPort);
  EXPECT_EQ(bare.db, 0U);

  EXPECT_EQ(must_parse("redis://cache_1:7000/").port, 7000);
  EXPECT_EQ(must_parse("redis://cache_1/15").db, 15U);

  StoreUrl v6 = must_parse("redis://[2001:db8::7]:6390/3");
  EXPECT_EQ(v6.host, "2001:db8::7");
  EXPECT_EQ(v6.port, 6390);
  EXPECT_EQ(v6.db, 3U);
  EXPECT_EQ(must_parse("redis://[::1]").port, kDefaultRedisPort);
}

TEST(StoreUrl, RedisErrorsSayWhatIsWrong) {
  EXPECT_NE(error_of("redis://").find("no host"), std::string::npos);
  EXPECT_NE(error_of("redis://:6379/0").find("no host"), std::string::npos);
  EXPECT_NE(error_of("redis://h:0").find("port"), std::string::npos);
  EXPECT_NE(error_of("redis://h:65536").find("port"), std::string::npos);
  EXPECT_NE(error_of("redis://h:").find("port"), std::string::npos);
  EXPECT_NE(error_of("redis://h:63x").find("port"), std::string::npos);
  EXPECT_NE(error_of("redis://h:6379/x").find("database"), std::string::npos);
  EXPECT_NE(error_of("redis://h:6379/-1").find("database"), std::string::npos);
  EXPECT_NE(error_of("redis://h:6379/99999999999").find("database"), std::string::npos);
  EXPECT_NE(error_of("redis://[::1").find("unterminated"), std::string::npos);
  EXPECT_NE(error_of("redis://[10.0.0.1]:6379").find("IPv6"), std::string::npos);
  EXPECT_NE(error_of("redis://[::1]x").find("port"), std::string::npos);
  EXPECT_NE(error_of("redis://::1:6379").find("host"), std::string::npos);  // IPv6 needs brackets
  EXPECT_NE(error_of("redis://user:pw@h:6379").find("credentials"), std::string::npos);
  EXPECT_NE(error_of("redis://h:6379/0?timeout=1").find("query"), std::string::npos);
  EXPECT_NE(error_of("redis://h o/0").find("host"), std::string::npos);
}

TEST(StoreUrl, UnknownSchemesAreRefusedWithTheUrlQuoted) {
  std::string e = error_of("postgres://db/pinhole");
  EXPECT_NE(e.find("unknown scheme"), std::string::npos);
  EXPECT_NE(e.find("postgres://db/pinhole"), std::string::npos);
  error_of("");
  error_of("SQLITE:///x.db");
}

TEST(OpenStore, PicksTheImplementationFromTheUrl) {
  auto memory = open_store("memory:");
  ASSERT_TRUE(memory.ok());
  EXPECT_EQ((*memory)->kind(), "memory");

  char dir[] = "/tmp/pinhole-store-url-XXXXXX";
  ASSERT_NE(::mkdtemp(dir), nullptr);
  auto sqlite = open_store(std::string("sqlite://") + dir + "/s.db");
  ASSERT_TRUE(sqlite.ok()) << sqlite.error().what;
  EXPECT_EQ((*sqlite)->kind(), "sqlite");
  sqlite->reset();
  std::system((std::string("rm -rf '") + dir + "'").c_str());
}

TEST(OpenStore, BadUrlsAndUnusableFilesAreErrors) {
  auto bad = open_store("mysql://x");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().status, 400);

  // /dev/null is a file, so nothing can be created below it.
  auto no_dir = open_store("sqlite:///dev/null/pinhole/store.db");
  ASSERT_FALSE(no_dir.ok());
  EXPECT_EQ(no_dir.error().status, 500);
  EXPECT_NE(no_dir.error().what.find("/dev/null/pinhole"), std::string::npos) << no_dir.error().what;
  EXPECT_NE(no_dir.error().what.find("cannot create directory"), std::string::npos) << no_dir.error().what;
}

}  // namespace
}  // namespace pinhole::store
