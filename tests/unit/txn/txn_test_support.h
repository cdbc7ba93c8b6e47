// Test helpers for the transaction layer: SIP message texts, a fake transport and a recording TU
// on a manual clock, and readable views of a machine's Output.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "sip/message.h"
#include "txn/actions.h"
#include "txn/transaction_table.h"

namespace pinhole::txn::testing {

using namespace std::chrono_literals;

inline sip::MessagePtr parse(std::string_view text) {
  auto r = sip::Message::parse(text, sip::Framing::kDatagram);
  EXPECT_TRUE(r.ok()) << "should parse (" << (r.ok() ? "" : r.error().what) << "):\n" << text;
  return r.ok() ? std::move(r).value() : nullptr;
}

// A request as one element sends it; fields are whole header values.
struct Req {
  std::string method = "INVITE";
  std::string ruri = "sip:bob@biloxi.example.com";
  std::vector<std::string> vias = {"SIP/2.0/UDP proxy.atlanta.example.com;branch=z9hG4bK74bf9.1",
                                   "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKnashds8;received=192.0.2.101"};
  std::string max_forwards = "69";
  std::string to = "Bob <sip:bob@biloxi.example.com>";
  std::string from = "Alice <sip:alice@atlanta.example.com>;tag=1928301774";
  std::string call_id = "a84b4c76e66710@pc33.atlanta.example.com";
  std::string cseq_number = "314159";
  std::string cseq_method;  // defaults to `method`
  std::string extra;        // whole header lines, each ending in CRLF

  std::string text() const {
    std::string t = method + " " + ruri + " SIP/2.0\r\n";
    for (const auto& v : vias) t += "Via: " + v + "\r\n";
    t += "Max-Forwards: " + max_forwards + "\r\nTo: " + to + "\r\nFrom: " + from + "\r\nCall-ID: " + call_id +
         "\r\nCSeq: " + cseq_number + " " + (cseq_method.empty() ? method : cseq_method) + "\r\n" + extra +
         "Content-Length: 0\r\n\r\n";
    return t;
  }
  sip::MessagePtr message() const { return parse(text()); }

  // The request `method` that reuses this one's branch, Call-ID, CSeq number, From and
  // Request-URI (an ACK or CANCEL for it, RFC 3261 §9.1 and §17.1.1.3).
  Req same_transaction(std::string m, std::string to_tag = "") const {
    Req r = *this;
    r.method = std::move(m);
    r.cseq_method.clear();
    r.vias.resize(1);
    r.extra.clear();
    if (!to_tag.empty()) r.to += ";tag=" + to_tag;
    return r;
  }
};

// A response to `r` (its Vias, From, Call-ID, CSeq; To with `to_tag` when given).
inline std::string response_text(const Req& r, uint16_t status, std::string_view to_tag = "a6c85cf") {
  std::string t = "SIP/2.0 " + std::to_string(status) + " Whatever\r\n";
  for (const auto& v : r.vias) t += "Via: " + v + "\r\n";
  t += "To: " + r.to;
  if (!to_tag.empty() && status != 100) t += ";tag=" + std::string(to_tag);
  t += "\r\nFrom: " + r.from + "\r\nCall-ID: " + r.call_id + "\r\nCSeq: " + r.cseq_number + " " +
       (r.cseq_method.empty() ? r.method : r.cseq_method) + "\r\nContent-Length: 0\r\n\r\n";
  return t;
}
inline sip::MessagePtr response(const Req& r, uint16_t status, std::string_view to_tag = "a6c85cf") {
  return parse(response_text(r, status, to_tag));
}

// The timers an Output starts, as "A 500" (name, milliseconds), in order.
inline std::vector<std::string> started(const Output& out) {
  std::vector<std::string> v;
  for (const auto& c : out.timers)
    if (c.start) v.push_back(std::string(timer_name(c.timer)) + " " + std::to_string(c.after.count()));
  return v;
}
inline bool stops(const Output& out, TimerName t) {
  for (const auto& c : out.timers)
    if (!c.start && c.timer == t) return true;
  return false;
}
inline std::vector<std::string> sent(const Output& out) { return {out.sends.begin(), out.sends.end()}; }

// Records what the table sends, with the manual clock's time, and fails on request.
class FakeTransport : public TransactionTransport {
 public:
  struct Sent {
    TransactionId txn;
    uint64_t context;
    std::string bytes;
    TimePoint at;
  };
  explicit FakeTransport(const ManualClock& clock) : clock_(clock) {}

