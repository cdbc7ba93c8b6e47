#include "proxy/branch.h"

#include <charconv>

namespace pinhole::proxy {
namespace {

constexpr std::string_view kPrefix = "z9hG4bKph";

uint32_t fnv1a(uint32_t h, std::string_view text) {
  for (char c : text) {
    h ^= static_cast<unsigned char>(c);
    h *= 16777619u;
  }
  return h;
}

template <typename T>
void append_hex(std::string& out, T value, int width) {
  char buf[20];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value, 16);
  for (int pad = width - static_cast<int>(end - buf); pad > 0; --pad) out.push_back('0');
  out.append(buf, end);
}

template <typename T>
std::optional<T> parse_hex(std::string_view text) {
  T value{};
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
  if (ec != std::errc{} || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

}  // namespace

std::string make_branch(uint8_t worker, uint32_t loop_hash, uint64_t counter) {
  std::string out(kPrefix);
  out.reserve(40);
  append_hex(out, worker, 2);
  append_hex(out, loop_hash, 8);
  out.push_back('.');
  append_hex(out, counter, 1);
  return out;
}

std::optional<uint8_t> branch_worker(std::string_view branch) {
  if (!branch.starts_with(kPrefix) || branch.size() < kPrefix.size() + 11) return std::nullopt;
  return parse_hex<uint8_t>(branch.substr(kPrefix.size(), 2));
}

std::optional<uint32_t> branch_loop_hash(std::string_view branch) {
  if (!branch.starts_with(kPrefix) || branch.size() < kPrefix.size() + 11 || branch[kPrefix.size() + 10] != '.') {
    return std::nullopt;
  }
  return parse_hex<uint32_t>(branch.substr(kPrefix.size() + 2, 8));
}

uint32_t loop_hash(const sip::Message& request) {
  uint32_t h = 2166136261u;
  h = fnv1a(h, request.request_uri().raw);
  if (auto from = request.from(); from.ok() && *from) h = fnv1a(h, (*from)->tag);
  h = fnv1a(h, "|");
  if (auto to = request.to(); to.ok() && *to) h = fnv1a(h, (*to)->tag);
  h = fnv1a(h, "|");
  if (auto id = request.call_id(); id.ok()) h = fnv1a(h, *id);
  h = fnv1a(h, "|");
  if (auto cseq = request.cseq(); cseq.ok()) h = fnv1a(h, std::to_string(cseq->number));
  if (auto routes = request.routes(); routes.ok() && !routes->empty()) h = fnv1a(h, routes->front().raw);
  if (const auto* pr = request.header(sip::HeaderKind::kProxyRequire)) h = fnv1a(h, pr->value);
  return h;
}

std::string stateless_branch(uint8_t worker, std::string_view incoming_branch) {
  return make_branch(worker, fnv1a(2166136261u, incoming_branch), 0);
}

}  // namespace pinhole::proxy
