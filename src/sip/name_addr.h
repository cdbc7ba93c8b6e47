// name-addr / addr-spec values: From, To, Contact, Route, Record-Route, Path, Refer-To...
//
// Views into the message text; valid as long as the Message lives.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "common/result.h"
#include "sip/params.h"
#include "sip/scanner.h"
#include "sip/uri.h"

namespace pinhole::sip {

struct NameAddr {
  std::string_view raw;           // this value as written (one element of a comma list)
  std::string_view display_name;  // quoted: the text between the quotes; else the tokens; may be empty
  bool display_quoted = false;
  bool bracketed = false;  // written as <uri> (name-addr) rather than a bare addr-spec
  Uri uri;
  std::string_view params;  // header parameters as written, from the first ';' (empty when none)
  std::string_view tag;
  bool has_tag = false;

  std::optional<Param> param(std::string_view name) const { return find_header_param(params, name); }
};

// A Contact value: a NameAddr, or the `*` of a REGISTER that removes all bindings.
struct Contact : NameAddr {
  bool star = false;
  std::string_view expires;   // `expires` parameter as written (empty when absent)
  std::string_view q;         // `q` parameter as written
  std::string_view instance;  // `+sip.instance` value without quotes (RFC 5626)
  std::string_view reg_id;    // `reg-id` (RFC 5626)
};

// Parses one name-addr or addr-spec followed by header parameters, at the scanner position.
// Stops before a ',' or the end. `require_brackets` is set for Route/Record-Route/Path.
Result<NameAddr> parse_name_addr(Scanner& s, bool require_brackets = false);

// Parses one Contact value (handles `*`).
Result<Contact> parse_contact(Scanner& s);

// In-place forms of the two above, used by the message's caches (no copy of the parsed struct).
Status parse_name_addr_into(Scanner& s, NameAddr& out, bool require_brackets = false);
Status parse_contact_into(Scanner& s, Contact& out);

// Parses a whole single-valued header value (From, To): one name-addr and nothing after it.
Result<NameAddr> parse_single_name_addr(std::string_view value);
Status parse_single_name_addr_into(std::string_view value, NameAddr& out);

namespace detail {
// The _into forms for an `out` that is default-constructed already (a message cache's new
// element), so that it is not reset a second time.
Status parse_name_addr_fresh(Scanner& s, NameAddr& out, bool require_brackets);
Status parse_contact_fresh(Scanner& s, Contact& out);
Status parse_single_name_addr_fresh(std::string_view value, NameAddr& out);
}  // namespace detail

// Delta-seconds (RFC 3261 §25): 1*DIGIT. Values above 2^32-1 are refused (RFC 4475 §3.1.2.4).
// Inline: Content-Length and Max-Forwards of every message go through here.
inline Result<uint32_t> parse_delta_seconds(std::string_view digits) {
  if (digits.empty()) return bad_request("empty number");
  uint64_t v = 0;
  for (char c : digits) {
    if (!is_digit(c)) return bad_request("malformed number");
    v = v * 10 + static_cast<uint64_t>(c - '0');
    if (v > 0xffffffffULL) return bad_request("number out of range");
  }
  return static_cast<uint32_t>(v);
}

}  // namespace pinhole::sip
