// RegisterHandler: applies one REGISTER to the Location (RFC 3261 §10.3 steps 5-8, RFC 5626 §6,
// RFC 3327) and says what to answer and what to persist. Socket-free and store-free: the caller
// (the proxy's registrar mode) authenticates first, sends the response, and writes `saved` /
// `removed` to the store.
//
// Choices where the RFCs leave room (each one is tested):
//   - A REGISTER fails as a whole: any error leaves the Location untouched.
//   - Expires (header or Contact parameter) that is not a number: 400. A number beyond 2^32-1:
//     treated as 2^32-1 (RFC 3261 §20.19 bounds the field at 2^32-1; RFC 4475 §3.1.2.4 lets an
//     element keep going when only the expiry is out of range), i.e. clamped to max_expires.
//   - More Contacts than max_contacts: 400 "Too Many Contacts" (the parser refuses more than 64
//     values with 413; that is answered as 400 the same way).
//   - An AOR that would hold more than max_bindings_per_aor live bindings: 403 "Too Many
//     Registered Contacts". Not 503 (Kamailio's answer): a 503 tells RFC 3263 clients and
//     upstream proxies that this server is overloaded, so they fail over or back off from the
//     whole server, while this is a per-AOR policy that retrying elsewhere does not change.
//     A request that does not raise the count (refreshes, removals) passes even above the limit
//     (the limit may have been lowered since the bindings were made).
//   - Contact URIs other than sip/sips: 400 (pinhole routes to its users over SIP flows only).
//   - Outbound (RFC 5626) is in effect for a Contact with +sip.instance and reg-id when the
//     request says `Supported: outbound`; without it reg-id is ignored (the binding is keyed by
//     the instance alone) and no `Require: outbound` is sent, as RFC 3261 forbids requiring an
//     extension the UAC did not announce.
//   - A URI-keyed binding keeps the binding_id it was created with (the Contact URI as first
//     sent); a later REGISTER with an RFC 3261 §19.1.4-equal URI written differently updates it
//     and its `contact` text.
//   - Contact header parameters other than expires, q, +sip.instance and reg-id are not kept
//     (BindingRecord has no place for them; RFC 4475 cparam01 only asks that such a parameter is
//     never turned into a URI parameter).
//
// Threads: handle() may be called from any thread concurrently; the handler keeps no state of its
// own (it holds a copy of the config and a reference to the Location, which must outlive it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/flow.h"
#include "registrar/location.h"
#include "registrar/registrar_config.h"
#include "sip/message.h"
#include "store/records.h"

namespace pinhole::registrar {

// Bounds a REGISTER must keep whatever the config says; beyond them: 400, nothing changes.
inline constexpr size_t kMaxContactUriLength = 1024;  // phones send < 300; a 200 lists every binding
inline constexpr size_t kMaxInstanceLength = 256;     // a urn:uuid is 45
// User-Agent is kept for operators only: a longer one is cut, not refused.
inline constexpr size_t kMaxUserAgentLength = 256;
// Commit attempts when other threads keep changing the same AOR (see Location::commit).
inline constexpr int kMaxCommitAttempts = 8;

// Where and how the REGISTER arrived (filled by the caller).
struct RegisterContext {
  net::Flow flow;         // the flow it came on: requests to the bindings go back over it
  std::string nat;        // comma-separated NAT tests that fired, "" = not NATed (nat::format_nat_tests)
  std::string node;       // this pinhole node's id, stored with the bindings
  int64_t now = 0;        // unix seconds
  bool first_hop = true;  // we are the edge the UA talks to, or the proxy in front of us put ;ob in
                          // its Path: outbound (reg-id) may be used; false answers such a REGISTER 439
};

// What to do after handle(): answer `status` (with `reason`, or the default phrase when empty, and
// the extra `headers`), then persist `saved` and delete `removed`. On any error `saved` and
// `removed` are empty: nothing changed.
// Appends one Contact line of a 2xx to REGISTER for `b` (RFC 3261 §10.3 step 8): its URI, the
// remaining expires, q, +sip.instance and reg-id, CRLF.
void append_contact(std::string& out, const store::BindingRecord& b, int64_t now);

struct RegisterOutcome {
  uint16_t status = 200;
  std::string_view reason;  // static text, or empty for the default phrase
  // Extra header lines for the response, each ending CRLF: on 200 a Contact line per current
  // binding with ;expires=N (and q, +sip.instance, reg-id when it has them), Require: outbound and
  // Flow-Timer when outbound was used, Path when the UA supports path, Date; on 423 Min-Expires;
  // on 420 Unsupported.
  std::string headers;
  std::vector<store::BindingRecord> saved;                   // added or refreshed: to persist
  std::vector<std::pair<std::string, std::string>> removed;  // (aor, binding_id) to delete
  std::string aor;                                           // canonical AOR ("" when the To was unusable)
};

class RegisterHandler {
 public:
  // `location` must outlive the handler; `config` is copied.
  RegisterHandler(const RegistrarConfig& config, Location& location);

  // `request`: a parsed REGISTER whose Request-URI domain is ours and that passed authentication.
  // Reads the request only (its lazily parsed values are cached on first use, so the caller's
  // thread must own the message, as always).
  RegisterOutcome handle(const sip::Message& request, const RegisterContext& ctx) const;

 private:
  RegistrarConfig config_;
  Location& location_;
};

}  // namespace pinhole::registrar
