// bencode (BitTorrent BEP 3) as rtpengine's ng control protocol uses it: a zero-copy decoder, an
// incremental scanner that finds where a value ends in a byte stream (ng over TCP), and an encoder.
//
// What is accepted (the decoder and the scanner apply the same rules, so a value the scanner calls
// complete is one the decoder takes):
//  - integers `i<n>e`: canonical decimal only (no leading zeros, no "-0", no '+', no spaces), in
//    the int64 range;
//  - byte strings `<len>:<bytes>`: binary-safe; the length has no leading zeros and is bounded by
//    the bytes that remain and by the size limit;
//  - lists `l...e` and dictionaries `d...e` whose keys are byte strings.
// Dictionary keys may come in any order and may repeat, as rtpengine accepts them: its ng docs say
// the BEP 3 key order "is not currently honoured", its decoder keeps every pair (current versions
// walk all pairs in order, so a repeated key's last value wins), and Kamailio's rtpengine module
// does send repeats: its dictionary is built in script order and a `key=value` flag becomes a key,
// so `ICE=force ... ICE=remove` or `delete-delay=5` (sent as both "delete delay" and
// "delete-delay") reach the relay as they were written. Refusing them would fail calls that work
// with rtpengine. Pairs are kept in input order; Value::find returns the first; the ng layer
// (ng_message.h) applies them in order and reports conflicting repeats as a warning.
//
// Limits (total size, nesting depth, number of values) keep a hostile input from costing more
// than a bounded amount of memory and time. Errors are Result/Status with a static reason, never a
// crash: status 400 for malformed input, 413 when a limit is exceeded.
//
// Threads: plain values and functions; a Document, Scanner or Writer belongs to one thread at a
// time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace pinhole::media::bencode {

enum class Type : uint8_t { kInteger, kString, kList, kDict };

// The deepest nesting any Limits may ask for (the scanner keeps its stack in a fixed array).
inline constexpr uint32_t kMaxDepthCeiling = 64;

struct Limits {
  size_t max_size = size_t{64} * 1024;  // bytes of one encoded value
  uint32_t max_depth = 32;              // lists/dictionaries open at once; capped at kMaxDepthCeiling
  uint32_t max_items = 8192;            // values in one document, dictionary keys included
};

namespace detail {
// One decoded value. Documents store them flat in pre-order: a container's children follow it,
// and `end` is the index just past its subtree, so walking siblings is `i = nodes[i].end`.
struct Node {
  Type type = Type::kInteger;
  uint32_t count = 0;     // list: items; dictionary: key/value pairs
  uint32_t end = 0;       // index one past this node's subtree
  std::string_view raw;   // the value's exact encoding in the input
  std::string_view text;  // string: its bytes
  int64_t integer = 0;    // integer: its value
};
}  // namespace detail

class Value;

// One key/value pair of a dictionary; `key` is always a byte string.
struct DictEntry;

// A read-only handle on one decoded value. It points into its Document (and, for strings and raw
// bytes, into the decoded input): valid while both live. Accessors never assert on the type of
// untrusted data; asking a list for its integer gives std::nullopt.
class Value {
 public:
  Type type() const { return node().type; }
  bool is_integer() const { return type() == Type::kInteger; }
  bool is_string() const { return type() == Type::kString; }
  bool is_list() const { return type() == Type::kList; }
  bool is_dict() const { return type() == Type::kDict; }

  std::optional<int64_t> as_integer() const;
  std::optional<std::string_view> as_string() const;
  // The exact bytes this value was decoded from (canonical, since only canonical input decodes).
  std::string_view raw() const { return node().raw; }
  // Items of a list, pairs of a dictionary, 0 for scalars.
  size_t size() const { return is_list() || is_dict() ? node().count : 0; }

  class ListIterator;
  class DictIterator;
  template <typename It>
  struct Range {
    It first;
    It last;
    It begin() const { return first; }
    It end() const { return last; }
  };
  // The items of a list in order; empty for any other type.
  Range<ListIterator> items() const;
  // The pairs of a dictionary in input order, repeats included; empty for any other type.
  Range<DictIterator> entries() const;
  // The value of the first pair whose key is `key`, if this is a dictionary that has one.
  std::optional<Value> find(std::string_view key) const;

 private:
  friend class Document;
  Value(const detail::Node* nodes, uint32_t index) : nodes_(nodes), index_(index) {}
  const detail::Node& node() const { return nodes_[index_]; }

  const detail::Node* nodes_;
  uint32_t index_;
};

struct DictEntry {
  std::string_view key;
  Value value;
};

class Value::ListIterator {
 public:
  using difference_type = std::ptrdiff_t;
  using value_type = Value;
  Value operator*() const { return {nodes_, index_}; }
  ListIterator& operator++() {
    index_ = nodes_[index_].end;
    return *this;
  }
  ListIterator operator++(int) {
    ListIterator old = *this;
    ++*this;
    return old;
  }
  friend bool operator==(const ListIterator& a, const ListIterator& b) { return a.index_ == b.index_; }

 private:
  friend class Value;
  ListIterator(const detail::Node* nodes, uint32_t index) : nodes_(nodes), index_(index) {}
  const detail::Node* nodes_ = nullptr;
  uint32_t index_ = 0;
};

class Value::DictIterator {
 public:
  using difference_type = std::ptrdiff_t;
  using value_type = DictEntry;
  // `index_` is the key's node; the value's node follows the key's (a key is a string, no subtree).
  DictEntry operator*() const { return {nodes_[index_].text, Value(nodes_, index_ + 1)}; }
  DictIterator& operator++() {
    index_ = nodes_[index_ + 1].end;
    return *this;
  }
  DictIterator operator++(int) {
    DictIterator old = *this;
    ++*this;
    return old;
  }
  friend bool operator==(const DictIterator& a, const DictIterator& b) { return a.index_ == b.index_; }

