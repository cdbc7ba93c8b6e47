// Addresses of record: the canonical key a registrar files bindings under (RFC 3261 §10.3 step
// 5), and whether an AOR belongs to one of the domains this registrar serves.
//
// Threads: pure functions over their arguments.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "sip/uri.h"

namespace pinhole::registrar {

// "sip:user@host" or "sip:user@host:port" from a To (or Request-URI) URI, such that two URIs give
// the same AOR exactly when RFC 3261 §19.1.4 calls their user, host and port equal:
//   - the user part keeps its case; escapes of characters outside the RFC 2396 `reserved` set
//     are decoded and the escapes that remain are upper-cased (so "%61lice" is "alice" but "%40"
//     stays an escape, never a second '@');
//   - the host is lower-cased; a port is kept when written (sip:a@b and sip:a@b:5060 differ);
//   - the password, URI parameters and headers are dropped (§10.3 step 5).
// The scheme is always "sip": a sips To names the same user as a sip one (§10.3 keys by the
// user, not by how it is reached; Kamailio and OpenSIPS key by user@domain too). Whether a binding
// must be reached securely is carried by its own Contact URI and flow, not by its AOR.
// Errors (status 404, RFC 3261 §10.3 step 5: the AOR is not one this registrar can serve): a
// non-SIP scheme (tel:, others) or a URI without a user part.
Result<std::string> canonical_aor(const sip::Uri& to_uri);

// Whether the host (and port, when the configured domain has one) of a SIP URI names one of
// `domains`: host names compare case-insensitively, IPv6 references with or without brackets.
// A configured "example.com" matches any port; "example.com:5070" only that port. Non-SIP URIs
// and an empty list match nothing.
bool is_our_domain(const sip::Uri& uri, const std::vector<std::string>& domains);

}  // namespace pinhole::registrar
