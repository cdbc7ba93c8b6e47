#include "ua/digest_client.h"

#include <openssl/evp.h>

#include <array>
#include <cstdio>
#include <optional>

#include "sip/auth.h"
#include "sip/charset.h"
#include "ua/random.h"

namespace pinhole::ua {
namespace {

std::optional<DigestAlgorithm> algorithm_from(std::string_view name) {
  if (name.empty() || sip::iequals(name, "MD5")) return DigestAlgorithm::kMd5;
  if (sip::iequals(name, "SHA-256")) return DigestAlgorithm::kSha256;
  return std::nullopt;
}

bool qop_offers_auth(std::string_view qop) {
  // qop="auth,auth-int": a comma list of tokens.
  size_t i = 0;
  while (i <= qop.size()) {
    size_t end = qop.find(',', i);
    if (end == std::string_view::npos) end = qop.size();
    std::string_view item = qop.substr(i, end - i);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (sip::iequals(item, "auth")) return true;
    i = end + 1;
  }
  return false;
}

// A quoted-string value: the challenge's values come back quoted as received; a quote or a
// backslash inside would need escaping, which the parser left as written, so they are copied.
void append_quoted(std::string& out, std::string_view name, std::string_view value) {
  out.append(", ").append(name).append("=\"").append(value).append("\"");
}

}  // namespace

Result<std::string> digest_hash(DigestAlgorithm algorithm, std::string_view text) {
  const EVP_MD* md = algorithm == DigestAlgorithm::kSha256 ? EVP_sha256() : EVP_md5();
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int size = 0;
  if (EVP_Digest(text.data(), text.size(), out.data(), &size, md, nullptr) != 1) return kDigestHashFailed;
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(static_cast<size_t>(size) * 2);
  for (unsigned int i = 0; i < size; ++i) {
    hex.push_back(kDigits[out[i] >> 4]);
    hex.push_back(kDigits[out[i] & 0xf]);
  }
  return hex;
}

Result<bool> DigestClient::take_challenge(const sip::Message& response) {
  bool proxy = response.status() == 407;
  sip::HeaderKind kind = proxy ? sip::HeaderKind::kProxyAuthenticate : sip::HeaderKind::kWwwAuthenticate;
  std::optional<sip::AuthParams> best;
  std::optional<DigestAlgorithm> best_algorithm;
  for (const auto& field : response.headers()) {
    if (field.kind != kind) continue;
    auto params = sip::parse_auth(field.value);
    if (!params || !params->is_digest() || params->nonce.empty()) continue;
    auto algorithm = algorithm_from(params->algorithm);
    if (!algorithm) continue;
    if (!best || (*algorithm == DigestAlgorithm::kSha256 && *best_algorithm != DigestAlgorithm::kSha256)) {
      best = *params;
      best_algorithm = algorithm;
    }
  }
  if (!best) return kNoUsableChallenge;
  bool stale = sip::iequals(best->stale, "true");
  proxy_ = proxy;
  algorithm_ = *best_algorithm;
  algorithm_named_ = !best->algorithm.empty();
  realm_ = std::string(best->realm);
  if (nonce_ != best->nonce) nc_ = 0;
  nonce_ = std::string(best->nonce);
  opaque_ = std::string(best->opaque);
  qop_auth_ = qop_offers_auth(best->qop);
  return stale;
}

Result<std::string> DigestClient::credentials(std::string_view method, std::string_view digest_uri) {
  if (nonce_.empty()) return kNoUsableChallenge;
  auto ha1 = digest_hash(algorithm_, user_ + ":" + realm_ + ":" + password_);
  if (!ha1) return ha1.error();
  auto ha2 = digest_hash(algorithm_, std::string(method) + ":" + std::string(digest_uri));
  if (!ha2) return ha2.error();
  std::string cnonce, nc_text;
  std::string response_input;
  if (qop_auth_) {
    ++nc_;
    std::array<char, 9> nc{};
    std::snprintf(nc.data(), nc.size(), "%08x", nc_);
    nc_text = nc.data();
    cnonce = fixed_cnonce_.empty() ? random_hex(8) : fixed_cnonce_;
    response_input = *ha1 + ":" + nonce_ + ":" + nc_text + ":" + cnonce + ":auth:" + *ha2;
  } else {
    response_input = *ha1 + ":" + nonce_ + ":" + *ha2;
  }
  auto response = digest_hash(algorithm_, response_input);
  if (!response) return response.error();

  std::string out = "Digest username=\"" + user_ + "\"";
  append_quoted(out, "realm", realm_);
  append_quoted(out, "nonce", nonce_);
  append_quoted(out, "uri", digest_uri);
  append_quoted(out, "response", *response);
  if (algorithm_named_ || algorithm_ == DigestAlgorithm::kSha256) {
    out.append(", algorithm=").append(algorithm_ == DigestAlgorithm::kSha256 ? "SHA-256" : "MD5");
  }
  if (!opaque_.empty()) append_quoted(out, "opaque", opaque_);
  if (qop_auth_) {
    out.append(", qop=auth, nc=").append(nc_text);
    append_quoted(out, "cnonce", cnonce);
  }
  return out;
}

}  // namespace pinhole::ua
