// libFuzzer target for the path a UDP datagram takes through the SIP message core: parse, every
// lazy accessor, sanity, transaction keys, the 400 answer a proxy builds for a bad request, and
// the Editor round trip a proxy makes when it forwards.
//
// Besides crashes, ASan/UBSan reports and leaks, it aborts on broken invariants, each one a
// property the proxy relies on (see the FUZZ_CHECK lines). Inputs that parse but fail sanity are
// still answered with ResponseBuilder (that is what a proxy does with them), but are not edited:
// the proxy never forwards them.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "sip/builder.h"
#include "sip/editor.h"
#include "sip/message.h"
#include "sip/sanity.h"
#include "sip/transaction_key.h"

namespace {

using namespace pinhole::sip;
using pinhole::Result;

// Every view a Message hands out points into its own bytes (DESIGN.md §4): checking it also makes
// ASan read the whole range, so a view past the buffer is reported here, not later in a proxy.
struct ViewChecker {
  std::string_view bytes;
  void operator()(std::string_view v) const {
    if (v.empty()) return;
    FUZZ_CHECK(v.data() >= bytes.data() && v.data() + v.size() <= bytes.data() + bytes.size());
    volatile char sink = 0;
    for (char c : v) sink = static_cast<char>(sink ^ c);
    (void)sink;
  }
};

void check_uri(const ViewChecker& in, const Uri& u) {
  for (std::string_view v :
       {u.raw, u.scheme_text, u.user, u.password, u.host, u.port_text, u.params, u.headers, u.opaque})
    in(v);
  (void)u.transport();
  (void)u.loose_route();
  (void)u.param("maddr");
}

void check_name_addr(const ViewChecker& in, const NameAddr& na) {
  for (std::string_view v : {na.raw, na.display_name, na.params, na.tag}) in(v);
  check_uri(in, na.uri);
  FUZZ_CHECK(!na.has_tag || na.param("tag").has_value());
}

void check_via(const ViewChecker& in, const Via& v) {
  for (std::string_view s : {v.raw, v.protocol_name, v.protocol_version, v.transport, v.host, v.port_text, v.params,
                             v.branch, v.received, v.maddr, v.ttl, v.rport_value})
    in(s);
  // ResponseBuilder and Editor look flags up again with param(): they must find them.
  FUZZ_CHECK(!v.has_branch || v.param("branch").has_value());
  FUZZ_CHECK(!v.has_received || v.param("received").has_value());
  FUZZ_CHECK(!v.has_rport || v.param("rport").has_value());
  // ...and read the value the parser kept (the first occurrence of a repeated parameter).
  if (v.has_branch) FUZZ_CHECK(v.param("branch")->value == v.branch);
  if (v.has_received) FUZZ_CHECK(v.param("received")->value == v.received);
  if (v.has_rport) FUZZ_CHECK(v.param("rport")->value == v.rport_value);
  (void)v.rfc3261_branch();
}

// Calls every lazy accessor; a second call must give the cached answer.
void check_accessors(const Message& m) {
  ViewChecker in{m.bytes()};
  in(m.start_line());
  in(m.body());
  in(m.method_name());
  in(m.reason());
  if (m.is_request()) check_uri(in, m.request_uri());
  for (const auto& h : m.headers()) {
    in(h.name);
    in(h.value);
    in(h.line);
    // Looking a header up by the name it was written with finds the first field of its kind.
    const HeaderField* first = m.header(h.name);
    FUZZ_CHECK(first != nullptr && first <= &h && first->kind == h.kind);
    if (h.kind != HeaderKind::kOther) FUZZ_CHECK(m.header(h.kind) == first);
  }

  auto vias = m.vias();
  if (vias) {
    FUZZ_CHECK(!vias->empty());
    for (const auto& v : *vias) check_via(in, v);
    auto top = m.top_via();
    FUZZ_CHECK(top.ok() && *top == &vias->front());
  } else {
    FUZZ_CHECK(!m.top_via().ok());
  }
  auto vias2 = m.vias();
  FUZZ_CHECK(vias.ok() == vias2.ok());
  if (vias.ok()) FUZZ_CHECK(vias->data() == vias2->data() && vias->size() == vias2->size());

  for (auto acc : {&Message::from, &Message::to}) {
    auto na = (m.*acc)();
    if (na) check_name_addr(in, **na);
    auto again = (m.*acc)();
    FUZZ_CHECK(na.ok() == again.ok());
    if (na.ok()) FUZZ_CHECK(*na == *again);
  }
  if (auto cid = m.call_id()) in(*cid);
  if (auto cseq = m.cseq()) in(cseq->method_name);
  (void)m.max_forwards();
  (void)m.expires();

  auto contacts = m.contacts();
  if (contacts) {
    for (const auto& c : *contacts) {
      in(c.raw);
      if (c.star) continue;
      check_name_addr(in, c);
      for (std::string_view v : {c.expires, c.q, c.instance, c.reg_id}) in(v);
    }
  }
  FUZZ_CHECK(contacts.ok() == m.contacts().ok());

  for (auto acc : {&Message::routes, &Message::record_routes, &Message::paths}) {
    auto list = (m.*acc)();
    if (list) {
      for (const auto& na : *list) {
        FUZZ_CHECK(na.bracketed);
        check_name_addr(in, na);
      }
    }
    FUZZ_CHECK(list.ok() == (m.*acc)().ok());
  }
  if (auto ct = m.content_type(); ct && ct->has_value()) {
    in((*ct)->type);
    in((*ct)->subtype);
    in((*ct)->params);
  }
  (void)m.header("X-Unknown");
  (void)m.header("v");
  (void)m.header_count(HeaderKind::kVia);
  (void)unsupported_options(m, HeaderKind::kRequire, {});
}

// Limits for re-parsing what we produced from a message that met the default limits: a few
// header lines and bytes more than the original may legitimately have.
ParseLimits relaxed_limits() {
  ParseLimits l;
  l.max_message_size += 4096;
  l.max_headers = static_cast<uint16_t>(l.max_headers + 8);
  return l;
}

void check_response_builder(const Message& req, bool sane) {
  Result<const Via*> req_top = req.top_via();
  std::string out = ResponseBuilder(req, 400).to_tag("x").via_received("192.0.2.1", 5060).build();
  // Our own answer must be readable by any peer (and by us), whatever the request looked like.
  auto resp = Message::parse(out, Framing::kDatagram, relaxed_limits());
  FUZZ_CHECK(resp.ok());
  FUZZ_CHECK((*resp)->status() == 400);
  FUZZ_CHECK((*resp)->bytes().size() == out.size());
  if (!sane) return;
  // A sane request gets a sane answer that the client can match to its transaction.
  FUZZ_CHECK(check_response(**resp).ok());
  auto top = (*resp)->top_via();
  FUZZ_CHECK(top.ok() && req_top.ok());
  const Via& rv = **top;
  const Via& qv = **req_top;
  FUZZ_CHECK(rv.branch == qv.branch);
  // received is the source address whatever the client wrote there (RFC 3581 §4).
  FUZZ_CHECK(rv.received == "192.0.2.1");
  if (qv.has_rport && qv.rport_value.empty()) FUZZ_CHECK(rv.rport_value == "5060");
  auto to = (*resp)->to();
  FUZZ_CHECK(to.ok() && (*to)->has_tag);
  FUZZ_CHECK(client_transaction_key(**resp).ok());
}

// Re-parses what the Editor produced; it must parse.
MessagePtr reparse(const std::string& out) {
  auto re = Message::parse(out, Framing::kDatagram, relaxed_limits());
  if (!re.ok())
    std::fprintf(stderr, "re-parse failed (%u %.*s):\n%s\n", re.error().status,
                 static_cast<int>(re.error().what.size()), re.error().what.data(), out.c_str());
  FUZZ_CHECK(re.ok());
  FUZZ_CHECK((*re)->bytes().size() == out.size());
  return std::move(*re);
}

void check_editor(const Message& m) {
  {
    // No edits: the bytes go out exactly as received.
    Editor e(m);
    FUZZ_CHECK(e.empty());
    FUZZ_CHECK(e.serialize() == m.bytes());
  }
  auto top = m.top_via();
  FUZZ_CHECK(top.ok());  // sanity passed, so the Vias parse
  const Via& tv = **top;

  // What the edge does to a message it forwards: RFC 3581 received/rport on the top Via,
  // Record-Route, a rewritten body (SDP), and the NATed Contact fixed to the source address.
  Editor e(m);
  e.set_via_param(tv, "received", "192.0.2.1");
  e.set_via_param(tv, "rport", "40000");
  e.add_header_first("Record-Route", "<sip:p.example;lr>");
  e.set_body("x");
  auto contacts = m.contacts();
  FUZZ_CHECK(contacts.ok());
  bool fix_contact = !contacts->empty() && !contacts->front().star && contacts->front().uri.is_sip();
  if (fix_contact) e.set_uri_host_port(contacts->front().uri, "203.0.113.7", 40001);
  MessagePtr re = reparse(e.serialize());
  const Message& r = *re;
  FUZZ_CHECK(r.is_request() == m.is_request());
  FUZZ_CHECK(r.body() == "x");
  // The result must still be sane.
  FUZZ_CHECK(m.is_request() ? check_request(r, SanityPolicy{}).ok() : check_response(r).ok());
  auto rtop = r.top_via();
  FUZZ_CHECK(rtop.ok());
  // What the parser reads back is what the edge wrote: responses are routed by these values.
  FUZZ_CHECK((*rtop)->received == "192.0.2.1");
  FUZZ_CHECK((*rtop)->rport_value == "40000");
  FUZZ_CHECK((*rtop)->branch == tv.branch);
  FUZZ_CHECK((*rtop)->host == tv.host && (*rtop)->port == tv.port);
  auto rr = r.record_routes();
  FUZZ_CHECK(rr.ok() && !rr->empty() && rr->front().uri.host == "p.example");
  FUZZ_CHECK(r.headers().size() == m.headers().size() + 1 + (m.has_content_length() ? 0 : 1));
  if (fix_contact) {
    auto rc = r.contacts();
    FUZZ_CHECK(rc.ok() && rc->size() == contacts->size());
    FUZZ_CHECK(rc->front().uri.host == "203.0.113.7" && rc->front().uri.port == 40001);
    FUZZ_CHECK(rc->front().uri.params == contacts->front().uri.params);
  }
  if (m.is_request() && tv.rfc3261_branch()) {
    // RFC 3261 matching uses branch + sent-by + method, none of which the edits touch.
    auto k1 = server_transaction_key(m);
    auto k2 = server_transaction_key(r);
    FUZZ_CHECK(k1.ok() && k2.ok() && *k1 == *k2);
  }

  // A proxy forwarding a response removes its own (top) Via value.
  if (m.is_response() && m.vias()->size() >= 2) {
    const Via& second = (*m.vias())[1];
    const HeaderField* first_via = m.header(HeaderKind::kVia);
    FUZZ_CHECK(first_via != nullptr);
    Editor pop(m);
    pop.remove_list_value(*first_via, tv.raw);
    MessagePtr popped = reparse(pop.serialize());
    FUZZ_CHECK(check_response(*popped).ok());
    auto pv = popped->vias();
    FUZZ_CHECK(pv.ok() && pv->size() == m.vias()->size() - 1);
    FUZZ_CHECK(pv->front().raw == second.raw);
    FUZZ_CHECK(pv->front().branch == second.branch);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {  // NOLINT(readability-identifier-naming)
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto parsed = Message::parse(input, Framing::kDatagram);
  if (!parsed) return 0;
  const Message& msg = **parsed;
  FUZZ_CHECK(msg.bytes().size() <= input.size());
  FUZZ_CHECK(msg.bytes() == input.substr(0, msg.bytes().size()));

  // What the parser keeps of a datagram is itself a message that parses to the same bytes, and
  // with a Content-Length and the empty line (a datagram may lack it) it frames the same way on a
  // stream.
  {
    auto again = Message::parse(msg.bytes(), Framing::kDatagram);
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK((*again)->bytes() == msg.bytes() && (*again)->headers().size() == msg.headers().size());
    std::string_view head = msg.bytes().substr(0, msg.bytes().size() - msg.body().size());
    if (msg.has_content_length() && (head.ends_with("\n\n") || head.ends_with("\n\r\n"))) {
      auto stream = Message::parse(msg.bytes(), Framing::kStream);
      FUZZ_CHECK(stream.ok() && (*stream)->bytes() == msg.bytes());
    }
  }

  check_accessors(msg);

  bool sane;
  if (msg.is_request()) {
    sane = check_request(msg, SanityPolicy{}).ok();
    (void)check_request(msg, SanityPolicy{.forwarding = false});
    auto key = server_transaction_key(msg);
    if (sane) FUZZ_CHECK(key.ok());
    if (msg.method() == Method::kCancel) (void)cancelled_invite_key(msg);
    check_response_builder(msg, sane);
  } else {
    sane = check_response(msg).ok();
    auto key = client_transaction_key(msg);
    if (sane) FUZZ_CHECK(key.ok());
  }
  if (sane) check_editor(msg);
  return 0;
}
