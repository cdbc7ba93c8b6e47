#include "sip/builder.h"

#include <algorithm>
#include <string>

#include "absl/container/inlined_vector.h"

namespace pinhole::sip {
namespace {

void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

// The top via-parm as the server transport sees it (RFC 3581 §4): received= the source IP
// (replacing any value the client put there) and, when the client asked with a bare rport,
// rport= the source port.
std::string via_with_source(const Via& top, std::string_view ip, uint16_t port) {
  struct Splice {
    size_t from, to;  // offsets in top.raw
    std::string text;
  };
  absl::InlinedVector<Splice, 2> splices;
  auto set_value = [&](const Param& p, std::string_view value) {
    size_t name_end = static_cast<size_t>(p.name.data() - top.raw.data()) + p.name.size();
    // A quoted value (received="192.0.2.5" is valid) ends after its closing quote; leaving that
    // quote behind made the Via of our own response unparseable (found by fuzz_sip_message; seed
    // tests/fuzz/seeds/fuzz_sip_message/via_quoted_received.sip).
    size_t value_end =
        p.has_value ? static_cast<size_t>(p.value.data() - top.raw.data()) + p.value.size() + (p.quoted ? 1u : 0u)
                    : name_end;
    splices.push_back({name_end, value_end, "=" + std::string(value)});
  };
  auto received = top.param("received");
  if (received) set_value(*received, ip);
  if (top.has_rport && top.rport_value.empty()) set_value(*top.param("rport"), std::to_string(port));
  std::string text(top.raw);
  // Later offsets first, so the earlier ones stay valid.
  std::sort(splices.begin(), splices.end(), [](const Splice& a, const Splice& b) { return a.from > b.from; });
  for (const auto& sp : splices) text.replace(sp.from, sp.to - sp.from, sp.text);
  if (!received) text.append(";received=").append(ip);
  return text;
}

void append_body(std::string& out, std::string_view content_type, std::string_view body) {
  if (!content_type.empty()) append_header(out, "Content-Type", content_type);
  append_header(out, "Content-Length", std::to_string(body.size()));
  out.append("\r\n").append(body);
}

}  // namespace

std::string_view default_reason(uint16_t status) {
  switch (status) {
    case 100:
      return "Trying";
    case 180:
      return "Ringing";
    case 181:
      return "Call Is Being Forwarded";
    case 182:
      return "Queued";
    case 183:
      return "Session Progress";
    case 200:
      return "OK";
    case 202:
      return "Accepted";
    case 300:
      return "Multiple Choices";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Moved Temporarily";
    case 305:
      return "Use Proxy";
    case 380:
      return "Alternative Service";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 402:
      return "Payment Required";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 407:
      return "Proxy Authentication Required";
    case 408:
      return "Request Timeout";
    case 410:
      return "Gone";
    case 413:
      return "Request Entity Too Large";
    case 414:
      return "Request-URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Unsupported URI Scheme";
    case 420:
      return "Bad Extension";
    case 421:
      return "Extension Required";
    case 423:
      return "Interval Too Brief";
    case 430:
      return "Flow Failed";
    case 439:
      return "First Hop Lacks Outbound Support";
    case 480:
      return "Temporarily Unavailable";
    case 481:
      return "Call/Transaction Does Not Exist";
    case 482:
      return "Loop Detected";
    case 483:
      return "Too Many Hops";
    case 484:
      return "Address Incomplete";
    case 485:
      return "Ambiguous";
    case 486:
      return "Busy Here";
    case 487:
      return "Request Terminated";
    case 488:
      return "Not Acceptable Here";
    case 491:
      return "Request Pending";
    case 493:
      return "Undecipherable";
    case 500:
      return "Server Internal Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Server Time-out";
    case 505:
      return "Version Not Supported";
    case 513:
      return "Message Too Large";
    case 600:
      return "Busy Everywhere";
    case 603:
      return "Decline";
    case 604:
      return "Does Not Exist Anywhere";
    case 606:
      return "Not Acceptable";
    default:
      return "";
  }
}

ResponseBuilder::ResponseBuilder(const Message& request, uint16_t status, std::string_view reason)
    : request_(request), status_(status), reason_(reason.empty() ? default_reason(status) : reason) {}

ResponseBuilder& ResponseBuilder::to_tag(std::string_view tag) {
  to_tag_ = tag;
  return *this;
}

ResponseBuilder& ResponseBuilder::via_received(std::string_view source_ip, uint16_t source_port) {
  received_ip_ = source_ip;
  received_port_ = source_port;
  return *this;
}

ResponseBuilder& ResponseBuilder::header(std::string_view name, std::string_view value) {
  append_header(extra_headers_, name, value);
  return *this;
}

ResponseBuilder& ResponseBuilder::body(std::string_view content_type, std::string_view body) {
  content_type_ = content_type;
  body_ = body;
  return *this;
}

std::string ResponseBuilder::build() const {
  std::string out;
  out.reserve(512 + body_.size());
  out.append("SIP/2.0 ").append(std::to_string(status_)).append(" ").append(reason_).append("\r\n");

  // Via: every value in order, the top one with received/rport when asked (RFC 3581 §4).
  auto vias = request_.vias();
  bool first = true;
  for (const auto& h : request_.headers()) {
    if (h.kind != HeaderKind::kVia) continue;
    std::string value(h.value);
    if (first && vias.ok() && !received_ip_.empty()) {
      const Via& top = vias->front();
      size_t top_off = static_cast<size_t>(top.raw.data() - h.value.data());
      value.replace(top_off, top.raw.size(), via_with_source(top, received_ip_, received_port_));
    }
    first = false;
    append_header(out, "Via", value);
  }
  for (HeaderKind k : {HeaderKind::kFrom, HeaderKind::kTo, HeaderKind::kCallId, HeaderKind::kCSeq}) {
    const HeaderField* h = request_.header(k);
    if (h == nullptr) continue;
    std::string value(h->value);
    if (k == HeaderKind::kTo && status_ != 100 && !to_tag_.empty()) {
      auto to = request_.to();
      if (to.ok() && !(*to)->has_tag) value.append(";tag=").append(to_tag_);
    }
    append_header(out, header_canonical_name(k), value);
  }
  if (status_ == 100)
    if (const HeaderField* ts = request_.header(HeaderKind::kTimestamp)) append_header(out, "Timestamp", ts->value);
  out.append(extra_headers_);
  append_body(out, content_type_, body_);
  return out;
}

RequestBuilder::RequestBuilder(std::string_view method, std::string_view request_uri) {
  head_.append(method).append(" ").append(request_uri).append(" SIP/2.0\r\n");
}

RequestBuilder& RequestBuilder::header(std::string_view name, std::string_view value) {
  append_header(head_, name, value);
  return *this;
}

RequestBuilder& RequestBuilder::body(std::string_view content_type, std::string_view body) {
  content_type_ = content_type;
  body_ = body;
  return *this;
}

std::string RequestBuilder::build() const {
  std::string out = head_;
  append_body(out, content_type_, body_);
  return out;
}

}  // namespace pinhole::sip
