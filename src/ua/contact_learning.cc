#include "ua/contact_learning.h"

#include "net/address.h"
#include "sip/charset.h"
#include "sip/name_addr.h"
#include "sip/uri.h"

namespace pinhole::ua {

std::optional<HostPort> learned_address(const sip::Via& top_via) {
  bool has_rport_value = top_via.has_rport && !top_via.rport_value.empty();
  if (!top_via.has_received && !has_rport_value) return std::nullopt;
  HostPort out;
  if (top_via.has_received && !top_via.received.empty()) {
    auto address = net::Address::parse(top_via.received);
    if (!address) return std::nullopt;
    out.host = address->is_v6() ? "[" + address->to_string() + "]" : address->to_string();
  } else {
    out.host = std::string(top_via.host);
  }
  if (has_rport_value) {
    auto port = sip::parse_delta_seconds(top_via.rport_value);
    if (!port || *port == 0 || *port > 65535) return std::nullopt;
    out.port = static_cast<uint16_t>(*port);
  } else {
    out.port = top_via.port != 0 ? top_via.port : uint16_t{5060};
  }
  return out;
}

BindingMatch find_our_binding(std::span<const sip::Contact> contacts, const OurBinding& ours) {
  BindingMatch match;
  std::optional<sip::Uri> our_uri;
  if (auto parsed = sip::parse_uri(ours.contact_uri)) our_uri = *parsed;
  auto same_instance = [&](const sip::Contact& c) {
    if (ours.instance.empty() || c.instance.empty() || !sip::iequals(c.instance, ours.instance)) return false;
    auto reg_id = sip::parse_delta_seconds(c.reg_id);
    return reg_id && *reg_id == ours.reg_id;
  };
  auto same_uri = [&](const sip::Contact& c) { return our_uri && sip::uri_equal(c.uri, *our_uri); };
  // The URI match wins: a registrar that keys bindings by URI may still list our stale binding
  // (same instance, old address) next to the current one.
  const sip::Contact* mine = nullptr;
  for (const auto& c : contacts) {
    if (!c.star && same_uri(c)) {
      mine = &c;
      break;
    }
  }
  if (mine == nullptr) {
    for (const auto& c : contacts) {
      if (!c.star && same_instance(c)) {
        mine = &c;
        break;
      }
    }
  }
  for (const auto& c : contacts) {
    if (&c == mine) continue;
    if (c.star || !(same_uri(c) || same_instance(c))) ++match.foreign;
  }
  if (mine != nullptr) {
    match.found = true;
    if (!mine->expires.empty()) {
      if (auto e = sip::parse_delta_seconds(mine->expires)) match.expires = *e;
    }
  }
  return match;
}

}  // namespace pinhole::ua
