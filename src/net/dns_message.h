// The part of DNS the SIP resolver needs that c-ares 1.18 (Debian 12) does not give: the answer
// section of a response with every record's TTL (its ares_parse_srv_reply and
// ares_parse_naptr_reply drop TTLs, and refreshing an upstream at TTL expiry needs them), and the
// RFC 2782 weighted order of SRV records.
//
// The parser reads untrusted bytes from the network: every read is bounds-checked, compression
// pointers may only point backwards and are followed a bounded number of times, and a malformed
// message is an error, never an assert.
//
// Threads: plain functions and values, no shared state.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "common/result.h"
#include "net/address.h"

namespace pinhole::net {

enum class DnsType : uint16_t { kA = 1, kCname = 5, kAaaa = 28, kSrv = 33, kNaptr = 35 };

// One resource record of a type listed above; other types are skipped by the parser. Names are
// lower case, without the final dot, with any byte outside [a-z0-9-_] kept as is.
struct DnsRecord {
  std::string name;  // owner name
  DnsType type = DnsType::kA;
  uint32_t ttl = 0;
  Address address;          // A, AAAA
  std::string target;       // CNAME: canonical name; SRV: target; NAPTR: replacement ("" for ".")
  uint16_t priority = 0;    // SRV
  uint16_t weight = 0;      // SRV
  uint16_t port = 0;        // SRV
  uint16_t order = 0;       // NAPTR
  uint16_t preference = 0;  // NAPTR
  std::string flags;        // NAPTR, as sent
  std::string service;      // NAPTR, as sent
  std::string regexp;       // NAPTR, as sent
};

struct DnsResponse {
  uint16_t rcode = 0;  // 0 NOERROR, 3 NXDOMAIN...
  std::vector<DnsRecord> answers;
};

// Parses a whole DNS response (header, question and answer sections; authority and additional
// are not read). Error status 503: to a SIP element a garbled DNS answer means "cannot reach".
Result<DnsResponse> parse_dns_response(std::span<const uint8_t> message);

// The records of `type` that answer `name` in `answers`, following CNAMEs from `name` (at most
// 8), e.g. the A records of "sip.example.com" when the server answered with a CNAME to
// "host.example.com" and host's A records. `min_ttl` is lowered to the smallest TTL on the chain
// and the records returned.
std::vector<const DnsRecord*> answers_for(const DnsResponse& response, std::string name, DnsType type,
                                          uint32_t& min_ttl);

// RFC 2782 order: ascending priority; within one priority a weighted random permutation (each
// record in turn picked with probability weight/sum of the remaining weights, weight-0 records
// having a small chance, placed first in the running sum as the RFC says).
void order_srv(std::vector<DnsRecord>& records, std::mt19937& random);

}  // namespace pinhole::net
