#include "txn/client_request.h"

namespace pinhole::txn {

const sip::Message* ClientRequest::parsed() const {
  if (parsed_ != nullptr || !given_as_bytes_ || parse_failed_) return parsed_.get();
  auto parsed = sip::Message::parse(bytes_, sip::Framing::kDatagram);
  if (!parsed) {
    parse_failed_ = true;
    return nullptr;
  }
  parsed_ = std::move(parsed).value();
  return parsed_.get();
}

}  // namespace pinhole::txn
