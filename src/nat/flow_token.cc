// Flow token encoding: fixed binary layout, truncated HMAC-SHA256, lower-case base32.
#include "nat/flow_token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <span>

namespace pinhole::nat {

namespace {

struct MdFree {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};
using MdCtx = std::unique_ptr<EVP_MD_CTX, MdFree>;

}  // namespace

// HMAC-SHA256 (RFC 2104) with the key schedule done once: SHA-256 states that have already
// absorbed (K ^ ipad) and (K ^ opad). A MAC copies them into a per-thread work context and
// hashes only the message and the inner digest. Every dialog-forming request and every request
// routed back by token pays one MAC; measured while writing this (OpenSSL 3.0, -O2), about
// 0.4 us per MAC, against about 1.6 us when duplicating a keyed EVP_MAC_CTX and 3 us for the
// one-shot HMAC(), which fetch the algorithm and redo the pads every time. The states are never
// written after create(), so threads share them without a lock.
struct FlowTokenCodec::KeyState {
  MdCtx inner;
  MdCtx outer;
};

namespace {

using Tag = std::array<uint8_t, kFlowTokenMacSize>;

constexpr size_t kHeaderSize = 16;  // version, flags, socket id, connection id, port
constexpr size_t kV4BodySize = kHeaderSize + 4;
constexpr size_t kV6BodySize = kHeaderSize + 16;
constexpr size_t kV4TokenBytes = kV4BodySize + kFlowTokenMacSize;
constexpr size_t kV6TokenBytes = kV6BodySize + kFlowTokenMacSize;
constexpr size_t kMaxTokenBytes = kV6TokenBytes;
constexpr uint8_t kTransportMask = 0x0f;
constexpr uint8_t kFamilyV6 = 0x10;

constexpr size_t base32_length(size_t bytes) { return (bytes * 8 + 4) / 5; }
static_assert(base32_length(kV6TokenBytes) == kMaxFlowTokenLength);

constexpr std::string_view kBase32 = "abcdefghijklmnopqrstuvwxyz234567";

// Value of a base32 character in either case, or -1.
int base32_value(char c) {
  if (c >= 'a' && c <= 'z') return c - 'a';
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= '2' && c <= '7') return c - '2' + 26;
  return -1;
}

void base32_encode(std::span<const uint8_t> in, std::string& out) {
  out.reserve(out.size() + base32_length(in.size()));
  uint32_t buffer = 0;
  unsigned bits = 0;
  for (uint8_t byte : in) {
    buffer = (buffer << 8 | byte) & 0xfff;  // at most 4 + 8 live bits
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out.push_back(kBase32[(buffer >> bits) & 0x1f]);
    }
  }
  if (bits > 0) out.push_back(kBase32[(buffer << (5 - bits)) & 0x1f]);
}

// Strict decoding: fails on a character outside the alphabet, on a length no whole number of
// bytes encodes to (1, 3 or 6 characters past a multiple of 8), and on nonzero padding bits.
// Returns the number of bytes written.
std::optional<size_t> base32_decode(std::string_view in, std::span<uint8_t> out) {
  uint32_t buffer = 0;
  unsigned bits = 0;
  size_t n = 0;
  for (char c : in) {
    int v = base32_value(c);
    if (v < 0) return std::nullopt;
    buffer = (buffer << 5 | static_cast<uint32_t>(v)) & 0x1fff;  // at most 7 + 5 live bits
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      if (n == out.size()) return std::nullopt;
      out[n++] = static_cast<uint8_t>(buffer >> bits);
    }
  }
  if (bits >= 5) return std::nullopt;                                    // a dangling character
  if ((buffer & ((uint32_t{1} << bits) - 1)) != 0) return std::nullopt;  // padding bits must be 0
  return n;
}

void put_u16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void put_u32(uint8_t* p, uint32_t v) {
  for (size_t i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (24 - 8 * i));
}
void put_u64(uint8_t* p, uint64_t v) {
  for (size_t i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
}
uint16_t get_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t get_u32(const uint8_t* p) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = v << 8 | p[i];
  return v;
}
uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (size_t i = 0; i < 8; ++i) v = v << 8 | p[i];
  return v;
}

