// Digest authentication: hashing (OpenSSL EVP), self-validating nonces, the nc table, verify().
#include "registrar/digest.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <algorithm>
#include <initializer_list>
#include <span>

#include "sip/auth.h"
#include "sip/charset.h"

namespace pinhole::registrar {

namespace {

struct MdFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdFree>;

constexpr size_t kSha256Size = 32;
constexpr size_t kSha256Block = 64;
constexpr size_t kTagSize = 16;
constexpr size_t kTimeSize = 8;
constexpr size_t kMaxHexSize = 2 * size_t{EVP_MAX_MD_SIZE};

// Fetched once: EVP_md5()/EVP_sha256() would look the algorithm up in the provider store (a
// lock) on every init. Never freed: they live as long as the process, like OpenSSL's own tables.
const EVP_MD* md_for(DigestAlgorithm algorithm) {
  static EVP_MD* const md5 = EVP_MD_fetch(nullptr, "MD5", nullptr);
  static EVP_MD* const sha256 = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  return algorithm == DigestAlgorithm::kMd5 ? md5 : sha256;
}

// A digest in lower-case hex, on the stack.
struct HexDigest {
  std::array<char, kMaxHexSize> text{};
  size_t size = 0;
  std::string_view view() const { return {text.data(), size}; }
};

// H(parts[0] ":" parts[1] ":" ...) in hex. False only when OpenSSL fails.
bool hash_joined(DigestAlgorithm algorithm, std::initializer_list<std::string_view> parts, HexDigest& out) {
  const EVP_MD* md = md_for(algorithm);
  // One context per thread, reused: the hot path allocates nothing.
  thread_local MdCtx ctx(EVP_MD_CTX_new());
  if (md == nullptr || !ctx || EVP_DigestInit_ex2(ctx.get(), md, nullptr) != 1) return false;
  bool first = true;
  for (std::string_view part : parts) {
    if (!first && EVP_DigestUpdate(ctx.get(), ":", 1) != 1) return false;
    first = false;
    if (!part.empty() && EVP_DigestUpdate(ctx.get(), part.data(), part.size()) != 1) return false;
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int n = 0;
  if (EVP_DigestFinal_ex(ctx.get(), digest.data(), &n) != 1) return false;
  static constexpr std::string_view kHex = "0123456789abcdef";
  for (size_t i = 0; i < n; ++i) {
    out.text[2 * i] = kHex[digest[i] >> 4];
    out.text[2 * i + 1] = kHex[digest[i] & 0x0f];
  }
  out.size = 2 * size_t{n};
  return true;
}

size_t hex_size(DigestAlgorithm algorithm) { return algorithm == DigestAlgorithm::kMd5 ? 32 : 64; }

// base64url (RFC 4648 §5) without padding: the nonce travels in a quoted string, and these
// characters need no escaping anywhere in SIP.
constexpr std::string_view kBase64Url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

void base64url_encode(std::span<const uint8_t> in, std::string& out) {
  uint32_t buffer = 0;
  unsigned bits = 0;
  for (uint8_t byte : in) {
    buffer = (buffer << 8 | byte) & 0x3fff;  // at most 6 + 8 live bits
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out.push_back(kBase64Url[(buffer >> bits) & 0x3f]);
    }
  }
  if (bits > 0) out.push_back(kBase64Url[(buffer << (6 - bits)) & 0x3f]);
}

int base64url_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

// Strict: exactly out.size() bytes, no stray character, zero padding bits, so one nonce has one
// spelling and any changed character is refused.
bool base64url_decode(std::string_view in, std::span<uint8_t> out) {
  if (in.size() != (out.size() * 8 + 5) / 6) return false;
  uint32_t buffer = 0;
  unsigned bits = 0;
  size_t n = 0;
  for (char c : in) {
    int v = base64url_value(c);
    if (v < 0) return false;
    buffer = (buffer << 6 | static_cast<uint32_t>(v)) & 0x3fff;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = static_cast<uint8_t>(buffer >> bits);
    }
  }
  return n == out.size() && (buffer & ((uint32_t{1} << bits) - 1)) == 0;
}

constexpr size_t kNonceBytes = kTimeSize + 16 + kTagSize;
constexpr size_t kNonceLength = (kNonceBytes * 8 + 5) / 6;

// LWS trimmed at both ends.
std::string_view trim(std::string_view s) {
  auto is_lws = [](char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; };
  while (!s.empty() && is_lws(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_lws(s.back())) s.remove_suffix(1);
  return s;
}

// A quoted-string's content with its quoted-pairs resolved (RFC 3261 §25.1). sip::parse_auth
// leaves them as written; they are rare, so the copy is made only when there is one.
std::string_view unquote(std::string_view s, std::string& scratch) {
  if (s.find('\\') == std::string_view::npos) return s;
  scratch.clear();
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) ++i;
    scratch.push_back(s[i]);
  }
  return scratch;
}

