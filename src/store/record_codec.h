// Byte-exact serialisation of what the stores keep as one value: a binding as the Redis hash field
// value (pinhole:aor:<aor> -> binding_id -> value), a keepalive endpoint (the Redis key's value and
// the SQLite `value` column), and a list of strings (the Path values in an SQLite column).
//
// Why not JSON: SIP header values are bytes, not necessarily UTF-8, and a JSON writer must either
// refuse or alter them; every field here is a length-prefixed byte string, so any value round-trips.
//
// Format, version 1: "1;" then the fields, each "<decimal length>:<bytes>", in this order:
// expires_at, registered_at, contact, instance, reg_id, call_id, cseq, q_milli, transport name,
// local_socket_id, remote address, remote port, connection_id, user_agent, nat, node, the number of
// Path values, the Path values. Integers are decimal text. expires_at comes first so that the
// Redis scripts can read it without decoding the rest (redis_store.cc). A later version that only
// appends fields keeps the "1;" (readers ignore what follows the known fields); any other change
// takes a new version, which older readers refuse (and count as a decode error).
//
// Keepalive endpoint, version 1: "1;" then interval_s, transport name, local_socket_id, remote
// address, remote port, connection_id, the number of reasons, and per reason kind, key_hash,
// expires_at. The node is not in the value (it is part of the key). The same versioning rules.
//
// Threads: pure functions; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "net/flow.h"
#include "store/records.h"

namespace pinhole::store {

// Everything but aor and binding_id, which are the Redis key and hash field.
std::string encode_binding_value(const BindingRecord& b);
// The inverse; the stored bytes are not trusted: anything malformed, truncated or of another
// version is an Error (status 500), never an assert.
Result<BindingRecord> decode_binding_value(std::string_view aor, std::string_view binding_id, std::string_view value);

// Everything but the node, which is part of the key.
std::string encode_keepalive_value(const KeepaliveRecord& k);
// The inverse, as untrusting as decode_binding_value (Error 500). A reason kind above 255 or a
// reason count past 4096 is corruption.
Result<KeepaliveRecord> decode_keepalive_value(std::string_view node, std::string_view value);
// The text that names an endpoint's flow within its node (SQLite key column, Redis key suffix):
// "<transport>/<local socket id>/<remote endpoint>/<connection id>", e.g. "udp/2/203.0.113.5:4000/0"
// or "tls/1/[2001:db8::1]:5061/7". Canonical (one text per flow), so equal flows give equal keys.
std::string keepalive_flow_key(const net::Flow& flow);
// The latest expires_at of the record's reasons; 0 when it has none.
int64_t keepalive_latest_expiry(const KeepaliveRecord& k);

// "<len>:<bytes>" per entry, concatenated; the empty list is "".
std::string encode_string_list(const std::vector<std::string>& list);
Result<std::vector<std::string>> decode_string_list(std::string_view text);

}  // namespace pinhole::store
