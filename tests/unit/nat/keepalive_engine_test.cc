// Keepalive engine with a fake clock: reasons (add/extend/remove/expiry per kind), one stream per
// endpoint, evenness, misses -> dead, reply matching (ours vs forged/foreign), rebinding and
// interval learning, suppression, STUN and CRLF variants, views and persistence round trip.
#include "nat/keepalive_engine.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace pinhole::nat {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Kind = KeepaliveEngine::ReplyKind;

constexpr std::array<uint64_t, 2> kSecret{0x1111, 0x2222};

net::Flow udp(const char* remote, uint32_t socket = 1) {
  return net::Flow{net::Transport::kUdp, socket, net::Endpoint::parse(remote).value(), 0};
}
net::Flow tcp(const char* remote, uint64_t conn) {
  return net::Flow{net::Transport::kTcp, 2, net::Endpoint::parse(remote).value(), conn};
}

// What a UA answers (RFC 3261 §8.2.6): Via, From, Call-ID, CSeq copied, To tagged.
std::string respond(std::string_view request_bytes, int status = 200) {
  auto req = sip::Message::parse(request_bytes, sip::Framing::kDatagram).value();
  std::string r = "SIP/2.0 " + std::to_string(status) + " OK\r\n";
  for (const auto& h : req->headers()) {
    if (h.kind == sip::HeaderKind::kVia || h.kind == sip::HeaderKind::kFrom || h.kind == sip::HeaderKind::kCallId ||
        h.kind == sip::HeaderKind::kCSeq) {
      r += std::string(h.line);
    } else if (h.kind == sip::HeaderKind::kTo) {
      r += "To: " + std::string(h.value) + ";tag=ua\r\n";
    }
  }
  return r + "Content-Length: 0\r\n\r\n";
}

class KeepaliveEngineTest : public ::testing::Test {
 protected:
  explicit KeepaliveEngineTest(KeepaliveConfig c = {}) : config_(std::move(c)) {}
  KeepaliveEngine& engine() {
    if (!engine_) engine_ = std::make_unique<KeepaliveEngine>(config_, clock_, advertised_, kSecret);
    return *engine_;
  }
  // Moves the clock in 10 ms steps to `until`, collecting everything the engine produces.
  KeepaliveEngine::Due run_until(TimePoint until) {
    KeepaliveEngine::Due all;
    while (clock_.now() < until) {
      clock_.advance(milliseconds(10));
      auto d = engine().advance(clock_.now());
      if (answer_) {
        for (const auto& s : d.sends) answer(s);
      }
      for (auto& s : d.sends) all.sends.push_back(std::move(s));
      all.dead.insert(all.dead.end(), d.dead.begin(), d.dead.end());
      all.expired.insert(all.expired.end(), d.expired.begin(), d.expired.end());
    }
    return all;
  }
  KeepaliveEngine::Due run_for(Duration d) { return run_until(clock_.now() + d); }
  // Answers a ping the way a live UA behind an unchanged mapping does.
  void answer(const KeepaliveEngine::Send& s) {
    if (s.bytes == kCrlfPing) {
      engine().on_pong(s.flow);
    } else if (looks_like_stun(s.bytes)) {
      std::string out;
      append_binding_success(out, decode_stun(s.bytes).value().transaction_id, s.flow.remote);
      EXPECT_EQ(engine().on_stun(out, s.flow), Kind::kAlive);
    } else {
      EXPECT_EQ(reply(s, s.flow), Kind::kAlive);
    }
  }
  Kind reply(const KeepaliveEngine::Send& s, const net::Flow& from) {
    auto resp = sip::Message::parse(respond(s.bytes), sip::Framing::kDatagram);
    EXPECT_TRUE(resp.ok());
    return engine().on_sip_response(**resp, from);
  }

  KeepaliveConfig config_;
  ManualClock clock_{TimePoint{} + std::chrono::hours(1)};
  AdvertisedAddress advertised_;
  bool answer_ = false;  // run_until answers every ping
  std::unique_ptr<KeepaliveEngine> engine_;
};

