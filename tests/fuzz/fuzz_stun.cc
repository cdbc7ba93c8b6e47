// libFuzzer target for the STUN codec and the keepalive reply path.
//
// Input: one datagram, copied into a heap block of exactly its size so ASan sees a read past it.
// Invariants: decode never reads out of bounds; whatever decodes as a Binding response re-encodes
// (same transaction id and XOR-MAPPED-ADDRESS) to bytes that decode to the same values;
// looks_like_stun accepts every message decode_stun accepts (the receive path sniffs with the
// former and decodes with the latter, so a decodable message must never be sent to the SIP
// parser); and a keepalive engine fed the datagram as a reply accepts it only when it is a Binding
// response carrying exactly the engine's token.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "fuzz_check.h"
#include "nat/keepalive_engine.h"
#include "nat/stun.h"

namespace {

using namespace pinhole;
using namespace pinhole::nat;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {  // NOLINT(readability-identifier-naming)
  std::unique_ptr<char[]> buf(new char[size == 0 ? 1 : size]);
  if (size != 0) std::memcpy(buf.get(), data, size);
  std::string_view in(buf.get(), size);

  bool sniffed = looks_like_stun(in);
  auto m = decode_stun(in);
  if (m.ok()) {
    FUZZ_CHECK(sniffed);
    if (m->xor_mapped && (m->type == kStunBindingSuccess)) {
      std::string again;
      append_binding_success(again, m->transaction_id, *m->xor_mapped, m->has_fingerprint);
      auto back = decode_binding_response(again);
      FUZZ_CHECK(back.ok());
      FUZZ_CHECK(back->transaction_id == m->transaction_id);
      FUZZ_CHECK(back->xor_mapped == m->xor_mapped);
      FUZZ_CHECK(back->has_fingerprint == m->has_fingerprint);
    }
  }

  // The engine recognises a reply only by its exact token: index 0, generation 1 (its only
  // endpoint), tag from the engine's key. libFuzzer sees the tag comparison's operands and does
  // produce the right id (an off-path sender cannot), so the check is "ours only when exactly
  // ours", never "never ours".
  static ManualClock clock;
  static KeepaliveEngine* engine = [] {
    auto* e = new KeepaliveEngine(KeepaliveConfig{}, clock, {}, std::array<uint64_t, 2>{1, 2});
    net::Flow f{net::Transport::kUdp, 1, net::Endpoint::parse("192.0.2.1:5060").value(), 0};
    e->set_reason(f, KeepaliveReason::kRegistration, "fuzz", std::chrono::seconds(3600));
    return e;
  }();
  static const StunTransactionId ours = stun_transaction_id(KeepaliveSigner({1, 2}).token(0, 1));
  net::Flow source{net::Transport::kUdp, 1, net::Endpoint::parse("192.0.2.1:5060").value(), 0};
  auto kind = engine->on_stun(in, source);
  if (kind != KeepaliveEngine::ReplyKind::kNotOurs) {
    auto r = decode_binding_response(in);
    FUZZ_CHECK(r.ok());
    FUZZ_CHECK(r->transaction_id == ours);
    FUZZ_CHECK(kind == KeepaliveEngine::ReplyKind::kAlive);
  }
  return 0;
}
