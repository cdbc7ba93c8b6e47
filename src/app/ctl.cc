// `pinhole ctl`: the HTTP client (Boost.Beast), the output of each command, and the CLI11 wiring
// (see ctl.h for the contract).
#include "app/ctl.h"

#include <termios.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>
#include <vector>

#include "app/config.h"
#include "transport/asio.h"
#include "transport/socket_util.h"

namespace pinhole::app {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using nlohmann::json;

namespace {

// A registrations listing of 100k bindings is ~50 MB of JSON; beyond this something is wrong.
constexpr uint64_t kMaxAnswerBytes = uint64_t{256} * 1024 * 1024;

// A daemon listening on the wildcard address is reached on loopback.
net::Endpoint connectable(net::Endpoint e) {
  if (e.address == net::Address()) e.address = net::Address::v4(0x7f000001);
  if (e.address == net::Address::v6({})) {
    std::array<uint8_t, 16> loopback{};
    loopback[15] = 1;
    e.address = net::Address::v6(loopback);
  }
  return e;
}

// Runs `io` until the operation started on it completes. The tcp_stream's own timer bounds it.
void run_to_completion(asio::io_context& io) {
  io.restart();
  io.run();
}

std::string describe(const error_code& ec) {
  if (ec == beast::error::timeout) return "timed out";
  return ec.message();
}

void print_unreachable(const CtlOptions& options, const HttpExchange& exchange, std::ostream& err) {
  err << "pinhole ctl: cannot reach the admin port at " << options.admin.to_string() << " (" << options.admin_source
      << "): " << exchange.failure << "\n"
      << "  Is pinhole running, with the admin port enabled (admin.enabled)? Give the address with\n"
      << "  --admin HOST:PORT, or --config FILE to use that file's admin.listen.\n";
}

// The daemon's message for an error answer: {"error": "..."} or, from the server itself, text.
std::string error_message(const HttpExchange& exchange) {
  json parsed = json::parse(exchange.body, nullptr, false);
  if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_string()) {
    return parsed["error"].get<std::string>();
  }
  std::string text = exchange.body;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text.empty() ? "no message" : text;
}

// Sends the request and hands a successful JSON answer to `print`; the exit code. `unrouted`, when
// given, is what a 404 from the server itself (no such route: its body is not our JSON error)
// means for this command.
template <typename Print>
int exchange_and_print(const CtlOptions& options, std::string_view method, std::string_view target,
                       std::string_view body, std::ostream& out, std::ostream& err, Print print,
                       std::string_view unrouted = {}) {
  HttpExchange exchange = admin_request(options, method, target, body);
  if (!exchange.reached) {
    print_unreachable(options, exchange, err);
    return kCtlUnreachable;
  }
  if (exchange.status == 404 && !unrouted.empty() && !json::parse(exchange.body, nullptr, false).is_object()) {
    err << "pinhole ctl: " << unrouted << "\n";
    return kCtlDaemonError;
  }
  if (exchange.status < 200 || exchange.status > 299) {
    err << "pinhole ctl: " << error_message(exchange) << " (HTTP " << exchange.status << ")\n";
    return kCtlDaemonError;
  }
  json parsed = json::parse(exchange.body, nullptr, false);
  if (parsed.is_discarded()) {
    err << "pinhole ctl: the answer from " << options.admin.to_string()
        << " is not JSON (is this pinhole's admin port?)\n";
    return kCtlDaemonError;
  }
  if (options.json) {
    out << exchange.body;
    if (exchange.body.empty() || exchange.body.back() != '\n') out << "\n";
    return kCtlOk;
  }
  print(parsed);
  return kCtlOk;
}

// Text of a JSON value for tables: strings unquoted, null as "-".
std::string text_of(const json& value) {
  if (value.is_null()) return "-";
  if (value.is_string()) return value.get<std::string>();
  return value.dump();
}

std::string field(const json& object, const char* name) {
  if (!object.is_object()) return "-";
  auto it = object.find(name);
  return it == object.end() ? "-" : text_of(*it);
}

// "45s", "12m05s", "3h04m05s", "2d03h".
std::string duration_text(const json& seconds) {
  if (!seconds.is_number_integer()) return "-";
  int64_t s = seconds.get<int64_t>();
  if (s < 0) s = 0;
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  } else if (s < 86400) {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm%02llds", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60), static_cast<long long>(s % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldd%02lldh", static_cast<long long>(s / 86400),
                  static_cast<long long>(s % 86400 / 3600));
  }
  return buf;
}

