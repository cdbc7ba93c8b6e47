// A parsed SIP message: owns its bytes, indexes its header fields once, parses the values of a
// header kind the first time they are asked for.
//
// Ownership and threads: a Message owns its receive buffer; every view handed out (header fields,
// URIs, Via, NameAddr...) points into that buffer and is valid while the Message lives. Lazily
// parsed values are cached in `mutable` members, so a Message must be used by one thread at a time
// (the worker that owns it), which is how the event loops use it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string_view>

#include "absl/container/inlined_vector.h"
#include "common/result.h"
#include "sip/header_kind.h"
#include "sip/method.h"
#include "sip/name_addr.h"
#include "sip/scalar_headers.h"
#include "sip/uri.h"
#include "sip/via.h"

namespace pinhole::sip {

// Bounds that keep one message's memory and work bounded whatever a peer sends.
struct ParseLimits {
  uint32_t max_message_size = 64 * 1024;  // larger: 413 (streams close the connection, UDP drops)
  uint16_t max_headers = 256;             // header field lines
  uint16_t max_vias = 64;                 // Via values across all Via lines
};

// Datagram: one message per packet, octets after the Content-Length body are ignored (RFC 4475
// dblreq); without Content-Length the body is the rest of the packet. Stream: the bytes hold one
// message exactly as framed by StreamFramer; without Content-Length the body is empty.
enum class Framing : uint8_t { kDatagram, kStream };

struct HeaderField {
  std::string_view name;   // as written ("v", "VIA", "Call-ID")
  std::string_view value;  // LWS trimmed at both ends; inner folds kept
  std::string_view line;   // the whole field: name through the line end of its last folded line
  HeaderKind kind = HeaderKind::kOther;
};

class Message;
using MessagePtr = std::unique_ptr<Message>;

class Message {
 public:
  // Copies `bytes` into a buffer the message owns and parses it.
  static Result<MessagePtr> parse(std::string_view bytes, Framing framing, const ParseLimits& limits = {});
  // Takes ownership of `buffer` (the transport's receive buffer; `size` bytes are valid).
  static Result<MessagePtr> parse(std::unique_ptr<char[]> buffer, size_t size, Framing framing,
                                  const ParseLimits& limits = {});

  Message(const Message&) = delete;
  Message& operator=(const Message&) = delete;

  // Each thread keeps one freed Message block for its next message (see message.cc).
  static void* operator new(size_t size);
  static void operator delete(void* block, size_t size) noexcept;

  bool is_request() const { return status_ == 0; }
  bool is_response() const { return status_ != 0; }

  // Request line.
  Method method() const { return method_; }
  std::string_view method_name() const { return method_name_; }
  const Uri& request_uri() const { return request_uri_; }
  // Status line.
  uint16_t status() const { return status_; }
  std::string_view reason() const { return reason_; }

  std::string_view start_line() const { return start_line_; }
  std::span<const HeaderField> headers() const { return {headers_.data(), headers_.size()}; }
  const HeaderField* header(HeaderKind kind) const {  // inline: the lazy accessors call it for every value
    auto k = static_cast<size_t>(kind);
    if (k >= first_of_kind_.size() || first_of_kind_[k] == 0) return nullptr;
    return &headers_[first_of_kind_[k] - 1u];
  }
  const HeaderField* header(std::string_view name) const;  // any header, by name (compact forms too)
  size_t header_count(HeaderKind kind) const;

  std::string_view body() const { return body_; }
  // The message as received (a datagram's trailing octets excluded).
  std::string_view bytes() const { return bytes_; }
  bool has_content_length() const { return has_content_length_; }
  // Offset of a view into this message's bytes (for edits).
  size_t offset_of(std::string_view inner) const { return static_cast<size_t>(inner.data() - buffer_.get()); }

  // Lazily parsed header values. A missing mandatory header is a 400 error.
  Result<std::span<const Via>> vias() const;
  Result<const Via*> top_via() const;
  Result<const NameAddr*> from() const;
  Result<const NameAddr*> to() const;
  Result<std::string_view> call_id() const;
  Result<CSeq> cseq() const;
  Result<std::optional<uint8_t>> max_forwards() const;  // nullopt when absent
  Result<std::optional<uint32_t>> expires() const;      // nullopt when absent
  Result<std::span<const Contact>> contacts() const;    // empty when absent
  Result<std::span<const NameAddr>> routes() const;
  Result<std::span<const NameAddr>> record_routes() const;
  Result<std::span<const NameAddr>> paths() const;
  Result<std::optional<ContentType>> content_type() const;

 private:
  Message() = default;
  Status parse_all(Framing framing);
  Status parse_start_line(std::string_view line);
  Status index_headers(size_t& pos, Framing framing);
  Status frame_body(size_t body_start, Framing framing);

  template <typename T, size_t N>
  struct LazyList {
    enum : uint8_t { kUnparsed, kParsed, kFailed } state = kUnparsed;
    Error error{};
    absl::InlinedVector<T, N> items;
  };
  template <typename T>
  struct LazyValue {
    enum : uint8_t { kUnparsed, kParsed, kFailed } state = kUnparsed;
    Error error{};
    T value{};
  };
  Result<std::span<const NameAddr>> route_list(HeaderKind kind, LazyList<NameAddr, 2>& cache) const;
  Result<const NameAddr*> single_name_addr(HeaderKind kind, LazyValue<NameAddr>& cache) const;

  std::unique_ptr<char[]> buffer_;
  size_t size_ = 0;
  ParseLimits limits_;

  std::string_view bytes_, start_line_, body_;
  Method method_ = Method::kOther;
  std::string_view method_name_;
  Uri request_uri_;
  uint16_t status_ = 0;
  std::string_view reason_;
  bool has_content_length_ = false;
  absl::InlinedVector<HeaderField, 24> headers_;
  // For each kind, 1 + the index of its first and of its last field (0: none), recorded while
  // indexing so that header(kind) and the lazy parsers go straight to their fields instead of
  // walking all of them. uint16_t suffices: there are at most ParseLimits::max_headers fields.
  using KindIndex = std::array<uint16_t, static_cast<size_t>(HeaderKind::kCount)>;
  KindIndex first_of_kind_{}, last_of_kind_{};
  // The fields of `kind`, mixed with others: from its first field to its last (empty if none).
  std::span<const HeaderField> fields_spanning(HeaderKind kind) const {
    auto k = static_cast<size_t>(kind);
    if (k >= first_of_kind_.size() || first_of_kind_[k] == 0) return {};
    return headers().subspan(first_of_kind_[k] - 1u, static_cast<size_t>(last_of_kind_[k] - first_of_kind_[k]) + 1);
  }

  mutable LazyList<Via, 4> vias_;
  mutable LazyList<Contact, 1> contacts_;
  mutable LazyList<NameAddr, 2> routes_, record_routes_, paths_;
  mutable LazyValue<NameAddr> from_, to_;
};

}  // namespace pinhole::sip
