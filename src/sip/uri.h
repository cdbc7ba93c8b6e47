// URIs as SIP carries them: sip, sips and tel parsed into parts; any other scheme kept opaque.
//
// A Uri is a set of views into text owned by someone else (normally the Message), so it is
// cheap to copy and must not outlive that text. Escapes stay as written; comparison
// (uri_equal, RFC 3261 §19.1.4) unescapes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/result.h"
#include "sip/host.h"
#include "sip/params.h"

namespace pinhole::sip {

enum class UriScheme : uint8_t { kSip, kSips, kTel, kOther };

struct Uri {
  UriScheme scheme = UriScheme::kOther;
  std::string_view raw;          // the whole URI as written
  std::string_view scheme_text;  // as written ("SIP", "sip", "soap.beep")
  // sip/sips: userinfo; tel: the number (global or local) without parameters.
  std::string_view user;
  std::string_view password;
  bool has_user = false;
  bool has_password = false;
  // sip/sips only.
  std::string_view host;  // IPv6 references keep their brackets
  HostKind host_kind = HostKind::kName;
  std::string_view port_text;
  uint16_t port = 0;         // 0 when absent
  std::string_view params;   // ";..." (sip/sips/tel), empty when none
  std::string_view headers;  // after '?', empty when none
  std::string_view opaque;   // other schemes: everything after "scheme:"

  bool is_sip() const { return scheme == UriScheme::kSip || scheme == UriScheme::kSips; }
  bool has_port() const { return !port_text.empty(); }
  std::optional<Param> param(std::string_view name) const { return find_uri_param(params, name); }
  bool has_param(std::string_view name) const { return param(name).has_value(); }
  // transport parameter value, empty when absent.
  std::string_view transport() const;
  bool loose_route() const { return has_param("lr"); }
};

// Parses an absolute URI. sip/sips/tel are validated against their grammar; other schemes need
// a valid scheme and visible URI characters. Scheme names are case-insensitive.
Result<Uri> parse_uri(std::string_view text);
// Same, filling `out` in place (the hot path: no copy of the parsed struct).
Status parse_uri_into(std::string_view text, Uri& out);

// The parsers' fast path: parses a plain sip/sips URI ([user "@"] host [":" port] and
// parameters, without escapes, password, IPv6 reference or headers) at the start of `text` into
// `out`, up to the first character that cannot continue it, and returns its length. Returns npos
// when `text` does not start with one (`out` is then unspecified). When the length is that of
// the whole text, parse_uri_into(text) gives the same Uri; a caller whose URI ends at a
// delimiter none of these characters can be ('>', ',', SP...) may stop there.
size_t parse_plain_uri_prefix(std::string_view text, Uri& out);

// RFC 3261 §19.1.4 equality (sip/sips); tel compares number and parameters; others compare
// case-insensitive scheme and exact opaque part.
bool uri_equal(const Uri& a, const Uri& b);

// %HH decoding; invalid escapes are kept literally.
std::string unescape(std::string_view text);

}  // namespace pinhole::sip
