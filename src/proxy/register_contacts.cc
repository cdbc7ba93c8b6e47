#include "proxy/register_contacts.h"

#include <charconv>

namespace pinhole::proxy {
namespace {

std::optional<uint32_t> parse_seconds(std::string_view text) {
  uint32_t v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc{} || p != text.data() + text.size()) return std::nullopt;
  return v;
}

}  // namespace

std::string contact_key(const sip::Contact& c) {
  if (!c.instance.empty()) return "instance:" + std::string(c.instance) + ";reg-id=" + std::string(c.reg_id);
  return std::string(c.uri.raw);
}

bool same_contact(const sip::Contact& asked, const sip::Contact& listed) {
  if (!asked.instance.empty()) return asked.instance == listed.instance && asked.reg_id == listed.reg_id;
  return sip::uri_equal(asked.uri, listed.uri);
}

std::optional<uint32_t> contact_expires(const sip::Contact& c, const sip::Message& msg, bool response) {
  if (!c.expires.empty()) return parse_seconds(c.expires);
  if (auto h = msg.expires(); h.ok() && h->has_value()) return **h;
  return response ? std::optional<uint32_t>(3600) : std::nullopt;
}

}  // namespace pinhole::proxy
