// Address and Endpoint: parsing, RFC 5952 formatting, sockaddr conversion.
#include "net/address.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstddef>
#include <cstring>
#include <optional>

namespace pinhole::net {
namespace {

constexpr std::array<uint8_t, 12> kV4MappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// dec-octet "." x4 with 1 to 3 digits each (RFC 3261 §25.1 IPv4address). Written out rather than
// inet_pton so that the leading zeros SIP's grammar allows read the way sip::classify_host reads
// them: a Via host the SIP parser called IPv4 must parse here to the same address.
bool parse_v4(std::string_view s, std::array<uint8_t, 4>& out) {
  size_t i = 0;
  for (size_t part = 0; part < 4; ++part) {
    if (part > 0) {
      if (i >= s.size() || s[i] != '.') return false;
      ++i;
    }
    size_t start = i;
    unsigned value = 0;
    while (i < s.size() && is_digit(s[i]) && i - start < 3) value = value * 10 + static_cast<unsigned>(s[i++] - '0');
    if (i == start || value > 255) return false;
    out[part] = static_cast<uint8_t>(value);
  }
  return i == s.size();  // a fourth digit in an octet, or anything after the last one: refused
}

bool parse_v6(std::string_view s, std::array<uint8_t, 16>& out) {
  // inet_pton wants a NUL-terminated string; the longest valid text is 45 characters. It refuses
  // zone ids and (glibc) leading zeros in an embedded IPv4 part, as sip::classify_host does.
  if (s.empty() || s.size() > kMaxAddressText) return false;
  std::array<char, kMaxAddressText + 1> buf{};
  std::memcpy(buf.data(), s.data(), s.size());
  in6_addr addr{};
  if (inet_pton(AF_INET6, buf.data(), &addr) != 1) return false;
  std::memcpy(out.data(), &addr, 16);
  return true;
}

void append_decimal(AddressText& t, unsigned v) {
  char digits[3];
  size_t n = 0;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && n < 3);
  while (n > 0) t.push_back(digits[--n]);
}

void append_dotted(AddressText& t, const uint8_t* b) {
  for (size_t i = 0; i < 4; ++i) {
    if (i > 0) t.push_back('.');
    append_decimal(t, b[i]);
  }
}

void append_hex_group(AddressText& t, unsigned v) {
  constexpr std::string_view kHex = "0123456789abcdef";
  bool started = false;
  for (int shift = 12; shift >= 0; shift -= 4) {
    unsigned nibble = (v >> static_cast<unsigned>(shift)) & 0xfu;
    if (nibble != 0 || started || shift == 0) {
      t.push_back(kHex[nibble]);
      started = true;
    }
  }
}

// splitmix64 finaliser: spreads every input bit over the output, so that std::hash-keyed tables
// do not cluster on addresses that differ in their last bytes only.
uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

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

Result<Endpoint> parse_endpoint(std::string_view text, std::optional<uint16_t> default_port) {
  std::string_view host, port_text;
  bool has_port = false;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return bad_request("unterminated IPv6 reference");
    host = text.substr(0, close + 1);
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad_request("garbage after IPv6 reference");
      port_text = rest.substr(1);
      has_port = true;
    }
  } else {
    size_t first = text.find(':');
    if (first != std::string_view::npos && text.find(':', first + 1) != std::string_view::npos) {
      // Two or more colons without brackets: a bare IPv6 address, which cannot carry a port
      // ("2001:db8::1:5060" is itself a valid address).
      host = text;
    } else {
      host = text.substr(0, first);
      if (first != std::string_view::npos) {
        port_text = text.substr(first + 1);
        has_port = true;
      }
    }
  }
  Endpoint e;
  auto address = Address::parse(host);
  if (!address) return address.error();
  e.address = *address;
  if (has_port) {
    auto port = parse_port(port_text);
    if (!port) return port.error();
    e.port = *port;
  } else if (default_port) {
    e.port = *default_port;
  } else {
    return bad_request("endpoint without port");
  }
  return e;
}

}  // namespace

