// YAML config loading and validation (config.h; docs/config.md is the reference).
//
// The loader walks the YAML tree once, key by key, and stops at the first problem: the error
// names the file, line, column and key path. Inside, a problem is a thrown Failure (one place
// catches it, with yaml-cpp's own exceptions); nothing escapes parse_config. Every mapping is
// checked against the keys the schema allows, so a typo is an error, never a setting silently
// left at its default.
#include "app/config.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <optional>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "common/startup_error.h"
#include "nat/flow_token.h"
#include "sip/host.h"
#include "sip/uri.h"

namespace pinhole::app {
namespace {

constexpr uint16_t kConfigErrorStatus = 500;  // start-up error, never a SIP answer
// The worker index lives in the top 8 bits of a connection id (transport_layer.h).
constexpr uint64_t kMaxWorkers = 256;
// A SIP message bigger than this is an attack, not signalling; it also bounds the buffer a
// stream connection may grow while framing.
constexpr uint64_t kMaxMessageSizeLimit = uint64_t{16} * 1024 * 1024;

// Error::what is a string_view; config errors are built at run time, so their text is kept for
// the process's life (common/startup_error.h).
Error config_error(std::string text) { return startup_error(kConfigErrorStatus, std::move(text)); }

// A problem found while loading; caught in parse_config.
struct Failure {
  std::string text;
};

// A YAML value and where it is: its key path ("listen[1].port") and the position to report.
struct Value {
  YAML::Node node;
  YAML::Mark key_mark;  // the key's position (a sequence item's own); null values have no good one
  std::string path;