TEST_F(KeepaliveEngineTest, ReasonsAddExtendRemoveExpireForEachKind) {
  for (KeepaliveReason kind :
       {KeepaliveReason::kRegistration, KeepaliveReason::kSubscription, KeepaliveReason::kDialog}) {
    SCOPED_TRACE(static_cast<int>(kind));
    engine_.reset();
    answer_ = true;
    auto& e = engine();
    net::Flow f = udp("192.0.2.1:5060");
    e.set_reason(f, kind, "key-a", seconds(60));
    EXPECT_EQ(e.size(), 1U);
    EXPECT_EQ(e.counters().endpoints_by_reason[static_cast<size_t>(kind)], 1U);
    EXPECT_EQ(e.counters().endpoints_udp, 1U);

    // Extend at t+50 s for another 60 s: alive at t+100 s, gone by t+111 s.
    run_for(seconds(50));
    e.set_reason(f, kind, "key-a", seconds(60));
    auto d = run_for(seconds(50));
    EXPECT_TRUE(d.expired.empty());
    EXPECT_EQ(e.size(), 1U);
    d = run_for(seconds(11));
    ASSERT_EQ(d.expired.size(), 1U);
    EXPECT_EQ(d.expired[0], f);
    EXPECT_EQ(e.size(), 0U);
    EXPECT_EQ(e.counters().endpoints_by_reason[static_cast<size_t>(kind)], 0U);
    EXPECT_EQ(e.counters().endpoints_udp, 0U);

    // Explicit removal, and expires 0 removal; a removal for an unknown key changes nothing.
    e.set_reason(f, kind, "key-a", seconds(60));
    e.set_reason(f, kind, "key-b", seconds(60));
    e.remove_reason(f, kind, "key-zzz");
    e.remove_reason(f, kind, "key-a");
    EXPECT_EQ(e.size(), 1U);
    e.set_reason(f, kind, "key-b", seconds(0));
    EXPECT_EQ(e.size(), 0U);
    EXPECT_EQ(e.counters().endpoints_by_reason[static_cast<size_t>(kind)], 0U);
    EXPECT_TRUE(run_for(seconds(100)).sends.empty());
  }
}

TEST_F(KeepaliveEngineTest, ShorterGrantShortensAndReasonsAreIndependent) {
  auto& e = engine();
  net::Flow f = udp("192.0.2.1:5060");
  e.set_reason(f, KeepaliveReason::kRegistration, "b1", seconds(3600));
  e.set_reason(f, KeepaliveReason::kDialog, "call-1", seconds(30));
  e.set_reason(f, KeepaliveReason::kRegistration, "b1", seconds(20));  // re-REGISTER granted less
  auto v = e.find(f);
  ASSERT_TRUE(v.has_value());
  ASSERT_EQ(v->reasons.size(), 2U);
  run_for(seconds(21));
  v = e.find(f);
  ASSERT_TRUE(v.has_value());
  ASSERT_EQ(v->reasons.size(), 1U);
  EXPECT_EQ(v->reasons[0].first, KeepaliveReason::kDialog);
  EXPECT_EQ(e.counters().endpoints_by_reason[0], 0U);
  EXPECT_EQ(e.counters().endpoints_by_reason[2], 1U);
}

