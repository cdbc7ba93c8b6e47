// FUZZ_CHECK: an invariant a fuzz target asserts. A violation prints where and aborts, which
// libFuzzer reports as a crash and saves the input as an artifact.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string_view>

namespace pinhole::fuzz {

[[noreturn]] inline void invariant_failed(const char* file, int line, const char* what) {
  std::fprintf(stderr, "%s:%d: invariant violated: %s\n", file, line, what);
  std::abort();
}

// A copy of `text` in a heap block of exactly its size, so that ASan catches a parser that reads
// one byte past the input (libFuzzer's own buffer may have slack after it).
struct OwnedText {
  std::unique_ptr<char[]> buf;
  std::string_view view;
  explicit OwnedText(std::string_view text) : buf(new char[text.size() + (text.empty() ? 1 : 0)]) {
    if (!text.empty()) std::memcpy(buf.get(), text.data(), text.size());
    view = std::string_view(buf.get(), text.size());
  }
};

}  // namespace pinhole::fuzz

#define FUZZ_CHECK(cond)                                                       \
  do {                                                                         \
    if (!(cond)) ::pinhole::fuzz::invariant_failed(__FILE__, __LINE__, #cond); \
  } while (0)

// `v` (a view a parser handed out) lies inside `outer` (the bytes it parsed); empty views may
// point anywhere.
inline void fuzz_check_inside(std::string_view outer, std::string_view v) {
  if (v.empty()) return;
  FUZZ_CHECK(v.data() >= outer.data() && v.data() + v.size() <= outer.data() + outer.size());
}