Address Address::v4(uint32_t host_order) {
  return v4(std::array<uint8_t, 4>{static_cast<uint8_t>(host_order >> 24), static_cast<uint8_t>(host_order >> 16),
                                   static_cast<uint8_t>(host_order >> 8), static_cast<uint8_t>(host_order)});
}

Address Address::v4(std::array<uint8_t, 4> network_order) {
  Address a;
  a.family_ = Family::kIPv4;
  std::memcpy(a.bytes_.data(), network_order.data(), 4);
  return a;
}

Address Address::v6(const std::array<uint8_t, 16>& network_order) {
  Address a;
  a.family_ = Family::kIPv6;
  a.bytes_ = network_order;
  return a;
}

Result<Address> Address::parse(std::string_view text) {
  if (text.empty()) return bad_request("empty address");
  if (text.front() == '[') {
    if (text.size() < 3 || text.back() != ']') return bad_request("malformed IPv6 reference");
    std::array<uint8_t, 16> b{};
    if (!parse_v6(text.substr(1, text.size() - 2), b)) return bad_request("malformed IPv6 address");
    return v6(b);
  }
  if (text.find(':') != std::string_view::npos) {
    std::array<uint8_t, 16> b{};
    if (!parse_v6(text, b)) return bad_request("malformed IPv6 address");
    return v6(b);
  }
  std::array<uint8_t, 4> b{};
  if (!parse_v4(text, b)) return bad_request("malformed IPv4 address");
  return v4(b);
}

uint32_t Address::v4_host_order() const {
  if (!is_v4()) return 0;
  return static_cast<uint32_t>(bytes_[0]) << 24 | static_cast<uint32_t>(bytes_[1]) << 16 |
         static_cast<uint32_t>(bytes_[2]) << 8 | static_cast<uint32_t>(bytes_[3]);
}

bool Address::is_v4_mapped() const {
  return is_v6() && std::memcmp(bytes_.data(), kV4MappedPrefix.data(), kV4MappedPrefix.size()) == 0;
}

Address Address::unmapped() const {
  if (!is_v4_mapped()) return *this;
  return v4(std::array<uint8_t, 4>{bytes_[12], bytes_[13], bytes_[14], bytes_[15]});
}

Address Address::v4_mapped() const {
  if (!is_v4()) return *this;
  std::array<uint8_t, 16> b{};
  std::memcpy(b.data(), kV4MappedPrefix.data(), kV4MappedPrefix.size());
  std::memcpy(b.data() + 12, bytes_.data(), 4);
  return v6(b);
}

AddressText Address::format() const {
  AddressText t;
  if (is_v4()) {
    append_dotted(t, bytes_.data());
    return t;
  }
  // RFC 5952 §5: IPv4-mapped addresses keep the dotted quad. Other embedded forms (the
  // deprecated IPv4-compatible ::a.b.c.d among them) are printed as hex: §5 only recommends the
  // dotted form for prefixes known to embed IPv4, and inet_ntop's "::0.2.0.3" for ::2:3 is what
  // this formatter exists to avoid.
  if (is_v4_mapped()) {
    t.append("::ffff:");
    append_dotted(t, bytes_.data() + 12);
    return t;
  }
  std::array<unsigned, 8> groups{};
  for (size_t i = 0; i < 8; ++i) groups[i] = static_cast<unsigned>(bytes_[2 * i]) << 8 | bytes_[2 * i + 1];
  // §4.2.2: "::" never stands for a single 0 group; §4.2.3: the longest run, the first on a tie.
  size_t best_start = 8, best_len = 0;
  for (size_t i = 0; i < 8;) {
    if (groups[i] != 0) {
      ++i;
      continue;
    }
    size_t start = i;
    while (i < 8 && groups[i] == 0) ++i;
    if (i - start > best_len) {
      best_start = start;
      best_len = i - start;
    }
  }
  if (best_len < 2) best_start = 8;
  for (size_t i = 0; i < 8;) {
    if (i == best_start) {
      t.append("::");
      i += best_len;
      continue;
    }
    if (i > 0 && i != best_start + best_len) t.push_back(':');
    append_hex_group(t, groups[i]);  // §4.1 no leading zeros, §4.3 lower case
    ++i;
  }
  return t;
}

