// The edge proxy's settings, as validated by the config layer (src/app/config.h). Immutable
// after start-up (a reload builds a new snapshot).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nat/keepalive_engine.h"
#include "nat/nat_detect.h"
#include "net/address.h"
#include "net/transport.h"

namespace pinhole::proxy {

// When to add `received`/`rport` to the top Via and answer to the source port although the
// client did not ask for it with an empty `rport` (RFC 3581 §4 says only when asked; NATed
// clients that forget it get their responses lost in the NAT without this).
enum class ForceRport : uint8_t { kAlways, kNatDetected, kNever };

// Whose RFC 5923 `;alias` Via parameter is honoured (their connection reused for requests to
// their sent-by). Honouring it for anyone lets a client hijack traffic for an address it does not
// own, so the default is TLS (the peer proved its name) and configured trusted peers.
enum class AliasPolicy : uint8_t { kNever, kTlsAndTrusted, kTrusted, kAlways };

// The core the edge sits in front of (edge mode).
struct Upstream {
  // SIP URI resolved per RFC 3263 (NAPTR, SRV, A/AAAA), e.g. "sip:core.example.com;transport=tcp"
  // or "sip:203.0.113.20:5060". Requests from clients are sent there.
  std::string uri;
  // Addresses whose requests are "from upstream" (routed to clients by flow token) besides the
  // resolved targets of `uri` themselves.
  std::vector<net::Address> trusted_sources;
};

// The NAT keepalive engine (issue 5, docs/config.md `keepalive:`): which flows pinhole keeps open
// and how.
struct KeepaliveSettings {
  bool enabled = true;
  nat::KeepaliveConfig engine;
  // Ping only UAs whose requests show a NAT (the `nat:` tests), as Kamailio's nat_traversal does;
  // false: every client flow that registers, subscribes or is in a dialog.
  bool only_natted = true;
  // An endpoint found dead (max_misses pings unanswered) loses its registrar bindings (registrar
  // mode): calls to it fail over at once instead of ringing into a NAT that forgot it.
  bool remove_bindings_on_dead = true;
};

// Media anchoring (issue 6, docs/config.md `media:`): when the edge asks a relay to rewrite SDP.
// When a call gets the relay. kAuto: when either side shows a NAT or the two sides are in
// different networks; never when both sit behind the same public address (same LAN).
enum class MediaRelayMode : uint8_t { kAuto, kAlways, kNever };

struct MediaSettings {
  bool enabled = false;
  MediaRelayMode mode = MediaRelayMode::kAuto;
  // A relay that does not answer: true (default) forwards the SDP unchanged (the call may still
  // work, e.g. between public phones) and counts it; false answers 503.
  bool continue_without_relay = true;
  // Flags added to every offer and answer (docs/config.md lists the useful ones).
  std::vector<std::string> flags;
};

struct ProxyConfig {
  Upstream upstream;
  ForceRport force_rport = ForceRport::kAlways;
  nat::NatTestSet nat_tests = nat::NatTestSet::all();
  AliasPolicy alias = AliasPolicy::kTlsAndTrusted;
  std::vector<net::Address> trusted_peers;  // for the alias policy
  // Secret for the RFC 5626 flow tokens (raw bytes, >= 16); the previous one during a rotation.
  std::string flow_token_key;
  std::string flow_token_previous_key;
  // Our SIP domain names / addresses: a Request-URI or Route naming one of these (or a listener
  // address) is "us" (RFC 3261 §16.4).
  std::vector<std::string> local_domains;
  // Timer C (RFC 3261 §16.6 step 11): an INVITE branch with a provisional response but no final
  // one after this long is CANCELled and answered 408.
  uint32_t timer_c_seconds = 180;
  // How long a flow that carried a REGISTER is kept open when the registrar's answer does not say
  // (the learned expires is used otherwise); and how long a dialog keeps its flows.
  uint32_t default_registration_seconds = 3600;
  uint32_t dialog_flow_seconds = 7200;
  KeepaliveSettings keepalive;
  MediaSettings media;
  // Server header / User-Agent in responses we generate.
  std::string server_name = "pinhole";
};

}  // namespace pinhole::proxy