std::string nat_text(const json& binding) {
  auto it = binding.find("nat");
  if (it == binding.end() || !it->is_array() || it->empty()) return "no";
  std::string out;
  for (const auto& name : *it) {
    if (!out.empty()) out += ",";
    out += text_of(name);
  }
  return out;
}

// Columns padded to their widest cell; the last one is not padded.
void print_table(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
  if (rows.empty()) return;
  std::vector<size_t> widths(rows.front().size(), 0);
  for (const auto& row : rows) {
    for (size_t i = 0; i < row.size() && i < widths.size(); ++i) widths[i] = std::max(widths[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  }
}

const char* plural(size_t n, const char* one, const char* many) { return n == 1 ? one : many; }

void print_binding_detail(std::ostream& out, const json& b) {
  out << "  binding     " << field(b, "binding_id") << "\n";
  out << "  contact     " << field(b, "contact") << "\n";
  out << "  received    " << field(b, "received") << " over " << field(b, "transport") << " (local socket "
      << field(b, "local_socket") << ", connection " << field(b, "connection_id") << ")\n";
  out << "  nat         " << nat_text(b) << "\n";
  out << "  expires in  " << duration_text(b.value("expires_in", json())) << "\n";
  out << "  q           " << field(b, "q") << "\n";
  if (!field(b, "instance").empty() && field(b, "instance") != "-") {
    out << "  instance    " << field(b, "instance") << " (reg-id " << field(b, "reg_id") << ")\n";
  }
  out << "  call-id     " << field(b, "call_id") << " (cseq " << field(b, "cseq") << ")\n";
  if (auto path = b.find("path"); path != b.end() && path->is_array()) {
    for (const auto& p : *path) out << "  path        " << text_of(p) << "\n";
  }
  if (!field(b, "user_agent").empty()) out << "  user-agent  " << field(b, "user_agent") << "\n";
  if (!field(b, "node").empty()) out << "  node        " << field(b, "node") << "\n";
}

// Milliseconds as "850ms", "12.3s", or duration_text beyond a minute.
std::string millis_text(const json& ms) {
  if (!ms.is_number_integer()) return "-";
  int64_t v = std::max<int64_t>(0, ms.get<int64_t>());
  if (v < 1000) return std::to_string(v) + "ms";
  if (v < 60000) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%lld.%llds", static_cast<long long>(v / 1000),
                  static_cast<long long>(v % 1000 / 100));
    return buf;
  }
  return duration_text(json(v / 1000));
}

// "registration,dialog(2)": the kinds of an endpoint's reasons, in first-seen order, with counts.
std::string reasons_text(const json& endpoint) {
  auto it = endpoint.find("reasons");
  if (it == endpoint.end() || !it->is_array() || it->empty()) return "-";
  std::vector<std::pair<std::string, size_t>> kinds;
  for (const auto& r : *it) {
    std::string kind = field(r, "kind");
    auto k = std::find_if(kinds.begin(), kinds.end(), [&](const auto& p) { return p.first == kind; });
    if (k == kinds.end())
      kinds.emplace_back(kind, 1);
    else
      ++k->second;
  }
  std::string out;
  for (const auto& [kind, count] : kinds) {
    if (!out.empty()) out += ",";
    out += kind;
    if (count > 1) out += "(" + std::to_string(count) + ")";
  }
  return out;
}

