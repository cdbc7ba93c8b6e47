// libosip2 side of the parser benchmark; see osip_parse.h.
#include "osip_parse.h"

namespace pinhole::bench {

bool osip_init() {
  static const bool ok = parser_init() == OSIP_SUCCESS;
  return ok;
}

OsipMessage::OsipMessage() {
  if (osip_message_init(&msg_) != OSIP_SUCCESS) msg_ = nullptr;
}

OsipMessage::~OsipMessage() {
  if (msg_ != nullptr) osip_message_free(msg_);
}

bool OsipMessage::parse(std::string_view bytes) {
  return msg_ != nullptr && osip_message_parse(msg_, bytes.data(), bytes.size()) == OSIP_SUCCESS;
}

}  // namespace pinhole::bench
