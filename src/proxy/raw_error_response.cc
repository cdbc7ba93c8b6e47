#include "proxy/raw_error_response.h"

#include <array>

#include "sip/builder.h"
#include "sip/charset.h"

namespace pinhole::proxy {
namespace {

// The canonical name of a field the response must copy, by long or compact name; empty otherwise.
std::string_view copied_field(std::string_view name) {
  struct Pair {
    std::string_view long_name, compact, canonical;
  };
  static constexpr std::array<Pair, 5> kFields = {{{"via", "v", "Via"},
                                                   {"from", "f", "From"},
                                                   {"to", "t", "To"},
                                                   {"call-id", "i", "Call-ID"},
                                                   {"cseq", "", "CSeq"}}};
  for (const auto& f : kFields) {
    if (sip::iequals(name, f.long_name) || (!f.compact.empty() && sip::iequals(name, f.compact))) return f.canonical;
  }
  return {};
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::optional<std::string> raw_error_response(std::string_view bytes, uint16_t status, std::string_view server_name) {
  if (bytes.starts_with("SIP/") || bytes.starts_with("ACK ")) return std::nullopt;
  std::string headers;
  bool has_via = false, has_cseq = false;
  size_t pos = bytes.find('\n');
  while (pos != std::string_view::npos && pos + 1 < bytes.size()) {
    size_t start = pos + 1;
    size_t end = bytes.find('\n', start);
    std::string_view line = bytes.substr(start, end == std::string_view::npos ? bytes.size() - start : end - start);
    if (trim(line).empty()) break;  // end of the header section
    pos = end;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || line.front() == ' ' || line.front() == '\t') continue;
    std::string_view canonical = copied_field(trim(line.substr(0, colon)));
    if (canonical.empty()) continue;
    std::string_view value = trim(line.substr(colon + 1));
    // Only printable text goes back out: a response must not carry what made the request bad.
    bool clean = true;
    for (char ch : value) {
      auto c = static_cast<unsigned char>(ch);
      clean = clean && c >= 0x20 && c != 0x7f;
    }
    if (!clean || value.empty()) continue;
    has_via = has_via || canonical == "Via";
    has_cseq = has_cseq || canonical == "CSeq";
    headers.append(canonical).append(": ").append(value).append("\r\n");
  }
  if (!has_via || !has_cseq) return std::nullopt;
  std::string out = "SIP/2.0 " + std::to_string(status) + " " + std::string(sip::default_reason(status)) + "\r\n";
  out.append(headers);
  out.append("Server: ").append(server_name).append("\r\nContent-Length: 0\r\n\r\n");
  return out;
}

}  // namespace pinhole::proxy