std::string next_ping_text(const json& endpoint) {
  if (endpoint.value("suppressed", false)) return "suppressed";
  return "in " + millis_text(endpoint.value("next_send_in_ms", json()));
}

void print_keepalive_detail(std::ostream& out, const json& e) {
  out << "  flow        " << field(e, "remote") << " over " << field(e, "transport") << " (local socket "
      << field(e, "local_socket") << ", connection " << field(e, "connection_id") << ")\n";
  out << "  interval    " << duration_text(e.value("interval_s", json())) << ", next ping " << next_ping_text(e);
  if (e.value("suppressed", false)) out << " (the client keeps the flow alive: RFC 5626 Flow-Timer)";
  out << "\n";
  out << "  counters    sent " << field(e, "sent") << ", replies " << field(e, "replies") << ", misses in a row "
      << field(e, "misses") << ", rebindings " << field(e, "rebindings") << "\n";
  if (auto it = e.find("reasons"); it != e.end() && it->is_array()) {
    for (const auto& r : *it) {
      out << "  reason      " << field(r, "kind") << " " << field(r, "key") << ", expires in "
          << duration_text(r.value("expires_in_s", json())) << "\n";
    }
  }
}

constexpr std::string_view kKeepaliveOff =
    "the daemon serves no keepalive view (GET /keepalive): keepalives are off in its config, or it is an "
    "older pinhole";

// "user@realm" split at the first '@'; nullopt when either side is empty.
std::optional<std::pair<std::string, std::string>> split_user(std::string_view user_at_realm) {
  size_t at = user_at_realm.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == user_at_realm.size()) return std::nullopt;
  return std::pair<std::string, std::string>(user_at_realm.substr(0, at), user_at_realm.substr(at + 1));
}

void print_flat(std::ostream& out, const json& value, const std::string& prefix) {
  if (value.is_object()) {
    for (const auto& [key, item] : value.items()) {
      std::string name = prefix;
      if (!name.empty()) name += ".";
      name += key;
      print_flat(out, item, name);
    }
  } else {
    out << prefix << ": " << text_of(value) << "\n";
  }
}

}  // namespace

std::string url_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    auto u = static_cast<unsigned char>(c);
    bool unreserved = (u >= 'a' && u <= 'z') || (u >= 'A' && u <= 'Z') || (u >= '0' && u <= '9') || c == '-' ||
                      c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(c);
    } else {
      out.push_back('%');
      out.push_back(kHex[u >> 4]);
      out.push_back(kHex[u & 0xf]);
    }
  }
  return out;
}

HttpExchange admin_request(const CtlOptions& options, std::string_view method, std::string_view target,
                           std::string_view body) {
  HttpExchange result;
  asio::io_context io;
  beast::tcp_stream stream(io);
  error_code ec;

  stream.expires_after(options.timeout);
  stream.async_connect(transport::to_asio<tcp::endpoint>(connectable(options.admin)),
                       [&](const error_code& e) { ec = e; });
  run_to_completion(io);
  if (ec) {
    result.failure = describe(ec);
    return result;
  }

  http::request<http::string_body> request;
  request.method_string(beast::string_view(method.data(), method.size()));
  request.target(beast::string_view(target.data(), target.size()));
  request.version(11);
  request.set(http::field::host, options.admin.to_string());
  request.set(http::field::user_agent, "pinhole-ctl");
  request.keep_alive(false);
  if (!body.empty()) {
    request.set(http::field::content_type, "application/json");
    request.body() = std::string(body);
  }
  request.prepare_payload();
  stream.expires_after(options.timeout);
  http::async_write(stream, request, [&](const error_code& e, size_t) { ec = e; });
  run_to_completion(io);
  if (ec) {
    result.failure = "sending the request failed: " + describe(ec);
    return result;
  }

  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kMaxAnswerBytes);
  stream.expires_after(options.timeout);
  http::async_read(stream, buffer, parser, [&](const error_code& e, size_t) { ec = e; });
  run_to_completion(io);
  if (ec) {
    result.failure = "no answer: " + describe(ec);
    return result;
  }
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  result.reached = true;
  result.status = static_cast<int>(parser.get().result_int());
  result.body = std::move(parser.get().body());
  return result;
}

