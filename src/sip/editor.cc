#include "sip/editor.h"

#include <algorithm>
#include <cassert>
#include <charconv>

namespace pinhole::sip {
namespace {

std::string_view span_between(const char* begin, const char* end) { return {begin, static_cast<size_t>(end - begin)}; }

}  // namespace

void Editor::replace(std::string_view range, std::string_view text) {
  size_t off = msg_.offset_of(range);
  assert(off + range.size() <= msg_.bytes().size());
  size_t text_off = text_.size();
  text_.append(text);
  edits_.push_back(Edit{off, range.size(), text_off, text.size(), static_cast<uint32_t>(edits_.size())});
}

void Editor::insert_at(size_t offset, std::string_view text) {
  assert(offset <= msg_.bytes().size());
  size_t text_off = text_.size();
  text_.append(text);
  edits_.push_back(Edit{offset, 0, text_off, text.size(), static_cast<uint32_t>(edits_.size())});
}

void Editor::insert_header_line(size_t at, std::string_view name, std::string_view value) {
  size_t text_off = text_.size();
  text_.append(name).append(": ").append(value).append("\r\n");
  edits_.push_back(Edit{at, 0, text_off, text_.size() - text_off, static_cast<uint32_t>(edits_.size())});
}

void Editor::add_header_first(std::string_view name, std::string_view value) {
  auto headers = msg_.headers();
  // Without header fields, "first" is "last": add_header_last finds the start line's end whether it
  // is CRLF or a bare LF (body offset - 2 split the start line of an LF-only message).
  if (headers.empty()) return add_header_last(name, value);
  insert_header_line(msg_.offset_of(headers.front().line), name, value);
}

void Editor::add_header_before(const HeaderField& at, std::string_view name, std::string_view value) {
  insert_header_line(msg_.offset_of(at.line), name, value);
}

void Editor::add_header_last(std::string_view name, std::string_view value) {
  auto headers = msg_.headers();
  size_t at;
  if (headers.empty()) {
    // Just after the start line's line end.
    at = msg_.offset_of(msg_.start_line()) + msg_.start_line().size();
    at += msg_.bytes()[at] == '\r' ? 2u : 1u;
  } else {
    const auto& last = headers.back().line;
    at = msg_.offset_of(last) + last.size();
  }
  insert_header_line(at, name, value);
}

void Editor::remove_header(const HeaderField& h) { remove(h.line); }

void Editor::replace_header_value(const HeaderField& h, std::string_view value) { replace(h.value, value); }

void Editor::remove_list_value(const HeaderField& h, std::string_view value_raw) {
  const char* vb = value_raw.data();
  const char* ve = vb + value_raw.size();
  const char* hb = h.value.data();
  const char* he = hb + h.value.size();
  // Following value: drop through the comma and the white space after it.
  const char* p = ve;
  while (p < he && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) ++p;
  if (p < he && *p == ',') {
    ++p;
    while (p < he && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')) ++p;
    remove(span_between(vb, p));
    return;
  }
  // Last value after others: drop from the preceding comma.
  const char* q = vb;
  while (q > hb && (q[-1] == ' ' || q[-1] == '\t' || q[-1] == '\r' || q[-1] == '\n')) --q;
  if (q > hb && q[-1] == ',') {
    // Also drop the white space before that comma: "a , b" minus b must not leave "a " (the
    // grammar has no LWS between the last value and the line end).
    const char* c = q - 1;
    while (c > hb && (c[-1] == ' ' || c[-1] == '\t' || c[-1] == '\r' || c[-1] == '\n')) --c;
    remove(span_between(c, ve));
    return;
  }
  remove_header(h);  // the only value
}

std::string_view Editor::param_range_with_separator(const Via& via, const Param& p) const {
  const char* begin = p.name.data();
  const char* params_begin = via.params.data();
  while (begin > params_begin && begin[-1] != ';') --begin;
  if (begin > params_begin) --begin;  // the ';'
  const char* end = p.has_value ? p.value.data() + p.value.size() + (p.quoted ? 1 : 0) : p.name.data() + p.name.size();
  return span_between(begin, end);
}

void Editor::set_via_param(const Via& via, std::string_view name, std::string_view value) {
  std::string text = ";" + std::string(name);
  if (!value.empty()) text.append("=").append(value);
  if (auto existing = via.param(name)) {
    replace(param_range_with_separator(via, *existing), text);
    return;
  }
  insert_at(msg_.offset_of(via.raw) + via.raw.size(), text);
}

void Editor::remove_via_param(const Via& via, std::string_view name) {
  if (auto existing = via.param(name)) remove(param_range_with_separator(via, *existing));
}

void Editor::set_uri_host_port(const Uri& uri, std::string_view host, uint16_t port) {
  std::string text(host);
  if (port != 0) {
    char buf[8];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), port);
    text.append(":").append(buf, end);
  }
  const char* end =
      uri.port_text.empty() ? uri.host.data() + uri.host.size() : uri.port_text.data() + uri.port_text.size();
  replace(span_between(uri.host.data(), end), text);
}

void Editor::replace_uri(const Uri& uri, std::string_view new_uri) { replace(uri.raw, new_uri); }

void Editor::set_body(std::string_view body) {
  char buf[16];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), body.size());
  std::string_view length(buf, static_cast<size_t>(end - buf));
  if (const HeaderField* cl = msg_.header(HeaderKind::kContentLength)) {
    replace_header_value(*cl, length);
  } else {
    add_header_last("Content-Length", length);
  }
  // A datagram may end right after its last header line, without the empty line (Message::parse
  // accepts it: the packet boundary frames it). Write the empty line then, or the new body would
  // be read as one more header line (found by fuzz_sip_message, seed options_no_empty_line.sip).
  // Recorded after the Content-Length insert at the same offset, so it comes out after it.
  size_t body_offset = msg_.offset_of(msg_.body());
  std::string_view head = msg_.bytes().substr(0, body_offset);
  if (!head.ends_with("\n\n") && !head.ends_with("\n\r\n")) insert_at(body_offset, "\r\n");
  replace(msg_.body(), body);
}

std::string Editor::serialize() const {
  std::string_view src = msg_.bytes();
  if (edits_.empty()) return std::string(src);
  absl::InlinedVector<Edit, 8> sorted(edits_.begin(), edits_.end());
  std::stable_sort(sorted.begin(), sorted.end(), [](const Edit& a, const Edit& b) {
    // At one offset inserts go before a replacement, each group in record order.
    if (a.offset != b.offset) return a.offset < b.offset;
    if ((a.length == 0) != (b.length == 0)) return a.length == 0;
    return a.seq < b.seq;
  });
  std::string out;
  out.reserve(src.size() + text_.size());
  size_t cursor = 0;
  for (const Edit& e : sorted) {
    if (e.offset < cursor) {
      assert(false && "overlapping edits");
      continue;
    }
    out.append(src.substr(cursor, e.offset - cursor));
    out.append(std::string_view(text_).substr(e.text_offset, e.text_length));
    cursor = e.offset + e.length;
  }
  out.append(src.substr(cursor));
  return out;
}

}  // namespace pinhole::sip
