// Which URIs and Vias name this proxy (RFC 3261 §16.4: a Route whose URI is ours is removed; a
// Request-URI that is a value we put in Record-Route means the previous hop is a strict router).
// Built once from the bound listeners; immutable, so every worker reads it without locks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "net/address.h"
#include "sip/uri.h"
#include "sip/via.h"
#include "transport/transport_layer.h"

namespace pinhole::proxy {

class LocalIdentity {
 public:
  explicit LocalIdentity(const std::vector<transport::LocalSocket>& sockets);

  // The URI's host is one of our listener addresses (bound or advertised) and its port is that
  // listener's port (an absent port means the transport's default port).
  bool is_us(const sip::Uri& uri) const;
  // A sent-by naming one of our listeners: used for loop detection (§16.3 step 4).
  bool is_our_via(const sip::Via& via) const;

 private:
  struct Name {
    std::string host;  // lower case; IPv6 without brackets, compressed (RFC 5952)
    uint16_t port = 0;
  };
  bool matches(std::string_view host, uint16_t port, uint16_t default_port) const;
  std::vector<Name> names_;
};

// Canonical text of a host for comparison: lower case, IPv6 references unbracketed and in RFC 5952
// form so "[2001:DB8::1]" and "2001:db8:0::1" compare equal.
std::string canonical_host(std::string_view host);

}  // namespace pinhole::proxy
