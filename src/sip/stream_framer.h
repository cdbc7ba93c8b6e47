// Splits a reliable byte stream (TCP, TLS) into SIP messages and RFC 5626 §3.5.1 keepalives.
//
// Framing is by Content-Length (RFC 3261 §18.3); CRLF CRLF between messages is a keepalive ping,
// a lone CRLF a pong. A stream whose header section or declared body would exceed the size limit
// yields a 413 error: the connection must then be closed, since the rest of the stream cannot be
// framed. Owned by one connection; not thread-safe.
//
// Keepalive ambiguity: a CRLF at a frame start is reported as a pong at once rather than waiting
// to see whether a second CRLF (a ping) follows, because a pong must not be held back until the
// next message arrives. A ping split across two reads therefore shows up as two pongs; clients
// write the 4-byte ping in one send, so this is rare, and the keepalive engine treats a missing
// pong only after its timeout.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "common/result.h"
#include "sip/message.h"

namespace pinhole::sip {

class StreamFramer {
 public:
  explicit StreamFramer(const ParseLimits& limits = {}) : limits_(limits) {}

  enum class Kind { kNeedMore, kMessage, kPing, kPong, kError };
  struct Frame {
    Kind kind = Kind::kNeedMore;
    std::string_view bytes;  // kMessage: the message; valid until the next append() or next()
    Error error{};           // kError: 400 (unframeable) or 413 (too large); close the connection
  };

  // Appends bytes read from the connection.
  void append(std::string_view bytes);
  // The next complete frame, or kNeedMore. After kError the framer stays in error.
  Frame next();
  // Bytes received but not yet framed.
  size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  std::string buffer_;
  size_t consumed_ = 0;
  ParseLimits limits_;
  bool failed_ = false;
  Error failure_{};
  size_t scanned_ = 0;      // bytes of the pending frame already searched for the empty line
  size_t frame_total_ = 0;  // length of the pending frame once its header section is known

  Frame fail(Error error);
};

}  // namespace pinhole::sip
