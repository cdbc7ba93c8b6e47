#include "sip/stream_framer.h"

#include <cstring>

#include "sip/charset.h"
#include "sip/scalar_headers.h"

namespace pinhole::sip {
namespace {

// End of the header section: index just past the empty line, or npos. Starts looking at `from`
// (a line end at or after it begins the empty line).
size_t find_header_end(std::string_view s, size_t from) {
  size_t pos = from;
  while (pos < s.size()) {
    const void* nl = std::memchr(s.data() + pos, '\n', s.size() - pos);
    if (nl == nullptr) return std::string_view::npos;
    size_t at = static_cast<size_t>(static_cast<const char*>(nl) - s.data());
    if (at + 1 < s.size() && s[at + 1] == '\n') return at + 2;
    if (at + 2 < s.size() && s[at + 1] == '\r' && s[at + 2] == '\n') return at + 3;
    pos = at + 1;
  }
  return std::string_view::npos;
}

// Finds Content-Length (or compact "l") in a header section; a missing one means 0 (no body).
Result<uint32_t> scan_content_length(std::string_view headers, uint32_t max) {
  size_t pos = headers.find('\n');  // skip the start line
  while (pos != std::string_view::npos && pos + 1 < headers.size()) {
    size_t start = pos + 1;
    size_t end = headers.find('\n', start);
    if (end == std::string_view::npos) end = headers.size();
    std::string_view line = headers.substr(start, end - start);
    size_t name_end = 0;
    while (name_end < line.size() && is_token_char(line[name_end])) ++name_end;
    std::string_view name = line.substr(0, name_end);
    if (iequals(name, "Content-Length") || iequals(name, "l")) {
      size_t colon = line.find(':', name_end);
      if (colon == std::string_view::npos) return bad_request("malformed Content-Length");
      // The value may be folded onto continuation lines (RFC 3261 §7.3.1: "Content-Length:\r\n 13"
      // is valid); refusing it would close a connection carrying a valid message. Take every
      // following line that starts with SP/HT; parse_content_length trims the LWS around the digits.
      size_t value_end = end;
      while (value_end + 1 < headers.size() && (headers[value_end + 1] == ' ' || headers[value_end + 1] == '\t')) {
        value_end = headers.find('\n', value_end + 1);
        if (value_end == std::string_view::npos) value_end = headers.size();
      }
      return parse_content_length(headers.substr(start + colon + 1, value_end - (start + colon + 1)), max);
    }
    pos = end;
  }
  return 0u;
}

}  // namespace

StreamFramer::Frame StreamFramer::fail(Error error) {
  failed_ = true;
  failure_ = error;
  return {Kind::kError, {}, failure_};
}

void StreamFramer::append(std::string_view bytes) {
  // Compact before growing so a long-lived connection does not keep consumed bytes around.
  if (consumed_ > 0 && consumed_ >= buffer_.size() / 2) {
    buffer_.erase(0, consumed_);
    consumed_ = 0;
  }
  buffer_.append(bytes);
}

StreamFramer::Frame StreamFramer::next() {
  if (failed_) return {Kind::kError, {}, failure_};
  std::string_view pending = std::string_view(buffer_).substr(consumed_);
  if (pending.empty()) return {};
  // RFC 5626 §3.5.1 keepalives, and stray CRLFs between messages (RFC 3261 §7.5).
  if (pending.starts_with("\r\n\r\n")) {
    consumed_ += 4;
    return {Kind::kPing, {}, {}};
  }
  if (pending.starts_with("\r\n")) {
    consumed_ += 2;
    return {Kind::kPong, {}, {}};
  }
  if (pending == "\r") return {};
  // A message trickling in (a slow or hostile peer, one byte per read) must cost work in
  // proportion to its bytes, not bytes x reads: the search for the empty line resumes where the
  // last one stopped, and the framed length is computed once.
  if (frame_total_ == 0) {
    size_t resume = scanned_ > 2 ? scanned_ - 2 : 0;  // "\n\r\n" may straddle the old end
    size_t header_end = find_header_end(pending, resume);
    if (header_end == std::string_view::npos) {
      scanned_ = pending.size();
      if (pending.size() > limits_.max_message_size) return fail(Error{413, "header section exceeds the size limit"});
      return {};
    }
    auto cl = scan_content_length(pending.substr(0, header_end), limits_.max_message_size);
    if (!cl) return fail(cl.error());
    if (header_end + *cl > limits_.max_message_size) return fail(Error{413, "message exceeds the size limit"});
    frame_total_ = header_end + *cl;
  }
  if (pending.size() < frame_total_) return {};
  size_t total = frame_total_;
  consumed_ += total;
  frame_total_ = 0;
  scanned_ = 0;
  return {Kind::kMessage, pending.substr(0, total), {}};
}

}  // namespace pinhole::sip
