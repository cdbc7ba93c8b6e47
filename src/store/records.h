// The records the store persists: one registered contact of an AOR (BindingRecord) and one digest
// user (UserRecord). Plain values shared by the registrar, the location service and every Store
// implementation (src/store/store.h); no behaviour here.
//
// Threads: plain values, no shared state; use them anywhere.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "net/flow.h"

namespace pinhole::store {

// One registered contact of an AOR (RFC 3261 §10, RFC 5626). Wall-clock times so they survive restarts.
struct BindingRecord {
  std::string aor;         // canonical AOR "sip:user@domain" (the registrar canonicalises)
  std::string binding_id;  // unique within the AOR: "<+sip.instance>;reg-id=<n>" or the Contact URI
  std::string contact;     // the Contact URI as the UA sent it (params included, no display name)
  std::string instance;    // +sip.instance value, "" when none
  uint32_t reg_id = 0;     // 0 when none
  std::string call_id;
  uint32_t cseq = 0;
  int32_t q_milli = -1;           // q-value * 1000; -1 when the Contact had none
  int64_t expires_at = 0;         // unix seconds (UTC) when the binding lapses
  int64_t registered_at = 0;      // unix seconds of the last successful REGISTER
  net::Flow flow;                 // how to reach the UA: transport, local socket id, remote endpoint, connection id
  std::vector<std::string> path;  // Path header values (RFC 3327), in order, as received
  std::string user_agent;
  std::string nat;   // NAT verdict: comma-separated names of the detection tests that fired, "" = not NATed
  std::string node;  // id of the pinhole node that holds the flow (cluster routing)
  friend bool operator==(const BindingRecord&, const BindingRecord&) = default;
};

// A digest user (RFC 8760): credentials are stored only as HA1 = H(username:realm:password).
struct UserRecord {
  std::string username;
  std::string realm;       // also the SIP domain the user belongs to
  std::string ha1_md5;     // lowercase hex
  std::string ha1_sha256;  // lowercase hex
  friend bool operator==(const UserRecord&, const UserRecord&) = default;
};

}  // namespace pinhole::store
