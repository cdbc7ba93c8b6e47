// RegistrarAdmin: the admin JSON API over the registrar's state — registrations (the Location),
// digest users (the UserDirectory and the store) and their counters. `pinhole ctl` is its client
// (src/app/ctl.h); operators may also use curl.
//
//   GET    /registrations?search=S&limit=N  {"aors": N, "bindings": [binding...], "truncated": bool}
//   GET    /registrations/<aor>             {"aor": "sip:...", "bindings": [...]}; 404 when none
//   DELETE /registrations/<aor>[?binding=ID] removes one binding or all of the AOR: {"aor", "removed": N}
//   GET    /users                           {"users": [{"username", "realm"}...]} (never the HA1s)
//   POST   /users {"username","realm","password"}  201 {"created": true} or 200 (password changed)
//   DELETE /users/<realm>/<username>        {"deleted": true}; 404 when none
//   GET    /stats                           {"registrations": {...}, "users": N, "store": {...}, ...}
// <aor> is URL-encoded ("sip%3Aalice%40example.com"); "alice@example.com" means
// "sip:alice@example.com"; either is canonicalised like a REGISTER's To (registrar/aor.h).
// A binding is {aor, binding_id, contact, expires_in, expires_at, registered_at, q (null: none),
// transport, received ("ip:port"), local_socket, connection_id, nat (array of NAT test names,
// empty: not NATed), natted, node, instance, reg_id, user_agent, path, call_id, cseq}.
// Errors are {"error": "text"} with 400 (bad input), 404 (nothing matched), 500/503 (the store
// failed).
//
// No authentication: the admin port is loopback-only by design (see admin_server.h).
//
// Threads: the handlers run on the admin server's thread; Location, UserDirectory and Store are
// thread-safe, so the workers keep using them meanwhile. The store's user calls block (fine on
// the admin thread, never on a worker's).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "app/admin_server.h"
#include "registrar/location.h"
#include "registrar/user_directory.h"
#include "store/records.h"
#include "store/store.h"

namespace pinhole::app {

struct RegistrarAdminOptions {
  // Counters of the daemon's own (REGISTER outcomes, auth verdicts...) added to GET /stats: the
  // members of the object it returns are added at the top level (the built-in keys win); any other
  // JSON value goes under "extra". Runs on the admin thread: read atomics, or lock briefly.
  std::function<nlohmann::json()> extra_stats;
  // Wall-clock unix seconds (expires_in, and what counts as lapsed). Default: the system clock.
  std::function<int64_t()> wall_seconds;
  // Called (admin thread) with the bindings DELETE /registrations removed, after they left the
  // Location and their deletion was queued to the store: the daemon drops their keepalives.
  std::function<void(const std::vector<store::BindingRecord>&)> on_removed;
  // GET /registrations lists this many bindings without `limit`, and at most max_limit with it.
  size_t default_limit = 1000;
  size_t max_limit = 100000;
};

class RegistrarAdmin {
 public:
  // A status and a JSON body, as AdminServer::RequestHandler returns them.
  using Answer = std::pair<int, std::string>;

  // `location`, `users` and `store` must outlive this object, which must outlive the AdminServer
  // it added its routes to (or that server's stop()).
  RegistrarAdmin(registrar::Location& location, registrar::UserDirectory& users, store::Store& store,
                 RegistrarAdminOptions options = {});

  // Registers the routes above on `server` (before server.start()). std::logic_error when one of
  // them is already taken.
  void add_routes(AdminServer& server);

  // The handlers, one per route (exposed for tests; add_routes binds them).
  Answer list_registrations(const AdminRequest& request) const;
  Answer show_registrations(const AdminRequest& request) const;
  Answer remove_registrations(const AdminRequest& request);
  Answer list_users(const AdminRequest& request) const;
  Answer add_user(const AdminRequest& request);
  Answer delete_user(const AdminRequest& request);
  Answer stats(const AdminRequest& request) const;

  // One binding as the API shows it, `now` being wall-clock unix seconds.
  static nlohmann::json binding_json(const store::BindingRecord& binding, int64_t now);

 private:
  int64_t now() const;

  registrar::Location& location_;
  registrar::UserDirectory& users_;
  store::Store& store_;
  RegistrarAdminOptions options_;
};

// The AOR an operator typed ("sip:alice@example.com", "alice@example.com", "SIP:alice@Example.COM")
// as the registrar files it. Error (400) when it is not a SIP URI with a user part.
Result<std::string> admin_canonical_aor(std::string_view text);

// Whether `username` may be added: 1 to 128 characters of RFC 3261 `user` without escapes (so no
// '@', ':' or '%'). The digest username a phone sends is the plain text, so escapes are refused
// rather than guessed at.
bool valid_username(std::string_view username);

}  // namespace pinhole::app
