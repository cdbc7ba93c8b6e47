// The NAT keepalive engine (issue 5): which flows towards NATed UAs must be kept alive and why
// (registration, subscription, dialog), one keepalive stream per flow spread evenly over time,
// stateless matching of the replies, misses -> dead, NAT rebinding detection and per-endpoint
// interval learning, RFC 5626 Flow-Timer suppression.
//
// Pure: no sockets, no threads, no reading of the clock except for the `now` of set_reason and
// friends (the injected Clock). advance(now) returns the bytes to send and the flows declared dead;
// the caller (the worker's event loop) sends them from the flow's own local socket and closes/
// unbinds the dead ones.
//
// Memory (the issue asks <= 200 bytes per endpoint at 1,000,000): an endpoint is one 96-byte
// record in a flat vector, 16 bytes in the wheel and a 4-byte id in an open-addressing set keyed
// by the record's flow (~10 bytes a slot at its load factor). Reason keys (binding key, dialog id)
// are stored as 64-bit hashes, never as strings: the first reason lives inline in the record, more
// spill to the heap. Two different keys of one endpoint colliding on 64 bits (p ~ n^2 / 2^65 for
// n keys on that endpoint) would merge two reasons; for the handful of reasons an endpoint has
// that is negligible, and a crafted collision only affects the crafter's own endpoint.
//
// Ownership and threads: one engine per worker, used only on that worker's thread (no locks); the
// lead posts work for a flow to the worker that owns it. The engine borrows the Clock (it must
// outlive the engine) and owns everything else.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/container/inlined_vector.h"
#include "common/clock.h"
#include "common/result.h"
#include "nat/keepalive_messages.h"
#include "nat/keepalive_wheel.h"
#include "net/flow.h"
#include "sip/message.h"

namespace pinhole::nat {

enum class KeepaliveReason : uint8_t { kRegistration, kSubscription, kDialog };
inline constexpr size_t kKeepaliveReasonCount = 3;

struct KeepaliveConfig {
  // 15 s: many home routers and carrier NATs drop an idle UDP mapping after 20-30 s; a ping every
  // 15 s keeps a 20 s mapping alive with 5 s to spare for the wheel's phase rounding, queueing and
  // the reply's own refresh arriving late. (Kamailio's 30 s default does not survive a 20 s NAT.)
  // Cost: an OPTIONS of ~350 bytes plus its ~300-byte reply every 15 s is ~350 bit/s per endpoint;
  // 1,000,000 endpoints ~ 67,000 requests/s. STUN (20 + 32 bytes) is ~7 times cheaper.
  std::chrono::seconds udp_interval{15};
  // CRLF ping on TCP/TLS/WS: RFC 5626 §4.4.1 suggests 120 s less up to 20% jitter; 90 s stays under
  // the common 120 s idle timeouts of stateful firewalls for TCP with margin.
  std::chrono::seconds stream_interval{90};
  // A ping not answered within this (or within the interval, when shorter) is a miss (RFC 5626
  // §4.4.1: a pong within 10 s).
  std::chrono::seconds pong_timeout{10};
  uint32_t max_misses = 3;  // consecutive misses, then dead
  KeepaliveMethod udp_method = KeepaliveMethod::kOptions;
  std::string from_uri = "sip:keepalive@pinhole.invalid";  // From of OPTIONS/NOTIFY
  std::vector<std::string> extra_headers;                  // "Name: value", appended as given
  // After a rebinding (a reply from another address:port than the flow's), halve that endpoint's
  // interval, not below min_interval: the rebinding says its NAT forgets sooner than we pinged.
  bool learn_interval = true;
  std::chrono::seconds min_interval{5};
  bool stun_fingerprint = false;  // add FINGERPRINT to STUN Binding Requests
};

// Start-up check of a config (the config loader calls it): intervals within 1..65535 s,
// min_interval <= udp_interval, pong_timeout >= 1 s, max_misses >= 1, kCrlf not a UDP method,
// from_uri a sip:/sips: URI, no CR/LF anywhere, extra headers of the form "Name: value".
Status validate_keepalive_config(const KeepaliveConfig& config);

// The advertised "host:port" of a local socket (what goes into the keepalive's Via sent-by so the
// UA's answer comes back to that socket). Called on the engine's thread, once per socket id: the
// engine caches the answer (forget_local_socket drops it).
using AdvertisedAddress = std::function<std::string(uint32_t local_socket_id)>;

class KeepaliveEngine {
 public:
  // `config` should have passed validate_keepalive_config; out-of-range values are clamped here so
  // the engine never divides by zero. `secret` keys the reply tokens; by default it is drawn from
  // std::random_device (tests pass one for repeatable bytes). Without `advertised` the Via sent-by
  // is "pinhole.invalid" (tests only). `shard` (the worker index) goes into the top 8 bits of every
  // reply token's index, so a reply that the kernel hands to another worker's socket can be passed
  // to the engine that sent the ping (reply_shard); an engine then holds at most 2^24 endpoints.
  KeepaliveEngine(KeepaliveConfig config, const Clock& clock, AdvertisedAddress advertised = {},
                  std::optional<std::array<uint64_t, 2>> secret = std::nullopt, uint8_t shard = 0);
  KeepaliveEngine(const KeepaliveEngine&) = delete;
  KeepaliveEngine& operator=(const KeepaliveEngine&) = delete;
  ~KeepaliveEngine();

