// Message parsing: start line, header index, body framing. Everything here runs for every
// message, so it is one forward pass with 16-byte (SSE2) searches and table lookups, and no
// allocation beyond the message itself (the header index is inline for up to 24 fields).
#include "sip/message.h"

#include <bit>
#include <cstring>
#include <utility>

#include "sip/charset.h"
#include "sip/simd.h"

namespace pinhole::sip {
namespace {

// "SIP/2.0" matched case-insensitively; any other SIP/x.y is a version we do not speak (505).
enum class VersionCheck { kOk, kUnsupported, kMalformed };
VersionCheck check_version(std::string_view v) {
  // What nearly every message says; the general check below gives kOk for exactly these bytes.
  if (v.size() == 7 && iequals(v.substr(0, 4), "SIP/") && v.substr(4) == "2.0") return VersionCheck::kOk;
  if (v.size() < 7 || !iequals(v.substr(0, 4), "SIP/")) return VersionCheck::kMalformed;
  std::string_view num = v.substr(4);
  size_t dot = num.find('.');
  if (dot == 0 || dot == std::string_view::npos || dot + 1 == num.size()) return VersionCheck::kMalformed;
  for (size_t i = 0; i < num.size(); ++i)
    if (i != dot && !is_digit(num[i])) return VersionCheck::kMalformed;
  return num == "2.0" ? VersionCheck::kOk : VersionCheck::kUnsupported;
}

// Offset of the first '\n' in [pos, size), or npos. A libc memchr call per line cost more than
// the search itself on lines this short, so it is searched 16 bytes at a time (SSE2). Never reads
// outside [0, size): whole blocks while they fit, then the buffer's last 16 bytes (overlapping
// what was searched, the bits before `pos` shifted out), and bytes one by one only in a buffer
// shorter than a block.
[[gnu::always_inline]] inline size_t find_line_feed(const char* data, size_t size, size_t pos) {
  for (; pos + simd::kBlock <= size; pos += simd::kBlock)
    if (unsigned m = simd::eq(simd::load(data + pos), '\n')) return pos + static_cast<size_t>(std::countr_zero(m));
  if (pos >= size) return std::string_view::npos;
  if (size >= simd::kBlock) {
    size_t last = size - simd::kBlock;  // < pos, since pos + kBlock > size
    unsigned m = simd::eq(simd::load(data + last), '\n') >> (pos - last);
    return m != 0 ? pos + static_cast<size_t>(std::countr_zero(m)) : std::string_view::npos;
  }
  for (; pos < size; ++pos)
    if (data[pos] == '\n') return pos;
  return std::string_view::npos;
}

// Returns the end of the line content at `pos` (before CRLF or LF) and sets `next` past the line
// end; npos when there is no line end.
[[gnu::always_inline]] inline size_t line_end(const char* data, size_t size, size_t pos, size_t& next) {
  size_t at = find_line_feed(data, size, pos);
  if (at == std::string_view::npos) return std::string_view::npos;
  next = at + 1;
  return (at > pos && data[at - 1] == '\r') ? at - 1 : at;
}

// The common header line: a known name (any case, compact forms included) directly followed by
// ':', within the first 16 bytes of the line [pos, end). Returns the kind and sets `colon`, or
// returns kOther, and then the caller takes the general path, which handles every line. For a
// known name the general path would stop its token scan at the ':' (known names are tokens, ':'
// is not) and find the same kind, so both give the same field.
HeaderKind known_name_before_colon(const char* data, size_t size, size_t pos, size_t end, size_t& colon) {
  if (pos + simd::kBlock > size) return HeaderKind::kOther;
  unsigned colons = simd::eq(simd::load(data + pos), ':');
  if (end - pos < simd::kBlock) colons &= (1u << (end - pos)) - 1;  // only this line's bytes
  if (colons == 0) return HeaderKind::kOther;
  size_t at = pos + static_cast<size_t>(std::countr_zero(colons));
  HeaderKind kind = known_header_kind(std::string_view(data + pos, at - pos));
  if (kind != HeaderKind::kOther) colon = at;
  return kind;
}

}  // namespace

// A Message is ~5 KB (the inline header and value storage), too big for glibc's per-thread cache
// (tcache, blocks up to 1 KB): allocating and freeing one went through malloc's bins every time.
// A worker parses one message after another, so each thread keeps the block of the last Message
// it freed for the next one. Not under AddressSanitizer, which must see every free to catch a
// use after it.
#if defined(__SANITIZE_ADDRESS__)
#define PINHOLE_MESSAGE_SPARE_BLOCK 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define PINHOLE_MESSAGE_SPARE_BLOCK 0
#endif
#endif
#ifndef PINHOLE_MESSAGE_SPARE_BLOCK
#define PINHOLE_MESSAGE_SPARE_BLOCK 1
#endif

#if PINHOLE_MESSAGE_SPARE_BLOCK
namespace {
struct SpareBlock {
  void* block = nullptr;
  ~SpareBlock() { ::operator delete(block); }
};
thread_local SpareBlock spare_message_block;
}  // namespace

void* Message::operator new(size_t size) {
  if (size == sizeof(Message)) {
    if (void* block = std::exchange(spare_message_block.block, nullptr)) return block;
  }
  return ::operator new(size);
}

void Message::operator delete(void* block, size_t size) noexcept {
  if (size == sizeof(Message) && spare_message_block.block == nullptr) {
    spare_message_block.block = block;
    return;
  }
  ::operator delete(block);  // unsized: clang declares the sized form only with -fsized-deallocation
}
#else
void* Message::operator new(size_t size) { return ::operator new(size); }
void Message::operator delete(void* block, size_t /*size*/) noexcept { ::operator delete(block); }
#endif

Result<MessagePtr> Message::parse(std::string_view bytes, Framing framing, const ParseLimits& limits) {
  if (bytes.size() > limits.max_message_size) return Error{413, "message exceeds the size limit"};
  auto buffer = std::make_unique_for_overwrite<char[]>(bytes.size());
  if (!bytes.empty()) std::memcpy(buffer.get(), bytes.data(), bytes.size());
  return parse(std::move(buffer), bytes.size(), framing, limits);
}

Result<MessagePtr> Message::parse(std::unique_ptr<char[]> buffer, size_t size, Framing framing,
                                  const ParseLimits& limits) {
  if (size > limits.max_message_size) return Error{413, "message exceeds the size limit"};
  // `new Message`, not `new Message()`: value-initialisation would zero all of its ~5 KB (the
  // inline header and Via storage included) before the constructor runs.
  MessagePtr m(new Message);
  m->buffer_ = std::move(buffer);
  m->size_ = size;
  m->limits_ = limits;
  PINHOLE_TRY(m->parse_all(framing));
  return m;
}

Status Message::parse_all(Framing framing) {
  const char* data = buffer_.get();
  size_t next = 0;
  size_t end = size_ == 0 ? std::string_view::npos : line_end(data, size_, 0, next);
  if (end == std::string_view::npos) return bad_request("no start line");
  PINHOLE_TRY(parse_start_line(std::string_view(data, end)));
  size_t pos = next;
  PINHOLE_TRY(index_headers(pos, framing));
  return frame_body(pos, framing);
}

Status Message::parse_start_line(std::string_view line) {
  start_line_ = line;
  if (line.size() >= 4 && iequals(line.substr(0, 4), "SIP/")) {
    // Status-Line = SIP-Version SP Status-Code SP Reason-Phrase
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos) return bad_request("malformed status line");
    if (check_version(line.substr(0, sp)) != VersionCheck::kOk) return Error{505, "unsupported SIP version"};
    std::string_view rest = line.substr(sp + 1);
    if (rest.size() < 3 || !is_digit(rest[0]) || !is_digit(rest[1]) || !is_digit(rest[2]) ||
        (rest.size() > 3 && rest[3] != ' '))
      return bad_request("malformed status code");
    status_ = static_cast<uint16_t>((rest[0] - '0') * 100 + (rest[1] - '0') * 10 + (rest[2] - '0'));
    if (status_ < 100 || status_ > 699) {
      status_ = 0;
      return bad_request("status code out of range");
    }
    reason_ = rest.size() > 4 ? rest.substr(4) : std::string_view{};
    return Status::Ok();
  }
  // Request-Line = Method SP Request-URI SP SIP-Version; exactly one SP between elements.
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos) return bad_request("malformed request line");
  method_name_ = line.substr(0, sp1);
  if (!is_token(method_name_)) return bad_request("malformed method");
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return bad_request("malformed request line");
  std::string_view uri_text = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  switch (check_version(version)) {
    case VersionCheck::kOk:
      break;
    case VersionCheck::kUnsupported:
      return Error{505, "unsupported SIP version"};
    case VersionCheck::kMalformed:
      return bad_request("malformed request line");
  }
  if (uri_text.empty()) return bad_request("malformed request line");
  // Parsed in place: on failure the message is discarded, so a half-filled URI is never seen.
  if (!parse_uri_into(uri_text, request_uri_)) return bad_request("malformed Request-URI");
  // RFC 3261 §19.1.1: headers are not allowed in a Request-URI (RFC 4475 escruri).
  if (request_uri_.is_sip() && !request_uri_.headers.empty()) return bad_request("headers in Request-URI");
  method_ = method_from_name(method_name_);
  return Status::Ok();
}

