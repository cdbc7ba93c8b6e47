#include "sip/method.h"

#include <array>

namespace pinhole::sip {
namespace {
constexpr std::array<std::string_view, 15> kNames = {
    "",       "INVITE", "ACK",       "BYE",    "CANCEL", "REGISTER", "OPTIONS", "INFO",
    "UPDATE", "PRACK",  "SUBSCRIBE", "NOTIFY", "REFER",  "MESSAGE",  "PUBLISH",
};
}  // namespace

Method method_from_name(std::string_view name) {
  // Switch on length first: this runs for every request and every CSeq.
  switch (name.size()) {
    case 3:
      if (name == "ACK") return Method::kAck;
      if (name == "BYE") return Method::kBye;
      break;
    case 4:
      if (name == "INFO") return Method::kInfo;
      break;
    case 5:
      if (name == "PRACK") return Method::kPrack;
      if (name == "REFER") return Method::kRefer;
      break;
    case 6:
      if (name == "INVITE") return Method::kInvite;
      if (name == "CANCEL") return Method::kCancel;
      if (name == "UPDATE") return Method::kUpdate;
      if (name == "NOTIFY") return Method::kNotify;
      break;
    case 7:
      if (name == "OPTIONS") return Method::kOptions;
      if (name == "MESSAGE") return Method::kMessage;
      if (name == "PUBLISH") return Method::kPublish;
      break;
    case 8:
      if (name == "REGISTER") return Method::kRegister;
      break;
    case 9:
      if (name == "SUBSCRIBE") return Method::kSubscribe;
      break;
    default:
      break;
  }
  return Method::kOther;
}

std::string_view method_name(Method m) { return kNames[static_cast<size_t>(m)]; }

}  // namespace pinhole::sip