// A PBX behind NAT: hundreds of dialogs on one flow, removed out of order, some extended, some
// left to expire. The endpoint and the per-kind counts follow exactly; the last expiry ends it.
TEST_F(KeepaliveEngineTest, ManyDialogsOnOneFlowAreTrackedOneByOne) {
  auto& e = engine();
  answer_ = true;
  net::Flow f = udp("198.51.100.9:5060");
  constexpr int kDialogs = 600;
  for (int i = 0; i < kDialogs; ++i) {
    e.set_reason(f, KeepaliveReason::kDialog, "call-" + std::to_string(i), seconds(40 + i % 7));
  }
  e.set_reason(f, KeepaliveReason::kRegistration, "binding", seconds(30));
  EXPECT_EQ(e.find(f)->reasons.size(), static_cast<size_t>(kDialogs + 1));
  // Hang up every even call, from the last to the first, and one unknown call.
  for (int i = kDialogs - 2; i >= 0; i -= 2) e.remove_reason(f, KeepaliveReason::kDialog, "call-" + std::to_string(i));
  e.remove_reason(f, KeepaliveReason::kDialog, "call-none");
  EXPECT_EQ(e.find(f)->reasons.size(), static_cast<size_t>(kDialogs / 2 + 1));
  // Call 1 is extended to 120 s; the registration lapses at 30 s, the other calls by 47 s.
  e.set_reason(f, KeepaliveReason::kDialog, "call-1", seconds(120));
  run_for(seconds(31));
  EXPECT_EQ(e.counters().endpoints_by_reason[static_cast<size_t>(KeepaliveReason::kRegistration)], 0U);
  EXPECT_EQ(e.counters().endpoints_by_reason[static_cast<size_t>(KeepaliveReason::kDialog)], 1U);
  run_for(seconds(20));
  auto v = e.find(f);
  ASSERT_TRUE(v.has_value());
  ASSERT_EQ(v->reasons.size(), 1U);
  EXPECT_EQ(v->reasons[0].first, KeepaliveReason::kDialog);
  auto d = run_for(seconds(60));
  EXPECT_TRUE(d.expired.empty());
  d = run_for(seconds(10));
  ASSERT_EQ(d.expired.size(), 1U);
  EXPECT_EQ(e.size(), 0U);
  EXPECT_EQ(e.counters().endpoints_by_reason[static_cast<size_t>(KeepaliveReason::kDialog)], 0U);
}

// Across the size where a record's reasons get indexed, in a random order of adds, refreshes and
// removals: the engine holds exactly the reasons a model holds (a stale position would add a
// duplicate on refresh or remove the wrong reason).
TEST_F(KeepaliveEngineTest, ReasonSetMatchesAModelAcrossTheIndexThreshold) {
  auto& e = engine();
  net::Flow f = udp("198.51.100.10:5060");
  std::set<int> model;
  uint64_t seed = 7;
  auto next = [&seed](int n) {
    seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<int>((seed >> 33) % static_cast<uint64_t>(n));
  };
  for (int step = 0; step < 4000; ++step) {
    int key = next(40);
    auto kind = key % 3 == 0 ? KeepaliveReason::kRegistration : KeepaliveReason::kDialog;
    if (next(2) == 0) {
      e.set_reason(f, kind, "k" + std::to_string(key), seconds(600));
      model.insert(key);
    } else {
      e.remove_reason(f, kind, "k" + std::to_string(key));
      model.erase(key);
    }
    auto v = e.find(f);
    ASSERT_EQ(v.has_value(), !model.empty()) << "step " << step;
    if (v) ASSERT_EQ(v->reasons.size(), model.size()) << "step " << step;
  }
}

TEST_F(KeepaliveEngineTest, OneStreamPerEndpointWhateverTheReasons) {
  auto& e = engine();
  net::Flow f = udp("198.51.100.7:41000");
  net::Flow other = udp("198.51.100.8:41000");
  e.set_reason(f, KeepaliveReason::kRegistration, "binding", seconds(3600));
  e.set_reason(f, KeepaliveReason::kSubscription, "sub-dialog", seconds(3600));
  e.set_reason(f, KeepaliveReason::kDialog, "call-1", seconds(3600));
  e.set_reason(f, KeepaliveReason::kDialog, "call-2", seconds(3600));
  e.set_reason(other, KeepaliveReason::kRegistration, "binding", seconds(3600));
  EXPECT_EQ(e.size(), 2U);
  auto c = e.counters();
  EXPECT_EQ(c.endpoints_by_reason[0], 2U);
  EXPECT_EQ(c.endpoints_by_reason[1], 1U);
  EXPECT_EQ(c.endpoints_by_reason[2], 1U);

  answer_ = true;
  auto d = run_for(seconds(15 * 4));
  size_t to_f = 0;
  for (const auto& s : d.sends) to_f += s.flow == f ? 1U : 0U;
  EXPECT_EQ(to_f, 4U);  // one per 15 s interval
  EXPECT_EQ(d.sends.size(), 8U);
  EXPECT_TRUE(d.dead.empty());
}

