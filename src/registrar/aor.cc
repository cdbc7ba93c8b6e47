// Canonical AORs and domain matching (see aor.h).
#include "registrar/aor.h"

#include "sip/charset.h"
#include "sip/host.h"

namespace pinhole::registrar {
namespace {

// The user part as RFC 3261 §19.1.4 compares it: an escape of a character outside RFC 2396's
// `reserved` set equals the character; an escaped reserved character is data and stays escaped
// (upper-cased, so "%3b" and "%3B" give one key).
void append_canonical_user(std::string& out, std::string_view text) {
  constexpr std::string_view kReserved = ";/?:@&=+$,";
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size() && sip::is_hex(text[i + 1]) && sip::is_hex(text[i + 2])) {
      auto c = static_cast<char>(sip::hex_value(text[i + 1]) * 16 + sip::hex_value(text[i + 2]));
      if (kReserved.find(c) == std::string_view::npos) {
        out.push_back(c);
      } else {
        out.push_back('%');
        for (char h : {text[i + 1], text[i + 2]}) out.push_back(h >= 'a' && h <= 'f' ? static_cast<char>(h - 32) : h);
      }
      i += 2;
    } else {
      out.push_back(text[i]);
    }
  }
}

std::string_view unbracket(std::string_view host) {
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') return host.substr(1, host.size() - 2);
  return host;
}

}  // namespace

Result<std::string> canonical_aor(const sip::Uri& to_uri) {
  if (!to_uri.is_sip()) return Error{404, "address of record is not a SIP URI"};
  if (!to_uri.has_user || to_uri.user.empty()) return Error{404, "address of record without a user part"};
  std::string aor = "sip:";
  aor.reserve(4 + to_uri.user.size() + 1 + to_uri.host.size() + 6);
  append_canonical_user(aor, to_uri.user);
  aor.push_back('@');
  for (char c : to_uri.host) aor.push_back(sip::ascii_lower(c));
  if (to_uri.has_port()) {
    aor.push_back(':');
    aor += std::to_string(to_uri.port);  // "05060" and "5060" are one port
  }
  return aor;
}

bool is_our_domain(const sip::Uri& uri, const std::vector<std::string>& domains) {
  if (!uri.is_sip()) return false;
  std::string_view host = unbracket(uri.host);
  for (const std::string& domain : domains) {
    // "host", "host:port", "[v6]" or "[v6]:port"; a bare IPv6 address has colons but no port.
    auto parsed = sip::parse_host_port(domain);
    std::string_view want = domain;
    bool has_port = false;
    uint16_t port = 0;
    if (parsed.ok()) {
      want = parsed->host;
      has_port = !parsed->port_text.empty();
      port = parsed->port;
    }
    if (!sip::iequals(unbracket(want), host)) continue;
    if (has_port && (!uri.has_port() || uri.port != port)) continue;
    return true;
  }
  return false;
}

}  // namespace pinhole::registrar
