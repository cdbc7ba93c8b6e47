#include "ua/random.h"

#include <openssl/rand.h>

#include <array>
#include <random>

namespace pinhole::ua {

void random_bytes(std::span<uint8_t> out) {
  if (out.empty()) return;
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) == 1) return;
  std::random_device device;
  for (auto& b : out) b = static_cast<uint8_t>(device());
}

std::string random_hex(size_t bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text;
  text.reserve(bytes * 2);
  std::array<uint8_t, 32> chunk{};
  while (bytes > 0) {
    size_t n = bytes < chunk.size() ? bytes : chunk.size();
    random_bytes({chunk.data(), n});
    for (size_t i = 0; i < n; ++i) {
      text.push_back(kDigits[chunk[i] >> 4]);
      text.push_back(kDigits[chunk[i] & 0xf]);
    }
    bytes -= n;
  }
  return text;
}

uint64_t random_between(uint64_t low, uint64_t high) {
  if (high <= low) return low;
  std::array<uint8_t, 8> b{};
  random_bytes(b);
  uint64_t v = 0;
  for (uint8_t x : b) v = (v << 8) | x;
  uint64_t span = high - low;
  if (span == UINT64_MAX) return v;
  return low + v % (span + 1);  // the modulo bias is irrelevant for timer jitter
}

std::string random_uuid_urn() {
  std::array<uint8_t, 16> b{};
  random_bytes(b);
  b[6] = static_cast<uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<uint8_t>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string text = "urn:uuid:";
  for (size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) text.push_back('-');
    text.push_back(kDigits[b[i] >> 4]);
    text.push_back(kDigits[b[i] & 0xf]);
  }
  return text;
}

}  // namespace pinhole::ua
