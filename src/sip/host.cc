#include "sip/host.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

#include "sip/charset.h"
#include "sip/simd.h"

namespace pinhole::sip {
namespace {

// dec-octet "." dec-octet "." dec-octet "." dec-octet: four runs of 1 to 3 digits, each at most
// 255 (leading zeros accepted), one pass. Every Via and most Contacts hold one.
bool is_ipv4(std::string_view s) {
  if (s.size() < 7 || s.size() > 15) return false;
  auto digit = [&](size_t i) { return i < s.size() && static_cast<unsigned char>(s[i] - '0') < 10; };
  size_t i = 0;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (i >= s.size() || s[i] != '.') return false;
      ++i;
    }
    if (!digit(i)) return false;
    unsigned value = static_cast<unsigned>(s[i++] - '0');
    for (int more = 0; more < 2 && digit(i); ++more) value = value * 10 + static_cast<unsigned>(s[i++] - '0');
    if (value > 255) return false;
  }
  return i == s.size();  // a fourth digit or anything else after the last octet: not IPv4
}

bool is_ipv6(std::string_view s) {
  if (s.empty() || s.size() >= INET6_ADDRSTRLEN) return false;
  std::array<char, INET6_ADDRSTRLEN> buf{};
  std::memcpy(buf.data(), s.data(), s.size());
  in6_addr addr{};
  return inet_pton(AF_INET6, buf.data(), &addr) == 1;
}

// hostname = *( domainlabel "." ) toplabel [ "." ]; labels alnum with inner '-'; toplabel
// starts with a letter (that is what tells "1.2.3.999" from a name). One pass over the
// characters, every host of every message goes through here.
bool is_hostname(std::string_view s) {
  if (s.empty()) return false;
  if (s.back() == '.') s.remove_suffix(1);
  if (s.empty()) return false;
  size_t label_start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '.') {
      if (i == label_start || s[i - 1] == '-') return false;  // empty label, or one ending in '-'
      label_start = i + 1;
    } else if (c == '-') {
      if (i == label_start) return false;  // label starting with '-'
    } else if (!is_alnum(c)) {
      return false;
    }
  }
  if (label_start == s.size() || s.back() == '-') return false;  // the toplabel, likewise
  char first = s[label_start];
  return (first >= 'a' && first <= 'z') || (first >= 'A' && first <= 'Z');
}

}  // namespace

Result<HostKind> classify_host(std::string_view host) {
  if (host.empty()) return bad_request("empty host");
  if (host.front() == '[') {
    if (host.size() < 3 || host.back() != ']' || !is_ipv6(host.substr(1, host.size() - 2)))
      return bad_request("malformed IPv6 reference");
    return HostKind::kIPv6;
  }
  if (is_ipv4(host)) return HostKind::kIPv4;
  if (is_hostname(host)) return HostKind::kName;
  return bad_request("malformed host");
}

