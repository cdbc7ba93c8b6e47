#include "ua/ua_config.h"

#include <string>

#include "sip/charset.h"
#include "sip/uri.h"

namespace pinhole::ua {
namespace {

bool starts_with_nocase(std::string_view text, std::string_view prefix) {
  return text.size() >= prefix.size() && sip::iequals(text.substr(0, prefix.size()), prefix);
}

}  // namespace

Result<OutboundProxy> parse_outbound_proxy(std::string_view spec) {
  OutboundProxy out;
  if (starts_with_nocase(spec, "tcp:") || starts_with_nocase(spec, "udp:") || starts_with_nocase(spec, "tls:")) {
    out.transport = starts_with_nocase(spec, "tcp:")   ? net::Transport::kTcp
                    : starts_with_nocase(spec, "tls:") ? net::Transport::kTls
                                                       : net::Transport::kUdp;
    std::string_view hostport = spec.substr(4);
    if (hostport.empty()) return bad_request("outbound proxy: host missing");
    out.uri = "sip:" + std::string(hostport) + ";transport=" + std::string(net::transport_name(out.transport));
  } else if (starts_with_nocase(spec, "sip:") || starts_with_nocase(spec, "sips:")) {
    out.uri = std::string(spec);
  } else {
    return bad_request("outbound proxy: expected tcp:HOST:PORT, udp:HOST:PORT, tls:HOST:PORT or a sip:/sips: URI");
  }
  auto uri = sip::parse_uri(out.uri);
  if (!uri || !uri->is_sip() || uri->host.empty()) {
    return bad_request("outbound proxy: not a valid sip URI / host:port");
  }
  if (uri->has_user) return bad_request("outbound proxy: a user part makes no sense here");
  const bool sips = uri->scheme == sip::UriScheme::kSips;
  std::string_view t = uri->transport();
  if (!t.empty()) {
    auto transport = net::parse_transport(t);
    if (!transport || (*transport != net::Transport::kUdp && *transport != net::Transport::kTcp &&
                       *transport != net::Transport::kTls)) {
      return bad_request("outbound proxy: only udp, tcp and tls transports are supported");
    }
    // RFC 3261 §26.2.2 / RFC 3263 §4.1: over sips "tcp" means TLS over TCP, and UDP is refused.
    if (sips && *transport == net::Transport::kUdp) return bad_request("outbound proxy: sips over udp");
    out.transport = sips ? net::Transport::kTls : *transport;
  } else {
    out.transport = sips ? net::Transport::kTls : net::Transport::kUdp;
  }
  return out;
}

std::string_view media_mode_name(MediaMode mode) {
  switch (mode) {
    case MediaMode::kNone:
      return "none";
    case MediaMode::kEcho:
      return "echo";
    case MediaMode::kTone:
      return "tone";
  }
  return "?";
}

}  // namespace pinhole::ua
