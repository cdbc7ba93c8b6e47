// `pinhole ctl`: the operator's client of the daemon's admin JSON API (src/app/registrar_admin.h).
// Lists, shows and removes registrations, lists, adds and deletes digest users, prints stats, lists
// and shows NAT keepalive endpoints (src/app/keepalive_admin.h).
//
//   pinhole [--config FILE] ctl [--admin HOST:PORT] [--json] <command>
//
// Each command is one HTTP request to the admin port (synchronous, 5 s timeouts). Exit codes:
// 0 done, 1 the daemon answered an error (its message is printed), 2 usage error, 3 the admin port
// cannot be reached (the message names the address and how to set it).
//
// The command functions below are what the CLI runs; they take the output streams so that tests
// run them against a real AdminServer. They are blocking and keep no state: call them from any
// thread, but not from the thread that runs the admin server they talk to.
#pragma once

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "net/address.h"

namespace CLI {
class App;
}

namespace pinhole::app {

inline constexpr int kCtlOk = 0;
inline constexpr int kCtlDaemonError = 1;
inline constexpr int kCtlUsage = 2;
inline constexpr int kCtlUnreachable = 3;

// Where the admin port is when neither --admin nor --config says.
inline constexpr std::string_view kCtlDefaultAdmin = "127.0.0.1:9060";

struct CtlOptions {
  net::Endpoint admin;
  // How `admin` was chosen ("--admin", "admin.listen in FILE", "the default"): the unreachable
  // message says it, so the operator knows what to change.
  std::string admin_source = "the default";
  bool json = false;                                            // print the API's JSON as it came
  std::chrono::milliseconds timeout = std::chrono::seconds(5);  // connect, send, and receive, each
};

// The answer to one request, or why there was none.
struct HttpExchange {
  bool reached = false;  // false: connecting, sending or receiving failed (see `failure`)
  std::string failure;   // "Connection refused", "timed out"...
  int status = 0;
  std::string body;
};

// One HTTP/1.1 request (Connection: close). `body` non-empty is sent as application/json.
HttpExchange admin_request(const CtlOptions& options, std::string_view method, std::string_view target,
                           std::string_view body = {});

// Percent-encodes everything but RFC 3986 unreserved characters (a path segment or query value).
std::string url_encode(std::string_view text);

// Reads a password: one line from `in` (no trailing CR/LF); when `confirm`, prompts on `prompt`
// and reads a second line that must match. nullopt (and a message on `prompt`) for an empty
// password, end of input, or a mismatch. Echo control is the caller's (a terminal's).
std::optional<std::string> read_password(std::istream& in, std::ostream& prompt, bool confirm);

// The commands. Each writes its result to `out` and errors to `err`, and returns the exit code.
// `limit` 0 leaves the daemon's default.
int ctl_registrations(const CtlOptions& options, std::string_view search, uint64_t limit, std::ostream& out,
                      std::ostream& err);
int ctl_show(const CtlOptions& options, std::string_view aor, std::ostream& out, std::ostream& err);
// `binding` empty: every binding of the AOR.
int ctl_remove(const CtlOptions& options, std::string_view aor, std::string_view binding, std::ostream& out,
               std::ostream& err);
int ctl_users_list(const CtlOptions& options, std::ostream& out, std::ostream& err);
// `user_at_realm` is "user@realm" (split at the first '@'; the username may not contain one).
int ctl_users_add(const CtlOptions& options, std::string_view user_at_realm, std::string_view password,
                  std::ostream& out, std::ostream& err);
int ctl_users_del(const CtlOptions& options, std::string_view user_at_realm, std::ostream& out, std::ostream& err);
int ctl_stats(const CtlOptions& options, std::ostream& out, std::ostream& err);
// GET /keepalive (`limit` 0: the daemon's default) and GET /keepalive/<remote> ("ip:port",
// "[v6]:port"). A daemon without those routes (keepalives off) is exit 1 with a message saying so.
int ctl_keepalive_list(const CtlOptions& options, uint64_t limit, std::ostream& out, std::ostream& err);
int ctl_keepalive_show(const CtlOptions& options, std::string_view remote, std::ostream& out, std::ostream& err);

// The `ctl` subcommand on the pinhole command line. Construct it before parsing; after parsing,
// selected() says whether `ctl` was given and run() executes it (stdin/stdout/stderr, the tty for
// password prompts). Main thread only.
class CtlCommand {
 public:
  explicit CtlCommand(CLI::App& parent);
  ~CtlCommand();
  CtlCommand(const CtlCommand&) = delete;
  CtlCommand& operator=(const CtlCommand&) = delete;

  bool selected() const;
  // `config_path`: the top-level --config, whose admin.listen is the default --admin ("" none).
  int run(const std::string& config_path);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace pinhole::app
