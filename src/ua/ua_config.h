// The UA's settings (what the `pinhole-ua` CLI and an application fill in) and the parsing of
// the outbound-proxy spec ("tcp:HOST:PORT", "udp:HOST:PORT", "tls:HOST:PORT" or a SIP/SIPS URI).
//
// Threads: plain values; build them on any thread and hand a copy to the UserAgent.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/result.h"
#include "net/transport.h"

namespace pinhole::ua {

// Where every request goes: the outbound proxy as a SIP URI for the RFC 3263 resolver. It is
// resolved once and the first target is pinned for the registration's life, so that refreshes
// never hop to another cluster node (and lose the NAT mapping).
struct OutboundProxy {
  std::string uri;  // "sip:HOST[:PORT];transport=tcp", "sips:HOST[:PORT]"
  net::Transport transport = net::Transport::kUdp;
};

// "tcp:HOST[:PORT]" / "udp:HOST[:PORT]" / "tls:HOST[:PORT]" (HOST a name, an IPv4 address or a
// [bracketed] IPv6 address), "sip:HOST[:PORT][;transport=tcp|udp|tls]" or
// "sips:HOST[:PORT][;transport=tcp]" (TLS; RFC 3261 §26.2.2). WebSocket is not in this slice.
// Without a port TLS means 5061 (RFC 3263 §4.2). Errors (status 400) name what is wrong.
Result<OutboundProxy> parse_outbound_proxy(std::string_view spec);

// What a call's RTP endpoint does with media (rtp_endpoint.h): send back what it receives, send a
// 440 Hz tone, or send nothing but still count what arrives.
enum class MediaMode : uint8_t { kNone, kEcho, kTone };
std::string_view media_mode_name(MediaMode mode);

struct UaConfig {
  std::string aor;       // "sip:alice@example.com": To/From; its host is the registrar domain
  std::string user;      // digest user name; empty: the AOR's user part
  std::string password;  // digest password
  OutboundProxy proxy;
  uint32_t expires = 600;  // asked for in REGISTER
  std::string user_agent = "pinhole-ua";

  // RFC 5626 outbound: +sip.instance, reg-id, ;ob and Supported: path, outbound.
  bool outbound = true;
  std::string instance_id;  // "urn:uuid:..."; see instance_id.h for the persisted one
  uint32_t reg_id = 1;
  bool via_alias = true;  // RFC 5923 ;alias on TCP/TLS Via

  // Keepalive interval when the registrar sends no Flow-Timer (RFC 5626 §4.4.1 suggests 30 s on
  // UDP and 120 s on TCP; 0 picks those).
  std::chrono::milliseconds keepalive_interval{0};
  // How long a CRLF ping or STUN Binding may stay unanswered before the flow counts as dead
  // (RFC 5626 §4.4.1: 10 s).
  std::chrono::milliseconds pong_timeout{std::chrono::seconds(10)};

  // RFC 3261 Timer T1: the UA's txn::TransactionTable runs on it (UDP retransmissions from T1,
  // Timers B, F and H at 64*T1), and our 2xx to an INVITE is repeated from T1 until the ACK.
  std::chrono::milliseconds t1{500};
  // The UA's own waits (64*T1 by default): for the ACK of our 2xx (then BYE, RFC 3261
  // §13.3.1.4) and for the INVITE's final response after our CANCEL (RFC 3261 §9.1). The
  // transactions' timeouts are the table's 64*T1.
  std::chrono::milliseconds transaction_timeout{32000};
  // RFC 5626 §4.5 base time when every flow failed (base-time 30 s, max-time 1800 s); tests
  // shorten it.
  std::chrono::milliseconds backoff_base{std::chrono::seconds(30)};
  std::chrono::milliseconds backoff_base_after_success{std::chrono::seconds(90)};
  std::chrono::milliseconds backoff_max{std::chrono::seconds(1800)};
  // Register the AOR on start() (the `register` subcommand; `call` without --register only opens
  // the flow and places calls through it).
  bool register_binding = true;

  // Incoming calls: answered (180 at once, 200 after `answer_after`) when `auto_answer`, else
  // refused with 480 (the caller tries elsewhere).
  bool auto_answer = false;
  std::chrono::milliseconds answer_after{0};
  // Media of every call (incoming and, unless CallOptions says otherwise, outgoing).
  MediaMode media = MediaMode::kNone;
  // RTP ports to bind, inclusive; 0/0: any port the kernel picks.
  uint16_t rtp_port_min = 0;
  uint16_t rtp_port_max = 0;
  // kMediaStats every this often during a call (0: only when the call ends).
  std::chrono::milliseconds media_stats_interval{0};

  // TCP connect timeout (on TLS: connect and handshake).
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};

  // TLS flows: the proxy's certificate is checked against the system's CA store, or only against
  // the PEM certificates in `tls_ca_file`, and must carry the outbound proxy's host name (its IP
  // address when the proxy was given as an IP literal). `tls_insecure` skips both checks: for
  // labs with throwaway certificates, never for a real deployment.
  std::string tls_ca_file;
  bool tls_insecure = false;
};

}  // namespace pinhole::ua