  bool send(TransactionId txn, uint64_t context, std::string_view bytes) override {
    sent.push_back({txn, context, std::string(bytes), clock_.now()});
    return !fail;
  }
  // Milliseconds since `start` of each send of `txn`.
  std::vector<int64_t> times(TransactionId txn, TimePoint start) const {
    std::vector<int64_t> v;
    for (const auto& s : sent)
      if (s.txn == txn) v.push_back(std::chrono::duration_cast<std::chrono::milliseconds>(s.at - start).count());
    return v;
  }

  std::vector<Sent> sent;
  bool fail = false;

 private:
  const ManualClock& clock_;
};

// Records every callback as a line ("response 2 486", "terminated 2"...), with optional hooks
// that run inside the callback (to call back into the table).
class RecordingTu : public TransactionUser {
 public:
  void on_request(TransactionId txn, const sip::Message& request, TransactionId cancelled) override {
    events.push_back("request " + std::to_string(txn) + " " + std::string(request.method_name()) +
                     (cancelled != kNoTransaction ? " cancels " + std::to_string(cancelled) : ""));
    requests.push_back(&request);
    if (on_request_hook) on_request_hook(txn, request);
  }
  void on_ack(TransactionId txn, sip::MessagePtr& ack) override {
    events.push_back("ack " + std::to_string(txn));
    if (take_messages) kept.push_back(std::move(ack));
  }
  void on_response(TransactionId txn, sip::MessagePtr& response) override {
    events.push_back("response " + std::to_string(txn) + " " + std::to_string(response->status()));
    if (on_response_hook) on_response_hook(txn, *response);
    if (take_messages) kept.push_back(std::move(response));
  }
  void on_failure(TransactionId txn, Failure failure) override {
    events.push_back(std::string(failure.kind == Failure::Kind::kTimeout ? "timeout " : "transport-error ") +
                     std::to_string(txn) + " " + std::to_string(failure.status));
  }
  void on_terminated(TransactionId txn) override {
    events.push_back("terminated " + std::to_string(txn));
    if (on_terminated_hook) on_terminated_hook(txn);
  }

  std::vector<std::string> events;
  std::vector<const sip::Message*> requests;
  std::vector<sip::MessagePtr> kept;
  bool take_messages = false;
  std::function<void(TransactionId, const sip::Message&)> on_request_hook;
  std::function<void(TransactionId, const sip::Message&)> on_response_hook;
  std::function<void(TransactionId)> on_terminated_hook;
};

// A table on a manual clock, with the fakes above.
class TableTest : public ::testing::Test {
 protected:
  explicit TableTest(TimerConfig config = {}) : transport_(clock_), table_(config, transport_, tu_) {}

  TimePoint now() const { return clock_.now(); }
  // Moves the clock to `t`, firing every timer due on the way at its own deadline, as the event
  // loop does.
  void run_until(TimePoint t) {
    for (auto d = table_.next_deadline(); d && *d <= t; d = table_.next_deadline()) {
      if (*d > clock_.now()) clock_.set(*d);
      table_.advance(clock_.now());
    }
    clock_.set(t);
  }
  void run_for(Duration d) { run_until(clock_.now() + d); }

  TransactionId send(const Req& r, Reliability rel = Reliability::kUnreliable, uint64_t context = 7) {
    auto id = table_.send_request(r.message(), rel, context, now());
    EXPECT_TRUE(id.ok()) << (id.ok() ? "" : id.error().what);
    return id.ok() ? *id : kNoTransaction;
  }
  Received receive(const Req& r, Reliability rel = Reliability::kUnreliable, uint64_t context = 9) {
    return table_.receive_request(r.message(), rel, context, now());
  }
  Received receive_response(const std::string& text) { return table_.receive_response(parse(text), now()); }

  ManualClock clock_{TimePoint{} + 1000s};
  FakeTransport transport_;
  RecordingTu tu_;
  TransactionTable table_;
};

}  // namespace pinhole::txn::testing