constexpr size_t kSha256Block = 64;
constexpr size_t kSha256Size = 32;

MdCtx padded_state(const EVP_MD* md, const std::array<uint8_t, kSha256Block>& key_block, uint8_t pad) {
  std::array<uint8_t, kSha256Block> block{};
  for (size_t i = 0; i < block.size(); ++i) block[i] = static_cast<uint8_t>(key_block[i] ^ pad);
  MdCtx ctx(EVP_MD_CTX_new());
  bool ok = ctx && EVP_DigestInit_ex(ctx.get(), md, nullptr) == 1 &&
            EVP_DigestUpdate(ctx.get(), block.data(), block.size()) == 1;
  OPENSSL_cleanse(block.data(), block.size());
  return ok ? std::move(ctx) : nullptr;
}

// Sets `inner` and `outer` to the padded states of `key`; false when OpenSSL fails.
bool make_key_state(std::string_view key, MdCtx& inner, MdCtx& outer) {
  EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (md == nullptr) return false;
  // RFC 2104 §2: a key longer than the block is hashed first; a shorter one is zero-padded.
  std::array<uint8_t, kSha256Block> key_block{};
  bool ok = true;
  if (key.size() > kSha256Block) {
    unsigned int n = 0;
    ok = EVP_Digest(key.data(), key.size(), key_block.data(), &n, md, nullptr) == 1;
  } else {
    std::copy(key.begin(), key.end(), key_block.begin());
  }
  if (ok) {
    inner = padded_state(md, key_block, 0x36);
    outer = padded_state(md, key_block, 0x5c);
  }
  OPENSSL_cleanse(key_block.data(), key_block.size());
  EVP_MD_free(md);  // the digest contexts hold their own references
  return ok && inner && outer;
}

// HMAC-SHA256(key, data) truncated to the tag size. False only when OpenSSL fails.
bool compute_tag(const EVP_MD_CTX* inner, const EVP_MD_CTX* outer, std::span<const uint8_t> data, Tag& tag) {
  // One work context per thread, reused for every MAC: the copies below only read the shared
  // states.
  thread_local MdCtx work(EVP_MD_CTX_new());
  if (!work) return false;
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int n = 0;
  if (EVP_MD_CTX_copy_ex(work.get(), inner) != 1 || EVP_DigestUpdate(work.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(work.get(), digest.data(), &n) != 1 || n != kSha256Size)
    return false;
  if (EVP_MD_CTX_copy_ex(work.get(), outer) != 1 || EVP_DigestUpdate(work.get(), digest.data(), n) != 1 ||
      EVP_DigestFinal_ex(work.get(), digest.data(), &n) != 1 || n != kSha256Size)
    return false;
  std::copy_n(digest.begin(), tag.size(), tag.begin());
  return true;
}

}  // namespace

Result<FlowTokenCodec> FlowTokenCodec::create(std::string_view current_key,
                                              std::optional<std::string_view> previous_key) {
  if (current_key.size() < kMinKeySize) return kFlowTokenShortKey;
  if (previous_key && previous_key->size() < kMinKeySize) return kFlowTokenShortKey;
  FlowTokenCodec codec;
  codec.current_ = std::make_unique<KeyState>();
  if (!make_key_state(current_key, codec.current_->inner, codec.current_->outer)) return kFlowTokenMacFailed;
  if (previous_key) {
    codec.previous_ = std::make_unique<KeyState>();
    if (!make_key_state(*previous_key, codec.previous_->inner, codec.previous_->outer)) return kFlowTokenMacFailed;
  }
  return codec;
}

FlowTokenCodec::FlowTokenCodec(FlowTokenCodec&&) noexcept = default;
FlowTokenCodec& FlowTokenCodec::operator=(FlowTokenCodec&&) noexcept = default;
FlowTokenCodec::~FlowTokenCodec() = default;