std::optional<std::string> read_password(std::istream& in, std::ostream& prompt, bool confirm) {
  auto read_line = [&](std::string& line) {
    if (!std::getline(in, line)) return false;
    while (!line.empty() && (line.back() == '\r' || line.back() == '\n')) line.pop_back();
    return true;
  };
  std::string first;
  if (confirm) prompt << "Password: " << std::flush;
  bool got = read_line(first);
  if (confirm) prompt << "\n";
  if (!got || first.empty()) {
    prompt << "pinhole ctl: no password given\n";
    return std::nullopt;
  }
  if (confirm) {
    std::string second;
    prompt << "Password again: " << std::flush;
    got = read_line(second);
    prompt << "\n";
    if (!got || second != first) {
      prompt << "pinhole ctl: the passwords differ\n";
      return std::nullopt;
    }
  }
  return first;
}

int ctl_registrations(const CtlOptions& options, std::string_view search, uint64_t limit, std::ostream& out,
                      std::ostream& err) {
  std::string target = "/registrations";
  char sep = '?';
  if (!search.empty()) {
    target += sep + std::string("search=") + url_encode(search);
    sep = '&';
  }
  if (limit > 0) target += sep + std::string("limit=") + std::to_string(limit);
  return exchange_and_print(options, "GET", target, {}, out, err, [&](const json& answer) {
    const json& bindings = answer.contains("bindings") ? answer["bindings"] : json::array();
    std::vector<std::vector<std::string>> rows;
    rows.push_back({"AOR", "CONTACT", "RECEIVED", "TRANSPORT", "NAT", "EXPIRES IN", "NODE"});
    for (const auto& b : bindings) {
      std::string node = field(b, "node");
      rows.push_back({field(b, "aor"), field(b, "contact"), field(b, "received"), field(b, "transport"), nat_text(b),
                      duration_text(b.value("expires_in", json())), node.empty() ? "-" : node});
    }
    if (bindings.empty()) {
      out << "no registrations" << (search.empty() ? "" : " matching \"" + std::string(search) + "\"") << "\n";
    } else {
      print_table(out, rows);
    }
    size_t aors = answer.value("aors", size_t{0});
    out << bindings.size() << plural(bindings.size(), " binding", " bindings") << " of " << aors
        << plural(aors, " AOR", " AORs");
    if (answer.value("truncated", false)) out << " (more not shown: raise --limit or narrow --search)";
    out << "\n";
  });
}

int ctl_show(const CtlOptions& options, std::string_view aor, std::ostream& out, std::ostream& err) {
  return exchange_and_print(options, "GET", "/registrations/" + url_encode(aor), {}, out, err, [&](const json& answer) {
    const json& bindings = answer.contains("bindings") ? answer["bindings"] : json::array();
    out << field(answer, "aor") << ": " << bindings.size() << plural(bindings.size(), " binding", " bindings") << "\n";
    bool first = true;
    for (const auto& b : bindings) {
      if (!first) out << "\n";
      first = false;
      print_binding_detail(out, b);
    }
  });
}

int ctl_remove(const CtlOptions& options, std::string_view aor, std::string_view binding, std::ostream& out,
               std::ostream& err) {
  std::string target = "/registrations/" + url_encode(aor);
  if (!binding.empty()) target += "?binding=" + url_encode(binding);
  return exchange_and_print(options, "DELETE", target, {}, out, err, [&](const json& answer) {
    size_t removed = answer.value("removed", size_t{0});
    out << "removed " << removed << plural(removed, " binding", " bindings") << " of " << aor << "\n";
  });
}

