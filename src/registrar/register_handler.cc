// REGISTER processing (see register_handler.h).
#include "registrar/register_handler.h"

#include <algorithm>
#include <array>
#include <ctime>
#include <limits>
#include <optional>
#include <span>

#include "registrar/aor.h"
#include "sip/charset.h"
#include "sip/sanity.h"
#include "sip/scalar_headers.h"
#include "sip/scanner.h"

namespace pinhole::registrar {
namespace {

// Option tags of Require that this registrar implements (RFC 3327, RFC 5626).
constexpr std::array<std::string_view, 2> kUnderstood = {"path", "outbound"};

// One Contact of the request, checked and with its expiry granted.
struct Requested {
  const sip::Contact* contact = nullptr;
  std::string key;  // binding_id when keyed by instance; empty: keyed by the Contact URI
  std::string_view instance;
  uint32_t reg_id = 0;     // 0 unless outbound is in effect for this Contact
  uint32_t requested = 0;  // what the UA asked for
  uint32_t granted = 0;    // 0: remove
  int32_t q_milli = -1;
};

// A binding as the request reworks it.
struct Slot {
  store::BindingRecord record;
  bool changed = false;       // to persist
  bool from_request = false;  // made or updated by an earlier Contact of this same request
};

RegisterOutcome failure(Error error, std::string aor = {}) {
  RegisterOutcome out;
  out.status = error.status;
  out.reason = error.what;
  out.aor = std::move(aor);
  return out;
}

// delta-seconds that saturates at 2^32-1 instead of failing (see the header: an overlarge expiry
// is clamped); anything but digits is an error.
Result<uint32_t> parse_expiry(std::string_view digits, std::string_view malformed) {
  if (digits.empty()) return bad_request(malformed);
  uint64_t v = 0;
  for (char c : digits) {
    if (!sip::is_digit(c)) return bad_request(malformed);
    v = std::min<uint64_t>(v * 10 + static_cast<uint64_t>(c - '0'), std::numeric_limits<uint32_t>::max());
  }
  return static_cast<uint32_t>(v);
}

// qvalue = ( "0" [ "." 0*3DIGIT ] ) / ( "1" [ "." 0*3("0") ] ), in thousandths.
Result<int32_t> parse_q(std::string_view text) {
  constexpr std::string_view kMalformed = "malformed q-value";
  if (text.empty() || text.size() > 5 || (text[0] != '0' && text[0] != '1')) return bad_request(kMalformed);
  int32_t whole = text[0] - '0';
  if (text.size() == 1) return whole * 1000;
  if (text[1] != '.') return bad_request(kMalformed);
  int32_t frac = 0;
  int32_t scale = 100;
  for (char c : text.substr(2)) {
    if (!sip::is_digit(c)) return bad_request(kMalformed);
    frac += (c - '0') * scale;
    scale /= 10;
  }
  if (whole == 1 && frac != 0) return bad_request(kMalformed);
  return whole * 1000 + frac;
}

// reg-id = 1*DIGIT, 1 to 2^31-1 (RFC 5626 §4.2 gives the range).
Result<uint32_t> parse_reg_id(std::string_view text) {
  auto v = sip::parse_delta_seconds(text);
  if (!v.ok() || *v == 0 || *v > 0x7fffffffU) return bad_request("malformed reg-id");
  return *v;
}

void append_q(std::string& out, int32_t q_milli) {
  if (q_milli >= 1000) {
    out += "1";
    return;
  }
  out += "0";
  if (q_milli <= 0) return;
  out += '.';
  std::array<char, 3> digits = {static_cast<char>('0' + q_milli / 100), static_cast<char>('0' + q_milli / 10 % 10),
                                static_cast<char>('0' + q_milli % 10)};
  size_t n = digits[2] != '0' ? 3 : digits[1] != '0' ? 2 : 1;
  out.append(digits.data(), n);
}

void append_2digits(std::string& out, int v) {
  out.push_back(static_cast<char>('0' + v / 10 % 10));
  out.push_back(static_cast<char>('0' + v % 10));
}

// "Date: Sat, 13 Nov 2010 23:29:00 GMT" (RFC 3261 §20.17, rfc1123-date); names spelled out here
// rather than by strftime, whose %a/%b follow the locale.
void append_date(std::string& out, int64_t now) {
  static constexpr std::array<std::string_view, 7> kDays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr std::array<std::string_view, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                               "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  auto t = static_cast<std::time_t>(now);
  std::tm tm{};
  if (now < 0 || gmtime_r(&t, &tm) == nullptr || tm.tm_year + 1900 > 9999) return;
  out += "Date: ";
  out += kDays[static_cast<size_t>(tm.tm_wday) % 7];
  out += ", ";
  append_2digits(out, tm.tm_mday);
  out += ' ';
  out += kMonths[static_cast<size_t>(tm.tm_mon) % 12];
  out += ' ';
  out += std::to_string(tm.tm_year + 1900);
  out += ' ';
  append_2digits(out, tm.tm_hour);
  out += ':';
  append_2digits(out, tm.tm_min);
  out += ':';
  append_2digits(out, tm.tm_sec);
  out += " GMT\r\n";
}

std::vector<store::BindingRecord> live_sorted(std::vector<store::BindingRecord> bindings) {
  std::sort(bindings.begin(), bindings.end(), binding_order);
  return bindings;
}

// Whether a stored URI-keyed binding is the Contact `uri` (RFC 3261 §19.1.4).
bool same_contact(const store::BindingRecord& b, const sip::Uri& uri) {
  if (!b.instance.empty()) return false;
  auto stored = sip::parse_uri(b.contact);
  return stored.ok() && sip::uri_equal(*stored, uri);
}

struct Options {
  bool path = false;
  bool outbound = false;
};

Result<Options> supported_options(const sip::Message& request) {
  Options o;
  for (const auto& h : request.headers()) {
    if (h.kind != sip::HeaderKind::kSupported) continue;
    PINHOLE_TRY(sip::for_each_option_tag(h.value, [&](std::string_view tag) {
      if (sip::iequals(tag, "path")) o.path = true;
      if (sip::iequals(tag, "outbound")) o.outbound = true;
    }));
  }
  return o;
}

}  // namespace

// The URI always goes inside <>: a URI with parameters or ?headers written bare would lend them
// to the header (RFC 3261 §20.10).
void append_contact(std::string& out, const store::BindingRecord& b, int64_t now) {
  out += "Contact: <";
  out += b.contact;
  out += ">;expires=";
  out += std::to_string(std::max<int64_t>(b.expires_at - now, 0));
  if (b.q_milli >= 0) {
    out += ";q=";
    append_q(out, b.q_milli);
  }
  if (!b.instance.empty()) {
    out += ";+sip.instance=\"";
    out += b.instance;
    out += '"';
  }
  if (b.reg_id != 0) {
    out += ";reg-id=";
    out += std::to_string(b.reg_id);
  }
  out += "\r\n";
}

RegisterHandler::RegisterHandler(const RegistrarConfig& config, Location& location)
    : config_(config), location_(location) {}

RegisterOutcome RegisterHandler::handle(const sip::Message& request, const RegisterContext& ctx) const {
  if (!request.is_request() || request.method() != sip::Method::kRegister) return failure(Error{500, "not a REGISTER"});

  // RFC 3261 §10.3 step 5: the AOR, from To, in canonical form; it must be one of ours.
  auto to = request.to();
  if (!to.ok()) return failure(to.error());
  auto aor_result = canonical_aor((*to)->uri);
  if (!aor_result.ok()) return failure(aor_result.error());
  std::string aor = std::move(*aor_result);
  if (!is_our_domain((*to)->uri, config_.domains)) return failure(Error{404, "not a domain of this registrar"}, aor);

  auto call_id = request.call_id();
  if (!call_id.ok()) return failure(call_id.error(), aor);
  auto cseq = request.cseq();
  if (!cseq.ok()) return failure(cseq.error(), aor);

  // Step 2: extensions the UA requires and we do not implement.
  std::string unsupported = sip::unsupported_options(request, sip::HeaderKind::kRequire, kUnderstood);
  if (!unsupported.empty()) {
    RegisterOutcome out = failure(Error{420, {}}, aor);
    out.headers = "Unsupported: " + unsupported + "\r\n";
    return out;
  }
  auto options = supported_options(request);
  if (!options.ok()) return failure(options.error(), aor);

  auto contacts = request.contacts();
  if (!contacts.ok()) {
    // 413 is the parser's cap on list values: a REGISTER with that many Contacts is over ours too.
    if (contacts.error().status == 413) return failure(bad_request("Too Many Contacts"), aor);
    return failure(contacts.error(), aor);
  }
  std::optional<uint32_t> header_expires;
  if (const sip::HeaderField* h = request.header(sip::HeaderKind::kExpires)) {
    auto v = parse_expiry(sip::trim_lws(h->value), "malformed Expires");
    if (!v.ok()) return failure(v.error(), aor);
    header_expires = *v;
  }
  auto paths = request.paths();
  if (!paths.ok()) return failure(paths.error(), aor);

  // Contacts checked one by one before anything changes.
  std::span<const sip::Contact> list = *contacts;
  bool star = list.size() == 1 && list[0].star;
  if (star && (!header_expires || *header_expires != 0)) return failure(bad_request("Contact * needs Expires: 0"), aor);
  if (list.size() > config_.max_contacts) return failure(bad_request("Too Many Contacts"), aor);

  std::vector<Requested> requested;
  requested.reserve(star ? 0 : list.size());
  bool outbound_used = false;
  bool too_brief = false;
  bool short_lease = !ctx.nat.empty() && ctx.flow.transport == net::Transport::kUdp && config_.nat_udp_lease > 0;
  for (size_t i = 0; !star && i < list.size(); ++i) {
    const sip::Contact& c = list[i];
    if (!c.uri.is_sip()) return failure(bad_request("Contact URI is not sip or sips"), aor);
    if (c.uri.raw.size() > kMaxContactUriLength) return failure(bad_request("Contact URI too long"), aor);
    Requested r;
    r.contact = &c;
    // Expiry: the Contact's parameter, else the Expires header, else the default (§10.3 step 7).
    if (!c.expires.empty()) {
      auto v = parse_expiry(c.expires, "malformed expires parameter");
      if (!v.ok()) return failure(v.error(), aor);
      r.requested = *v;
    } else if (c.param("expires")) {
      return failure(bad_request("malformed expires parameter"), aor);  // present without a value
    } else {
      r.requested = header_expires.value_or(config_.default_expires);
    }
    if (r.requested != 0 && r.requested < config_.min_expires) too_brief = true;
    r.granted = std::min(r.requested, config_.max_expires);
    if (short_lease && r.granted != 0)
      r.granted = std::min(r.granted, std::max(config_.nat_udp_lease, config_.min_expires));
    if (!c.q.empty() || c.param("q")) {
      auto q = parse_q(c.q);
      if (!q.ok()) return failure(q.error(), aor);
      r.q_milli = *q;
    }
    if (!c.instance.empty()) {
      if (c.instance.size() > kMaxInstanceLength) return failure(bad_request("+sip.instance too long"), aor);
      r.instance = c.instance;
      r.key = std::string(c.instance);
      if (!c.reg_id.empty() && options->outbound) {
        // RFC 5626 §6: one binding per instance and reg-id (one per flow the UA keeps).
        auto reg_id = parse_reg_id(c.reg_id);
        if (!reg_id.ok()) return failure(reg_id.error(), aor);
        r.reg_id = *reg_id;
        r.key += ";reg-id=" + std::to_string(r.reg_id);
        outbound_used = true;
      }
    }
    requested.push_back(std::move(r));
  }
  if (too_brief) {
    RegisterOutcome out = failure(Error{423, {}}, aor);
    out.headers = "Min-Expires: " + std::to_string(config_.min_expires) + "\r\n";
    return out;
  }
  // RFC 5626 §6: outbound needs every hop between the UA and us to keep the flow: the proxy in
  // front of us (if any) said so with ;ob in its Path; the caller works that out (ctx.first_hop).
  if (outbound_used && !ctx.first_hop) return failure(Error{439, {}}, aor);

  std::vector<std::string> path_values;
  path_values.reserve(paths->size());
  for (const auto& p : *paths) path_values.emplace_back(p.raw);
  std::string_view user_agent;
  if (const sip::HeaderField* h = request.header(sip::HeaderKind::kUserAgent))
    user_agent = h->value.substr(0, kMaxUserAgentLength);

  const int64_t now = ctx.now;
  if (list.empty()) {
    // A query (§10.3 step 8 with nothing to change): the current bindings.
    RegisterOutcome out;
    out.aor = aor;
    for (const auto& b : location_.lookup(aor, now)) append_contact(out.headers, b, now);
    append_date(out.headers, now);
    return out;
  }

  for (int attempt = 0; attempt < kMaxCommitAttempts; ++attempt) {
    Location::Snapshot snap = location_.snapshot(aor);
    std::vector<Slot> slots;
    std::vector<std::string> remove_ids;
    slots.reserve(snap.bindings.size() + requested.size());
    for (auto& b : snap.bindings) {
      if (b.expires_at > now) {
        slots.push_back(Slot{std::move(b), false, false});
      } else {
        remove_ids.push_back(b.binding_id);  // lapsed, not swept yet: gone now
      }
    }
    const size_t live_before = slots.size();

    // §10.3 step 6: a binding with this Call-ID and a CSeq not below the request's means the
    // request is stale or replayed: abort.
    auto out_of_order = [&](const Slot& s) {
      return !s.from_request && s.record.call_id == *call_id && s.record.cseq >= cseq->number;
    };
    bool aborted = false;
    if (star) {
      for (const auto& s : slots) aborted = aborted || out_of_order(s);
      if (!aborted) {
        for (const auto& s : slots) remove_ids.push_back(s.record.binding_id);
        slots.clear();
      }
    }
    for (size_t i = 0; !aborted && i < requested.size(); ++i) {
      const Requested& r = requested[i];
      const sip::Uri& uri = r.contact->uri;
      auto found = std::find_if(slots.begin(), slots.end(), [&](const Slot& s) {
        return r.key.empty() ? same_contact(s.record, uri) : !s.record.instance.empty() && s.record.binding_id == r.key;
      });
      if (found != slots.end() && out_of_order(*found)) {
        aborted = true;
        break;
      }
      if (r.granted == 0) {
        if (found != slots.end()) {
          remove_ids.push_back(found->record.binding_id);
          slots.erase(found);
        }
        continue;
      }
      if (found == slots.end()) {
        Slot s;
        s.record.aor = aor;
        s.record.binding_id = r.key.empty() ? std::string(uri.raw) : r.key;
        s.record.registered_at = now;
        slots.push_back(std::move(s));
        found = slots.end() - 1;
      }
      store::BindingRecord& b = found->record;
      b.contact.assign(uri.raw);
      b.instance.assign(r.instance);
      b.reg_id = r.reg_id;
      b.call_id.assign(*call_id);
      b.cseq = cseq->number;
      b.q_milli = r.q_milli;
      b.expires_at = now + r.granted;
      b.registered_at = now;
      b.flow = ctx.flow;
      b.path = path_values;
      b.user_agent.assign(user_agent);
      b.nat = ctx.nat;
      b.node = ctx.node;
      found->changed = true;
      found->from_request = true;
    }
    if (aborted) return failure(Error{500, "out of order"}, aor);
    if (slots.size() > config_.max_bindings_per_aor && slots.size() > live_before)
      return failure(Error{403, "Too Many Registered Contacts"}, aor);

    RegisterOutcome out;
    out.aor = aor;
    std::vector<store::BindingRecord> current;
    current.reserve(slots.size());
    for (auto& s : slots) {
      if (s.changed) out.saved.push_back(s.record);
      current.push_back(std::move(s.record));
    }
    // A binding removed and made again by the same request is saved, not deleted: the caller
    // writes `saved` before `removed`.
    std::sort(remove_ids.begin(), remove_ids.end());
    remove_ids.erase(std::unique(remove_ids.begin(), remove_ids.end()), remove_ids.end());
    std::erase_if(remove_ids, [&](const std::string& id) {
      return std::any_of(out.saved.begin(), out.saved.end(),
                         [&](const store::BindingRecord& b) { return b.binding_id == id; });
    });
    if (!location_.commit(aor, snap.version, remove_ids, out.saved)) continue;  // raced: again

    for (auto& id : remove_ids) out.removed.emplace_back(aor, std::move(id));
    for (const auto& b : live_sorted(std::move(current))) append_contact(out.headers, b, now);
    if (outbound_used) {
      out.headers += "Require: outbound\r\n";
      if (config_.outbound_flow_timer > 0)
        out.headers += "Flow-Timer: " + std::to_string(config_.outbound_flow_timer) + "\r\n";
    }
    if (options->path && !path_values.empty()) {
      // RFC 3327 §5.3: the registrar returns the Path it stored to a UA that supports path.
      out.headers += "Path: ";
      for (size_t i = 0; i < path_values.size(); ++i) {
        if (i > 0) out.headers += ", ";
        out.headers += path_values[i];
      }
      out.headers += "\r\n";
    }
    append_date(out.headers, now);
    return out;
  }
  return failure(Error{500, "location busy"}, aor);
}

}  // namespace pinhole::registrar
