// Keepalive engine: endpoint table, reasons, schedule on the wheel, stateless reply matching.
#include "nat/keepalive_engine.h"

#include <algorithm>
#include <limits>
#include <random>

#include "absl/hash/hash.h"

namespace pinhole::nat {

namespace {

constexpr uint64_t kTicksPerSecond = 1000 / KeepaliveEngine::kTick.count();
constexpr uint64_t kNever = std::numeric_limits<uint64_t>::max();
constexpr int64_t kMaxIntervalSeconds = std::numeric_limits<uint16_t>::max();
// Fixed SipHash key for hashes that must be the same in every process (phase, reason keys):
// not a secret, only a spreading function.
constexpr std::array<uint64_t, 2> kStableKey{0x70696e686f6c652dULL, 0x6b6565702d616c76ULL};

bool has_crlf(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

uint16_t clamp_interval(std::chrono::seconds s) {
  return static_cast<uint16_t>(std::clamp<int64_t>(s.count(), 1, kMaxIntervalSeconds));
}

std::array<uint64_t, 2> random_secret() {
  std::random_device rd;
  std::array<uint64_t, 2> k{};
  for (auto& w : k) w = (static_cast<uint64_t>(rd()) << 32) | rd();
  return k;
}

std::string from_tag_of(const std::array<uint64_t, 2>& secret) {
  static constexpr std::string_view kHex = "0123456789abcdef";
  uint64_t h = siphash24(secret, "from-tag");
  std::string tag;
  for (int i = 0; i < 12; ++i) tag.push_back(kHex[(h >> (4 * i)) & 0xF]);
  return tag;
}

// Flow bytes in a fixed order for the stable phase hash.
uint64_t phase_hash(const net::Flow& f) {
  std::array<char, 32> b{};
  size_t n = 0;
  b[n++] = static_cast<char>(f.transport);
  for (int i = 0; i < 4; ++i) b[n++] = static_cast<char>(f.local_socket_id >> (8 * i));
  for (uint8_t byte : f.remote.address.bytes()) b[n++] = static_cast<char>(byte);
  b[n++] = static_cast<char>(f.remote.port >> 8);
  b[n++] = static_cast<char>(f.remote.port & 0xff);
  uint64_t h = siphash24(kStableKey, std::string_view(b.data(), n));
  return h ^ (f.connection_id * 0x9E3779B97F4A7C15ULL);
}

}  // namespace

Status validate_keepalive_config(const KeepaliveConfig& c) {
  auto in_range = [](std::chrono::seconds s) { return s.count() >= 1 && s.count() <= kMaxIntervalSeconds; };
  if (!in_range(c.udp_interval) || !in_range(c.stream_interval) || !in_range(c.min_interval)) {
    return Error{500, "keepalive: intervals must be 1..65535 s"};
  }
  if (c.min_interval > c.udp_interval) return Error{500, "keepalive: min_interval above udp_interval"};
  if (c.pong_timeout.count() < 1) return Error{500, "keepalive: pong_timeout must be >= 1 s"};
  if (c.max_misses < 1 || c.max_misses > 255) return Error{500, "keepalive: max_misses must be 1..255"};
  if (c.udp_method == KeepaliveMethod::kCrlf) return Error{500, "keepalive: CRLF pings are for streams, not UDP"};
  if (has_crlf(c.from_uri) || !(c.from_uri.starts_with("sip:") || c.from_uri.starts_with("sips:"))) {
    return Error{500, "keepalive: from_uri must be a sip: or sips: URI"};
  }
  for (const auto& h : c.extra_headers) {
    auto colon = h.find(':');
    if (has_crlf(h) || colon == std::string::npos || colon == 0) {
      return Error{500, "keepalive: extra header must be 'Name: value' on one line"};
    }
  }
  return Status::Ok();
}

size_t KeepaliveEngine::IdHash::operator()(uint32_t id) const { return absl::Hash<net::Flow>{}((*records)[id].flow); }
size_t KeepaliveEngine::IdHash::operator()(const net::Flow& f) const { return absl::Hash<net::Flow>{}(f); }

KeepaliveEngine::KeepaliveEngine(KeepaliveConfig config, const Clock& clock, AdvertisedAddress advertised,
                                 std::optional<std::array<uint64_t, 2>> secret, uint8_t shard)
    : config_(std::move(config)),
      clock_(clock),
      advertised_(std::move(advertised)),
      epoch_(clock.now()),
      signer_(secret ? *secret : random_secret()),
      builder_(config_.udp_method == KeepaliveMethod::kNotify, config_.from_uri,
               from_tag_of(secret ? *secret : kStableKey), config_.extra_headers),
      index_(0, IdHash{&records_}, IdEq{&records_}),
      wheel_(0),
      shard_bits_(static_cast<uint32_t>(shard) << 24) {
  config_.udp_interval = std::chrono::seconds(clamp_interval(config_.udp_interval));
  config_.stream_interval = std::chrono::seconds(clamp_interval(config_.stream_interval));
  config_.min_interval = std::chrono::seconds(clamp_interval(config_.min_interval));
  if (config_.pong_timeout.count() < 1) config_.pong_timeout = std::chrono::seconds(1);
  config_.max_misses = std::clamp<uint32_t>(config_.max_misses, 1, 255);
  if (config_.udp_method == KeepaliveMethod::kCrlf) config_.udp_method = KeepaliveMethod::kOptions;
}

KeepaliveEngine::~KeepaliveEngine() = default;

uint64_t KeepaliveEngine::key_hash(std::string_view key) { return siphash24(kStableKey, key); }

uint64_t KeepaliveEngine::tick_of(TimePoint t) const {
  if (t <= epoch_) return 0;
  return static_cast<uint64_t>((t - epoch_) / kTick);
}

TimePoint KeepaliveEngine::time_of_tick(uint64_t tick) const {
  return epoch_ + std::chrono::duration_cast<Duration>(kTick * static_cast<int64_t>(tick));
}

uint32_t KeepaliveEngine::seconds_of(TimePoint t) const {
  if (t <= epoch_) return 0;
  auto d = t - epoch_;
  auto s = std::chrono::ceil<std::chrono::seconds>(d).count();
  return static_cast<uint32_t>(std::min<int64_t>(s, std::numeric_limits<uint32_t>::max()));
}

std::optional<uint32_t> KeepaliveEngine::lookup(const net::Flow& flow) const {
  auto it = index_.find(flow);
  if (it == index_.end()) return std::nullopt;
  return *it;
}

uint64_t KeepaliveEngine::phase_aligned(uint64_t after_tick, const net::Flow& flow, uint32_t interval_s) const {
  // clamp_interval keeps intervals >= 1 s; the floor of one tick makes that local.
  uint64_t iv = std::max<uint64_t>(uint64_t{interval_s} * kTicksPerSecond, 1);
  uint64_t phase = phase_hash(flow) % iv;
  uint64_t t = after_tick - after_tick % iv + phase;
  if (t <= after_tick) t += iv;
  return t;
}

uint32_t KeepaliveEngine::create(const net::Flow& flow, uint64_t now_tick) {
  uint32_t id = 0;
  if (!free_.empty()) {
    id = free_.back();
    free_.pop_back();
  } else {
    id = static_cast<uint32_t>(records_.size());
    records_.emplace_back();
  }
  Record& r = records_[id];
  r = Record{};
  r.flow = flow;
  r.generation = next_generation_++;
  if (next_generation_ == 0) next_generation_ = 1;
  r.interval_s = clamp_interval(net::is_stream(flow.transport) ? config_.stream_interval : config_.udp_interval);
  r.next_send = phase_aligned(now_tick, flow, r.interval_s);
  r.flags = kLive;
  index_.insert(id);  // after the record holds the flow: the set hashes it
  ++live_;
  ++(net::is_stream(flow.transport) ? stream_ : udp_);
  return id;
}

void KeepaliveEngine::destroy(uint32_t id) {
  Record& r = records_[id];
  if (r.reasons.size() > kIndexAbove) index_reasons(id, false);
  count_mask(r.kinds, -1);
  index_.erase(id);
  wheel_.cancel(id);
  --(net::is_stream(r.flow.transport) ? stream_ : udp_);
  --live_;
  absl::InlinedVector<Reason, 1>().swap(r.reasons);  // give a spilled reason array back
  r.flags = 0;
  free_.push_back(id);
}

uint8_t KeepaliveEngine::reason_mask(const Record& r) {
  uint8_t m = 0;
  for (const Reason& x : r.reasons) m |= static_cast<uint8_t>(1U << static_cast<unsigned>(x.kind));
  return m;
}

void KeepaliveEngine::count_mask(uint8_t mask, int delta) {
  for (size_t k = 0; k < kKeepaliveReasonCount; ++k) {
    if ((mask & (1U << k)) != 0) by_reason_[k] = static_cast<size_t>(static_cast<int64_t>(by_reason_[k]) + delta);
  }
}

void KeepaliveEngine::rearm(uint32_t id, uint64_t now_tick) {
  const Record& r = records_[id];
  uint64_t due = r.reasons.empty() ? kNever : static_cast<uint64_t>(r.reasons_due_s) * kTicksPerSecond;
  uint64_t iv = r.interval_s * kTicksPerSecond;
  if ((r.flags & kSuppressed) == 0) due = std::min(due, r.next_send);
  if ((r.flags & kAwaiting) != 0) {
    uint64_t wait = std::min<uint64_t>(static_cast<uint64_t>(config_.pong_timeout.count()) * kTicksPerSecond, iv);
    due = std::min(due, r.next_send - iv + wait);
  }
  if (due == kNever) due = now_tick + 1;  // cannot happen: a live endpoint has a reason
  wheel_.schedule(id, due);
}

bool KeepaliveEngine::set_reason(const net::Flow& flow, KeepaliveReason r, std::string_view key,
                                 std::chrono::seconds expires) {
  return set_reason_hashed(flow, r, key_hash(key), expires);
}

void KeepaliveEngine::index_reasons(uint32_t id, bool add) {
  const Record& rec = records_[id];
  for (size_t i = 0; i < rec.reasons.size(); ++i) {
    ReasonRef ref{id, rec.reasons[i].kind, rec.reasons[i].key_hash};
    if (add) {
      reason_index_[ref] = static_cast<uint32_t>(i);
    } else {
      reason_index_.erase(ref);
    }
  }
}

bool KeepaliveEngine::set_reason_hashed(const net::Flow& flow, KeepaliveReason r, uint64_t hash,
                                        std::chrono::seconds expires) {
  const auto bit = static_cast<uint8_t>(1U << static_cast<unsigned>(r));
  // The reason's position, and whether another of its kind remains (small records: one pass;
  // indexed ones: a lookup, and "another" is assumed until process() looks).
  struct Found {
    std::optional<size_t> at;
    bool other_of_kind = true;
  };
  auto find = [&](uint32_t id) {
    Record& rec = records_[id];
    Found f;
    if (rec.reasons.size() > kIndexAbove) {
      if (auto it = reason_index_.find(ReasonRef{id, r, hash}); it != reason_index_.end()) f.at = it->second;
      return f;
    }
    f.other_of_kind = false;
    for (size_t i = 0; i < rec.reasons.size(); ++i) {
      const Reason& x = rec.reasons[i];
      if (x.kind != r) continue;
      if (!f.at && x.key_hash == hash) {
        f.at = i;
      } else {
        f.other_of_kind = true;
      }
    }
    return f;
  };
  auto set_kinds = [&](Record& rec, uint8_t kinds) {
    if (kinds == rec.kinds) return;
    count_mask(rec.kinds, -1);
    count_mask(kinds, +1);
    rec.kinds = kinds;
  };
  if (expires.count() <= 0) {
    auto id = lookup(flow);
    if (!id) return true;
    Record& rec = records_[*id];
    Found f = find(*id);
    if (!f.at) return true;
    if (rec.reasons.size() > kIndexAbove) {
      // Indexed: the last reason moves into the gap; below the threshold the index goes.
      reason_index_.erase(ReasonRef{*id, r, hash});
      if (*f.at != rec.reasons.size() - 1) {
        rec.reasons[*f.at] = rec.reasons.back();
        const Reason& moved = rec.reasons[*f.at];
        reason_index_[ReasonRef{*id, moved.kind, moved.key_hash}] = static_cast<uint32_t>(*f.at);
      }
      rec.reasons.pop_back();
      if (rec.reasons.size() == kIndexAbove) index_reasons(*id, false);
    } else {
      rec.reasons.erase(rec.reasons.begin() + static_cast<ptrdiff_t>(*f.at));
    }
    if (rec.reasons.empty()) {
      destroy(*id);
      return true;
    }
    if (!f.other_of_kind) set_kinds(rec, static_cast<uint8_t>(rec.kinds & ~bit));
    rearm(*id, tick_of(clock_.now()));
    return true;
  }
  TimePoint now = clock_.now();
  uint64_t now_tick = tick_of(now);
  auto found = lookup(flow);
  if (!found && free_.empty() && records_.size() >= kMaxEndpoints) return false;
  uint32_t id = found ? *found : create(flow, now_tick);
  Record& rec = records_[id];
  uint64_t until = static_cast<uint64_t>(seconds_of(now)) + static_cast<uint64_t>(expires.count());
  auto expires_s = static_cast<uint32_t>(std::min<uint64_t>(until, std::numeric_limits<uint32_t>::max()));
  if (Found f = find(id); f.at) {
    rec.reasons[*f.at].expires_s = expires_s;  // a later expiry leaves reasons_due_s a (valid) earlier bound
  } else {
    rec.reasons.push_back(Reason{hash, expires_s, r});
    if (rec.reasons.size() == kIndexAbove + 1) {
      index_reasons(id, true);
    } else if (rec.reasons.size() > kIndexAbove) {
      reason_index_[ReasonRef{id, r, hash}] = static_cast<uint32_t>(rec.reasons.size() - 1);
    }
  }
  rec.reasons_due_s = std::min(rec.reasons_due_s, expires_s);
  set_kinds(rec, static_cast<uint8_t>(rec.kinds | bit));
  rearm(id, now_tick);
  return true;
}

void KeepaliveEngine::remove_reason(const net::Flow& flow, KeepaliveReason r, std::string_view key) {
  set_reason_hashed(flow, r, key_hash(key), std::chrono::seconds(0));
}

bool KeepaliveEngine::remove_endpoint(const net::Flow& flow) {
  auto id = lookup(flow);
  if (!id) return false;
  destroy(*id);
  return true;
}

void KeepaliveEngine::suppress(const net::Flow& flow, bool client_keeps_alive) {
  auto id = lookup(flow);
  if (!id) return;
  Record& r = records_[*id];
  uint64_t now_tick = tick_of(clock_.now());
  if (client_keeps_alive) {
    r.flags = static_cast<uint8_t>((r.flags | kSuppressed) & ~kAwaiting);
    r.misses = 0;
  } else if ((r.flags & kSuppressed) != 0) {
    r.flags = static_cast<uint8_t>(r.flags & ~kSuppressed);
    r.next_send = phase_aligned(now_tick, r.flow, r.interval_s);
  }
  rearm(*id, now_tick);
}

const std::string& KeepaliveEngine::sent_by(uint32_t local_socket_id) {
  auto it = advertised_cache_.find(local_socket_id);
  if (it != advertised_cache_.end()) return it->second;
  std::string value = advertised_ ? advertised_(local_socket_id) : std::string();
  if (value.empty() || has_crlf(value)) value = "pinhole.invalid";
  return advertised_cache_.emplace(local_socket_id, std::move(value)).first->second;
}

void KeepaliveEngine::build_ping(uint32_t id, std::string& out) {
  Record& r = records_[id];
  if (net::is_stream(r.flow.transport)) {
    out.assign(kCrlfPing);
    return;
  }
  KeepaliveToken token = signer_.token(id, r.generation);
  token.index |= shard_bits_;  // signed without the shard: it only says which engine to ask
  if (config_.udp_method == KeepaliveMethod::kStun) {
    append_stun_keepalive(out, token, config_.stun_fingerprint);
    return;
  }
  // CSeq stays below 2^31 (RFC 3261 §8.1.1.5).
  uint32_t cseq = r.sent % 0x7fffffffU + 1;
  builder_.build(out, r.flow.remote.unmapped(), sent_by(r.flow.local_socket_id), token, cseq);
}

void KeepaliveEngine::process(uint32_t id, uint64_t now_tick, Due& out) {
  Record& r = records_[id];
  // 1. Expired reasons; the endpoint goes with its last one.
  // Indexed records are looked at on every visit: their kinds bits may be stale (see
  // reason_index_); a visit is at most once per ping interval.
  if (static_cast<uint64_t>(r.reasons_due_s) * kTicksPerSecond <= now_tick || r.reasons.size() > kIndexAbove) {
    auto expired = [&](const Reason& x) { return x.expires_s * kTicksPerSecond <= now_tick; };
    if (r.reasons.size() > kIndexAbove && std::any_of(r.reasons.begin(), r.reasons.end(), expired)) {
      index_reasons(id, false);  // positions change below
    }
    bool was_indexed = r.reasons.size() > kIndexAbove;
    size_t before = r.reasons.size();
    r.reasons.erase(std::remove_if(r.reasons.begin(), r.reasons.end(), expired), r.reasons.end());
    if (r.reasons.empty()) {
      out.expired.push_back(r.flow);
      destroy(id);
      return;
    }
    if (was_indexed && r.reasons.size() != before && r.reasons.size() > kIndexAbove) index_reasons(id, true);
    r.reasons_due_s = UINT32_MAX;
    for (const Reason& x : r.reasons) r.reasons_due_s = std::min(r.reasons_due_s, x.expires_s);
    uint8_t kinds = reason_mask(r);
    count_mask(r.kinds, -1);
    count_mask(kinds, +1);
    r.kinds = kinds;
  }
  uint64_t iv = r.interval_s * kTicksPerSecond;
  // 2. An unanswered ping past its wait is a miss.
  if ((r.flags & kAwaiting) != 0) {
    uint64_t wait = std::min<uint64_t>(static_cast<uint64_t>(config_.pong_timeout.count()) * kTicksPerSecond, iv);
    if (r.next_send - iv + wait <= now_tick) {
      r.flags = static_cast<uint8_t>(r.flags & ~kAwaiting);
      ++r.misses;
      ++timeouts_;
      if (r.misses >= config_.max_misses) {
        ++dead_;
        out.dead.push_back(r.flow);
        destroy(id);
        return;
      }
    }
  }
  // 3. The ping itself, at the endpoint's phase.
  if ((r.flags & kSuppressed) == 0 && r.next_send <= now_tick) {
    Send& s = out.sends.emplace_back();
    s.flow = r.flow;
    build_ping(id, s.bytes);
    ++r.sent;
    ++sent_;
    r.flags |= kAwaiting;
    r.next_send += iv;
    // Fell more than an interval behind (the loop stalled): realign to the phase, no catch-up burst.
    if (r.next_send <= now_tick) r.next_send = phase_aligned(now_tick, r.flow, r.interval_s);
  }
  rearm(id, now_tick);
}

KeepaliveEngine::Due KeepaliveEngine::advance(TimePoint now) {
  Due d;
  advance(now, d);
  return d;
}

void KeepaliveEngine::advance(TimePoint now, Due& out) {
  out.sends.clear();
  out.dead.clear();
  out.expired.clear();
  uint64_t now_tick = tick_of(now);
  wheel_.advance(now_tick, fired_);
  for (uint32_t id : fired_) {
    if ((records_[id].flags & kLive) != 0) process(id, now_tick, out);
  }
}

std::optional<TimePoint> KeepaliveEngine::next_deadline() const {
  auto t = wheel_.next_tick();
  if (!t) return std::nullopt;
  return time_of_tick(*t);
}

std::optional<uint8_t> KeepaliveEngine::reply_shard(const sip::Message& response) {
  auto token = sip_response_token(response);
  if (!token) return std::nullopt;
  return static_cast<uint8_t>(token->index >> 24);
}

std::optional<uint8_t> KeepaliveEngine::stun_reply_shard(std::string_view datagram) {
  auto m = decode_binding_response(datagram);
  if (!m) return std::nullopt;
  return static_cast<uint8_t>(token_from_stun_id(m->transaction_id).index >> 24);
}

KeepaliveEngine::ReplyKind KeepaliveEngine::on_token(KeepaliveToken token, const net::Flow& source) {
  if ((token.index & ~(kMaxEndpoints - 1)) != shard_bits_) return ReplyKind::kNotOurs;
  token.index &= kMaxEndpoints - 1;
  if (token.index >= records_.size()) return ReplyKind::kNotOurs;
  Record& r = records_[token.index];
  if ((r.flags & kLive) == 0 || !signer_.verify(token, r.generation)) return ReplyKind::kNotOurs;
  // A reply must come back over the transport and socket the ping left from; anything else is a
  // token lifted from elsewhere.
  if (source.transport != r.flow.transport || source.local_socket_id != r.flow.local_socket_id) {
    return ReplyKind::kNotOurs;
  }
  if (source.remote.unmapped() != r.flow.remote.unmapped()) {
    ++r.rebindings;
    ++rebindings_;
    uint16_t min_iv = clamp_interval(config_.min_interval);
    if (config_.learn_interval && r.interval_s > min_iv) {
      uint64_t old_iv = r.interval_s * kTicksPerSecond;
      r.interval_s = std::max<uint16_t>(min_iv, static_cast<uint16_t>(r.interval_s / 2));
      uint64_t last_send = r.next_send - old_iv;
      r.next_send = std::max(last_send + r.interval_s * kTicksPerSecond, wheel_.current_tick() + 1);
      rearm(token.index, wheel_.current_tick());
    }
    return ReplyKind::kRebinding;
  }
  ++r.replies;
  ++replies_;
  r.misses = 0;
  r.flags = static_cast<uint8_t>(r.flags & ~kAwaiting);
  return ReplyKind::kAlive;
}

KeepaliveEngine::ReplyKind KeepaliveEngine::on_sip_response(const sip::Message& response, const net::Flow& source) {
  auto token = sip_response_token(response);
  if (!token) return ReplyKind::kNotOurs;
  return on_token(*token, source);
}

KeepaliveEngine::ReplyKind KeepaliveEngine::on_stun(std::string_view datagram, const net::Flow& source) {
  auto m = decode_binding_response(datagram);
  if (!m) return ReplyKind::kNotOurs;
  return on_token(token_from_stun_id(m->transaction_id), source);
}

void KeepaliveEngine::on_pong(const net::Flow& flow) {
  auto id = lookup(flow);
  if (!id) return;
  Record& r = records_[*id];
  if ((r.flags & kAwaiting) == 0) return;
  ++r.replies;
  ++replies_;
  r.misses = 0;
  r.flags = static_cast<uint8_t>(r.flags & ~kAwaiting);
}

KeepaliveEngine::EndpointView KeepaliveEngine::view(const Record& r) const {
  static constexpr std::string_view kHex = "0123456789abcdef";
  EndpointView v{};
  v.flow = r.flow;
  for (const Reason& x : r.reasons) {
    std::string key;
    for (int i = 15; i >= 0; --i) key.push_back(kHex[(x.key_hash >> (4 * i)) & 0xF]);
    v.reasons.emplace_back(x.kind, std::move(key));
    v.details.push_back({x.kind, x.key_hash, epoch_ + std::chrono::seconds(x.expires_s)});
  }
  v.interval = std::chrono::seconds(r.interval_s);
  v.misses = r.misses;
  v.sent = r.sent;
  v.replies = r.replies;
  v.rebindings = r.rebindings;
  v.suppressed = (r.flags & kSuppressed) != 0;
  v.next_send = time_of_tick(r.next_send);
  return v;
}

std::vector<KeepaliveEngine::EndpointView> KeepaliveEngine::list() const {
  std::vector<EndpointView> out;
  out.reserve(live_);
  for (const Record& r : records_) {
    if ((r.flags & kLive) != 0) out.push_back(view(r));
  }
  return out;
}

std::optional<KeepaliveEngine::EndpointView> KeepaliveEngine::find(const net::Flow& flow) const {
  auto id = lookup(flow);
  if (!id) return std::nullopt;
  return view(records_[*id]);
}

KeepaliveEngine::Counters KeepaliveEngine::counters() const {
  Counters c{};
  c.sent = sent_;
  c.replies = replies_;
  c.timeouts = timeouts_;
  c.dead = dead_;
  c.rebindings = rebindings_;
  for (size_t k = 0; k < kKeepaliveReasonCount; ++k) c.endpoints_by_reason[k] = by_reason_[k];
  c.endpoints_udp = udp_;
  c.endpoints_stream = stream_;
  return c;
}

size_t KeepaliveEngine::memory_bytes() const {
  size_t bytes = records_.capacity() * sizeof(Record) + free_.capacity() * sizeof(uint32_t) +
                 index_.capacity() * (sizeof(uint32_t) + 1) + wheel_.memory_bytes() +
                 fired_.capacity() * sizeof(uint32_t) +
                 reason_index_.capacity() * (sizeof(std::pair<ReasonRef, uint32_t>) + 1);
  for (const Record& r : records_) {
    if (r.reasons.capacity() > 1) bytes += r.reasons.capacity() * sizeof(Reason);
  }
  for (const auto& [id, text] : advertised_cache_) bytes += sizeof(id) + sizeof(std::string) + text.capacity();
  return bytes;
}

void KeepaliveEngine::reserve(size_t endpoints) {
  records_.reserve(endpoints);
  index_.reserve(endpoints);
  wheel_.reserve(endpoints);
}

}  // namespace pinhole::nat
