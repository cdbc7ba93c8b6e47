// The branch parameters this proxy writes in its Via (RFC 3261 §16.6 step 8).
//
// Format: "z9hG4bK" "ph" WW HHHHHHHH "." N
//   WW        the worker that owns the client transaction, 2 hex digits: a response that the
//             kernel hands to another worker's socket (SO_REUSEPORT hashes by 4-tuple, and the
//             upstream's reply comes from a different tuple than the client's request) is
//             posted to the owner without any shared table.
//   HHHHHHHH  a hash of the request fields a loop would leave unchanged (§16.3 step 4): a
//             request that comes back with our Via and the same hash is a loop (482); a spiral
//             (the same request with a changed Request-URI) hashes differently.
//   N         a per-worker counter in hex: unique per client transaction.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "sip/message.h"

namespace pinhole::proxy {

std::string make_branch(uint8_t worker, uint32_t loop_hash, uint64_t counter);
// The worker of a branch we made; nullopt for branches that are not ours.
std::optional<uint8_t> branch_worker(std::string_view branch);
std::optional<uint32_t> branch_loop_hash(std::string_view branch);

// FNV-1a over the Request-URI, From tag, To tag, Call-ID, CSeq number, the top Route and
// Proxy-Require (the fields §16.6 step 8 names). Deterministic across processes.
uint32_t loop_hash(const sip::Message& request);

// A branch for a request forwarded statelessly (an ACK for a 2xx, §16.11): derived from the
// incoming top branch so a retransmitted ACK gets the same one.
std::string stateless_branch(uint8_t worker, std::string_view incoming_branch);

}  // namespace pinhole::proxy
