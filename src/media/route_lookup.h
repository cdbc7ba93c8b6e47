// Which way this host would send a datagram: the kernel's routing table asked over rtnetlink
// (RTM_GETROUTE, what `ip route get` does). The kernel fast path (fast_path.h) asks once per rule
// at install, so that its program knows the interface to redirect out of without asking the
// FIB per packet (the FIB helper refuses lookups on interfaces that do not forward).
//
// Threads: any; each call opens its own netlink socket, in the calling thread's network
// namespace. Blocks for one kernel round trip (bounded by a 1 s receive timeout).
#pragma once

#include <cstdint>

#include "common/result.h"
#include "net/address.h"

namespace pinhole::media {

struct RouteChoice {
  bool local = false;    // an address of this host: the kernel delivers it up the stack
  uint32_t ifindex = 0;  // otherwise the interface it leaves by
};

// The route from `source` (an address of this host, or unspecified) to `destination`, both the
// same family. No route, unreachable, blackhole, or a netlink failure: Error{503, ...}.
Result<RouteChoice> lookup_route(const net::Address& source, const net::Address& destination);

}  // namespace pinhole::media