// nc-value = 8LHEX (RFC 7616 §3.4); upper case tolerated.
std::optional<uint32_t> parse_nc(std::string_view s) {
  if (s.size() != 8) return std::nullopt;
  uint32_t v = 0;
  for (char c : s) {
    uint32_t d = 0;
    if (c >= '0' && c <= '9') {
      d = static_cast<uint32_t>(c - '0');
    } else if (c >= 'a' && c <= 'f') {
      d = static_cast<uint32_t>(c - 'a' + 10);
    } else if (c >= 'A' && c <= 'F') {
      d = static_cast<uint32_t>(c - 'A' + 10);
    } else {
      return std::nullopt;
    }
    v = v << 4 | d;
  }
  return v;
}

// Constant-time comparison of the client's response (hex, any case) with ours (lower case): the
// time taken must not tell how many leading digits were right.
bool response_matches(std::string_view given, std::string_view expected) {
  if (given.size() != expected.size()) return false;  // the length is public (it follows the algorithm)
  std::array<char, kMaxHexSize> lower{};
  if (given.size() > lower.size()) return false;
  for (size_t i = 0; i < given.size(); ++i) {
    char c = given[i];
    lower[i] = (c >= 'A' && c <= 'F') ? static_cast<char>(c - 'A' + 'a') : c;
  }
  return CRYPTO_memcmp(lower.data(), expected.data(), expected.size()) == 0;
}

void append_quoted(std::string& out, std::string_view value) {
  out.push_back('"');
  for (char c : value) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
}

void put_i64(uint8_t* p, int64_t value) {
  auto v = static_cast<uint64_t>(value);
  for (size_t i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
}
int64_t get_i64(const uint8_t* p) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = v << 8 | p[i];
  return static_cast<int64_t>(v);
}

AuthResult verdict(AuthVerdict v, std::string_view why) { return AuthResult{v, {}, why}; }

}  // namespace

std::string_view algorithm_name(DigestAlgorithm algorithm) {
  return algorithm == DigestAlgorithm::kMd5 ? "MD5" : "SHA-256";
}

std::optional<DigestAlgorithm> parse_algorithm(std::string_view name) {
  if (name.empty() || sip::iequals(name, "MD5")) return DigestAlgorithm::kMd5;
  if (sip::iequals(name, "SHA-256")) return DigestAlgorithm::kSha256;
  return std::nullopt;
}

Result<std::string> ha1(DigestAlgorithm algorithm, std::string_view username, std::string_view realm,
                        std::string_view password) {
  HexDigest h;
  if (!hash_joined(algorithm, {username, realm, password}, h)) return kDigestCryptoFailed;
  return std::string(h.view());
}

Result<std::string> digest_response(DigestAlgorithm algorithm, std::string_view ha1_hex, const DigestFields& fields) {
  HexDigest ha2;
  HexDigest response;
  if (!hash_joined(algorithm, {fields.method, fields.uri}, ha2) ||
      !hash_joined(algorithm, {ha1_hex, fields.nonce, fields.nc, fields.cnonce, fields.qop, ha2.view()}, response))
    return kDigestCryptoFailed;
  return std::string(response.view());
}

int64_t system_wall_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// HMAC-SHA256 (RFC 2104) with the key schedule done once: SHA-256 states that have absorbed
// (K ^ ipad) and (K ^ opad). A tag copies them into a per-thread context, so every challenge and
// every verify pays two SHA-256 finalisations and no key setup. Never written after create():
// threads share them without a lock.
struct DigestAuthenticator::KeyState {
  MdCtx inner;
  MdCtx outer;
};

