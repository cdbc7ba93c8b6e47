// 16-byte SSE2 helpers for the parser's hot scans (line ends, header names, hosts).
//
// SSE2 is part of the x86-64 baseline, so these need no CPU check. A block is 16 bytes that must
// all lie inside the caller's buffer: callers load whole blocks while they fit and, near the end,
// the last 16 bytes of the buffer, shifting away the bits of bytes they already looked at; they
// never read outside the text they were given. In every mask, bit i stands for byte i.
#pragma once

#include <emmintrin.h>

#include <cstddef>
#include <cstring>

namespace pinhole::sip::simd {

inline constexpr size_t kBlock = 16;

inline __m128i load(const char* p) {
  __m128i block;
  std::memcpy(&block, p, kBlock);  // an unaligned load (movdqu)
  return block;
}

inline unsigned mask_of(__m128i bytes) { return static_cast<unsigned>(_mm_movemask_epi8(bytes)); }

// Bytes equal to c.
inline unsigned eq(__m128i block, char c) { return mask_of(_mm_cmpeq_epi8(block, _mm_set1_epi8(c))); }

// Bytes in [lo, hi] (as unsigned values, lo <= hi). SSE2 compares only signed bytes: subtracting
// lo + 128 maps [lo, hi] onto [-128, hi - lo - 128] and every other byte above it.
inline unsigned in_range(__m128i block, unsigned char lo, unsigned char hi) {
  __m128i shifted = _mm_sub_epi8(block, _mm_set1_epi8(static_cast<char>(lo + 128)));
  return mask_of(_mm_cmplt_epi8(shifted, _mm_set1_epi8(static_cast<char>(hi - lo - 128 + 1))));
}

inline unsigned digits(__m128i block) { return in_range(block, '0', '9'); }

// ASCII letters: OR-ing 0x20 maps 'A'-'Z' onto 'a'-'z' and no other byte into that range.
inline unsigned letters(__m128i block) { return in_range(_mm_or_si128(block, _mm_set1_epi8(0x20)), 'a', 'z'); }

}  // namespace pinhole::sip::simd