Status Message::index_headers(size_t& pos, Framing framing) {
  const char* data = buffer_.get();
  HeaderField* current = nullptr;
  size_t value_start = 0;
  auto finish_current = [&](size_t content_end, size_t line_next) {
    current->value = trim_lws(std::string_view(data + value_start, content_end - value_start));
    current->line =
        std::string_view(current->name.data(), static_cast<size_t>(data + line_next - current->name.data()));
  };
  for (;;) {
    // A datagram that ends right after a complete header line lacks only the empty line; the
    // packet boundary frames it, so read it as a message without body (peers do send these).
    if (pos == size_ && framing == Framing::kDatagram && current != nullptr) return Status::Ok();
    if (pos >= size_) return bad_request("header section not terminated");
    size_t next = 0;
    size_t end = line_end(data, size_, pos, next);
    if (end == std::string_view::npos) return bad_request("header section not terminated");
    if (end == pos) {  // empty line: end of headers
      pos = next;
      return Status::Ok();
    }
    char first = data[pos];
    if (first == ' ' || first == '\t') {
      // A fold continues the previous field's value.
      if (current == nullptr) return bad_request("folded line without a header");
      finish_current(end, next);
      pos = next;
      continue;
    }
    if (headers_.size() >= limits_.max_headers) return Error{413, "too many header fields"};
    size_t colon = 0;
    HeaderKind kind = known_name_before_colon(data, size_, pos, end, colon);
    size_t name_end = colon;
    if (kind == HeaderKind::kOther) {
      name_end = pos;
      while (name_end < end && is_token_char(data[name_end])) ++name_end;
      colon = name_end;
      while (colon < end && (data[colon] == ' ' || data[colon] == '\t')) ++colon;
      if (name_end == pos || colon >= end || data[colon] != ':') return bad_request("malformed header line");
      kind = header_kind_from_name(std::string_view(data + pos, name_end - pos));
    }
    HeaderField& h = headers_.emplace_back();
    h.name = std::string_view(data + pos, name_end - pos);
    h.kind = kind;
    // No overflow: headers_.size() <= max_headers, a uint16_t, after this field.
    auto number = static_cast<uint16_t>(headers_.size());
    auto k = static_cast<size_t>(kind);
    if (first_of_kind_[k] == 0) first_of_kind_[k] = number;
    last_of_kind_[k] = number;
    current = &h;
    value_start = colon + 1;
    finish_current(end, next);
    pos = next;
  }
}

