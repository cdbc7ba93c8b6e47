// Store URL parsing (see store_url.h).
#include "store/store_url.h"

#include <charconv>
#include <string>

#include "common/startup_error.h"
#include "net/address.h"

namespace pinhole::store {
namespace {

constexpr std::string_view kMemoryScheme = "memory:";
constexpr std::string_view kSqliteScheme = "sqlite://";
constexpr std::string_view kRedisScheme = "redis://";
// Redis ships 16 databases; a server may be configured with more, never anywhere near this.
constexpr uint32_t kMaxRedisDb = 1'000'000;

Error url_error(std::string_view url, std::string_view why) {
  return startup_error(400, "store URL \"" + std::string(url) + "\": " + std::string(why));
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

template <typename T>
bool parse_decimal(std::string_view text, T max, T& out) {
  if (text.empty() || text.size() > 10) return false;
  for (char c : text)
    if (c < '0' || c > '9') return false;
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v > max) return false;
  out = static_cast<T>(v);
  return true;
}

Result<StoreUrl> parse_redis(std::string_view url, std::string_view rest) {
  StoreUrl out;
  out.kind = StoreUrl::Kind::kRedis;
  if (rest.find('@') != std::string_view::npos) return url_error(url, "credentials in a redis URL are not supported");
  if (rest.find_first_of("?#") != std::string_view::npos)
    return url_error(url, "a redis URL takes no query or fragment");
  std::string_view authority = rest;
  std::string_view db;
  bool has_db = false;
  if (size_t slash = rest.find('/'); slash != std::string_view::npos) {
    authority = rest.substr(0, slash);
    db = rest.substr(slash + 1);
    has_db = true;
  }
  std::string_view host;
  std::string_view port;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return url_error(url, "unterminated [IPv6] host");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return url_error(url, "expected ':port' after the [IPv6] host");
      port = after.substr(1);
      has_port = true;
    }
    auto address = net::Address::parse(host);
    if (!address || !address->is_v6()) return url_error(url, "the host in brackets is not an IPv6 address");
  } else {
    size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      has_port = true;
    }
    if (host.empty()) return url_error(url, "no host");
    for (char c : host)
      if (!is_name_char(c)) return url_error(url, "the host is neither a name, an IPv4 address nor an [IPv6] one");
  }
  if (host.empty()) return url_error(url, "no host");
  out.host = std::string(host);
  if (has_port && (!parse_decimal<uint16_t>(port, 65535, out.port) || out.port == 0))
    return url_error(url, "the port is not a number from 1 to 65535");
  if (has_db && !db.empty() && !parse_decimal<uint32_t>(db, kMaxRedisDb, out.db))
    return url_error(url, "the database is not a small decimal number");
  return out;
}

}  // namespace

Result<StoreUrl> parse_store_url(std::string_view url) {
  if (url.starts_with(kMemoryScheme)) {
    if (url.size() != kMemoryScheme.size()) return url_error(url, "\"memory:\" takes nothing after the colon");
    return StoreUrl{};
  }
  if (url.starts_with(kSqliteScheme)) {
    std::string_view path = url.substr(kSqliteScheme.size());
    if (path.empty() || path == "/") return url_error(url, "no database file (use sqlite:///abs/path.db)");
    if (path.back() == '/') return url_error(url, "the database path names a directory");
    if (path.find('\0') != std::string_view::npos) return url_error(url, "NUL byte in the path");
    StoreUrl out;
    out.kind = StoreUrl::Kind::kSqlite;
    out.path = std::string(path);
    return out;
  }
  if (url.starts_with(kRedisScheme)) return parse_redis(url, url.substr(kRedisScheme.size()));
  return url_error(url, "unknown scheme (use memory:, sqlite:///path or redis://host:port/db)");
}

}  // namespace pinhole::store
