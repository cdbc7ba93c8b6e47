// TransactionTable: one worker's SIP transactions (RFC 3261 §17). It owns the four kinds of state
// machine, matches incoming requests and responses to them by their §17.1.3/§17.2.3 keys
// (sip/transaction_key.h, with the RFC 2543 fallback), runs their timers from an explicit `now`,
// carries out their actions through two injected interfaces (TransactionTransport to send,
// TransactionUser to tell the proxy), and deletes them once they terminate.
//
// Threads: a table belongs to one worker's event loop and is called from that thread only (no
// locks; a message for another worker's transaction is posted to that worker, DESIGN.md §2).
//
// Callbacks and re-entrancy. The event-loop entry points (receive_request, receive_response,
// advance, transport_error) call the TU back; they must not be called from inside a callback. The
// TU calls (send_request, respond) never call the TU back, and may be made from inside a
// callback (the proxy forwards and answers from on_request/on_response). So a send that fails
// during a TU call is reported later: at the end of the entry point whose callback made the call,
// or else by the next entry point (next_deadline() then says "now"). A terminated transaction is
// unlinked at once (no message matches it any more, TU calls on it fail) and destroyed when the
// outermost table call returns, never inside its own callback (DESIGN.md §4).
//
// Drops: every message the table does not pass on says so in its Disposition and in a counter,
// so the caller can count and log it; messages nobody kept are handed back.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "absl/strings/string_view.h"
#include "common/clock.h"
#include "common/result.h"
#include "sip/message.h"
#include "txn/actions.h"
#include "txn/invite_client.h"
#include "txn/invite_server.h"
#include "txn/non_invite_client.h"
#include "txn/non_invite_server.h"
#include "txn/timer_wheel.h"

