#include "sip/host.h"

#include <arpa/inet.h>

#include <array>
#include <cstring>

#include "sip/charset.h"

namespace pinhole::sip {
namespace {

// dec-octet "." dec-octet "." dec-octet "." dec-octet, one pass.
bool is_ipv4(std::string_view s) {
  if (s.size() < 7 || s.size() > 15) return false;
  int parts = 0;
  unsigned value = 0;
  size_t digits = 0;
  for (char c : s) {
    if (c >= '0' && c <= '9') {
      value = value * 10 + static_cast<unsigned>(c - '0');
      if (++digits > 3 || value > 255) return false;
    } else if (c == '.' && digits > 0 && parts < 3) {
      ++parts;
      value = 0;
      digits = 0;
    } else {
      return false;
    }
  }
  return parts == 3 && digits > 0;
}

bool is_ipv6(std::string_view s) {
  if (s.empty() || s.size() >= INET6_ADDRSTRLEN) return false;
  std::array<char, INET6_ADDRSTRLEN> buf{};
  std::memcpy(buf.data(), s.data(), s.size());
  in6_addr addr{};
  return inet_pton(AF_INET6, buf.data(), &addr) == 1;
}

// hostname = *( domainlabel "." ) toplabel [ "." ]; labels alnum with inner '-'; toplabel
// starts with a letter (that is what tells "1.2.3.999" from a name).
bool is_hostname(std::string_view s) {
  if (s.empty()) return false;
  if (s.back() == '.') s.remove_suffix(1);
  if (s.empty()) return false;
  std::string_view last_label;
  size_t i = 0;
  while (i <= s.size()) {
    size_t dot = s.find('.', i);
    if (dot == std::string_view::npos) dot = s.size();
    std::string_view label = s.substr(i, dot - i);
    if (label.empty() || label.front() == '-' || label.back() == '-') return false;
    for (char c : label)
      if (!is_alnum(c) && c != '-') return false;
    last_label = label;
    if (dot == s.size()) break;
    i = dot + 1;
  }
  char first = last_label.front();
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

bool is_ip_address(std::string_view text) { return is_ipv4(text) || is_ipv6(text); }

Result<uint16_t> parse_port(std::string_view digits) {
  if (digits.empty() || digits.size() > 5) return bad_request("malformed port");
  uint32_t v = 0;
  for (char c : digits) {
    if (!is_digit(c)) return bad_request("malformed port");
    v = v * 10 + static_cast<uint32_t>(c - '0');
  }
  if (v > 65535) return bad_request("port out of range");
  return static_cast<uint16_t>(v);
}

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
