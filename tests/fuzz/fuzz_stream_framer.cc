// libFuzzer target for StreamFramer (TCP/TLS framing and RFC 5626 CRLF keepalives).
//
// Input layout: byte 0 = h; n = (h & 7) + 1 chunk-size bytes follow, each giving a chunk of
// (byte + 1) octets, used in turn; h & 8 selects a small size limit (512) so the 413 paths are
// reachable with short inputs. The rest is the byte stream a peer sends.
//
// The stream is fed once in those chunks and once whole; every kMessage frame is parsed with
// Framing::kStream. Invariants:
//  - frames tile the stream: each frame is the next bytes of the stream (a ping is CRLFCRLF, a
//    pong CRLF), and a message frame never exceeds the size limit;
//  - a frame that parses is exactly the message the parser sees (same Content-Length reading);
//  - chunking does not change the frames, with one legitimate exception: the framer answers as
//    soon as it can, so CRLFCRLF split between two reads is two pongs instead of one ping. The
//    sequences are therefore always compared with runs of keepalives merged into their CRLF
//    count, and compared exactly when no chunk boundary falls between two CR/LF octets.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.h"
#include "sip/message.h"
#include "sip/stream_framer.h"

namespace {

using namespace pinhole::sip;

using Kind = StreamFramer::Kind;

struct Frame {
  Kind kind;
  std::string bytes;  // kMessage only
  bool operator==(const Frame&) const = default;
};

// Pulls every available frame; returns false once the framer failed (it stays failed).
bool drain(StreamFramer& f, std::string_view stream, size_t& offset, const ParseLimits& limits,
           std::vector<Frame>& out) {
  for (;;) {
    StreamFramer::Frame fr = f.next();
    switch (fr.kind) {
      case Kind::kNeedMore:
        return true;
      case Kind::kError:
        FUZZ_CHECK(fr.error.status == 400 || fr.error.status == 413);
        out.push_back({Kind::kError, {}});
        // Stays in error.
        FUZZ_CHECK(f.next().kind == Kind::kError);
        return false;
      case Kind::kPing:
        FUZZ_CHECK(stream.substr(offset, 4) == "\r\n\r\n");
        offset += 4;
        out.push_back({Kind::kPing, {}});
        break;
      case Kind::kPong:
        FUZZ_CHECK(stream.substr(offset, 2) == "\r\n");
        offset += 2;
        out.push_back({Kind::kPong, {}});
        break;
      case Kind::kMessage: {
        FUZZ_CHECK(!fr.bytes.empty());
        FUZZ_CHECK(fr.bytes.size() <= limits.max_message_size);
        FUZZ_CHECK(stream.substr(offset, fr.bytes.size()) == fr.bytes);
        offset += fr.bytes.size();
        std::string copy(fr.bytes);  // the view dies at the next append()/next()
        auto msg = Message::parse(copy, Framing::kStream, limits);
        if (msg) {
          // The framer and the parser agree on where the message ends.
          FUZZ_CHECK((*msg)->bytes().size() == copy.size());
          (void)(*msg)->vias();
          (void)(*msg)->cseq();
          (void)(*msg)->contacts();
        }
        out.push_back({Kind::kMessage, std::move(copy)});
        break;
      }
    }
  }
}

// Runs of keepalives replaced by one entry holding their CRLF count (ping = 2, pong = 1).
struct Normal {
  Kind kind;
  std::string bytes;
  size_t crlfs = 0;
  bool operator==(const Normal&) const = default;
};
std::vector<Normal> normalise(const std::vector<Frame>& frames) {
  std::vector<Normal> out;
  for (const auto& f : frames) {
    if (f.kind == Kind::kPing || f.kind == Kind::kPong) {
      size_t n = f.kind == Kind::kPing ? 2 : 1;
      if (!out.empty() && out.back().kind == Kind::kPong) {
        out.back().crlfs += n;
      } else {
        out.push_back({Kind::kPong, {}, n});
      }
      continue;
    }
    out.push_back({f.kind, f.bytes, 0});
  }
  return out;
}

bool is_crlf(char c) { return c == '\r' || c == '\n'; }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {  // NOLINT(readability-identifier-naming)
  if (size < 2) return 0;
  const size_t nsizes = (data[0] & 7u) + 1;
  if (size < 1 + nsizes) return 0;
  ParseLimits limits;
  if (data[0] & 8u) limits.max_message_size = 512;
  const uint8_t* sizes = data + 1;
  std::string_view stream(reinterpret_cast<const char*>(data + 1 + nsizes), size - 1 - nsizes);

  // In chunks.
  std::vector<Frame> chunked;
  bool boundary_in_crlf_run = false;
  {
    StreamFramer f(limits);
    size_t pos = 0, offset = 0;
    for (size_t i = 0; pos < stream.size(); ++i) {
      size_t n = std::min<size_t>(static_cast<size_t>(sizes[i % nsizes]) + 1, stream.size() - pos);
      f.append(stream.substr(pos, n));
      pos += n;
      if (pos < stream.size() && is_crlf(stream[pos - 1]) && is_crlf(stream[pos])) boundary_in_crlf_run = true;
      FUZZ_CHECK(f.buffered() == pos - offset);
      if (!drain(f, stream, offset, limits, chunked)) break;
      FUZZ_CHECK(f.buffered() == pos - offset);
    }
  }

  // Whole.
  std::vector<Frame> whole;
  {
    StreamFramer f(limits);
    size_t offset = 0;
    f.append(stream);
    if (drain(f, stream, offset, limits, whole)) FUZZ_CHECK(f.buffered() == stream.size() - offset);
  }

  FUZZ_CHECK(normalise(chunked) == normalise(whole));
  if (!boundary_in_crlf_run) FUZZ_CHECK(chunked == whole);
  return 0;
}