TEST_F(KeepaliveEngineTest, ThirtyThousandSimultaneousRegistrationsAreSpreadEvenly) {
  config_.max_misses = 255;  // nobody answers here; keep them all
  config_.udp_method = KeepaliveMethod::kStun;
  auto& e = engine();
  constexpr int kEndpoints = 30000;
  for (int i = 0; i < kEndpoints; ++i) {
    net::Flow f{net::Transport::kUdp, 1,
                net::Endpoint{net::Address::v4(0x0A000000U + static_cast<uint32_t>(i / 60)),
                              static_cast<uint16_t>(1024 + i % 60)},
                0};
    e.set_reason(f, KeepaliveReason::kRegistration, "b", seconds(3600));
  }
  // Sends per 10 ms tick over two intervals.
  constexpr int kTicks = 2 * 1500;
  std::vector<int> per_tick(kTicks, 0);
  std::map<std::string, int> per_flow;
  for (int t = 0; t < kTicks; ++t) {
    clock_.advance(milliseconds(10));
    auto d = e.advance(clock_.now());
    per_tick[static_cast<size_t>(t)] = static_cast<int>(d.sends.size());
    for (const auto& s : d.sends) per_flow[s.flow.remote.to_string()]++;
  }
  // Every endpoint exactly once per interval.
  ASSERT_EQ(per_flow.size(), static_cast<size_t>(kEndpoints));
  for (const auto& [flow, n] : per_flow) ASSERT_EQ(n, 2) << flow;
  // Every 1 s window (sliding by 10 ms) within 10% of endpoints/interval.
  const double mean = kEndpoints / 15.0;
  int worst_hi = 0;
  int worst_lo = kEndpoints;
  for (int start = 0; start + 100 <= kTicks; ++start) {
    int sum = 0;
    for (int t = start; t < start + 100; ++t) sum += per_tick[static_cast<size_t>(t)];
    worst_hi = std::max(worst_hi, sum);
    worst_lo = std::min(worst_lo, sum);
  }
  EXPECT_LE(worst_hi, mean * 1.10);
  EXPECT_GE(worst_lo, mean * 0.90);
}

TEST_F(KeepaliveEngineTest, MissesThenDeadAndRepliesKeepAlive) {
  config_.max_misses = 3;
  auto& e = engine();
  net::Flow silent = udp("192.0.2.20:5060");
  net::Flow chatty = udp("192.0.2.21:5060");
  e.set_reason(silent, KeepaliveReason::kRegistration, "b", seconds(3600));
  e.set_reason(chatty, KeepaliveReason::kRegistration, "b", seconds(3600));

  std::vector<net::Flow> dead;
  int silent_sends = 0;
  for (int i = 0; i < 15 * 100 * 6; ++i) {
    clock_.advance(milliseconds(10));
    auto d = e.advance(clock_.now());
    for (const auto& s : d.sends) {
      if (s.flow == chatty) {
        EXPECT_EQ(reply(s, chatty), Kind::kAlive);
      }
      if (s.flow == silent) ++silent_sends;
    }
    dead.insert(dead.end(), d.dead.begin(), d.dead.end());
  }
  ASSERT_EQ(dead.size(), 1U);
  EXPECT_EQ(dead[0], silent);
  EXPECT_EQ(silent_sends, 3);  // declared dead 10 s after the third ping, before a fourth
  EXPECT_FALSE(e.find(silent).has_value());
  ASSERT_TRUE(e.find(chatty).has_value());
  EXPECT_EQ(e.find(chatty)->misses, 0U);
  auto c = e.counters();
  EXPECT_EQ(c.timeouts, 3U);
  EXPECT_EQ(c.dead, 1U);
  EXPECT_EQ(c.replies, e.find(chatty)->replies);
  EXPECT_EQ(c.sent, 3 + e.find(chatty)->sent);
}

