#include "ua/g711.h"

namespace pinhole::ua {

uint8_t linear_to_ulaw(int16_t sample) {
  // μ-law works on magnitudes with a bias of 0x84 so that every segment starts at a power of two.
  constexpr int kBias = 0x84;
  constexpr int kClip = 32635;
  int value = sample;
  int sign = 0;
  if (value < 0) {
    sign = 0x80;
    value = -value;
  }
  if (value > kClip) value = kClip;
  value += kBias;
  int exponent = 7;
  for (int mask = 0x4000; (value & mask) == 0 && exponent > 0; mask >>= 1) --exponent;
  int mantissa = (value >> (exponent + 3)) & 0x0f;
  return static_cast<uint8_t>(~(sign | (exponent << 4) | mantissa));
}

uint8_t linear_to_alaw(int16_t sample) {
  // A-law uses 13 significant bits; even bits are inverted on the wire (the 0x55 mask).
  int value = sample >> 3;
  int mask = 0xd5;
  if (value < 0) {
    mask = 0x55;
    value = -value - 1;
  }
  int segment = 0;
  for (int end = 0x1f; segment < 8 && value > end; end = (end << 1) | 1) ++segment;
  if (segment >= 8) return static_cast<uint8_t>(0x7f ^ mask);
  int code = segment << 4;
  code |= segment < 2 ? (value >> 1) & 0x0f : (value >> segment) & 0x0f;
  return static_cast<uint8_t>(code ^ mask);
}

}  // namespace pinhole::ua
