// RFC 3261 §25 character classes as one constexpr table, so every grammar check is a lookup.
#pragma once

#include <array>
#include <bit>
#include <cstdint>
#include <string_view>

namespace pinhole::sip {

enum CharClass : uint32_t {
  kAlnum = 1 << 0,
  kMark = 1 << 1,             // - _ . ! ~ * ' ( )
  kTokenExtra = 1 << 2,       // - . ! % * _ + ` ' ~   (token = alnum + these)
  kWordExtra = 1 << 3,        // token extras + ( ) < > : \ " / [ ] ? { }
  kUserUnreserved = 1 << 4,   // & = + $ , ; ? /
  kPasswordExtra = 1 << 5,    // & = + $ ,
  kParamUnreserved = 1 << 6,  // [ ] / : & + $
  kHnvUnreserved = 1 << 7,    // [ ] / ? : + $
  kHostChar = 1 << 8,         // alnum - .
  kWsp = 1 << 9,              // SP HT
  kHex = 1 << 10,
  kDigit = 1 << 11,
  kColonBracket = 1 << 12,  // : [ ]   (hosts: IPv6 references, host:port)
  kLws = 1 << 13,           // SP HT CR LF (white space inside a header value, folds included)
  // The composite classes below, one bit each (set wherever one of the parts is), so that a run
  // of their characters can be checked several characters at a time (class_run).
  kTokenBit = 1 << 14,                // alnum + token extras
  kWordBit = 1 << 15,                 // alnum + word extras
  kUserBit = 1 << 16,                 // alnum + mark + user unreserved
  kPasswordBit = 1 << 17,             // alnum + mark + password extras
  kParamBit = 1 << 18,                // alnum + mark + param unreserved
  kHeaderBit = 1 << 19,               // alnum + mark + hnv unreserved
  kTokenOrColonBracketBit = 1 << 20,  // token + : [ ]   (header parameter values, hosts included)
};

// Composite classes, so hot loops test one bit per character.
inline constexpr uint32_t kTokenChars = kTokenBit;
inline constexpr uint32_t kWordChars = kWordBit;
inline constexpr uint32_t kUserChars = kUserBit;
inline constexpr uint32_t kPasswordChars = kPasswordBit;
inline constexpr uint32_t kParamChars = kParamBit;
inline constexpr uint32_t kHeaderChars = kHeaderBit;
inline constexpr uint32_t kTokenOrColonBracket = kTokenOrColonBracketBit;

namespace detail {
constexpr void mark_all(std::array<uint32_t, 256>& t, std::string_view chars, uint32_t cls) {
  for (char c : chars) t[static_cast<unsigned char>(c)] |= cls;
}
// Sets `composite` on every character that has any of `parts`.
constexpr void mark_composite(std::array<uint32_t, 256>& t, uint32_t parts, uint32_t composite) {
  for (auto& entry : t)
    if ((entry & parts) != 0) entry |= composite;
}
constexpr std::array<uint32_t, 256> make_char_table() {
  std::array<uint32_t, 256> t{};
  for (int c = 'a'; c <= 'z'; ++c) t[static_cast<size_t>(c)] |= kAlnum | kHostChar;
  for (int c = 'A'; c <= 'Z'; ++c) t[static_cast<size_t>(c)] |= kAlnum | kHostChar;
  for (int c = '0'; c <= '9'; ++c) t[static_cast<size_t>(c)] |= kAlnum | kHostChar | kHex | kDigit;
  for (int c = 'a'; c <= 'f'; ++c) t[static_cast<size_t>(c)] |= kHex;
  for (int c = 'A'; c <= 'F'; ++c) t[static_cast<size_t>(c)] |= kHex;
  mark_all(t, "-_.!~*'()", kMark);
  mark_all(t, "-.!%*_+`'~", kTokenExtra | kWordExtra);
  mark_all(t, "()<>:\\\"/[]?{}", kWordExtra);
  mark_all(t, "&=+$,;?/", kUserUnreserved);
  mark_all(t, "&=+$,", kPasswordExtra);
  mark_all(t, "[]/:&+$", kParamUnreserved);
  mark_all(t, "[]/?:+$", kHnvUnreserved);
  mark_all(t, "-.", kHostChar);
  mark_all(t, " \t", kWsp);
  mark_all(t, ":[]", kColonBracket);
  mark_all(t, " \t\r\n", kLws);
  mark_composite(t, kAlnum | kTokenExtra, kTokenBit);
  mark_composite(t, kAlnum | kWordExtra, kWordBit);
  mark_composite(t, kAlnum | kMark | kUserUnreserved, kUserBit);
  mark_composite(t, kAlnum | kMark | kPasswordExtra, kPasswordBit);
  mark_composite(t, kAlnum | kMark | kParamUnreserved, kParamBit);
  mark_composite(t, kAlnum | kMark | kHnvUnreserved, kHeaderBit);
  mark_composite(t, kAlnum | kTokenExtra | kColonBracket, kTokenOrColonBracketBit);
  return t;
}
inline constexpr std::array<uint32_t, 256> kCharTable = make_char_table();
constexpr uint32_t class_bits(char c) { return kCharTable[static_cast<unsigned char>(c)]; }
}  // namespace detail

constexpr bool has_class(char c, uint32_t cls) {
  return (detail::kCharTable[static_cast<unsigned char>(c)] & cls) != 0;
}
constexpr bool is_alnum(char c) { return has_class(c, kAlnum); }
constexpr bool is_digit(char c) { return has_class(c, kDigit); }
constexpr bool is_hex(char c) { return has_class(c, kHex); }
constexpr bool is_wsp(char c) { return has_class(c, kWsp); }
constexpr bool is_token_char(char c) { return has_class(c, kAlnum | kTokenExtra); }
constexpr bool is_word_char(char c) { return has_class(c, kAlnum | kWordExtra); }
constexpr bool is_unreserved(char c) { return has_class(c, kAlnum | kMark); }
constexpr bool is_user_char(char c) { return has_class(c, kAlnum | kMark | kUserUnreserved); }
constexpr bool is_password_char(char c) { return has_class(c, kAlnum | kMark | kPasswordExtra); }
constexpr bool is_param_char(char c) { return has_class(c, kAlnum | kMark | kParamUnreserved); }
constexpr bool is_header_char(char c) { return has_class(c, kAlnum | kMark | kHnvUnreserved); }
constexpr bool is_host_char(char c) { return has_class(c, kHostChar); }
// UTF8-NONASCII and the visible ASCII allowed in a reason phrase / header value.
constexpr bool is_utf8_nonascii(char c) { return static_cast<unsigned char>(c) >= 0x80; }

namespace detail {
constexpr std::array<char, 256> make_lower_table() {
  std::array<char, 256> t{};
  for (size_t c = 0; c < 256; ++c) t[c] = static_cast<char>((c >= 'A' && c <= 'Z') ? c + 32 : c);
  return t;
}
inline constexpr std::array<char, 256> kLowerTable = make_lower_table();
}  // namespace detail

constexpr char ascii_lower(char c) { return detail::kLowerTable[static_cast<unsigned char>(c)]; }

constexpr bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  return true;
}

