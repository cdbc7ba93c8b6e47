#include "sip/sanity.h"

#include <array>

namespace pinhole::sip {
namespace {

// Header fields that must appear at most once (RFC 3261 §7.3.1: not comma-list headers).
constexpr std::array kSingleInstance = {
    HeaderKind::kFrom,        HeaderKind::kTo,          HeaderKind::kCallId,
    HeaderKind::kCSeq,        HeaderKind::kMaxForwards, HeaderKind::kContentLength,
    HeaderKind::kContentType, HeaderKind::kExpires,
};

Status check_common(const Message& msg) {
  // Mandatory in every request and response (RFC 3261 §8.1.1; Max-Forwards is tolerated
  // missing, RFC 4475 inv2543).
  for (HeaderKind k : {HeaderKind::kVia, HeaderKind::kFrom, HeaderKind::kTo, HeaderKind::kCallId, HeaderKind::kCSeq})
    if (msg.header(k) == nullptr) return bad_request("missing mandatory header");
  for (HeaderKind k : kSingleInstance)
    if (msg.header_count(k) > 1) return bad_request("header allowed once appears several times");
  PINHOLE_TRY(msg.vias());
  PINHOLE_TRY(msg.from());
  PINHOLE_TRY(msg.to());
  PINHOLE_TRY(msg.call_id());
  PINHOLE_TRY(msg.cseq());
  PINHOLE_TRY(msg.contacts());
  PINHOLE_TRY(msg.record_routes());
  PINHOLE_TRY(msg.content_type());
  if (const HeaderField* date = msg.header(HeaderKind::kDate)) PINHOLE_TRY(validate_date(date->value));
  return Status::Ok();
}

}  // namespace

Status check_request(const Message& msg, const SanityPolicy& policy) {
  PINHOLE_TRY(check_common(msg));
  auto cseq = msg.cseq();
  if (cseq->method_name != msg.method_name()) return bad_request("CSeq method does not match the request");
  PINHOLE_TRY(msg.routes());
  // RFC 4475 §3.1.2.4: an overlarge Expires is treated as absent by the registrar, but it must
  // still be a number.
  if (const HeaderField* e = msg.header(HeaderKind::kExpires)) {
    std::string_view v = trim_lws(e->value);
    if (v.empty() || !all_chars(v, is_digit, false)) return bad_request("malformed Expires");
  }
  auto mf = msg.max_forwards();
  if (!mf) return mf.error();
  const Uri& ruri = msg.request_uri();
  if (ruri.scheme == UriScheme::kOther) return Error{416, "Unsupported URI Scheme"};
  for (const auto& h : msg.headers())
    if (h.kind == HeaderKind::kProxyRequire) PINHOLE_TRY(for_each_option_tag(h.value, [](std::string_view) {}));
  if (!unsupported_options(msg, HeaderKind::kProxyRequire, policy.proxy_options).empty())
    return Error{420, "Bad Extension"};
  if (policy.forwarding && mf->has_value() && **mf == 0) return Error{483, "Too Many Hops"};
  return Status::Ok();
}

Status check_response(const Message& msg) { return check_common(msg); }

std::string unsupported_options(const Message& msg, HeaderKind kind, std::span<const std::string_view> supported) {
  std::string out;
  for (const auto& h : msg.headers()) {
    if (h.kind != kind) continue;
    // A malformed list is refused with 400 by check_request; here its tokens are reported as far
    // as they parse.
    (void)for_each_option_tag(h.value, [&](std::string_view tag) {
      for (auto s : supported)
        if (iequals(s, tag)) return;
      if (!out.empty()) out += ", ";
      out += tag;
    });
  }
  return out;
}

}  // namespace pinhole::sip
