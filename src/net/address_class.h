// What kind of address an IP literal is, as NAT detection and routing policy need to know it:
// RFC 1918 private, RFC 6598 shared (carrier-grade NAT), loopback, link-local, ULA, multicast,
// broadcast, documentation, reserved or public (RFC 6890 special-purpose registries).
//
// Threads: pure functions.
#pragma once

#include <cstdint>
#include <string_view>

#include "net/address.h"

namespace pinhole::net {

enum class AddressClass : uint8_t {
  kPublic,         // none of the below: assumed globally routable
  kUnspecified,    // 0.0.0.0, :: (RFC 1122, RFC 4291 §2.5.2)
  kLoopback,       // 127.0.0.0/8, ::1
  kPrivate,        // RFC 1918: 10/8, 172.16/12, 192.168/16
  kSharedCgn,      // RFC 6598: 100.64/10, the inside of carrier-grade NAT
  kLinkLocal,      // 169.254/16 (RFC 3927), fe80::/10 (RFC 4291)
  kUniqueLocal,    // fc00::/7 (RFC 4193)
  kMulticast,      // 224/4, ff00::/8
  kBroadcast,      // 255.255.255.255: never a destination (RFC 4475 §3.1.2.17 bcast)
  kDocumentation,  // 192.0.2/24, 198.51.100/24, 203.0.113/24 (RFC 5737), 2001:db8::/32 (RFC 3849),
                   // 3fff::/20 (RFC 9637)
  kReserved,       // 0/8 other than 0.0.0.0 ("this network", source only), 240/4 other than
                   // the broadcast address (RFC 1112 §4, never deployed)
};

// IPv4-mapped IPv6 addresses (::ffff:a.b.c.d) are classified as their IPv4 address: a dual-stack
// socket reports IPv4 peers that way, and ::ffff:192.168.1.10 is as private as 192.168.1.10.
AddressClass classify(const Address& address);

// "public", "unspecified", "loopback", "private", "shared-cgn", "link-local", "unique-local",
// "multicast", "broadcast", "documentation", "reserved": for logs and the admin API.
std::string_view address_class_name(AddressClass c);

// True for the classes whose addresses a host outside the sender's own network cannot reach,
// so that seeing one in a Contact, Via or SDP c= line from a remote peer means the peer sits
// behind a NAT (or is misconfigured) and its real address is the packet's source:
//   private (RFC 1918), shared-cgn (RFC 6598), link-local, unique-local, and loopback.
// Loopback counts: a remote client whose Contact says 127.0.0.1 cannot be reached there, and
// believing it would send the client's requests to the edge's own host (a loop, or a request
// into a local service). When the client really is local, "fixing" its Contact to the source
// changes nothing, since the source is the same loopback address.
// Not counted: documentation ranges (public for our purposes: the NAT lab's wan is
// 203.0.113.0/24), unspecified (c=0.0.0.0 is RFC 2543 hold, not a NAT), multicast (a real
// multicast session), broadcast and reserved (refused elsewhere, never rewritten to a source).
bool is_private_for_nat(AddressClass c);
inline bool is_private_for_nat(const Address& address) { return is_private_for_nat(classify(address)); }

}  // namespace pinhole::net
