#include "media/bencode.h"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <limits>
#include <utility>

namespace pinhole::media::bencode {
namespace {

constexpr uint64_t kMaxPositive = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
constexpr uint64_t kMaxNegative = kMaxPositive + 1;  // |INT64_MIN|

bool is_digit(char c) { return c >= '0' && c <= '9'; }
unsigned digit(char c) { return static_cast<unsigned>(c - '0'); }

// number * 10 + d, or false when that would pass `limit`.
bool accumulate(uint64_t& number, unsigned d, uint64_t limit) {
  if (number > (limit - d) / 10) return false;
  number = number * 10 + d;
  return true;
}

Error too_large(std::string_view what) { return Error{413, what}; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Value

std::optional<int64_t> Value::as_integer() const {
  if (!is_integer()) return std::nullopt;
  return node().integer;
}

std::optional<std::string_view> Value::as_string() const {
  if (!is_string()) return std::nullopt;
  return node().text;
}

Value::Range<Value::ListIterator> Value::items() const {
  uint32_t end = node().end;
  if (!is_list()) return {ListIterator(nodes_, end), ListIterator(nodes_, end)};
  return {ListIterator(nodes_, index_ + 1), ListIterator(nodes_, end)};
}

Value::Range<Value::DictIterator> Value::entries() const {
  uint32_t end = node().end;
  if (!is_dict()) return {DictIterator(nodes_, end), DictIterator(nodes_, end)};
  return {DictIterator(nodes_, index_ + 1), DictIterator(nodes_, end)};
}

std::optional<Value> Value::find(std::string_view key) const {
  for (const DictEntry& e : entries()) {
    if (e.key == key) return e.value;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Scanner

Scanner::Scanner(const Limits& limits) : limits_(limits) {
  limits_.max_depth = std::min(limits_.max_depth, kMaxDepthCeiling);
}

void Scanner::reset() {
  depth_ = 0;
  items_ = 0;
  phase_ = Phase::kValue;
  pos_ = 0;
  value_start_ = 0;
  number_ = 0;
  negative_ = false;
  remaining_ = 0;
  length_ = 0;
  error_ = {};
}

Scanner::Progress Scanner::fail(Error error) {
  phase_ = Phase::kFailed;
  error_ = error;
  return {Status::kError, 0, error};
}

void Scanner::push_node(Type type, std::string_view raw, std::string_view str, int64_t integer) {
  detail::Node n;
  n.type = type;
  n.raw = raw;
  n.text = str;
  n.integer = integer;
  n.end = static_cast<uint32_t>(nodes_->size() + 1);
  nodes_->push_back(n);
}

// A value (scalar or container) ended just before `end`: tell its container, or finish.
Scanner::Status Scanner::finish_value(size_t end) {
  phase_ = Phase::kValue;
  if (depth_ == 0) {
    phase_ = Phase::kDone;
    length_ = end;
    return Status::kComplete;
  }
  Open& open = stack_[depth_ - 1];
  if (!open.dict) {
    ++open.count;
  } else if (!open.want_value) {
    open.want_value = true;
  } else {
    open.want_value = false;
    ++open.count;
  }
  return Status::kNeedMore;
}

Scanner::Status Scanner::finish_scalar(std::string_view text, size_t end) {
  if (nodes_ != nullptr) {
    std::string_view raw = text.substr(value_start_, end - value_start_);
    if (text[value_start_] == 'i') {
      int64_t v = negative_
                      ? (number_ == kMaxNegative ? std::numeric_limits<int64_t>::min() : -static_cast<int64_t>(number_))
                      : static_cast<int64_t>(number_);
      push_node(Type::kInteger, raw, {}, v);
    } else {
      push_node(Type::kString, raw, raw.substr(raw.size() - number_), 0);
    }
  }
  return finish_value(end);
}

Scanner::Progress Scanner::scan(std::string_view text) {
  if (phase_ == Phase::kFailed) return {Status::kError, 0, error_};
  if (phase_ == Phase::kDone) return {Status::kComplete, length_, {}};
  while (pos_ < text.size()) {
    if (pos_ >= limits_.max_size) return fail(too_large("bencode value larger than the size limit"));
    const char c = text[pos_];
    switch (phase_) {
      case Phase::kValue: {
        Open* open = depth_ > 0 ? &stack_[depth_ - 1] : nullptr;
        if (c == 'e') {
          if (open == nullptr) return fail(bad_request("bencode end marker outside a list or dictionary"));
          if (open->want_value) return fail(bad_request("bencode dictionary key without a value"));
          ++pos_;
          if (nodes_ != nullptr) {
            detail::Node& n = (*nodes_)[open->node];
            n.count = open->count;
            n.end = static_cast<uint32_t>(nodes_->size());
            n.raw = text.substr(open->start, pos_ - open->start);
          }
          --depth_;
          if (finish_value(pos_) == Status::kComplete) return {Status::kComplete, length_, {}};
          break;
        }
        if (open != nullptr && open->dict && !open->want_value && !is_digit(c)) {
          return fail(bad_request("bencode dictionary key is not a byte string"));
        }
        if (++items_ > limits_.max_items) return fail(too_large("too many bencode values"));
        value_start_ = pos_;
        if (c == 'i') {
          phase_ = Phase::kIntStart;
          number_ = 0;
          negative_ = false;
        } else if (is_digit(c)) {
          phase_ = Phase::kStrLength;
          number_ = digit(c);
        } else if (c == 'l' || c == 'd') {
          if (depth_ >= limits_.max_depth) return fail(too_large("bencode nesting deeper than the limit"));
          uint32_t node = 0;
          if (nodes_ != nullptr) {
            node = static_cast<uint32_t>(nodes_->size());
            push_node(c == 'l' ? Type::kList : Type::kDict, {}, {}, 0);
          }
          stack_[depth_++] = Open{c == 'd', false, node, 0, pos_};
        } else {
          return fail(bad_request("invalid bencode value type"));
        }
        ++pos_;
        break;
      }
      case Phase::kIntStart:
        if (c == '-') {
          negative_ = true;
          phase_ = Phase::kIntNegative;
        } else if (c == '0') {
          phase_ = Phase::kIntZero;
        } else if (is_digit(c)) {
          number_ = digit(c);
          phase_ = Phase::kIntDigits;
        } else {
          return fail(bad_request("bencode integer without digits"));
        }
        ++pos_;
        break;
      case Phase::kIntNegative:
        if (c == '0') return fail(bad_request("bencode integer is negative zero or has a leading zero"));
        if (!is_digit(c)) return fail(bad_request("bencode integer without digits"));
        number_ = digit(c);
        phase_ = Phase::kIntDigits;
        ++pos_;
        break;
      case Phase::kIntDigits:
        if (is_digit(c)) {
          if (!accumulate(number_, digit(c), negative_ ? kMaxNegative : kMaxPositive)) {
            return fail(bad_request("bencode integer outside the 64-bit range"));
          }
          ++pos_;
          break;
        }
        if (c != 'e') return fail(bad_request("bencode integer not terminated by 'e'"));
        ++pos_;
        if (finish_scalar(text, pos_) == Status::kComplete) return {Status::kComplete, length_, {}};
        break;
      case Phase::kIntZero:
        if (c != 'e') return fail(bad_request("bencode integer has a leading zero"));
        ++pos_;
        if (finish_scalar(text, pos_) == Status::kComplete) return {Status::kComplete, length_, {}};
        break;
      case Phase::kStrLength:
        if (is_digit(c)) {
          if (text[value_start_] == '0') return fail(bad_request("bencode string length has a leading zero"));
          // Overflow of the length is a size-limit case too: no such string could fit.
          if (!accumulate(number_, digit(c), limits_.max_size)) {
            return fail(too_large("bencode string longer than the size limit"));
          }
          ++pos_;
          break;
        }
        if (c != ':') return fail(bad_request("bencode string length not followed by ':'"));
        ++pos_;
        if (number_ > limits_.max_size - pos_) return fail(too_large("bencode string longer than the size limit"));
        if (whole_input_ && number_ > text.size() - pos_) {
          return fail(bad_request("bencode string longer than the rest of the input"));
        }
        if (number_ == 0) {
          if (finish_scalar(text, pos_) == Status::kComplete) return {Status::kComplete, length_, {}};
          break;
        }
        remaining_ = number_;
        phase_ = Phase::kStrBody;
        break;
      case Phase::kStrBody: {
        size_t take = std::min(remaining_, text.size() - pos_);
        pos_ += take;
        remaining_ -= take;
        if (remaining_ == 0 && finish_scalar(text, pos_) == Status::kComplete) {
          return {Status::kComplete, length_, {}};
        }
        break;
      }
      case Phase::kDone:
      case Phase::kFailed:
        // Both return before the loop; kept for -Wswitch.
        return {Status::kError, 0, error_};
    }
  }
  return {Status::kNeedMore, 0, {}};
}

// ---------------------------------------------------------------------------------------------
// decode

Result<Document> decode(std::string_view input, const Limits& limits) {
  if (input.size() > limits.max_size) return too_large("bencode value larger than the size limit");
  if (input.empty()) return bad_request("empty bencode input");
  Document doc;
  // Every value takes at least two bytes ("0:", "le"); a modest first guess avoids most regrowth
  // without reserving for the worst case.
  doc.nodes_.reserve(std::min<size_t>(input.size() / 8 + 4, limits.max_items));
  Scanner scanner(limits);
  scanner.nodes_ = &doc.nodes_;
  scanner.whole_input_ = true;
  Scanner::Progress p = scanner.scan(input);
  if (p.status == Scanner::Status::kError) return p.error;
  if (p.status == Scanner::Status::kNeedMore) return bad_request("truncated bencode value");
  if (p.length != input.size()) return bad_request("bytes after the end of the bencode value");
  return doc;
}

// ---------------------------------------------------------------------------------------------
// Writer

void Writer::before_value(bool is_key) {
  if (open_.empty()) return;
  Open& open = open_.back();
  if (!open.dict) {
    assert(!is_key && "key() inside a list");
    return;
  }
  if (is_key) {
    assert(!open.want_value && "two keys in a row");
    if (options_.sort_keys) open.pairs.push_back(out_.size());
    open.want_value = true;
  } else {
    assert(open.want_value && "a dictionary value without a key");
    open.want_value = false;
  }
}

void Writer::put_string(std::string_view bytes) {
  std::array<char, 24> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), bytes.size());
  (void)ec;  // 24 bytes hold any size_t
  out_.append(buf.data(), end);
  out_.push_back(':');
  out_.append(bytes);
}

Writer& Writer::integer(int64_t value) {
  before_value(false);
  std::array<char, 24> buf{};
  auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), value);
  (void)ec;  // 24 bytes hold any int64
  out_.push_back('i');
  out_.append(buf.data(), end);
  out_.push_back('e');
  return *this;
}

Writer& Writer::string(std::string_view bytes) {
  before_value(false);
  put_string(bytes);
  return *this;
}

Writer& Writer::key(std::string_view bytes) {
  before_value(true);
  put_string(bytes);
  return *this;
}

Writer& Writer::begin_list() {
  before_value(false);
  out_.push_back('l');
  open_.push_back(Open{false, out_.size(), {}, false});
  return *this;
}

Writer& Writer::begin_dict() {
  before_value(false);
  out_.push_back('d');
  open_.push_back(Open{true, out_.size(), {}, false});
  return *this;
}

Writer& Writer::end() {
  assert(!open_.empty() && "end() without an open container");
  if (open_.empty()) return *this;
  Open open = std::move(open_.back());
  open_.pop_back();
  assert(!open.want_value && "dictionary ended after a key");
  if (open.dict && open.pairs.size() > 1) sort_pairs(open);
  out_.push_back('e');
  return *this;
}

// Reorders the pairs written since the dictionary began. Each pair is the bytes from its key's
// offset to the next key's (or to the end): nested dictionaries were sorted when they ended, so
// moving a pair as one block keeps it canonical.
void Writer::sort_pairs(const Open& dict) {
  struct Pair {
    std::string_view key;
    size_t begin;
    size_t end;
  };
  std::string_view out = out_;
  std::vector<Pair> pairs;
  pairs.reserve(dict.pairs.size());
  for (size_t i = 0; i < dict.pairs.size(); ++i) {
    size_t begin = dict.pairs[i];
    size_t end = i + 1 < dict.pairs.size() ? dict.pairs[i + 1] : out.size();
    size_t colon = out.find(':', begin);
    size_t len = 0;
    std::from_chars(out.data() + begin, out.data() + colon, len);
    pairs.push_back({out.substr(colon + 1, len), begin, end});
  }
  // std::string_view compares as unsigned bytes (char_traits<char>::compare is memcmp-like),
  // which is BEP 3's "raw string" order.
  std::stable_sort(pairs.begin(), pairs.end(), [](const Pair& a, const Pair& b) { return a.key < b.key; });
  std::string sorted;
  sorted.reserve(out.size() - dict.body);
  for (const Pair& p : pairs) sorted.append(out.substr(p.begin, p.end - p.begin));
  out_.replace(dict.body, sorted.size(), sorted);
}

Writer& Writer::value(const Value& v) {
  switch (v.type()) {
    case Type::kInteger:
      return integer(v.as_integer().value_or(0));
    case Type::kString:
      return string(v.as_string().value_or(std::string_view()));
    case Type::kList:
      begin_list();
      for (Value item : v.items()) value(item);
      return end();
    case Type::kDict:
      begin_dict();
      for (const DictEntry& e : v.entries()) {
        key(e.key);
        value(e.value);
      }
      return end();
  }
  return *this;
}

std::string encode(const Value& v, WriteOptions options) {
  std::string out;
  out.reserve(v.raw().size());
  Writer(out, options).value(v);
  return out;
}

}  // namespace pinhole::media::bencode
