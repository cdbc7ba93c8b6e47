// Reads the store URL of the config (`store.url`) into its parts; open_store() uses it, and the
// config checker can call it to refuse a bad URL before anything starts.
//
// Threads: pure function; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"

namespace pinhole::store {

inline constexpr uint16_t kDefaultRedisPort = 6379;

struct StoreUrl {
  enum class Kind : uint8_t { kMemory, kSqlite, kRedis };
  Kind kind = Kind::kMemory;
  std::string path;  // sqlite: the file, "/abs/path.db" or "relative/path.db" as written
  std::string host;  // redis: a name or an address literal, IPv6 without brackets
  uint16_t port = kDefaultRedisPort;
  uint32_t db = 0;  // redis: the database number (SELECT)
  friend bool operator==(const StoreUrl&, const StoreUrl&) = default;
};

// "memory:", "sqlite:///abs/path.db", "sqlite://relative/path.db", "redis://host[:port][/db]" with
// host a name ([A-Za-z0-9.-_]), a dotted quad or "[IPv6]". No credentials, query or fragment.
// Errors (status 400) quote the URL and say what is wrong with it.
Result<StoreUrl> parse_store_url(std::string_view url);

}  // namespace pinhole::store
