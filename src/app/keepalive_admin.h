// The keepalive engine's admin view and its persistence glue (issue 5, "Observability" and
// "Persistence"): the JSON of GET /keepalive and GET /keepalive/<remote>, which `pinhole ctl
// keepalive list|show` prints, and the conversions between an engine endpoint
// (nat::KeepaliveEngine::EndpointView, steady-clock times) and the store's KeepaliveRecord
// (wall-clock unix seconds, which survive a restart).
//
//   GET /keepalive?limit=N     {"endpoints": [endpoint...], "total": N, "truncated": bool}
//   GET /keepalive/<remote>    {"remote": "ip:port", "endpoints": [...]}; 404 when none
// <remote> is "ip:port" or "[v6]:port", URL-encoded; an IPv4-mapped remote matches its IPv4 text.
// An endpoint is {transport, local_socket, remote ("ip:port"), connection_id, reasons: [{kind
// ("registration" | "subscription" | "dialog"), key (16 hex digits of the key hash), expires_in_s,
// expires_at (unix s)}], interval_s, misses, sent, replies, rebindings, suppressed,
// next_send_in_ms, next_send_at_ms (unix ms)}. Listed by remote, then transport, local socket,
// connection. Errors are {"error": "text"} with 400 (bad input) or 404 (no such endpoint).
//
// Threads: the functions are pure (they read only their arguments); call them anywhere. The
// snapshot the routes call runs on the admin server's thread and must collect the endpoints from
// the workers itself (each engine belongs to its worker's thread: post list() to each loop and
// wait), see add_keepalive_routes.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "app/admin_server.h"
#include "common/clock.h"
#include "nat/keepalive_engine.h"
#include "net/flow.h"
#include "store/records.h"

namespace pinhole::app {

using SystemTime = std::chrono::system_clock::time_point;

// One instant read on both clocks, to turn the engine's steady times into wall-clock ones.
struct KeepaliveClocks {
  TimePoint steady;
  SystemTime system;
};

// The wall-clock time of steady time `t` (as of `now`).
SystemTime to_system_time(TimePoint t, const KeepaliveClocks& now);
// Unix seconds, rounded up (an expiry must not move earlier by being stored).
int64_t to_unix_seconds_ceil(TimePoint t, const KeepaliveClocks& now);

// "registration", "subscription", "dialog".
std::string_view keepalive_reason_name(nat::KeepaliveReason reason);

// One endpoint as the API shows it.
nlohmann::json keepalive_endpoint_json(const nat::KeepaliveEngine::EndpointView& endpoint, const KeepaliveClocks& now);

// The answers of the two routes, from the endpoints of every worker (any order). `limit` caps the
// list (the rest is counted in "total" and flagged "truncated"); `remote_text` is the decoded
// path segment.
std::pair<int, std::string> keepalive_list_answer(std::vector<nat::KeepaliveEngine::EndpointView> endpoints,
                                                  const KeepaliveClocks& now, size_t limit);
std::pair<int, std::string> keepalive_show_answer(std::vector<nat::KeepaliveEngine::EndpointView> endpoints,
                                                  std::string_view remote_text, const KeepaliveClocks& now);

struct KeepaliveAdminOptions {
  // Both clocks, read together (default: steady_clock and system_clock). Tests fix them.
  std::function<KeepaliveClocks()> clocks;
  // GET /keepalive lists this many endpoints without `limit`, at most max_limit with it.
  size_t default_limit = 1000;
  size_t max_limit = 1'000'000;
};

// Collects the endpoints of every worker's engine; runs on the admin thread (see above).
using KeepaliveSnapshot = std::function<std::vector<nat::KeepaliveEngine::EndpointView>()>;

// Adds GET /keepalive and GET /keepalive/ (prefix) to `server`, before server.start(). The
// daemon calls it only when keepalives are on; without the routes the server answers 404 "not
// found", which `pinhole ctl keepalive` reports as keepalives being off. std::logic_error when a
// route is taken. `snapshot` is copied into the routes and must stay callable while the server runs.
void add_keepalive_routes(AdminServer& server, const KeepaliveSnapshot& snapshot, KeepaliveAdminOptions options = {});

// Persistence. The record the store keeps for an endpoint of this node: the flow, every reason
// (kind, key hash, expiry as unix seconds rounded up), the endpoint's current interval.
store::KeepaliveRecord to_keepalive_record(const nat::KeepaliveEngine::EndpointView& endpoint, std::string_view node,
                                           TimePoint steady_now, SystemTime system_now);

// What to hand back to KeepaliveEngine::set_reason_hashed for a reloaded record: one entry per
// reason still running at `system_now` (expired ones and kinds this pinhole does not know are
// left out), `remaining` = expires_at less `system_now` in whole seconds (>= 1 s). The caller decides which
// records to reload at all (only UDP flows: see store::KeepaliveRecord).
struct RestoredReason {
  net::Flow flow;
  nat::KeepaliveReason kind = nat::KeepaliveReason::kRegistration;
  uint64_t key_hash = 0;
  std::chrono::seconds remaining{0};
  friend bool operator==(const RestoredReason&, const RestoredReason&) = default;
};
std::vector<RestoredReason> reasons_to_restore(const store::KeepaliveRecord& record, SystemTime system_now);

}  // namespace pinhole::app
