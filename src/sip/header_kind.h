// Header field names known to pinhole, with RFC 3261 §7.3.3 compact forms, looked up
// case-insensitively once per header line while the message is indexed.
#pragma once

#include <cstdint>
#include <string_view>

namespace pinhole::sip {

enum class HeaderKind : uint8_t {
  kOther = 0,
  kVia,
  kFrom,
  kTo,
  kCallId,
  kCSeq,
  kMaxForwards,
  kContact,
  kRoute,
  kRecordRoute,
  kPath,
  kContentLength,
  kContentType,
  kContentEncoding,
  kContentDisposition,
  kExpires,
  kMinExpires,
  kSupported,
  kRequire,
  kProxyRequire,
  kUnsupported,
  kFlowTimer,
  kAuthorization,
  kProxyAuthorization,
  kWwwAuthenticate,
  kProxyAuthenticate,
  kDate,
  kSubject,
  kEvent,
  kAllowEvents,
  kReferTo,
  kReferredBy,
  kSessionExpires,
  kIdentity,
  kUserAgent,
  kServer,
  kAllow,
  kAccept,
  kRetryAfter,
  kTimestamp,
  kWarning,
  kSubscriptionState,
  kAcceptContact,
  kRejectContact,
  kRequestDisposition,
  kIdentityInfo,
  kCount,
};

// Kind of a header given its name as written (full or compact form, any case).
HeaderKind header_kind_from_name(std::string_view name);

// The message indexer's form: the kind of the header whose name is exactly `name` (full or
// compact form, any case), or kOther when `name` is no known name. A known kind also proves that
// every character of `name` is a token character (known names hold only letters and '-'), so the
// caller need not check them one by one. header_kind_from_name, kept as it always was, matches
// CR where a known name has '-'; this form does not.
HeaderKind known_header_kind(std::string_view name);

// The canonical full name ("Call-ID", "CSeq"...); empty for kOther.
std::string_view header_canonical_name(HeaderKind kind);

}  // namespace pinhole::sip