namespace {

MdCtx padded_state(const EVP_MD* md, const std::array<uint8_t, kSha256Block>& key_block, uint8_t pad) {
  std::array<uint8_t, kSha256Block> block{};
  for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<uint8_t>(key_block[i] ^ pad);
  MdCtx ctx(EVP_MD_CTX_new());
  bool ok = ctx && EVP_DigestInit_ex2(ctx.get(), md, nullptr) == 1 &&
            EVP_DigestUpdate(ctx.get(), block.data(), block.size()) == 1;
  OPENSSL_cleanse(block.data(), block.size());
  return ok ? std::move(ctx) : nullptr;
}

// HMAC-SHA256 over the concatenation of `parts`, truncated to kTagSize.
bool compute_tag(const EVP_MD_CTX* inner, const EVP_MD_CTX* outer,
                 std::initializer_list<std::span<const uint8_t>> parts, std::array<uint8_t, kTagSize>& tag) {
  thread_local MdCtx work(EVP_MD_CTX_new());
  if (!work) return false;
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int n = 0;
  if (EVP_MD_CTX_copy_ex(work.get(), inner) != 1) return false;
  for (auto part : parts)
    if (!part.empty() && EVP_DigestUpdate(work.get(), part.data(), part.size()) != 1) return false;
  if (EVP_DigestFinal_ex(work.get(), digest.data(), &n) != 1 || n != kSha256Size) return false;
  if (EVP_MD_CTX_copy_ex(work.get(), outer) != 1 || EVP_DigestUpdate(work.get(), digest.data(), n) != 1 ||
      EVP_DigestFinal_ex(work.get(), digest.data(), &n) != 1 || n != kSha256Size)
    return false;
  std::copy_n(digest.begin(), tag.size(), tag.begin());
  return true;
}

std::span<const uint8_t> bytes_of(std::string_view s) { return {reinterpret_cast<const uint8_t*>(s.data()), s.size()}; }

}  // namespace

Result<std::unique_ptr<DigestAuthenticator>> DigestAuthenticator::create(DigestConfig config,
                                                                         const UserDirectory& users,
                                                                         WallSeconds wall_seconds) {
  if (config.secret.size() < kMinDigestSecretSize) return kDigestShortSecret;
  if (!config.offer_sha256 && !config.offer_md5) return kDigestNoAlgorithm;
  const EVP_MD* md = md_for(DigestAlgorithm::kSha256);
  if (md == nullptr) return kDigestCryptoFailed;
  // RFC 2104 §2: a key longer than the block is hashed first; a shorter one is zero-padded.
  std::array<uint8_t, kSha256Block> key_block{};
  if (config.secret.size() > kSha256Block) {
    unsigned int n = 0;
    if (EVP_Digest(config.secret.data(), config.secret.size(), key_block.data(), &n, md, nullptr) != 1)
      return kDigestCryptoFailed;
  } else {
    std::copy(config.secret.begin(), config.secret.end(), key_block.begin());
  }
  auto key = std::make_unique<KeyState>();
  key->inner = padded_state(md, key_block, 0x36);
  key->outer = padded_state(md, key_block, 0x5c);
  OPENSSL_cleanse(key_block.data(), key_block.size());
  OPENSSL_cleanse(config.secret.data(), config.secret.size());
  config.secret.clear();
  if (!key->inner || !key->outer) return kDigestCryptoFailed;
  std::unique_ptr<DigestAuthenticator> auth(new DigestAuthenticator(std::move(config), users, std::move(wall_seconds)));
  auth->key_ = std::move(key);
  return auth;
}

DigestAuthenticator::DigestAuthenticator(DigestConfig config, const UserDirectory& users, WallSeconds wall_seconds)
    : config_(std::move(config)), users_(users), wall_seconds_(std::move(wall_seconds)) {
  shard_capacity_ = std::max<size_t>(1, (config_.max_tracked_nonces + kShards - 1) / kShards);
}

DigestAuthenticator::~DigestAuthenticator() = default;

Result<std::string> DigestAuthenticator::make_nonce(std::string_view realm, int64_t now) const {
  std::array<uint8_t, kNonceBytes> bytes{};
  put_i64(bytes.data(), now);
  if (RAND_bytes(&bytes[kTimeSize], static_cast<int>(kRandomSize)) != 1) return kDigestCryptoFailed;
  std::array<uint8_t, kTagSize> tag{};
  if (!compute_tag(key_->inner.get(), key_->outer.get(),
                   {std::span<const uint8_t>(bytes.data(), kTimeSize + kRandomSize), bytes_of(realm)}, tag))
    return kDigestCryptoFailed;
  std::copy(tag.begin(), tag.end(), bytes.begin() + kTimeSize + kRandomSize);
  std::string nonce;
  nonce.reserve(kNonceLength);
  base64url_encode(bytes, nonce);
  return nonce;
}

