// Unpredictable tokens for the UA: Via branches, tags, Call-IDs, digest cnonces, STUN
// transaction ids and the instance UUID, from the OpenSSL CSPRNG (a guessable branch or tag lets
// an off-path attacker forge responses), and the jitter the keepalive and backoff timers need.
//
// Threads: any thread (OpenSSL's RAND is thread-safe); no state of our own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace pinhole::ua {

// Fills `out` with random bytes; on the (never seen) failure of the CSPRNG falls back to
// std::random_device so that the UA keeps working.
void random_bytes(std::span<uint8_t> out);

// `bytes` random bytes as lower-case hex (2 * bytes characters).
std::string random_hex(size_t bytes);

// A uniformly random value in [low, high] (low <= high).
uint64_t random_between(uint64_t low, uint64_t high);

// A random RFC 4122 version 4 UUID as "urn:uuid:xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".
std::string random_uuid_urn();

}  // namespace pinhole::ua
