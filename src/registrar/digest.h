// Digest authentication of users (RFC 3261 §22 with the RFC 7616 algorithms, as RFC 8760 brings
// them to SIP): challenges for REGISTER (401, WWW-Authenticate) and for other requests from users
// (407, Proxy-Authenticate), and the check of the credentials that answer them.
//
// Nonces carry their own state, so that any worker, and any node of a cluster sharing the secret,
// can check one without shared memory:
//   nonce = base64url(issued || random || tag)        54 characters, no padding
//   issued  8 bytes, big-endian wall-clock unix seconds (wall clock: other nodes must read it)
//   random  16 bytes from the OpenSSL CSPRNG (two challenges in the same second differ)
//   tag     HMAC-SHA256(secret, issued || random || realm), truncated to 16 bytes (a nonce made
//           for one realm does not validate for another; 128 bits is far beyond guessing, as for
//           the flow tokens)
// No opaque is sent: the nonce already carries everything the server needs back.
//
// Choices (RFC 7616 leaves them to the server):
// - qop=auth only. Credentials without qop (RFC 2069) carry no nc/cnonce, so a captured response
//   could be replayed for the nonce's whole life; RFC 7616 and RFC 8760 require qop. They get a
//   fresh challenge (kChallenge, not 400: the peer sent well-formed credentials we do not accept,
//   like an unknown scheme), and so do qop=auth-int, algorithms we did not offer, the "-sess"
//   variants and SHA-512-256 (refused, never offered: SIP phones do not use them, and accepting
//   what was not offered would let a peer pick the weakest scheme).
// - nc replay protection is per node: each node remembers, for each nonce it has accepted, the
//   highest nc; a first use of a valid nonce (made here or by another node) accepts any nc >= 1.
//   The table is bounded: when full, the entry of the oldest nonce is evicted and nonces issued
//   no later than an evicted one are then answered kStale (the client retries at once with a
//   fresh nonce), so eviction never reopens a replay window.
// - A nonce whose issue time is more than kMaxClockSkew in the future (a node with a fast clock)
//   is treated as expired: the client gets a nonce from this node.
// - A request for an unknown user costs the same hashing as a wrong password, so response time
//   does not tell which.
//
// Threads: ha1() and digest_response() may be called from any thread. A DigestAuthenticator is
// shared by all workers: verify() and challenge_headers() may run concurrently on any threads
// (the nonce-count table is sharded, each shard under its own mutex held for one map
// operation); the UserDirectory it reads is itself thread-safe.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>

#include "common/result.h"
#include "registrar/user_directory.h"
#include "sip/message.h"

