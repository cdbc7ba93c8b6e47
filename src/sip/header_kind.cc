#include "sip/header_kind.h"

#include <array>
#include <cstdint>
#include <cstring>

#include "sip/charset.h"

namespace pinhole::sip {
namespace {

struct NameEntry {
  std::string_view name;
  HeaderKind kind;
};

constexpr std::array<NameEntry, 45> kFullNames{{
    {"Via", HeaderKind::kVia},
    {"From", HeaderKind::kFrom},
    {"To", HeaderKind::kTo},
    {"Call-ID", HeaderKind::kCallId},
    {"CSeq", HeaderKind::kCSeq},
    {"Max-Forwards", HeaderKind::kMaxForwards},
    {"Contact", HeaderKind::kContact},
    {"Route", HeaderKind::kRoute},
    {"Record-Route", HeaderKind::kRecordRoute},
    {"Path", HeaderKind::kPath},
    {"Content-Length", HeaderKind::kContentLength},
    {"Content-Type", HeaderKind::kContentType},
    {"Content-Encoding", HeaderKind::kContentEncoding},
    {"Content-Disposition", HeaderKind::kContentDisposition},
    {"Expires", HeaderKind::kExpires},
    {"Min-Expires", HeaderKind::kMinExpires},
    {"Supported", HeaderKind::kSupported},
    {"Require", HeaderKind::kRequire},
    {"Proxy-Require", HeaderKind::kProxyRequire},
    {"Unsupported", HeaderKind::kUnsupported},
    {"Flow-Timer", HeaderKind::kFlowTimer},
    {"Authorization", HeaderKind::kAuthorization},
    {"Proxy-Authorization", HeaderKind::kProxyAuthorization},
    {"WWW-Authenticate", HeaderKind::kWwwAuthenticate},
    {"Proxy-Authenticate", HeaderKind::kProxyAuthenticate},
    {"Date", HeaderKind::kDate},
    {"Subject", HeaderKind::kSubject},
    {"Event", HeaderKind::kEvent},
    {"Allow-Events", HeaderKind::kAllowEvents},
    {"Refer-To", HeaderKind::kReferTo},
    {"Referred-By", HeaderKind::kReferredBy},
    {"Session-Expires", HeaderKind::kSessionExpires},
    {"Identity", HeaderKind::kIdentity},
    {"User-Agent", HeaderKind::kUserAgent},
    {"Server", HeaderKind::kServer},
    {"Allow", HeaderKind::kAllow},
    {"Accept", HeaderKind::kAccept},
    {"Retry-After", HeaderKind::kRetryAfter},
    {"Timestamp", HeaderKind::kTimestamp},
    {"Warning", HeaderKind::kWarning},
    {"Subscription-State", HeaderKind::kSubscriptionState},
    {"Accept-Contact", HeaderKind::kAcceptContact},
    {"Reject-Contact", HeaderKind::kRejectContact},
    {"Request-Disposition", HeaderKind::kRequestDisposition},
    {"Identity-Info", HeaderKind::kIdentityInfo},
}};

// RFC 3261 §7.3.3 and the registry of compact forms (RFC 3265, 3515, 3892, 4028, 4474, 3841).
HeaderKind compact_kind(char c) {
  switch (ascii_lower(c)) {
    case 'v': return HeaderKind::kVia;
    case 'f': return HeaderKind::kFrom;
    case 't': return HeaderKind::kTo;
    case 'i': return HeaderKind::kCallId;
    case 'm': return HeaderKind::kContact;
    case 'l': return HeaderKind::kContentLength;
    case 'c': return HeaderKind::kContentType;
    case 'e': return HeaderKind::kContentEncoding;
    case 's': return HeaderKind::kSubject;
    case 'k': return HeaderKind::kSupported;
    case 'o': return HeaderKind::kEvent;
    case 'u': return HeaderKind::kAllowEvents;
    case 'r': return HeaderKind::kReferTo;
    case 'b': return HeaderKind::kReferredBy;
    case 'x': return HeaderKind::kSessionExpires;
    case 'y': return HeaderKind::kIdentity;
    case 'a': return HeaderKind::kAcceptContact;
    case 'j': return HeaderKind::kRejectContact;
    case 'd': return HeaderKind::kRequestDisposition;
    case 'n': return HeaderKind::kIdentityInfo;
    default: return HeaderKind::kOther;
  }
}

// Buckets by (length, lower-case first letter) so a lookup compares against one or two names.
struct Index {
  // 32 lengths x 26 letters -> up to 2 candidates each.
  std::array<std::array<std::array<int8_t, 2>, 26>, 32> slots{};
  constexpr Index() {
    for (auto& by_len : slots)
      for (auto& by_letter : by_len) by_letter = {-1, -1};
    for (size_t i = 0; i < kFullNames.size(); ++i) {
      auto n = kFullNames[i].name;
      auto& s = slots[n.size()][static_cast<size_t>(ascii_lower(n[0]) - 'a')];
      if (s[0] < 0) s[0] = static_cast<int8_t>(i);
      else if (s[1] < 0) s[1] = static_cast<int8_t>(i);
      else throw "more than two header names share a bucket";  // fails constant evaluation
    }
  }
};
constexpr Index kIndex{};

// Case-insensitive compare specialised for known names, which hold only letters and '-':
// OR-ing 0x20 into every byte lower-cases a letter and maps no other token character onto a
// letter or '-'. Compared a word at a time (the last word overlapping) since this runs for every
// header line of every message.
uint64_t load_lowered(const char* p, size_t n) {
  uint64_t w = 0;
  std::memcpy(&w, p, n);
  return w | (0x2020202020202020ULL >> (8 * (8 - n)));
}

bool equals_lowered(std::string_view known, std::string_view name) {
  size_t n = known.size();
  if (n < 8) return load_lowered(known.data(), n) == load_lowered(name.data(), n);
  for (size_t i = 0; i + 8 <= n; i += 8)
    if (load_lowered(known.data() + i, 8) != load_lowered(name.data() + i, 8)) return false;
  return load_lowered(known.data() + n - 8, 8) == load_lowered(name.data() + n - 8, 8);
}

}  // namespace

HeaderKind header_kind_from_name(std::string_view name) {
  if (name.size() == 1) return compact_kind(name[0]);
  // An empty name (Message::header("") from a caller) must not read name[0] below.
  if (name.empty() || name.size() >= 32) return HeaderKind::kOther;
  char first = ascii_lower(name[0]);
  if (first < 'a' || first > 'z') return HeaderKind::kOther;
  for (int8_t idx : kIndex.slots[name.size()][static_cast<size_t>(first - 'a')]) {
    if (idx < 0) break;
    const auto& e = kFullNames[static_cast<size_t>(idx)];
    if (equals_lowered(e.name, name)) return e.kind;
  }
  return HeaderKind::kOther;
}

std::string_view header_canonical_name(HeaderKind kind) {
  for (const auto& e : kFullNames)
    if (e.kind == kind) return e.name;
  return {};
}

}  // namespace pinhole::sip
