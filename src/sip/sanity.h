// Message sanity: the checks an element makes before acting on a parsed message (RFC 3261
// §8.2, §16.3 and the RFC 4475 verdicts). Parsing (Message::parse) already refused what cannot
// be framed or whose start line is wrong; these checks look inside the header values an element
// relies on and return the status to answer with.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "common/result.h"
#include "sip/message.h"

namespace pinhole::sip {

struct SanityPolicy {
  // The element forwards requests (a proxy): Max-Forwards 0 is answered 483 here. A UAS that
  // handles the request itself (e.g. OPTIONS to the proxy) checks max_forwards() on its own.
  bool forwarding = true;
  // Option tags this element understands in Proxy-Require (420 for others).
  std::span<const std::string_view> proxy_options;
};

// Checks a request. Error statuses: 400 (missing/duplicated/malformed mandatory headers, CSeq
// method mismatch, bad Date), 416 (Request-URI scheme not sip/sips/tel), 420 (unknown
// Proxy-Require option; see unsupported_options), 483 (Max-Forwards exhausted).
Status check_request(const Message& msg, const SanityPolicy& policy);

// Checks a response; any error means the response is dropped (it cannot be answered).
Status check_response(const Message& msg);

// The option tags in the header fields of `kind` (Require / Proxy-Require) that are not in
// `supported`, comma-separated for an Unsupported header (RFC 3261 §8.2.2.3).
std::string unsupported_options(const Message& msg, HeaderKind kind, std::span<const std::string_view> supported);

}  // namespace pinhole::sip
