// What the proxy needs to act as the registrar of its domains (registrar mode, docs/config.md
// `registrar:`): the location service, the REGISTER logic, digest authentication and the store
// that persists bindings. Absent (null in ProxyShared) in pure edge mode.
//
// Threads: built once by the daemon before the workers start; every member is safe to use from
// any worker thread (Location and UserDirectory lock internally, RegisterHandler keeps no state
// of its own, Store queues writes, DigestAuthenticator validates stateless nonces).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/metrics.h"
#include "registrar/digest.h"
#include "registrar/location.h"
#include "registrar/register_handler.h"
#include "registrar/registrar_config.h"
#include "registrar/user_directory.h"
#include "store/store.h"

namespace pinhole::proxy {

// Counters of the registrar path (DESIGN.md §4: every reject by name).
struct RegistrarMetrics {
  explicit RegistrarMetrics(MetricsRegistry& registry);
  Counter& registers_ok;
  Counter& registers_failed;
  Counter& challenges;         // 401/407 sent without a verdict (no or foreign credentials)
  Counter& auth_failures;      // wrong password, unknown user, replayed nc, tampered nonce
  Counter& stale_nonces;       // expired nonce with a right answer: re-challenged with stale=true
  Counter& forbidden_relay;    // a foreign target from an unauthenticated source (no open relay)
  Counter& identity_mismatch;  // authenticated as one user, asking for another's AOR / From
  Counter& lookups_found;
  Counter& lookups_empty;  // the AOR has no live binding: 480 / 404
};

struct RegistrarServices {
  const registrar::RegistrarConfig& config;
  registrar::Location& location;
  registrar::RegisterHandler& handler;
  const registrar::UserDirectory& users;
  registrar::DigestAuthenticator* auth = nullptr;  // null: authentication off
  bool auth_register = true;                       // REGISTER must authenticate
  bool auth_requests = true;                       // out-of-dialog requests from users must authenticate
  store::Store& store;
  std::string node_id;                    // written into bindings: which node holds the flow
  bool cluster = false;                   // the store is shared: bindings carry our Path for other nodes
  std::function<int64_t()> wall_seconds;  // unix time (binding expiry survives restarts)
  RegistrarMetrics& metrics;
};

}  // namespace pinhole::proxy