int ctl_users_list(const CtlOptions& options, std::ostream& out, std::ostream& err) {
  return exchange_and_print(options, "GET", "/users", {}, out, err, [&](const json& answer) {
    const json& users = answer.contains("users") ? answer["users"] : json::array();
    std::vector<std::vector<std::string>> rows;
    rows.push_back({"USER", "REALM"});
    for (const auto& u : users) rows.push_back({field(u, "username"), field(u, "realm")});
    if (!users.empty()) print_table(out, rows);
    out << users.size() << plural(users.size(), " user", " users") << "\n";
  });
}

int ctl_users_add(const CtlOptions& options, std::string_view user_at_realm, std::string_view password,
                  std::ostream& out, std::ostream& err) {
  auto user = split_user(user_at_realm);
  if (!user) {
    err << "pinhole ctl: expected user@realm, got \"" << user_at_realm << "\"\n";
    return kCtlUsage;
  }
  if (password.empty()) {
    err << "pinhole ctl: empty password\n";
    return kCtlUsage;
  }
  json body = {{"username", user->first}, {"realm", user->second}, {"password", std::string(password)}};
  // Replace invalid UTF-8 rather than throw: the daemon decides whether the bytes are acceptable.
  std::string text = body.dump(-1, ' ', false, json::error_handler_t::replace);
  return exchange_and_print(options, "POST", "/users", text, out, err, [&](const json& answer) {
    bool created = answer.value("created", false);
    out << (created ? "added user " : "changed the password of ") << user->first << "@" << user->second << "\n";
  });
}

int ctl_users_del(const CtlOptions& options, std::string_view user_at_realm, std::ostream& out, std::ostream& err) {
  auto user = split_user(user_at_realm);
  if (!user) {
    err << "pinhole ctl: expected user@realm, got \"" << user_at_realm << "\"\n";
    return kCtlUsage;
  }
  std::string target = "/users/" + url_encode(user->second) + "/" + url_encode(user->first);
  return exchange_and_print(options, "DELETE", target, {}, out, err,
                            [&](const json&) { out << "deleted user " << user->first << "@" << user->second << "\n"; });
}

int ctl_stats(const CtlOptions& options, std::ostream& out, std::ostream& err) {
  return exchange_and_print(options, "GET", "/stats", {}, out, err,
                            [&](const json& answer) { print_flat(out, answer, ""); });
}

int ctl_keepalive_list(const CtlOptions& options, uint64_t limit, std::ostream& out, std::ostream& err) {
  std::string target = "/keepalive";
  if (limit > 0) target += "?limit=" + std::to_string(limit);
  return exchange_and_print(
      options, "GET", target, {}, out, err,
      [&](const json& answer) {
        const json& endpoints = answer.contains("endpoints") ? answer["endpoints"] : json::array();
        std::vector<std::vector<std::string>> rows;
        rows.push_back({"REMOTE", "TRANSPORT", "SOCKET", "REASONS", "INTERVAL", "NEXT PING", "MISSES", "SENT",
                        "REPLIES", "REBINDINGS"});
        for (const auto& e : endpoints) {
          rows.push_back({field(e, "remote"), field(e, "transport"), field(e, "local_socket"), reasons_text(e),
                          duration_text(e.value("interval_s", json())), next_ping_text(e), field(e, "misses"),
                          field(e, "sent"), field(e, "replies"), field(e, "rebindings")});
        }
        if (endpoints.empty()) {
          out << "no keepalive endpoints\n";
        } else {
          print_table(out, rows);
        }
        size_t total = answer.value("total", endpoints.size());
        out << endpoints.size() << plural(endpoints.size(), " endpoint", " endpoints");
        if (answer.value("truncated", false)) out << " of " << total << " (more not shown: raise --limit)";
        out << "\n";
      },
      kKeepaliveOff);
}

int ctl_keepalive_show(const CtlOptions& options, std::string_view remote, std::ostream& out, std::ostream& err) {
  return exchange_and_print(
      options, "GET", "/keepalive/" + url_encode(remote), {}, out, err,
      [&](const json& answer) {
        const json& endpoints = answer.contains("endpoints") ? answer["endpoints"] : json::array();
        out << field(answer, "remote") << ": " << endpoints.size()
            << plural(endpoints.size(), " keepalive endpoint", " keepalive endpoints") << "\n";
        bool first = true;
        for (const auto& e : endpoints) {
          if (!first) out << "\n";
          first = false;
          print_keepalive_detail(out, e);
        }
      },
      kKeepaliveOff);
}