TEST_F(KeepaliveEngineTest, LateReplyClearsMisses) {
  config_.max_misses = 2;
  auto& e = engine();
  net::Flow f = udp("192.0.2.30:5060");
  e.set_reason(f, KeepaliveReason::kRegistration, "b", seconds(3600));
  auto d = run_for(seconds(15));
  ASSERT_EQ(d.sends.size(), 1U);
  run_for(seconds(11));  // the pong wait passed: one miss
  EXPECT_EQ(e.find(f)->misses, 1U);
  EXPECT_EQ(reply(d.sends[0], f), Kind::kAlive);  // a late answer still proves the flow
  EXPECT_EQ(e.find(f)->misses, 0U);
  EXPECT_TRUE(run_for(seconds(20)).dead.empty());
}

TEST_F(KeepaliveEngineTest, ForgedAndForeignRepliesAreNotOurs) {
  auto& e = engine();
  net::Flow f = udp("192.0.2.40:5060");
  e.set_reason(f, KeepaliveReason::kRegistration, "b", seconds(3600));
  auto d = run_for(seconds(15));
  ASSERT_EQ(d.sends.size(), 1U);
  std::string good = respond(d.sends[0].bytes);
  auto parse = [](const std::string& t) { return sip::Message::parse(t, sip::Framing::kDatagram).value(); };

  // Wrong tag (one hex digit changed in both branch and Call-ID, so only the MAC can tell).
  std::string forged = good;
  for (size_t at = forged.find("pka"); at != std::string::npos; at = forged.find("pka", at + 1)) {
    char& c = forged[at + 3 + 20];
    c = c == '0' ? '1' : '0';
  }
  EXPECT_EQ(e.on_sip_response(*parse(forged), f), Kind::kNotOurs);
  // Another engine's token (different secret) for the same flow and index.
  ManualClock other_clock = clock_;
  KeepaliveEngine other(config_, other_clock, {}, std::array<uint64_t, 2>{9, 9});
  other.set_reason(f, KeepaliveReason::kRegistration, "b", seconds(3600));
  KeepaliveEngine::Due od;
  for (int i = 0; i < 1600 && od.sends.empty(); ++i) {
    other_clock.advance(milliseconds(10));
    od = other.advance(other_clock.now());
  }
  ASSERT_EQ(od.sends.size(), 1U);
  EXPECT_EQ(e.on_sip_response(*parse(respond(od.sends[0].bytes)), f), Kind::kNotOurs);
  // Right token over another socket or transport.
  EXPECT_EQ(e.on_sip_response(*parse(good), udp("192.0.2.40:5060", 7)), Kind::kNotOurs);
  EXPECT_EQ(e.on_sip_response(*parse(good), tcp("192.0.2.40:5060", 3)), Kind::kNotOurs);
  // A response to something else entirely.
  std::string foreign =
      "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKabc\r\nFrom: <sip:a@b>;tag=1\r\n"
      "To: <sip:c@d>;tag=2\r\nCall-ID: x\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n";
  EXPECT_EQ(e.on_sip_response(*parse(foreign), f), Kind::kNotOurs);
  EXPECT_EQ(e.counters().replies, 0U);
  // The genuine one.
  EXPECT_EQ(e.on_sip_response(*parse(good), f), Kind::kAlive);
  EXPECT_EQ(e.counters().replies, 1U);

  // After the endpoint is removed and re-created on the same index, old replies are stale.
  ASSERT_TRUE(e.remove_endpoint(f));
  e.set_reason(f, KeepaliveReason::kRegistration, "b", seconds(3600));
  EXPECT_EQ(e.on_sip_response(*parse(good), f), Kind::kNotOurs);
}

