#include "proxy/local_identity.h"

#include <algorithm>

#include "net/transport.h"

namespace pinhole::proxy {

std::string canonical_host(std::string_view host) {
  std::string_view inner = host;
  if (inner.size() >= 2 && inner.front() == '[' && inner.back() == ']') inner = inner.substr(1, inner.size() - 2);
  if (auto addr = net::Address::parse(inner)) return addr->to_string();
  std::string out(inner);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

LocalIdentity::LocalIdentity(const std::vector<transport::LocalSocket>& sockets) {
  for (const auto& s : sockets) {
    names_.push_back({canonical_host(s.bound.address.to_string()), s.bound.port});
    names_.push_back({canonical_host(s.advertised_host), s.advertised_port});
  }
}

bool LocalIdentity::matches(std::string_view host, uint16_t port, uint16_t default_port) const {
  std::string h = canonical_host(host);
  uint16_t p = port != 0 ? port : default_port;
  return std::any_of(names_.begin(), names_.end(), [&](const Name& n) { return n.host == h && n.port == p; });
}

bool LocalIdentity::is_us(const sip::Uri& uri) const {
  if (!uri.is_sip()) return false;
  net::Transport t = net::Transport::kUdp;
  if (uri.scheme == sip::UriScheme::kSips) t = net::Transport::kTls;
  if (auto parsed = net::parse_transport(uri.transport())) t = *parsed;
  return matches(uri.host, uri.port, net::default_sip_port(t));
}

bool LocalIdentity::is_our_via(const sip::Via& via) const {
  auto t = net::parse_transport(via.transport).value_or(net::Transport::kUdp);
  return matches(via.host, via.port, net::default_sip_port(t));
}

}  // namespace pinhole::proxy