namespace pinhole::txn {

// Names a transaction in callbacks and TU calls; 0 is "none". Never reused by a table, so an id
// the TU kept past on_terminated names nothing (request(), kind(), state(), respond() answer
// "unknown"), and ids may key the TU's maps. Not ordered: ids are not handed out in creation
// order (the table encodes its storage slot and the slot's generation in them).
using TransactionId = uint64_t;
inline constexpr TransactionId kNoTransaction = 0;

enum class TransactionKind : uint8_t { kInviteClient, kNonInviteClient, kInviteServer, kNonInviteServer };

// Why a transaction gave up, and the status the TU treats it as.
struct Failure {
  enum class Kind : uint8_t { kTimeout, kTransportError };
  Kind kind = Kind::kTimeout;
  uint16_t status = 408;  // 408 for timeouts (RFC 3261 §8.1.3.1, §16.7), 503 for transport errors (§16.9)
};

// Sends a transaction's messages. `context` is the value given when the transaction was created
// (the TU's handle for where its messages go: a flow, a resolved destination); this layer never
// looks inside it. `bytes` are valid during the call only.
class TransactionTransport {
 public:
  virtual ~TransactionTransport() = default;
  // False on a fatal transport error (RFC 3261 §18.4): the transaction is told (see the file
  // comment for when) and the TU hears of it through on_failure.
  // Must not call into the table.
  virtual bool send(TransactionId txn, uint64_t context, std::string_view bytes) = 0;
};

// The transaction user (the proxy core, the registrar, the UA library).
class TransactionUser {
 public:
  virtual ~TransactionUser() = default;
  // A request created a server transaction; answer it with TransactionTable::respond. The
  // transaction owns `request` (valid until the final response is sent and the outermost table
  // call returns; TransactionTable::request() gives it back until then). For a CANCEL, `cancelled_invite` is the INVITE
  // server transaction it cancels, or kNoTransaction when none matches (answer 481, RFC 3261 §9.2).
  virtual void on_request(TransactionId txn, const sip::Message& request, TransactionId cancelled_invite) = 0;
  // An ACK matched an INVITE server transaction in Accepted (an RFC 2543 peer ACKing a 2xx, which
  // the proxy forwards like any ACK for a 2xx). The TU may take `ack`.
  virtual void on_ack(TransactionId txn, sip::MessagePtr& ack) = 0;
  // A response for a client transaction, to act on (forward, collect for forking...). The TU may
  // take `response`; otherwise it is handed back to the caller of receive_response.
  virtual void on_response(TransactionId txn, sip::MessagePtr& response) = 0;
  virtual void on_failure(TransactionId txn, Failure failure) = 0;
  // Last callback for `txn`; the id is unknown to the table from now on.
  virtual void on_terminated(TransactionId txn) = 0;
};

enum class Disposition : uint8_t {
  kNewTransaction,  // a request created a server transaction and went to the TU
  kPassedToTu,      // a response (or an RFC 2543 ACK in Accepted) went to the TU
  kAbsorbed,        // a retransmission or hop-by-hop ACK the transaction handled itself
  kDropped,         // matched a transaction that cannot take it in its state
  kNoMatch,         // matched nothing: an ACK for a 2xx or a stray response, for stateless handling
  kMalformed,       // no transaction key could be built (no Via, no CSeq...)
};

struct Received {
  Disposition disposition = Disposition::kNoMatch;
  TransactionId txn = kNoTransaction;  // the transaction matched or created
  sip::MessagePtr message;             // the message, when neither a transaction nor the TU kept it
};

// Monotonic counts of what the table did with what it was given; the caller exports them.
struct TableCounters {
  uint64_t requests_new = 0;         // server transactions created
  uint64_t requests_absorbed = 0;    // retransmitted requests and hop-by-hop ACKs handled inside
  uint64_t requests_dropped = 0;     // matched, not acceptable in the transaction's state
  uint64_t acks_unmatched = 0;       // ACKs matching nothing (ACKs for 2xx: forwarded statelessly)
  uint64_t responses_passed = 0;     // to the TU
  uint64_t responses_absorbed = 0;   // retransmitted final responses (an ACK re-sent for INVITE)
  uint64_t responses_dropped = 0;    // matched, not acceptable in the transaction's state
  uint64_t responses_unmatched = 0;  // stray responses (RFC 3261 §16.7: stateless handling)
  uint64_t malformed = 0;            // no key
  uint64_t tu_calls_rejected = 0;    // send_request/respond refused
  uint64_t timeouts = 0;             // Timers B, F, H
  uint64_t transport_errors = 0;     // transactions told of a transport error
  uint64_t send_failures = 0;        // TransactionTransport::send returned false
  // Requests given to send_request as bytes that did not parse when the transaction needed them
  // (no ACK for a non-2xx, request() nullptr): a bug in the TU's serializer. Counted when the
  // transaction lets the request go (final response or termination).
  uint64_t unparsable_requests = 0;
};

class TransactionTable {
 public:
  // `transport` and `tu` must outlive the table.
  TransactionTable(const TimerConfig& timers, TransactionTransport& transport, TransactionUser& tu);
  ~TransactionTable();
  TransactionTable(const TransactionTable&) = delete;
  TransactionTable& operator=(const TransactionTable&) = delete;

  // --- Event-loop entry points (call the TU back) ---

  // A request from the network, after the sanity checks. A retransmission or an ACK goes to the
  // transaction it matches; any other new request creates a server transaction, which takes the
  // request. `reliability` and `context` describe where it came from (responses go back there).
  Received receive_request(sip::MessagePtr request, Reliability reliability, uint64_t context, TimePoint now);
  // A response from the network.
  Received receive_response(sip::MessagePtr response, TimePoint now);
  // Fires every timer due at `now` (and reports transport errors of earlier TU calls).
  void advance(TimePoint now);
  // An asynchronous transport error for `txn` (a connection that failed after send() returned).
  void transport_error(TransactionId txn, TimePoint now);

