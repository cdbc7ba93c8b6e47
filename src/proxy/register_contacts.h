// How a REGISTER's Contacts are matched with the ones its 2xx lists, and what each was granted.
// Shared by border mode (learning bindings) and the keepalive engine (learning registration
// reasons): both read an upstream registrar's answer for the Contacts their client asked for.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "sip/message.h"

namespace pinhole::proxy {

// RFC 5626 §6: an instance + reg-id names the binding whatever its URI; otherwise the URI does.
std::string contact_key(const sip::Contact& c);
// Whether `listed` (a Contact of a 2xx) is the binding `asked` (a Contact of the REGISTER) names.
bool same_contact(const sip::Contact& asked, const sip::Contact& listed);
// The expiry a Contact asks (request) or is granted (2xx): its own parameter, else the Expires
// header; in a 2xx without either, RFC 3261 §10.2.1.1's default hour.
std::optional<uint32_t> contact_expires(const sip::Contact& c, const sip::Message& msg, bool response);

}  // namespace pinhole::proxy