constexpr bool is_lws(char c) { return has_class(c, kLws); }

constexpr int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Length of the run of characters in class `mask` starting at `from` (<= s.size()).
constexpr size_t class_run(std::string_view s, size_t from, uint32_t mask) {
  size_t i = from;
  while (i < s.size() && (detail::kCharTable[static_cast<unsigned char>(s[i])] & mask) != 0) ++i;
  return i - from;
}

// class_run for runs that are often long (Call-IDs, tags, branches): four characters per step
// while all four are in the class, which for a class of one bit (every class above) is one AND
// of their table entries. On short runs this costs more than it saves.
constexpr size_t long_class_run(std::string_view s, size_t from, uint32_t mask) {
  static_assert(std::has_single_bit(kTokenChars) && std::has_single_bit(kWordChars));
  size_t i = from;
  if (std::has_single_bit(mask)) {
    while (s.size() - i >= 4 && (detail::class_bits(s[i]) & detail::class_bits(s[i + 1]) &
                                 detail::class_bits(s[i + 2]) & detail::class_bits(s[i + 3]) & mask) != 0)
      i += 4;
  }
  return i - from + class_run(s, i, mask);
}

// True when every character of `s` is in class `mask`, with %HH escapes allowed where `escapes`
// is set. The inner loop is one table lookup per character.
constexpr bool all_chars_in(std::string_view s, uint32_t mask, bool escapes) {
  size_t i = 0;
  const size_t n = s.size();
  for (;;) {
    i += long_class_run(s, i, mask);
    if (i == n) return true;
    if (!escapes || s[i] != '%' || i + 2 >= n || !is_hex(s[i + 1]) || !is_hex(s[i + 2])) return false;
    i += 3;
  }
}

// True when every character of `s` is in `pred`, with %HH escapes allowed where `escapes` is set.
template <typename Pred>
constexpr bool all_chars(std::string_view s, Pred pred, bool escapes) {
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (escapes && c == '%') {
      if (i + 2 >= s.size()) return false;
      if (!is_hex(s[i + 1]) || !is_hex(s[i + 2])) return false;
      i += 2;
      continue;
    }
    if (!pred(c)) return false;
  }
  return true;
}

constexpr bool is_token(std::string_view s) { return !s.empty() && all_chars_in(s, kTokenChars, false); }

}  // namespace pinhole::sip
