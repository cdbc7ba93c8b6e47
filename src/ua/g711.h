// G.711 encoders (ITU-T G.711 μ-law and A-law) for the tone the UA sends: 16-bit linear PCM
// sample in, one byte out.
//
// Threads: pure functions; any thread.
#pragma once

#include <cstdint>

namespace pinhole::ua {

uint8_t linear_to_ulaw(int16_t sample);
uint8_t linear_to_alaw(int16_t sample);

}  // namespace pinhole::ua
