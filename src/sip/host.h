// host = hostname / IPv4address / IPv6reference (RFC 3261 §25.1), shared by URIs and Via sent-by.
#pragma once

#include <cstdint>
#include <string_view>

#include "common/result.h"

namespace pinhole::sip {

enum class HostKind : uint8_t { kName, kIPv4, kIPv6 };

// Validates a host as written in a URI or Via (IPv6 in brackets) and says which kind it is.
Result<HostKind> classify_host(std::string_view host);

// Validates a bare IPv4 or IPv6 address (no brackets), as used by Via `received`.
bool is_ip_address(std::string_view text);

// Parses 1*DIGIT as a port (0..65535).
Result<uint16_t> parse_port(std::string_view digits);

// Splits "host[:port]" where host may be an IPv6 reference. Fails on an empty host.
struct HostPort {
  std::string_view host;
  std::string_view port_text;  // empty when no port
  uint16_t port = 0;
  HostKind kind = HostKind::kName;
};
Result<HostPort> parse_host_port(std::string_view text);

}  // namespace pinhole::sip