  // When advance() next has work to do, or slightly earlier; nullopt when no timer runs. Never
  // later than the earliest timer: exact unless that timer's wheel slot lost its earliest timer to
  // a stop, in which case it is earlier and the advance() there is a spurious wake-up that fires
  // nothing (TimerWheel::next_deadline). After advance(now) it is later than `now` unless a
  // transport error is pending, so a loop that sleeps until it never spins. O(1): the event loop
  // asks after every message.
  std::optional<TimePoint> next_deadline() const;

  // --- TU calls (never call the TU back) ---

  // Creates a client transaction for `request`, the request as it goes on the wire (parsed from
  // the serialized bytes, top Via with our RFC 3261 branch), and sends it. ACK has no client
  // transaction (the TU sends it directly); refused with 500, as is a branch already in use.
  Result<TransactionId> send_request(sip::MessagePtr request, Reliability reliability, uint64_t context, TimePoint now);
  // The same for a request the TU serialized itself and does not need parsed: `bytes` are sent
  // as they are and parsed only if the transaction needs them (request(), the ACK for a non-2xx;
  // see ClientRequest). `method` is its method name (the request line's, which is the CSeq's:
  // sip/sanity.h) and `branch` its top Via branch, which must be an RFC 3261 one; the caller
  // vouches that they are the bytes' (the key is built from them, not from the bytes).
  Result<TransactionId> send_request(std::string bytes, std::string_view method, std::string_view branch,
                                     Reliability reliability, uint64_t context, TimePoint now);
  // Sends the TU's response (serialized, with its status code) on server transaction `txn`.
  // 481 when `txn` is unknown or terminated, 500 when the transaction cannot send it in its
  // state (a second final response, a response on a client transaction).
  Status respond(TransactionId txn, uint16_t status, std::string response, TimePoint now);

  // --- Inspection ---

  size_t size() const { return live_; }
  // Entry slots allocated so far (live, retired until the outermost call returns, free): bounded
  // by the peak of live transactions, since freed slots are reused.
  size_t slot_count() const { return slots_made_; }
  // The request that created `txn` (the INVITE a CANCEL refers to, for a 487), or nullptr: also
  // once the transaction has its final response (the machine no longer keeps the request).
  const sip::Message* request(TransactionId txn) const;
  std::optional<TransactionKind> kind(TransactionId txn) const;
  // RFC 3261 name of the state ("Proceeding"...); empty when `txn` is unknown.
  std::string_view state(TransactionId txn) const;
  const TableCounters& counters() const { return counters_; }
  const TimerConfig& timer_config() const { return timers_; }

 private:
  using Machine = std::variant<InviteClient, NonInviteClient, InviteServer, NonInviteServer>;

  struct Entry {
    template <typename M, typename... Args>
    Entry(TransactionId i, std::string k, size_t h, uint64_t c, std::in_place_type_t<M> type, Args&&... args)
        : id(i), key(std::move(k)), key_hash(h), context(c), machine(type, std::forward<Args>(args)...) {
      timers.fill(TimerWheel::kNoNode);
    }
    TransactionId id;
    std::string key;  // the maps' keys are views of this
    size_t key_hash;  // hash_key(key), so that unlinking the entry does not read the key again
    uint64_t context;
    Machine machine;
    // The wheel nodes of the running timers, by TimerName (kNoNode: not running); cancelled when
    // stopped, restarted or retired, so the wheel never holds a timer of a dead transaction. An
    // index, not a Handle: the wheel checks (id, TimerName) instead, and 4 bytes a timer keep the
    // entry as small as the heap's generation counters did.
    std::array<uint32_t, kTimerCount> timers{};
  };

  // Counts nested table calls: the graveyard is emptied when the outermost returns.
  class CallScope {
   public:
    explicit CallScope(TransactionTable& t) : table_(t) { ++table_.depth_; }
    ~CallScope();
    CallScope(const CallScope&) = delete;
    CallScope& operator=(const CallScope&) = delete;

   private:
    TransactionTable& table_;
  };