  // Where to point at the value: its own position, or its key's when the value is empty (yaml-cpp
  // places an empty value at the start of the next line).
  YAML::Mark mark() const {
    if (node.IsDefined() && !node.IsNull() && !node.Mark().is_null()) return node.Mark();
    return key_mark;
  }
};

std::string child_path(std::string_view parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  std::string p(parent);
  p += '.';
  p += key;
  return p;
}

std::string item_path(std::string_view parent, size_t index) {
  return std::string(parent) + "[" + std::to_string(index) + "]";
}

std::string in_quotes(std::string_view text) { return "'" + std::string(text) + "'"; }

template <typename Names>
std::string join(const Names& names) {
  std::string out;
  for (std::string_view n : names) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

// Levenshtein distance, for "did you mean" on unknown keys (keys are short).
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0u : 1u)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

bool is_decimal(std::string_view text) {
  return !text.empty() && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

std::optional<uint8_t> hex_digit(char c) {
  if (c >= '0' && c <= '9') return static_cast<uint8_t>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<uint8_t>(c - 'a' + 10);
  if (c >= 'A' && c <= 'F') return static_cast<uint8_t>(c - 'A' + 10);
  return std::nullopt;
}

std::string lower(std::string_view text) {
  std::string out(text);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}

class Loader;

// The entries of a mapping, checked against the keys the schema allows: an unknown key (a typo)
// or a repeated one (yaml-cpp keeps both silently) is an error.
class Map {
 public:
  Map(const Loader& loader, const Value& value, std::initializer_list<std::string_view> allowed);

  std::optional<Value> get(std::string_view key) const {
    for (const Value& v : entries_)
      if (v.path == child_path(path_, key)) return v;
    return std::nullopt;
  }
  Value require(std::string_view key, std::string_view why = {}) const;
  const std::vector<Value>& entries() const { return entries_; }
  const std::string& path() const { return path_; }

 private:
  const Loader& loader_;
  std::string path_;
  YAML::Mark mark_;
  std::vector<Value> entries_;
};

class Loader {
 public:
  Loader(std::string_view source, const ParseOptions& options) : source_(source), options_(options) {}

  [[noreturn]] void fail_at(const YAML::Mark& mark, std::string_view path, std::string_view message) const {
    std::string text(source_);
    if (!mark.is_null()) text += ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
    text += ": ";
    if (!path.empty()) {
      text += path;
      text += ": ";
    }
    text += message;
    throw Failure{std::move(text)};
  }
  [[noreturn]] void fail(const Value& v, std::string_view message) const { fail_at(v.mark(), v.path, message); }

  Config load(const YAML::Node& document);

  // --- value readers: each checks the YAML type and the range, and fails with the key's path.

  std::string scalar(const Value& v) const {
    if (!v.node.IsDefined() || v.node.IsNull()) fail(v, "has no value (remove the key to use the default)");
    if (v.node.IsSequence()) fail(v, "expected a single value, found a list");
    if (v.node.IsMap()) fail(v, "expected a single value, found a mapping");
    return v.node.Scalar();
  }

  std::string non_empty(const Value& v) const {
    std::string s = scalar(v);
    if (s.empty()) fail(v, "must not be empty");
    return s;
  }

  uint64_t integer(const Value& v, uint64_t min, uint64_t max) const {
    std::string s = scalar(v);
    if (!is_decimal(s)) fail(v, in_quotes(s) + " is not a whole decimal number");
    uint64_t n = 0;
    for (char c : s) {
      n = n * 10 + static_cast<uint64_t>(c - '0');
      if (n > max) break;  // also stops before overflow: max < 2^64 / 10 in this file
    }
    if (n < min || n > max) fail(v, s + " is out of range (" + std::to_string(min) + "-" + std::to_string(max) + ")");
    return n;
  }

  uint16_t port(const Value& v) const {
    std::string s = scalar(v);
    if (!is_decimal(s) || s.size() > 5 || std::stoul(s) > 65535) fail(v, in_quotes(s) + " is not a port (0-65535)");
    return static_cast<uint16_t>(std::stoul(s));
  }

  bool boolean(const Value& v) const {
    std::string s = scalar(v);
    // YAML 1.2 core booleans only: yes/no/on/off (YAML 1.1) are refused rather than guessed.
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
    fail(v, in_quotes(s) + " is not a boolean (true or false)");
  }

  // "500ms", "4s", "2m", "1h". A bare number is refused: timers are usually thought of in
  // milliseconds and timeouts in seconds, and a wrong guess is off by a factor of 1000.
  std::chrono::milliseconds duration(const Value& v) const {
    std::string s = scalar(v);
    size_t digits = 0;
    while (digits < s.size() && s[digits] >= '0' && s[digits] <= '9') ++digits;
    std::string_view unit = std::string_view(s).substr(digits);
    if (digits == 0) fail(v, in_quotes(s) + " is not a duration (a whole number and a unit: 500ms, 4s, 2m, 1h)");
    if (unit.empty())
      fail(v, in_quotes(s) + " has no unit: write " + s + "ms or " + s +
                  "s (a bare number is refused: milliseconds or seconds would be a guess)");
    uint64_t scale = 0;
    if (unit.starts_with('.')) fail(v, in_quotes(s) + ": whole numbers only; use a smaller unit (1.5s is 1500ms)");
    if (unit == "ms") {
      scale = 1;
    } else if (unit == "s") {
      scale = 1000;
    } else if (unit == "m") {
      scale = uint64_t{60} * 1000;
    } else if (unit == "h") {
      scale = uint64_t{3600} * 1000;
    } else {
      fail(v, in_quotes(s) + " has an unknown unit " + in_quotes(unit) + " (ms, s, m, h; whole numbers only)");
    }
    if (digits > 9) fail(v, in_quotes(s) + " is too long a duration");
    uint64_t n = std::stoull(s.substr(0, digits));
    return std::chrono::milliseconds(static_cast<int64_t>(n * scale));
  }

  // A duration the setting keeps in whole seconds, within [min, max] seconds.
  uint32_t seconds(const Value& v, uint32_t min, uint32_t max) const {
    auto ms = duration(v).count();
    if (ms % 1000 != 0) fail(v, "must be a whole number of seconds (" + scalar(v) + " is not)");
    auto s = static_cast<uint64_t>(ms / 1000);
    if (s < min) fail(v, "must be at least " + std::to_string(min) + "s");
    if (s > max) fail(v, "must be at most " + std::to_string(max) + "s");
    return static_cast<uint32_t>(s);
  }

  // Picks the value among fixed names; the error lists them.
  template <typename T>
  T choice(const Value& v, std::initializer_list<std::pair<std::string_view, T>> options) const {
    std::string s = scalar(v);
    std::string names;
    for (const auto& [name, value] : options) {
      if (s == name) return value;
      if (!names.empty()) names += ", ";
      names += name;
    }
    fail(v, in_quotes(s) + " is not one of: " + names);
  }

  std::vector<Value> sequence(const Value& v) const {
    if (!v.node.IsDefined() || v.node.IsNull()) fail(v, "has no value (write [] for an empty list)");
    if (!v.node.IsSequence()) fail(v, "expected a list");
    std::vector<Value> items;
    size_t i = 0;
    for (const YAML::Node& item : v.node) {
      items.push_back(Value{item, item.Mark().is_null() ? v.mark() : item.Mark(), item_path(v.path, i)});
      ++i;
    }
    return items;
  }

  net::Address address(const Value& v) const {
    std::string s = non_empty(v);
    auto a = net::Address::parse(s);
    if (!a) fail(v, in_quotes(s) + " is not an IPv4 or IPv6 address");
    return *a;
  }

  std::vector<net::Address> addresses(const Value& v) const {
    std::vector<net::Address> out;
    for (const Value& item : sequence(v)) out.push_back(address(item));
    return out;
  }

  // A file path, resolved against base_dir, that must be a readable regular file (unless file
  // checks are off). Returned resolved, so the daemon's working directory never matters later.
  std::string readable_file(const Value& v) const {
    std::filesystem::path path(non_empty(v));
    if (path.is_relative() && !options_.base_dir.empty()) path = std::filesystem::path(options_.base_dir) / path;
    std::string resolved = path.lexically_normal().string();
    if (!options_.check_files) return resolved;
    std::error_code ec;
    auto status = std::filesystem::status(path, ec);
    if (ec || !std::filesystem::exists(status)) fail(v, resolved + ": no such file");
    if (!std::filesystem::is_regular_file(status)) fail(v, resolved + ": not a regular file");
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(v, resolved + ": cannot be read: " + std::strerror(errno));
    return resolved;
  }

  std::string read_file(const Value& v, const std::string& resolved) const {
    std::ifstream in(resolved, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) fail(v, resolved + ": read error");
    return bytes;
  }

 private:
  void load_listeners(const Map& top, Config& config);
  void load_tls(const Map& top, Config& config) const;
  void load_limits(const Map& top, Config& config) const;
  void load_timers(const Map& top, Config& config) const;
  void load_upstream(const Map& top, Config& config) const;
  void load_nat(const Map& top, Config& config) const;
  void load_flow_tokens(const Map& top, Config& config) const;
  void load_domains(const Map& top, Config& config) const;
  void load_proxy(const Map& top, Config& config) const;
  void load_registrar(const Map& top, Config& config) const;
  void load_border(const Map& top, Config& config) const;
  void load_auth(const Map& top, Config& config) const;
  void load_keepalive(const Map& top, Config& config) const;
  void load_media(const Map& top, Config& config) const;
  void load_builtin_relay(const Value& section, BuiltinRelaySettings& builtin) const;
  void load_remote_relays(const Value& list, MediaBackendSettings& media) const;
  void load_store(const Map& top, Config& config) const;
  void load_admin(const Map& top, Config& config) const;
  void load_log(const Map& top, Config& config) const;
  std::string secret(const Map& map, std::string_view text_key, std::string_view file_key, bool required) const;

  std::string_view source_;
  const ParseOptions& options_;
  std::vector<Value> listener_items_;  // listen[i], to point at a listener from later checks
};

Map::Map(const Loader& loader, const Value& value, std::initializer_list<std::string_view> allowed)
    : loader_(loader), path_(value.path), mark_(value.key_mark) {
  if (!value.node.IsDefined() || value.node.IsNull())
    loader.fail(value, "has no value (expected a mapping with keys: " + join(allowed) + ")");
  if (!value.node.IsMap()) loader.fail(value, "expected a mapping with keys: " + join(allowed));
  for (const auto& kv : value.node) {
    Value key{kv.first, kv.first.Mark(), path_};
    if (!kv.first.IsScalar()) loader.fail(key, "a key must be a plain name");
    const std::string& name = kv.first.Scalar();
    Value entry{kv.second, kv.first.Mark(), child_path(path_, name)};
    if (std::find(allowed.begin(), allowed.end(), name) == allowed.end()) {
      std::string message = "unknown key";
      std::string_view best;
      size_t best_distance = 3;  // suggest only close matches
      for (std::string_view a : allowed) {
        size_t d = edit_distance(name, a);
        if (d < best_distance) best_distance = d, best = a;
      }
      if (!best.empty()) message += "; did you mean " + in_quotes(best) + "?";
      message += " (valid here: " + join(allowed) + ")";
      loader.fail_at(entry.key_mark, entry.path, message);
    }
    for (const Value& seen : entries_)
      if (seen.path == entry.path)
        loader.fail_at(entry.key_mark, entry.path,
                       "repeated key (first at line " + std::to_string(seen.key_mark.line + 1) + ")");
    entries_.push_back(std::move(entry));
  }
}

Value Map::require(std::string_view key, std::string_view why) const {
  if (auto v = get(key)) return *v;
  std::string message = "required key missing";
  if (!why.empty()) message += std::string(" (") + std::string(why) + ")";
  loader_.fail_at(mark_, child_path(path_, key), message);
}

// --- listen -------------------------------------------------------------------------------------

// "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 address; the host an IP literal or a
// DNS name. IPv6 is kept in brackets, as Via and Record-Route write it.
void parse_advertise(const Loader& loader, const Value& v, transport::ListenerSpec& spec) {
  std::string s = loader.non_empty(v);
  std::string_view host;
  uint16_t port = 0;
  std::string bracketed;
  if (s.front() != '[' && std::count(s.begin(), s.end(), ':') > 1) {
    bracketed = "[" + s + "]";  // bare IPv6: no port possible
    host = bracketed;
  } else {
    auto hp = sip::parse_host_port(s);
    if (!hp) loader.fail(v, in_quotes(s) + " is not a host or host:port (IPv6 in brackets with a port)");
    if (!hp->port_text.empty() && hp->port == 0) loader.fail(v, in_quotes(s) + ": the advertised port must be 1-65535");
    host = hp->host;
    port = hp->port;
  }
  auto kind = sip::classify_host(host);
  if (!kind) loader.fail(v, in_quotes(s) + " is not a valid host name or IP address");
  if (*kind == sip::HostKind::kName) {
    spec.advertised_host = lower(host);
  } else {
    auto a = net::Address::parse(host);
    if (!a) loader.fail(v, in_quotes(s) + " is not a valid IP address");
    std::string text = a->to_string();
    spec.advertised_host = a->is_v6() ? "[" + text + "]" : text;
  }
  spec.advertised_port = port;
}

// Two listeners that would bind the same socket (TCP and TLS both bind a TCP one).
std::string listener_conflict(const transport::ListenerSpec& spec, const transport::ListenerSpec& other,
                              size_t other_index) {
  std::string self = std::string(net::transport_name(spec.transport)) + " " + spec.bind.to_string();
  std::string other_path = "listen[" + std::to_string(other_index) + "]";
  if (other.transport == spec.transport) return "duplicate listener: " + self + " is also " + other_path;
  return self + " conflicts with " + other_path + " (" + std::string(net::transport_name(other.transport)) +
         " on the same address and port: both bind a TCP socket)";
}

bool is_wildcard(const net::Address& a) { return a == net::Address() || a == net::Address::v6({}); }

void Loader::load_listeners(const Map& top, Config& config) {
  Value list = top.require("listen", "at least one listener");
  auto items = sequence(list);
  if (items.empty()) fail(list, "at least one listener is required");
  for (const Value& item : items) {
    Map m(*this, item, {"transport", "address", "port", "advertise"});
    transport::ListenerSpec spec;
    Value t = m.require("transport", "udp, tcp or tls");
    std::string name = scalar(t);
    if (name == "ws" || name == "wss")
      fail(t, name + " listeners are not supported yet (RFC 7118 WebSocket is planned): use udp, tcp or tls");
    spec.transport = choice<net::Transport>(
        t, {{"udp", net::Transport::kUdp}, {"tcp", net::Transport::kTcp}, {"tls", net::Transport::kTls}});
    Value address = m.require("address", "the IP address to bind, e.g. 0.0.0.0 or 192.0.2.10");
    spec.bind.address = this->address(address);
    spec.bind.port = net::default_sip_port(spec.transport);
    if (auto p = m.get("port")) spec.bind.port = port(*p);
    if (auto a = m.get("advertise")) {
      parse_advertise(*this, *a, spec);
    } else if (is_wildcard(spec.bind.address)) {
      fail(address, spec.bind.address.to_string() +
                        " binds every interface, so there is no single address to write in Via, Record-Route and "
                        "Path: set advertise (the address peers reach this socket at)");
    }
    // TCP and TLS listeners both bind a TCP socket: the same address and port is a conflict.
    for (size_t i = 0; i < config.transport.listeners.size(); ++i) {
      const auto& other = config.transport.listeners[i];
      bool same_socket_kind = net::is_stream(other.transport) == net::is_stream(spec.transport);
      if (spec.bind.port != 0 && same_socket_kind && other.bind == spec.bind) {
        fail_at(item.key_mark, item.path, listener_conflict(spec, other, i));
      }
    }
    config.transport.listeners.push_back(std::move(spec));
    listener_items_.push_back(item);
  }
}

// --- tls ----------------------------------------------------------------------------------------

void Loader::load_tls(const Map& top, Config& config) const {
  auto& tls = config.transport.tls;
  auto first_tls = std::find_if(config.transport.listeners.begin(), config.transport.listeners.end(),
                                [](const auto& l) { return l.transport == net::Transport::kTls; });
  bool has_tls_listener = first_tls != config.transport.listeners.end();
  auto section = top.get("tls");
  if (!section) {
    if (has_tls_listener) {
      const Value& listener = listener_items_[static_cast<size_t>(first_tls - config.transport.listeners.begin())];
      fail_at(listener.key_mark, "tls",
              "required key missing: " + listener.path + " is a tls listener, which needs certificate and private_key");
    }
    return;
  }
  Map m(*this, *section, {"certificate", "private_key", "ca", "verify_upstream", "require_client_certificate"});
  if (has_tls_listener) {
    m.require("certificate", "a tls listener needs a certificate");
    m.require("private_key", "a tls listener needs a private key");
  }
  if (auto v = m.get("certificate")) tls.certificate_file = readable_file(*v);
  if (auto v = m.get("private_key")) tls.private_key_file = readable_file(*v);
  if (!tls.certificate_file.empty() && tls.private_key_file.empty())
    m.require("private_key", "a certificate needs its private key");
  if (tls.certificate_file.empty() && !tls.private_key_file.empty())
    m.require("certificate", "a private key needs its certificate");
  if (auto v = m.get("ca")) tls.ca_file = readable_file(*v);
  if (auto v = m.get("verify_upstream")) tls.verify_upstream = boolean(*v);
  if (auto v = m.get("require_client_certificate")) {
    tls.require_client_certificate = boolean(*v);
    if (tls.require_client_certificate && tls.ca_file.empty())
      fail(*v, "needs tls.ca, the CA certificates client certificates are verified against");
  }
}

// --- limits, timers -------------------------------------------------------------------------------

void Loader::load_limits(const Map& top, Config& config) const {
  auto section = top.get("limits");
  if (!section) return;
  Map m(*this, *section,
        {"max_connections", "max_connections_per_ip", "idle_timeout", "connect_timeout", "max_write_queue_bytes",
         "max_message_size", "max_header_lines", "max_vias"});
  auto& limits = config.transport.limits;
  auto& parse = config.transport.parse_limits;
  constexpr uint64_t kU32 = std::numeric_limits<uint32_t>::max();
  constexpr uint64_t kU16 = std::numeric_limits<uint16_t>::max();
  if (auto v = m.get("max_connections")) limits.max_connections = static_cast<uint32_t>(integer(*v, 1, kU32));
  if (auto v = m.get("max_connections_per_ip")) limits.max_per_source_ip = static_cast<uint32_t>(integer(*v, 1, kU32));
  if (auto v = m.get("idle_timeout")) limits.idle_timeout = std::chrono::seconds(seconds(*v, 1, 7 * 24 * 3600));
  if (auto v = m.get("connect_timeout")) limits.connect_timeout = std::chrono::seconds(seconds(*v, 1, 3600));
  if (auto v = m.get("max_write_queue_bytes"))
    limits.max_write_queue_bytes = static_cast<uint32_t>(integer(*v, 1024, kU32));
  if (auto v = m.get("max_message_size"))
    parse.max_message_size = static_cast<uint32_t>(integer(*v, 1, kMaxMessageSizeLimit));
  if (auto v = m.get("max_header_lines")) parse.max_headers = static_cast<uint16_t>(integer(*v, 1, kU16));
  if (auto v = m.get("max_vias")) parse.max_vias = static_cast<uint16_t>(integer(*v, 1, kU16));
}

void Loader::load_timers(const Map& top, Config& config) const {
  auto section = top.get("timers");
  if (!section) return;
  Map m(*this, *section, {"t1", "t2", "t4"});
  auto& timers = config.timers;
  // An hour bounds every timer far beyond sense and keeps 64*T1 and friends far from overflow.
  auto timer = [&](const Value& v) {
    auto d = duration(v);
    if (d.count() <= 0) fail(v, "must be greater than 0");
    if (d > std::chrono::hours(1)) fail(v, "must be at most 1h");
    return d;
  };
  std::optional<Value> t1 = m.get("t1"), t2 = m.get("t2");
  if (t1) timers.t1 = timer(*t1);
  if (t2) timers.t2 = timer(*t2);
  if (auto v = m.get("t4")) timers.t4 = timer(*v);
  if (timers.t2 < timers.t1) {
    // RFC 3261 §17.1.2.2: T2 caps the retransmit interval that starts at T1.
    const Value& at = t2 ? *t2 : *t1;
    fail(at, "t2 (" + std::to_string(timers.t2.count()) + "ms) must be at least t1 (" +
                 std::to_string(timers.t1.count()) + "ms)");
  }
}

// --- upstream, nat, flow tokens, domains, proxy -----------------------------------------------------

void Loader::load_upstream(const Map& top, Config& config) const {
  Map m(*this, top.require("upstream", "the SIP core the edge forwards to"), {"uri", "trusted_sources"});
  Value uri_value = m.require("uri", "e.g. sip:core.example.com;transport=tcp");
  std::string text = non_empty(uri_value);
  auto uri = sip::parse_uri(text);
  if (!uri) fail(uri_value, in_quotes(text) + " is not a valid URI");
  if (!uri->is_sip()) fail(uri_value, in_quotes(text) + ": must be a sip: or sips: URI");
  if (!uri->headers.empty()) fail(uri_value, in_quotes(text) + ": URI headers (?...) make no sense here");
  bool sips = uri->scheme == sip::UriScheme::kSips;
  // The transport the edge will use when the URI says so (RFC 3263 §4.1): a transport parameter,
  // sips (TLS), or an IP address without one (UDP). A name without one is left to NAPTR/SRV.
  std::optional<net::Transport> transport;
  if (std::string_view t = uri->transport(); !t.empty()) {
    auto parsed = net::parse_transport(t);
    if (!parsed || net::is_websocket(*parsed))
      fail(uri_value, in_quotes(text) + ": transport " + in_quotes(t) + " is not one of udp, tcp, tls");
    if (sips && *parsed == net::Transport::kUdp) fail(uri_value, in_quotes(text) + ": sips needs TLS, not udp");
    transport = sips ? net::Transport::kTls : *parsed;  // sips;transport=tcp is TLS (RFC 5630)
  } else if (sips) {
    transport = net::Transport::kTls;
  } else if (uri->host_kind != sip::HostKind::kName) {
    transport = net::Transport::kUdp;
  }
  // The transport layer sends from a listener of the same transport (its Via names it).
  if (transport && std::none_of(config.transport.listeners.begin(), config.transport.listeners.end(),
                                [&](const auto& l) { return l.transport == *transport; }))
    fail(uri_value, in_quotes(text) + " is reached over " + std::string(net::transport_name(*transport)) + ", but no " +
                        std::string(net::transport_name(*transport)) +
                        " listener is configured (requests leave from a listener of their transport)");
  config.proxy.upstream.uri = text;
  if (auto v = m.get("trusted_sources")) config.proxy.upstream.trusted_sources = addresses(*v);
}

void Loader::load_nat(const Map& top, Config& config) const {
  auto section = top.get("nat");
  if (!section) return;
  Map m(*this, *section, {"force_rport", "tests", "alias", "trusted_peers"});
  auto& proxy = config.proxy;
  if (auto v = m.get("force_rport"))
    proxy.force_rport = choice<proxy::ForceRport>(*v, {{"always", proxy::ForceRport::kAlways},
                                                       {"nat-detected", proxy::ForceRport::kNatDetected},
                                                       {"never", proxy::ForceRport::kNever}});
  if (auto v = m.get("tests")) {
    nat::NatTestSet tests;
    for (const Value& item : sequence(*v)) {
      std::string name = non_empty(item);
      auto test = nat::nat_test_from_name(name);
      if (!test) fail(item, in_quotes(name) + ": " + std::string(nat::kUnknownNatTest.what));
      tests.add(*test);
    }
    proxy.nat_tests = tests;
  }
  if (auto v = m.get("alias"))
    proxy.alias = choice<proxy::AliasPolicy>(*v, {{"never", proxy::AliasPolicy::kNever},
                                                  {"tls-and-trusted", proxy::AliasPolicy::kTlsAndTrusted},
                                                  {"trusted", proxy::AliasPolicy::kTrusted},
                                                  {"always", proxy::AliasPolicy::kAlways}});
  if (auto v = m.get("trusted_peers")) proxy.trusted_peers = addresses(*v);
}

// A key as "hex:..." / "base64:..." text under `text_key`, or the raw bytes of the file under
// `file_key`; at most one of the two. Returns the raw key ("" when neither and not required).
std::string Loader::secret(const Map& map, std::string_view text_key, std::string_view file_key, bool required) const {
  auto text = map.get(text_key);
  auto file = map.get(file_key);
  if (text && file)
    fail_at(file->key_mark, file->path, "set " + std::string(text_key) + " or " + std::string(file_key) + ", not both");
  std::string key;
  const Value* at = nullptr;
  if (text) {
    at = &*text;
    std::string s = non_empty(*text);
    if (s.starts_with("hex:")) {
      std::string_view digits = std::string_view(s).substr(4);
      if (digits.size() % 2 != 0) fail(*text, "hex: needs an even number of hex digits");
      for (size_t i = 0; i < digits.size(); i += 2) {
        auto hi = hex_digit(digits[i]), lo = hex_digit(digits[i + 1]);
        if (!hi || !lo) fail(*text, "hex: may hold hex digits only (0-9, a-f)");
        key.push_back(static_cast<char>((*hi << 4) | *lo));
      }
    } else if (s.starts_with("base64:")) {
      // absl::string_view is its own type in Debian's Abseil build: convert explicitly.
      if (!absl::Base64Unescape(absl::string_view(s.data() + 7, s.size() - 7), &key))
        fail(*text, "base64: is not valid base64");
    } else {
      // A plain string would be a password someone typed, not a random key.
      fail(*text, "must start with hex: or base64: (e.g. \"hex:$(openssl rand -hex 32)\")");
    }
  } else if (file) {
    at = &*file;
    std::string path = readable_file(*file);
    if (!options_.check_files) return {};  // not read: see ParseOptions::check_files
    // The file's bytes as they are, trailing newline included: `head -c 32 /dev/urandom` writes
    // binary keys that may end in 0x0a, and every edge sharing the file reads the same key.
    key = read_file(*file, path);
  } else {
    if (required)
      map.require(text_key, "or " + std::string(file_key) +
                                ": at least 16 random bytes, e.g. secret: \"hex:$(openssl rand -hex 32)\"");
    return {};
  }
  if (key.size() < nat::kMinKeySize)
    fail(*at, "the key is " + std::to_string(key.size()) + " bytes; at least " + std::to_string(nat::kMinKeySize) +
                  " are required (32 recommended)");
  return key;
}

void Loader::load_flow_tokens(const Map& top, Config& config) const {
  Map m(*this, top.require("flow_tokens", "the secret that signs RFC 5626 flow tokens"),
        {"secret", "secret_file", "previous_secret", "previous_secret_file"});
  config.proxy.flow_token_key = secret(m, "secret", "secret_file", true);
  config.proxy.flow_token_previous_key = secret(m, "previous_secret", "previous_secret_file", false);
}

void Loader::load_domains(const Map& top, Config& config) const {
  auto section = top.get("domains");
  if (!section) return;
  for (const Value& item : sequence(*section)) {
    std::string name = non_empty(item);
    auto kind = sip::classify_host(name);
    if (!kind) fail(item, in_quotes(name) + " is not a host name or IP address");
    // Host names compare case-insensitively (RFC 3261 §19.1.4): stored lower case.
    config.proxy.local_domains.push_back(lower(name));
  }
}

void Loader::load_proxy(const Map& top, Config& config) const {
  auto section = top.get("proxy");
  if (!section) return;
  Map m(*this, *section, {"timer_c", "default_registration", "dialog_flow", "server_name"});
  auto& proxy = config.proxy;
  constexpr uint32_t kDay = 24 * 3600;
  if (auto v = m.get("timer_c")) proxy.timer_c_seconds = seconds(*v, 1, kDay);
  if (auto v = m.get("default_registration")) proxy.default_registration_seconds = seconds(*v, 1, 7 * kDay);
  if (auto v = m.get("dialog_flow")) proxy.dialog_flow_seconds = seconds(*v, 1, 7 * kDay);
  if (auto v = m.get("server_name")) {
    std::string name = non_empty(*v);
    // Written into Server/User-Agent headers: no control characters (header injection).
    if (std::any_of(name.begin(), name.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; }))
      fail(*v, "must not contain control characters");
    if (name.size() > 128) fail(*v, "must be at most 128 characters");
    proxy.server_name = name;
  }
}

// --- registrar, auth, store ---------------------------------------------------------------------

void Loader::load_registrar(const Map& top, Config& config) const {
  auto section = top.get("registrar");
  if (!section) return;
  Map m(*this, *section,
        {"domains", "min_expires", "max_expires", "default_expires", "nat_udp_lease", "max_contacts",
         "max_bindings_per_aor", "outbound_flow_timer"});
  auto& r = config.registrar.config;
  config.registrar.enabled = true;
  Value domains = m.require("domains", "the SIP domains whose users register here, e.g. [example.com]");
  for (const Value& item : sequence(domains)) {
    std::string name = non_empty(item);
    if (!sip::classify_host(name)) fail(item, in_quotes(name) + " is not a host name or IP address");
    r.domains.push_back(lower(name));
    // A registrar domain is one of ours: requests naming it are not forwarded elsewhere.
    if (std::find(config.proxy.local_domains.begin(), config.proxy.local_domains.end(), lower(name)) ==
        config.proxy.local_domains.end())
      config.proxy.local_domains.push_back(lower(name));
  }
  if (r.domains.empty()) fail(domains, "must name at least one domain");
  constexpr uint32_t kYear = 365 * 24 * 3600;
  if (auto v = m.get("min_expires")) r.min_expires = seconds(*v, 1, kYear);
  if (auto v = m.get("max_expires")) r.max_expires = seconds(*v, 1, kYear);
  if (auto v = m.get("default_expires")) r.default_expires = seconds(*v, 1, kYear);
  if (r.min_expires > r.max_expires)
    fail(*m.get("min_expires"), "is above max_expires (" + std::to_string(r.max_expires) + "s)");
  if (r.default_expires < r.min_expires || r.default_expires > r.max_expires)
    fail(m.get("default_expires") ? *m.get("default_expires") : *section,
         "default_expires (" + std::to_string(r.default_expires) + "s) must lie within min_expires and max_expires");
  if (auto v = m.get("nat_udp_lease")) r.nat_udp_lease = seconds(*v, 0, kYear);
  if (r.nat_udp_lease != 0 && r.nat_udp_lease < r.min_expires)
    fail(*m.get("nat_udp_lease"), "is below min_expires (" + std::to_string(r.min_expires) +
                                      "s): a NATed phone could never be granted it (0s turns short leases off)");
  if (auto v = m.get("max_contacts")) r.max_contacts = static_cast<uint32_t>(integer(*v, 1, 1000));
  if (auto v = m.get("max_bindings_per_aor")) r.max_bindings_per_aor = static_cast<uint32_t>(integer(*v, 1, 1000));
  if (auto v = m.get("outbound_flow_timer")) r.outbound_flow_timer = seconds(*v, 0, 3600);
}

void Loader::load_border(const Map& top, Config& config) const {
  auto section = top.get("border");
  if (!section) return;
  Map m(*this, *section, {"nat_udp_lease", "refresh_margin", "absorb_rebinding", "max_bindings"});
  if (config.registrar.enabled)
    fail(*section, "border mode relays REGISTERs to an upstream registrar; it cannot be combined with `registrar:`");
  if (config.proxy.upstream.uri.empty()) fail(*section, "border mode needs the upstream registrar (`upstream:`)");
  auto& b = config.border.config;
  config.border.enabled = true;
  constexpr uint32_t kDay = 24 * 3600;
  if (auto v = m.get("nat_udp_lease")) b.lease = std::chrono::seconds(seconds(*v, 0, kDay));
  if (auto v = m.get("refresh_margin")) b.refresh_margin = std::chrono::seconds(seconds(*v, 1, 3600));
  if (auto v = m.get("absorb_rebinding")) b.absorb_rebinding = boolean(*v);
  if (auto v = m.get("max_bindings")) b.max_bindings = static_cast<size_t>(integer(*v, 1, 100'000'000));
}

void Loader::load_keepalive(const Map& top, Config& config) const {
  auto section = top.get("keepalive");
  if (!section) return;
  Map m(*this, *section,
        {"enabled", "udp_interval", "stream_interval", "pong_timeout", "max_misses", "udp_method", "from",
         "extra_headers", "learn_interval", "min_interval", "stun_fingerprint", "targets", "remove_bindings_on_dead"});
  auto& k = config.proxy.keepalive;
  auto& e = k.engine;
  if (auto v = m.get("enabled")) k.enabled = boolean(*v);
  if (auto v = m.get("udp_interval")) e.udp_interval = std::chrono::seconds(seconds(*v, 1, 65535));
  if (auto v = m.get("stream_interval")) e.stream_interval = std::chrono::seconds(seconds(*v, 1, 65535));
  if (auto v = m.get("pong_timeout")) e.pong_timeout = std::chrono::seconds(seconds(*v, 1, 3600));
  if (auto v = m.get("max_misses")) e.max_misses = static_cast<uint32_t>(integer(*v, 1, 255));
  if (auto v = m.get("udp_method")) {
    e.udp_method = choice<nat::KeepaliveMethod>(*v, {{"options", nat::KeepaliveMethod::kOptions},
                                                     {"notify", nat::KeepaliveMethod::kNotify},
                                                     {"stun", nat::KeepaliveMethod::kStun}});
  }
  if (auto v = m.get("from")) e.from_uri = non_empty(*v);
  if (auto v = m.get("extra_headers")) {
    for (const Value& item : sequence(*v)) e.extra_headers.push_back(non_empty(item));
  }
  if (auto v = m.get("learn_interval")) e.learn_interval = boolean(*v);
  if (auto v = m.get("min_interval")) e.min_interval = std::chrono::seconds(seconds(*v, 1, 65535));
  if (auto v = m.get("stun_fingerprint")) e.stun_fingerprint = boolean(*v);
  if (auto v = m.get("targets")) k.only_natted = choice<bool>(*v, {{"nat-detected", true}, {"all", false}});
  if (auto v = m.get("remove_bindings_on_dead")) k.remove_bindings_on_dead = boolean(*v);
  if (Status st = nat::validate_keepalive_config(e); !st.ok()) fail(*section, std::string(st.error().what));
}

// --- media ----------------------------------------------------------------------------------------

// "30000-39999": RTP/RTCP pairs (even, odd) inside the range; at least one pair must fit.
void parse_port_range(const Loader& loader, const Value& v, BuiltinRelaySettings& builtin) {
  std::string s = loader.non_empty(v);
  size_t dash = s.find('-');
  std::string lo = s.substr(0, dash), hi = dash == std::string::npos ? "" : s.substr(dash + 1);
  if (dash == std::string::npos || !is_decimal(lo) || !is_decimal(hi) || lo.size() > 5 || hi.size() > 5)
    loader.fail(v, in_quotes(s) + " is not a port range MIN-MAX (e.g. 30000-39999)");
  unsigned long min = std::stoul(lo), max = std::stoul(hi);
  if (min < 1024 || max > 65535) loader.fail(v, in_quotes(s) + ": ports must lie within 1024-65535");
  if (min > max) loader.fail(v, in_quotes(s) + ": MIN is above MAX");
  unsigned long first_even = min + (min % 2);
  if (first_even + 1 > max)
    loader.fail(v, in_quotes(s) + " holds no RTP/RTCP pair (an even port and the odd one above)");
  builtin.min_port = static_cast<uint16_t>(min);
  builtin.max_port = static_cast<uint16_t>(max);
}

void Loader::load_builtin_relay(const Value& section, BuiltinRelaySettings& builtin) const {
  Map m(*this, section,
        {"interface", "advertised", "ports", "workers", "learning_window", "inactivity_timeout", "hold_timeout",
         "delete_delay", "fast_path"});
  Value interface = m.require("interface", "the address relay sockets bind to, e.g. 203.0.113.20");
  builtin.interface = address(interface);
  if (auto v = m.get("advertised")) {
    builtin.advertised = address(*v);
    if (is_wildcard(*builtin.advertised)) fail(*v, "must be the address phones send media to, not a wildcard");
  }
  if (is_wildcard(builtin.interface) && !builtin.advertised)
    fail(interface, builtin.interface.to_string() +
                        " binds every interface, so there is no single address to write into SDPs: set advertised");
  if (auto v = m.get("ports")) parse_port_range(*this, *v, builtin);
  if (auto v = m.get("workers")) builtin.workers = static_cast<uint32_t>(integer(*v, 1, 64));
  if (auto v = m.get("learning_window")) {
    builtin.learning_window = duration(*v);
    if (builtin.learning_window > std::chrono::seconds(60)) fail(*v, "must be at most 60s");
  }
  constexpr uint32_t kDay = 24 * 3600;
  if (auto v = m.get("inactivity_timeout")) builtin.inactivity_timeout = std::chrono::seconds(seconds(*v, 1, kDay));
  if (auto v = m.get("hold_timeout")) builtin.hold_timeout = std::chrono::seconds(seconds(*v, 1, 7 * kDay));
  if (auto v = m.get("delete_delay")) builtin.delete_delay = std::chrono::seconds(seconds(*v, 0, 3600));
  if (auto v = m.get("fast_path")) builtin.fast_path = boolean(*v);
}

void Loader::load_remote_relays(const Value& list, MediaBackendSettings& media) const {
  uint64_t total_weight = 0;
  for (const Value& item : sequence(list)) {
    Map m(*this, item, {"address", "weight"});
    RemoteRelaySettings relay;
    Value address = m.require("address", "udp:IP:PORT, e.g. udp:127.0.0.1:2223");
    relay.address = non_empty(address);
    std::string_view text = relay.address;
    if (text.starts_with("tcp:"))
      fail(address, in_quotes(text) + ": ng over TCP is not supported yet (use udp:IP:PORT)");
    if (!text.starts_with("udp:")) fail(address, in_quotes(text) + " is not udp:IP:PORT (e.g. udp:127.0.0.1:2223)");
    auto endpoint = net::Endpoint::parse(text.substr(4));
    if (!endpoint) fail(address, in_quotes(text) + " is not udp:IP:PORT: a numeric IP (IPv6 in brackets) and a port");
    if (endpoint->port == 0) fail(address, in_quotes(text) + ": the port must be 1-65535");
    if (is_wildcard(endpoint->address)) fail(address, in_quotes(text) + ": a wildcard address names no relay");
    relay.endpoint = *endpoint;
    for (size_t i = 0; i < media.relays.size(); ++i)
      if (media.relays[i].endpoint == relay.endpoint)
        fail(address, in_quotes(text) + " is also media.relays[" + std::to_string(i) + "]");
    if (auto v = m.get("weight")) relay.weight = static_cast<uint32_t>(integer(*v, 0, 1000));
    total_weight += relay.weight;
    media.relays.push_back(std::move(relay));
  }
  if (media.relays.empty()) fail(list, "lists no relay (remove the key to use the built-in relay)");
  if (total_weight == 0) fail(list, "every relay has weight 0: no relay would take a call");
}

void Loader::load_media(const Map& top, Config& config) const {
  auto section = top.get("media");
  if (!section) return;
  Map m(*this, *section,
        {"enabled", "relay", "flags", "continue_without_relay", "builtin", "relays", "ng_timeout", "ng_tries",
         "relay_down_time", "call_idle_timeout", "max_outstanding"});
  auto& settings = config.proxy.media;
  auto& media = config.media;
  if (auto v = m.get("enabled")) settings.enabled = boolean(*v);
  if (auto v = m.get("relay"))
    settings.mode = choice<proxy::MediaRelayMode>(*v, {{"auto", proxy::MediaRelayMode::kAuto},
                                                       {"always", proxy::MediaRelayMode::kAlways},
                                                       {"never", proxy::MediaRelayMode::kNever}});
  if (auto v = m.get("continue_without_relay")) settings.continue_without_relay = boolean(*v);
  if (auto v = m.get("flags")) {
    for (const Value& item : sequence(*v)) {
      std::string flag = non_empty(item);
      // Sent in every ng request; bencode carries any bytes, but a control character is a typo.
      if (std::any_of(flag.begin(), flag.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }))
        fail(item, "must not contain control characters");
      settings.flags.push_back(flag);
    }
  }
  auto builtin = m.get("builtin");
  auto relays = m.get("relays");
  if (builtin && relays)
    fail_at(builtin->key_mark, builtin->path,
            "the built-in relay is used only when `relays` is empty: configure one or the other");
  if (relays) load_remote_relays(*relays, media);
  if (builtin) load_builtin_relay(*builtin, media.builtin);
  if (settings.enabled && !relays && !builtin)
    fail(*section, "media is enabled but names no relay: add `builtin:` (with its interface) or `relays:`");
  if (auto v = m.get("ng_timeout")) {
    media.ng_timeout = duration(*v);
    if (media.ng_timeout < std::chrono::milliseconds(10) || media.ng_timeout > std::chrono::seconds(60))
      fail(*v, "must lie within 10ms-60s");
  }
  if (auto v = m.get("ng_tries")) media.ng_tries = static_cast<uint32_t>(integer(*v, 1, 10));
  if (auto v = m.get("relay_down_time")) media.relay_down_time = std::chrono::seconds(seconds(*v, 1, 3600));
  if (auto v = m.get("call_idle_timeout"))
    media.call_idle_timeout = std::chrono::seconds(seconds(*v, 60, 7 * 24 * 3600));
  if (auto v = m.get("max_outstanding")) media.max_outstanding = static_cast<uint32_t>(integer(*v, 1, 1'000'000));
  for (const char* key : {"ng_timeout", "ng_tries", "relay_down_time", "call_idle_timeout", "max_outstanding"})
    if (auto v = m.get(key); v && !relays) fail_at(v->key_mark, v->path, "applies to remote `relays:` only");
}

void Loader::load_auth(const Map& top, Config& config) const {
  auto& auth = config.auth;
  auth.enabled = config.registrar.enabled;
  auto section = top.get("auth");
  if (!section) return;
  Map m(*this, *section, {"enabled", "secret", "secret_file", "nonce_lifetime", "algorithms", "register", "requests"});
  if (auto v = m.get("enabled")) auth.enabled = boolean(*v);
  if (auth.enabled && !config.registrar.enabled)
    fail(*section, "digest authentication needs the registrar (a `registrar:` section): users live in its store");
  auth.secret = secret(m, "secret", "secret_file", false);
  if (auto v = m.get("nonce_lifetime")) auth.nonce_lifetime = std::chrono::seconds(seconds(*v, 10, 24 * 3600));
  if (auto v = m.get("algorithms")) {
    auth.sha256 = auth.md5 = false;
    for (const Value& item : sequence(*v)) {
      bool* offered = choice<bool*>(item, {{"SHA-256", &auth.sha256}, {"MD5", &auth.md5}});
      if (*offered) fail(item, "is listed twice");
      *offered = true;
    }
    if (!auth.sha256 && !auth.md5) fail(*v, "must list SHA-256, MD5 or both");
  }
  if (auto v = m.get("register")) auth.register_requests = boolean(*v);
  if (auto v = m.get("requests")) auth.other_requests = boolean(*v);
}

void Loader::load_store(const Map& top, Config& config) const {
  auto v = top.get("store");
  if (!v) {
    if (config.registrar.enabled) config.store = "sqlite:///var/lib/pinhole/pinhole.db";
    return;
  }
  std::string url = non_empty(*v);
  if (url == "memory:" || url.starts_with("redis://")) {
    config.store = url;  // a Redis URL is checked in full when the store opens it
  } else if (url.starts_with("sqlite://")) {
    std::filesystem::path path(url.substr(9));
    if (path.empty()) fail(*v, in_quotes(url) + ": names no file (sqlite:///var/lib/pinhole/pinhole.db)");
    if (path.is_relative() && !options_.base_dir.empty()) path = std::filesystem::path(options_.base_dir) / path;
    // Always absolute from here on: the daemon's working directory must not matter.
    config.store = "sqlite://" + std::filesystem::absolute(path).lexically_normal().string();
  } else {
    fail(*v, in_quotes(url) + " is not a store URL (memory:, sqlite:///path/to/file.db, redis://host:port/db)");
  }
}

// --- admin, log -----------------------------------------------------------------------------------

void Loader::load_admin(const Map& top, Config& config) const {
  auto section = top.get("admin");
  if (!section) return;
  Map m(*this, *section, {"enabled", "listen"});
  if (auto v = m.get("enabled")) config.admin.enabled = boolean(*v);
  if (auto v = m.get("listen")) {
    std::string s = non_empty(*v);
    auto e = net::Endpoint::parse(s);
    if (!e) fail(*v, in_quotes(s) + " is not an address:port (IPv6 as [addr]:port)");
    config.admin.listen = *e;
    if (config.admin.enabled && e->port != 0)
      for (size_t i = 0; i < config.transport.listeners.size(); ++i) {
        const auto& l = config.transport.listeners[i];
        if (net::is_stream(l.transport) && l.bind == *e)
          fail(*v, s + " is also listen[" + std::to_string(i) + "] (both bind a TCP socket)");
      }
  }
}

constexpr std::array<std::string_view, 7> kLogLevels = {"trace", "debug", "info", "warn", "error", "critical", "off"};

void Loader::load_log(const Map& top, Config& config) const {
  auto section = top.get("log");
  if (!section) return;
  Map m(*this, *section, {"level", "components"});
  auto level = [&](const Value& v) {
    std::string s = scalar(v);
    if (std::find(kLogLevels.begin(), kLogLevels.end(), s) == kLogLevels.end())
      fail(v, in_quotes(s) + " is not a log level (" + join(kLogLevels) + ")");
    return s;
  };
  if (auto v = m.get("level")) config.log.level = level(*v);
  if (auto v = m.get("components")) {
    Map components(*this, *v, {"transport", "txn", "proxy", "nat", "registrar", "store", "admin", "config"});
    for (const Value& c : components.entries())
      config.log.components[c.path.substr(components.path().size() + 1)] = level(c);
  }
}

uint32_t default_workers() {
  uint64_t n = std::thread::hardware_concurrency();  // 0 when unknown
  return static_cast<uint32_t>(std::clamp<uint64_t>(n, 1, kMaxWorkers));
}

Config Loader::load(const YAML::Node& document) {
  Value root{document, YAML::Mark(), ""};
  root.key_mark.line = 0;
  root.key_mark.column = 0;
  if (!document.IsDefined() || document.IsNull())
    fail_at(root.key_mark, "", "the config is empty (listen, upstream and flow_tokens are required)");
  if (!document.IsMap()) fail_at(root.mark(), "", "the config must be a mapping of keys (workers:, listen:...)");
  Map top(*this, root,
          {"workers", "listen", "tls", "limits", "timers", "upstream", "nat", "flow_tokens", "domains", "proxy",
           "registrar", "border", "auth", "keepalive", "media", "store", "node_id", "admin", "log"});
  Config config;
  config.transport.workers = default_workers();
  if (auto v = top.get("workers")) config.transport.workers = static_cast<uint32_t>(integer(*v, 1, kMaxWorkers));
  load_listeners(top, config);
  load_tls(top, config);
  load_limits(top, config);
  load_timers(top, config);
  load_domains(top, config);
  load_registrar(top, config);
  // Without a registrar there is nothing to do but forward to the core; with one, the core is
  // optional (calls to other domains then have nowhere to go and are refused).
  if (config.registrar.enabled && !top.get("upstream")) {
    config.proxy.upstream = {};
  } else {
    load_upstream(top, config);
  }
  load_border(top, config);
  load_nat(top, config);
  load_flow_tokens(top, config);
  load_proxy(top, config);
  load_auth(top, config);
  load_keepalive(top, config);
  load_media(top, config);
  load_store(top, config);
  if (auto v = top.get("node_id")) {
    config.node_id = non_empty(*v);
    if (config.node_id.size() > 64 || std::any_of(config.node_id.begin(), config.node_id.end(), [](char c) {
          return !std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.';
        }))
      fail(*v, "must be 1-64 characters of letters, digits, '-', '_' or '.'");
  } else {
    std::array<char, 256> host{};
    if (gethostname(host.data(), host.size() - 1) == 0) config.node_id = host.data();
    if (config.node_id.empty()) config.node_id = "pinhole";
  }
  load_admin(top, config);
  load_log(top, config);
  return config;
}

}  // namespace

