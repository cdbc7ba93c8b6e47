// What the proxy needs to anchor media for NATed phones (issue 6, docs/config.md `media:`): a
// relay it asks to rewrite SDP offers and answers and to drop sessions, the policy that decides
// when a call gets the relay, and the counters. The proxy speaks in typed requests; the relay
// behind MediaRelay is the built-in one (media/builtin_relay.h, in process) or remote relays
// reached over rtpengine's ng protocol (media/ng_relay_pool.h: pinhole-media or rtpengine).
// Absent (null in ProxyShared) when `media.enabled` is false.
//
// Threads: built once by the daemon before the workers start. MediaRelay::request may be called
// from any worker thread; `done` runs on a thread of the relay's choosing (the proxy posts the
// result back to its worker).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "common/metrics.h"
#include "common/result.h"
#include "net/address.h"

namespace pinhole::proxy {

enum class MediaOp : uint8_t { kOffer, kAnswer, kDelete };

// One ng-style command (rtpengine's names in brackets). Keys as Kamailio's rtpengine module sends
// them: the SDP's sender is always named by `from_tag` for an offer and by `to_tag` for an answer.
struct MediaRequest {
  MediaOp op = MediaOp::kOffer;
  std::string call_id;     // [call-id]
  std::string from_tag;    // [from-tag]
  std::string to_tag;      // [to-tag] answer; delete of one dialog; empty otherwise
  std::string via_branch;  // [via-branch] one relay session per forked branch; empty: the call
  std::string sdp;         // [sdp] offer/answer
  // [received-from] the signaling source of the SDP's sender: a first RTP packet from this IP
  // latches at once (no learning window).
  // Unset (a default Endpoint) when the sender is beyond the upstream: not sent.
  net::Endpoint received_from;
  // [flags] e.g. "SIP-source-address", "symmetric", "strict-source", "media-handover".
  std::vector<std::string> flags;
  // [replace] e.g. "origin", "session-connection".
  std::vector<std::string> replace;
  // [delete-delay] seconds a delete waits (rtpengine's default 30 s covers a retransmitted BYE);
  // negative: not sent, the relay's default applies.
  int delete_delay = -1;
};

struct MediaReply {
  std::string sdp;      // the rewritten SDP (offer/answer); empty for delete
  std::string warning;  // the relay's [warning], if any (logged)
};

// A relay the proxy talks to. Owned by the daemon; outlives the workers.
class MediaRelay {
 public:
  // Called on an arbitrary thread, once per request: the reply or an Error (503 relay down or
  // timed out, 488 the SDP was refused, 500 the relay answered "error").
  using Done = std::function<void(Result<MediaReply>)>;
  virtual ~MediaRelay() = default;
  // Any thread. Requests of one Call-ID go to the same relay (a remote pool pins the call).
  virtual void request(MediaRequest request, Done done) = 0;
};

struct MediaMetrics {
  explicit MediaMetrics(MetricsRegistry& registry);
  Counter& offers;          // offers the relay rewrote
  Counter& answers;         // answers the relay rewrote
  Counter& deletes;         // sessions deleted (BYE, CANCEL, failure)
  Counter& not_relayed;     // calls left direct by the policy (same LAN, relay: never)
  Counter& relay_failures;  // relay errors / timeouts (the request went on unanchored or 503)
};

struct MediaServices {
  MediaRelay& relay;
  MediaMetrics& metrics;
  // The addresses relays write into SDPs: an offer whose connection address is one of these was
  // anchored already (the call passes this edge twice: caller and callee both behind it), and is
  // left alone. The built-in relay's address, and the remote relays' as configured.
  std::vector<net::Address> relay_addresses;
};

}  // namespace pinhole::proxy
