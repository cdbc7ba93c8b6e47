// The SIP transports the edge speaks (RFC 3261 UDP/TCP/TLS, RFC 7118 WebSocket), as one small
// enum shared by the flow tokens, the NAT tests and, later, the transport layer.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace pinhole::net {

// The values are written into flow tokens (src/nat/flow_token.h): append, never renumber.
enum class Transport : uint8_t { kUdp = 0, kTcp = 1, kTls = 2, kWs = 3, kWss = 4 };
inline constexpr uint8_t kTransportCount = 5;

// Lower-case name: "udp", "tcp", "tls", "ws", "wss".
std::string_view transport_name(Transport t);

// Reads a Via transport token or a URI transport parameter, case-insensitively ("UDP", "tls",
// "WSS"). nullopt for transports the edge does not speak (SCTP, DTLS-SCTP, extensions).
std::optional<Transport> parse_transport(std::string_view text);

// The port a sent-by or URI without one means (RFC 3261 §18.2.1/§19.1.2: 5060, and 5061 over
// TLS). WS and WSS follow TCP and TLS: RFC 7118 defines no SIP default of its own, and its
// clients do not put a reachable sent-by in Via anyway.
uint16_t default_sip_port(Transport t);

inline bool is_stream(Transport t) { return t != Transport::kUdp; }
inline bool is_websocket(Transport t) { return t == Transport::kWs || t == Transport::kWss; }
inline bool is_secure(Transport t) { return t == Transport::kTls || t == Transport::kWss; }

}  // namespace pinhole::net