  // A storage slot of the entry slab. `generation` counts the slot's occupants: the id of the
  // current one is id_of(slot, generation). An entry stays constructed in the graveyard (not
  // `live`, found by no id) until the outermost call returns; only then is the slot reused.
  struct Slot {
    std::optional<Entry> entry;
    uint32_t generation = 0;
    bool live = false;
  };
  // Slots per chunk. Chunks never move, so an Entry& stays valid while the slab grows.
  static constexpr uint32_t kSlotChunk = 512;
  // The low half is the slot + 1, so no id is 0 (kNoTransaction) and the first is 1.
  static TransactionId id_of(uint32_t slot, uint32_t generation) {
    return (static_cast<uint64_t>(generation) << 32) | (static_cast<uint64_t>(slot) + 1);
  }
  Slot& slot_at(uint32_t slot) const { return chunks_[slot / kSlotChunk][slot % kSlotChunk]; }
  void free_slot(uint32_t slot);

  // A transaction key as the maps hold it: the hash is computed once, when the entry is created
  // (or the probe built), so that retiring an entry does not re-hash its ~100-byte key.
  struct Key {
    size_t hash;
    std::string_view text;
  };
  // absl's own string hash: for std::string_view (not absl's here) absl::Hash falls back to
  // std::hash, whose byte-at-a-time Murmur was 3 % of the edge's CPU on these ~100-byte keys.
  static size_t hash_key(std::string_view k) {
    return absl::Hash<absl::string_view>{}(absl::string_view(k.data(), k.size()));
  }
  static Key probe(std::string_view k) { return Key{hash_key(k), k}; }
  struct KeyHash {
    size_t operator()(const Key& k) const { return k.hash; }
  };
  struct KeyEq {
    bool operator()(const Key& a, const Key& b) const {
      // An entry's own key (erase) is the same view: no need to read the string.
      return a.hash == b.hash && a.text.size() == b.text.size() && (a.text.data() == b.text.data() || a.text == b.text);
    }
  };
  using KeyMap = absl::flat_hash_map<Key, TransactionId, KeyHash, KeyEq>;

  template <typename M, typename Request>
  Entry& create(std::string key, uint64_t context, Request message, Reliability reliability);
  // Creates a client transaction under `key` (refused if in use) and starts it.
  Result<TransactionId> start_client(std::string key, bool invite, ClientRequest request, Reliability reliability,
                                     uint64_t context, TimePoint now);
  void keep_released(sip::MessagePtr request) { released_.push_back(std::move(request)); }
  void keep_released(ClientRequest request);
  // O(1): the slot named by the id, if it is live with the id's generation.
  Entry* find(TransactionId txn) const;
  // Carries out `out` for `e` (see actions.h for the order). `message` is the event's message
  // for kResponse/kAck notifications; `cancelled` goes with kRequest.
  void apply(Entry& e, const Output& out, TimePoint now, sip::MessagePtr* message,
             TransactionId cancelled = kNoTransaction);
  void retire(Entry& e);
  void drain_transport_errors(TimePoint now);

  TimerConfig timers_;
  TransactionTransport& transport_;
  TransactionUser& tu_;
  int depth_ = 0;

  std::vector<std::unique_ptr<Slot[]>> chunks_;
  uint32_t slots_made_ = 0;
  std::vector<uint32_t> free_slots_;  // LIFO: the slot reused next is the one still in cache
  size_t live_ = 0;
  KeyMap server_keys_;
  KeyMap client_keys_;
  // Every running timer (id: the transaction, tag: the TimerName), fired in (deadline, start
  // order) order as the heap it replaced did. Stopped timers are removed at once (issue 3: the
  // heap's lazily deleted ones grew it to ~10 MB under load).
  TimerWheel wheel_;
  std::vector<std::pair<TransactionId, TimePoint>> pending_errors_;
  std::vector<uint32_t> graveyard_;           // slots of retired entries, freed when the outermost call returns
  std::vector<sip::MessagePtr> released_;     // requests machines gave back, freed with the graveyard
  std::vector<ClientRequest> released_sent_;  // the same, from client machines
  TableCounters counters_;
};

}  // namespace pinhole::txn
