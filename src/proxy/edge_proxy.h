// The edge proxy of one worker: the transaction user that sits between NATed clients and the
// upstream core (RFC 3261 §16 stateful proxy, RFC 3581, RFC 3327, RFC 5626 edge).
//
//   inbound message (transport) -> sanity -> transaction layer -> on_request:
//     from a client   -> Via fix (received/rport), our routes popped, Record-Route / Path with
//                        the client's flow token, Via added -> upstream target (failover)
//     from upstream   -> our routes popped, flow token decoded (403 tampered, 430 dead) -> the
//                        client's flow
//   responses -> best-response selection (§16.7) -> back on the flow the request came on.
//
// Threads: one EdgeProxy per worker, called on that worker's thread only (the transport calls
// the MessageHandler side, the transaction table the TransactionUser side). Shared read-only
// state (config, identity, token codec, upstream list, metrics) lives in ProxyShared. A
// response whose branch names another worker is posted to that worker's proxy.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/clock.h"
#include "common/log.h"
#include "nat/flow_token.h"
#include "net/sip_resolver.h"
#include "proxy/alias_table.h"
#include "proxy/border_services.h"
#include "proxy/keepalive_services.h"
#include "proxy/local_identity.h"
#include "proxy/media_services.h"
#include "proxy/proxy_config.h"
#include "proxy/proxy_metrics.h"
#include "proxy/registrar_services.h"
#include "proxy/request_rewrite.h"
#include "transport/transport_layer.h"
#include "txn/transaction_table.h"

namespace spdlog {
class logger;
}

