// Public-address learning and binding recognition for REGISTER responses (RFC 3581, RFC 5626):
// what the registrar saw as our address (received/rport of the top Via), and which Contact of a
// 200 OK is ours among the bindings of other devices of the same AOR.
//
// Threads: plain functions on parsed messages; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "sip/message.h"

namespace pinhole::ua {

// host:port as it goes into a Contact or Via (IPv6 in brackets).
struct HostPort {
  std::string host;
  uint16_t port = 0;
  friend bool operator==(const HostPort&, const HostPort&) = default;
  std::string to_string() const { return host + ":" + std::to_string(port); }
};

// The address the server saw the request come from: `received` (else the sent-by host) and the
// rport value (else the sent-by port), when the top Via carries `received` or an rport value;
// nullopt when it carries neither (the server told us nothing). A malformed received (not an IP
// address) is ignored: never put something a peer wrote unchecked into our Contact.
std::optional<HostPort> learned_address(const sip::Via& top_via);

// What identifies our binding in a 200 OK to REGISTER.
struct OurBinding {
  std::string_view instance;     // "<urn:uuid:...>" (as inside the quotes), empty when not outbound
  uint32_t reg_id = 0;           // 0: not outbound
  std::string_view contact_uri;  // the Contact URI we sent, e.g. "sip:alice@192.0.2.1:5060;ob"
};

struct BindingMatch {
  bool found = false;
  std::optional<uint32_t> expires;  // its expires parameter, when present and valid
  size_t foreign = 0;               // Contacts that are not ours (other devices)
};

// Finds our binding: by +sip.instance and reg-id when outbound (a registrar may rewrite the URI),
// else by URI equality (RFC 3261 §19.1.4). Other Contacts are only counted: they never replace
// ours.
BindingMatch find_our_binding(std::span<const sip::Contact> contacts, const OurBinding& ours);

}  // namespace pinhole::ua