namespace {

// is_ipv4 for a run of digits and dots whose dots are at the bits of `dots`: exactly three,
// cutting four octets of 1 to 3 digits, each at most 255.
bool ipv4_octets_ok(const char* p, unsigned length, unsigned dots) {
  unsigned start = 0;
  for (int part = 0; part < 4; ++part) {
    unsigned end = length;
    if (part < 3) {
      if (dots == 0) return false;
      end = static_cast<unsigned>(std::countr_zero(dots));
      dots &= dots - 1;
    } else if (dots != 0) {
      return false;
    }
    unsigned n = end - start;
    if (n == 0 || n > 3) return false;
    if (n == 3 && (p[start] - '0') * 100 + (p[start + 1] - '0') * 10 + (p[start + 2] - '0') > 255) return false;
    start = end + 1;
  }
  return true;
}

// scan_host_run from the masks of one 16-byte block: letters, digits, dots and dashes of up to 16
// bytes from `from` (bits shifted so that bit 0 is text[from]). Returns false, having decided
// nothing, when the text is shorter than a block or the run may go on past the block.
bool scan_host_block(std::string_view text, size_t from, HostRun& run) {
  if (text.size() < simd::kBlock) return false;
  size_t base = std::min(from, text.size() - simd::kBlock);  // the last block, near the end
  auto shift = static_cast<unsigned>(from - base);
  __m128i block = simd::load(text.data() + base);
  unsigned letter = simd::letters(block) >> shift;
  unsigned digit = simd::digits(block) >> shift;
  unsigned dot = simd::eq(block, '.') >> shift;
  unsigned dash = simd::eq(block, '-') >> shift;
  // Bits 16 - shift and up are 0, so the run stops inside the block or at its end.
  auto length = static_cast<unsigned>(std::countr_zero(~(letter | digit | dot | dash)));
  if (length == simd::kBlock && from + simd::kBlock < text.size()) return false;
  run.length = length;
  if (length == 0) return true;
  unsigned in_run = (1u << length) - 1;
  letter &= in_run;
  dot &= in_run;
  dash &= in_run;
  if (letter == 0 && dash == 0) {
    // Digits and dots: IPv4 or nothing, a hostname's top label starts with a letter.
    if (ipv4_octets_ok(text.data() + from, length, dot)) run.kind = HostKind::kIPv4;
    return true;
  }
  // A hostname (with a letter or '-' it is no IPv4 address), is_hostname's rules on the masks.
  // One trailing dot is dropped; `last` is then the last character of the top label.
  unsigned labels = length;
  if ((dot >> (length - 1)) & 1) {
    --labels;
    dot &= ~(1u << labels);
  }
  if (labels == 0) return true;
  unsigned last = 1u << (labels - 1);
  bool empty_label = (dot & 1) != 0 || (dot & (dot >> 1)) != 0 || (dot & last) != 0;
  bool dash_starts_label = (dash & 1) != 0 || (dash & (dot << 1)) != 0;
  bool dash_ends_label = (dash & (dot >> 1)) != 0 || (dash & last) != 0;
  if (empty_label || dash_starts_label || dash_ends_label) return true;
  unsigned top = dot == 0 ? 0 : 32 - static_cast<unsigned>(std::countl_zero(dot));  // after the last dot
  if ((letter >> top) & 1) run.kind = HostKind::kName;
  return true;
}

// scan_host_run one character at a time, for short texts and long hosts.
HostRun scan_host_chars(std::string_view text) {
  // Letters and digits, nearly every character, need no check beyond the class lookup; the
  // label rules of is_hostname are checked at each '.' and '-'.
  bool labels_ok = true;  // every label so far nonempty, not starting or ending with '-'
  size_t label_start = 0, previous_label_start = 0;
  size_t i = 0;
  for (; i < text.size(); ++i) {
    char c = text[i];
    if (is_alnum(c)) continue;
    if (c == '.') {
      if (i == label_start || text[i - 1] == '-') labels_ok = false;
      previous_label_start = label_start;
      label_start = i + 1;
    } else if (c == '-') {
      if (i == label_start) labels_ok = false;
    } else {
      break;
    }
  }
  HostRun run;
  run.length = i;
  if (i == 0) return run;
  // classify_host tries IPv4 first; a run that is IPv4 is no hostname (its top label starts with
  // a digit), so the order does not matter.
  if (is_ipv4(text.substr(0, i))) {
    run.kind = HostKind::kIPv4;
    return run;
  }
  // is_hostname drops one trailing '.', whose label was checked when the '.' was seen; the top
  // label is then the one before it.
  bool trailing_dot = text[i - 1] == '.';
  size_t top = trailing_dot ? previous_label_start : label_start;
  size_t top_end = trailing_dot ? i - 1 : i;
  if (!labels_ok || top >= top_end || text[top_end - 1] == '-') return run;
  char first = text[top];
  if ((first >= 'a' && first <= 'z') || (first >= 'A' && first <= 'Z')) run.kind = HostKind::kName;
  return run;
}

}  // namespace

HostRun scan_host_run(std::string_view text, size_t from) {
  HostRun run;
  if (scan_host_block(text, from, run)) return run;
  return scan_host_chars(text.substr(from));
}

bool is_ip_address(std::string_view text) { return is_ipv4(text) || is_ipv6(text); }

Result<HostPort> parse_host_port(std::string_view text) {
  HostPort hp;
  size_t colon;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return bad_request("unterminated IPv6 reference");
    hp.host = text.substr(0, close + 1);
    colon = close + 1;
    if (colon < text.size() && text[colon] != ':') return bad_request("garbage after IPv6 reference");
  } else {
    colon = text.find(':');
    hp.host = text.substr(0, colon);
  }
  auto kind = classify_host(hp.host);
  if (!kind) return kind.error();
  hp.kind = *kind;
  if (colon < text.size()) {
    hp.port_text = text.substr(colon + 1);
    auto port = parse_port(hp.port_text);
    if (!port) return port.error();
    hp.port = *port;
  }
  return hp;
}

}  // namespace pinhole::sip
