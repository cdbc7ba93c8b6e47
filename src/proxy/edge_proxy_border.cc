// Border mode of the edge proxy (border_services.h, registrar/border_bindings.h): REGISTERs from
// clients are relayed to the upstream registrar, their 2xx teach pinhole each binding's expiry
// and flow, NATed UDP phones get a short lease, refreshes within the upstream's interval are
// answered here, and requests routed by an old flow token follow a binding that moved.
#include <algorithm>

#include "nat/nat_detect.h"
#include "proxy/edge_proxy.h"
#include "proxy/register_contacts.h"
#include "registrar/aor.h"
#include "sip/editor.h"

namespace pinhole::proxy {

using txn::TransactionId;

namespace {

// A Contact value of the request with its expires set to `seconds`.
std::string contact_with_expires(const sip::Contact& c, uint32_t seconds) {
  std::string value(c.raw);
  if (!c.expires.empty()) {
    size_t at = static_cast<size_t>(c.expires.data() - c.raw.data());
    return value.replace(at, c.expires.size(), std::to_string(seconds));
  }
  return value + ";expires=" + std::to_string(seconds);
}

}  // namespace

std::optional<registrar::BorderRegister> EdgeProxy::border_register_of(const sip::Message& request,
                                                                       const net::Flow& source) const {
  auto to = request.to();
  auto call_id = request.call_id();
  auto cseq = request.cseq();
  auto contacts = request.contacts();
  if (!to.ok() || !call_id.ok() || !cseq.ok() || !contacts.ok()) return std::nullopt;
  auto aor = registrar::canonical_aor((*to)->uri);
  if (!aor.ok()) return std::nullopt;
  registrar::BorderRegister reg{.aor = std::move(*aor),
                                .call_id = std::string(*call_id),
                                .cseq = cseq->number,
                                .star = false,
                                .contacts = {},
                                .source = source,
                                .nat_udp = false};
  for (const auto& c : *contacts) {
    if (c.star) {
      reg.star = true;
      continue;
    }
    reg.contacts.push_back(registrar::BorderContact{contact_key(c), contact_expires(c, request, false)});
  }
  if (source.transport == net::Transport::kUdp) {
    auto nat = nat::detect_nat(shared_.config.nat_tests, request, source.remote, source.transport);
    reg.nat_udp = nat.ok() && !nat->empty();
  }
  return reg;
}

bool EdgeProxy::border_answer_register(Call& call, TransactionId txn, const sip::Message& request) {
  BorderServices& border = *shared_.border;
  auto reg = border_register_of(request, call.source);
  if (!reg) return false;  // malformed: the upstream gives the verdict
  auto decision = border.bindings.decide(*reg, now());
  if (decision.kind == registrar::BorderDecision::Kind::kForward) {
    call.border_upstream_expires = decision.upstream_expires;
    border.metrics.refreshes_forwarded.inc();
    if (decision.upstream_expires) border.metrics.expires_restored.inc();
    return false;
  }
  border.metrics.refreshes_answered.inc();
  if (decision.rebinding) {
    border.metrics.rebindings.inc();
    shared_.log->info("border: {} moved to {} (NAT rebinding), answered here", reg->aor,
                      call.source.remote.to_string());
  }
  std::string extra;
  auto contacts = request.contacts();
  for (const auto& c : *contacts) {
    auto key = contact_key(c);
    for (const auto& g : decision.grants) {
      if (g.key == key) extra.append("Contact: ").append(contact_with_expires(c, g.expires)).append("\r\n");
    }
  }
  respond(txn, request, 200, extra);
  return true;
}

std::string EdgeProxy::border_learn(const Call& call, const sip::Message& response) {
  const sip::Message* request = table_.request(call.server);
  if (request == nullptr) return strip_top_via(response);
  auto reg = border_register_of(*request, call.source);
  auto asked = request->contacts();
  auto listed = response.contacts();
  if (!reg || !asked.ok() || !listed.ok()) return strip_top_via(response);

  std::vector<registrar::LocalGrant> granted;
  for (const auto& a : *asked) {
    if (a.star) continue;
    for (const auto& l : *listed) {
      if (l.star || !same_contact(a, l)) continue;
      if (auto e = contact_expires(l, response, true)) granted.push_back(registrar::LocalGrant{contact_key(a), *e});
      break;
    }
  }
  auto told = shared_.border->bindings.learn(*reg, call.client_flow, granted, now());

  // The client hears its lease where it differs from what the upstream granted.
  sip::Editor ed(response);
  remove_top_via(response, ed);
  set_contact_expires(response, ed, [&](const sip::Contact& l) -> std::optional<uint32_t> {
    for (const auto& a : *asked) {
      if (a.star || !same_contact(a, l)) continue;
      auto key = contact_key(a);
      auto t = std::find_if(told.begin(), told.end(), [&](const registrar::LocalGrant& x) { return x.key == key; });
      auto g =
          std::find_if(granted.begin(), granted.end(), [&](const registrar::LocalGrant& x) { return x.key == key; });
      if (t != told.end() && g != granted.end() && t->expires != g->expires) return t->expires;
      return std::nullopt;
    }
    return std::nullopt;
  });
  return ed.serialize();
}

net::Flow EdgeProxy::follow_rebinding(const net::Flow& named) const {
  if (shared_.border == nullptr) return named;
  auto current = shared_.border->bindings.current_flow(named);
  if (!current || *current == named) return named;
  shared_.border->metrics.rerouted.inc();
  return *current;
}

}  // namespace pinhole::proxy
