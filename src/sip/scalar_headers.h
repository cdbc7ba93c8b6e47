// Parsers for the small single-valued headers: CSeq, Max-Forwards, Content-Length, Expires,
// Flow-Timer, Call-ID, Date, Content-Type, and option-tag lists (Supported, Require...).
#pragma once

#include <cstdint>
#include <string_view>

#include "common/result.h"
#include "sip/method.h"
#include "sip/params.h"

namespace pinhole::sip {

struct CSeq {
  uint32_t number = 0;  // < 2^31 (RFC 3261 §8.1.1.5)
  std::string_view method_name;
  Method method = Method::kOther;
};
Result<CSeq> parse_cseq(std::string_view value);

// Max-Forwards: 1*DIGIT, 0..255.
Result<uint8_t> parse_max_forwards(std::string_view value);

// Content-Length: 1*DIGIT, refused above `max` (the message size limit).
Result<uint32_t> parse_content_length(std::string_view value, uint32_t max);

// Expires / Flow-Timer / Min-Expires: delta-seconds.
Result<uint32_t> parse_delta_header(std::string_view value);

// Call-ID: word [ "@" word ].
Status validate_call_id(std::string_view value);

// Date: rfc1123-date, which must say GMT (RFC 3261 §20.17, RFC 4475 §3.1.2.12).
Status validate_date(std::string_view value);

struct ContentType {
  std::string_view type;
  std::string_view subtype;
  std::string_view params;  // ";..." as written
  bool is(std::string_view t, std::string_view s) const;
};
Result<ContentType> parse_content_type(std::string_view value);

// Option-tag lists: calls f(std::string_view tag) for each; fails on anything not a token list.
template <typename F>
Status for_each_option_tag(std::string_view value, F&& f) {
  Scanner s(value);
  s.skip_lws();
  if (s.at_end()) return Status::Ok();  // Supported may be empty
  for (;;) {
    auto tag = s.token();
    if (tag.empty()) return bad_request("malformed option tag list");
    f(tag);
    s.skip_lws();
    if (s.at_end()) return Status::Ok();
    if (!s.consume(',')) return bad_request("malformed option tag list");
    s.skip_lws();
  }
}

}  // namespace pinhole::sip