Result<std::string> FlowTokenCodec::encode(const Flow& flow) const {
  std::array<uint8_t, kMaxTokenBytes> bytes{};
  bool v6 = flow.remote.address.is_v6();
  bytes[0] = kFlowTokenVersion;
  bytes[1] = static_cast<uint8_t>((static_cast<uint8_t>(flow.transport) & kTransportMask) | (v6 ? kFamilyV6 : 0));
  put_u32(&bytes[2], flow.local_socket_id);
  put_u64(&bytes[6], flow.connection_id);
  put_u16(&bytes[14], flow.remote.port);
  auto address = flow.remote.address.bytes();
  std::copy(address.begin(), address.end(), bytes.data() + kHeaderSize);
  size_t body_size = v6 ? kV6BodySize : kV4BodySize;

  Tag tag{};
  if (!compute_tag(current_->inner.get(), current_->outer.get(), std::span<const uint8_t>(bytes.data(), body_size),
                   tag))
    return kFlowTokenMacFailed;
  std::copy(tag.begin(), tag.end(), bytes.data() + body_size);

  std::string token;
  base32_encode(std::span<const uint8_t>(bytes.data(), body_size + kFlowTokenMacSize), token);
  return token;
}

Result<DecodedFlow> FlowTokenCodec::decode(std::string_view token) const {
  // Bound the work before looking at the characters: no valid token is longer.
  if (token.empty() || token.size() > kMaxFlowTokenLength) return kFlowTokenBadEncoding;
  std::array<uint8_t, kMaxTokenBytes> bytes{};
  auto decoded = base32_decode(token, bytes);
  if (!decoded || *decoded == 0) return kFlowTokenBadEncoding;
  size_t size = *decoded;
  if (bytes[0] != kFlowTokenVersion) return kFlowTokenBadVersion;
  if (size != kV4TokenBytes && size != kV6TokenBytes) return kFlowTokenBadEncoding;

  size_t body_size = size - kFlowTokenMacSize;
  std::span<const uint8_t> body(bytes.data(), body_size);
  const uint8_t* received_tag = bytes.data() + body_size;
  DecodedFlow out;
  Tag tag{};
  if (!compute_tag(current_->inner.get(), current_->outer.get(), body, tag)) return kFlowTokenMacFailed;
  // CRYPTO_memcmp: the comparison time must not tell an attacker how many tag bytes were right.
  if (CRYPTO_memcmp(tag.data(), received_tag, tag.size()) == 0) {
    out.key = KeySlot::kCurrent;
  } else if (previous_) {
    if (!compute_tag(previous_->inner.get(), previous_->outer.get(), body, tag)) return kFlowTokenMacFailed;
    if (CRYPTO_memcmp(tag.data(), received_tag, tag.size()) != 0) return kFlowTokenBadMac;
    out.key = KeySlot::kPrevious;
  } else {
    return kFlowTokenBadMac;
  }

  // Authentic from here on; the checks below refuse what a newer build of ours might have made.
  uint8_t flags = bytes[1];
  uint8_t transport = flags & kTransportMask;
  bool v6 = (flags & kFamilyV6) != 0;
  if ((flags & ~(kTransportMask | kFamilyV6)) != 0 || transport >= net::kTransportCount) return kFlowTokenBadField;
  if (v6 != (size == kV6TokenBytes)) return kFlowTokenBadField;
  out.flow.transport = static_cast<net::Transport>(transport);
  out.flow.local_socket_id = get_u32(&bytes[2]);
  out.flow.connection_id = get_u64(&bytes[6]);
  out.flow.remote.port = get_u16(&bytes[14]);
  if (v6) {
    std::array<uint8_t, 16> a{};
    std::copy_n(bytes.data() + kHeaderSize, 16, a.begin());
    out.flow.remote.address = net::Address::v6(a);
  } else {
    std::array<uint8_t, 4> a{};
    std::copy_n(bytes.data() + kHeaderSize, 4, a.begin());
    out.flow.remote.address = net::Address::v4(a);
  }
  return out;
}

}  // namespace pinhole::nat
