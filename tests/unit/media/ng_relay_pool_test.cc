// The remote relay pool (media/ng_relay_pool.h) against fake ng relays: UDP sockets on
// 127.0.0.1 in the test that record every datagram and answer as each test decides (a canned
// reply built from the request, silence, a wrong cookie). Timeouts are tens of milliseconds and
// every wait is on a future or a condition with a generous limit: no assertion depends on timing.
#include "media/ng_relay_pool.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "media/bencode.h"
#include "media/ng_message.h"
#include "media/port_pool.h"

namespace pinhole::media {
namespace {

using namespace std::chrono_literals;

constexpr auto kWait = 10s;  // a limit, never an expectation

// One datagram the fake received, parsed.
struct Received {
  std::string cookie;
  std::string command;
  std::string call_id;
  std::string sdp;
  std::string raw;
};

class FakeRelay {
 public:
  // Gets each request; returns the reply body (the dictionary, without cookie) or nullopt to
  // stay silent.
  using Handler = std::function<std::optional<std::string>(const Received&)>;

  FakeRelay() {
    socket_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    net::Endpoint local{*net::Address::parse("127.0.0.1"), 0};
    sockaddr_storage addr{};
    socklen_t len = local.to_sockaddr(addr);
    EXPECT_EQ(::bind(socket_.get(), reinterpret_cast<sockaddr*>(&addr), len), 0);
    len = sizeof addr;
    EXPECT_EQ(::getsockname(socket_.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
    endpoint_ = *net::Endpoint::from_sockaddr(addr, len);
    set_handler(answer_ok);
    thread_ = std::thread([this] { loop(); });
  }
  ~FakeRelay() {
    stop_ = true;
    thread_.join();
  }
  FakeRelay(const FakeRelay&) = delete;
  FakeRelay& operator=(const FakeRelay&) = delete;

  const net::Endpoint& endpoint() const { return endpoint_; }
  void set_handler(Handler h) {
    std::lock_guard lock(mutex_);
    handler_ = std::move(h);
  }
  // Sends raw bytes to the last client (a stray reply).
  std::vector<Received> received() {
    std::lock_guard lock(mutex_);
    return received_;
  }
  size_t count(std::string_view command) {
    std::lock_guard lock(mutex_);
    size_t n = 0;
    for (const auto& r : received_) n += r.command == command ? size_t{1} : size_t{0};
    return n;
  }

  // The default: offer/answer -> ok with "relayed:" + the SDP; delete -> ok; ping -> pong.
  static std::optional<std::string> answer_ok(const Received& r) {
    std::string out;
    bencode::Writer w(out);
    w.begin_dict();
    if (r.command == "ping") {
      w.entry("result", "pong");
    } else {
      if (!r.sdp.empty()) w.entry("sdp", "relayed:" + r.sdp);
      w.entry("result", "ok");
    }
    w.end();
    return out;
  }
  static std::optional<std::string> silent(const Received&) { return std::nullopt; }

  // Extra datagrams to send before the real reply (e.g. a wrong cookie).
  void set_prefix_reply(std::string bytes) {
    std::lock_guard lock(mutex_);
    prefix_ = std::move(bytes);
  }

 private:
  void loop() {
    std::string buffer(70000, '\0');
    while (!stop_) {
      pollfd p{socket_.get(), POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      sockaddr_storage from{};
      socklen_t from_len = sizeof from;
      ssize_t n =
          ::recvfrom(socket_.get(), buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
      if (n <= 0) continue;
      std::string message(buffer.data(), static_cast<size_t>(n));
      Received r;
      r.raw = message;
      auto frame = split_ng_frame(message);
      if (!frame) continue;
      r.cookie = std::string(frame->cookie);
      auto doc = bencode::decode(frame->body);
      if (doc && doc->root().is_dict()) {
        auto str = [&](std::string_view key) {
          auto v = doc->root().find(key);
          auto s = v ? v->as_string() : std::nullopt;
          return s ? std::string(*s) : std::string();
        };
        r.command = str("command");
        r.call_id = str("call-id");
        r.sdp = str("sdp");
      }
      Handler handler;
      std::string prefix;
      {
        std::lock_guard lock(mutex_);
        received_.push_back(r);
        handler = handler_;
        prefix.swap(prefix_);
      }
      if (!prefix.empty())
        ::sendto(socket_.get(), prefix.data(), prefix.size(), 0, reinterpret_cast<sockaddr*>(&from), from_len);
      if (auto body = handler(r)) {
        std::string reply = r.cookie + " " + *body;
        ::sendto(socket_.get(), reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), from_len);
      }
    }
  }

  UniqueFd socket_;
  net::Endpoint endpoint_;
  std::mutex mutex_;
  Handler handler_;
  std::string prefix_;
  std::vector<Received> received_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

proxy::MediaRequest request(proxy::MediaOp op, const std::string& call_id) {
  proxy::MediaRequest r;
  r.op = op;
  r.call_id = call_id;
  r.from_tag = "ft";
  if (op == proxy::MediaOp::kAnswer) r.to_tag = "tt";
  if (op != proxy::MediaOp::kDelete) r.sdp = "v=0 " + call_id;
  r.received_from = {*net::Address::parse("192.0.2.1"), 5060};
  return r;
}

// Sends one request and waits for its `done`.
Result<proxy::MediaReply> call(proxy::MediaRelay& relay, proxy::MediaRequest r) {
  auto promise = std::make_shared<std::promise<Result<proxy::MediaReply>>>();
  auto future = promise->get_future();
  relay.request(std::move(r), [promise](Result<proxy::MediaReply> result) { promise->set_value(std::move(result)); });
  if (future.wait_for(kWait) != std::future_status::ready) {
    ADD_FAILURE() << "no answer from the pool";
    return Error{599, "test: no answer"};
  }
  return future.get();
}

// A random source that counts 0, 1, 2...: with weights w the picks are exactly proportional.
std::function<uint64_t()> counting() {
  auto n = std::make_shared<uint64_t>(0);
  return [n] { return (*n)++; };
}
// Always 0: the first relay that is up (in config order) wins.
std::function<uint64_t()> zero() {
  return [] { return uint64_t{0}; };
}

NgRelayPoolConfig config(std::initializer_list<const FakeRelay*> relays, std::function<uint64_t()> random = zero()) {
  NgRelayPoolConfig c;
  for (const FakeRelay* r : relays) c.relays.push_back({r->endpoint(), 1});
  c.timeout = 30ms;
  c.tries = 2;
  c.down_time = 1h;  // no ping unless a test asks for one
  c.random = std::move(random);
  return c;
}

template <typename F>
bool eventually(F condition) {
  auto until = std::chrono::steady_clock::now() + kWait;
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return condition();
}

TEST(NgRelayPool, OfferGoesOutAsNgAndTheRewrittenSdpComesBack) {
  FakeRelay relay;
  MetricsRegistry metrics;
  NgRelayPool pool(config({&relay}), metrics);
  pool.start();
  auto result = call(pool, request(proxy::MediaOp::kOffer, "call-1"));
  ASSERT_TRUE(result.ok()) << result.error().what;
  EXPECT_EQ(result->sdp, "relayed:v=0 call-1");
  auto got = relay.received();
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].command, "offer");
  EXPECT_EQ(got[0].call_id, "call-1");
  // The relay's own parser accepts what was sent.
  auto command = parse_ng_body(split_ng_frame(got[0].raw)->body);
  ASSERT_TRUE(command.ok());
  EXPECT_EQ(command->from_tag, "ft");
  ASSERT_TRUE(command->received_from.has_value());
  EXPECT_EQ(command->received_from->address, "192.0.2.1");
  EXPECT_EQ(pool.counters().requests.value(), 1U);
  EXPECT_EQ(pool.counters().replies.value(), 1U);
  EXPECT_EQ(pool.counters().retransmissions.value(), 0U);
  EXPECT_EQ(pool.pinned_calls(), 1U);
}

TEST(NgRelayPool, RelayErrorsMapToSipStatuses) {
  FakeRelay relay;
  relay.set_handler([](const Received&) -> std::optional<std::string> {
    return std::string("d6:result5:error12:error-reason19:Failed to parse SDPe");
  });
  MetricsRegistry metrics;
  NgRelayPool pool(config({&relay}), metrics);
  pool.start();
  auto result = call(pool, request(proxy::MediaOp::kOffer, "bad-sdp"));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().status, 488);
  // A refused new call leaves no pin behind: its next offer chooses afresh.
  EXPECT_EQ(pool.pinned_calls(), 0U);
  EXPECT_TRUE(pool.relay_is_up(0));
}

TEST(NgRelayPool, ReplyWithAnotherCookieIsIgnored) {
  FakeRelay relay;
  relay.set_prefix_reply("someone_else d3:sdp5:wrong6:result2:oke");
  MetricsRegistry metrics;
  NgRelayPool pool(config({&relay}), metrics);
  pool.start();
  auto result = call(pool, request(proxy::MediaOp::kOffer, "call-c"));
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->sdp, "relayed:v=0 call-c");
  EXPECT_TRUE(eventually([&] { return pool.counters().stray_replies.value() == 1; }));
}

TEST(NgRelayPool, RetransmitsWithTheSameCookieAfterALoss) {
  FakeRelay relay;
  auto seen = std::make_shared<std::atomic<int>>(0);
  relay.set_handler([seen](const Received& r) -> std::optional<std::string> {
    if (seen->fetch_add(1) == 0) return std::nullopt;  // the first datagram is "lost"
    return FakeRelay::answer_ok(r);
  });
  MetricsRegistry metrics;
  NgRelayPool pool(config({&relay}), metrics);
  pool.start();
  auto result = call(pool, request(proxy::MediaOp::kOffer, "call-r"));
  ASSERT_TRUE(result.ok()) << result.error().what;
  auto got = relay.received();
  ASSERT_EQ(got.size(), 2U);
  EXPECT_EQ(got[0].cookie, got[1].cookie);
  EXPECT_EQ(got[0].raw, got[1].raw);
  EXPECT_EQ(pool.counters().retransmissions.value(), 1U);
  EXPECT_EQ(pool.counters().timeouts.value(), 0U);
  EXPECT_TRUE(pool.relay_is_up(0));
}

TEST(NgRelayPool, OfferFailsOverWhenTheFirstRelayIsSilentAndTheCallStaysOnTheSecond) {
  FakeRelay dead, alive;
  dead.set_handler(FakeRelay::silent);
  MetricsRegistry metrics;
  NgRelayPool pool(config({&dead, &alive}), metrics);  // zero(): relay 0 is chosen first
  pool.start();
  auto offer = call(pool, request(proxy::MediaOp::kOffer, "call-f"));
  ASSERT_TRUE(offer.ok()) << offer.error().what;
  EXPECT_EQ(dead.count("offer"), 2U);  // both tries
  EXPECT_EQ(alive.count("offer"), 1U);
  // A fresh cookie on the new relay: a late reply from the dead one cannot be taken for it.
  EXPECT_NE(dead.received()[0].cookie, alive.received()[0].cookie);
  EXPECT_FALSE(pool.relay_is_up(0));
  EXPECT_EQ(pool.counters().failovers.value(), 1U);
  EXPECT_EQ(pool.counters().timeouts.value(), 1U);
  EXPECT_EQ(pool.counters().relay_down.value(), 1U);

  auto answer = call(pool, request(proxy::MediaOp::kAnswer, "call-f"));
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(alive.count("answer"), 1U);
  EXPECT_EQ(dead.count("answer"), 0U);
  // A new call avoids the dead relay from the start.
  ASSERT_TRUE(call(pool, request(proxy::MediaOp::kOffer, "call-g")).ok());
  EXPECT_EQ(dead.count("offer"), 2U);
  EXPECT_EQ(alive.count("offer"), 2U);
}

TEST(NgRelayPool, PinnedCallStaysOnItsRelayUntilTheWholeCallIsDeleted) {
  FakeRelay a, b;
  MetricsRegistry metrics;
  NgRelayPool pool(config({&a, &b}, counting()), metrics);
  pool.start();
  // Count the picks: with weights 1:1 and a counting source, consecutive new calls alternate.
  ASSERT_TRUE(call(pool, request(proxy::MediaOp::kOffer, "x")).ok());
  ASSERT_TRUE(call(pool, request(proxy::MediaOp::kOffer, "y")).ok());
  ASSERT_EQ(a.count("offer"), 1U);
  ASSERT_EQ(b.count("offer"), 1U);
  FakeRelay& x_relay = a.received()[0].call_id == "x" ? a : b;
  FakeRelay& y_relay = &x_relay == &a ? b : a;
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(call(pool, request(proxy::MediaOp::kOffer, "x")).ok());  // re-INVITE
    ASSERT_TRUE(call(pool, request(proxy::MediaOp::kAnswer, "x")).ok());
  }
  proxy::MediaRequest branch_delete = request(proxy::MediaOp::kDelete, "x");
  branch_delete.via_branch = "z9hG4bK-b1";  // one branch: the call stays pinned
  ASSERT_TRUE(call(pool, branch_delete).ok());
  ASSERT_TRUE(call(pool, request(proxy::MediaOp::kDelete, "x")).ok());
  EXPECT_EQ(x_relay.count("offer"), 4U);
  EXPECT_EQ(x_relay.count("answer"), 3U);
  EXPECT_EQ(x_relay.count("delete"), 2U);
  EXPECT_EQ(y_relay.count("answer") + y_relay.count("delete"), 0U);
  EXPECT_EQ(pool.pinned_calls(), 1U);  // y only: x's whole-call delete unpinned it
}

TEST(NgRelayPool, NewCallsFollowTheWeights) {
  FakeRelay light, heavy;
  MetricsRegistry metrics;
  NgRelayPoolConfig c = config({&light, &heavy}, counting());
  c.relays[0].weight = 1;
  c.relays[1].weight = 3;
  NgRelayPool pool(c, metrics);
  pool.start();
  for (int i = 0; i < 12; ++i) ASSERT_TRUE(call(pool, request(proxy::MediaOp::kOffer, "w" + std::to_string(i))).ok());
  EXPECT_EQ(light.count("offer"), 3U);
  EXPECT_EQ(heavy.count("offer"), 9U);
}

TEST(NgRelayPool, WeightZeroTakesNoNewCalls) {
  FakeRelay drained, active;
  MetricsRegistry metrics;
  NgRelayPoolConfig c = config({&drained, &active}, counting());
  c.relays[0].weight = 0;
  NgRelayPool pool(c, metrics);
  pool.start();
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(call(pool, request(proxy::MediaOp::kOffer, "d" + std::to_string(i))).ok());
  EXPECT_EQ(drained.count("offer"), 0U);
  EXPECT_EQ(active.count("offer"), 4U);
}

TEST(NgRelayPool, AllRelaysDownIs503) {
  FakeRelay dead;
  dead.set_handler(FakeRelay::silent);
  MetricsRegistry metrics;
  NgRelayPool pool(config({&dead}), metrics);
  pool.start();
  auto first = call(pool, request(proxy::MediaOp::kOffer, "c1"));
  ASSERT_FALSE(first.ok());
  EXPECT_EQ(first.error().status, 503);
  EXPECT_EQ(pool.pinned_calls(), 0U);
  auto second = call(pool, request(proxy::MediaOp::kOffer, "c2"));
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(second.error().status, 503);
  EXPECT_EQ(dead.count("offer"), 2U);  // the first call's two tries; the second was not sent
  EXPECT_EQ(pool.counters().rejected.value(), 1U);
}

TEST(NgRelayPool, CallPinnedToADeadRelayFailsWithoutTryingAnother) {
  FakeRelay a, b;
  MetricsRegistry metrics;
  NgRelayPool pool(config({&a, &b}), metrics);
  pool.start();
  ASSERT_TRUE(call(pool, request(proxy::MediaOp::kOffer, "p")).ok());
  ASSERT_EQ(a.count("offer"), 1U);
  a.set_handler(FakeRelay::silent);
  auto answer = call(pool, request(proxy::MediaOp::kAnswer, "p"));
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.error().status, 503);
  EXPECT_FALSE(pool.relay_is_up(0));
  auto again = call(pool, request(proxy::MediaOp::kAnswer, "p"));
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().status, 503);
  EXPECT_EQ(a.count("answer"), 2U);  // two tries of the first answer only
  EXPECT_EQ(b.received().size(), 0U);
  EXPECT_EQ(pool.counters().failovers.value(), 0U);
}

