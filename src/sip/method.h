// SIP request methods. Method names are case-sensitive (RFC 3261 §7.1); unknown ones are kOther
// and keep their text.
#pragma once

#include <cstdint>
#include <string_view>

namespace pinhole::sip {

enum class Method : uint8_t {
  kOther,
  kInvite,
  kAck,
  kBye,
  kCancel,
  kRegister,
  kOptions,
  kInfo,
  kUpdate,
  kPrack,
  kSubscribe,
  kNotify,
  kRefer,
  kMessage,
  kPublish,
};

Method method_from_name(std::string_view name);
std::string_view method_name(Method m);  // empty for kOther

}  // namespace pinhole::sip
