#include "common/startup_error.h"

#include <mutex>
#include <set>

namespace pinhole {

std::string_view intern_error_text(std::string text) {
  // Function statics: created on first failure, reachable until exit (not a leak for LSan).
  static std::mutex mu;
  static std::set<std::string, std::less<>> texts;  // node-based: views stay valid
  std::lock_guard lock(mu);
  auto it = texts.insert(std::move(text)).first;
  return *it;
}

}  // namespace pinhole
