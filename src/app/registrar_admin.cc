// RegistrarAdmin: the registrations/users/stats routes of the admin API (see registrar_admin.h).
#include "app/registrar_admin.h"

#include <algorithm>
#include <charconv>
#include <limits>
#include <optional>
#include <set>
#include <string_view>
#include <variant>

#include "net/transport.h"
#include "registrar/aor.h"
#include "registrar/digest.h"
#include "sip/charset.h"
#include "sip/host.h"
#include "sip/uri.h"

namespace pinhole::app {

using nlohmann::json;

namespace {

constexpr size_t kMaxUsername = 128;
constexpr size_t kMaxRealm = 253;  // a DNS name's limit
constexpr size_t kMaxPassword = 1024;

// Text a SIP peer sent (User-Agent, Contact...) may not be UTF-8; dump() must not throw on it.
std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

RegistrarAdmin::Answer error_answer(int status, std::string_view text) {
  return {status, dump(json{{"error", std::string(text)}})};
}

std::vector<std::string> nat_names(std::string_view nat) {
  std::vector<std::string> out;
  while (!nat.empty()) {
    size_t comma = nat.find(',');
    std::string_view name = nat.substr(0, comma);
    while (!name.empty() && name.front() == ' ') name.remove_prefix(1);
    while (!name.empty() && name.back() == ' ') name.remove_suffix(1);
    if (!name.empty()) out.emplace_back(name);
    nat = comma == std::string_view::npos ? std::string_view{} : nat.substr(comma + 1);
  }
  return out;
}

// A positive decimal no greater than `max` (larger values are clamped to it); nullopt otherwise.
std::optional<size_t> parse_limit(std::string_view text, size_t max) {
  if (text.empty() || text.size() > 20) return std::nullopt;
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec == std::errc::result_out_of_range && end == text.data() + text.size()) return max;
  if (ec != std::errc() || end != text.data() + text.size() || value == 0) return std::nullopt;
  return static_cast<size_t>(std::min<uint64_t>(value, max));
}

// The one segment after the route's prefix, as canonical AOR; an Answer when it is not usable.
std::variant<std::string, RegistrarAdmin::Answer> aor_from(const AdminRequest& request) {
  if (request.segments.size() != 1 || request.segments.front().empty()) {
    return error_answer(400, "expected /registrations/<URL-encoded AOR>");
  }
  auto aor = admin_canonical_aor(request.segments.front());
  if (!aor) return error_answer(400, "not a SIP address of record: " + request.segments.front());
  return std::move(*aor);
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = sip::ascii_lower(c);
  return out;
}

bool valid_realm(std::string_view realm) {
  return !realm.empty() && realm.size() <= kMaxRealm && sip::classify_host(realm).ok();
}

}  // namespace

Result<std::string> admin_canonical_aor(std::string_view text) {
  std::string uri_text(text);
  size_t colon = text.find(':');
  size_t at = text.find('@');
  // No scheme: a bare "user@host" (the ':' of a port or password comes after the '@').
  if (colon == std::string_view::npos || (at != std::string_view::npos && colon > at)) uri_text = "sip:" + uri_text;
  auto uri = sip::parse_uri(uri_text);
  if (!uri) return bad_request("not a SIP URI");
  auto aor = registrar::canonical_aor(*uri);
  if (!aor) return bad_request("not a SIP address of record");
  return std::move(*aor);
}

bool valid_username(std::string_view username) {
  if (username.empty() || username.size() > kMaxUsername) return false;
  return std::all_of(username.begin(), username.end(), [](char c) { return sip::is_user_char(c); });
}

RegistrarAdmin::RegistrarAdmin(registrar::Location& location, registrar::UserDirectory& users, store::Store& store,
                               RegistrarAdminOptions options)
    : location_(location), users_(users), store_(store), options_(std::move(options)) {
  if (!options_.wall_seconds) options_.wall_seconds = registrar::system_wall_seconds;
  if (options_.max_limit == 0) options_.max_limit = 1;
  options_.default_limit = std::clamp<size_t>(options_.default_limit, 1, options_.max_limit);
}

int64_t RegistrarAdmin::now() const { return options_.wall_seconds(); }

void RegistrarAdmin::add_routes(AdminServer& server) {
  server.add_route(HttpMethod::kGet, "/registrations", [this](const AdminRequest& r) { return list_registrations(r); });
  server.add_prefix_route(HttpMethod::kGet, "/registrations/",
                          [this](const AdminRequest& r) { return show_registrations(r); });
  server.add_prefix_route(HttpMethod::kDelete, "/registrations/",
                          [this](const AdminRequest& r) { return remove_registrations(r); });
  server.add_route(HttpMethod::kGet, "/users", [this](const AdminRequest& r) { return list_users(r); });
  server.add_route(HttpMethod::kPost, "/users", [this](const AdminRequest& r) { return add_user(r); });
  server.add_prefix_route(HttpMethod::kDelete, "/users/", [this](const AdminRequest& r) { return delete_user(r); });
  server.add_route(HttpMethod::kGet, "/stats", [this](const AdminRequest& r) { return stats(r); });
}

