// An error response to bytes the parser refused (RFC 3261 §8.2: a malformed request still gets
// 400 / 505 / 413 when a response can be addressed). The message has no parse, so the fields a
// response must copy (Via, From, To, Call-ID, CSeq) are found as raw header lines; when a Via
// or CSeq line is missing nothing can be answered and the caller only counts the drop.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace pinhole::proxy {

// nullopt for responses (never answered), for bytes without the needed lines, and for ACK.
std::optional<std::string> raw_error_response(std::string_view bytes, uint16_t status, std::string_view server_name);

}  // namespace pinhole::proxy
