#include "proxy/request_rewrite.h"

#include <span>

#include "sip/editor.h"

namespace pinhole::proxy {
namespace {

// The header field whose value contains `inner` (a view into the message).
const sip::HeaderField* field_containing(const sip::Message& msg, sip::HeaderKind kind, std::string_view inner) {
  for (const auto& h : msg.headers()) {
    if (h.kind != kind) continue;
    if (inner.data() >= h.value.data() && inner.data() + inner.size() <= h.value.data() + h.value.size()) return &h;
  }
  return nullptr;
}

std::string host_text(const transport::LocalSocket& socket) {
  return socket.advertised_host;  // the transport layer keeps IPv6 in brackets here
}

// Removes the Route values marked in `drop`. A field whose values all go is removed whole:
// removing its values one by one would make the separators between them overlap.
void remove_route_values(const sip::Message& request, std::span<const sip::NameAddr> routes,
                         const std::vector<bool>& drop, sip::Editor& ed) {
  for (const auto& h : request.headers()) {
    if (h.kind != sip::HeaderKind::kRoute) continue;
    size_t in_field = 0, dropped = 0;
    for (size_t i = 0; i < routes.size(); ++i) {
      if (field_containing(request, sip::HeaderKind::kRoute, routes[i].raw) != &h) continue;
      ++in_field;
      if (drop[i]) ++dropped;
    }
    if (dropped == 0) continue;
    if (dropped == in_field) {
      ed.remove_header(h);
      continue;
    }
    for (size_t i = 0; i < routes.size(); ++i) {
      if (drop[i] && field_containing(request, sip::HeaderKind::kRoute, routes[i].raw) == &h) {
        ed.remove_list_value(h, routes[i].raw);
      }
    }
  }
}

}  // namespace

RouteAnalysis analyse_routes(const sip::Message& request, const LocalIdentity& us) {
  RouteAnalysis out;
  auto routes = request.routes();
  if (routes.ok()) {
    for (const auto& r : *routes) {
      if (!us.is_us(r.uri)) break;
      ++out.our_routes;
      if (out.token.empty() && r.uri.has_user) {
        out.token = r.uri.user;
        out.token_ob = r.uri.has_param("ob");
      }
    }
  }
  // §16.4: a Request-URI we put in a Record-Route (it carries lr, and our address) means a strict
  // router sent this; the real Request-URI is the last Route value.
  const sip::Uri& ruri = request.request_uri();
  if (ruri.is_sip() && ruri.loose_route() && us.is_us(ruri) && routes.ok() && !routes->empty()) {
    out.strict_router = true;
    if (out.token.empty() && ruri.has_user) {
      out.token = ruri.user;
      out.token_ob = ruri.has_param("ob");
    }
  }
  return out;
}

ViaFix via_fix_for(const sip::Via& top, const net::Endpoint& source, bool force_rport) {
  ViaFix fix;
  fix.source = source;
  fix.rport = force_rport || (top.has_rport && top.rport_value.empty());
  std::string src = source.address.to_string();
  std::string host(top.host);
  if (host.size() >= 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  fix.received = fix.rport || canonical_host(host) != canonical_host(src);
  return fix;
}

std::string proxy_uri(const transport::LocalSocket& socket, std::string_view token, bool ob) {
  std::string out = "<sip:";
  if (!token.empty()) out.append(token).append("@");
  out.append(host_text(socket)).append(":").append(std::to_string(socket.advertised_port));
  if (socket.transport != net::Transport::kUdp) out.append(";transport=").append(net::transport_name(socket.transport));
  out.append(";lr");
  if (ob) out.append(";ob");
  out.append(">");
  return out;
}

std::string via_value(const transport::LocalSocket& socket, std::string_view branch, uint16_t port) {
  std::string out = "SIP/2.0/";
  for (char c : net::transport_name(socket.transport)) out.push_back(static_cast<char>(c - 'a' + 'A'));
  out.append(" ")
      .append(host_text(socket))
      .append(":")
      .append(std::to_string(port != 0 ? port : socket.advertised_port));
  out.append(";branch=").append(branch).append(";rport");
  return out;
}

std::string apply_rewrite(const sip::Message& request, const Rewrite& rw) {
  sip::Editor ed(request);
  auto top = request.top_via();
  if (top.ok()) {
    std::string ip = rw.via_fix.source.address.to_string();
    if (rw.via_fix.received) ed.set_via_param(**top, "received", ip);
    if (rw.via_fix.rport) ed.set_via_param(**top, "rport", std::to_string(rw.via_fix.source.port));
  }
  auto routes = request.routes();
  if (routes.ok()) {
    size_t n = std::min(rw.pop_routes, routes->size());
    std::vector<bool> drop(routes->size(), false);
    for (size_t i = 0; i < n; ++i) drop[i] = true;
    if (rw.strict_route && routes->size() > n) {
      ed.replace(request.request_uri().raw, routes->back().uri.raw);
      drop.back() = true;
    }
    remove_route_values(request, *routes, drop, ed);
  }
  if (!rw.request_uri.empty() && !rw.strict_route) ed.replace(request.request_uri().raw, rw.request_uri);
  // Header order matters only among fields of one name (RFC 3261 §7.3.1): first of all puts
  // these ahead of any Route the request still has, in the order given.
  for (const auto& route : rw.routes) ed.add_header_first("Route", route);
  if (rw.consume_credentials) {
    // RFC 3261 §22.3 lets the proxy that accepted credentials remove them; the callee has no use
    // for the caller's digest answer (and should not see it).
    for (const auto& h : request.headers())
      if (h.kind == sip::HeaderKind::kProxyAuthorization) ed.remove_header(h);
  }
  if (rw.decrement_max_forwards) {
    const auto* mf = request.header(sip::HeaderKind::kMaxForwards);
    auto value = request.max_forwards();
    if (mf && value.ok() && value->has_value() && **value > 0) {
      ed.replace_header_value(*mf, std::to_string(**value - 1));
    } else if (!mf) {
      ed.add_header_last("Max-Forwards", "70");
    }
  }
  if (rw.register_expires) {
    // Only the asked refreshes: a Contact removed (expires 0) in the same request stays removed.
    auto text = std::to_string(*rw.register_expires);
    set_contact_expires(request, ed, [&](const sip::Contact& c) -> std::optional<uint32_t> {
      if (c.expires.empty() || c.expires == "0") return std::nullopt;
      return rw.register_expires;
    });
    auto header = request.expires();
    if (const auto* h = request.header(sip::HeaderKind::kExpires); h && header.ok() && header->value_or(0) != 0) {
      ed.replace_header_value(*h, text);
    }
  }
  // Record-Route and Path go on top of any existing ones: before the first such field, or
  // first of all when there is none (§16.6 step 4 puts ours first).
  auto add_on_top = [&](sip::HeaderKind kind, std::string_view name, const std::string& value) {
    if (const auto* h = request.header(kind)) {
      ed.add_header_before(*h, name, value);
    } else {
      ed.add_header_first(name, value);
    }
  };
  // Insertions at one offset come out in the order they were made.
  for (const auto& rr : rw.record_routes) add_on_top(sip::HeaderKind::kRecordRoute, "Record-Route", rr);
  if (!rw.path.empty()) add_on_top(sip::HeaderKind::kPath, "Path", rw.path);
  ed.add_header_first("Via", rw.via);
  return ed.serialize();
}

void set_contact_expires(const sip::Message& msg, sip::Editor& ed,
                         const std::function<std::optional<uint32_t>(const sip::Contact&)>& pick) {
  auto contacts = msg.contacts();
  if (!contacts.ok()) return;
  for (const auto& c : *contacts) {
    if (c.star) continue;
    auto value = pick(c);
    if (!value) continue;
    if (!c.expires.empty()) {
      ed.replace(c.expires, std::to_string(*value));
    } else {
      ed.insert_at(msg.offset_of(c.raw) + c.raw.size(), ";expires=" + std::to_string(*value));
    }
  }
}

void remove_top_via(const sip::Message& response, sip::Editor& ed) {
  auto top = response.top_via();
  if (top.ok()) {
    if (const auto* h = field_containing(response, sip::HeaderKind::kVia, (*top)->raw))
      ed.remove_list_value(*h, (*top)->raw);
  }
}

std::string strip_top_via(const sip::Message& response) {
  sip::Editor ed(response);
  remove_top_via(response, ed);
  return ed.serialize();
}

bool has_to_tag(const sip::Message& msg) {
  auto to = msg.to();
  return to.ok() && *to && (*to)->has_tag;
}

}  // namespace pinhole::proxy