json RegistrarAdmin::binding_json(const store::BindingRecord& b, int64_t now) {
  json q = nullptr;
  if (b.q_milli >= 0) q = static_cast<double>(b.q_milli) / 1000.0;
  std::vector<std::string> nat = nat_names(b.nat);
  bool natted = !nat.empty();
  return json{
      {"aor", b.aor},
      {"binding_id", b.binding_id},
      {"contact", b.contact},
      {"expires_in", std::max<int64_t>(0, b.expires_at - now)},
      {"expires_at", b.expires_at},
      {"registered_at", b.registered_at},
      {"q", q},
      {"transport", std::string(net::transport_name(b.flow.transport))},
      {"received", b.flow.remote.to_string()},
      {"local_socket", b.flow.local_socket_id},
      {"connection_id", b.flow.connection_id},
      {"nat", std::move(nat)},
      {"natted", natted},
      {"node", b.node},
      {"instance", b.instance},
      {"reg_id", b.reg_id},
      {"user_agent", b.user_agent},
      {"path", b.path},
      {"call_id", b.call_id},
      {"cseq", b.cseq},
  };
}

RegistrarAdmin::Answer RegistrarAdmin::list_registrations(const AdminRequest& request) const {
  size_t limit = options_.default_limit;
  if (auto text = request.param("limit")) {
    auto parsed = parse_limit(*text, options_.max_limit);
    if (!parsed) return error_answer(400, "limit must be a positive integer");
    limit = *parsed;
  }
  std::string_view search = request.param("search").value_or("");
  int64_t t = now();
  // One more than asked, to tell whether there is more (limit <= max_limit: no overflow).
  std::vector<store::BindingRecord> found = location_.list(search, limit + 1);
  // Lapsed bindings wait for the next expiry sweep; lookups already ignore them, so does this.
  std::erase_if(found, [t](const store::BindingRecord& b) { return b.expires_at <= t; });
  bool truncated = found.size() > limit;
  if (truncated) found.resize(limit);
  json bindings = json::array();
  std::set<std::string_view> aors;
  for (const auto& b : found) {
    aors.insert(b.aor);
    bindings.push_back(binding_json(b, t));
  }
  json answer{{"aors", aors.size()}, {"bindings", std::move(bindings)}, {"truncated", truncated}};
  return {200, dump(answer)};
}

RegistrarAdmin::Answer RegistrarAdmin::show_registrations(const AdminRequest& request) const {
  auto aor = aor_from(request);
  if (auto* answer = std::get_if<Answer>(&aor)) return std::move(*answer);
  const std::string& key = std::get<std::string>(aor);
  int64_t t = now();
  std::vector<store::BindingRecord> found = location_.lookup(key, t);
  if (found.empty()) return error_answer(404, "no registrations for " + key);
  json bindings = json::array();
  for (const auto& b : found) bindings.push_back(binding_json(b, t));
  return {200, dump(json{{"aor", key}, {"bindings", std::move(bindings)}})};
}

RegistrarAdmin::Answer RegistrarAdmin::remove_registrations(const AdminRequest& request) {
  auto aor = aor_from(request);
  if (auto* answer = std::get_if<Answer>(&aor)) return std::move(*answer);
  const std::string& key = std::get<std::string>(aor);
  std::vector<store::BindingRecord> removed;
  if (auto binding = request.param("binding")) {
    // The record first (for on_removed): remove() only says whether it was there.
    auto snapshot = location_.snapshot(key);
    auto it = std::find_if(snapshot.bindings.begin(), snapshot.bindings.end(),
                           [&](const store::BindingRecord& b) { return b.binding_id == *binding; });
    if (it == snapshot.bindings.end() || !location_.remove(key, *binding)) {
      return error_answer(404, "no binding " + std::string(*binding) + " for " + key);
    }
    store_.remove_binding(key, *binding);
    removed.push_back(std::move(*it));
  } else {
    removed = location_.remove_aor(key);
    if (removed.empty()) return error_answer(404, "no registrations for " + key);
    store_.remove_aor(key);
  }
  if (options_.on_removed) options_.on_removed(removed);
  return {200, dump(json{{"aor", key}, {"removed", removed.size()}})};
}

