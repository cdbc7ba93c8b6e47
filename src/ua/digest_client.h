// The client side of digest authentication (RFC 3261 §22, RFC 7616 algorithms as RFC 8760 brings
// them to SIP): keeps the challenge of the last 401/407 and answers it in every following request
// with a counted nc, until the server challenges again.
//
// Choices: SHA-256 is preferred over MD5 when the server offers both; qop=auth is used whenever
// offered (auth-int is not: it would need the body hashed), RFC 2069 (no qop) only when the
// server offers no qop at all. "-sess" algorithms and SHA-512-256 are refused.
//
// Threads: one object per registration, used on the UA's event-loop thread only.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "sip/message.h"

namespace pinhole::ua {

enum class DigestAlgorithm : uint8_t { kMd5, kSha256 };

inline constexpr Error kNoUsableChallenge{401, "digest: no Digest challenge with an algorithm we support"};
inline constexpr Error kDigestHashFailed{500, "digest: hash computation failed"};

// Lower-case hex H(text) for the algorithm (OpenSSL EVP).
Result<std::string> digest_hash(DigestAlgorithm algorithm, std::string_view text);

class DigestClient {
 public:
  DigestClient(std::string user, std::string password) : user_(std::move(user)), password_(std::move(password)) {}

  // Reads the WWW-Authenticate (401) or Proxy-Authenticate (407) challenges of `response` and
  // keeps the best one; nc restarts at 1 for a new nonce. Returns whether the server said the
  // previous nonce was merely stale (stale=true: retrying with the same password makes sense).
  Result<bool> take_challenge(const sip::Message& response);

  bool has_challenge() const { return !nonce_.empty(); }
  // "Authorization" or "Proxy-Authorization".
  std::string_view header_name() const { return proxy_ ? "Proxy-Authorization" : "Authorization"; }
  // The credentials for one request (counts nc). Needs has_challenge().
  Result<std::string> credentials(std::string_view method, std::string_view digest_uri);

  // Test hook: a fixed cnonce instead of a random one.
  void set_cnonce_for_test(std::string cnonce) { fixed_cnonce_ = std::move(cnonce); }

 private:
  std::string user_, password_;
  bool proxy_ = false;
  DigestAlgorithm algorithm_ = DigestAlgorithm::kMd5;
  bool algorithm_named_ = false;  // echo algorithm= only when the server named one
  std::string realm_, nonce_, opaque_;
  bool qop_auth_ = false;
  uint32_t nc_ = 0;
  std::string fixed_cnonce_;
};

}  // namespace pinhole::ua
