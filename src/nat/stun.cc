// STUN codec: header and attribute walk with bounds checks on every read; CRC-32 FINGERPRINT.
#include "nat/stun.h"

#include <array>

namespace pinhole::nat {

namespace {

uint16_t read16(std::string_view b, size_t at) {
  return static_cast<uint16_t>((static_cast<uint8_t>(b[at]) << 8) | static_cast<uint8_t>(b[at + 1]));
}
uint32_t read32(std::string_view b, size_t at) {
  return (static_cast<uint32_t>(read16(b, at)) << 16) | read16(b, at + 2);
}
void put16(std::string& out, uint16_t v) {
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v & 0xff));
}
void put32(std::string& out, uint32_t v) {
  put16(out, static_cast<uint16_t>(v >> 16));
  put16(out, static_cast<uint16_t>(v & 0xffff));
}
void patch16(std::string& out, size_t at, uint16_t v) {
  out[at] = static_cast<char>(v >> 8);
  out[at + 1] = static_cast<char>(v & 0xff);
}

constexpr std::array<uint32_t, 256> make_crc_table() {
  std::array<uint32_t, 256> t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1U) != 0 ? 0xEDB88320U ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr std::array<uint32_t, 256> kCrcTable = make_crc_table();

// Header for a message of `type` whose attribute bytes are not written yet; the length is
// patched by the caller once they are. Returns the offset of the message start.
size_t begin_message(std::string& out, uint16_t type, const StunTransactionId& id) {
  size_t start = out.size();
  put16(out, type);
  put16(out, 0);
  put32(out, kStunMagicCookie);
  out.append(reinterpret_cast<const char*>(id.data()), id.size());
  return start;
}

void finish_message(std::string& out, size_t start, bool fingerprint) {
  if (fingerprint) {
    // The length covers the FINGERPRINT attribute itself before the CRC is taken (§14.7).
    patch16(out, start + 2, static_cast<uint16_t>(out.size() - start - kStunHeaderSize + 8));
    uint32_t crc = stun_crc32(std::string_view(out).substr(start)) ^ kStunFingerprintXor;
    put16(out, kStunAttrFingerprint);
    put16(out, 4);
    put32(out, crc);
  } else {
    patch16(out, start + 2, static_cast<uint16_t>(out.size() - start - kStunHeaderSize));
  }
}

// MAPPED-ADDRESS / XOR-MAPPED-ADDRESS value (§14.1, §14.2). `xor_key` is the magic cookie and
// transaction id (16 bytes) for the XOR form, nullptr for the plain one.
Result<net::Endpoint> decode_address(std::string_view v, const uint8_t* xor_key) {
  if (v.size() < 4) return kStunBadAddress;
  uint8_t family = static_cast<uint8_t>(v[1]);
  uint16_t port = read16(v, 2);
  if (xor_key != nullptr) port ^= static_cast<uint16_t>(kStunMagicCookie >> 16);
  if (family == 0x01) {
    if (v.size() != 8) return kStunBadAddress;
    std::array<uint8_t, 4> a{};
    for (size_t i = 0; i < 4; ++i) a[i] = static_cast<uint8_t>(v[4 + i]) ^ (xor_key != nullptr ? xor_key[i] : 0);
    return net::Endpoint{net::Address::v4(a), port};
  }
  if (family == 0x02) {
    if (v.size() != 20) return kStunBadAddress;
    std::array<uint8_t, 16> a{};
    for (size_t i = 0; i < 16; ++i) a[i] = static_cast<uint8_t>(v[4 + i]) ^ (xor_key != nullptr ? xor_key[i] : 0);
    return net::Endpoint{net::Address::v6(a), port};
  }
  return kStunBadAddress;
}

}  // namespace

bool looks_like_stun(std::string_view bytes) {
  if (bytes.size() < kStunHeaderSize) return false;
  if ((static_cast<uint8_t>(bytes[0]) & 0xC0) != 0) return false;
  if (read32(bytes, 4) != kStunMagicCookie) return false;
  size_t length = read16(bytes, 2);
  return length % 4 == 0 && kStunHeaderSize + length <= bytes.size();
}

uint32_t stun_crc32(std::string_view bytes) {
  uint32_t c = 0xFFFFFFFFU;
  for (char ch : bytes) c = kCrcTable[(c ^ static_cast<uint8_t>(ch)) & 0xFFU] ^ (c >> 8);
  return c ^ 0xFFFFFFFFU;
}