size_t Address::hash() const {
  uint64_t hi = 0, lo = 0;
  std::memcpy(&hi, bytes_.data(), 8);
  std::memcpy(&lo, bytes_.data() + 8, 8);
  return static_cast<size_t>(mix(hi ^ mix(lo ^ static_cast<uint64_t>(family_))));
}

Result<Endpoint> Endpoint::parse(std::string_view text) { return parse_endpoint(text, std::nullopt); }

Result<Endpoint> Endpoint::parse(std::string_view text, uint16_t default_port) {
  return parse_endpoint(text, default_port);
}

Result<Endpoint> Endpoint::from_sockaddr(const sockaddr* addr, socklen_t length) {
  if (addr == nullptr) return bad_request("no socket address");
  // Copied into aligned local storage: the caller's buffer need not be aligned for sockaddr_in6,
  // and the family field is only read once the length says it is there.
  sockaddr_storage storage{};
  size_t n = static_cast<size_t>(length) < sizeof(storage) ? static_cast<size_t>(length) : sizeof(storage);
  if (n < offsetof(sockaddr, sa_family) + sizeof(sa_family_t)) return bad_request("short socket address");
  std::memcpy(&storage, addr, n);
  Endpoint e;
  if (storage.ss_family == AF_INET) {
    if (n < sizeof(sockaddr_in)) return bad_request("short socket address");
    sockaddr_in in{};
    std::memcpy(&in, &storage, sizeof(in));
    std::array<uint8_t, 4> b{};
    std::memcpy(b.data(), &in.sin_addr, 4);
    e.address = Address::v4(b);
    e.port = ntohs(in.sin_port);
    return e;
  }
  if (storage.ss_family == AF_INET6) {
    if (n < sizeof(sockaddr_in6)) return bad_request("short socket address");
    sockaddr_in6 in6{};
    std::memcpy(&in6, &storage, sizeof(in6));
    std::array<uint8_t, 16> b{};
    std::memcpy(b.data(), &in6.sin6_addr, 16);
    e.address = Address::v6(b);
    e.port = ntohs(in6.sin6_port);
    return e;
  }
  return bad_request("socket address family is not IPv4 or IPv6");
}

socklen_t Endpoint::to_sockaddr(sockaddr_storage& out) const {
  out = sockaddr_storage{};
  if (address.is_v4()) {
    sockaddr_in in{};
    in.sin_family = AF_INET;
    in.sin_port = htons(port);
    std::memcpy(&in.sin_addr, address.bytes().data(), 4);
    std::memcpy(&out, &in, sizeof(in));
    return sizeof(in);
  }
  sockaddr_in6 in6{};
  in6.sin6_family = AF_INET6;
  in6.sin6_port = htons(port);
  std::memcpy(&in6.sin6_addr, address.bytes().data(), 16);
  std::memcpy(&out, &in6, sizeof(in6));
  return sizeof(in6);
}

EndpointText Endpoint::format() const {
  EndpointText t;
  AddressText a = address.format();
  if (address.is_v6()) t.push_back('[');
  t.append(a.view());
  if (address.is_v6()) t.push_back(']');
  t.push_back(':');
  char digits[5];
  size_t n = 0;
  unsigned v = port;
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && n < 5);
  while (n > 0) t.push_back(digits[--n]);
  return t;
}

size_t Endpoint::hash() const { return static_cast<size_t>(mix(address.hash() ^ port)); }

}  // namespace pinhole::net
