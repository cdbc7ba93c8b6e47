// Address classification: every range's first and last address and the addresses just outside
// it, from the RFCs that define the ranges (RFC 1918, 6598, 1122, 3927, 4291, 4193, 5737, 3849,
// 9637, 1112, 919), and the NAT view of each class.
#include "net/address_class.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string_view>

namespace pinhole::net {
namespace {

struct Case {
  std::string_view address;
  AddressClass expected;
};

Address must_parse(std::string_view text) {
  auto r = Address::parse(text);
  EXPECT_TRUE(r.ok()) << text;
  return r.ok() ? *r : Address{};
}

void expect_classes(std::initializer_list<Case> cases) {
  for (const Case& c : cases) {
    EXPECT_EQ(address_class_name(classify(must_parse(c.address))), address_class_name(c.expected)) << c.address;
  }
}

constexpr AddressClass kPublic = AddressClass::kPublic;

TEST(AddressClassV4, Rfc1918) {
  expect_classes({
      {"9.255.255.255", kPublic},
      {"10.0.0.0", AddressClass::kPrivate},
      {"10.255.255.255", AddressClass::kPrivate},
      {"11.0.0.0", kPublic},
      {"172.15.255.255", kPublic},
      {"172.16.0.0", AddressClass::kPrivate},
      {"172.31.255.255", AddressClass::kPrivate},
      {"172.32.0.0", kPublic},
      {"192.167.255.255", kPublic},
      {"192.168.0.0", AddressClass::kPrivate},
      {"192.168.255.255", AddressClass::kPrivate},
      {"192.169.0.0", kPublic},
  });
}

TEST(AddressClassV4, SharedCgn) {
  expect_classes({
      {"100.63.255.255", kPublic},
      {"100.64.0.0", AddressClass::kSharedCgn},
      {"100.127.255.255", AddressClass::kSharedCgn},
      {"100.128.0.0", kPublic},
  });
}

TEST(AddressClassV4, LoopbackAndLinkLocal) {
  expect_classes({
      {"126.255.255.255", kPublic},
      {"127.0.0.0", AddressClass::kLoopback},
      {"127.0.0.1", AddressClass::kLoopback},
      {"127.255.255.255", AddressClass::kLoopback},
      {"128.0.0.0", kPublic},
      {"169.253.255.255", kPublic},
      {"169.254.0.0", AddressClass::kLinkLocal},
      {"169.254.255.255", AddressClass::kLinkLocal},
      {"169.255.0.0", kPublic},
  });
}

TEST(AddressClassV4, Documentation) {
  expect_classes({
      {"192.0.1.255", kPublic},
      {"192.0.2.0", AddressClass::kDocumentation},
      {"192.0.2.255", AddressClass::kDocumentation},
      {"192.0.3.0", kPublic},
      {"198.51.99.255", kPublic},
      {"198.51.100.0", AddressClass::kDocumentation},
      {"198.51.100.255", AddressClass::kDocumentation},
      {"198.51.101.0", kPublic},
      {"203.0.112.255", kPublic},
      {"203.0.113.0", AddressClass::kDocumentation},
      {"203.0.113.255", AddressClass::kDocumentation},
      {"203.0.114.0", kPublic},
  });
}

TEST(AddressClassV4, MulticastBroadcastReservedUnspecified) {
  expect_classes({
      {"223.255.255.255", kPublic},
      {"224.0.0.0", AddressClass::kMulticast},
      {"239.255.255.255", AddressClass::kMulticast},
      {"240.0.0.0", AddressClass::kReserved},
      {"255.255.255.254", AddressClass::kReserved},
      {"255.255.255.255", AddressClass::kBroadcast},
      {"0.0.0.0", AddressClass::kUnspecified},
      {"0.0.0.1", AddressClass::kReserved},
      {"0.255.255.255", AddressClass::kReserved},
      {"1.0.0.0", kPublic},
      {"8.8.8.8", kPublic},
  });
}

TEST(AddressClassV6, Specials) {
  expect_classes({
      {"::", AddressClass::kUnspecified},
      {"::1", AddressClass::kLoopback},
      {"::2", kPublic},
      {"0:0:0:0:0:0:0:100", kPublic},
      {"1::1", kPublic},
  });
}

TEST(AddressClassV6, LinkLocalUlaMulticast) {
  expect_classes({
      {"fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", kPublic},
      {"fc00::", AddressClass::kUniqueLocal},
      {"fd12:3456:789a::1", AddressClass::kUniqueLocal},
      {"fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", AddressClass::kUniqueLocal},
      {"fe00::", kPublic},
      {"fe7f:ffff:ffff:ffff:ffff:ffff:ffff:ffff", kPublic},
      {"fe80::", AddressClass::kLinkLocal},
      {"fe80::1", AddressClass::kLinkLocal},
      {"febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", AddressClass::kLinkLocal},
      {"fec0::", kPublic},  // deprecated site-local (RFC 3879): not one of ours
      {"feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", kPublic},
      {"ff00::", AddressClass::kMulticast},
      {"ff02::1", AddressClass::kMulticast},
      {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", AddressClass::kMulticast},
  });
}

TEST(AddressClassV6, Documentation) {
  expect_classes({
      {"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", kPublic},
      {"2001:db8::", AddressClass::kDocumentation},
      {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", AddressClass::kDocumentation},
      {"2001:db9::", kPublic},
      {"3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", kPublic},
      {"3fff::", AddressClass::kDocumentation},
      {"3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", AddressClass::kDocumentation},
      {"3fff:1000::", kPublic},
      {"2001:4860:4860::8888", kPublic},
  });
}

TEST(AddressClassV6, MappedIsClassifiedAsItsIPv4) {
  expect_classes({
      {"::ffff:10.0.0.1", AddressClass::kPrivate},
      {"::ffff:172.31.255.255", AddressClass::kPrivate},
      {"::ffff:172.32.0.0", kPublic},
      {"::ffff:100.64.0.1", AddressClass::kSharedCgn},
      {"::ffff:127.0.0.1", AddressClass::kLoopback},
      {"::ffff:169.254.1.1", AddressClass::kLinkLocal},
      {"::ffff:203.0.113.10", AddressClass::kDocumentation},
      {"::ffff:8.8.8.8", kPublic},
      {"::ffff:224.0.0.1", AddressClass::kMulticast},
      {"::ffff:255.255.255.255", AddressClass::kBroadcast},
      {"::ffff:0.0.0.0", AddressClass::kUnspecified},
      // Not mapped: ::ffff:0:0/96 (RFC 2765) and IPv4-compatible ::/96 are plain IPv6.
      {"::ffff:0:10.0.0.1", kPublic},
      {"::10.0.0.1", kPublic},
  });
}

TEST(AddressClass, PrivateForNat) {
  for (std::string_view yes :
       {"10.1.2.3", "172.16.0.1", "192.168.1.10", "100.64.0.1", "100.127.255.255", "169.254.1.1", "127.0.0.1",
        "127.1.2.3", "::1", "fe80::1", "fc00::1", "fd00::1", "::ffff:192.168.1.10", "::ffff:127.0.0.1"}) {
    EXPECT_TRUE(is_private_for_nat(must_parse(yes))) << yes;
  }
  // The NAT lab's wan (203.0.113.0/24) and the other documentation ranges are public here;
  // unspecified (SDP hold), multicast, broadcast and reserved are not NAT evidence.
  for (std::string_view no :
       {"203.0.113.10", "203.0.113.101", "198.51.100.1", "192.0.2.1", "2001:db8::1", "3fff::1", "8.8.8.8",
        "2001:4860:4860::8888", "0.0.0.0", "::", "224.0.0.1", "ff02::1", "255.255.255.255", "240.0.0.1", "0.1.2.3",
        "100.128.0.0", "172.32.0.1", "fec0::1", "::ffff:203.0.113.10"}) {
    EXPECT_FALSE(is_private_for_nat(must_parse(no))) << no;
  }
}

TEST(AddressClass, PrivateForNatByClass) {
  EXPECT_TRUE(is_private_for_nat(AddressClass::kPrivate));
  EXPECT_TRUE(is_private_for_nat(AddressClass::kSharedCgn));
  EXPECT_TRUE(is_private_for_nat(AddressClass::kLinkLocal));
  EXPECT_TRUE(is_private_for_nat(AddressClass::kUniqueLocal));
  EXPECT_TRUE(is_private_for_nat(AddressClass::kLoopback));
  EXPECT_FALSE(is_private_for_nat(AddressClass::kPublic));
  EXPECT_FALSE(is_private_for_nat(AddressClass::kUnspecified));
  EXPECT_FALSE(is_private_for_nat(AddressClass::kMulticast));
  EXPECT_FALSE(is_private_for_nat(AddressClass::kBroadcast));
  EXPECT_FALSE(is_private_for_nat(AddressClass::kDocumentation));
  EXPECT_FALSE(is_private_for_nat(AddressClass::kReserved));
}

TEST(AddressClass, Names) {
  EXPECT_EQ(address_class_name(AddressClass::kPublic), "public");
  EXPECT_EQ(address_class_name(AddressClass::kUnspecified), "unspecified");
  EXPECT_EQ(address_class_name(AddressClass::kLoopback), "loopback");
  EXPECT_EQ(address_class_name(AddressClass::kPrivate), "private");
  EXPECT_EQ(address_class_name(AddressClass::kSharedCgn), "shared-cgn");
  EXPECT_EQ(address_class_name(AddressClass::kLinkLocal), "link-local");
  EXPECT_EQ(address_class_name(AddressClass::kUniqueLocal), "unique-local");
  EXPECT_EQ(address_class_name(AddressClass::kMulticast), "multicast");
  EXPECT_EQ(address_class_name(AddressClass::kBroadcast), "broadcast");
  EXPECT_EQ(address_class_name(AddressClass::kDocumentation), "documentation");
  EXPECT_EQ(address_class_name(AddressClass::kReserved), "reserved");
}

}  // namespace
}  // namespace pinhole::net
