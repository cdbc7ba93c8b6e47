// libFuzzer target for the SDP layer: parse arbitrary bytes and, when they parse, rewrite them for
// a relay and parse the output again.
//
// The input is copied into a heap block of its exact size so ASan sees a read past the body. The
// relay plan and the options come from a hash of the input, so every policy is exercised on every
// shape of body. Invariants (each a property the edge relies on, see the FUZZ_CHECK lines): every
// view lies inside the body, the rewritten body parses and says what the plan asked for, disabled
// and untouched streams keep their values, and rewriting the output again with the same plan
// gives the same bytes and version (except with kKeepAndAdd, which adds candidates each time).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "net/address.h"
#include "sdp/sdp_rewriter.h"
#include "sdp/session_description.h"

namespace {

using namespace pinhole;
using namespace pinhole::sdp;

using pinhole::fuzz::OwnedText;

void check_views(const SessionDescription& s) {
  std::string_view b = s.body;
  for (const Line& l : s.lines) fuzz_check_inside(b, l.value);
  for (std::string_view v :
       {s.origin.username, s.origin.session_id, s.origin.version_text, s.origin.address_text, s.session_name})
    fuzz_check_inside(b, v);
  for (const MediaDescription& m : s.media) {
    FUZZ_CHECK(m.first_line < m.end_line && m.end_line <= s.lines.size());
    FUZZ_CHECK(s.lines[m.first_line].type == 'm');
    FUZZ_CHECK(!m.formats.empty());
    for (std::string_view f : m.formats) fuzz_check_inside(b, f);
    FUZZ_CHECK(m.disabled() || m.connection.has_value());
    if (m.connection) fuzz_check_inside(b, m.connection->value);
    for (const IceCandidate& c : m.candidates) {
      FUZZ_CHECK(c.line > m.first_line && c.line < m.end_line);
      FUZZ_CHECK(c.component >= 1 && c.component <= 256);
      fuzz_check_inside(b, c.foundation);
      fuzz_check_inside(b, c.address_text);
      fuzz_check_inside(b, c.related_address_text);
    }
    fuzz_check_inside(b, m.ice_ufrag);
    fuzz_check_inside(b, m.ice_pwd);
  }
}

uint64_t fnv(std::string_view s) {
  uint64_t h = 14695981039346656037ULL;
  for (char c : s) {
    h ^= static_cast<uint8_t>(c);
    h *= 1099511628211ULL;
  }
  return h;
}

// The output may grow past the input's limits (inserted c= lines, added candidates).
constexpr SdpLimits kOutputLimits{.max_body = size_t{128} * 1024, .max_lines = 1200, .max_media = 32};

void check_rewrite(const SessionDescription& in, std::string_view input) {
  uint64_t h = fnv(input);
  RewriteOptions options;
  options.ice = (h & 1) != 0 ? IcePolicy::kKeepAndAdd : IcePolicy::kRemove;
  options.rtcp_mux = (h & 2) != 0 ? RtcpMuxPolicy::kRemove : RtcpMuxPolicy::kKeep;
  options.replace_origin = (h & 4) != 0;
  if ((h & 8) != 0) options.force_direction = static_cast<Direction>((h >> 4) & 3);
  options.replace_zero_address = (h & 64) != 0;
  if ((h & 128) != 0) options.origin_address = net::Address::v4(0xC6336401);  // 198.51.100.1

  std::vector<std::optional<RelayEndpoint>> relays;
  for (size_t i = 0; i < in.media.size(); ++i) {
    uint64_t bits = h >> (8 + (i % 24) * 2);
    if ((bits & 3) == 0) {
      relays.emplace_back();  // left alone
      continue;
    }
    RelayEndpoint r;
    r.address = (bits & 1) != 0 ? net::Address::v4(0xCB00710A + static_cast<uint32_t>(i))  // 203.0.113.10+i
                                : *net::Address::parse("2001:db8:ffff::10");
    r.rtp_port = static_cast<uint16_t>(30000 + 2 * i);
    relays.emplace_back(r);
  }

  auto out = rewrite_sdp(in, relays, options);
  FUZZ_CHECK(out.ok());
  const std::string& body = out->body;
  // CRLF only.
  for (size_t i = 0; i < body.size(); ++i)
    if (body[i] == '\n') FUZZ_CHECK(i > 0 && body[i - 1] == '\r');
  OwnedText out_text(body);
  auto re = parse_sdp(out_text.view, kOutputLimits);
  FUZZ_CHECK(re.ok());
  const SessionDescription& o = *re;
  check_views(o);
  FUZZ_CHECK(o.media.size() == in.media.size());
  FUZZ_CHECK(o.origin.version == in.origin.version);
  FUZZ_CHECK(o.origin.username == in.origin.username && o.origin.session_id == in.origin.session_id);
  FUZZ_CHECK(o.session_name == in.session_name);

  for (size_t i = 0; i < in.media.size(); ++i) {
    const MediaDescription& a = in.media[i];
    const MediaDescription& b = o.media[i];
    FUZZ_CHECK(a.media == b.media && a.proto == b.proto && a.formats == b.formats);
    bool relayed = !a.disabled() && relays[i].has_value();
    if (!relayed) {
      // Byte for byte the same section, and the same effective values.
      FUZZ_CHECK(a.end_line - a.first_line == b.end_line - b.first_line);
      for (size_t l = 0; l < a.end_line - a.first_line; ++l) {
        FUZZ_CHECK(in.lines[a.first_line + l].type == o.lines[b.first_line + l].type);
        FUZZ_CHECK(in.lines[a.first_line + l].value == o.lines[b.first_line + l].value);
      }
      FUZZ_CHECK(a.port == b.port && a.port_count == b.port_count);
      if (!a.disabled()) {
        FUZZ_CHECK(a.connection->address == b.connection->address);
        FUZZ_CHECK(a.connection->address_text == b.connection->address_text);
        FUZZ_CHECK(a.candidates.size() == b.candidates.size());
        FUZZ_CHECK(a.direction == b.direction);
      }
      continue;
    }
    const RelayEndpoint& r = *relays[i];
    FUZZ_CHECK(b.port == r.rtp_port && b.port_count == 1);
    bool keep_zero = a.connection->unspecified() && !options.replace_zero_address;
    if (keep_zero) {
      FUZZ_CHECK(b.connection->unspecified());
    } else {
      FUZZ_CHECK(b.connection->address == r.address);
    }
    bool mux = a.rtcp_mux && options.rtcp_mux == RtcpMuxPolicy::kKeep;
    FUZZ_CHECK(b.rtcp_mux == mux);
    uint16_t rtcp_port = mux ? r.rtp_port : static_cast<uint16_t>(r.rtp_port + 1);
    FUZZ_CHECK(a.rtcp.has_value() == b.rtcp.has_value());
    if (b.rtcp) {
      FUZZ_CHECK(b.rtcp->port == rtcp_port);
      FUZZ_CHECK(b.rtcp->has_address == a.rtcp->has_address);
      bool rtcp_zero =
          a.rtcp->address && (*a.rtcp->address == net::Address() || *a.rtcp->address == net::Address::v6({}));
      if (b.rtcp->has_address && !(keep_zero && rtcp_zero)) FUZZ_CHECK(b.rtcp->address == r.address);
      if (b.rtcp->has_address && keep_zero && rtcp_zero) FUZZ_CHECK(b.rtcp->address == a.rtcp->address);
    }
    if (options.force_direction) FUZZ_CHECK(b.direction == *options.force_direction);
    if (!options.force_direction) FUZZ_CHECK(b.direction == a.direction);
    if (options.ice == IcePolicy::kRemove) {
      FUZZ_CHECK(b.candidates.empty() && !b.end_of_candidates);
    } else {
      size_t added = a.has_ice() ? (mux ? 1 : 2) : 0;
      FUZZ_CHECK(b.candidates.size() == a.candidates.size() + added);
    }
  }

  if (options.ice == IcePolicy::kKeepAndAdd) return;
  // Rewriting our own output with the same plan changes nothing, and the version stays.
  PreviousRewrite previous{out->version + 7, out->content_hash};
  auto again = rewrite_sdp(o, relays, options, previous);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->content_hash == out->content_hash);
  FUZZ_CHECK(again->version == previous.version);
  std::string expected = body;
  auto at = static_cast<size_t>(o.origin.version_text.data() - out_text.view.data());
  expected.replace(at, o.origin.version_text.size(), std::to_string(previous.version));
  FUZZ_CHECK(again->body == expected);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {  // NOLINT(readability-identifier-naming)
  OwnedText text(std::string_view(reinterpret_cast<const char*>(data), size));
  auto sdp = parse_sdp(text.view);
  if (!sdp) {
    FUZZ_CHECK(sdp.error().status == 488 && !sdp.error().what.empty());
    return 0;
  }
  check_views(*sdp);
  check_rewrite(*sdp, text.view);
  return 0;
}