  // Reasons: `key` identifies the reason instance (binding key, subscription dialog id, dialog id).
  // expires == 0 removes it. Re-adding sets the expiry to now + expires (a refresh extends; a
  // shorter grant shortens). An endpoint lives while it has >= 1 reason; the first reason creates
  // it and its first ping is at its hash phase within one interval.
  // False (and nothing changes) only when a new endpoint was needed and the engine is full
  // (kMaxEndpoints).
  bool set_reason(const net::Flow& flow, KeepaliveReason r, std::string_view key, std::chrono::seconds expires);
  void remove_reason(const net::Flow& flow, KeepaliveReason r, std::string_view key);
  // The same with the key already hashed (key_hash()), for reloading what list() exported.
  bool set_reason_hashed(const net::Flow& flow, KeepaliveReason r, uint64_t key_hash, std::chrono::seconds expires);
  bool contains(const net::Flow& flow) const { return index_.contains(flow); }
  // The shard (worker) whose engine sent the ping a reply answers: from a SIP response (top Via
  // branch + Call-ID token) or a STUN Binding response. nullopt: not a keepalive reply.
  static std::optional<uint8_t> reply_shard(const sip::Message& response);
  static std::optional<uint8_t> stun_reply_shard(std::string_view datagram);
  static constexpr uint32_t kMaxEndpoints = 1U << 24;
  // Removes the endpoint and all its reasons (the flow closed). True when it existed.
  bool remove_endpoint(const net::Flow& flow);
  // RFC 5626 Flow-Timer: when the client keeps the flow alive itself we send nothing (and count no
  // misses); the reasons still expire. No-op for a flow without an endpoint.
  void suppress(const net::Flow& flow, bool client_keeps_alive);
  // Stable across processes and restarts (SipHash-2-4 under a fixed key), so persisted hashes stay
  // valid.
  static uint64_t key_hash(std::string_view key);

  // Due work at `now`: keepalives to send (flow + bytes), endpoints declared dead (after
  // max_misses; already removed from the engine), endpoints removed because their last reason
  // expired. Each endpoint's phase within its interval comes from a hash of its flow, so sends
  // are even over time.
  struct Send {
    net::Flow flow;
    std::string bytes;
  };
  struct Due {
    std::vector<Send> sends;
    std::vector<net::Flow> dead;
    std::vector<net::Flow> expired;  // last reason expired: no longer kept alive, not dead
  };
  Due advance(TimePoint now);
  // The same into the caller's Due (cleared first), so its vectors' capacity is reused.
  void advance(TimePoint now, Due& out);
  // When advance() next has something to do: never later than the earliest deadline, possibly a
  // little earlier (then advance() finds nothing and the caller asks again). nullopt when empty.
  std::optional<TimePoint> next_deadline() const;

  // Replies. `source` is the flow the reply came in on. A valid token from a source whose remote
  // differs from the endpoint's is a NAT rebinding: counted, the interval learned, returned so the
  // lead can log/act; the endpoint is not moved (the registration names the old flow) and its
  // misses are not cleared (the old mapping did not answer). kAlive clears the misses.
  enum class ReplyKind : uint8_t { kNotOurs, kAlive, kRebinding };
  ReplyKind on_sip_response(const sip::Message& response, const net::Flow& source);
  ReplyKind on_stun(std::string_view datagram, const net::Flow& source);
  // A CRLF pong on a stream flow; counts only when a ping is outstanding.
  void on_pong(const net::Flow& flow);
  // Drops the cached advertised address of a local socket (it was re-bound or closed).
  void forget_local_socket(uint32_t local_socket_id) { advertised_cache_.erase(local_socket_id); }

  // Observability and persistence.
  struct ReasonDetail {
    KeepaliveReason reason = KeepaliveReason::kRegistration;
    uint64_t key_hash = 0;
    TimePoint expires;
  };
  struct EndpointView {
    net::Flow flow;
    std::vector<std::pair<KeepaliveReason, std::string>> reasons;  // key as 16 hex of its hash
    std::vector<ReasonDetail> details;                             // same order, for persistence
    std::chrono::seconds interval{0};
    uint32_t misses = 0;
    uint64_t sent = 0, replies = 0, rebindings = 0;
    bool suppressed = false;
    TimePoint next_send;
  };
  std::vector<EndpointView> list() const;
  std::optional<EndpointView> find(const net::Flow& flow) const;
  struct Counters {
    uint64_t sent, replies, timeouts, dead, rebindings;
    size_t endpoints_by_reason[kKeepaliveReasonCount];  // endpoints with >= 1 reason of that kind
    size_t endpoints_udp, endpoints_stream;
  };
  Counters counters() const;
  size_t size() const { return live_; }
  // Bytes held by the engine's tables (records, wheel, index set, spilled reasons): the engine's
  // own accounting, next to the RSS the bench measures.
  size_t memory_bytes() const;
  void reserve(size_t endpoints);

