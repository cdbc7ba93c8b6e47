// FUZZ_CHECK: an invariant a fuzz target asserts. A violation prints where and aborts, which
// libFuzzer reports as a crash and saves the input as an artifact.
#pragma once

#include <cstdio>
#include <cstdlib>

namespace pinhole::fuzz {

[[noreturn]] inline void invariant_failed(const char* file, int line, const char* what) {
  std::fprintf(stderr, "%s:%d: invariant violated: %s\n", file, line, what);
  std::abort();
}

}  // namespace pinhole::fuzz

#define FUZZ_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond)) ::pinhole::fuzz::invariant_failed(__FILE__, __LINE__, #cond); \
  } while (0)