std::optional<DigestAuthenticator::NonceKey> DigestAuthenticator::open_nonce(std::string_view nonce,
                                                                             std::string_view realm) const {
  std::array<uint8_t, kNonceBytes> bytes{};
  if (!base64url_decode(nonce, bytes)) return std::nullopt;
  std::array<uint8_t, kTagSize> tag{};
  if (!compute_tag(key_->inner.get(), key_->outer.get(),
                   {std::span<const uint8_t>(bytes.data(), kTimeSize + kRandomSize), bytes_of(realm)}, tag))
    return std::nullopt;
  if (CRYPTO_memcmp(tag.data(), &bytes[kTimeSize + kRandomSize], kTagSize) != 0) return std::nullopt;
  NonceKey key;
  key.issued = get_i64(bytes.data());
  std::copy_n(bytes.begin() + kTimeSize, kRandomSize, key.random.begin());
  return key;
}

DigestAuthenticator::NcCheck DigestAuthenticator::check_nonce_count(const NonceKey& key, uint32_t nc, int64_t now) {
  // The random bytes are uniform: any of them picks a shard evenly.
  Shard& shard = shards_[key.random[0] % kShards];
  std::lock_guard lock(shard.mutex);
  auto& table = shard.highest_nc;
  // Entries of expired nonces are useless (an expired nonce is answered kStale before it gets
  // here): drop them from the front, oldest first.
  const int64_t lifetime = config_.nonce_lifetime.count();
  while (!table.empty() && table.begin()->first.issued < now - lifetime) table.erase(table.begin());
  auto it = table.find(key);
  if (it != table.end()) {
    if (nc <= it->second) return NcCheck::kReplay;
    it->second = nc;
    return NcCheck::kAccepted;
  }
  if (nc == 0) return NcCheck::kReplay;  // counts start at 1 (RFC 7616 §3.4)
  // Bounded: when full, the oldest entry goes. Nonces issued no later than an entry evicted while
  // valid may have been used already, so they may not start a new entry (forgotten_until): the
  // client gets stale=true and a fresh nonce. When the new nonce is itself the oldest, evicting a
  // newer entry would only forget that one instead: it is refused (and marked) itself.
  if (table.size() >= shard_capacity_ && key.issued <= table.begin()->first.issued) {
    shard.forgotten_until = std::max(shard.forgotten_until, key.issued);
    return NcCheck::kForgotten;
  }
  while (table.size() >= shard_capacity_) {
    shard.forgotten_until = std::max(shard.forgotten_until, table.begin()->first.issued);
    table.erase(table.begin());
  }
  if (key.issued <= shard.forgotten_until) return NcCheck::kForgotten;
  table.emplace(key, nc);
  return NcCheck::kAccepted;
}

size_t DigestAuthenticator::tracked_nonces() const {
  size_t n = 0;
  for (auto& shard : shards_) {
    std::lock_guard lock(shard.mutex);
    n += shard.highest_nc.size();
  }
  return n;
}

Result<std::string> DigestAuthenticator::challenge_headers(ChallengeKind kind, std::string_view realm, bool stale) {
  auto nonce = make_nonce(realm, wall_seconds_());
  if (!nonce) return nonce.error();
  std::string_view name = kind == ChallengeKind::kWww ? "WWW-Authenticate: " : "Proxy-Authenticate: ";
  std::string out;
  out.reserve(2 * (name.size() + realm.size() + nonce->size() + 80));
  for (DigestAlgorithm algorithm : {DigestAlgorithm::kSha256, DigestAlgorithm::kMd5}) {
    if (!offered(algorithm)) continue;
    out += name;
    out += "Digest realm=";
    append_quoted(out, realm);
    out += ", nonce=\"";
    out += *nonce;
    out += "\", qop=\"auth\", algorithm=";
    out += algorithm_name(algorithm);
    if (stale) out += ", stale=true";
    out += "\r\n";
  }
  return out;
}

