// Start-up errors that name a file, a key or a listener (config, transport, daemon). Error::what is a static
// string_view (the data plane never formats), but create() must say which file or address failed; these texts are
// interned for the life of the process (deduplicated, so repeated failures do not grow it).
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"

namespace pinhole {

// A string_view to a process-lifetime copy of `text`. Any thread; start-up paths only.
std::string_view intern_error_text(std::string text);

inline Error startup_error(uint16_t status, std::string text) {
  return Error{status, intern_error_text(std::move(text))};
}

}  // namespace pinhole
