// libFuzzer target for bencode and the ng message layer built on it.
//
// Input: arbitrary bytes, tried two ways: as one bencode value, and as an ng message
// (`<cookie> <bencoded dictionary>`, the form of the seeds, which are commands as Kamailio sends
// them). Each is copied into a buffer of its own exact size so that ASan sees a read one byte
// past the end. Invariants:
//  - only canonical bencode decodes, so re-encoding a decoded value gives the input back byte
//    for byte; sorting the keys gives a value of the same size that decodes, and sorting that
//    again changes nothing;
//  - the stream scanner agrees with the decoder, whether it gets the bytes at once or in pieces;
//  - parsing an ng command never fails on anything but the message, its views lie inside the
//    message, and the warning stays bounded; the ng stream splitter frames what split_ng_frame
//    frames.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "media/bencode.h"
#include "media/ng_message.h"

namespace {

using namespace pinhole::media;

using pinhole::fuzz::OwnedText;

// The scanner over `text` in one go, and in three pieces cut where the input says.
void check_scanner(std::string_view text, bool decoded) {
  bencode::Scanner whole;
  bencode::Scanner::Progress p = whole.scan(text);
  if (decoded) FUZZ_CHECK(p.status == bencode::Scanner::Status::kComplete && p.length == text.size());
  if (p.status == bencode::Scanner::Status::kComplete) {
    OwnedText prefix(text.substr(0, p.length));
    FUZZ_CHECK(bencode::decode(prefix.view).ok());
  }
  if (p.status == bencode::Scanner::Status::kError) FUZZ_CHECK(!decoded);

  size_t a = text.empty() ? 0 : static_cast<unsigned char>(text[0]) % (text.size() + 1);
  size_t b = a + (text.size() - a) / 2;
  bencode::Scanner pieces;
  bencode::Scanner::Progress q;
  for (size_t end : {a, b, text.size()}) {
    q = pieces.scan(text.substr(0, end));
    if (q.status != bencode::Scanner::Status::kNeedMore) break;
  }
  FUZZ_CHECK(q.status == p.status);
  FUZZ_CHECK(q.length == p.length);
  if (q.status == bencode::Scanner::Status::kError) FUZZ_CHECK(q.error == p.error);
}

void check_value(std::string_view text) {
  auto doc = bencode::decode(text);
  check_scanner(text, doc.ok());
  if (!doc) {
    FUZZ_CHECK(doc.error().status == 400 || doc.error().status == 413);
    FUZZ_CHECK(!doc.error().what.empty());
    return;
  }
  bencode::Value root = doc->root();
  FUZZ_CHECK(root.raw() == text);
  FUZZ_CHECK(bencode::encode(root) == text);

  std::string sorted = bencode::encode(root, bencode::WriteOptions{true});
  FUZZ_CHECK(sorted.size() == text.size());
  OwnedText sorted_text(sorted);
  auto again = bencode::decode(sorted_text.view);
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(again->node_count() == doc->node_count());
  FUZZ_CHECK(bencode::encode(again->root(), bencode::WriteOptions{true}) == sorted);

  if (root.is_dict()) {
    auto command = parse_ng_command(root);
    if (command) {
      for (std::string_view v : {command->command, command->call_id, command->from_tag, command->to_tag,
                                 command->via_branch, command->sdp, command->label, command->media_address}) {
        fuzz_check_inside(text, v);
      }
      for (std::string_view v : command->unknown_keys) fuzz_check_inside(text, v);
      for (std::string_view v : command->unknown_flags) fuzz_check_inside(text, v);
      FUZZ_CHECK(command->direction.size() <= 2);
      FUZZ_CHECK(ng_warning(*command).size() <= kNgMaxWarning);
    } else {
      FUZZ_CHECK(!command.error().what.empty());
    }
  }
}

void check_message(std::string_view message) {
  auto frame = split_ng_frame(message);
  NgStreamSplitter splitter;
  splitter.append(message);
  NgStreamSplitter::Frame first = splitter.next();
  if (!frame) return;
  fuzz_check_inside(message, frame->cookie);
  fuzz_check_inside(message, frame->body);
  // A complete message on a stream comes out whole, with the same cookie.
  if (first.kind == NgStreamSplitter::Kind::kMessage) {
    FUZZ_CHECK(first.message.cookie == frame->cookie);
    FUZZ_CHECK(frame->body.substr(0, first.message.body.size()) == first.message.body);
  }
  OwnedText body(frame->body);
  check_value(body.view);
  auto command = parse_ng_body(body.view);
  if (command) {
    std::string warning = ng_warning(*command);
    NgReply reply;
    reply.warning = warning;
    reply.sdp = command->sdp;
    std::string out = encode_ng_reply(frame->cookie, reply);
    auto back = split_ng_frame(out);
    FUZZ_CHECK(back.ok() && back->cookie == frame->cookie);
    FUZZ_CHECK(bencode::decode(back->body).ok());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {  // NOLINT(readability-identifier-naming)
  std::string_view input(reinterpret_cast<const char*>(data), size);
  OwnedText whole(input);
  check_value(whole.view);
  check_message(whole.view);
  return 0;
}
