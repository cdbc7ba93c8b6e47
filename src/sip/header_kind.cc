#include "sip/header_kind.h"

#include <array>
#include <bit>
#include <cstdint>
#include <cstring>
#include <type_traits>

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
    case 'v':
      return HeaderKind::kVia;
    case 'f':
      return HeaderKind::kFrom;
    case 't':
      return HeaderKind::kTo;
    case 'i':
      return HeaderKind::kCallId;
    case 'm':
      return HeaderKind::kContact;
    case 'l':
      return HeaderKind::kContentLength;
    case 'c':
      return HeaderKind::kContentType;
    case 'e':
      return HeaderKind::kContentEncoding;
    case 's':
      return HeaderKind::kSubject;
    case 'k':
      return HeaderKind::kSupported;
    case 'o':
      return HeaderKind::kEvent;
    case 'u':
      return HeaderKind::kAllowEvents;
    case 'r':
      return HeaderKind::kReferTo;
    case 'b':
      return HeaderKind::kReferredBy;
    case 'x':
      return HeaderKind::kSessionExpires;
    case 'y':
      return HeaderKind::kIdentity;
    case 'a':
      return HeaderKind::kAcceptContact;
    case 'j':
      return HeaderKind::kRejectContact;
    case 'd':
      return HeaderKind::kRequestDisposition;
    case 'n':
      return HeaderKind::kIdentityInfo;
    default:
      return HeaderKind::kOther;
  }
}

// Known full names by a hash of their length and first and last characters, free of collisions
// for this set (checked while compiling), so a lookup compares against one candidate. OR-ing 0x20
// lower-cases letters, so a name in any case hashes as its lower-case form.
constexpr size_t kHashSlots = 128;
constexpr size_t name_hash(size_t length, char first, char last) {
  return (length * 13 + size_t{static_cast<unsigned char>(first | 0x20)} +
          size_t{static_cast<unsigned char>(last | 0x20)} * 29) %
         kHashSlots;
}

constexpr uint8_t kNoName = 0xff;
struct Index {
  std::array<uint8_t, kHashSlots> slots{};  // index into kFullNames, or kNoName
  constexpr Index() {
    for (auto& slot : slots) slot = kNoName;
    for (size_t i = 0; i < kFullNames.size(); ++i) {
      auto n = kFullNames[i].name;
      auto& slot = slots[name_hash(n.size(), n.front(), n.back())];
      if (slot != kNoName) throw "two header names share a hash slot: change name_hash";  // fails constant evaluation
      slot = static_cast<uint8_t>(i);
    }
  }
};
constexpr Index kIndex{};

// Names are compared a word at a time, since this runs for every header line of every message.
// A name of 2 to 24 bytes becomes up to three little-endian 64-bit words read with fixed-size
// loads (single mov instructions, unlike a memcpy of variable length, which is a libc call) that
// overlap rather than read past the name's end: 2-3 bytes: two 2-byte loads; 4-8 bytes: two
// 4-byte loads; 9-16: two 8-byte loads; 17-24: three. Unused words stay 0.
static_assert(std::endian::native == std::endian::little, "the word layout below assumes little-endian");
constexpr size_t kMaxWordName = 24;

template <size_t N>
constexpr uint64_t load_le(const char* p) {
  if (std::is_constant_evaluated()) {
    uint64_t w = 0;
    for (size_t i = 0; i < N; ++i) w |= uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
    return w;
  }
  if constexpr (N == 2) {
    uint16_t w;
    std::memcpy(&w, p, N);
    return w;
  } else if constexpr (N == 4) {
    uint32_t w;
    std::memcpy(&w, p, N);
    return w;
  } else {
    uint64_t w;
    std::memcpy(&w, p, N);
    return w;
  }
}

using NameWords = std::array<uint64_t, 3>;

