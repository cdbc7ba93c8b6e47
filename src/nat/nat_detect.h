// NAT detection (DESIGN.md §1): named tests, each a cheap look at a message and where it came
// from, that an operator combines in config ("nat.detect: [contact-private, via-source-port]")
// to decide whether a peer is behind a NAT and needs its Contact fixed, a keepalive and relayed
// media. Like Kamailio's nat_uac_test flags, but named.
//
//   contact-private  a Contact URI host is an IP address private for NAT (net/address_class.h)
//   via-private      the top Via sent-by host is such an address             (requests only)
//   sdp-private      an SDP c= connection address is such an address
//   via-source-ip    the source IP differs from the top Via sent-by host     (requests only)
//   via-source-port  the source port differs from the top Via sent-by port   (requests only)
//                    (absent port: 5060, 5061 for TLS/WSS; over TCP/TLS the source port is
//                    the client's ephemeral port, so this fires for nearly every stream client)
//   contact-source   a Contact URI host:port differs from the source address:port
//   source-private   the source address itself is private for NAT (the edge serves a LAN or
//                    sits behind the same NAT as the client)
//   websocket        the message arrived over WS or WSS (RFC 7118 clients cannot be reached
//                    except over their own connection, whatever they write)
//
// The Via tests never fire on responses: a response's top Via is this edge's own. Hosts written
// as names are never private and never equal to the source address (no DNS here), so a name in
// Via or Contact makes the *-source tests fire. IPv4-mapped IPv6 addresses compare and classify
// as their IPv4 address. Contact `*` and non-SIP Contact URIs are skipped.
//
// Threads: pure functions over their arguments.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/result.h"
#include "net/address.h"
#include "net/transport.h"
#include "sip/message.h"

namespace pinhole::nat {

enum class NatTest : uint8_t {
  kContactPrivate,
  kViaPrivate,
  kSdpPrivate,
  kViaSourceIp,
  kViaSourcePort,
  kContactSource,
  kSourcePrivate,
  kWebSocket,
};
inline constexpr size_t kNatTestCount = 8;

// A set of NAT tests: the ones configured, or the ones that fired.
class NatTestSet {
 public:
  constexpr NatTestSet() = default;
  constexpr NatTestSet(std::initializer_list<NatTest> tests) {
    for (NatTest t : tests) add(t);
  }
  static constexpr NatTestSet all() {
    NatTestSet s;
    s.bits_ = static_cast<uint16_t>((1u << kNatTestCount) - 1);
    return s;
  }

  constexpr void add(NatTest t) { bits_ = static_cast<uint16_t>(bits_ | bit(t)); }
  constexpr bool has(NatTest t) const { return (bits_ & bit(t)) != 0; }
  constexpr bool empty() const { return bits_ == 0; }
  constexpr uint16_t bits() const { return bits_; }

  friend constexpr bool operator==(NatTestSet, NatTestSet) = default;

 private:
  static constexpr uint16_t bit(NatTest t) { return static_cast<uint16_t>(1u << static_cast<unsigned>(t)); }
  uint16_t bits_ = 0;
};

// The config name of a test ("contact-private"...).
std::string_view nat_test_name(NatTest t);
// The test a config name stands for (exact, lower case), nullopt for an unknown name.
std::optional<NatTest> nat_test_from_name(std::string_view name);

// An unknown name in the config: the message lists every valid name so the operator can fix it
// without the docs (status 500: a start-up error, never a SIP answer).
inline constexpr Error kUnknownNatTest{
    500,
    "unknown NAT test; valid names: contact-private, via-private, sdp-private, via-source-ip, via-source-port, "
    "contact-source, source-private, websocket"};

// Parses the configured list of test names (duplicates allowed). Fails with kUnknownNatTest on
// the first unknown name; the config loader, which knows the name's position, reports it.
Result<NatTestSet> parse_nat_tests(std::span<const std::string_view> names);

// "contact-private,via-source-port": the tests in a set, in enum order, for logs and metrics.
std::string format_nat_tests(NatTestSet tests);

// Runs the tests in `enabled` (and only those: the others cost nothing) against a message
// received from `source` over `transport`, and returns those that fired.
// `sdp_connection_addresses`: the address text of each SDP c= line (session and media level),
// empty when the message has no SDP; the SDP layer extracts them.
// Fails only when a header an enabled test must read is malformed (the message's own 400 error,
// which the sanity check normally caught before): a test that cannot read its header must not
// silently say "not NATed".
Result<NatTestSet> detect_nat(NatTestSet enabled, const sip::Message& message, const net::Endpoint& source,
                              net::Transport transport,
                              std::span<const std::string_view> sdp_connection_addresses = {});

}  // namespace pinhole::nat