TEST_F(KeepaliveEngineTest, RebindingIsCountedAndShortensTheInterval) {
  config_.min_interval = seconds(5);
  auto& e = engine();
  net::Flow f = udp("192.0.2.50:5060");
  net::Flow moved = udp("192.0.2.50:6000");  // same host, new NAT port
  e.set_reason(f, KeepaliveReason::kRegistration, "b", seconds(3600));
  auto d = run_for(seconds(15));
  ASSERT_EQ(d.sends.size(), 1U);
  EXPECT_EQ(reply(d.sends[0], moved), Kind::kRebinding);
  EXPECT_EQ(e.find(f)->interval, seconds(7));
  EXPECT_EQ(e.find(f)->rebindings, 1U);
  EXPECT_EQ(e.counters().rebindings, 1U);
  EXPECT_EQ(e.counters().replies, 0U);
  EXPECT_EQ(reply(d.sends[0], moved), Kind::kRebinding);
  EXPECT_EQ(e.find(f)->interval, seconds(5));  // not below min_interval
  EXPECT_EQ(reply(d.sends[0], moved), Kind::kRebinding);
  EXPECT_EQ(e.find(f)->interval, seconds(5));

  // The learned interval is what the schedule uses: 4 pings in 20 s (answered, so no misses).
  answer_ = true;
  auto later = run_for(seconds(20));
  EXPECT_EQ(later.sends.size(), 4U);
  EXPECT_TRUE(later.dead.empty());
}

TEST_F(KeepaliveEngineTest, NoLearningWhenDisabled) {
  config_.learn_interval = false;
  auto& e = engine();
  net::Flow f = udp("192.0.2.51:5060");
  e.set_reason(f, KeepaliveReason::kRegistration, "b", seconds(3600));
  auto d = run_for(seconds(15));
  ASSERT_EQ(d.sends.size(), 1U);
  EXPECT_EQ(reply(d.sends[0], udp("192.0.2.99:5060")), Kind::kRebinding);
  EXPECT_EQ(e.find(f)->interval, seconds(15));
}

TEST_F(KeepaliveEngineTest, SuppressedFlowsGetNoPingsButStillExpire) {
  auto& e = engine();
  net::Flow f = udp("192.0.2.60:5060");
  e.set_reason(f, KeepaliveReason::kRegistration, "b", seconds(130));
  e.suppress(f, true);
  EXPECT_TRUE(e.find(f)->suppressed);
  auto d = run_for(seconds(100));
  EXPECT_TRUE(d.sends.empty());
  EXPECT_TRUE(d.dead.empty());
  e.suppress(f, false);
  d = run_for(seconds(15));
  EXPECT_EQ(d.sends.size(), 1U);
  const uint64_t timeouts = e.counters().timeouts;
  e.suppress(f, true);
  d = run_for(seconds(10));
  EXPECT_TRUE(d.expired.empty());
  d = run_for(seconds(10));
  ASSERT_EQ(d.expired.size(), 1U);
  EXPECT_TRUE(d.sends.empty());
  EXPECT_EQ(e.counters().timeouts, timeouts);  // an outstanding ping is forgotten, not missed
  e.suppress(udp("192.0.2.61:5060"), true);    // unknown flow: no-op
  EXPECT_EQ(e.size(), 0U);
}

