// Running a `pinhole ctl` command function in a test: its exit code and what it printed.
#pragma once

#include <sstream>
#include <string>

namespace pinhole::app::test {

struct CtlRun {
  int code;
  std::string out;
  std::string err;
};

// `command(out, err)` is one ctl_* call writing to the given streams; returns its exit code.
template <typename F>
CtlRun run_ctl(F command) {
  std::ostringstream out;
  std::ostringstream err;
  int code = command(out, err);
  return {code, out.str(), err.str()};
}

}  // namespace pinhole::app::test