namespace pinhole::proxy {

// Where requests from clients go (edge mode): resolved RFC 3263 targets in failover order.
using UpstreamTarget = net::SipTarget;
using UpstreamTargets = std::vector<UpstreamTarget>;
// Returns the current list; may be called from any worker thread. shared_ptr: a worker keeps the
// list it started a request with while the resolver swaps in a fresh one.
using UpstreamSource = std::function<std::shared_ptr<const UpstreamTargets>()>;

class EdgeProxy;

// State every worker reads; built once before the workers start.
struct ProxyShared {
  const ProxyConfig& config;
  transport::TransportLayer& transport;
  const LocalIdentity& identity;
  const nat::FlowTokenCodec& tokens;
  AliasTable& aliases;
  UpstreamSource upstream;
  ProxyMetrics& metrics;
  std::shared_ptr<spdlog::logger> log;     // shared_ptr: spdlog's API hands loggers out that way
  std::vector<EdgeProxy*> workers;         // filled before run(); indexed by worker
  RegistrarServices* registrar = nullptr;  // registrar mode; null: pure edge
  BorderServices* border = nullptr;        // border mode (edge in front of a registrar); null: off
  KeepaliveServices* keepalive = nullptr;  // NAT keepalives; null: off
  MediaServices* media = nullptr;          // media anchoring (`media.enabled`); null: off
};

class EdgeProxy final : public transport::MessageHandler,
                        public txn::TransactionUser,
                        public txn::TransactionTransport {
 public:
  EdgeProxy(ProxyShared& shared, uint32_t worker, const txn::TimerConfig& timers, const Clock& clock);
  ~EdgeProxy() override;

  // MessageHandler (this worker's thread).
  void on_message(transport::Inbound inbound) override;
  void on_unparsable(const net::Flow& flow, uint32_t worker, std::string_view bytes, const Error& error) override;
  void on_flow_closed(const net::Flow& flow, bool connected) override;
  void on_binary_datagram(const net::Flow& flow, uint32_t worker, std::string_view bytes) override;
  void on_pong(const net::Flow& flow) override;

  // NAT keepalives (edge_proxy_keepalive.cc). Each worker's engine keeps the flows this worker
  // owns: a stream flow's connection owner, a UDP flow's remote by hash; reasons learned on other
  // workers are posted to the owner. Null when keepalives are off. This worker's thread only.
  const nat::KeepaliveEngine* keepalive_engine() const { return keepalive_.get(); }
  static uint32_t keepalive_owner(const net::Flow& flow, size_t workers);
  // A persisted reason reloaded at start-up (call on the owning worker's thread).
  void restore_keepalive(const net::Flow& flow, nat::KeepaliveReason reason, uint64_t key_hash,
                         std::chrono::seconds remaining);

  // Runs due transaction timers; the daemon calls it from the worker's timer.
  void advance();
  // The earliest of the transaction timers and the proxy's own Timer C.
  std::optional<TimePoint> next_deadline() const;
  // Live transactions and calls, for the metrics gauges: read from the scrape thread, so kept in
  // atomics refreshed after every event (the tables themselves are this worker's alone).
  size_t transactions() const { return transactions_.load(std::memory_order_relaxed); }
  size_t calls() const { return calls_count_.load(std::memory_order_relaxed); }
  // Called after every event so the daemon can re-arm the worker's timer.
  void set_deadline_listener(std::function<void(std::optional<TimePoint>)> fn) { deadline_listener_ = std::move(fn); }

 private:
  // Where a transaction's messages go: a known flow, or a destination to connect to.
  struct Destination {
    std::optional<net::Flow> flow;
    net::Transport transport = net::Transport::kUdp;
    net::Endpoint endpoint;
    std::string server_name;
  };
  // A branch that goes somewhere else than the Request-URI says: a registered Contact, reached
  // along the binding's Path (registrar mode).
  struct Retarget {
    std::string_view request_uri;
    std::vector<std::string> routes;
  };
  // The flows a Route token names: one (a client's flow) or two (both legs of a dialog between
  // two of our users).
  struct TokenFlows {
    net::Flow first;
    std::optional<net::Flow> second;
  };
  struct Branch {
    txn::TransactionId txn = txn::kNoTransaction;
    // The request to send, until it is sent: its client transaction then keeps it (the CANCEL
    // is built from that copy).
    std::string forwarded;
    size_t target_index = 0;
    bool to_upstream = false;
    bool provisional = false;
    bool cancel_pending = false;
    bool done = false;
    std::optional<net::Flow> client_flow;  // the NATed client this branch goes to (dialog keepalive)
    // Media (edge_proxy_media.cc). `media`: the relay holds a session for this branch's offer
    // (the request's, or the callee's late offer in a 2xx), named at the relay by
    // `relay_branch`: the branch's Via branch for a new call (one session per fork); "" inside a
    // dialog and for a late offer, where the tags name the session.
    bool media = false;
    bool media_pending = false;  // the offer is at the relay: the request is not sent yet
    uint64_t context = 0;        // the branch's record (see TxnRecord): kept while the relay works
    std::string relay_branch;
    // Our Via's branch, until the request is sent: with the method, the client transaction's key,
    // so the table need not parse `forwarded` to find it (relay_branch may be cleared by then).
    std::string via_branch;
  };
  // One proxied request: its server transaction and client branches (§16).
  struct Call {
    // The record of the server transaction that created it, which owns the call: the handle the
    // relay's callbacks keep (valid until the call ends, also after the server transaction).
    uint64_t record = 0;
    txn::TransactionId server = txn::kNoTransaction;  // the server transaction while it lives, then none
    net::Flow source;
    net::Flow client_flow;  // the NATed client's flow (kept open on 2xx REGISTER / INVITE)
    bool has_client_flow = false;
    bool from_client = false;
    bool invite = false;
    bool cancelled = false;
    bool final_sent = false;
    bool authenticated = false;  // its Proxy-Authorization was checked here (registrar mode)
    // Branches whose client transaction lives: a 2xx can still come for an INVITE branch after
    // the server transaction has ended, so the call ends when both this and `server` are none.
    uint32_t live_branches = 0;
    // Border mode: the expires to ask upstream instead of the client's (its original interval).
    std::optional<uint32_t> border_upstream_expires;
    // Whether the client that sent this request shows a NAT (the keepalive engine's question),
    // asked at most once per call.
    mutable std::optional<bool> natted;
    // A new call whose offer went to the media relay: what names its sessions there, kept so that
    // a branch that fails after the server transaction ended (a fork losing to another's 2xx)
    // can still be deleted. Empty: no session (or a request inside a dialog).
    std::string media_call_id;
    std::string media_from_tag;
    std::shared_ptr<const UpstreamTargets> targets;
    std::vector<Branch> branches;
    uint16_t best_status = 0;
    std::string best_response;  // bytes of the best final response so far (empty: generate)
  };

  // Everything the proxy keeps about one transaction, in a slab: found from its context (the
  // value the table hands back in send(), which branches, Timer C and the relay's callbacks keep
  // as handles) without any hash lookup, and from its transaction id through the one map
  // `txn_records_`. Retiring a transaction (32 s after its call, when none of this is in cache)
  // so costs one probe and one record, not a probe in each of five maps (docs/benchmarks.md).
  // A record can outlive its transaction or come before it:
  //   kPending  no transaction yet: a request being matched, a branch waiting for the relay
  //   kServer   a server transaction; once that ended, the holder of its call until the call ends
  //   kBranch   a branch's client transaction
  //   kOther    a CANCEL's client transaction
  enum class Role : uint8_t { kPending, kServer, kBranch, kOther };
  static constexpr uint32_t kMaxBranches = (1U << 24) - 1;  // TxnRecord::branch's range
  // 136 bytes, plus a 16-byte entry in txn_records_: no more than the entries of the maps it
  // replaces (destinations_ 112, txn_context_ 16, calls_ or branch_call_ 16, timer_c_ 16).
  struct TxnRecord {
    Destination dest;
    std::unique_ptr<Call> owned;  // kServer: the call this request created
    Call* call = nullptr;         // kServer: owned.get(); kBranch: the call it is a branch of
    TimePoint timer_c{};          // kBranch of an INVITE: Timer C's deadline while timer_c_running
    uint32_t generation = 1;      // bumped when freed: stale handles miss
    uint32_t branch : 24 = 0;     // kBranch: index in call->branches
    Role role : 4 = Role::kPending;
    bool timer_c_running : 1 = false;
    bool in_connection : 1 = false;  // listed in connection_txns_ (its send opened the connection)
  };
  // Records per slab chunk. Chunks never move, so a TxnRecord& stays valid across new_record().
  static constexpr uint32_t kRecordChunk = 256;
  static uint64_t handle_of(uint32_t slot, uint32_t generation) { return (uint64_t{generation} << 32) | slot; }
  TxnRecord& record(uint32_t slot) { return record_chunks_[slot / kRecordChunk][slot % kRecordChunk]; }
  const TxnRecord& record(uint32_t slot) const { return record_chunks_[slot / kRecordChunk][slot % kRecordChunk]; }
  // The record a handle names; null once it was freed.
  TxnRecord* record_at(uint64_t handle);
  // The record of a live transaction (one hash probe); null when `txn` is not (or no longer) ours.
  TxnRecord* record_of(txn::TransactionId txn);
  const TxnRecord* record_of(txn::TransactionId txn) const;
  // A new record going to `dest`; returns its handle (the transaction's context).
  uint64_t new_record(const Destination& dest);
  void free_record(uint64_t handle);
  // Names `handle`'s record as the one of `txn`.
  void bind_record(txn::TransactionId txn, uint64_t handle, Role role);
  // The call a server transaction created, while it lives.
  Call* call_of(txn::TransactionId server);
  // The call whose server record is `handle`, until the call ends.
  Call* call_at(uint64_t handle);
  // Frees the call and every record still naming it (branches that never got a transaction).
  void end_call(Call& call);

  // TransactionUser.
  void on_request(txn::TransactionId txn, const sip::Message& request, txn::TransactionId cancelled) override;
  void on_ack(txn::TransactionId txn, sip::MessagePtr& ack) override;
  void on_response(txn::TransactionId txn, sip::MessagePtr& response) override;
  void on_failure(txn::TransactionId txn, txn::Failure failure) override;
  void on_terminated(txn::TransactionId txn) override;
  // TransactionTransport.
  bool send(txn::TransactionId txn, uint64_t context, std::string_view bytes) override;

  void handle_request(transport::Inbound& in);
  void handle_response(transport::Inbound& in);
  void route_new_request(txn::TransactionId txn, const sip::Message& request);
  void handle_cancel(txn::TransactionId txn, txn::TransactionId invite);
  void forward_stateless(const sip::Message& request, const net::Flow& source, bool media_checked = false);
  void forward_stray_response(const sip::Message& response, const net::Endpoint& from);
  bool answer_options_to_us(txn::TransactionId txn, const sip::Message& request);

  // Sends the request of `call` on a new branch to upstream target `index`; false when none is
  // left or sending failed at once.
  bool fork_to_upstream(Call& call, const sip::Message& request, size_t index);
  bool fork_to_flow(Call& call, const sip::Message& request, const net::Flow& flow, std::string_view token);
  // A request from upstream without a flow token: to the Request-URI's address (numeric only),
  // over a connection the client aliased (RFC 5923) when there is one.
  bool fork_to_request_uri(Call& call, const sip::Message& request);
  bool start_branch(Call& call, const sip::Message& request, const Destination& dest, const transport::LocalSocket& out,
                    std::string_view rr_token, bool to_upstream, size_t target_index,
                    const Retarget* retarget = nullptr);
  // Hands the branch's forwarded bytes to a new client transaction; false when that failed.
  bool launch_branch(Call& call, Branch& branch);
  // Passes a provisional or 2xx response on to the caller (after the relay rewrote its SDP).
  void pass_response(Call& call, size_t branch_index, uint16_t status, std::string bytes, const sip::Message& response);
  void send_upstream_response(Call& call, uint16_t status, std::string bytes);

  // Media anchoring (edge_proxy_media.cc): SDP offers in requests and answers in responses are
  // rewritten by the relay before they go on; the message waits (off this thread) for it.
  // A request whose SDP cannot be parsed is answered 488 here; true when it was.
  bool refuse_bad_sdp(txn::TransactionId txn, const sip::Message& request);
  // Sends the branch's offer to the relay when the policy anchors it; true: the branch is
  // pending and goes out from media_offer_done.
  bool media_offer(Call& call, size_t branch_index, const sip::Message& request, const Destination& dest);
  // `call_key`: the call's record (Call::record).
  void media_offer_done(uint64_t call_key, uint64_t context, Result<MediaReply> reply);
  // A provisional or 2xx with SDP: true when it went to the relay (sent from the callback).
  bool media_response(Call& call, size_t branch_index, uint16_t status, std::string& bytes,
                      const sip::Message& response);
  void media_response_done(uint64_t call_key, uint16_t status, std::string bytes, Result<MediaReply> reply);
  // An ACK for a 2xx carrying the caller's answer to a late offer: true when it went to the relay.
  bool media_ack(const sip::Message& ack, const net::Flow& source);
  // BYE: the call's sessions; a failed (or cancelled) branch of a new call: that branch's.
  void media_bye(const sip::Message& request);
  void media_branch_failed(const Call& call, const Branch& branch);
  void ask_relay(MediaRequest request, std::function<void(Result<MediaReply>)> then);

  // Registrar mode (edge_proxy_registrar.cc). True when the request was dealt with (answered or
  // forwarded); false: the edge logic routes it (to the core, or by flow token / Request-URI).
  bool route_as_registrar(Call& call, txn::TransactionId txn, const sip::Message& request, const RouteAnalysis& routes);
  void register_here(txn::TransactionId txn, const sip::Message& request, const net::Flow& source);
  void fork_to_bindings(Call& call, txn::TransactionId txn, const sip::Message& request);
  void on_bindings_loaded(txn::TransactionId txn, const std::string& aor,
                          Result<std::vector<store::BindingRecord>> found);
  // Cluster: the 2xx to a REGISTER, once the store said which bindings other nodes hold.
  void answer_register_in_cluster(txn::TransactionId txn, uint16_t status, std::string headers, std::string_view reason,
                                  Result<std::vector<store::BindingRecord>> found);
  // Reads `aor` from the shared store off this thread; `then` runs on this worker's thread.
  void load_aor_here(std::string aor, std::function<void(Result<std::vector<store::BindingRecord>>)> then);
  void fork_to_found_bindings(Call& call, txn::TransactionId txn, const sip::Message& request,
                              const std::vector<store::BindingRecord>& bindings);
  // Digest check; false when the request was answered (401/407 challenge, 403, 400).
  bool authenticate(txn::TransactionId txn, const sip::Message& request, registrar::ChallengeKind kind,
                    std::string_view realm, std::string& user);
  void challenge(txn::TransactionId txn, const sip::Message& request, registrar::ChallengeKind kind,
                 std::string_view realm, bool stale);
  bool is_registrar_domain(const sip::Uri& uri) const;

  // Border mode (edge_proxy_border.cc). True when the REGISTER was answered here (a refresh
  // within the upstream's interval); false: forward it (with call.border_upstream_expires).
  bool border_answer_register(Call& call, txn::TransactionId txn, const sip::Message& request);
  // The upstream's 2xx to a client's REGISTER, learned; returns it as the client must get it
  // (our Via removed, the short lease in place of the granted expires).
  std::string border_learn(const Call& call, const sip::Message& response);
  std::optional<registrar::BorderRegister> border_register_of(const sip::Message& request,
                                                              const net::Flow& source) const;
  // The flow to use for a flow named by a token: a newer one when its binding moved.
  net::Flow follow_rebinding(const net::Flow& named) const;

  // Keepalive reasons (edge_proxy_keepalive.cc): learned from the requests we route and the final
  // answers to them, whoever generated those.
  bool wants_keepalive(const Call& call, const sip::Message& request) const;
  // Sets (expires > 0) or removes a reason on the owning worker's engine; `create`: the flow may
  // become a new endpoint (else only an existing one gets the reason).
  void keepalive_reason(const net::Flow& flow, nat::KeepaliveReason reason, std::string key,
                        std::chrono::seconds expires, bool create);
  void apply_keepalive_reason(const net::Flow& flow, nat::KeepaliveReason reason, const std::string& key,
                              std::chrono::seconds expires, bool create);
  void keepalive_suppress(const net::Flow& flow, bool client_keeps_alive);
  void keepalive_branch_started(const Call& call, const sip::Message& request, const Branch& branch);
  void keepalive_final(const Call& call, const Branch* branch, uint16_t status, const sip::Message* response);
  void keepalive_registered(const sip::Message& request, const net::Flow& source,
                            const registrar::RegisterOutcome& outcome, int64_t now, bool natted);
  // A keepalive's answer (SIP or STUN): handled here or passed to the owning worker. False: not
  // a keepalive answer.
  bool keepalive_sip_reply(transport::Inbound& in);
  bool keepalive_stun_reply(const net::Flow& flow, std::string_view bytes);
  void run_keepalive(TimePoint t);
  void keepalive_dead(const net::Flow& flow);
  void keepalive_changed(const net::Flow& flow);
  void publish_keepalive_counters();
  static std::unique_ptr<nat::KeepaliveEngine> make_keepalive(ProxyShared& shared, uint32_t worker, const Clock& clock);
  Result<TokenFlows> decode_route_token(std::string_view token) const;
  // Where a request routed by `flows` goes, given the flow it came on; none: the token names the
  // sender itself (its own route set through us), so normal routing applies.
  static std::optional<net::Flow> token_target(const TokenFlows& flows, const net::Flow& source);
  // A Route/Path value's hop by address; none for a host name or a malformed value.
  std::optional<Destination> route_destination(std::string_view route_value) const;
  bool names_us(std::string_view route_value) const;
  bool forward_stateless_registrar(const sip::Message& request, const net::Flow& source, const RouteAnalysis& routes,
                                   Rewrite& rw, std::string_view branch);
  net::Endpoint call_source_or_current(txn::TransactionId txn) const;
  void branch_final(Call& call, Branch& branch, uint16_t status, std::string response_bytes);
  void maybe_finish(Call& call);
  void cancel_branch(Call& call, Branch& branch);
  void cancel_others(Call& call, const Branch* except);

  void respond(txn::TransactionId server, const sip::Message& request, uint16_t status,
               std::string_view extra_headers = {}, std::string_view reason = {});
  void respond_stateless(const sip::Message& request, const net::Flow& flow, uint16_t status,
                         std::string_view extra_headers = {});
  std::string build_response(const sip::Message& request, const net::Endpoint& source, uint16_t status,
                             std::string_view extra_headers, std::string_view reason = {});
  bool is_from_upstream(const net::Endpoint& source) const;
  const transport::LocalSocket* socket_for_upstream(const UpstreamTarget& t) const;
  void keep_flow(const net::Flow& flow, std::chrono::seconds how_long);
  // Counts a drop or reject and logs it at warn, at most once per 10 s per reason (DESIGN.md §4):
  // a flood of bad requests must not flood the log.
  void reject(Drop d, const net::Endpoint& peer, std::string_view why);
  // Timer C (RFC 3261 §16.6 step 11, §16.8): started when an INVITE branch is sent, restarted
  // by each provisional response; when it fires the branch is CANCELled (or, without any
  // provisional, abandoned) and counts as a 408.
  void start_timer_c(TxnRecord& branch, uint64_t handle);
  void fire_timer_c(TimePoint now);
  void notify_deadline();
  TimePoint now() const { return clock_.now(); }

  ProxyShared& shared_;
  uint32_t worker_;
  const Clock& clock_;
  txn::TransactionTable table_;
  RateLimitedLog reject_log_;
  uint64_t next_branch_ = 1;
  uint64_t next_tag_ = 1;
  // The flow and the record of the request being handled while the table calls back on_request.
  const net::Flow* current_flow_ = nullptr;
  uint64_t current_record_ = 0;
  txn::TransactionId current_txn_ = txn::kNoTransaction;
  std::vector<std::unique_ptr<TxnRecord[]>> record_chunks_;  // the slab
  uint32_t records_made_ = 0;
  std::vector<uint32_t> free_records_;  // LIFO: the next record is the most recently freed (in cache)
  absl::flat_hash_map<txn::TransactionId, uint32_t> txn_records_;                   // live txn -> slot
  absl::flat_hash_map<uint64_t, std::vector<txn::TransactionId>> connection_txns_;  // pending connects
  size_t live_calls_ = 0;
  std::function<void(std::optional<TimePoint>)> deadline_listener_;
  std::atomic<size_t> transactions_{0};
  std::atomic<size_t> calls_count_{0};
  // Min-heap of (deadline, branch record handle); an entry is live only while that record's
  // Timer C still runs with that deadline (restarts leave the old entry behind to be skipped).
  std::vector<std::pair<TimePoint, uint64_t>> timer_c_heap_;
  std::unique_ptr<nat::KeepaliveEngine> keepalive_;
  nat::KeepaliveEngine::Due keepalive_due_;
  nat::KeepaliveEngine::Counters keepalive_published_{};
};

}  // namespace pinhole::proxy
