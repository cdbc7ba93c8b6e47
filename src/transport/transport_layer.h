// The SIP transport layer of the edge (RFC 3261 §18): the UDP sockets, the TCP and TLS listeners
// and connections of every worker, the connection table with its limits, and stream framing. It
// turns bytes into parsed messages tagged with the flow they arrived on, and sends bytes on a
// flow or to a destination.
//
// Threads (DESIGN.md §2). The layer runs `workers` event loops, one per thread. Each worker has
// its own UDP socket per UDP listener (SO_REUSEPORT, so the kernel spreads datagrams by 4-tuple
// hash and a peer's retransmissions land on the same worker), its own acceptor per stream
// listener (SO_REUSEPORT too) and owns the connections it accepted or opened: the worker index is
// in the top 8 bits of every connection id. A handler is called on its worker's thread only.
// send() may be called from any worker thread: a stream send for a connection of another worker
// is posted to that worker's loop (the bytes are copied); liveness is answered at once from a
// shared directory of open connections, so the caller can answer 430 Flow Failed synchronously.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "net/address.h"
#include "net/flow.h"
#include "net/transport.h"
#include "sip/message.h"

namespace boost::asio {
class io_context;
}

namespace pinhole::transport {

// A listening socket as configured (see docs/config.md `listen:`).
struct ListenerSpec {
  net::Transport transport = net::Transport::kUdp;  // udp, tcp or tls (ws/wss: not yet)
  net::Endpoint bind;                               // port 0: the kernel picks one (tests)
  // What the edge writes in Via, Record-Route and Path for this socket when it sits behind a
  // 1:1 NAT (a cloud VM): empty host / port 0 mean "the bound address / port".
  std::string advertised_host;
  uint16_t advertised_port = 0;
};

struct TlsSettings {
  std::string certificate_file;  // PEM chain, for TLS listeners (required when one exists)
  std::string private_key_file;  // PEM
  std::string ca_file;           // PEM bundle to verify upstream servers (and clients if asked)
  bool verify_upstream = true;   // verify the server certificate and name on connections we open
  bool require_client_certificate = false;
};

struct ConnectionLimits {
  uint32_t max_connections = 20000;  // per process; beyond it new connections are refused
  uint32_t max_per_source_ip = 100;  // accepted connections per remote IP
  // A connection nothing uses (no registration, no dialog: see keep_flow_until) is closed after
  // this long without traffic.
  std::chrono::seconds idle_timeout{120};
  std::chrono::seconds connect_timeout{5};
  uint32_t max_write_queue_bytes = 4 * 1024 * 1024;  // a peer that does not read is cut off
};

struct TransportConfig {
  std::vector<ListenerSpec> listeners;
  TlsSettings tls;
  ConnectionLimits limits;
  sip::ParseLimits parse_limits;
  uint32_t workers = 1;
  uint32_t udp_batch = 32;  // datagrams per recvmmsg/sendmmsg call
};

// One configured listener as bound, seen by every worker under the same id.
struct LocalSocket {
  uint32_t id = 0;  // index in TransportConfig::listeners; the flow's local_socket_id
  net::Transport transport = net::Transport::kUdp;
  net::Endpoint bound;           // the real address and port (after port 0 was resolved)
  std::string advertised_host;   // never empty: advertised or bound address (IPv6 in brackets)
  uint16_t advertised_port = 0;  // never 0
  // UDP with several workers: the kernel hands each source's datagrams to the worker
  // udp_steering_worker() names (transport/udp_steering.h). False: the kernel's own hash.
  bool steered = false;
};

// A parsed message and where it came from.
struct Inbound {
  sip::MessagePtr message;
  net::Flow flow;       // transport, local socket id, remote endpoint, connection id (0 for UDP)
  uint32_t worker = 0;  // the worker whose thread this is
};

// Why bytes could not be turned into a message, for counters ("drops by reason").
enum class DropReason : uint8_t {
  kParseError,       // datagram or stream message the parser refused (handler told: on_unparsable)
  kTooLarge,         // 413
  kFramingError,     // stream could not be framed: connection closed
  kConnectionLimit,  // connection refused: total or per-IP limit
  kTlsHandshake,     // handshake failed
  kWriteQueueFull,   // peer not reading: connection closed
};
std::string_view drop_reason_name(DropReason r);

// The proxy side. One handler per worker, called on that worker's thread.
class MessageHandler {
 public:
  virtual ~MessageHandler() = default;
  virtual void on_message(Inbound inbound) = 0;
  // Bytes that did not parse as a SIP message (`error.status`: 400, 413, 505...). For UDP the
  // handler may answer from the raw bytes (the proxy builds a best-effort error response when a
  // Via can be found) and counts the drop. For streams: when the stream cannot be framed any more
  // (oversize: 413, unreadable Content-Length: 400) `bytes` is the head of the refused frame (up
  // to 8 KiB) and this is called before the connection is closed, so a 413/400 can still be
  // written with send(flow) first (the connection closes once that write drains); a message that
  // was framed but does not parse leaves the connection open.
  virtual void on_unparsable(const net::Flow& flow, uint32_t worker, std::string_view bytes, const Error& error) = 0;
  // A stream connection closed (peer close, error, idle, limit). For connections we opened that
  // never connected, `connected` is false: requests queued on it failed (RFC 3261 §18.4).
  virtual void on_flow_closed(const net::Flow& flow, bool connected) = 0;
  // A UDP datagram whose first byte says it is not SIP (RFC 7983 §7: 0-3 is STUN, which RFC 5626
  // §4.4.2 clients send to the SIP port as keepalives): handed over raw, never to the SIP parser.
  // The default drops it.
  virtual void on_binary_datagram(const net::Flow& flow, uint32_t worker, std::string_view bytes) {
    (void)flow;
    (void)worker;
    (void)bytes;
  }
  // An RFC 5626 §3.5.1 CRLF pong arrived on a stream flow (the answer to a keepalive ping).
  virtual void on_pong(const net::Flow& flow) { (void)flow; }
};

struct TransportCounters {  // monotonic, summed over workers
  uint64_t udp_datagrams_in = 0, udp_datagrams_out = 0;
  uint64_t stream_messages_in = 0, stream_messages_out = 0;
  uint64_t pings_answered = 0, pongs_received = 0;
  uint64_t connections_accepted = 0, connections_opened = 0, connections_closed = 0;
  uint64_t drops[8] = {};  // by DropReason
  uint64_t send_failures = 0;
};

class TransportLayer {
 public:
  // Binds every listener (UDP: one SO_REUSEPORT socket per worker; streams: one acceptor per
  // worker), loads TLS material. Start-up errors (bind failure, unreadable cert) come back as
  // Error with a message naming the listener or file (the text lives for the process: see
  // transport/startup_error.h); WS/WSS listeners are refused with 501 for now. workers: 1..255
  // (the worker index is the top 8 bits of a connection id). Does not start threads.
  static Result<std::unique_ptr<TransportLayer>> create(const TransportConfig& config);
  virtual ~TransportLayer() = default;