// --- the command line ---

struct CtlCommand::State {
  CLI::App* ctl = nullptr;
  CLI::App* registrations = nullptr;
  CLI::App* show = nullptr;
  CLI::App* remove = nullptr;
  CLI::App* users = nullptr;
  CLI::App* users_list = nullptr;
  CLI::App* users_add = nullptr;
  CLI::App* users_del = nullptr;
  CLI::App* stats = nullptr;
  CLI::App* keepalive = nullptr;
  CLI::App* keepalive_list = nullptr;
  CLI::App* keepalive_show = nullptr;
  CLI::Option* admin_option = nullptr;
  CLI::Option* password_option = nullptr;
  std::string admin;
  bool json = false;
  std::string search;
  uint64_t limit = 0;
  std::string aor;
  std::string binding;
  std::string user;
  std::string password;
  std::string remote;
};

CtlCommand::CtlCommand(CLI::App& parent) : state_(std::make_unique<State>()) {
  State& s = *state_;
  s.ctl = parent.add_subcommand("ctl", "talk to a running pinhole through its admin port");
  // `pinhole ctl --config FILE ...` reaches the top-level --config.
  s.ctl->fallthrough();
  s.ctl->require_subcommand(1);
  s.admin_option = s.ctl->add_option(
      "--admin", s.admin,
      "admin port HOST:PORT (default: admin.listen of --config, else " + std::string(kCtlDefaultAdmin) + ")");
  s.ctl->add_flag("--json", s.json, "print the API's JSON answer as is");

  s.registrations = s.ctl->add_subcommand("registrations", "list registered contacts");
  s.registrations->add_option("--search", s.search, "only AORs containing this text");
  s.registrations->add_option("--limit", s.limit, "at most this many bindings")->check(CLI::Range(1, 1000000));

  s.show = s.ctl->add_subcommand("show", "the bindings of one AOR in detail");
  s.show->add_option("aor", s.aor, "address of record, e.g. sip:alice@example.com")->required();

  s.remove = s.ctl->add_subcommand("remove", "remove the bindings of an AOR (or one of them)");
  s.remove->add_option("aor", s.aor, "address of record")->required();
  s.remove->add_option("--binding", s.binding, "only this binding id (see `show`)");

  s.users = s.ctl->add_subcommand("users", "digest users");
  s.users->require_subcommand(1);
  s.users_list = s.users->add_subcommand("list", "list users (never their credentials)");
  s.users_add = s.users->add_subcommand("add", "add a user or change their password");
  s.users_add->add_option("user", s.user, "user@realm")->required();
  s.password_option = s.users_add->add_option(
      "--password", s.password,
      "the password (visible to other local users in the process list: prefer the prompt, or stdin)");
  s.users_del = s.users->add_subcommand("del", "delete a user");
  s.users_del->add_option("user", s.user, "user@realm")->required();

  s.stats = s.ctl->add_subcommand("stats", "registration, user and store counters");

  s.keepalive = s.ctl->add_subcommand("keepalive", "NAT keepalive endpoints");
  s.keepalive->require_subcommand(1);
  s.keepalive_list = s.keepalive->add_subcommand("list", "list the endpoints kept alive, with their reasons");
  s.keepalive_list->add_option("--limit", s.limit, "at most this many endpoints")->check(CLI::Range(1, 1000000));
  s.keepalive_show = s.keepalive->add_subcommand("show", "the endpoints towards one remote address in detail");
  s.keepalive_show->add_option("remote", s.remote, "remote IP:PORT ([IPv6]:PORT), as `list` shows it")->required();

  // --admin and --json may also follow the command ("pinhole ctl users list --json").
  for (CLI::App* sub : {s.registrations, s.show, s.remove, s.users, s.users_list, s.users_add, s.users_del, s.stats,
                        s.keepalive, s.keepalive_list, s.keepalive_show}) {
    sub->fallthrough();
  }
}

