// The keepalive admin routes and the engine <-> store conversions (see keepalive_admin.h).
#include "app/keepalive_admin.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <tuple>

#include "net/address.h"
#include "net/transport.h"

namespace pinhole::app {

using nlohmann::json;
using EndpointView = nat::KeepaliveEngine::EndpointView;

namespace {

constexpr std::string_view kHex = "0123456789abcdef";

std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

std::pair<int, std::string> error_answer(int status, const std::string& text) {
  return {status, dump(json{{"error", text}})};
}

std::string hex16(uint64_t v) {
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kHex[v & 0xF];
    v >>= 4;
  }
  return out;
}

// Rounded towards zero, in the unit asked for.
template <typename Unit>
int64_t count_in(Duration d) {
  return std::chrono::duration_cast<Unit>(d).count();
}

int64_t unix_floor_seconds(SystemTime t) {
  return std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
}

// The order of the listing: by remote, then the rest of the flow.
void sort_endpoints(std::vector<EndpointView>& endpoints) {
  std::sort(endpoints.begin(), endpoints.end(), [](const EndpointView& a, const EndpointView& b) {
    return std::tie(a.flow.remote, a.flow.transport, a.flow.local_socket_id, a.flow.connection_id) <
           std::tie(b.flow.remote, b.flow.transport, b.flow.local_socket_id, b.flow.connection_id);
  });
}

// A positive decimal, clamped to `max`; nullopt otherwise.
std::optional<size_t> parse_limit(std::string_view text, size_t max) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range && end == text.data() + text.size()) return max;
  if (ec != std::errc() || end != text.data() + text.size() || value == 0) return std::nullopt;
  return static_cast<size_t>(std::min<uint64_t>(value, max));
}

KeepaliveClocks system_clocks() { return {MonoClock::now(), std::chrono::system_clock::now()}; }

}  // namespace

SystemTime to_system_time(TimePoint t, const KeepaliveClocks& now) {
  return now.system + std::chrono::duration_cast<SystemTime::duration>(t - now.steady);
}

int64_t to_unix_seconds_ceil(TimePoint t, const KeepaliveClocks& now) {
  return std::chrono::ceil<std::chrono::seconds>(to_system_time(t, now).time_since_epoch()).count();
}

std::string_view keepalive_reason_name(nat::KeepaliveReason reason) {
  switch (reason) {
    case nat::KeepaliveReason::kRegistration:
      return "registration";
    case nat::KeepaliveReason::kSubscription:
      return "subscription";
    case nat::KeepaliveReason::kDialog:
      return "dialog";
  }
  return "unknown";
}

json keepalive_endpoint_json(const EndpointView& e, const KeepaliveClocks& now) {
  json reasons = json::array();
  // `details` carries the same reasons as `reasons`, with the hash and the expiry: enough alone.
  for (const nat::KeepaliveEngine::ReasonDetail& d : e.details) {
    reasons.push_back(json{
        {"kind", std::string(keepalive_reason_name(d.reason))},
        {"key", hex16(d.key_hash)},
        {"expires_in_s", std::max<int64_t>(0, count_in<std::chrono::seconds>(d.expires - now.steady))},
        {"expires_at", to_unix_seconds_ceil(d.expires, now)},
    });
  }
  return json{
      {"transport", std::string(net::transport_name(e.flow.transport))},
      {"local_socket", e.flow.local_socket_id},
      {"remote", e.flow.remote.to_string()},
      {"connection_id", e.flow.connection_id},
      {"reasons", std::move(reasons)},
      {"interval_s", e.interval.count()},
      {"misses", e.misses},
      {"sent", e.sent},
      {"replies", e.replies},
      {"rebindings", e.rebindings},
      {"suppressed", e.suppressed},
      {"next_send_in_ms", std::max<int64_t>(0, count_in<std::chrono::milliseconds>(e.next_send - now.steady))},
      {"next_send_at_ms",
       std::chrono::floor<std::chrono::milliseconds>(to_system_time(e.next_send, now).time_since_epoch()).count()},
  };
}

