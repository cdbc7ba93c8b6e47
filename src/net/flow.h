// A flow (RFC 5626 §3.3, DESIGN.md §1): where an inbound message came from and how to reach that
// peer again. The transport layer tags every inbound message with one; the NAT layer seals it
// into flow tokens.
#pragma once

#include <cstdint>
#include <utility>

#include "net/address.h"
#include "net/transport.h"

namespace pinhole::net {

struct Flow {
  Transport transport = Transport::kUdp;
  uint32_t local_socket_id = 0;  // the listening socket (UDP) or listener (streams) it came on
  Endpoint remote;
  uint64_t connection_id = 0;  // the stream connection; 0 for UDP
  friend bool operator==(const Flow&, const Flow&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const Flow& f) {  // NOLINT(readability-identifier-naming)
    return H::combine(std::move(h), f.transport, f.local_socket_id, f.remote, f.connection_id);
  }
};

}  // namespace pinhole::net
