// The changes the proxy makes to a request it forwards (RFC 3261 §16.6, RFC 3581, RFC 3327,
// RFC 5626), recorded as one Editor pass over the received bytes: everything the proxy does not
// touch goes out byte-exact.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/flow.h"
#include "proxy/local_identity.h"
#include "sip/editor.h"
#include "sip/message.h"
#include "transport/transport_layer.h"

namespace pinhole::proxy {

// What the leading Route values say about this proxy (§16.4).
struct RouteAnalysis {
  size_t our_routes = 0;       // leading Route values that name us (removed when forwarding)
  std::string_view token;      // flow token: user part of the first of ours that has one
  bool token_ob = false;       // that URI carried ;ob (RFC 5626 outbound)
  bool strict_router = false;  // the Request-URI is a value we record-routed: the previous hop
                               // is a strict router, the last Route is the real Request-URI
};
RouteAnalysis analyse_routes(const sip::Message& request, const LocalIdentity& us);

// RFC 3581 §4 and RFC 3261 §18.2.1: what to write on the client's top Via.
struct ViaFix {
  bool received = false;  // add/replace received=<source ip>
  bool rport = false;     // set rport=<source port> (asked for, or forced by policy)
  net::Endpoint source;
};
// received is needed when the sent-by host is not the source address, rport when the client
// asked (empty rport) or `force` says so.
ViaFix via_fix_for(const sip::Via& top, const net::Endpoint& source, bool force_rport);

// `<sip:TOKEN@host:port;transport=x;lr[;ob]>` for a listener (its advertised address).
std::string proxy_uri(const transport::LocalSocket& socket, std::string_view token, bool ob);
// Our Via value for a listener: "SIP/2.0/UDP host:port;branch=...;rport". `port` overrides the
// listener's advertised port (a worker's own UDP socket, see TransportLayer::udp_client_port).
std::string via_value(const transport::LocalSocket& socket, std::string_view branch, uint16_t port = 0);

struct Rewrite {
  ViaFix via_fix;
  std::string via;                         // our Via value, added on top
  size_t pop_routes = 0;                   // leading Route values to remove
  bool strict_route = false;               // Request-URI <- last Route value (removed)
  std::vector<std::string> record_routes;  // values added on top, first = topmost
  std::string path;                        // added on top of Path when not empty
  std::string request_uri;                 // replaces the Request-URI when not empty (a registered Contact)
  std::vector<std::string> routes;         // added before every remaining Route (a binding's Path, RFC 3327)
  bool consume_credentials = false;        // drop Proxy-Authorization: we checked it, nobody after us may
  bool decrement_max_forwards = true;      // missing Max-Forwards is added as 70
  // REGISTER (border mode): every non-zero expiry asked (Contact `expires`, Expires header)
  // becomes this: the interval the client originally asked for, when it adopted our short lease.
  std::optional<uint32_t> register_expires;
};
std::string apply_rewrite(const sip::Message& request, const Rewrite& rewrite);

// Sets the `expires` parameter (replaced, or added) of each Contact of `msg` for which `pick`
// returns a value (RFC 3261 §10.2.1.1: the parameter overrides the Expires header).
void set_contact_expires(const sip::Message& msg, sip::Editor& ed,
                         const std::function<std::optional<uint32_t>(const sip::Contact&)>& pick);

// The response as forwarded upstream of us: our top Via removed (§16.7 step 9).
std::string strip_top_via(const sip::Message& response);
// Whether the request is inside a dialog (its To carries a tag, RFC 3261 §12.2).
bool has_to_tag(const sip::Message& msg);
void remove_top_via(const sip::Message& response, sip::Editor& ed);  // the same as one edit among others

}  // namespace pinhole::proxy
