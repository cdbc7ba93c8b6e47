// Transaction matching keys (RFC 3261 §17.1.3 and §17.2.3), as strings the transaction table
// hashes. Requests with an RFC 3261 branch match on branch + sent-by + method; RFC 2543 requests
// (no magic cookie, RFC 4475 badbranch/inv2543) on Request-URI, tags, Call-ID, CSeq and top Via.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"
#include "sip/message.h"

namespace pinhole::sip {

// Key of the server transaction a request belongs to. ACK is keyed as INVITE so a hop-by-hop
// ACK for a non-2xx final response finds its INVITE transaction; CANCEL has its own key.
Result<std::string> server_transaction_key(const Message& request);

// Key of the INVITE server transaction a CANCEL refers to (RFC 3261 §9.2).
Result<std::string> cancelled_invite_key(const Message& cancel);

// Key of the client transaction a response belongs to: top Via branch + CSeq method.
Result<std::string> client_transaction_key(const Message& response);

// The same key computed from the request a client transaction sends, so its responses find it.
// The request must carry an RFC 3261 branch (ours always do); fails with 500 otherwise.
Result<std::string> client_transaction_key_of_request(const Message& request);

// The client key from its parts (top Via branch, CSeq method), for a TU that made the branch
// itself and need not parse its own request to find it (txn::TransactionTable::send_request).
std::string client_transaction_key_of(std::string_view branch, std::string_view method);

}  // namespace pinhole::sip