  // Handlers, one per worker (index = worker), set before run(); they must outlive the layer's
  // threads.
  virtual void set_handler(uint32_t worker, MessageHandler* handler) = 0;
  // Starts one thread per worker; returns at once.
  virtual void run() = 0;
  // Stops the loops and joins the threads (closing every connection; on_flow_closed is called
  // for each, on its worker's thread). Idempotent. Not from a worker thread (it joins them).
  virtual void stop() = 0;

  virtual uint32_t worker_count() const = 0;
  virtual boost::asio::io_context& io(uint32_t worker) = 0;  // to post work and set timers
  // Runs `fn` on `worker`'s thread (soon, never inline).
  virtual void post(uint32_t worker, std::function<void()> fn) = 0;

  virtual const std::vector<LocalSocket>& local_sockets() const = 0;
  // The first listener of `transport` whose bound family is `family`, for the Via and
  // Record-Route of messages we send that way; nullptr when none.
  virtual const LocalSocket* socket_for(net::Transport transport, net::Family family) const = 0;

  // Sends on an existing flow: UDP from the flow's local socket to its remote endpoint; stream on
  // its connection (posted to the owning worker when that is another one). False when the
  // connection is no longer open (the proxy answers 430) or the send failed at once.
  virtual bool send(const net::Flow& flow, std::string_view bytes) = 0;

  // Sends to a destination: UDP from the listener socket of that family; TCP/TLS over an open
  // connection to that remote endpoint if this worker has one, else a new connection (the bytes
  // wait in its queue until connected; TLS verifies the server against `tls_server_name` when
  // verify_upstream). Returns the flow used. Errors: no listener for the transport/family (503),
  // connection limit (503). Async connect failure: on_flow_closed(flow, connected=false).
  // Any thread; best on `worker`'s own thread (elsewhere the new connection is set up by a task
  // posted to it). A new connection connects from the listener's address (ephemeral port).
  virtual Result<net::Flow> send_to(uint32_t worker, net::Transport transport, const net::Endpoint& destination,
                                    std::string_view bytes, std::string_view tls_server_name = {}) = 0;

  // The port of `worker`'s own UDP socket on UDP listener `socket_id`, from which send_to()
  // sends UDP: the Via of a request sent with send_to must name it, so the responses reach that
  // worker (the listener's port is shared by all workers). 0 when there is none.
  virtual uint16_t udp_client_port(uint32_t worker, uint32_t socket_id) const = 0;

  // The flow carries a registration or a dialog: do not close its connection for idleness
  // before `until` (monotonic). No effect on UDP flows or closed connections. Any thread.
  virtual void keep_flow_until(const net::Flow& flow, std::chrono::steady_clock::time_point until) = 0;
  // Whether the flow's connection is open (always true for UDP). Any thread.
  virtual bool flow_alive(const net::Flow& flow) const = 0;
  // Closes a stream flow (the keepalive engine found it dead); the handler hears on_flow_closed.
  // Any thread (posted to the owning worker). No-op for UDP and for a connection already gone.
  virtual void close_flow(const net::Flow& flow) = 0;

  virtual size_t open_connections() const = 0;
  virtual TransportCounters counters() const = 0;  // any thread; a consistent-enough snapshot
};

}  // namespace pinhole::transport
