// Transport names and default ports.
#include "net/transport.h"

#include <array>

namespace pinhole::net {
namespace {

constexpr std::array<std::string_view, kTransportCount> kNames = {"udp", "tcp", "tls", "ws", "wss"};

bool equals_ignore_case(std::string_view a, std::string_view lower) {
  if (a.size() != lower.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char c = a[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

}  // namespace

std::string_view transport_name(Transport t) {
  auto i = static_cast<size_t>(t);
  return i < kNames.size() ? kNames[i] : std::string_view("unknown");
}

std::optional<Transport> parse_transport(std::string_view text) {
  for (size_t i = 0; i < kNames.size(); ++i)
    if (equals_ignore_case(text, kNames[i])) return static_cast<Transport>(i);
  return std::nullopt;
}

uint16_t default_sip_port(Transport t) { return is_secure(t) ? 5061 : 5060; }

}  // namespace pinhole::net