Status Message::frame_body(size_t body_start, Framing framing) {
  const char* data = buffer_.get();
  std::optional<uint32_t> content_length;
  for (const auto& h : fields_spanning(HeaderKind::kContentLength)) {
    if (h.kind != HeaderKind::kContentLength) continue;
    auto cl = parse_content_length(h.value, limits_.max_message_size);
    if (!cl) return cl.error();
    // RFC 4475 mcl01: two different lengths leave no way to frame the body.
    if (content_length && *content_length != *cl) return bad_request("conflicting Content-Length values");
    content_length = *cl;
  }
  has_content_length_ = content_length.has_value();
  size_t available = size_ - body_start;
  size_t body_len;
  if (content_length) {
    if (*content_length > available) return bad_request("Content-Length larger than the message");
    body_len = *content_length;
  } else {
    body_len = framing == Framing::kDatagram ? available : 0;
  }
  body_ = std::string_view(data + body_start, body_len);
  bytes_ = std::string_view(data, body_start + body_len);
  return Status::Ok();
}

const HeaderField* Message::header(std::string_view name) const {
  HeaderKind kind = header_kind_from_name(name);
  if (kind != HeaderKind::kOther) return header(kind);
  for (const auto& h : headers_)
    if (h.kind == HeaderKind::kOther && iequals(h.name, name)) return &h;
  return nullptr;
}

size_t Message::header_count(HeaderKind kind) const {
  size_t n = 0;
  for (const auto& h : fields_spanning(kind)) n += h.kind == kind ? 1 : 0;
  return n;
}

}  // namespace pinhole::sip