  static constexpr std::chrono::milliseconds kTick{10};

 private:
  struct Reason {
    uint64_t key_hash;
    uint32_t expires_s;  // seconds since epoch_, rounded up
    KeepaliveReason kind;
  };
  struct Record {
    net::Flow flow;
    absl::InlinedVector<Reason, 1> reasons;
    uint64_t next_send = 0;  // tick of the next ping (also fixes the endpoint's phase)
    // Never later than the earliest reason's expiry (exact after process()). A bound, not the
    // minimum, so a change costs no scan of the reasons: a PBX behind NAT carries hundreds of
    // dialog reasons on one flow.
    uint32_t reasons_due_s = UINT32_MAX;
    uint32_t generation = 0;
    uint32_t sent = 0;
    uint32_t replies = 0;
    uint32_t rebindings = 0;
    uint16_t interval_s = 0;
    uint8_t misses = 0;
    uint8_t flags = 0;
    uint8_t kinds = 0;  // bit per KeepaliveReason present
  };
  static constexpr uint8_t kLive = 1;
  static constexpr uint8_t kSuppressed = 2;
  static constexpr uint8_t kAwaiting = 4;  // a ping is out and unanswered

  // The index set hashes and compares the record an id names, so it stores 4 bytes per endpoint
  // and is looked up by Flow directly (heterogeneous lookup).
  struct IdHash {
    using is_transparent = void;
    const std::vector<Record>* records;
    size_t operator()(uint32_t id) const;
    size_t operator()(const net::Flow& f) const;
  };
  struct IdEq {
    using is_transparent = void;
    const std::vector<Record>* records;
    bool operator()(uint32_t a, uint32_t b) const { return a == b; }
    bool operator()(uint32_t a, const net::Flow& f) const { return (*records)[a].flow == f; }
    bool operator()(const net::Flow& f, uint32_t a) const { return (*records)[a].flow == f; }
  };

  uint64_t tick_of(TimePoint t) const;
  TimePoint time_of_tick(uint64_t tick) const;
  uint32_t seconds_of(TimePoint t) const;  // rounded up
  std::optional<uint32_t> lookup(const net::Flow& flow) const;
  uint32_t create(const net::Flow& flow, uint64_t now_tick);
  void destroy(uint32_t id);
  void rearm(uint32_t id, uint64_t now_tick);
  void process(uint32_t id, uint64_t now_tick, Due& out);
  void build_ping(uint32_t id, std::string& out);
  uint64_t phase_aligned(uint64_t after_tick, const net::Flow& flow, uint32_t interval_s) const;
  ReplyKind on_token(KeepaliveToken token, const net::Flow& source);
  static uint8_t reason_mask(const Record& r);
  void count_mask(uint8_t mask, int delta);
  const std::string& sent_by(uint32_t local_socket_id);
  EndpointView view(const Record& r) const;

  KeepaliveConfig config_;
  const Clock& clock_;
  AdvertisedAddress advertised_;
  TimePoint epoch_;
  KeepaliveSigner signer_;
  SipKeepaliveBuilder builder_;

  std::vector<Record> records_;
  std::vector<uint32_t> free_;
  absl::flat_hash_set<uint32_t, IdHash, IdEq> index_;
  // Records with more than kIndexAbove reasons (a PBX or a downstream proxy registering thousands
  // of AORs and carrying their dialogs over one flow) index their reasons here, (record, kind,
  // key hash) -> position, so a change costs O(1) instead of a scan. Their `kinds` bits may
  // stay set after the last reason of a kind went, until the next process() recomputes them.
  struct ReasonRef {
    uint32_t id;
    KeepaliveReason kind;
    uint64_t key_hash;
    bool operator==(const ReasonRef&) const = default;
    template <typename H>
    friend H AbslHashValue(H h, const ReasonRef& r) {  // NOLINT(readability-identifier-naming)
      return H::combine(std::move(h), r.id, r.kind, r.key_hash);
    }
  };
  static constexpr size_t kIndexAbove = 16;
  absl::flat_hash_map<ReasonRef, uint32_t> reason_index_;
  void index_reasons(uint32_t id, bool add);
  KeepaliveWheel wheel_;
  uint32_t shard_bits_;          // the shard, shifted into the top 8 bits of a token index
  std::vector<uint32_t> fired_;  // scratch for wheel_.advance
  absl::flat_hash_map<uint32_t, std::string> advertised_cache_;
  uint32_t next_generation_ = 1;
  size_t live_ = 0;

  uint64_t sent_ = 0, replies_ = 0, timeouts_ = 0, dead_ = 0, rebindings_ = 0;
  std::array<size_t, kKeepaliveReasonCount> by_reason_{};
  size_t udp_ = 0, stream_ = 0;
};

}  // namespace pinhole::nat