AuthResult DigestAuthenticator::verify(const sip::Message& request, ChallengeKind kind, std::string_view realm) {
  const sip::HeaderKind header_kind =
      kind == ChallengeKind::kWww ? sip::HeaderKind::kAuthorization : sip::HeaderKind::kProxyAuthorization;
  // Pick the credentials: the first Digest ones for our realm with an algorithm we offered.
  std::optional<sip::AuthParams> chosen;
  std::optional<DigestAlgorithm> algorithm;
  bool malformed = false;
  bool for_realm = false;
  std::string scratch;
  for (const auto& field : request.headers()) {
    if (field.kind != header_kind) continue;
    auto parsed = sip::parse_auth(field.value);
    if (!parsed) {
      malformed = true;
      continue;
    }
    if (!parsed->is_digest() || unquote(parsed->realm, scratch) != realm) continue;
    for_realm = true;
    algorithm = parse_algorithm(parsed->algorithm);
    if (algorithm && offered(*algorithm)) {
      chosen = *parsed;
      break;
    }
  }
  if (!chosen) {
    if (for_realm) return verdict(AuthVerdict::kChallenge, auth_why::kAlgorithmNotOffered);
    // A header we could not parse might have been ours: tell the client rather than loop on 401.
    if (malformed) return verdict(AuthVerdict::kBadRequest, auth_why::kMalformed);
    return verdict(AuthVerdict::kChallenge, auth_why::kNoCredentials);
  }
  const sip::AuthParams& cred = *chosen;

  if (cred.username.empty() || cred.nonce.empty() || cred.uri.empty() || cred.response.empty())
    return verdict(AuthVerdict::kBadRequest, auth_why::kIncomplete);
  if (cred.qop.empty()) return verdict(AuthVerdict::kChallenge, auth_why::kNoQop);
  if (!sip::iequals(cred.qop, "auth")) return verdict(AuthVerdict::kChallenge, auth_why::kQopNotOffered);
  if (cred.cnonce.empty()) return verdict(AuthVerdict::kBadRequest, auth_why::kIncomplete);
  auto nc = parse_nc(cred.nc);
  if (!nc) return verdict(AuthVerdict::kBadRequest, auth_why::kBadNonceCount);
  // RFC 3261 §22.4, RFC 7616 §3.4 (uri): the credentials must be for this request, not one the
  // client sent elsewhere.
  if (trim(cred.uri) != trim(request.request_uri().raw))
    return verdict(AuthVerdict::kBadRequest, auth_why::kUriMismatch);

  auto nonce_key = open_nonce(cred.nonce, realm);
  if (!nonce_key) return verdict(AuthVerdict::kChallenge, auth_why::kForgedNonce);

  std::string username(unquote(cred.username, scratch));
  auto user = users_.find(username, realm);
  std::string_view stored;
  if (user) stored = *algorithm == DigestAlgorithm::kMd5 ? user->ha1_md5 : user->ha1_sha256;
  // An unknown user (or one without an HA1 for this algorithm) is checked against a dummy HA1, so
  // that it costs what a wrong password costs.
  static constexpr std::string_view kDummyHa1 = "0000000000000000000000000000000000000000000000000000000000000000";
  const bool known = !stored.empty();
  if (!known) stored = kDummyHa1.substr(0, hex_size(*algorithm));
  auto expected = digest_response(
      *algorithm, stored, DigestFields{cred.nonce, cred.nc, cred.cnonce, cred.qop, request.method_name(), cred.uri});
  if (!expected) return verdict(AuthVerdict::kChallenge, auth_why::kCryptoFailed);
  const bool matches = response_matches(cred.response, *expected);
  if (!known) return verdict(AuthVerdict::kChallenge, auth_why::kUnknownUser);
  if (!matches) return verdict(AuthVerdict::kChallenge, auth_why::kWrongResponse);

  const int64_t now = wall_seconds_();
  const int64_t age = now - nonce_key->issued;
  if (age > config_.nonce_lifetime.count() || age < -kMaxClockSkew)
    return AuthResult{AuthVerdict::kStale, std::move(username), auth_why::kExpired};
  switch (check_nonce_count(*nonce_key, *nc, now)) {
    case NcCheck::kReplay:
      return verdict(AuthVerdict::kChallenge, auth_why::kReplay);
    case NcCheck::kForgotten:
      return AuthResult{AuthVerdict::kStale, std::move(username), auth_why::kForgotten};
    case NcCheck::kAccepted:
      break;
  }
  return AuthResult{AuthVerdict::kOk, std::move(username), auth_why::kAuthenticated};
}

}  // namespace pinhole::registrar
