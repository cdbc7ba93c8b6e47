// Authorization / Proxy-Authorization credentials and WWW-/Proxy-Authenticate challenges
// (RFC 3261 §25 with RFC 8760 algorithms). Unknown schemes parse as scheme + auth-params.
#pragma once

#include <string_view>

#include "common/result.h"

namespace pinhole::sip {

struct AuthParams {
  std::string_view scheme;  // "Digest" or any token
  std::string_view params;  // everything after the scheme, as written
  // Digest parameters, quotes removed (escapes, rare in practice, left as written).
  std::string_view username, realm, nonce, uri, response, algorithm, cnonce, opaque, qop, nc;
  std::string_view domain, stale;  // challenges
  bool is_digest() const;
};

// One credentials or challenge value: auth-scheme LWS auth-param *(COMMA auth-param).
Result<AuthParams> parse_auth(std::string_view value);

}  // namespace pinhole::sip
