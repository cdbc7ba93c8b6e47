// Address classification by prefix, from the IANA special-purpose address registries.
#include "net/address_class.h"

#include <array>

namespace pinhole::net {
namespace {

// True when the top `length` bits of `a` equal those of `prefix` (host order, 1 <= length <= 32).
constexpr bool in_v4(uint32_t a, uint32_t prefix, unsigned length) {
  uint32_t mask = ~uint32_t{0} << (32 - length);
  return (a & mask) == (prefix & mask);
}

constexpr uint32_t v4(unsigned a, unsigned b, unsigned c, unsigned d) {
  return static_cast<uint32_t>(a << 24 | b << 16 | c << 8 | d);
}

AddressClass classify_v4(uint32_t a) {
  if (a == 0) return AddressClass::kUnspecified;
  if (a == 0xffffffffu) return AddressClass::kBroadcast;
  if (in_v4(a, v4(0, 0, 0, 0), 8)) return AddressClass::kReserved;
  if (in_v4(a, v4(127, 0, 0, 0), 8)) return AddressClass::kLoopback;
  if (in_v4(a, v4(10, 0, 0, 0), 8) || in_v4(a, v4(172, 16, 0, 0), 12) || in_v4(a, v4(192, 168, 0, 0), 16))
    return AddressClass::kPrivate;
  if (in_v4(a, v4(100, 64, 0, 0), 10)) return AddressClass::kSharedCgn;
  if (in_v4(a, v4(169, 254, 0, 0), 16)) return AddressClass::kLinkLocal;
  if (in_v4(a, v4(192, 0, 2, 0), 24) || in_v4(a, v4(198, 51, 100, 0), 24) || in_v4(a, v4(203, 0, 113, 0), 24))
    return AddressClass::kDocumentation;
  if (in_v4(a, v4(224, 0, 0, 0), 4)) return AddressClass::kMulticast;
  if (in_v4(a, v4(240, 0, 0, 0), 4)) return AddressClass::kReserved;
  return AddressClass::kPublic;
}

AddressClass classify_v6(std::span<const uint8_t> b) {
  bool zero_to_14 = true;
  for (size_t i = 0; i < 15; ++i) zero_to_14 = zero_to_14 && b[i] == 0;
  if (zero_to_14 && b[15] == 0) return AddressClass::kUnspecified;
  if (zero_to_14 && b[15] == 1) return AddressClass::kLoopback;
  if (b[0] == 0xff) return AddressClass::kMulticast;
  if (b[0] == 0xfe && (b[1] & 0xc0) == 0x80) return AddressClass::kLinkLocal;  // fe80::/10
  if ((b[0] & 0xfe) == 0xfc) return AddressClass::kUniqueLocal;                // fc00::/7
  if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8) return AddressClass::kDocumentation;
  if (b[0] == 0x3f && b[1] == 0xff && (b[2] & 0xf0) == 0) return AddressClass::kDocumentation;  // 3fff::/20
  return AddressClass::kPublic;
}

constexpr std::array<std::string_view, 11> kNames = {
    "public",       "unspecified", "loopback",  "private",       "shared-cgn", "link-local",
    "unique-local", "multicast",   "broadcast", "documentation", "reserved",
};

}  // namespace

AddressClass classify(const Address& address) {
  Address a = address.unmapped();
  return a.is_v4() ? classify_v4(a.v4_host_order()) : classify_v6(a.bytes());
}

std::string_view address_class_name(AddressClass c) {
  auto i = static_cast<size_t>(c);
  return i < kNames.size() ? kNames[i] : std::string_view("unknown");
}

bool is_private_for_nat(AddressClass c) {
  switch (c) {
    case AddressClass::kPrivate:
    case AddressClass::kSharedCgn:
    case AddressClass::kLinkLocal:
    case AddressClass::kUniqueLocal:
    case AddressClass::kLoopback:
      return true;
    case AddressClass::kPublic:
    case AddressClass::kUnspecified:
    case AddressClass::kMulticast:
    case AddressClass::kBroadcast:
    case AddressClass::kDocumentation:
    case AddressClass::kReserved:
      return false;
  }
  return false;
}

}  // namespace pinhole::net