void append_binding_request(std::string& out, const StunTransactionId& id, bool fingerprint) {
  size_t start = begin_message(out, kStunBindingRequest, id);
  finish_message(out, start, fingerprint);
}

void append_binding_success(std::string& out, const StunTransactionId& id, const net::Endpoint& mapped,
                            bool fingerprint) {
  size_t start = begin_message(out, kStunBindingSuccess, id);
  std::array<uint8_t, 16> key{};
  key[0] = static_cast<uint8_t>(kStunMagicCookie >> 24);
  key[1] = static_cast<uint8_t>(kStunMagicCookie >> 16);
  key[2] = static_cast<uint8_t>(kStunMagicCookie >> 8);
  key[3] = static_cast<uint8_t>(kStunMagicCookie);
  for (size_t i = 0; i < id.size(); ++i) key[4 + i] = id[i];
  auto addr = mapped.address.bytes();
  put16(out, kStunAttrXorMappedAddress);
  put16(out, static_cast<uint16_t>(4 + addr.size()));
  out.push_back(0);
  out.push_back(mapped.address.is_v4() ? '\x01' : '\x02');
  put16(out, static_cast<uint16_t>(mapped.port ^ (kStunMagicCookie >> 16)));
  for (size_t i = 0; i < addr.size(); ++i) out.push_back(static_cast<char>(addr[i] ^ key[i]));
  finish_message(out, start, fingerprint);
}

Result<StunMessage> decode_stun(std::string_view bytes) {
  if (bytes.size() < kStunHeaderSize) return kStunTooShort;
  if ((static_cast<uint8_t>(bytes[0]) & 0xC0) != 0 || read32(bytes, 4) != kStunMagicCookie) return kStunNotStun;
  size_t length = read16(bytes, 2);
  // A datagram holds exactly one message: trailing bytes mean it is not what it claims to be.
  if (length % 4 != 0 || kStunHeaderSize + length != bytes.size()) return kStunBadLength;

  StunMessage m;
  m.type = read16(bytes, 0);
  std::array<uint8_t, 16> xor_key{};
  for (size_t i = 0; i < 16; ++i) xor_key[i] = static_cast<uint8_t>(bytes[4 + i]);
  for (size_t i = 0; i < kStunTransactionIdSize; ++i) m.transaction_id[i] = xor_key[4 + i];

  size_t pos = kStunHeaderSize;
  while (pos < bytes.size()) {
    if (m.has_fingerprint) return kStunBadAttribute;  // FINGERPRINT must be the last attribute
    if (bytes.size() - pos < 4) return kStunBadAttribute;
    uint16_t type = read16(bytes, pos);
    size_t alen = read16(bytes, pos + 2);
    size_t padded = (alen + 3) & ~size_t{3};
    if (padded > bytes.size() - pos - 4) return kStunBadAttribute;
    std::string_view value = bytes.substr(pos + 4, alen);
    switch (type) {
      case kStunAttrXorMappedAddress: {
        auto a = decode_address(value, xor_key.data());
        if (!a) return a.error();
        if (!m.xor_mapped) m.xor_mapped = *a;  // the first one counts (§14: duplicates are ignored)
        break;
      }
      case kStunAttrMappedAddress: {
        auto a = decode_address(value, nullptr);
        if (!a) return a.error();
        if (!m.mapped) m.mapped = *a;
        break;
      }
      case kStunAttrErrorCode:
        if (alen < 4) return kStunBadAttribute;
        if (!m.error_code) {
          m.error_code = static_cast<uint16_t>((static_cast<uint8_t>(value[2]) & 0x07) * 100 +
                                               static_cast<uint8_t>(value[3]) % 100);
        }
        break;
      case kStunAttrFingerprint: {
        if (alen != 4) return kStunBadAttribute;
        uint32_t want = stun_crc32(bytes.substr(0, pos)) ^ kStunFingerprintXor;
        if (read32(value, 0) != want) return kStunBadFingerprint;
        m.has_fingerprint = true;
        break;
      }
      default:
        break;
    }
    pos += 4 + padded;
  }
  return m;
}

Result<StunMessage> decode_binding_response(std::string_view bytes) {
  auto m = decode_stun(bytes);
  if (!m) return m.error();
  if (m->type != kStunBindingSuccess && m->type != kStunBindingError) return kStunNotBindingResponse;
  return m;
}

}  // namespace pinhole::nat