namespace pinhole::registrar {

enum class DigestAlgorithm : uint8_t { kMd5, kSha256 };

// "MD5", "SHA-256".
std::string_view algorithm_name(DigestAlgorithm algorithm);
// The algorithm an algorithm= value names, case-insensitively; nullopt for anything else
// ("MD5-sess", "SHA-256-sess", "SHA-512-256", ...). An absent value (empty) means MD5
// (RFC 7616 §3.4).
std::optional<DigestAlgorithm> parse_algorithm(std::string_view name);

// OpenSSL failed (out of memory, or a provider without the algorithm); nothing to answer but 500.
inline constexpr Error kDigestCryptoFailed{500, "digest: hash computation failed"};
// Start-up error: the nonce key must have at least 128 bits.
inline constexpr Error kDigestNoAlgorithm{500, "digest: neither SHA-256 nor MD5 is offered"};
inline constexpr Error kDigestShortSecret{500, "digest: nonce secret shorter than 16 bytes"};
inline constexpr size_t kMinDigestSecretSize = 16;

// HA1 = H(username ":" realm ":" password) in lower-case hex (32 digits for MD5, 64 for
// SHA-256): what the store keeps instead of the password.
Result<std::string> ha1(DigestAlgorithm algorithm, std::string_view username, std::string_view realm,
                        std::string_view password);

// The values, as they appear in the credentials (quotes removed), that enter a qop response.
struct DigestFields {
  std::string_view nonce, nc, cnonce, qop, method, uri;
};
// RFC 7616 §3.4.1: H(HA1 ":" nonce ":" nc ":" cnonce ":" qop ":" H(method ":" uri)) in lower-case
// hex, `ha1_hex` being the stored HA1 for `algorithm`.
Result<std::string> digest_response(DigestAlgorithm algorithm, std::string_view ha1_hex, const DigestFields& fields);

// Which pair of headers a challenge uses: WWW-Authenticate/Authorization with 401 (the
// registrar, RFC 3261 §22.2), Proxy-Authenticate/Proxy-Authorization with 407 (the proxy, §22.3).
enum class ChallengeKind : uint8_t { kWww, kProxy };
constexpr uint16_t challenge_status(ChallengeKind kind) { return kind == ChallengeKind::kWww ? 401 : 407; }

struct DigestConfig {
  std::string secret;  // nonce HMAC key (>= kMinDigestSecretSize bytes), from config
  std::chrono::seconds nonce_lifetime{300};
  bool offer_md5 = true;  // RFC 8760: SHA-256 offered first, MD5 for old phones
  // Off for sites whose phones give up when any challenge names an algorithm they do not know
  // (Debian 12's baresip/libre 1.1.0 does, even with MD5 offered beside SHA-256). At least one of
  // the two must be on.
  bool offer_sha256 = true;
  size_t max_tracked_nonces = 100000;
};

enum class AuthVerdict : uint8_t {
  kOk,         // authenticated: proceed
  kChallenge,  // answer 401/407 with challenge_headers(kind, realm, false)
  kStale,      // right password, old nonce: 401/407 with challenge_headers(kind, realm, true)
  // Not returned by verify(): for callers that authenticated a user who may not do what the
  // request asks (RFC 3261 §10.3 step 6, a REGISTER for someone else's AOR): 403.
  kForbidden,
  kBadRequest,  // 400 (malformed credentials, digest uri not the Request-URI)
};

// Why verify() decided as it did: static texts for logs and counters (the caller can compare
// against these constants). For kChallenge they tell the operator more than the peer may learn
// (unknown user vs wrong password): never send them in a response.
namespace auth_why {
inline constexpr std::string_view kAuthenticated = "authenticated";
inline constexpr std::string_view kNoCredentials = "no digest credentials for this realm";
inline constexpr std::string_view kMalformed = "malformed credentials";
inline constexpr std::string_view kAlgorithmNotOffered = "algorithm not offered";
inline constexpr std::string_view kNoQop = "credentials without qop (RFC 2069)";
inline constexpr std::string_view kQopNotOffered = "qop not offered";
inline constexpr std::string_view kIncomplete = "credentials lack username, nonce, uri, response or cnonce";
inline constexpr std::string_view kBadNonceCount = "nc is not 8 hex digits";
inline constexpr std::string_view kUriMismatch = "digest uri differs from the Request-URI";
inline constexpr std::string_view kForgedNonce = "nonce not made with our secret";
inline constexpr std::string_view kUnknownUser = "unknown user";
inline constexpr std::string_view kWrongResponse = "wrong response";
inline constexpr std::string_view kExpired = "nonce expired";
inline constexpr std::string_view kForgotten = "nonce count state evicted";
inline constexpr std::string_view kReplay = "nonce count replayed";
inline constexpr std::string_view kCryptoFailed = "digest computation failed";
}  // namespace auth_why

struct AuthResult {
  AuthVerdict verdict = AuthVerdict::kChallenge;
  std::string username;  // the authenticated user on kOk (and on kStale: the password was right)
  std::string_view why;  // one of auth_why::*
};

// Wall-clock unix seconds; must be callable from any thread.
using WallSeconds = std::function<int64_t()>;
int64_t system_wall_seconds();

// How far in the future an authentic nonce's issue time may be (clock skew between nodes).
inline constexpr int64_t kMaxClockSkew = 30;

class DigestAuthenticator {
 public:
  // One per process, shared by the workers. `users` must outlive it. Fails (start-up errors) with
  // kDigestShortSecret, or kDigestCryptoFailed when OpenSSL cannot key HMAC-SHA256. The secret is
  // kept only as OpenSSL's keyed hash states.
  static Result<std::unique_ptr<DigestAuthenticator>> create(DigestConfig config, const UserDirectory& users,
                                                             WallSeconds wall_seconds = system_wall_seconds);
  ~DigestAuthenticator();
  DigestAuthenticator(const DigestAuthenticator&) = delete;
  DigestAuthenticator& operator=(const DigestAuthenticator&) = delete;

