// NAT detection tests: names and evaluation.
#include "nat/nat_detect.h"

#include <array>

#include "net/address_class.h"
#include "sip/host.h"

namespace pinhole::nat {
namespace {

constexpr std::array<std::string_view, kNatTestCount> kNames = {
    "contact-private", "via-private",    "sdp-private",    "via-source-ip",
    "via-source-port", "contact-source", "source-private", "websocket",
};

// The address a host written in SIP stands for; nullopt for a name (or anything else that is
// not an IP literal), which no test may treat as an address.
std::optional<net::Address> literal_address(std::string_view host, sip::HostKind kind) {
  if (kind == sip::HostKind::kName) return std::nullopt;
  auto a = net::Address::parse(host);
  if (!a) return std::nullopt;
  return a->unmapped();
}

bool is_private_literal(std::string_view host, sip::HostKind kind) {
  auto a = literal_address(host, kind);
  return a && net::is_private_for_nat(*a);
}

// The port a Contact URI means: its own, else the default of its scheme and transport
// parameter (RFC 3263 §4.2 / RFC 3261 §19.1.2).
uint16_t contact_port(const sip::Uri& uri) {
  if (uri.has_port()) return uri.port;
  if (uri.scheme == sip::UriScheme::kSips) return 5061;
  auto transport = net::parse_transport(uri.transport());
  return transport ? net::default_sip_port(*transport) : uint16_t{5060};
}

uint16_t via_port(const sip::Via& via) {
  if (!via.port_text.empty()) return via.port;
  auto transport = net::parse_transport(via.transport);
  return transport ? net::default_sip_port(*transport) : uint16_t{5060};  // SCTP & co: 5060
}

}  // namespace

std::string_view nat_test_name(NatTest t) {
  auto i = static_cast<size_t>(t);
  return i < kNames.size() ? kNames[i] : std::string_view("unknown");
}

std::optional<NatTest> nat_test_from_name(std::string_view name) {
  for (size_t i = 0; i < kNames.size(); ++i)
    if (kNames[i] == name) return static_cast<NatTest>(i);
  return std::nullopt;
}

Result<NatTestSet> parse_nat_tests(std::span<const std::string_view> names) {
  NatTestSet set;
  for (std::string_view name : names) {
    auto t = nat_test_from_name(name);
    if (!t) return kUnknownNatTest;
    set.add(*t);
  }
  return set;
}

std::string format_nat_tests(NatTestSet tests) {
  std::string out;
  for (size_t i = 0; i < kNatTestCount; ++i) {
    if (!tests.has(static_cast<NatTest>(i))) continue;
    if (!out.empty()) out.push_back(',');
    out.append(kNames[i]);
  }
  return out;
}

Result<NatTestSet> detect_nat(NatTestSet enabled, const sip::Message& message, const net::Endpoint& source,
                              net::Transport transport, std::span<const std::string_view> sdp_connection_addresses) {
  NatTestSet fired;
  const net::Address source_address = source.address.unmapped();

  if (enabled.has(NatTest::kWebSocket) && net::is_websocket(transport)) fired.add(NatTest::kWebSocket);
  if (enabled.has(NatTest::kSourcePrivate) && net::is_private_for_nat(source_address))
    fired.add(NatTest::kSourcePrivate);

  if (enabled.has(NatTest::kSdpPrivate)) {
    for (std::string_view text : sdp_connection_addresses) {
      // A multicast c= may carry "/ttl[/count]" (RFC 4566 §5.7); the address is before it.
      text = text.substr(0, text.find('/'));
      auto a = net::Address::parse(text);  // an FQDN c= is a name: not private
      if (a && net::is_private_for_nat(*a)) {
        fired.add(NatTest::kSdpPrivate);
        break;
      }
    }
  }

  bool via_tests =
      enabled.has(NatTest::kViaPrivate) || enabled.has(NatTest::kViaSourceIp) || enabled.has(NatTest::kViaSourcePort);
  if (via_tests && message.is_request()) {
    auto top = message.top_via();
    if (!top) return top.error();
    const sip::Via& via = **top;
    auto via_address = literal_address(via.host, via.host_kind);
    if (enabled.has(NatTest::kViaPrivate) && via_address && net::is_private_for_nat(*via_address))
      fired.add(NatTest::kViaPrivate);
    if (enabled.has(NatTest::kViaSourceIp) && (!via_address || *via_address != source_address))
      fired.add(NatTest::kViaSourceIp);
    if (enabled.has(NatTest::kViaSourcePort) && via_port(via) != source.port) fired.add(NatTest::kViaSourcePort);
  }

  if (enabled.has(NatTest::kContactPrivate) || enabled.has(NatTest::kContactSource)) {
    auto contacts = message.contacts();
    if (!contacts) return contacts.error();
    for (const sip::Contact& contact : *contacts) {
      if (contact.star || !contact.uri.is_sip()) continue;
      if (enabled.has(NatTest::kContactPrivate) && is_private_literal(contact.uri.host, contact.uri.host_kind))
        fired.add(NatTest::kContactPrivate);
      if (enabled.has(NatTest::kContactSource)) {
        auto a = literal_address(contact.uri.host, contact.uri.host_kind);
        if (!a || *a != source_address || contact_port(contact.uri) != source.port) fired.add(NatTest::kContactSource);
      }
    }
  }
  return fired;
}

}  // namespace pinhole::nat
