// The records the store persists: one registered contact of an AOR (BindingRecord), one digest
// user (UserRecord) and one NAT keepalive endpoint with its reasons (KeepaliveRecord). Plain values shared by the
// registrar, the location service and every Store implementation (src/store/store.h); no behaviour here.
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

// One reason a keepalive endpoint is kept alive (nat::KeepaliveEngine::ReasonDetail, persisted).
struct KeepaliveReasonRecord {
  // nat::KeepaliveReason's values: 0 registration, 1 subscription, 2 dialog. A number here so that
  // the store does not depend on the nat layer; the reloader refuses values it does not know.
  uint8_t kind = 0;
  uint64_t key_hash = 0;   // nat::KeepaliveEngine::key_hash of the binding key / dialog id
  int64_t expires_at = 0;  // unix seconds (system clock: a steady clock does not survive restarts)
  friend bool operator==(const KeepaliveReasonRecord&, const KeepaliveReasonRecord&) = default;
};

// One keepalive endpoint (issue 5, persistence): the flow pinhole pings and why. Keyed by (node,
// flow): each node saves and reloads only its own endpoints, so in a cluster sharing Redis no
// endpoint is pinged by two nodes.
//
// Every flow is stored as it was, but the lead reloads only UDP endpoints: a TCP/TLS/WS connection
// does not survive the restart (its connection_id names a connection of the old process), so a
// stream endpoint comes back only when the UA reconnects and re-registers on a new flow.
struct KeepaliveRecord {
  std::string node;  // id of the pinhole node that holds the flow and sends the keepalives
  net::Flow flow;    // transport, local socket id, remote address:port, connection id (0 for UDP)
  std::vector<KeepaliveReasonRecord> reasons;
  uint32_t interval_s = 0;  // the endpoint's current (possibly learned) interval
  friend bool operator==(const KeepaliveRecord&, const KeepaliveRecord&) = default;
};

}  // namespace pinhole::store