std::pair<int, std::string> keepalive_list_answer(std::vector<EndpointView> endpoints, const KeepaliveClocks& now,
                                                  size_t limit) {
  sort_endpoints(endpoints);
  size_t total = endpoints.size();
  bool truncated = total > limit;
  if (truncated) endpoints.resize(limit);
  json list = json::array();
  for (const EndpointView& e : endpoints) list.push_back(keepalive_endpoint_json(e, now));
  return {200, dump(json{{"endpoints", std::move(list)}, {"total", total}, {"truncated", truncated}})};
}

std::pair<int, std::string> keepalive_show_answer(std::vector<EndpointView> endpoints, std::string_view remote_text,
                                                  const KeepaliveClocks& now) {
  Result<net::Endpoint> remote = net::Endpoint::parse(remote_text);
  if (!remote) {
    return error_answer(
        400, "expected /keepalive/<ip:port> (IPv6 as [addr]:port), got \"" + std::string(remote_text) + "\"");
  }
  // A dual-stack socket reports IPv4 peers as ::ffff:a.b.c.d; the operator types a.b.c.d.
  net::Endpoint wanted = remote->unmapped();
  std::erase_if(endpoints, [&](const EndpointView& e) { return e.flow.remote.unmapped() != wanted; });
  if (endpoints.empty()) return error_answer(404, "no keepalive endpoint towards " + wanted.to_string());
  sort_endpoints(endpoints);
  json list = json::array();
  for (const EndpointView& e : endpoints) list.push_back(keepalive_endpoint_json(e, now));
  return {200, dump(json{{"remote", wanted.to_string()}, {"endpoints", std::move(list)}})};
}

void add_keepalive_routes(AdminServer& server, const KeepaliveSnapshot& snapshot, KeepaliveAdminOptions options) {
  if (!options.clocks) options.clocks = system_clocks;
  if (options.max_limit == 0) options.max_limit = 1;
  options.default_limit = std::clamp<size_t>(options.default_limit, 1, options.max_limit);
  server.add_route(HttpMethod::kGet, "/keepalive", [snapshot, options](const AdminRequest& request) {
    size_t limit = options.default_limit;
    if (auto text = request.param("limit")) {
      auto parsed = parse_limit(*text, options.max_limit);
      if (!parsed) return error_answer(400, "limit must be a positive integer");
      limit = *parsed;
    }
    return keepalive_list_answer(snapshot(), options.clocks(), limit);
  });
  server.add_prefix_route(HttpMethod::kGet, "/keepalive/", [snapshot, options](const AdminRequest& request) {
    if (request.segments.size() != 1 || request.segments.front().empty())
      return error_answer(400, "expected /keepalive/<ip:port> (IPv6 as [addr]:port)");
    return keepalive_show_answer(snapshot(), request.segments.front(), options.clocks());
  });
}

store::KeepaliveRecord to_keepalive_record(const EndpointView& endpoint, std::string_view node, TimePoint steady_now,
                                           SystemTime system_now) {
  KeepaliveClocks now{steady_now, system_now};
  store::KeepaliveRecord record;
  record.node = std::string(node);
  record.flow = endpoint.flow;
  record.interval_s = static_cast<uint32_t>(std::max<int64_t>(0, endpoint.interval.count()));
  record.reasons.reserve(endpoint.details.size());
  for (const nat::KeepaliveEngine::ReasonDetail& d : endpoint.details)
    record.reasons.push_back({static_cast<uint8_t>(d.reason), d.key_hash, to_unix_seconds_ceil(d.expires, now)});
  return record;
}

std::vector<RestoredReason> reasons_to_restore(const store::KeepaliveRecord& record, SystemTime system_now) {
  int64_t now = unix_floor_seconds(system_now);
  std::vector<RestoredReason> out;
  for (const store::KeepaliveReasonRecord& r : record.reasons) {
    // Stored by another (newer) pinhole, or corrupt: set_reason_hashed must never see it.
    if (r.kind >= nat::kKeepaliveReasonCount) continue;
    if (r.expires_at <= now) continue;
    out.push_back(RestoredReason{record.flow, static_cast<nat::KeepaliveReason>(r.kind), r.key_hash,
                                 std::chrono::seconds(r.expires_at - now)});
  }
  return out;
}

}  // namespace pinhole::app
