// The edge's side of rtpengine's ng protocol: a proxy::MediaRequest written as the dictionary
// Kamailio's rtpengine module sends (offer/answer/delete with call-id, from-tag, to-tag,
// via-branch, sdp, received-from, flags, replace), and the relay's reply read back into a
// proxy::MediaReply or the SIP status the proxy answers with. Shared by the remote relay pool
// (media/ng_relay_pool.h), which sends the bytes over UDP, and the built-in relay
// (media/builtin_relay.h), which hands them to its MediaController in process: both paths run
// the very same encoding and decoding.
//
// Plain functions, no shared state: any thread.
#pragma once

#include <string>
#include <string_view>

#include "common/result.h"
#include "proxy/media_services.h"

namespace pinhole::media {

// `<cookie> <dict>` for `request`. The cookie must be a valid ng cookie (visible ASCII, no
// space); the pool makes its own. Keys are written in rtpengine module order; empty to-tag,
// via-branch and sdp are left out (a delete never carries an SDP); received-from only when it
// names an address (["IP4"|"IP6", address]).
std::string encode_ng_request(std::string_view cookie, const proxy::MediaRequest& request);

// `<cookie> d7:command4:pinge`: the liveness probe sent to a relay marked down.
std::string encode_ng_ping(std::string_view cookie);

// Reads a reply body (the bencoded dictionary after the cookie) to an offer, answer or delete:
//  - `result: ok` -> the `sdp` (required for offer/answer: Error{500} without one) and `warning`;
//  - `result: error` -> Error{488} when the relay refused the SDP (its `error-reason` mentions
//    the SDP), Error{500} otherwise; `error_reason`, when given, receives the relay's text for
//    the log (Error::what is static text);
//  - `result: load limit` -> Error{503};
//  - anything else, or a body that does not decode -> Error{500}.
Result<proxy::MediaReply> decode_ng_reply(std::string_view body, proxy::MediaOp op,
                                          std::string* error_reason = nullptr);

// True for a reply body that says `result: pong`.
bool is_ng_pong(std::string_view body);

}  // namespace pinhole::media
