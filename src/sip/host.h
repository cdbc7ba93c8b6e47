// host = hostname / IPv4address / IPv6reference (RFC 3261 §25.1), shared by URIs and Via sent-by.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "common/result.h"

namespace pinhole::sip {

enum class HostKind : uint8_t { kName, kIPv4, kIPv6 };

// Validates a host as written in a URI or Via (IPv6 in brackets) and says which kind it is.
Result<HostKind> classify_host(std::string_view host);

// The run of host characters (alnum, '-', '.') starting at `from` in `text`, classified in the
// same pass: `length` is the run's length and `kind` what classify_host(text.substr(from, length))
// says (nullopt where it fails). For the parsers' fast paths: every URI and Via host goes through
// here, and scanning the run and then classifying it walked every character twice. The bytes of
// `text` before `from` may be read (never outside `text`), so pass the whole view at hand.
struct HostRun {
  size_t length = 0;
  std::optional<HostKind> kind;
};
HostRun scan_host_run(std::string_view text, size_t from);

// Validates a bare IPv4 or IPv6 address (no brackets), as used by Via `received`.
bool is_ip_address(std::string_view text);

// Parses 1*DIGIT as a port (0..65535). Inline: every Via and most URIs carry one.
inline Result<uint16_t> parse_port(std::string_view digits) {
  if (digits.empty() || digits.size() > 5) return bad_request("malformed port");
  uint32_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return bad_request("malformed port");
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) return bad_request("port out of range");
  return static_cast<uint16_t>(v);
}

// Splits "host[:port]" where host may be an IPv6 reference. Fails on an empty host.
struct HostPort {
  std::string_view host;
  std::string_view port_text;  // empty when no port
  uint16_t port = 0;
  HostKind kind = HostKind::kName;
};
Result<HostPort> parse_host_port(std::string_view text);

}  // namespace pinhole::sip
