// pinhole: the SIP edge daemon. `pinhole --config FILE` runs it in the foreground (logs on
// stderr, SIGTERM/SIGINT stop it); `pinhole --check-config FILE` validates a config and exits;
// `pinhole ctl ...` talks to a running daemon through its admin port (app/ctl.h).
#include <CLI/CLI.hpp>
#include <cstdio>
#include <exception>
#include <string>

#include "app/config.h"
#include "app/ctl.h"
#include "app/daemon.h"

namespace {

int run(int argc, char** argv) {
  CLI::App cli{"pinhole: SIP edge proxy for NATed phones"};
  std::string config_path;
  std::string check_path;
  cli.add_option("-c,--config", config_path, "configuration file (YAML)");
  cli.add_option("--check-config", check_path, "validate a configuration file and exit");
  cli.add_flag_callback("--version", [] {
    std::printf("pinhole %s\n", PINHOLE_VERSION);
    std::exit(0);
  });
  pinhole::app::CtlCommand ctl(cli);
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = cli.exit(e);
    // ctl promises exit code 2 for every usage error (scripts tell it from 1, a daemon error).
    return code != 0 && ctl.selected() ? pinhole::app::kCtlUsage : code;
  }
  if (ctl.selected()) return ctl.run(config_path);

  if (!check_path.empty()) {
    auto config = pinhole::app::load_config_file(check_path);
    if (!config.ok()) {
      std::fprintf(stderr, "%s\n", std::string(config.error().what).c_str());
      return 1;
    }
    std::printf("%s: ok\n", check_path.c_str());
    return 0;
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "pinhole: --config FILE is required (see docs/config.md)\n");
    return 2;
  }
  auto config = pinhole::app::load_config_file(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "%s\n", std::string(config.error().what).c_str());
    return 1;
  }
  auto daemon = pinhole::app::Daemon::create(std::move(*config));
  if (!daemon.ok()) {
    std::fprintf(stderr, "pinhole: %s\n", std::string(daemon.error().what).c_str());
    return 1;
  }
  return (*daemon)->run();
}

}  // namespace

int main(int argc, char** argv) {
  // Exceptions are for start-up bugs only (DESIGN.md §4); say what happened rather than abort.
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pinhole: fatal: %s\n", e.what());
    return 1;
  }
}
