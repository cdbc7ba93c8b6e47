// RegistrarConfig: the knobs of the registrar core (REGISTER processing, src/registrar/), read
// from the `registrar:` config section (docs/config.md) and validated there.
//
// Threads: a plain value; the daemon builds it once and hands it, immutable, to the registrar.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace pinhole::registrar {

struct RegistrarConfig {
  // The SIP domains whose users register here, lower case (IPv6 references as written, brackets
  // included). A REGISTER whose To names another domain is answered 404 (RFC 3261 §10.3 step 5).
  std::vector<std::string> domains;
  // Below this a non-zero request is refused with 423 and Min-Expires (RFC 3261 §10.3 step 7).
  // 60 s: RFC 3261 §10.2.8 suggests at least an hour is fine for a registrar, but NATed phones
  // refresh every minute or so to keep their pinhole open, and refusing them buys nothing.
  uint32_t min_expires = 60;
  // Longer requests are granted this instead: a day bounds how long a vanished phone lingers.
  uint32_t max_expires = 86400;
  // What a Contact without `expires` in a REGISTER without Expires gets: RFC 3261 §10.2.1.1's
  // suggested one hour.
  uint32_t default_expires = 3600;
  // A NATed client over UDP is granted at most this (never below min_expires): the short lease.
  // A phone whose NAT mapping was lost re-registers from its new port within it, and a stale
  // binding pointing at a dead mapping lives at most this long. 60 s matches the usual UDP
  // mapping lifetime of consumer NATs. 0 disables.
  uint32_t nat_udp_lease = 60;
  // Contacts one REGISTER may carry (more: 400). Real phones send one; 32 leaves room for
  // gateways that register several lines at once while keeping a request's work bounded.
  uint32_t max_contacts = 32;
  // Live bindings one AOR may hold (more: 403). 16 covers a user's desk phone, softphones and
  // mobiles with room to spare, and bounds what a lookup forks to.
  uint32_t max_bindings_per_aor = 16;
  // Flow-Timer (RFC 5626 §4.4.1) sent in a 200 that used outbound: how often the UA should send
  // its keepalives on the flow. 0 (the default): no header, the UA uses its own default (RFC 5626
  // says 120 s for TCP/TLS less a random part), which suits NATs that keep TCP mappings for long.
  uint32_t outbound_flow_timer = 0;
};

}  // namespace pinhole::registrar