TEST_F(KeepaliveEngineTest, StunKeepalivesAndReplies) {
  config_.udp_method = KeepaliveMethod::kStun;
  config_.stun_fingerprint = true;
  auto& e = engine();
  net::Flow f = udp("[2001:db8::77]:5060");
  e.set_reason(f, KeepaliveReason::kRegistration, "b", seconds(3600));
  auto d = run_for(seconds(15));
  ASSERT_EQ(d.sends.size(), 1U);
  ASSERT_TRUE(looks_like_stun(d.sends[0].bytes));
  auto req = decode_stun(d.sends[0].bytes);
  ASSERT_TRUE(req.ok());
  EXPECT_EQ(req->type, kStunBindingRequest);
  EXPECT_TRUE(req->has_fingerprint);

  std::string answer;
  append_binding_success(answer, req->transaction_id, f.remote);
  EXPECT_EQ(e.on_stun(answer, f), Kind::kAlive);
  EXPECT_EQ(e.on_stun(answer, udp("[2001:db8::77]:5999")), Kind::kRebinding);
  StunTransactionId wrong = req->transaction_id;
  wrong[11] ^= 1;
  std::string forged;
  append_binding_success(forged, wrong, f.remote);
  EXPECT_EQ(e.on_stun(forged, f), Kind::kNotOurs);
  std::string request_back;
  append_binding_request(request_back, req->transaction_id);
  EXPECT_EQ(e.on_stun(request_back, f), Kind::kNotOurs);  // a request is not a reply
  EXPECT_EQ(e.on_stun("garbage", f), Kind::kNotOurs);
  EXPECT_EQ(e.counters().replies, 1U);
}

TEST_F(KeepaliveEngineTest, StreamFlowsGetCrlfPingsAndDieWithoutPongs) {
  config_.max_misses = 2;
  auto& e = engine();
  net::Flow f = tcp("192.0.2.70:50000", 11);
  e.set_reason(f, KeepaliveReason::kRegistration, "b", seconds(3600));
  EXPECT_EQ(e.counters().endpoints_stream, 1U);
  EXPECT_EQ(e.find(f)->interval, seconds(90));
  answer_ = true;  // answered with on_pong
  auto d = run_for(seconds(90));
  answer_ = false;
  ASSERT_EQ(d.sends.size(), 1U);
  EXPECT_EQ(d.sends[0].bytes, kCrlfPing);
  EXPECT_EQ(e.find(f)->replies, 1U);
  e.on_pong(f);  // unsolicited: not counted
  EXPECT_EQ(e.find(f)->replies, 1U);
  d = run_for(seconds(90 * 2 + 11));
  EXPECT_EQ(d.sends.size(), 2U);
  ASSERT_EQ(d.dead.size(), 1U);
  EXPECT_EQ(d.dead[0], f);
  EXPECT_EQ(e.counters().endpoints_stream, 0U);
}

TEST_F(KeepaliveEngineTest, AdvertisedAddressGoesIntoVia) {
  int calls = 0;
  advertised_ = [&](uint32_t socket) {
    ++calls;
    return socket == 1 ? std::string("203.0.113.5:5060") : std::string("203.0.113.6:5080");
  };
  config_.extra_headers = {"X-Edge: a"};
  config_.from_uri = "sip:ping@edge.example";
  auto& e = engine();
  e.set_reason(udp("192.0.2.80:5060", 1), KeepaliveReason::kRegistration, "b", seconds(3600));
  e.set_reason(udp("192.0.2.81:5060", 1), KeepaliveReason::kRegistration, "b", seconds(3600));
  e.set_reason(udp("192.0.2.82:5060", 2), KeepaliveReason::kRegistration, "b", seconds(3600));
  auto d = run_for(seconds(15));
  ASSERT_EQ(d.sends.size(), 3U);
  for (const auto& s : d.sends) {
    auto m = sip::Message::parse(s.bytes, sip::Framing::kDatagram);
    ASSERT_TRUE(m.ok()) << s.bytes;
    EXPECT_EQ((*m)->top_via().value()->port, s.flow.local_socket_id == 1 ? 5060 : 5080);
    EXPECT_EQ((*m)->request_uri().raw, "sip:" + s.flow.remote.to_string());
    EXPECT_NE((*m)->header("X-Edge"), nullptr);
    EXPECT_EQ((*(*m)->from())->uri.raw, "sip:ping@edge.example");
  }
  EXPECT_EQ(calls, 2);  // once per socket
}