Result<Config> parse_config(std::string_view yaml_text, std::string_view source_name, const ParseOptions& options) {
  try {
    std::vector<YAML::Node> documents = YAML::LoadAll(std::string(yaml_text));
    Loader loader(source_name, options);
    if (documents.size() > 1) {
      loader.fail_at(documents[1].Mark(), "", "more than one YAML document ('---'): the config is one document");
    }
    return loader.load(documents.empty() ? YAML::Node() : documents.front());
  } catch (const Failure& f) {
    return config_error(f.text);
  } catch (const YAML::Exception& e) {
    // Syntax errors: yaml-cpp's position and message ("end of map not found").
    std::string text(source_name);
    if (!e.mark.is_null()) text += ":" + std::to_string(e.mark.line + 1) + ":" + std::to_string(e.mark.column + 1);
    return config_error(text + ": YAML syntax: " + e.msg);
  } catch (const std::exception& e) {
    // Nothing here should throw anything else; if it does, it is still an error, not a crash.
    return config_error(std::string(source_name) + ": " + e.what());
  }
}

Result<Config> load_config_file(const std::string& path, const ParseOptions& options) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) return config_error(path + ": is a directory, not a config file");
  std::ifstream in(path, std::ios::binary);
  if (!in) return config_error(path + ": cannot open: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return config_error(path + ": read error");
  ParseOptions with_base = options;
  if (with_base.base_dir.empty()) {
    std::string dir = std::filesystem::path(path).parent_path().string();
    with_base.base_dir = dir.empty() ? "." : dir;
  }
  return parse_config(text.str(), path, with_base);
}

}  // namespace pinhole::app
