// Cursor over one header value (or part of one) with the RFC 3261 §25.1 whitespace rules.
//
// A header value handed out by the message index may still contain line folding (CRLF followed
// by SP/HT); inside a value such a CRLF is always a fold, so LWS here is any run of SP, HT, CR, LF.
//
// Every header parser runs on these few methods, so their loops work on local copies of the
// position and text: a char read may alias any object, the scanner's own members included, so a
// loop that advanced pos_ in place would store and reload it for every character. Views are cut
// without string_view::substr's bounds check (the positions are in range by construction).
#pragma once

#include <cstddef>
#include <string_view>

#include "common/result.h"
#include "sip/charset.h"
#include "sip/simd.h"

namespace pinhole::sip {

class Scanner {
 public:
  explicit Scanner(std::string_view text) : s_(text) {}

  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[pos_]; }
  size_t pos() const { return pos_; }
  void set_pos(size_t p) { pos_ = p; }
  std::string_view text() const { return s_; }
  std::string_view rest() const { return s_.substr(pos_); }
  std::string_view slice(size_t from) const { return s_.substr(from, pos_ - from); }
  // The characters from `from` to the position, which must not be past it.
  std::string_view slice_unchecked(size_t from) const { return std::string_view(s_.data() + from, pos_ - from); }
  void advance(size_t n = 1) { pos_ += n; }

  // Skips linear white space (SP, HT and folds). Returns true if any was skipped.
  bool skip_lws() {
    size_t p = pos_;
    while (p < s_.size() && is_lws(s_[p])) ++p;
    bool skipped = p != pos_;
    pos_ = p;
    return skipped;
  }

  bool consume(char c) {
    if (pos_ >= s_.size() || s_[pos_] != c) return false;
    ++pos_;
    return true;
  }

  // SWS c SWS: a separator with optional white space on both sides (SEMI, COLON, SLASH...).
  bool consume_separator(char c) {
    size_t save = pos_;
    skip_lws();
    if (consume(c)) {
      skip_lws();
      return true;
    }
    pos_ = save;
    return false;
  }

  template <typename Pred>
  std::string_view take_while(Pred pred) {
    size_t start = pos_;
    while (!at_end() && pred(s_[pos_])) ++pos_;
    return s_.substr(start, pos_ - start);
  }

  // Takes the run of characters in class `mask` (charset.h): the hot-path form of take_while.
  std::string_view take_class(uint32_t mask) {
    const size_t start = pos_;
    pos_ += class_run(s_, start, mask);
    return std::string_view(s_.data() + start, pos_ - start);
  }
  // take_class for runs that are often long (see long_class_run).
  std::string_view take_long_class(uint32_t mask) {
    const size_t start = pos_;
    pos_ += long_class_run(s_, start, mask);
    return std::string_view(s_.data() + start, pos_ - start);
  }

  std::string_view token() { return take_class(kTokenChars); }

  // quoted-string = DQUOTE *(qdtext / quoted-pair) DQUOTE. Returns the text between the quotes
  // (escapes left as written). Fails on a missing closing quote or a bare CR/LF that is not a fold.
  // Skips, 16 bytes at a time, quoted-string text that needs no attention: stops at the first
  // '"', '\\' or control byte (CR, LF, HT and the others are judged one by one by the caller)
  // or where fewer than 16 bytes remain. Quoted values such as +sip.instance="<urn:uuid:...>"
  // are on every outbound REGISTER, so this loop is hot.
  size_t skip_plain_quoted_text(size_t p) const {
    while (p + simd::kBlock <= s_.size()) {
      __m128i block = simd::load(s_.data() + p);
      unsigned stop = simd::eq(block, '"') | simd::eq(block, '\\') | simd::in_range(block, 0x00, 0x1f);
      if (stop != 0) return p + static_cast<size_t>(__builtin_ctz(stop));
      p += simd::kBlock;
    }
    return p;
  }

  Result<std::string_view> quoted_string() {
    if (!consume('"')) return bad_request("expected quoted string");
    const size_t start = pos_;
    size_t p = start;
    while (p < s_.size()) {
      p = skip_plain_quoted_text(p);
      if (p >= s_.size()) break;
      char c = s_[p];
      if (c == '"') {
        pos_ = p + 1;
        return std::string_view(s_.data() + start, p - start);
      }
      if (c == '\\') {
        if (p + 1 >= s_.size()) break;
        char q = s_[p + 1];
        if (q == '\r' || q == '\n') {
          pos_ = p;
          return bad_request("bad quoted-pair");
        }
        p += 2;
        continue;
      }
      if (c == '\r' || c == '\n') {
        // Only a fold (CRLF followed by WSP) may appear inside a header value.
        ++p;
        continue;
      }
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t') {
        pos_ = p;
        return bad_request("control character in quoted string");
      }
      ++p;
    }
    pos_ = p;
    return bad_request("unterminated quoted string");
  }

 private:
  std::string_view s_;
  size_t pos_ = 0;
};

// Trims SP/HT/CR/LF from both ends.
inline std::string_view trim_lws(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && is_lws(s[b])) ++b;
  while (e > b && is_lws(s[e - 1])) --e;
  return std::string_view(s.data() + b, e - b);
}

}  // namespace pinhole::sip
