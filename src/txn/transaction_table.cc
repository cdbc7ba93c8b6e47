#include "txn/transaction_table.h"

#include <algorithm>
#include <cassert>
#include <type_traits>

#include "sip/method.h"
#include "sip/transaction_key.h"
#include "sip/via.h"

namespace pinhole::txn {
namespace {

template <typename M>
constexpr bool kIsServer = std::is_same_v<M, InviteServer> || std::is_same_v<M, NonInviteServer>;

}  // namespace

TransactionTable::CallScope::~CallScope() {
  if (--table_.depth_ != 0) return;
  for (uint32_t slot : table_.graveyard_) table_.free_slot(slot);
  table_.graveyard_.clear();
  table_.released_.clear();
  table_.released_sent_.clear();
}

TransactionTable::TransactionTable(const TimerConfig& timers, TransactionTransport& transport, TransactionUser& tu)
    : timers_(timers), transport_(transport), tu_(tu) {}

TransactionTable::~TransactionTable() = default;

template <typename M, typename Request>
TransactionTable::Entry& TransactionTable::create(std::string key, uint64_t context, Request message,
                                                  Reliability reliability) {
  uint32_t index = 0;
  if (!free_slots_.empty()) {
    index = free_slots_.back();
    free_slots_.pop_back();
  } else {
    // 2^32 - 1 slots (the id's low half) would take far more memory than a worker has.
    assert(slots_made_ < UINT32_MAX);
    index = slots_made_++;
    if (index % kSlotChunk == 0) chunks_.push_back(std::make_unique<Slot[]>(kSlotChunk));
  }
  Slot& slot = slot_at(index);
  const TransactionId id = id_of(index, slot.generation);
  const size_t hash = hash_key(key);
  Entry& e = slot.entry.emplace(id, std::move(key), hash, context, std::in_place_type<M>, std::move(message),
                                reliability, timers_);
  slot.live = true;
  ++live_;
  (kIsServer<M> ? server_keys_ : client_keys_).emplace(Key{e.key_hash, e.key}, id);
  return e;
}

void TransactionTable::free_slot(uint32_t index) {
  Slot& slot = slot_at(index);
  slot.entry.reset();
  // A slot whose generation would wrap is never reused, so an id is never issued twice (a TU may
  // keep a stale id as a map key). One slot lost per 2^32 transactions on it.
  if (slot.generation == UINT32_MAX) return;
  ++slot.generation;
  free_slots_.push_back(index);
}

TransactionTable::Entry* TransactionTable::find(TransactionId txn) const {
  const uint64_t low = txn & UINT32_MAX;
  if (low == 0 || low > slots_made_) return nullptr;
  Slot& slot = slot_at(static_cast<uint32_t>(low - 1));
  if (!slot.live || slot.generation != static_cast<uint32_t>(txn >> 32)) return nullptr;
  return &*slot.entry;
}

Received TransactionTable::receive_request(sip::MessagePtr request, Reliability reliability, uint64_t context,
                                           TimePoint now) {
  assert(depth_ == 0 && "entry points are not re-entrant");
  CallScope scope(*this);
  Received r;
  if (request == nullptr || !request->is_request()) {
    ++counters_.malformed;
    r.disposition = Disposition::kMalformed;
    r.message = std::move(request);
    return r;
  }
  auto key = sip::server_transaction_key(*request);
  if (!key) {
    ++counters_.malformed;
    r.disposition = Disposition::kMalformed;
    r.message = std::move(request);
    return r;
  }

  if (auto it = server_keys_.find(probe(*key)); it != server_keys_.end()) {
    Entry& e = *find(it->second);
    Output out = std::visit(
        [&](auto& m) -> Output {
          if constexpr (kIsServer<std::decay_t<decltype(m)>>) return m.on_request(*request);
          return Output::with(Verdict::kIgnored);  // server keys name server machines only
        },
        e.machine);
    r.txn = e.id;
    if (out.notify != Notify::kNone) {
      r.disposition = Disposition::kPassedToTu;  // an ACK in Accepted
    } else if (out.verdict == Verdict::kIgnored) {
      r.disposition = Disposition::kDropped;
      ++counters_.requests_dropped;
    } else {
      r.disposition = Disposition::kAbsorbed;
      ++counters_.requests_absorbed;
    }
    apply(e, out, now, &request);
    r.message = std::move(request);
    drain_transport_errors(now);
    return r;
  }

  if (request->method() == sip::Method::kAck) {
    // No INVITE transaction: the ACK for a 2xx (new branch), forwarded statelessly by the proxy.
    ++counters_.acks_unmatched;
    r.disposition = Disposition::kNoMatch;
    r.message = std::move(request);
    return r;
  }

  TransactionId cancelled = kNoTransaction;
  if (request->method() == sip::Method::kCancel) {
    auto invite_key = sip::cancelled_invite_key(*request);
    if (invite_key.ok())
      if (auto it = server_keys_.find(probe(*invite_key)); it != server_keys_.end()) cancelled = it->second;
  }
  const bool invite = request->method() == sip::Method::kInvite;
  Entry& e = invite ? create<InviteServer>(std::move(key).value(), context, std::move(request), reliability)
                    : create<NonInviteServer>(std::move(key).value(), context, std::move(request), reliability);
  ++counters_.requests_new;
  r.disposition = Disposition::kNewTransaction;
  r.txn = e.id;
  Output out = std::visit([](auto& m) { return m.start(); }, e.machine);
  apply(e, out, now, nullptr, cancelled);
  drain_transport_errors(now);
  return r;
}

Received TransactionTable::receive_response(sip::MessagePtr response, TimePoint now) {
  assert(depth_ == 0 && "entry points are not re-entrant");
  CallScope scope(*this);
  Received r;
  auto key = response != nullptr && response->is_response() ? sip::client_transaction_key(*response)
                                                            : Result<std::string>(bad_request("not a response"));
  if (!key) {
    ++counters_.malformed;
    r.disposition = Disposition::kMalformed;
    r.message = std::move(response);
    return r;
  }
  auto it = client_keys_.find(probe(*key));
  if (it == client_keys_.end()) {
    ++counters_.responses_unmatched;
    r.disposition = Disposition::kNoMatch;
    r.message = std::move(response);
    return r;
  }
  Entry& e = *find(it->second);
  Output out = std::visit(
      [&](auto& m) -> Output {
        if constexpr (!kIsServer<std::decay_t<decltype(m)>>) return m.on_response(*response);
        return Output::with(Verdict::kIgnored);  // client keys name client machines only
      },
      e.machine);
  r.txn = e.id;
  if (out.notify == Notify::kResponse) {
    r.disposition = Disposition::kPassedToTu;
    ++counters_.responses_passed;
  } else if (out.verdict == Verdict::kIgnored) {
    r.disposition = Disposition::kDropped;
    ++counters_.responses_dropped;
  } else {
    r.disposition = Disposition::kAbsorbed;
    ++counters_.responses_absorbed;
  }
  apply(e, out, now, &response);
  r.message = std::move(response);
  drain_transport_errors(now);
  return r;
}

void TransactionTable::advance(TimePoint now) {
  assert(depth_ == 0 && "entry points are not re-entrant");
  CallScope scope(*this);
  drain_transport_errors(now);
  while (auto t = wheel_.pop_expired(now)) {
    Entry* e = find(t->id);
    // Retiring a transaction cancels its timers, so a firing always has its transaction.
    assert(e != nullptr);
    if (e == nullptr) continue;
    const auto timer = static_cast<TimerName>(t->tag);
    e->timers[t->tag] = TimerWheel::kNoNode;
    Output out = std::visit([&](auto& m) { return m.on_timer(timer); }, e->machine);
    apply(*e, out, now, nullptr);
    drain_transport_errors(now);
  }
}

void TransactionTable::transport_error(TransactionId txn, TimePoint now) {
  assert(depth_ == 0 && "entry points are not re-entrant");
  CallScope scope(*this);
  pending_errors_.emplace_back(txn, now);
  drain_transport_errors(now);
}

std::optional<TimePoint> TransactionTable::next_deadline() const {
  std::optional<TimePoint> next = wheel_.next_deadline();
  for (const auto& pending : pending_errors_)
    if (!next || pending.second < *next) next = pending.second;
  return next;
}

Result<TransactionId> TransactionTable::send_request(sip::MessagePtr request, Reliability reliability, uint64_t context,
                                                     TimePoint now) {
  CallScope scope(*this);
  if (request == nullptr || !request->is_request() || request->method() == sip::Method::kAck) {
    ++counters_.tu_calls_rejected;
    return Error{500, "no client transaction for this message"};
  }
  auto key = sip::client_transaction_key_of_request(*request);
  if (!key) {
    ++counters_.tu_calls_rejected;
    return key.error();
  }
  const bool invite = request->method() == sip::Method::kInvite;
  return start_client(std::move(key).value(), invite, ClientRequest(std::move(request)), reliability, context, now);
}

Result<TransactionId> TransactionTable::send_request(std::string bytes, std::string_view method,
                                                     std::string_view branch, Reliability reliability, uint64_t context,
                                                     TimePoint now) {
  CallScope scope(*this);
  const sip::Method m = sip::method_from_name(method);
  if (method.empty() || m == sip::Method::kAck) {
    ++counters_.tu_calls_rejected;
    return Error{500, "no client transaction for this message"};
  }
  if (branch.size() <= sip::kBranchMagicCookie.size() || !branch.starts_with(sip::kBranchMagicCookie)) {
    ++counters_.tu_calls_rejected;
    return Error{500, "client transaction needs an RFC 3261 branch"};
  }
  return start_client(sip::client_transaction_key_of(branch, method), m == sip::Method::kInvite,
                      ClientRequest(std::move(bytes)), reliability, context, now);
}

Result<TransactionId> TransactionTable::start_client(std::string key, bool invite, ClientRequest request,
                                                     Reliability reliability, uint64_t context, TimePoint now) {
  if (client_keys_.contains(probe(key))) {
    ++counters_.tu_calls_rejected;
    return Error{500, "branch already in use by a client transaction"};
  }
  Entry& e = invite ? create<InviteClient>(std::move(key), context, std::move(request), reliability)
                    : create<NonInviteClient>(std::move(key), context, std::move(request), reliability);
  Output out = std::visit([](auto& m) { return m.start(); }, e.machine);
  apply(e, out, now, nullptr);
  return e.id;
}

Status TransactionTable::respond(TransactionId txn, uint16_t status, std::string response, TimePoint now) {
  CallScope scope(*this);
  Entry* e = find(txn);
  if (e == nullptr) {
    ++counters_.tu_calls_rejected;
    return Error{481, "no such transaction"};
  }
  Output out = std::visit(
      [&](auto& m) -> Output {
        if constexpr (kIsServer<std::decay_t<decltype(m)>>) return m.respond(status, std::move(response));
        return Output::with(Verdict::kIgnored);
      },
      e->machine);
  if (out.verdict == Verdict::kIgnored) {
    ++counters_.tu_calls_rejected;
    return Error{500, "response not allowed in the transaction's state"};
  }
  apply(*e, out, now, nullptr);
  return Status::Ok();
}

const sip::Message* TransactionTable::request(TransactionId txn) const {
  const Entry* e = find(txn);
  if (e == nullptr) return nullptr;
  return std::visit([](const auto& m) { return m.request(); }, e->machine);
}

std::optional<TransactionKind> TransactionTable::kind(TransactionId txn) const {
  const Entry* e = find(txn);
  if (e == nullptr) return std::nullopt;
  return static_cast<TransactionKind>(e->machine.index());
}

std::string_view TransactionTable::state(TransactionId txn) const {
  const Entry* e = find(txn);
  if (e == nullptr) return {};
  return std::visit([](const auto& m) { return m.state_name(m.state()); }, e->machine);
}

void TransactionTable::apply(Entry& e, const Output& out, TimePoint now, sip::MessagePtr* message,
                             TransactionId cancelled) {
  for (const TimerChange& change : out.timers) {
    const auto tag = static_cast<uint16_t>(change.timer);
    uint32_t& node = e.timers[tag];
    if (node != TimerWheel::kNoNode) wheel_.cancel(node, e.id, tag);  // a stop, or a restart
    node = change.start ? wheel_.schedule(now, now + change.after, e.id, tag).index : TimerWheel::kNoNode;
  }
  for (std::string_view bytes : out.sends) {
    if (transport_.send(e.id, e.context, bytes)) continue;
    ++counters_.send_failures;
    pending_errors_.emplace_back(e.id, now);
  }
  switch (out.notify) {
    case Notify::kNone:
      break;
    case Notify::kRequest:
      tu_.on_request(e.id, *request(e.id), cancelled);
      break;
    case Notify::kAck:
      assert(message != nullptr && *message != nullptr);
      tu_.on_ack(e.id, *message);
      break;
    case Notify::kResponse:
      assert(message != nullptr && *message != nullptr);
      tu_.on_response(e.id, *message);
      break;
    case Notify::kTimeout:
      ++counters_.timeouts;
      tu_.on_failure(e.id, Failure{Failure::Kind::kTimeout, 408});
      break;
    case Notify::kTransportError:
      ++counters_.transport_errors;
      tu_.on_failure(e.id, Failure{Failure::Kind::kTransportError, 503});
      break;
  }
  if (out.terminated) {
    retire(e);
    return;
  }
  // A request the machine no longer needs is freed when the outermost call returns (the TU may
  // still hold a reference from the callback it is in), not when the transaction ends: under
  // load the Timer J/K/D/L wait (up to 32 s) would otherwise keep every message of every call
  // alive, and the heap would grow by ~28 KB per call (docs/benchmarks.md).
  std::visit(
      [this](auto& m) {
        if (auto r = m.release_request()) keep_released(std::move(r));
      },
      e.machine);
}

void TransactionTable::keep_released(ClientRequest request) {
  if (request.parse_failed()) ++counters_.unparsable_requests;
  released_sent_.push_back(std::move(request));
}

void TransactionTable::retire(Entry& e) {
  const TransactionId id = e.id;
  for (size_t tag = 0; tag < kTimerCount; ++tag) {
    if (e.timers[tag] != TimerWheel::kNoNode) wheel_.cancel(e.timers[tag], id, static_cast<uint16_t>(tag));
    e.timers[tag] = TimerWheel::kNoNode;
  }
  const bool server = std::visit(
      [this](const auto& m) {
        if constexpr (kIsServer<std::decay_t<decltype(m)>>) {
          return true;
        } else {
          if (m.request_parse_failed()) ++counters_.unparsable_requests;  // still held: not counted yet
          return false;
        }
      },
      e.machine);
  (server ? server_keys_ : client_keys_).erase(Key{e.key_hash, e.key});
  const auto index = static_cast<uint32_t>((id & UINT32_MAX) - 1);
  slot_at(index).live = false;  // unknown from now on; `e` lives until the outermost call returns
  graveyard_.push_back(index);
  --live_;
  tu_.on_terminated(id);
}

void TransactionTable::drain_transport_errors(TimePoint now) {
  while (!pending_errors_.empty()) {
    std::vector<std::pair<TransactionId, TimePoint>> batch;
    batch.swap(pending_errors_);
    for (const auto& pending : batch) {
      Entry* e = find(pending.first);
      if (e == nullptr) continue;  // already terminated
      Output out = std::visit([](auto& m) { return m.on_transport_error(); }, e->machine);
      apply(*e, out, now, nullptr);
    }
  }
}

}  // namespace pinhole::txn