RegistrarAdmin::Answer RegistrarAdmin::list_users(const AdminRequest& /*request*/) const {
  // The store, not the directory: in a cluster it also holds the users other nodes added.
  auto users = store_.list_users();
  if (!users) return error_answer(users.error().status >= 500 ? users.error().status : 503, users.error().what);
  json list = json::array();
  for (const auto& u : *users) list.push_back(json{{"username", u.username}, {"realm", u.realm}});
  return {200, dump(json{{"users", std::move(list)}})};
}

RegistrarAdmin::Answer RegistrarAdmin::add_user(const AdminRequest& request) {
  json body = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (!body.is_object())
    return error_answer(400, "the body must be a JSON object {\"username\", \"realm\", \"password\"}");
  auto text = [&](const char* name) -> std::optional<std::string> {
    auto it = body.find(name);
    if (it == body.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  std::optional<std::string> username = text("username");
  std::optional<std::string> realm = text("realm");
  std::optional<std::string> password = text("password");
  if (!username || !realm || !password) return error_answer(400, "username, realm and password are required strings");
  if (!valid_username(*username)) {
    return error_answer(400,
                        "username: 1 to 128 characters of a SIP URI user part (letters, digits, "
                        "-_.!~*'()&=+$,;?/), no '@', ':' or %-escapes");
  }
  // Lower case like the configured domains: the registrar challenges with the domain as realm.
  std::string realm_key = lower(*realm);
  if (!valid_realm(realm_key)) return error_answer(400, "realm: a SIP domain (host name or IP address)");
  if (password->empty() || password->size() > kMaxPassword) {
    return error_answer(400, "password: 1 to 1024 bytes");
  }
  auto md5 = registrar::ha1(registrar::DigestAlgorithm::kMd5, *username, realm_key, *password);
  auto sha256 = registrar::ha1(registrar::DigestAlgorithm::kSha256, *username, realm_key, *password);
  if (!md5 || !sha256) return error_answer(500, "computing the HA1s failed");
  store::UserRecord record{*username, realm_key, std::move(*md5), std::move(*sha256)};
  bool existed = users_.find(record.username, record.realm) != nullptr;
  // The store first: a user the directory knows but the store lost would vanish at the restart.
  Status stored = store_.put_user(record);
  if (!stored) return error_answer(stored.error().status == 400 ? 400 : 503, stored.error().what);
  Status put = users_.put(record);
  if (!put) return error_answer(put.error().status == 400 ? 400 : 500, put.error().what);
  return {existed ? 200 : 201,
          dump(json{{"username", record.username}, {"realm", record.realm}, {"created", !existed}})};
}

RegistrarAdmin::Answer RegistrarAdmin::delete_user(const AdminRequest& request) {
  if (request.segments.size() != 2 || request.segments[0].empty() || request.segments[1].empty()) {
    return error_answer(400, "expected /users/<realm>/<username>");
  }
  std::string realm = lower(request.segments[0]);
  const std::string& username = request.segments[1];
  auto deleted = store_.delete_user(username, realm);
  if (!deleted) return error_answer(503, deleted.error().what);
  bool removed = users_.remove(username, realm);
  if (!*deleted && !removed) return error_answer(404, "no user " + username + "@" + realm);
  return {200, dump(json{{"username", username}, {"realm", realm}, {"deleted", true}})};
}

RegistrarAdmin::Answer RegistrarAdmin::stats(const AdminRequest& /*request*/) const {
  // natted bindings are not counted anywhere else: walk the table (admin rate, not per packet).
  std::vector<store::BindingRecord> all = location_.list("", std::numeric_limits<size_t>::max());
  size_t natted = static_cast<size_t>(
      std::count_if(all.begin(), all.end(), [](const store::BindingRecord& b) { return !nat_names(b.nat).empty(); }));
  store::StoreStats s = store_.stats();
  json answer{
      {"registrations",
       {{"aors", location_.aor_count()}, {"bindings", location_.binding_count()}, {"natted_bindings", natted}}},
      {"users", users_.size()},
      {"store",
       {{"kind", std::string(store_.kind())},
        {"writes", s.writes},
        {"batches", s.batches},
        {"write_errors", s.write_errors},
        {"reconnects", s.reconnects},
        {"connection_failures", s.connection_failures},
        {"queued", s.queued},
        {"connected", s.connected},
        {"decode_errors", s.decode_errors}}},
  };
  if (options_.extra_stats) {
    json extra = options_.extra_stats();
    if (extra.is_object()) {
      for (auto& [key, value] : extra.items()) {
        if (!answer.contains(key)) answer[key] = value;
      }
    } else if (!extra.is_null()) {
      answer["extra"] = std::move(extra);
    }
  }
  return {200, dump(answer)};
}

}  // namespace pinhole::app
