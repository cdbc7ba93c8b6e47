// Human-readable report of a parsed SIP message and its sanity verdict (used by pinhole-parse).
#pragma once

#include <string>
#include <string_view>

namespace pinhole::app {

// Parses `bytes` as one datagram and describes the result: start line, header fields, the
// parsed Via/From/To/CSeq/Contact values and what an edge proxy would answer.
std::string describe_message(std::string_view bytes);

}  // namespace pinhole::app