 private:
  friend class Value;
  DictIterator(const detail::Node* nodes, uint32_t index) : nodes_(nodes), index_(index) {}
  const detail::Node* nodes_ = nullptr;
  uint32_t index_ = 0;
};

// A decoded value tree. Strings are views into the input given to decode(), which must outlive
// the Document and every Value taken from it. Move-only: Values point at its node array, which a
// move keeps in place.
class Document {
 public:
  Value root() const { return {nodes_.data(), 0}; }
  // Values in the document, dictionary keys included.
  size_t node_count() const { return nodes_.size(); }

  Document(Document&&) noexcept = default;
  Document& operator=(Document&&) noexcept = default;
  Document(const Document&) = delete;
  Document& operator=(const Document&) = delete;
  ~Document() = default;

 private:
  friend Result<Document> decode(std::string_view input, const Limits& limits);
  Document() = default;
  std::vector<detail::Node> nodes_;
};

// Decodes `input`, which must hold exactly one value and nothing after it.
Result<Document> decode(std::string_view input, const Limits& limits = {});

// Finds where one value ends in a byte stream without building it, across calls: each call gets
// the stream from the value's first byte up to what has arrived so far (a growing buffer whose
// earlier bytes are unchanged) and resumes where the previous call stopped, so feeding a message
// in n pieces costs O(size), not O(n * size). reset() starts over for the next value.
class Scanner {
 public:
  explicit Scanner(const Limits& limits = {});

  enum class Status : uint8_t { kNeedMore, kComplete, kError };
  struct Progress {
    Status status = Status::kNeedMore;
    size_t length = 0;  // kComplete: bytes of the value (what follows belongs to the next one)
    Error error{};      // kError: 400 malformed, 413 over a limit; the stream cannot be resynced
  };
  Progress scan(std::string_view text);
  void reset();

 private:
  friend Result<Document> decode(std::string_view input, const Limits& limits);

  enum class Phase : uint8_t {
    kValue,        // at the start of a value (or of a container's 'e')
    kIntStart,     // after 'i'
    kIntNegative,  // after "i-"
    kIntDigits,    // inside the digits
    kIntZero,      // after "i0": only 'e' may follow
    kStrLength,    // inside a string's length
    kStrBody,      // inside a string's bytes
    kDone,
    kFailed,
  };
  struct Open {
    bool dict = false;
    bool want_value = false;  // dictionary: a key was read, its value comes next
    uint32_t node = 0;        // the container's node (decode only)
    uint32_t count = 0;       // items or pairs so far
    size_t start = 0;         // offset of its 'l' or 'd'
  };

  Progress fail(Error error);
  Status begin_value(size_t at);
  Status finish_scalar(std::string_view text, size_t end);
  Status finish_value(size_t end);
  void push_node(Type type, std::string_view raw, std::string_view str, int64_t integer);

  Limits limits_;
  std::vector<detail::Node>* nodes_ = nullptr;  // set by decode() to build the tree
  bool whole_input_ = false;                    // decode(): no more bytes will come
  std::array<Open, kMaxDepthCeiling> stack_{};
  uint32_t depth_ = 0;
  uint32_t items_ = 0;
  Phase phase_ = Phase::kValue;
  size_t pos_ = 0;          // next byte to look at
  size_t value_start_ = 0;  // first byte of the scalar being read
  uint64_t number_ = 0;     // integer magnitude or string length read so far
  bool negative_ = false;
  size_t remaining_ = 0;  // string bytes still to come
  size_t length_ = 0;     // kDone: length of the value
  Error error_{};
};

struct WriteOptions {
  // Write each dictionary's pairs sorted by key as raw bytes (BEP 3's canonical form) instead of
  // in the order given. Repeated keys keep their relative order.
  bool sort_keys = false;
};

// Appends bencode to a string. Calls must form one well-nested value: inside a dictionary, key()
// and a value alternate. Misuse is a bug in the caller (asserted in debug builds), never caused by
// input. Strings are copied into the output; nothing is kept after each call.
class Writer {
 public:
  explicit Writer(std::string& out, WriteOptions options = {}) : out_(out), options_(options) {}

  Writer& integer(int64_t value);
  Writer& string(std::string_view bytes);
  Writer& key(std::string_view bytes);
  Writer& begin_list();
  Writer& begin_dict();
  Writer& end();
  // Re-encodes a decoded value (its dictionaries sorted when sort_keys is set).
  Writer& value(const Value& v);

  // A pair in the current dictionary.
  Writer& entry(std::string_view k, std::string_view str) { return key(k).string(str); }
  Writer& entry(std::string_view k, int64_t i) { return key(k).integer(i); }

  // True once every container begun has ended.
  bool closed() const { return open_.empty(); }

 private:
  struct Open {
    bool dict = false;
    size_t body = 0;            // offset just after the 'd' or 'l'
    std::vector<size_t> pairs;  // sort_keys: offset of each key
    bool want_value = false;    // dictionary: a key was written, its value comes next
  };
  void before_value(bool is_key);
  void put_string(std::string_view bytes);
  void sort_pairs(const Open& dict);

  std::string& out_;
  WriteOptions options_;
  std::vector<Open> open_;
};

// The encoding of `v`; with default options this equals v.raw().
std::string encode(const Value& v, WriteOptions options = {});

}  // namespace pinhole::media::bencode