TEST(NgRelayPool, DownRelayComesBackWhenItAnswersPing) {
  FakeRelay relay;
  relay.set_handler(FakeRelay::silent);
  MetricsRegistry metrics;
  NgRelayPoolConfig c = config({&relay});
  c.down_time = 20ms;
  NgRelayPool pool(c, metrics);
  pool.start();
  ASSERT_FALSE(call(pool, request(proxy::MediaOp::kOffer, "c")).ok());
  // Still silent: the pings go unanswered and the relay stays down.
  ASSERT_TRUE(eventually([&] { return relay.count("ping") >= 2; }));
  EXPECT_FALSE(pool.relay_is_up(0));
  relay.set_handler(FakeRelay::answer_ok);
  ASSERT_TRUE(eventually([&] { return pool.relay_is_up(0); }));
  EXPECT_EQ(pool.counters().relay_up.value(), 1U);
  auto offer = call(pool, request(proxy::MediaOp::kOffer, "c2"));
  ASSERT_TRUE(offer.ok()) << offer.error().what;
}

TEST(NgRelayPool, TooManyInFlightIs503AtOnceAndStopAnswersTheRest) {
  FakeRelay dead;
  dead.set_handler(FakeRelay::silent);
  MetricsRegistry metrics;
  NgRelayPoolConfig c = config({&dead});
  c.timeout = 1h;  // stays in flight until stop()
  c.max_outstanding = 1;
  NgRelayPool pool(c, metrics);
  pool.start();
  std::promise<Result<proxy::MediaReply>> first;
  auto first_done = first.get_future();
  pool.request(request(proxy::MediaOp::kOffer, "one"),
               [&first](Result<proxy::MediaReply> r) { first.set_value(std::move(r)); });
  std::optional<Error> refused;
  pool.request(request(proxy::MediaOp::kOffer, "two"), [&refused](Result<proxy::MediaReply> r) {
    if (!r.ok()) refused = r.error();
  });
  ASSERT_TRUE(refused.has_value());  // answered inside request()
  EXPECT_EQ(refused->status, 503);
  EXPECT_EQ(pool.counters().rejected.value(), 1U);
  ASSERT_TRUE(eventually([&] { return dead.count("offer") == 1; }));
  pool.stop();
  ASSERT_EQ(first_done.wait_for(kWait), std::future_status::ready);
  auto r = first_done.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().status, 503);
  // After stop, requests are refused at once.
  std::optional<uint16_t> late;
  pool.request(request(proxy::MediaOp::kOffer, "three"),
               [&late](Result<proxy::MediaReply> reply) { late = reply.ok() ? uint16_t{200} : reply.error().status; });
  EXPECT_EQ(late, 503);
}

TEST(NgRelayAddress, Parses) {
  auto v4 = parse_ng_relay_address("udp:127.0.0.1:2223");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->to_string(), "127.0.0.1:2223");
  auto v6 = parse_ng_relay_address("udp:[::1]:2223");
  ASSERT_TRUE(v6.ok());
  EXPECT_TRUE(v6->address.is_v6());
  EXPECT_FALSE(parse_ng_relay_address("tcp:127.0.0.1:2223").ok());
  EXPECT_FALSE(parse_ng_relay_address("127.0.0.1:2223").ok());
  EXPECT_FALSE(parse_ng_relay_address("udp:127.0.0.1").ok());
  EXPECT_FALSE(parse_ng_relay_address("udp:127.0.0.1:0").ok());
  EXPECT_FALSE(parse_ng_relay_address("udp:relay.example.com:2223").ok());
}

}  // namespace
}  // namespace pinhole::media
