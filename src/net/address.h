// IP addresses and endpoints as values: parsed from the text SIP and config carry, formatted the
// way SIP and logs want them (IPv6 in RFC 5952 canonical form), converted to and from the socket
// API's sockaddr_storage, comparable and hashable so they can key flow and keepalive tables.
//
// Threads: plain values, no shared state; use them anywhere.
#pragma once

#include <sys/socket.h>

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "common/result.h"

namespace pinhole::net {

enum class Family : uint8_t { kIPv4, kIPv6 };

// Longest text format() can produce: "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" is 45
// characters (INET6_ADDRSTRLEN less its NUL); an endpoint adds "[", "]:" and 5 digits.
inline constexpr size_t kMaxAddressText = 45;
inline constexpr size_t kMaxEndpointText = kMaxAddressText + 8;

// Text of an address or endpoint in a fixed buffer, so that the data path (a Via `received`, a
// log line) can format without a heap allocation.
template <size_t N>
class FixedText {
 public:
  std::string_view view() const { return {data_.data(), size_}; }
  operator std::string_view() const { return view(); }  // NOLINT(google-explicit-constructor)
  friend bool operator==(const FixedText& t, std::string_view s) { return t.view() == s; }
  void append(std::string_view s) {
    // Callers size N for the longest output; a longer append is a bug, so it is cut, not grown.
    size_t n = s.size() < N - size_ ? s.size() : N - size_;
    for (size_t i = 0; i < n; ++i) data_[size_ + i] = s[i];
    size_ += n;
  }
  void push_back(char c) {
    if (size_ < N) data_[size_++] = c;
  }

 private:
  std::array<char, N> data_{};
  size_t size_ = 0;
};
using AddressText = FixedText<kMaxAddressText>;
using EndpointText = FixedText<kMaxEndpointText>;

// An IPv4 or IPv6 address: 16 bytes and a family (17 bytes, no heap). IPv4 addresses use the
// first 4 bytes and keep the other 12 zero, so the defaulted comparisons are exact.
//
// An IPv4-mapped IPv6 address (::ffff:a.b.c.d, RFC 4291 §2.5.5.2) stays an IPv6 value as written
// (parse and from_sockaddr never convert silently, so round trips are exact); is_v4_mapped() and
// unmapped() give its IPv4 meaning, which is what classification and the NAT tests compare.
// Order: every IPv4 address before every IPv6 one, then numeric order within a family.
class Address {
 public:
  // 0.0.0.0.
  Address() = default;

  static Address v4(uint32_t host_order);
  static Address v4(std::array<uint8_t, 4> network_order);
  static Address v6(const std::array<uint8_t, 16>& network_order);

  // Accepts an IPv4 dotted quad (RFC 3261 IPv4address: 1 to 3 decimal digits per octet, leading
  // zeros read as decimal, never octal, as the SIP parser reads them), an IPv6 address with or
  // without brackets, IPv4-embedded forms included. Refuses anything else, zone ids ("%eth0")
  // included: SIP carries none and they would not survive into a URI. Error status 400.
  static Result<Address> parse(std::string_view text);

  Family family() const { return family_; }
  bool is_v4() const { return family_ == Family::kIPv4; }
  bool is_v6() const { return family_ == Family::kIPv6; }
  // The address bytes in network order: 4 for IPv4, 16 for IPv6.
  std::span<const uint8_t> bytes() const { return {bytes_.data(), is_v4() ? size_t{4} : size_t{16}}; }
  // IPv4 only (0 for IPv6): the address as a number, for range checks.
  uint32_t v4_host_order() const;

  bool is_v4_mapped() const;
  // The IPv4 address of an IPv4-mapped one; any other address unchanged.
  Address unmapped() const;
  // An IPv4 address as ::ffff:a.b.c.d (for sending from a dual-stack AF_INET6 socket); an IPv6
  // address unchanged.
  Address v4_mapped() const;

  // IPv4 dotted quad without leading zeros; IPv6 in RFC 5952 form (lower case, longest run of
  // two or more zero groups shortened to "::", the first on a tie, IPv4-mapped addresses as
  // ::ffff:a.b.c.d). No brackets.
  AddressText format() const;
  std::string to_string() const { return std::string(format().view()); }

  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 flags the synthesized comparison with 0.
  friend auto operator<=>(const Address&, const Address&) = default;
  friend bool operator==(const Address&, const Address&) = default;

  // The name absl::Hash looks up (ADL), hence not snake_case.
  template <typename H>
  friend H AbslHashValue(H h, const Address& a) {  // NOLINT(readability-identifier-naming)
    return H::combine(H::combine_contiguous(std::move(h), a.bytes_.data(), a.bytes_.size()), a.family_);
  }
  size_t hash() const;  // for std::hash; absl::Hash uses AbslHashValue above

 private:
  Family family_ = Family::kIPv4;
  std::array<uint8_t, 16> bytes_{};
};

// An address and a port: where a datagram came from, where a flow goes.
struct Endpoint {
  Address address;
  uint16_t port = 0;

  // "1.2.3.4:5060" or "[2001:db8::1]:5060". Without a port the text is refused unless
  // `default_port` is given ("1.2.3.4", "[2001:db8::1]" and a bare "2001:db8::1" then take
  // it). Port 0..65535, decimal, at most 5 digits. Error status 400.
  static Result<Endpoint> parse(std::string_view text);
  static Result<Endpoint> parse(std::string_view text, uint16_t default_port);

  // Reads an AF_INET or AF_INET6 socket address (as recvfrom/accept fill it). Other families
  // and short lengths are refused. An IPv6 scope id is dropped (see Address::parse).
  static Result<Endpoint> from_sockaddr(const sockaddr* addr, socklen_t length);
  static Result<Endpoint> from_sockaddr(const sockaddr_storage& addr, socklen_t length) {
    return from_sockaddr(reinterpret_cast<const sockaddr*>(&addr), length);
  }
  // Writes sockaddr_in for IPv4 and sockaddr_in6 for IPv6 (use v4_mapped() first to send to an
  // IPv4 peer from an AF_INET6 socket) and returns the length to pass to sendto/connect.
  socklen_t to_sockaddr(sockaddr_storage& out) const;

  // "a.b.c.d:port", "[v6]:port".
  EndpointText format() const;
  std::string to_string() const { return std::string(format().view()); }

  Endpoint unmapped() const { return {address.unmapped(), port}; }

  // NOLINTNEXTLINE(modernize-use-nullptr): clang-tidy 14 flags the synthesized comparison with 0.
  friend auto operator<=>(const Endpoint&, const Endpoint&) = default;
  friend bool operator==(const Endpoint&, const Endpoint&) = default;

  template <typename H>
  friend H AbslHashValue(H h, const Endpoint& e) {  // NOLINT(readability-identifier-naming)
    return H::combine(std::move(h), e.address, e.port);
  }
  size_t hash() const;
};

}  // namespace pinhole::net

template <>
struct std::hash<pinhole::net::Address> {
  size_t operator()(const pinhole::net::Address& a) const noexcept { return a.hash(); }
};
template <>
struct std::hash<pinhole::net::Endpoint> {
  size_t operator()(const pinhole::net::Endpoint& e) const noexcept { return e.hash(); }
};
