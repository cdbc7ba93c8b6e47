// Serializer with an edit list: the changes a proxy makes to a received message (Via params,
// Record-Route, Path, Contact fixes, SDP body) are recorded as byte-range edits against the
// original bytes and applied in one pass when the message is serialized. Bytes no edit touches
// go out exactly as received.
//
// The Message must outlive the Editor; views passed in must point into that message. Edits must
// not overlap (two edits of the same bytes is a caller bug: the later one is dropped and asserts
// in debug builds). Inserts at the same offset come out in the order they were recorded.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/container/inlined_vector.h"
#include "sip/message.h"

namespace pinhole::sip {

class Editor {
 public:
  explicit Editor(const Message& msg) : msg_(msg) {}

  // Byte-level primitives.
  void replace(std::string_view range, std::string_view text);
  void insert_at(size_t offset, std::string_view text);
  void remove(std::string_view range) { replace(range, {}); }

  // Header fields. Inserted fields end with CRLF.
  void add_header_first(std::string_view name, std::string_view value);  // before every field
  void add_header_before(const HeaderField& at, std::string_view name, std::string_view value);
  void add_header_last(std::string_view name, std::string_view value);  // after every field
  void remove_header(const HeaderField& h);
  void replace_header_value(const HeaderField& h, std::string_view value);
  // Removes one value of a comma-separated field (the whole line when it is the only one).
  // `value_raw` is that value's `raw` view (Via::raw, NameAddr::raw...).
  void remove_list_value(const HeaderField& h, std::string_view value_raw);

  // Via parameters: sets (replacing an existing one) or removes. An empty value writes a flag
  // parameter ("rport", "alias").
  void set_via_param(const Via& via, std::string_view name, std::string_view value);
  void remove_via_param(const Via& via, std::string_view name);

  // URIs (Request-URI, Contact, Route...): new host and port (port 0 removes it), or a whole new URI.
  void set_uri_host_port(const Uri& uri, std::string_view host, uint16_t port);
  void replace_uri(const Uri& uri, std::string_view new_uri);

  // Replaces the body and updates (or adds) Content-Length.
  void set_body(std::string_view body);

  bool empty() const { return edits_.empty(); }
  std::string serialize() const;

 private:
  struct Edit {
    size_t offset;
    size_t length;
    size_t text_offset;  // into text_
    size_t text_length;
    uint32_t seq;
  };
  void insert_header_line(size_t at, std::string_view name, std::string_view value);
  // Range from the ';' that introduces `p` through the end of its value.
  std::string_view param_range_with_separator(const Via& via, const Param& p) const;

  const Message& msg_;
  absl::InlinedVector<Edit, 8> edits_;
  std::string text_;  // all inserted text, so recording an edit allocates at most by growth
};

}  // namespace pinhole::sip