CtlCommand::~CtlCommand() = default;

bool CtlCommand::selected() const { return state_->ctl->parsed(); }

namespace {

// Turns terminal echo off while a password is typed; restores it on scope exit.
class EchoOff {
 public:
  explicit EchoOff(int fd) : fd_(fd) {
    if (tcgetattr(fd_, &saved_) != 0) return;
    termios quiet = saved_;
    quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    active_ = tcsetattr(fd_, TCSAFLUSH, &quiet) == 0;
  }
  ~EchoOff() {
    if (active_) tcsetattr(fd_, TCSAFLUSH, &saved_);
  }
  EchoOff(const EchoOff&) = delete;
  EchoOff& operator=(const EchoOff&) = delete;

 private:
  int fd_;
  termios saved_{};
  bool active_ = false;
};

}  // namespace

int CtlCommand::run(const std::string& config_path) {
  State& s = *state_;
  CtlOptions options;
  options.json = s.json;
  if (s.admin_option->count() > 0) {
    auto endpoint = net::Endpoint::parse(s.admin, 9060);
    if (!endpoint) {
      std::cerr << "pinhole ctl: --admin " << s.admin << ": expected an IP address and port, e.g. " << kCtlDefaultAdmin
                << "\n";
      return kCtlUsage;
    }
    options.admin = *endpoint;
    options.admin_source = "--admin";
  } else if (!config_path.empty()) {
    // Only admin.listen is wanted: do not insist on reading the TLS keys and secrets the config
    // names (an operator may run ctl without the daemon's rights).
    ParseOptions parse_options;
    parse_options.check_files = false;
    auto config = load_config_file(config_path, parse_options);
    if (!config) {
      std::cerr << "pinhole ctl: " << config.error().what << "\n";
      return kCtlUsage;
    }
    if (!config->admin.enabled) {
      std::cerr << "pinhole ctl: " << config_path << " disables the admin port (admin.enabled: false)\n";
      return kCtlUsage;
    }
    options.admin = config->admin.listen;
    options.admin_source = "admin.listen in " + config_path;
  } else {
    options.admin = net::Endpoint::parse(kCtlDefaultAdmin).value();
  }

  std::ostream& out = std::cout;
  std::ostream& err = std::cerr;
  if (s.registrations->parsed()) return ctl_registrations(options, s.search, s.limit, out, err);
  if (s.show->parsed()) return ctl_show(options, s.aor, out, err);
  if (s.remove->parsed()) return ctl_remove(options, s.aor, s.binding, out, err);
  if (s.users_list->parsed()) return ctl_users_list(options, out, err);
  if (s.users_add->parsed()) {
    std::string password = s.password;
    if (s.password_option->count() == 0) {
      bool tty = isatty(STDIN_FILENO) != 0;
      std::optional<std::string> typed;
      if (tty) {
        EchoOff quiet(STDIN_FILENO);
        typed = read_password(std::cin, err, /*confirm=*/true);
      } else {
        typed = read_password(std::cin, err, /*confirm=*/false);
      }
      if (!typed) return kCtlUsage;
      password = std::move(*typed);
    }
    return ctl_users_add(options, s.user, password, out, err);
  }
  if (s.users_del->parsed()) return ctl_users_del(options, s.user, out, err);
  if (s.stats->parsed()) return ctl_stats(options, out, err);
  if (s.keepalive_list->parsed()) return ctl_keepalive_list(options, s.limit, out, err);
  if (s.keepalive_show->parsed()) return ctl_keepalive_show(options, s.remote, out, err);
  err << "pinhole ctl: no command (see pinhole ctl --help)\n";
  return kCtlUsage;
}

}  // namespace pinhole::app
