#include "ua/instance_id.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "ua/random.h"

namespace pinhole::ua {
namespace {

bool is_uuid_urn(const std::string& text) {
  if (text.size() != 45 || !text.starts_with("urn:uuid:")) return false;
  for (size_t i = 9; i < text.size(); ++i) {
    char c = text[i];
    bool dash = i == 17 || i == 22 || i == 27 || i == 32;
    if (dash ? c != '-' : !((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string default_instance_file() {
  // NOLINTNEXTLINE(concurrency-mt-unsafe): start-up, before any thread of ours runs
  if (const char* state = std::getenv("XDG_STATE_HOME"); state != nullptr && *state != '\0') {
    return std::string(state) + "/pinhole-ua/instance-id";
  }
  // NOLINTNEXTLINE(concurrency-mt-unsafe): as above
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') {
    return std::string(home) + "/.local/state/pinhole-ua/instance-id";
  }
  return "pinhole-ua-instance-id";
}

Result<std::string> load_or_create_instance_id(const std::string& path) {
  {
    std::ifstream in(path);
    std::string line;
    if (in && std::getline(in, line)) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (is_uuid_urn(line)) return line;
    }
  }
  std::string id = random_uuid_urn();
  std::error_code ec;
  std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  std::ofstream out(path, std::ios::trunc);
  if (!out || !(out << id << '\n') || !out.flush()) {
    return Error{500, "instance id: cannot write the instance file"};
  }
  return id;
}

}  // namespace pinhole::ua
