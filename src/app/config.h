// The daemon's configuration: one immutable, validated snapshot built from a YAML file
// (docs/config.md is the reference; examples/ holds working files). Loading never throws: every
// problem comes back as an Error whose text names the file, line and column, and the key
// ("pinhole.yaml:12:5: listen[1].port: 70000 is not a port (0-65535)").
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "net/address.h"
#include "proxy/proxy_config.h"
#include "registrar/border_bindings.h"
#include "registrar/registrar_config.h"
#include "transport/transport_layer.h"
#include "txn/actions.h"

namespace pinhole::app {

struct AdminConfig {
  bool enabled = true;
  // Serves /metrics and /health; loopback by default: the admin API has no authentication.
  net::Endpoint listen{net::Address::v4(0x7f000001), 9060};
};

struct LogConfig {
  std::string level = "info";                     // trace debug info warn error critical off
  std::map<std::string, std::string> components;  // per-component level ("transport": "debug")
};

// Registrar mode (`registrar:`): pinhole answers REGISTER for its domains itself and routes
// requests for their users to the registered contacts.
struct RegistrarSettings {
  bool enabled = false;  // a `registrar:` section is present
  registrar::RegistrarConfig config;
};

// Border mode (`border:`): pinhole is the edge in front of an upstream registrar (Kamailio...),
// relays REGISTERs to it and learns the bindings from its answers (registrar/border_bindings.h).
struct BorderSettings {
  bool enabled = false;  // a `border:` section is present
  registrar::BorderConfig config;
};

// Digest authentication (`auth:`) of the users the registrar serves (RFC 3261 §22, RFC 8760).
struct AuthSettings {
  bool enabled = false;  // default: on whenever the registrar is
  // The key that signs nonces. Default: derived from flow_tokens.secret, so the nodes of a cluster
  // (which share that secret) accept each other's nonces with no extra key to distribute.
  std::string secret;
  std::chrono::seconds nonce_lifetime{300};
  // Offered in challenges, in this order of preference (RFC 8760 §2.4: SHA-256 first, MD5 for
  // the many deployed phones that know only MD5).
  bool sha256 = true;
  bool md5 = true;
  bool register_requests = true;  // REGISTER must authenticate (401)
  bool other_requests = true;     // out-of-dialog requests from clients must authenticate (407)
};

// `media:` beyond the policy the proxy reads (Config.proxy.media): which relay anchors the media.
// The built-in relay runs inside the daemon; remote relays (pinhole-media, rtpengine) are reached
// over the ng protocol. app/media_runtime.h builds one or the other from this.
struct BuiltinRelaySettings {
  net::Address interface;                  // bound, and written into SDPs unless `advertised` is set
  std::optional<net::Address> advertised;  // the public address of a 1:1 NAT in front of it
  uint16_t min_port = 30000;               // RTP/RTCP pairs within [min_port, max_port]
  uint16_t max_port = 39999;
  uint32_t workers = 1;  // forwarding threads
  std::chrono::milliseconds learning_window{3000};
  std::chrono::seconds inactivity_timeout{60};
  std::chrono::seconds hold_timeout{3600};
  std::chrono::seconds delete_delay{30};
  // Latched streams forwarded by the kernel's eBPF fast path (media/fast_path.h) when the
  // daemon may load it; the relay falls back to user space with a log line otherwise.
  bool fast_path = true;
};

struct RemoteRelaySettings {
  std::string address;     // as written: "udp:127.0.0.1:2223"
  net::Endpoint endpoint;  // parsed (numeric IP and port)
  uint32_t weight = 1;     // share of new calls; 0 drains
};

struct MediaBackendSettings {
  BuiltinRelaySettings builtin;             // used when `relays` is empty
  std::vector<RemoteRelaySettings> relays;  // remote ng relays
  std::chrono::milliseconds ng_timeout{1000};
  uint32_t ng_tries = 2;
  std::chrono::seconds relay_down_time{10};      // a timed-out relay's rest before it is pinged
  std::chrono::seconds call_idle_timeout{7200};  // a call's relay pin without requests
  uint32_t max_outstanding = 10000;              // ng requests in flight before 503
};

struct Config {
  transport::TransportConfig transport;  // listen:, tls:, limits:, workers:
  txn::TimerConfig timers;               // timers: t1/t2/t4 (ms)
  proxy::ProxyConfig proxy;              // upstream:, nat:, flow_tokens:, domains:
  RegistrarSettings registrar;
  BorderSettings border;
  AuthSettings auth;
  // Where bindings and users live: "memory:", "sqlite:///path.db" (relative paths resolved like
  // other files) or "redis://host:port/db". Default: SQLite under /var/lib/pinhole with the
  // registrar, memory without it.
  std::string store = "memory:";
  // This node's name in a cluster: written into each binding so other nodes know who holds its
  // flow. Default: the host name.
  std::string node_id;
  AdminConfig admin;
  LogConfig log;
  // `media:`: the proxy's policy is in proxy.media; this says which relay.
  MediaBackendSettings media;
};

struct ParseOptions {
  // Relative paths in the config (tls files, flow_tokens.secret_file) are taken from here; empty:
  // the current directory. load_config_file uses the config file's directory when this is empty,
  // so a config and the files it names move together whatever the daemon's working directory.
  std::string base_dir;
  // Check that the files the config names exist and are readable, and read secret_file. Off
  // only to check a config's syntax away from the machine it is for (tests, CI of a config
  // repository): the Config is then not fit to run (a secret_file key is left empty).
  bool check_files = true;
};

// Parses and validates YAML text; `source_name` is used in error messages. Error::status is
// 500 (a start-up error, never a SIP answer). Error::what is kept for the life of the process
// (an Error holds a string_view; config errors are few, so each distinct text is stored once).
// Any thread.
Result<Config> parse_config(std::string_view yaml_text, std::string_view source_name, const ParseOptions& options = {});
// Reads and parses a file (errors name the path).
Result<Config> load_config_file(const std::string& path, const ParseOptions& options = {});

}  // namespace pinhole::app
