// libFuzzer target for the header value parsers: Via, name-addr, Contact, auth credentials and
// challenges, CSeq, Content-Type (and the small scalar ones next to them).
//
// Every parser sees the whole input. The list parsers (Via, Contact, Route) are driven the way
// Message drives them for a comma-separated field value. Invariants: a successful parse leaves
// the scanner inside the text and makes progress, every view lies inside the text, and flags a
// parser sets can be found again with param() (ResponseBuilder and Editor rely on that).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "fuzz_check.h"
#include "sip/auth.h"
#include "sip/host.h"
#include "sip/name_addr.h"
#include "sip/scalar_headers.h"
#include "sip/scanner.h"
#include "sip/via.h"

namespace {

using namespace pinhole::sip;

struct Inside {
  std::string_view text;
  void operator()(std::string_view v) const {
    if (v.empty()) return;
    FUZZ_CHECK(v.data() >= text.data() && v.data() + v.size() <= text.data() + text.size());
  }
};

void check_uri(const Inside& in, const Uri& u) {
  for (std::string_view v :
       {u.raw, u.scheme_text, u.user, u.password, u.host, u.port_text, u.params, u.headers, u.opaque})
    in(v);
}

void check_name_addr(const Inside& in, const NameAddr& na) {
  for (std::string_view v : {na.raw, na.display_name, na.params, na.tag}) in(v);
  check_uri(in, na.uri);
  FUZZ_CHECK(!na.has_tag || na.param("tag").has_value());
  FUZZ_CHECK(!na.bracketed || !na.uri.raw.empty());
}

void check_via(const Inside& in, const Via& v) {
  for (std::string_view s : {v.raw, v.protocol_name, v.protocol_version, v.transport, v.host, v.port_text, v.params,
                             v.branch, v.received, v.maddr, v.ttl, v.rport_value})
    in(s);
  FUZZ_CHECK(!v.host.empty());
  FUZZ_CHECK(!v.has_branch || v.param("branch").has_value());
  FUZZ_CHECK(!v.has_received || v.param("received").has_value());
  FUZZ_CHECK(!v.has_rport || v.param("rport").has_value());
  // param() reads the value the parser kept (the first occurrence of a repeated parameter).
  if (v.has_branch) FUZZ_CHECK(v.param("branch")->value == v.branch);
  if (v.has_received) FUZZ_CHECK(v.param("received")->value == v.received);
  if (v.has_rport) FUZZ_CHECK(v.param("rport")->value == v.rport_value);
  FUZZ_CHECK(!v.alias || v.param("alias").has_value());
}

// Drives `parse_one` over a comma-separated list as Message does; `check` sees each value.
template <typename ParseOne, typename Check>
void parse_list(std::string_view text, ParseOne&& parse_one, Check&& check) {
  Scanner s(text);
  for (int i = 0; i < 1000; ++i) {
    size_t before = s.pos();
    auto v = parse_one(s);
    if (!v) return;
    FUZZ_CHECK(s.pos() <= text.size());
    FUZZ_CHECK(s.pos() > before);  // a value is never empty
    check(*v);
    s.skip_lws();
    if (s.at_end() || !s.consume(',')) return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {  // NOLINT(readability-identifier-naming)
  std::string_view text(reinterpret_cast<const char*>(data), size);
  Inside in{text};

  parse_list(
      text, [](Scanner& s) { return parse_via(s); }, [&](const Via& v) { check_via(in, v); });
  parse_list(
      text, [](Scanner& s) { return parse_contact(s); },
      [&](const Contact& c) {
        in(c.raw);
        if (c.star) return;
        check_name_addr(in, c);
        for (std::string_view v : {c.expires, c.q, c.instance, c.reg_id}) in(v);
      });
  parse_list(
      text, [](Scanner& s) { return parse_name_addr(s, /*require_brackets=*/true); },
      [&](const NameAddr& na) {
        FUZZ_CHECK(na.bracketed);
        check_name_addr(in, na);
      });
  parse_list(
      text, [](Scanner& s) { return parse_name_addr(s, /*require_brackets=*/false); },
      [&](const NameAddr& na) { check_name_addr(in, na); });
  if (auto na = parse_single_name_addr(text)) check_name_addr(in, *na);

  if (auto a = parse_auth(text)) {
    for (std::string_view v : {a->scheme, a->params, a->username, a->realm, a->nonce, a->uri, a->response, a->algorithm,
                               a->cnonce, a->opaque, a->qop, a->nc, a->domain, a->stale})
      in(v);
    (void)a->is_digest();
  }
  if (auto c = parse_cseq(text)) {
    in(c->method_name);
    FUZZ_CHECK(c->number < 0x80000000u);
  }
  if (auto ct = parse_content_type(text)) {
    in(ct->type);
    in(ct->subtype);
    in(ct->params);
    (void)ct->is("application", "sdp");
  }

  // The small scalar parsers and lookups that share the Scanner and parameter code.
  (void)parse_max_forwards(text);
  (void)parse_content_length(text, 64 * 1024);
  (void)parse_delta_header(text);
  (void)validate_call_id(text);
  (void)validate_date(text);
  (void)for_each_option_tag(text, [&](std::string_view tag) { in(tag); });
  if (auto p = find_header_param(text, "branch")) {
    in(p->name);
    in(p->value);
  }
  if (auto hp = parse_host_port(text)) {
    in(hp->host);
    in(hp->port_text);
  }
  (void)validate_uri_params(text);
  return 0;
}