constexpr NameWords name_words(const char* p, size_t n) {
  NameWords w{};
  if (n < 4) {
    w[0] = load_le<2>(p) | load_le<2>(p + n - 2) << 16;
  } else if (n <= 8) {
    w[0] = load_le<4>(p) | load_le<4>(p + n - 4) << 32;
  } else if (n <= 16) {
    w[0] = load_le<8>(p);
    w[1] = load_le<8>(p + n - 8);
  } else {
    w[0] = load_le<8>(p);
    w[1] = load_le<8>(p + 8);
    w[2] = load_le<8>(p + n - 8);
  }
  return w;
}

// A known name in word form: its lower-case words, and two masks OR-ed into the candidate's words
// before comparing. `letters` has 0x20 at the letter positions only: OR-ing it lower-cases an
// upper-case letter there and nothing else can become the letter, while the '-' positions must
// match exactly. `all` has 0x20 at every position, the historical header_kind_from_name
// comparison, which lets CR (0x0d | 0x20 == '-') stand for '-'.
struct WordName {
  NameWords lower{}, letters{}, all{};
  HeaderKind kind = HeaderKind::kOther;
};

constexpr std::array<WordName, kFullNames.size()> make_word_names() {
  std::array<WordName, kFullNames.size()> out{};
  for (size_t i = 0; i < kFullNames.size(); ++i) {
    std::string_view n = kFullNames[i].name;
    if (n.size() < 2 || n.size() > kMaxWordName) throw "known header name length out of range";
    std::array<char, kMaxWordName> lower{}, letters{}, all{};
    for (size_t j = 0; j < n.size(); ++j) {
      bool letter = (n[j] >= 'a' && n[j] <= 'z') || (n[j] >= 'A' && n[j] <= 'Z');
      if (!letter && n[j] != '-') throw "known header names hold only letters and '-'";
      lower[j] = ascii_lower(n[j]);
      letters[j] = letter ? 0x20 : 0;
      all[j] = 0x20;
    }
    out[i] = {name_words(lower.data(), n.size()), name_words(letters.data(), n.size()),
              name_words(all.data(), n.size()), kFullNames[i].kind};
  }
  return out;
}
constexpr auto kWordNames = make_word_names();

// Branch-free: every word is compared (unused ones are 0 on both sides).
bool words_match(const NameWords& candidate, const NameWords& fold, const NameWords& lower) {
  return (((candidate[0] | fold[0]) ^ lower[0]) | ((candidate[1] | fold[1]) ^ lower[1]) |
          ((candidate[2] | fold[2]) ^ lower[2])) == 0;
}

// Full-name lookup. kExact: letters match in any case and everything else exactly (the indexer's
// form); otherwise the historical every-byte OR 0x20 comparison. Either way a match has the
// hash of the known name, since OR-ing 0x20 into the first and last characters gives the same.
template <bool kExact>
HeaderKind full_name_kind(std::string_view name) {
  // An empty name (Message::header("") from a caller) must not read name[0] below. No known name
  // is longer than kMaxWordName.
  if (name.size() < 2 || name.size() > kMaxWordName) return HeaderKind::kOther;
  const uint8_t idx = kIndex.slots[name_hash(name.size(), name.front(), name.back())];
  if (idx == kNoName || kFullNames[idx].name.size() != name.size()) return HeaderKind::kOther;
  const WordName& w = kWordNames[idx];
  NameWords candidate = name_words(name.data(), name.size());
  return words_match(candidate, kExact ? w.letters : w.all, w.lower) ? w.kind : HeaderKind::kOther;
}

}  // namespace

HeaderKind header_kind_from_name(std::string_view name) {
  if (name.size() == 1) return compact_kind(name[0]);
  return full_name_kind<false>(name);
}

HeaderKind known_header_kind(std::string_view name) {
  // Compact forms are letters, so a compact kind is a token too.
  if (name.size() == 1) return compact_kind(name[0]);
  return full_name_kind<true>(name);
}

std::string_view header_canonical_name(HeaderKind kind) {
  for (const auto& e : kFullNames)
    if (e.kind == kind) return e.name;
  return {};
}

}  // namespace pinhole::sip
