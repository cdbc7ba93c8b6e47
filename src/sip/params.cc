#include "sip/params.h"

namespace pinhole::sip {
namespace {}  // namespace

Result<Param> parse_header_param(Scanner& s) {
  Param p;
  PINHOLE_TRY(detail::read_header_param(s, p));
  return p;
}

std::optional<Param> find_header_param(std::string_view raw_params, std::string_view name) {
  Scanner s(raw_params);
  std::optional<Param> found;
  // The raw text was validated when the header was parsed, so errors cannot occur here.
  (void)parse_header_params(s, [&](const Param& p) -> Status {
    if (!found && iequals(p.name, name)) found = p;
    return Status::Ok();
  });
  return found;
}

Status validate_uri_params(std::string_view raw) {
  if (raw.empty()) return Status::Ok();
  if (raw[0] != ';') return bad_request("URI parameters must start with ';'");
  size_t i = 1;
  for (;;) {
    size_t end = raw.find(';', i);
    if (end == std::string_view::npos) end = raw.size();
    std::string_view item = raw.substr(i, end - i);
    size_t eq = item.find('=');
    std::string_view name = item.substr(0, eq);
    if (name.empty() || !all_chars_in(name, kParamChars, true)) return bad_request("malformed URI parameter name");
    if (eq != std::string_view::npos) {
      std::string_view value = item.substr(eq + 1);
      if (value.empty() || !all_chars_in(value, kParamChars, true)) return bad_request("malformed URI parameter value");
    }
    if (end == raw.size()) break;
    i = end + 1;
  }
  return Status::Ok();
}

std::optional<Param> find_uri_param(std::string_view raw, std::string_view name) {
  std::optional<Param> found;
  for_each_uri_param(raw, [&](const Param& p) {
    if (!found && iequals(p.name, name)) found = p;
  });
  return found;
}

}  // namespace pinhole::sip