TEST_F(KeepaliveEngineTest, NextDeadlineLeadsToTheWork) {
  auto& e = engine();
  EXPECT_FALSE(e.next_deadline().has_value());
  net::Flow f = udp("192.0.2.90:5060");
  e.set_reason(f, KeepaliveReason::kRegistration, "b", seconds(3600));
  auto when = e.next_deadline();
  ASSERT_TRUE(when.has_value());
  EXPECT_LE(*when, e.find(f)->next_send);
  EXPECT_GT(*when, clock_.now());
  // Jumping straight to the deadline (as the event loop does) produces the ping; nothing before.
  auto before = e.advance(*when - milliseconds(10));
  EXPECT_TRUE(before.sends.empty());
  auto d = e.advance(*when);
  EXPECT_EQ(d.sends.size(), 1U);
}

TEST_F(KeepaliveEngineTest, ViewsAndPersistenceRoundTrip) {
  auto& e = engine();
  net::Flow f = udp("192.0.2.100:5060");
  e.set_reason(f, KeepaliveReason::kRegistration, "binding-1", seconds(300));
  e.set_reason(f, KeepaliveReason::kDialog, "dialog-9", seconds(600));
  e.set_reason(tcp("192.0.2.101:5060", 4), KeepaliveReason::kSubscription, "sub", seconds(900));
  auto all = e.list();
  ASSERT_EQ(all.size(), 2U);
  auto v = e.find(f).value();
  ASSERT_EQ(v.reasons.size(), 2U);
  EXPECT_EQ(v.reasons[0].second.size(), 16U);
  EXPECT_EQ(v.details[0].key_hash, KeepaliveEngine::key_hash("binding-1"));
  EXPECT_EQ(v.details[1].expires, clock_.now() + seconds(600));

  // Reload into a fresh engine (a restart) from the exported views: same reasons, same expiries,
  // and the original key strings still address them.
  KeepaliveEngine restored(config_, clock_, {}, kSecret);
  for (const auto& view : all) {
    for (const auto& d : view.details) {
      restored.set_reason_hashed(view.flow, d.reason, d.key_hash,
                                 std::chrono::duration_cast<seconds>(d.expires - clock_.now()));
    }
  }
  ASSERT_EQ(restored.size(), 2U);
  auto rv = restored.find(f).value();
  EXPECT_EQ(rv.reasons, v.reasons);
  restored.remove_reason(f, KeepaliveReason::kRegistration, "binding-1");
  restored.remove_reason(f, KeepaliveReason::kDialog, "dialog-9");
  EXPECT_EQ(restored.size(), 1U);
  EXPECT_GT(e.memory_bytes(), 0U);
}

TEST(KeepaliveConfigValidation, RefusesNonsense) {
  EXPECT_TRUE(validate_keepalive_config(KeepaliveConfig{}).ok());
  struct Case {
    const char* name;
    void (*edit)(KeepaliveConfig&);
  };
  for (const Case& c : std::vector<Case>{
           {"zero interval", [](KeepaliveConfig& k) { k.udp_interval = seconds(0); }},
           {"min above udp", [](KeepaliveConfig& k) { k.min_interval = seconds(20); }},
           {"no pong wait", [](KeepaliveConfig& k) { k.pong_timeout = seconds(0); }},
           {"no misses", [](KeepaliveConfig& k) { k.max_misses = 0; }},
           {"crlf on udp", [](KeepaliveConfig& k) { k.udp_method = KeepaliveMethod::kCrlf; }},
           {"from not sip", [](KeepaliveConfig& k) { k.from_uri = "mailto:x@y"; }},
           {"from injection", [](KeepaliveConfig& k) { k.from_uri = "sip:a@b>\r\nX: y"; }},
           {"header no colon", [](KeepaliveConfig& k) { k.extra_headers = {"NoColon"}; }},
           {"header injection", [](KeepaliveConfig& k) { k.extra_headers = {"A: b\r\nC: d"}; }},
       }) {
    KeepaliveConfig k;
    c.edit(k);
    EXPECT_FALSE(validate_keepalive_config(k).ok()) << c.name;
  }
}

}  // namespace
}  // namespace pinhole::nat
