// The built-in relay (media/builtin_relay.h): real offer/answer/delete through the in-process
// relay engine on 127.0.0.1, the rewritten SDPs parsed back (relay address, ports from the
// pool), the port pool back to its size after the delete, and RTP really flowing through the
// ports the SDPs name.
#include "media/builtin_relay.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <thread>

#include "media/port_pool.h"
#include "sdp/session_description.h"

namespace pinhole::media {
namespace {

// A port range per process: ctest runs test processes in parallel (see ng_server_test.cc).
uint16_t min_port() { return static_cast<uint16_t>(44000 + (::getpid() % 400) * 40); }
constexpr uint16_t kPairs = 10;

RelayRuntimeConfig relay_config() {
  RelayRuntimeConfig c;
  c.interface = *net::Address::parse("127.0.0.1");
  c.advertised = c.interface;
  c.min_port = min_port();
  c.max_port = static_cast<uint16_t>(min_port() + 2 * kPairs - 1);
  c.workers = 1;
  c.delete_delay = std::chrono::seconds(0);
  c.fast_path_config.interfaces = {"lo"};  // as root the kernel fast path runs: loopback only
  return c;
}

std::string sdp_body(const std::string& address, uint16_t port) {
  return "v=0\r\no=- 1 1 IN IP4 " + address + "\r\ns=-\r\nc=IN IP4 " + address + "\r\nt=0 0\r\nm=audio " +
         std::to_string(port) + " RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n";
}

Result<proxy::MediaReply> call(BuiltinRelay& relay, proxy::MediaRequest r) {
  std::optional<Result<proxy::MediaReply>> out;
  relay.request(std::move(r), [&out](Result<proxy::MediaReply> result) { out.emplace(std::move(result)); });
  // The built-in relay answers before request() returns.
  if (!out) return Error{599, "test: done not called inline"};
  return std::move(*out);
}

proxy::MediaRequest make(proxy::MediaOp op, const std::string& sdp) {
  proxy::MediaRequest r;
  r.op = op;
  r.call_id = "builtin-call";
  r.from_tag = "alice";
  if (op != proxy::MediaOp::kOffer) r.to_tag = "bob";
  r.sdp = sdp;
  r.received_from = {*net::Address::parse("127.0.0.1"), 5060};
  r.flags = {"SIP-source-address"};
  r.replace = {"origin", "session-connection"};
  return r;
}

struct Media {
  std::string address;
  uint16_t port = 0;
};

Media media_of(const std::string& body) {
  auto parsed = sdp::parse_sdp(body);
  EXPECT_TRUE(parsed.ok()) << body;
  if (!parsed || parsed->media.empty() || !parsed->media[0].connection) return {};
  const auto& m = parsed->media[0];
  return {std::string(m.connection->address_text), m.port};
}

// A loopback UDP socket standing in for a phone.
struct Phone {
  UniqueFd fd;
  uint16_t port = 0;
  Phone() {
    fd.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    net::Endpoint local{*net::Address::parse("127.0.0.1"), 0};
    sockaddr_storage addr{};
    socklen_t len = local.to_sockaddr(addr);
    EXPECT_EQ(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), len), 0);
    len = sizeof addr;
    EXPECT_EQ(::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
    port = net::Endpoint::from_sockaddr(addr, len)->port;
  }
  void send_to(uint16_t to, const std::string& bytes) const {
    net::Endpoint dest{*net::Address::parse("127.0.0.1"), to};
    sockaddr_storage addr{};
    socklen_t len = dest.to_sockaddr(addr);
    ::sendto(fd.get(), bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&addr), len);
  }
  // One datagram, or "" after a generous limit.
  std::string receive() const {
    pollfd p{fd.get(), POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) return {};
    std::string buffer(2048, '\0');
    ssize_t n = ::recv(fd.get(), buffer.data(), buffer.size(), 0);
    return n > 0 ? buffer.substr(0, static_cast<size_t>(n)) : std::string();
  }
};

// A minimal RTP packet (version 2, PT 0) with the given sequence number.
std::string rtp(uint16_t seq) {
  std::string p(12 + 20, 'x');
  p[0] = static_cast<char>(0x80);
  p[1] = 0;
  p[2] = static_cast<char>(seq >> 8);
  p[3] = static_cast<char>(seq & 0xff);
  for (int i = 4; i < 12; ++i) p[static_cast<size_t>(i)] = static_cast<char>(i);
  return p;
}

// Polls with a generous limit: the condition is expected to hold soon, never at a given time.
template <typename F>
bool eventually(F condition) {
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < until) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return condition();
}

