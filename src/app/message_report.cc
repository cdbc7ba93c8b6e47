#include "app/message_report.h"

#include <sstream>

#include "sip/message.h"
#include "sip/sanity.h"

namespace pinhole::app {
namespace {

void describe_uri(std::ostringstream& out, const sip::Uri& u) {
  out << u.raw;
  if (u.is_sip()) {
    out << "  [user=" << u.user << " host=" << u.host;
    if (u.has_port()) out << " port=" << u.port;
    if (!u.params.empty()) out << " params=" << u.params;
    out << "]";
  }
}

}  // namespace

std::string describe_message(std::string_view bytes) {
  std::ostringstream out;
  auto parsed = sip::Message::parse(bytes, sip::Framing::kDatagram);
  if (!parsed) {
    out << "parse error: " << parsed.error().status << " " << parsed.error().what << "\n";
    return out.str();
  }
  const sip::Message& m = **parsed;
  if (m.is_request()) {
    out << "request " << m.method_name() << " ";
    describe_uri(out, m.request_uri());
    out << "\n";
  } else {
    out << "response " << m.status() << " " << m.reason() << "\n";
  }
  out << "headers: " << m.headers().size() << ", body: " << m.body().size() << " bytes\n";
  if (auto vias = m.vias()) {
    for (const auto& v : *vias)
      out << "  via " << v.transport << " " << v.host << (v.port_text.empty() ? "" : ":") << v.port_text
          << " branch=" << v.branch << (v.has_rport ? " rport" : "") << "\n";
  }
  if (auto from = m.from()) out << "  from " << (*from)->uri.raw << " tag=" << (*from)->tag << "\n";
  if (auto to = m.to()) out << "  to " << (*to)->uri.raw << " tag=" << (*to)->tag << "\n";
  if (auto cseq = m.cseq()) out << "  cseq " << cseq->number << " " << cseq->method_name << "\n";
  if (auto contacts = m.contacts())
    for (const auto& c : *contacts) out << "  contact " << (c.star ? "*" : c.uri.raw) << "\n";
  sip::SanityPolicy policy;
  Status verdict = m.is_request() ? sip::check_request(m, policy) : sip::check_response(m);
  if (verdict)
    out << "verdict: accept\n";
  else if (m.is_request())
    out << "verdict: answer " << verdict.error().status << " (" << verdict.error().what << ")\n";
  else
    out << "verdict: drop (" << verdict.error().what << ")\n";
  return out.str();
}

}  // namespace pinhole::app
