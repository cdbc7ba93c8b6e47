// Via values (RFC 3261 §20.42 with RFC 3581 rport, RFC 5923 alias).
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/result.h"
#include "sip/host.h"
#include "sip/params.h"
#include "sip/scanner.h"

namespace pinhole::sip {

// RFC 3261 §8.1.1.7: branches that start with this were made by an RFC 3261 element.
inline constexpr std::string_view kBranchMagicCookie = "z9hG4bK";

struct Via {
  std::string_view raw;            // this via-parm as written
  std::string_view protocol_name;  // "SIP"
  std::string_view protocol_version;
  std::string_view transport;  // "UDP", "TCP", "TLS", "SCTP", "WS", "WSS" or any token
  std::string_view host;       // sent-by host (IPv6 in brackets)
  HostKind host_kind = HostKind::kName;
  std::string_view port_text;
  uint16_t port = 0;        // 0 when absent
  std::string_view params;  // ";..." as written, empty when none

  std::string_view branch;
  std::string_view received;
  std::string_view maddr;
  std::string_view ttl;
  bool has_branch = false;
  bool has_received = false;
  bool has_rport = false;        // rport present (with or without value)
  std::string_view rport_value;  // empty when "rport" has no value
  bool alias = false;            // RFC 5923

  bool rfc3261_branch() const {
    return branch.size() > kBranchMagicCookie.size() && branch.starts_with(kBranchMagicCookie);
  }
  std::optional<Param> param(std::string_view name) const { return find_header_param(params, name); }
};

// Parses one via-parm at the scanner; stops before ',' or the end.
Result<Via> parse_via(Scanner& s);
Status parse_via_into(Scanner& s, Via& out);  // in place, for the message cache

namespace detail {
// parse_via_into for an `out` that is default-constructed already (the message cache's new
// element), so that it is not reset a second time.
Status parse_via_fresh(Scanner& s, Via& out);
}  // namespace detail

}  // namespace pinhole::sip