TEST(BuiltinRelay, OfferAnswerDeleteRewritesSdpAndFreesThePorts) {
  BuiltinRelay relay(relay_config());
  relay.start();
  const size_t capacity = relay.port_capacity();
  ASSERT_EQ(capacity, kPairs);
  ASSERT_EQ(relay.free_ports(), capacity);

  Phone alice, bob;
  auto offer = call(relay, make(proxy::MediaOp::kOffer, sdp_body("127.0.0.1", alice.port)));
  ASSERT_TRUE(offer.ok()) << offer.error().what;
  Media to_alice_leg = media_of(offer->sdp);
  EXPECT_EQ(to_alice_leg.address, relay.advertised().to_string());
  EXPECT_GE(to_alice_leg.port, min_port());
  EXPECT_LT(to_alice_leg.port, min_port() + 2 * kPairs);
  EXPECT_NE(to_alice_leg.port, alice.port);

  auto answer = call(relay, make(proxy::MediaOp::kAnswer, sdp_body("127.0.0.1", bob.port)));
  ASSERT_TRUE(answer.ok()) << answer.error().what;
  Media to_bob_leg = media_of(answer->sdp);
  EXPECT_EQ(to_bob_leg.address, "127.0.0.1");
  EXPECT_GE(to_bob_leg.port, min_port());
  EXPECT_LT(to_bob_leg.port, min_port() + 2 * kPairs);
  EXPECT_NE(to_bob_leg.port, to_alice_leg.port);
  EXPECT_EQ(relay.free_ports(), capacity - 2);
  EXPECT_EQ(relay.call_count(), 1U);

  // Bob (who got the offer naming the relay) sends to the port the offer gave; alice receives
  // it, and the other way round.
  bob.send_to(to_alice_leg.port, rtp(100));
  EXPECT_EQ(alice.receive(), rtp(100));
  alice.send_to(to_bob_leg.port, rtp(7));
  EXPECT_EQ(bob.receive(), rtp(7));

  proxy::MediaRequest remove = make(proxy::MediaOp::kDelete, "");
  remove.to_tag.clear();
  auto deleted = call(relay, remove);
  ASSERT_TRUE(deleted.ok()) << deleted.error().what;
  EXPECT_EQ(relay.call_count(), 0U);
  // The worker frees a removed session (and so its ports) after the batch it is running.
  EXPECT_TRUE(eventually([&] { return relay.free_ports() == capacity; })) << relay.free_ports();
}

TEST(BuiltinRelay, BadSdpIs488AndLeavesNothingBehind) {
  BuiltinRelay relay(relay_config());
  relay.start();
  auto offer = call(relay, make(proxy::MediaOp::kOffer, "this is not SDP"));
  ASSERT_FALSE(offer.ok());
  EXPECT_EQ(offer.error().status, 488);
  EXPECT_EQ(relay.call_count(), 0U);
  EXPECT_TRUE(eventually([&] { return relay.free_ports() == relay.port_capacity(); }));
}

TEST(BuiltinRelay, AnswerForAnUnknownCallIs500) {
  BuiltinRelay relay(relay_config());
  relay.start();
  auto answer = call(relay, make(proxy::MediaOp::kAnswer, sdp_body("127.0.0.1", 4000)));
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.error().status, 500);
}

TEST(BuiltinRelay, AdvertisedAddressIsWrittenInsteadOfTheInterface) {
  RelayRuntimeConfig c = relay_config();
  c.advertised = *net::Address::parse("198.51.100.7");
  BuiltinRelay relay(c);
  relay.start();
  auto offer = call(relay, make(proxy::MediaOp::kOffer, sdp_body("127.0.0.1", 4000)));
  ASSERT_TRUE(offer.ok()) << offer.error().what;
  EXPECT_EQ(media_of(offer->sdp).address, "198.51.100.7");
  EXPECT_EQ(relay.advertised().to_string(), "198.51.100.7");
}

TEST(BuiltinRelay, NotStartedOrStoppedIs503) {
  BuiltinRelay relay(relay_config());
  auto early = call(relay, make(proxy::MediaOp::kOffer, sdp_body("127.0.0.1", 4000)));
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.error().status, 503);
  relay.start();
  ASSERT_TRUE(call(relay, make(proxy::MediaOp::kOffer, sdp_body("127.0.0.1", 4000))).ok());
  relay.stop();  // drops the open call
  EXPECT_EQ(relay.free_ports(), relay.port_capacity());
  auto late = call(relay, make(proxy::MediaOp::kOffer, sdp_body("127.0.0.1", 4000)));
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().status, 503);
}

}  // namespace
}  // namespace pinhole::media
