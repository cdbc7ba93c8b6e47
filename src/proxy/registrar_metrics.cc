// The registrar path's counters (declared in registrar_services.h).
#include "proxy/registrar_services.h"

namespace pinhole::proxy {

namespace {
Counter& outcome(MetricsRegistry& r, const char* result) {
  return r.counter("pinhole_registrar_registers_total", "REGISTER requests answered by the registrar, by result",
                   {{"result", result}});
}
Counter& auth(MetricsRegistry& r, const char* what) {
  return r.counter("pinhole_auth_total", "Digest authentication outcomes that did not admit the request",
                   {{"outcome", what}});
}
Counter& lookup(MetricsRegistry& r, const char* result) {
  return r.counter("pinhole_registrar_lookups_total", "Requests for our users, by whether a live binding was found",
                   {{"result", result}});
}
}  // namespace

RegistrarMetrics::RegistrarMetrics(MetricsRegistry& registry)
    : registers_ok(outcome(registry, "ok")),
      registers_failed(outcome(registry, "failed")),
      challenges(auth(registry, "challenge")),
      auth_failures(auth(registry, "failed")),
      stale_nonces(auth(registry, "stale")),
      forbidden_relay(registry.counter("pinhole_forbidden_relay_total",
                                       "Requests refused 403: a foreign target or domain asked by a non-user")),
      identity_mismatch(auth(registry, "identity_mismatch")),
      lookups_found(lookup(registry, "found")),
      lookups_empty(lookup(registry, "empty")) {}

}  // namespace pinhole::proxy
