#include "sip/scalar_headers.h"

#include <array>

#include "sip/charset.h"
#include "sip/name_addr.h"
#include "sip/scanner.h"

namespace pinhole::sip {

Result<CSeq> parse_cseq(std::string_view value) {
  Scanner s(value);
  s.skip_lws();
  auto digits = s.take_class(kDigit);
  if (digits.empty() || digits.size() > 10) return bad_request("malformed CSeq number");
  uint64_t n = 0;
  for (char c : digits) n = n * 10 + static_cast<uint64_t>(c - '0');
  if (n >= 0x80000000ULL) return bad_request("CSeq number out of range");
  if (!s.skip_lws()) return bad_request("malformed CSeq");
  CSeq cseq;
  cseq.number = static_cast<uint32_t>(n);
  cseq.method_name = s.token();
  if (cseq.method_name.empty()) return bad_request("malformed CSeq method");
  s.skip_lws();
  if (!s.at_end()) return bad_request("malformed CSeq");
  cseq.method = method_from_name(cseq.method_name);
  return cseq;
}

Result<uint8_t> parse_max_forwards(std::string_view value) {
  auto v = parse_delta_seconds(trim_lws(value));
  if (!v || *v > 255) return bad_request("malformed Max-Forwards");
  return static_cast<uint8_t>(*v);
}

Result<uint32_t> parse_content_length(std::string_view value, uint32_t max) {
  auto v = parse_delta_seconds(trim_lws(value));
  if (!v) return bad_request("malformed Content-Length");
  if (*v > max) return Error{413, "Content-Length exceeds the message size limit"};
  return *v;
}

Result<uint32_t> parse_delta_header(std::string_view value) { return parse_delta_seconds(trim_lws(value)); }

Status validate_call_id(std::string_view value) {
  // One pass: '@' is no word character, so the first run of word characters ends at the first
  // '@' exactly when the part before it is all word characters.
  std::string_view v = trim_lws(value);
  size_t left = long_class_run(v, 0, kWordChars);
  if (left == 0) return bad_request("malformed Call-ID");
  if (left == v.size()) return Status::Ok();
  if (v[left] != '@') return bad_request("malformed Call-ID");
  size_t right = long_class_run(v, left + 1, kWordChars);
  if (right == 0 || left + 1 + right != v.size()) return bad_request("malformed Call-ID");
  return Status::Ok();
}

Status validate_date(std::string_view value) {
  // wkday "," SP 2DIGIT SP month SP 4DIGIT SP 2DIGIT ":" 2DIGIT ":" 2DIGIT SP "GMT"
  std::string_view v = trim_lws(value);
  static constexpr std::array<std::string_view, 7> kDays = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  static constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (v.size() != 29) return bad_request("malformed Date");
  auto in = [](std::string_view x, const auto& list) {
    for (auto e : list)
      if (x == e) return true;
    return false;
  };
  auto digits = [&](size_t pos, size_t n) {
    for (size_t i = pos; i < pos + n; ++i)
      if (!is_digit(v[i])) return false;
    return true;
  };
  bool ok = in(v.substr(0, 3), kDays) && v.substr(3, 2) == ", " && digits(5, 2) && v[7] == ' ' &&
            in(v.substr(8, 3), kMonths) && v[11] == ' ' && digits(12, 4) && v[16] == ' ' && digits(17, 2) &&
            v[19] == ':' && digits(20, 2) && v[22] == ':' && digits(23, 2) && v.substr(25) == " GMT";
  if (!ok) return bad_request("malformed Date");
  return Status::Ok();
}

bool ContentType::is(std::string_view t, std::string_view s) const { return iequals(type, t) && iequals(subtype, s); }

Result<ContentType> parse_content_type(std::string_view value) {
  Scanner s(value);
  s.skip_lws();
  ContentType ct;
  ct.type = s.token();
  if (ct.type.empty() || !s.consume_separator('/')) return bad_request("malformed Content-Type");
  ct.subtype = s.token();
  if (ct.subtype.empty()) return bad_request("malformed Content-Type");
  size_t params_start = s.pos();
  bool any = false;
  PINHOLE_TRY(parse_header_params(s, [&](const Param&) -> Status {
    any = true;
    return Status::Ok();
  }));
  if (any) ct.params = trim_lws(s.slice(params_start));
  s.skip_lws();
  if (!s.at_end()) return bad_request("malformed Content-Type");
  return ct;
}

}  // namespace pinhole::sip