  // Checks the Authorization (kWww, REGISTER) or Proxy-Authorization (kProxy) credentials of
  // `request` for `realm`. Credentials of other realms or schemes are ignored (RFC 4475 regaut01:
  // an unknown scheme gets a fresh challenge, not 400); among several for `realm`, the first whose
  // algorithm was offered is checked. Any thread.
  AuthResult verify(const sip::Message& request, ChallengeKind kind, std::string_view realm);

  // The WWW-Authenticate (kWww) or Proxy-Authenticate (kProxy) header lines, each ending CRLF:
  // SHA-256 first, then MD5 when offered, sharing one fresh nonce, with qop="auth" and
  // stale=true when `stale`. Fails only when OpenSSL does (kDigestCryptoFailed: answer 500).
  // Any thread.
  Result<std::string> challenge_headers(ChallengeKind kind, std::string_view realm, bool stale);

  // Nonces whose nc is being tracked (a gauge for metrics; tests). Any thread.
  size_t tracked_nonces() const;

 private:
  struct KeyState;  // HMAC-SHA256 keyed states (OpenSSL), kept out of this header
  static constexpr size_t kRandomSize = 16;
  static constexpr size_t kShards = 16;

  // A nonce as the nc table knows it: ordered by issue time, so the oldest is evicted first and
  // expired ones are purged from the front.
  struct NonceKey {
    int64_t issued = 0;
    std::array<uint8_t, kRandomSize> random{};
    friend bool operator<(const NonceKey& a, const NonceKey& b) {
      return std::tie(a.issued, a.random) < std::tie(b.issued, b.random);
    }
  };
  enum class NcCheck : uint8_t { kAccepted, kReplay, kForgotten };
  struct Shard {
    mutable std::mutex mutex;
    std::map<NonceKey, uint32_t> highest_nc;  // guarded by mutex
    // Issue time of the newest nonce evicted while still valid (guarded by mutex): nonces issued
    // no later that are not in the table may have been used already.
    int64_t forgotten_until = std::numeric_limits<int64_t>::min();
  };

  DigestAuthenticator(DigestConfig config, const UserDirectory& users, WallSeconds wall_seconds);
  // The nonce's issue time and random bytes when its tag is ours for `realm`.
  std::optional<NonceKey> open_nonce(std::string_view nonce, std::string_view realm) const;
  Result<std::string> make_nonce(std::string_view realm, int64_t now) const;
  // Records `nc` for the nonce if greater than the highest accepted so far.
  NcCheck check_nonce_count(const NonceKey& key, uint32_t nc, int64_t now);
  bool offered(DigestAlgorithm algorithm) const {
    return algorithm == DigestAlgorithm::kSha256 ? config_.offer_sha256 : config_.offer_md5;
  }

  DigestConfig config_;  // secret cleared after keying
  const UserDirectory& users_;
  WallSeconds wall_seconds_;
  std::unique_ptr<KeyState> key_;
  size_t shard_capacity_ = 1;
  std::array<Shard, kShards> shards_;
};

}  // namespace pinhole::registrar
