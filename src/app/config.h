// The daemon's configuration: one immutable, validated snapshot built from a YAML file
// (docs/config.md is the reference; examples/ holds working files). Loading never throws: every
// problem comes back as an Error whose text names the file, line and column, and the key
// ("pinhole.yaml:12:5: listen[1].port: 70000 is not a port (0-65535)").
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "common/result.h"
#include "net/address.h"
#include "proxy/proxy_config.h"
#include "transport/transport_layer.h"
#include "txn/actions.h"

namespace pinhole::app {

struct AdminConfig {
  bool enabled = true;
  net::Endpoint listen;  // default 127.0.0.1:9060; serves /metrics and /health
};

struct LogConfig {
  std::string level = "info";                     // trace debug info warn error critical off
  std::map<std::string, std::string> components;  // per-component level ("transport": "debug")
};

struct Config {
  transport::TransportConfig transport;  // listen:, tls:, limits:, workers:
  txn::TimerConfig timers;               // timers: t1/t2/t4 (ms)
  proxy::ProxyConfig proxy;              // upstream:, nat:, flow_tokens:, domains:
  AdminConfig admin;
  LogConfig log;
};

// Parses and validates YAML text; `source_name` is used in error messages.
Result<Config> parse_config(std::string_view yaml_text, std::string_view source_name);
// Reads and parses a file (errors name the path).
Result<Config> load_config_file(const std::string& path);

}  // namespace pinhole::app
