// The ng control server and the call state behind it, driven with bencoded commands shaped like
// the ones Kamailio's rtpengine module sends: offer -> answer -> query -> delete with the
// rewritten SDPs parsed back, error replies, port exhaustion without leftovers, the reply cache,
// delete-delay and timeouts; and one end-to-end run where the commands go over a UDP socket and
// two loopback "phones" exchange RTP through the ports the rewritten SDPs name; ng over TCP
// (stream framing, the shared reply cache, connections closed for bad framing, size, idle time,
// unread output and the connection limit, each without disturbing the others). Waits poll with
// a deadline; nothing depends on timing.
#include "media/ng_server.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "media/bencode.h"
#include "media/ng_message.h"
#include "sdp/session_description.h"

namespace pinhole::media {
namespace {

using std::chrono::seconds;

net::Address loopback() { return *net::Address::parse("127.0.0.1"); }
// Each test runs in its own process (gtest_discover_tests) and ctest runs several at once: a port
// range per process id keeps two of them from binding each other's relay ports (a pool skips a
// taken pair, which would turn the small pool's exact count into a flaky "Ran out of ports").
uint16_t min_port() { return static_cast<uint16_t>(40000 + (::getpid() % 400) * 50); }
constexpr uint16_t kPairs = 20;

using Arg = std::variant<std::string, std::vector<std::string>, int64_t>;
struct Key {
  std::string name;
  Arg value;
};

// `<cookie> <dict>` with the keys in the order given.
std::string ng(const std::string& cookie, const std::vector<Key>& keys) {
  std::string out = cookie + " ";
  bencode::Writer w(out);
  w.begin_dict();
  for (const Key& k : keys) {
    w.key(k.name);
    if (const auto* s = std::get_if<std::string>(&k.value)) {
      w.string(*s);
    } else if (const auto* l = std::get_if<std::vector<std::string>>(&k.value)) {
      w.begin_list();
      for (const auto& item : *l) w.string(item);
      w.end();
    } else {
      w.integer(std::get<int64_t>(k.value));
    }
  }
  w.end();
  return out;
}

std::string sdp_body(const std::string& address, uint16_t port, bool ice = false, bool second_stream = false) {
  std::string s = "v=0\r\no=- 1234 1 IN IP4 " + address + "\r\ns=-\r\nc=IN IP4 " + address + "\r\nt=0 0\r\nm=audio " +
                  std::to_string(port) + " RTP/AVP 0 8\r\na=rtpmap:0 PCMU/8000\r\n";
  if (ice) {
    s += "a=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdef012345\r\na=candidate:1 1 UDP 2130706431 " + address + " " +
         std::to_string(port) + " typ host\r\n";
  }
  s += "a=sendrecv\r\n";
  if (second_stream) s += "m=video " + std::to_string(port + 2) + " RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n";
  return s;
}

std::vector<Key> offer_keys(const std::string& call_id, const std::string& sdp, const std::string& from_tag = "ft1") {
  return {{"sdp", sdp},
          {"ICE", std::string("remove")},
          {"flags", std::vector<std::string>{"trust-address"}},
          {"replace", std::vector<std::string>{"origin", "session-connection"}},
          {"call-id", call_id},
          {"received-from", std::vector<std::string>{"IP4", "192.0.2.10"}},
          {"from-tag", from_tag},
          {"command", std::string("offer")}};
}

std::vector<Key> answer_keys(const std::string& call_id, const std::string& sdp) {
  return {{"sdp", sdp},
          {"ICE", std::string("remove")},
          {"replace", std::vector<std::string>{"origin", "session-connection"}},
          {"call-id", call_id},
          {"received-from", std::vector<std::string>{"IP4", "198.51.100.20"}},
          {"from-tag", std::string("ft1")},
          {"to-tag", std::string("tt1")},
          {"command", std::string("answer")}};
}

// A decoded reply: the bytes stay alive with it.
struct Reply {
  std::string bytes;
  std::string cookie;
  std::optional<bencode::Document> doc;

  explicit Reply(std::string b) : bytes(std::move(b)) {
    size_t space = bytes.find(' ');
    if (space == std::string::npos) return;
    cookie = bytes.substr(0, space);
    auto d = bencode::decode(std::string_view(bytes).substr(space + 1));
    if (d) doc.emplace(std::move(*d));
  }
  std::string str(std::string_view key) const {
    if (!doc) return "";
    auto v = doc->root().find(key);
    if (!v) return "";
    auto s = v->as_string();
    return s ? std::string(*s) : "";
  }
  bool has(std::string_view key) const { return doc && doc->root().find(key).has_value(); }
};

struct RelayPoint {
  net::Address address;
  uint16_t port = 0;
  bool has_candidates = false;
  std::string origin_address;
};

// The first stream's relay address and port in a rewritten SDP.
RelayPoint relay_point(const std::string& body) {
  auto parsed = sdp::parse_sdp(body);
  EXPECT_TRUE(parsed.ok()) << body;
  if (!parsed || parsed->media.empty() || !parsed->media[0].connection) return {};
  const auto& m = parsed->media[0];
  return {m.connection->address.value_or(net::Address{}), m.port, m.has_ice(),
          std::string(parsed->origin.address_text)};
}

class NgServerTest : public ::testing::Test {
 protected:
  explicit NgServerTest(uint16_t pairs = kPairs)
      : pool_(loopback(), min_port(), static_cast<uint16_t>(min_port() + 2 * pairs - 1)),
        worker_({}, clock_, [this](const SessionKey& key) { controller_.on_session_timeout(key); }),
        controller_(MediaControllerConfig{loopback(), {}, seconds(30)}, pool_, {&worker_}, clock_),
        server_(controller_, clock_) {
    worker_.start();
  }
  // The controller (destroyed before the worker) removes its sessions through the running worker.
  ~NgServerTest() override = default;

  Reply send(const std::string& message) {
    auto r = server_.handle(message);
    EXPECT_TRUE(r.has_value());
    return Reply(r.value_or(""));
  }
  // Sessions are destroyed on their worker after the event batch that removed them, so their
  // ports come back to the pool shortly after the reply: wait for that, bounded.
  bool pool_refilled() {
    for (int i = 0; i < 5000 && pool_.free_count() != pool_.capacity(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return pool_.free_count() == pool_.capacity();
  }
  static bool in_pool(uint16_t port) { return port >= min_port() && port < min_port() + 2 * kPairs; }

  ManualClock clock_;
  PortPool pool_;
  RelayWorker worker_;
  MediaController controller_;
  NgServer server_;
};

TEST_F(NgServerTest, PingIsPong) {
  Reply r = send(ng("c1", {{"command", std::string("ping")}}));
  EXPECT_EQ(r.cookie, "c1");
  EXPECT_EQ(r.str("result"), "pong");
}

TEST_F(NgServerTest, OfferAnswerQueryDelete) {
  Reply offer = send(ng("c1", offer_keys("call-1", sdp_body("192.0.2.10", 5000, true))));
  ASSERT_EQ(offer.str("result"), "ok") << offer.bytes;
  RelayPoint to_b = relay_point(offer.str("sdp"));
  EXPECT_EQ(to_b.address, loopback());
  EXPECT_TRUE(in_pool(to_b.port)) << to_b.port;
  EXPECT_FALSE(to_b.has_candidates);            // ICE removed
  EXPECT_EQ(to_b.origin_address, "127.0.0.1");  // replace: origin
  EXPECT_EQ(controller_.session_count(), 1U);
  EXPECT_EQ(pool_.free_count(), pool_.capacity() - 2);

  Reply answer = send(ng("c2", answer_keys("call-1", sdp_body("198.51.100.20", 6000))));
  ASSERT_EQ(answer.str("result"), "ok") << answer.bytes;
  RelayPoint to_a = relay_point(answer.str("sdp"));
  EXPECT_EQ(to_a.address, loopback());
  EXPECT_TRUE(in_pool(to_a.port));
  EXPECT_NE(to_a.port, to_b.port);  // each side sends to its own leg

  Reply query = send(ng("c3", {{"call-id", std::string("call-1")}, {"command", std::string("query")}}));
  ASSERT_EQ(query.str("result"), "ok") << query.bytes;
  ASSERT_TRUE(query.has("tags"));
  auto tags = query.doc->root().find("tags");
  EXPECT_TRUE(tags->find("ft1").has_value());
  EXPECT_TRUE(tags->find("tt1").has_value());

  Reply list = send(ng("c4", {{"command", std::string("list")}}));
  ASSERT_TRUE(list.has("calls")) << list.bytes;
  auto calls = list.doc->root().find("calls");
  ASSERT_EQ(calls->size(), 1U);
  EXPECT_EQ(calls->items().begin().operator*().as_string().value_or(""), "call-1");

  Reply del = send(ng("c5", {{"call-id", std::string("call-1")},
                             {"from-tag", std::string("ft1")},
                             {"delete-delay", int64_t{0}},
                             {"command", std::string("delete")}}));
  EXPECT_EQ(del.str("result"), "ok") << del.bytes;
  EXPECT_FALSE(del.has("warning"));
  EXPECT_EQ(controller_.call_count(), 0U);
  EXPECT_TRUE(pool_refilled()) << pool_.free_count() << " of " << pool_.capacity();
  EXPECT_EQ(worker_.call([this] { return worker_.session_count(); }).value(), 0U);
}

TEST_F(NgServerTest, AnswerForUnknownCallIsAnError) {
  Reply r = send(ng("c1", answer_keys("nope", sdp_body("198.51.100.20", 6000))));
  EXPECT_EQ(r.str("result"), "error");
  EXPECT_EQ(r.str("error-reason"), "Unknown call-id");
}

TEST_F(NgServerTest, DeleteOfUnknownCallWarnsOrFailsWhenFatal) {
  Reply r = send(ng("c1", {{"call-id", std::string("nope")}, {"command", std::string("delete")}}));
  EXPECT_EQ(r.str("result"), "ok");
  EXPECT_EQ(r.str("warning"), "Call-ID not found or tags didn't match");
  Reply f = send(ng("c2", {{"call-id", std::string("nope")},
                           {"flags", std::vector<std::string>{"fatal"}},
                           {"command", std::string("delete")}}));
  EXPECT_EQ(f.str("result"), "error");
  EXPECT_EQ(f.str("error-reason"), "Call-ID not found or tags didn't match");
}

TEST_F(NgServerTest, UnknownCommandAndMalformedBodies) {
  Reply unknown = send(ng("c1", {{"command", std::string("frobnicate")}}));
  EXPECT_EQ(unknown.str("result"), "error");
  EXPECT_EQ(unknown.str("error-reason"), "Unrecognized command");

  Reply garbage = send("c2 d7:command");
  EXPECT_EQ(garbage.cookie, "c2");
  EXPECT_EQ(garbage.str("result"), "error");
  EXPECT_FALSE(garbage.str("error-reason").empty());

  Reply no_sdp = send(
      ng("c3", {{"call-id", std::string("x")}, {"from-tag", std::string("f")}, {"command", std::string("offer")}}));
  EXPECT_EQ(no_sdp.str("result"), "error");

  Reply bad_sdp = send(ng("c4", offer_keys("x", "this is not SDP")));
  EXPECT_EQ(bad_sdp.str("result"), "error");
  EXPECT_EQ(controller_.call_count(), 0U);

  EXPECT_FALSE(server_.handle("nocookie").has_value());
  EXPECT_FALSE(server_.handle(" d7:command4:pinge").has_value());
  EXPECT_EQ(server_.counters().dropped, 2U);
}

TEST_F(NgServerTest, UnknownFlagIsAWarning) {
  auto keys = offer_keys("call-w", sdp_body("192.0.2.10", 5000));
  keys[2].value = std::vector<std::string>{"trust-address", "no-such-flag"};
  Reply r = send(ng("c1", keys));
  EXPECT_EQ(r.str("result"), "ok");
  EXPECT_NE(r.str("warning").find("no-such-flag"), std::string::npos) << r.bytes;
}

TEST_F(NgServerTest, RetransmittedCookieGetsTheSameReplyWithoutASecondSession) {
  std::string message = ng("retrans-1", offer_keys("call-r", sdp_body("192.0.2.10", 5000)));
  auto first = server_.handle(message);
  size_t free_after_first = pool_.free_count();
  auto second = server_.handle(message);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(*first, *second);
  EXPECT_EQ(server_.counters().retransmissions, 1U);
  EXPECT_EQ(controller_.session_count(), 1U);
  EXPECT_EQ(pool_.free_count(), free_after_first);

  // A new cookie is a new request: the re-offer keeps the branch's session and ports.
  Reply again = send(ng("retrans-2", offer_keys("call-r", sdp_body("192.0.2.10", 5000))));
  EXPECT_EQ(relay_point(again.str("sdp")).port, relay_point(Reply(*first).str("sdp")).port);
  EXPECT_EQ(controller_.session_count(), 1U);

  // After the cache lifetime the entry is gone.
  clock_.advance(seconds(31));
  (void)send(ng("other", {{"command", std::string("ping")}}));
  EXPECT_EQ(server_.cached(), 1U);
}

TEST_F(NgServerTest, DeleteDelayAndTimeout) {
  ASSERT_EQ(send(ng("c1", offer_keys("call-d", sdp_body("192.0.2.10", 5000)))).str("result"), "ok");
  Reply del = send(
      ng("c2", {{"call-id", std::string("call-d")}, {"delete-delay", int64_t{5}}, {"command", std::string("delete")}}));
  EXPECT_EQ(del.str("result"), "ok");
  controller_.tick();
  EXPECT_EQ(controller_.call_count(), 1U);  // still within the delay
  clock_.advance(seconds(6));
  controller_.tick();
  EXPECT_EQ(controller_.call_count(), 0U);
  EXPECT_TRUE(pool_refilled()) << pool_.free_count() << " of " << pool_.capacity();

  // A worker's inactivity report ends the call on the next tick.
  ASSERT_EQ(send(ng("c3", offer_keys("call-t", sdp_body("192.0.2.10", 5000)))).str("result"), "ok");
  controller_.on_session_timeout(SessionKey{"call-t", "ft1", "#0"});
  controller_.tick();
  EXPECT_EQ(controller_.call_count(), 0U);
  EXPECT_EQ(controller_.counters().timeouts, 1U);
  EXPECT_TRUE(pool_refilled()) << pool_.free_count() << " of " << pool_.capacity();
}

TEST_F(NgServerTest, ForkedBranchesGetOneSessionEach) {
  auto a = offer_keys("call-f", sdp_body("192.0.2.10", 5000));
  a.push_back({"via-branch", std::string("z9hG4bK.1")});
  auto b = offer_keys("call-f", sdp_body("192.0.2.10", 5000));
  b.push_back({"via-branch", std::string("z9hG4bK.2")});
  Reply ra = send(ng("c1", a));
  Reply rb = send(ng("c2", b));
  EXPECT_NE(relay_point(ra.str("sdp")).port, relay_point(rb.str("sdp")).port);
  EXPECT_EQ(controller_.session_count(), 2U);
  Reply del = send(ng("c3", {{"call-id", std::string("call-f")},
                             {"via-branch", std::string("z9hG4bK.1")},
                             {"command", std::string("delete")}}));
  EXPECT_EQ(del.str("result"), "ok");
  EXPECT_EQ(controller_.session_count(), 1U);
}

// A re-INVITE from the callee (its tag as from-tag, the caller's as to-tag) moves the callee's
// media on the same session: each side keeps the relay port it already sends to.
TEST_F(NgServerTest, ReofferFromTheCalleeKeepsTheSessionAndItsPorts) {
  RelayPoint to_b = relay_point(send(ng("c1", offer_keys("call-r", sdp_body("192.0.2.10", 5000)))).str("sdp"));
  RelayPoint to_a = relay_point(send(ng("c2", answer_keys("call-r", sdp_body("198.51.100.20", 6000)))).str("sdp"));
  auto reoffer = offer_keys("call-r", sdp_body("198.51.100.20", 6100), "tt1");
  reoffer.push_back({"to-tag", std::string("ft1")});
  Reply r = send(ng("c3", reoffer));
  ASSERT_EQ(r.str("result"), "ok") << r.bytes;
  EXPECT_EQ(relay_point(r.str("sdp")).port, to_a.port) << "the caller keeps sending where it did";
  auto reanswer = answer_keys("call-r", sdp_body("192.0.2.10", 5000));
  for (auto& [key, value] : reanswer) {
    if (key == "from-tag") value = std::string("tt1");
    if (key == "to-tag") value = std::string("ft1");
  }
  Reply a = send(ng("c4", reanswer));
  ASSERT_EQ(a.str("result"), "ok") << a.bytes;
  EXPECT_EQ(relay_point(a.str("sdp")).port, to_b.port) << "the callee keeps sending where it did";
  EXPECT_EQ(controller_.session_count(), 1U);
}

// 3 pairs: one two-stream offer needs 4.
class NgServerSmallPoolTest : public NgServerTest {
 protected:
  NgServerSmallPoolTest() : NgServerTest(3) {}
};

TEST_F(NgServerSmallPoolTest, PortExhaustionLeavesNothingAllocated) {
  Reply two = send(ng("c1", offer_keys("call-x", sdp_body("192.0.2.10", 5000, false, true))));
  EXPECT_EQ(two.str("result"), "error");
  EXPECT_EQ(two.str("error-reason"), "Ran out of ports");
  EXPECT_EQ(controller_.call_count(), 0U);
  EXPECT_TRUE(pool_refilled()) << pool_.free_count() << " of " << pool_.capacity();
  EXPECT_EQ(worker_.call([this] { return worker_.session_count(); }).value(), 0U);

  ASSERT_EQ(send(ng("c2", offer_keys("call-y", sdp_body("192.0.2.10", 5000)))).str("result"), "ok");
  Reply full = send(ng("c3", offer_keys("call-z", sdp_body("192.0.2.10", 5000))));
  EXPECT_EQ(full.str("error-reason"), "Ran out of ports");
  EXPECT_EQ(controller_.call_count(), 1U);
}

// A UDP socket on 127.0.0.1 with an ephemeral port.
class Socket {
 public:
  explicit Socket(net::Address address = loopback()) {
    fd_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_storage ss{};
    socklen_t len = net::Endpoint{address, 0}.to_sockaddr(ss);
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&ss), len), 0);
    len = sizeof ss;
    EXPECT_EQ(::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len), 0);
    self_ = *net::Endpoint::from_sockaddr(ss, len);
  }
  uint16_t port() const { return self_.port; }
  void send(std::string_view data, uint16_t port) const {
    sockaddr_storage ss{};
    socklen_t len = net::Endpoint{loopback(), port}.to_sockaddr(ss);
    ASSERT_EQ(::sendto(fd_.get(), data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&ss), len),
              static_cast<ssize_t>(data.size()));
  }
  // The next datagram, or "" when none came within 10 s.
  std::string receive() const {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) return {};
    std::string buf(70000, '\0');
    ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
    buf.resize(n > 0 ? static_cast<size_t>(n) : 0);
    return buf;
  }

 private:
  UniqueFd fd_;
  net::Endpoint self_;
};

std::string rtp_packet(uint16_t seq, char fill) {
  std::string p = {'\x80', '\x00', static_cast<char>(seq >> 8), static_cast<char>(seq & 0xff), 0, 0, 0, 1, 0, 0, 0, 7};
  p.append(20, fill);
  return p;
}

// The first stream of `tag` in a query reply: its RTP entry (streams[0]).
std::optional<bencode::Value> rtp_stream(const Reply& query, std::string_view tag) {
  if (!query.doc) return std::nullopt;
  auto t = query.doc->root().find("tags");
  if (!t) return std::nullopt;
  auto entry = t->find(tag);
  if (!entry) return std::nullopt;
  auto medias = entry->find("medias");
  if (!medias || medias->size() == 0) return std::nullopt;
  auto streams = (*medias->items().begin()).find("streams");
  if (!streams || streams->size() == 0) return std::nullopt;
  return *streams->items().begin();
}

int64_t integer_at(const std::optional<bencode::Value>& v, std::initializer_list<std::string_view> path) {
  std::optional<bencode::Value> cur = v;
  for (std::string_view key : path) {
    if (!cur) return -1;
    cur = cur->find(key);
  }
  return cur ? cur->as_integer().value_or(-1) : -1;
}

std::string string_at(const std::optional<bencode::Value>& v, std::initializer_list<std::string_view> path) {
  std::optional<bencode::Value> cur = v;
  for (std::string_view key : path) {
    if (!cur) return "";
    cur = cur->find(key);
  }
  return cur ? std::string(cur->as_string().value_or("")) : "";
}

// What the NAT lab reads from `query`: where each leg latched, the first sequence number received
// and forwarded (no clipping), and the packets latching refused (RTP Bleed), per tag.
TEST_F(NgServerTest, QueryShowsLatchedEndpointFirstForwardedSequenceAndForeignDrops) {
  Socket phone_a;
  Socket phone_b;
  Socket stranger;
  Reply offer = send(ng("q1", offer_keys("call-q", sdp_body("127.0.0.1", phone_a.port()))));
  Reply answer = send(ng("q2", answer_keys("call-q", sdp_body("127.0.0.1", phone_b.port()))));
  ASSERT_EQ(offer.str("result"), "ok") << offer.bytes;
  ASSERT_EQ(answer.str("result"), "ok") << answer.bytes;
  uint16_t b_sends_to = relay_point(offer.str("sdp")).port;
  uint16_t a_sends_to = relay_point(answer.str("sdp")).port;

  phone_a.send(rtp_packet(100, 'a'), a_sends_to);
  EXPECT_EQ(phone_b.receive(), rtp_packet(100, 'a'));
  phone_b.send(rtp_packet(7, 'b'), b_sends_to);
  EXPECT_EQ(phone_a.receive(), rtp_packet(7, 'b'));
  // A third source aims at A's leg: latching refuses it, so B's next packet is A's next one.
  stranger.send(rtp_packet(500, 'x'), a_sends_to);
  phone_a.send(rtp_packet(101, 'a'), a_sends_to);
  EXPECT_EQ(phone_b.receive(), rtp_packet(101, 'a'));

  Reply query = send(ng("q3", {{"call-id", std::string("call-q")}, {"command", std::string("query")}}));
  ASSERT_EQ(query.str("result"), "ok") << query.bytes;
  auto a = rtp_stream(query, "ft1");
  auto b = rtp_stream(query, "tt1");
  ASSERT_TRUE(a && b) << query.bytes;
  EXPECT_EQ(integer_at(a, {"local port"}), a_sends_to);
  EXPECT_EQ(string_at(a, {"endpoint", "address"}), "127.0.0.1");
  EXPECT_EQ(integer_at(a, {"endpoint", "port"}), phone_a.port());
  EXPECT_EQ(integer_at(a, {"advertised endpoint", "port"}), phone_a.port());
  EXPECT_EQ(integer_at(a, {"relay", "first seq"}), 100);
  EXPECT_EQ(integer_at(a, {"relay", "first forwarded seq"}), 100);
  EXPECT_EQ(integer_at(a, {"relay", "last forwarded seq"}), 101);
  EXPECT_EQ(integer_at(a, {"relay", "forwarded"}), 2);
  // A's first packet went out before B had sent anything (to B's SDP address), its second after.
  EXPECT_EQ(integer_at(a, {"relay", "forwarded unlatched"}), 1);
  EXPECT_EQ(integer_at(a, {"relay", "dropped foreign"}), 1);
  EXPECT_EQ(integer_at(a, {"stats", "packets"}), 2);

  EXPECT_EQ(integer_at(b, {"local port"}), b_sends_to);
  EXPECT_EQ(integer_at(b, {"endpoint", "port"}), phone_b.port());
  EXPECT_EQ(integer_at(b, {"relay", "first seq"}), 7);
  EXPECT_EQ(integer_at(b, {"relay", "first forwarded seq"}), 7);
  EXPECT_EQ(integer_at(b, {"relay", "dropped foreign"}), 0);
  EXPECT_EQ(integer_at(b, {"relay", "forwarded unlatched"}), 0);
}

// `media-handover` on the offer lets the offerer's locked leg follow a new source (a phone whose
// NAT mapping changed mid-call); without it the new source is dropped as RTP Bleed. The flag used
// to be parsed and then ignored.
TEST_F(NgServerTest, MediaHandoverFlagLetsALockedLegFollowANewSource) {
  for (bool handover : {false, true}) {
    SCOPED_TRACE(handover ? "media-handover" : "no flag");
    std::string call = handover ? "call-h1" : "call-h0";
    Socket phone_a;
    Socket phone_a_moved;  // the same phone after its NAT picked another public port
    Socket phone_b;
    std::vector<std::string> flags;
    if (handover) flags.emplace_back("media-handover");
    Reply offer = send(ng("h1" + call, {{"sdp", sdp_body("127.0.0.1", phone_a.port())},
                                        {"flags", flags},
                                        {"call-id", call},
                                        {"received-from", std::vector<std::string>{"IP4", "127.0.0.1"}},
                                        {"from-tag", std::string("ft1")},
                                        {"command", std::string("offer")}}));
    Reply answer = send(ng("h2" + call, answer_keys(call, sdp_body("127.0.0.1", phone_b.port()))));
    ASSERT_EQ(offer.str("result"), "ok") << offer.bytes;
    ASSERT_EQ(answer.str("result"), "ok") << answer.bytes;
    uint16_t a_sends_to = relay_point(answer.str("sdp")).port;

    phone_a.send(rtp_packet(1, 'a'), a_sends_to);  // from the signaling IP: latched and locked
    EXPECT_EQ(phone_b.receive(), rtp_packet(1, 'a'));
    phone_a_moved.send(rtp_packet(2, 'm'), a_sends_to);
    phone_a.send(rtp_packet(3, 'a'), a_sends_to);
    // The moved source's packet comes first when it was accepted; otherwise the next is seq 3.
    EXPECT_EQ(phone_b.receive(), handover ? rtp_packet(2, 'm') : rtp_packet(3, 'a'));

    Reply query = send(ng("h3" + call, {{"call-id", call}, {"command", std::string("query")}}));
    auto a = rtp_stream(query, "ft1");
    EXPECT_EQ(integer_at(a, {"relay", "dropped foreign"}), handover ? 0 : 1) << query.bytes;
  }
}

// `asymmetric` on the offer: the caller sends from another port than the one its SDP names, and
// its media must keep going to the SDP's port; without the flag the leg latches the sending port.
TEST_F(NgServerTest, AsymmetricFlagKeepsTheCallersMediaOnItsSdpPort) {
  for (bool asymmetric : {false, true}) {
    SCOPED_TRACE(asymmetric ? "asymmetric" : "no flag");
    std::string call = asymmetric ? "call-as1" : "call-as0";
    Socket a_receives;  // the port in A's SDP
    Socket a_sends;     // where A's packets come from
    Socket phone_b;
    std::vector<std::string> flags;
    if (asymmetric) flags.emplace_back("asymmetric");
    Reply offer = send(ng("a1" + call, {{"sdp", sdp_body("127.0.0.1", a_receives.port())},
                                        {"flags", flags},
                                        {"call-id", call},
                                        {"received-from", std::vector<std::string>{"IP4", "127.0.0.1"}},
                                        {"from-tag", std::string("ft1")},
                                        {"command", std::string("offer")}}));
    Reply answer = send(ng("a2" + call, answer_keys(call, sdp_body("127.0.0.1", phone_b.port()))));
    ASSERT_EQ(offer.str("result"), "ok") << offer.bytes;
    ASSERT_EQ(answer.str("result"), "ok") << answer.bytes;
    uint16_t b_sends_to = relay_point(offer.str("sdp")).port;
    uint16_t a_sends_to = relay_point(answer.str("sdp")).port;

    a_sends.send(rtp_packet(1, 'a'), a_sends_to);
    EXPECT_EQ(phone_b.receive(), rtp_packet(1, 'a'));
    phone_b.send(rtp_packet(5, 'b'), b_sends_to);
    EXPECT_EQ((asymmetric ? a_receives : a_sends).receive(), rtp_packet(5, 'b'));
  }
}

// `strict-source` on the offer (with trust-address: the SDP's address is the one that counts): a
// stranger's packet inside the learning window is dropped instead of latching provisionally.
TEST_F(NgServerTest, StrictSourceFlagRefusesAStrangerInTheLearningWindow) {
  for (bool strict : {false, true}) {
    SCOPED_TRACE(strict ? "strict-source" : "no flag");
    std::string call = strict ? "call-ss1" : "call-ss0";
    Socket phone_a;
    Socket stranger(*net::Address::parse("127.0.0.2"));
    Socket phone_b;
    std::vector<std::string> flags{"trust-address"};
    if (strict) flags.emplace_back("strict-source");
    Reply offer = send(ng("s1" + call, {{"sdp", sdp_body("127.0.0.1", phone_a.port())},
                                        {"flags", flags},
                                        {"call-id", call},
                                        {"received-from", std::vector<std::string>{"IP4", "192.0.2.10"}},
                                        {"from-tag", std::string("ft1")},
                                        {"command", std::string("offer")}}));
    Reply answer = send(ng("s2" + call, answer_keys(call, sdp_body("127.0.0.1", phone_b.port()))));
    ASSERT_EQ(offer.str("result"), "ok") << offer.bytes;
    ASSERT_EQ(answer.str("result"), "ok") << answer.bytes;
    uint16_t a_sends_to = relay_point(answer.str("sdp")).port;

    stranger.send(rtp_packet(500, 'x'), a_sends_to);
    phone_a.send(rtp_packet(1, 'a'), a_sends_to);
    // Without the flag the stranger holds the leg provisionally and the phone is the one dropped.
    EXPECT_EQ(phone_b.receive(), strict ? rtp_packet(1, 'a') : rtp_packet(500, 'x'));

    Reply query = send(ng("s3" + call, {{"call-id", call}, {"command", std::string("query")}}));
    auto a = rtp_stream(query, "ft1");
    EXPECT_EQ(integer_at(a, {"relay", "dropped foreign"}), 1) << query.bytes;
    EXPECT_EQ(integer_at(a, {"endpoint", "port"}), strict ? phone_a.port() : stranger.port()) << query.bytes;
  }
}

TEST_F(NgServerTest, EndToEndOverUdp) {
  ASSERT_TRUE(server_.bind(net::Endpoint{loopback(), 0}).ok());
  std::thread loop([this] { server_.serve(); });
  Socket control;
  Socket phone_a;
  Socket phone_b;

  control.send(ng("e1", offer_keys("call-e", sdp_body("127.0.0.1", phone_a.port()))), server_.local_endpoint().port);
  Reply offer(control.receive());
  control.send(ng("e2", answer_keys("call-e", sdp_body("127.0.0.1", phone_b.port()))), server_.local_endpoint().port);
  Reply answer(control.receive());
  ASSERT_EQ(offer.str("result"), "ok") << offer.bytes;
  ASSERT_EQ(answer.str("result"), "ok") << answer.bytes;
  uint16_t b_sends_to = relay_point(offer.str("sdp")).port;
  uint16_t a_sends_to = relay_point(answer.str("sdp")).port;

  std::string from_a = rtp_packet(1, 'a');
  phone_a.send(from_a, a_sends_to);
  EXPECT_EQ(phone_b.receive(), from_a);
  std::string from_b = rtp_packet(9, 'b');
  phone_b.send(from_b, b_sends_to);
  EXPECT_EQ(phone_a.receive(), from_b);

  server_.stop();
  loop.join();
}

// ---------------------------------------------------------------------------------------------
// ng over TCP

// A TCP client connected to 127.0.0.1:`port`; replies are cut from the stream the way the server
// cuts requests (cookie + one bencode value).
class TcpClient {
 public:
  explicit TcpClient(uint16_t port) {
    fd_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    int one = 1;
    (void)::setsockopt(fd_.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_storage ss{};
    socklen_t len = net::Endpoint{loopback(), port}.to_sockaddr(ss);
    connected_ = ::connect(fd_.get(), reinterpret_cast<sockaddr*>(&ss), len) == 0;
  }
  bool connected() const { return connected_; }
  // Writes all of `data` (false when the server closed the connection first).
  bool write(std::string_view data) const {
    while (!data.empty()) {
      ssize_t n = ::send(fd_.get(), data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }
  void shutdown_write() const { ::shutdown(fd_.get(), SHUT_WR); }
  // The next reply ("<cookie> <dict>"), or "" when none came within 10 s or the stream ended.
  std::string receive() {
    for (;;) {
      NgStreamSplitter::Frame f = splitter_.next();
      if (f.kind == NgStreamSplitter::Kind::kMessage) {
        return std::string(f.message.cookie) + " " + std::string(f.message.body);
      }
      if (f.kind == NgStreamSplitter::Kind::kError || !read_some()) return {};
    }
  }
  // True when the server closed the connection (EOF or reset) within 10 s; bytes still in
  // flight before the close are skipped.
  bool closed_by_server() {
    while (read_some()) {
    }
    return eof_;
  }

 private:
  bool read_some() {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, 10000) <= 0) return false;
    std::array<char, 4096> buf{};
    ssize_t n = ::recv(fd_.get(), buf.data(), buf.size(), 0);
    if (n <= 0) {
      eof_ = n == 0 || errno == ECONNRESET;
      return false;
    }
    splitter_.append(std::string_view(buf.data(), static_cast<size_t>(n)));
    return true;
  }

  UniqueFd fd_;
  bool connected_ = false;
  bool eof_ = false;
  NgStreamSplitter splitter_;
};

// serve() on its own thread for the lifetime of the object (stopped and joined on every exit
// path, so counters are read after the destructor or after stop_and_join()).
class Serving {
 public:
  explicit Serving(NgServer& server) : server_(server), thread_([&server] { server.serve(); }) {}
  ~Serving() { stop_and_join(); }
  Serving(const Serving&) = delete;
  Serving& operator=(const Serving&) = delete;
  void stop_and_join() {
    if (!thread_.joinable()) return;
    server_.stop();
    thread_.join();
  }

 private:
  NgServer& server_;
  std::thread thread_;
};

std::string ping(const std::string& cookie) { return ng(cookie, {{"command", std::string("ping")}}); }

class NgServerTcpTest : public NgServerTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(server_.bind(net::Endpoint{loopback(), 0}).ok());
    ASSERT_TRUE(server_.bind_tcp(net::Endpoint{loopback(), 0}).ok());
  }
  uint16_t tcp_port() const { return server_.local_tcp_endpoint().port; }
};

TEST_F(NgServerTcpTest, TwoMessagesInOneWriteGetTwoRepliesInOrder) {
  {
    Serving serving(server_);
    TcpClient client(tcp_port());
    ASSERT_TRUE(client.connected());
    std::string offer = ng("t2", offer_keys("call-t", sdp_body("192.0.2.10", 5000)));
    // A newline between messages, as a client typing into netcat sends, is allowed.
    ASSERT_TRUE(client.write(ping("t1") + "\n" + offer));
    Reply first(client.receive());
    Reply second(client.receive());
    EXPECT_EQ(first.cookie, "t1");
    EXPECT_EQ(first.str("result"), "pong");
    EXPECT_EQ(second.cookie, "t2");
    EXPECT_EQ(second.str("result"), "ok") << second.bytes;
    EXPECT_EQ(relay_point(second.str("sdp")).address, loopback());
  }
  EXPECT_EQ(controller_.call_count(), 1U);
  EXPECT_EQ(server_.counters().tcp_connections, 1U);
  EXPECT_EQ(server_.counters().received, 2U);
  EXPECT_EQ(server_.counters().tcp_open, 0U);  // closed when serve() returned
}

TEST_F(NgServerTcpTest, OneMessageSplitOverThreeWrites) {
  std::string offer = ng("s1", offer_keys("call-s", sdp_body("192.0.2.10", 5000)));
  size_t third = offer.size() / 3;
  {
    Serving serving(server_);
    TcpClient client(tcp_port());
    ASSERT_TRUE(client.connected());
    // Cut inside the cookie, then inside the bencoded SDP string; the pauses only make it likely
    // that the server reads the parts separately, the result does not depend on them.
    ASSERT_TRUE(client.write(offer.substr(0, 1)));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_TRUE(client.write(offer.substr(1, third)));
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ASSERT_TRUE(client.write(offer.substr(1 + third)));
    Reply reply(client.receive());
    EXPECT_EQ(reply.cookie, "s1");
    EXPECT_EQ(reply.str("result"), "ok") << reply.bytes;
  }
  EXPECT_EQ(controller_.call_count(), 1U);
  EXPECT_EQ(server_.counters().received, 1U);
  EXPECT_EQ(server_.counters().tcp_closed_bad, 0U);
}

// Kamailio retransmits with the same cookie; over TCP, on another connection or over UDP the
// answer comes from the one cache and the offer is not executed twice.
TEST_F(NgServerTcpTest, RetransmittedCookieIsAnsweredFromTheSharedCache) {
  std::string offer = ng("r1", offer_keys("call-r", sdp_body("192.0.2.10", 5000)));
  std::string first;
  std::string again;
  std::string other_connection;
  std::string over_udp;
  {
    Serving serving(server_);
    TcpClient client(tcp_port());
    TcpClient other(tcp_port());
    Socket udp;
    ASSERT_TRUE(client.write(offer));
    first = client.receive();
    ASSERT_TRUE(client.write(offer));
    again = client.receive();
    ASSERT_TRUE(other.write(offer));
    other_connection = other.receive();
    udp.send(offer, server_.local_endpoint().port);
    over_udp = udp.receive();
  }
  ASSERT_EQ(Reply(first).str("result"), "ok") << first;
  EXPECT_EQ(again, first);
  EXPECT_EQ(other_connection, first);
  EXPECT_EQ(over_udp, first);
  EXPECT_EQ(server_.counters().retransmissions, 3U);
  EXPECT_EQ(controller_.call_count(), 1U);
}

TEST_F(NgServerTcpTest, GarbageClosesOnlyThatConnection) {
  {
    Serving serving(server_);
    TcpClient bad(tcp_port());
    TcpClient good(tcp_port());
    Socket udp;
    ASSERT_TRUE(good.write(ping("g1")));
    EXPECT_EQ(Reply(good.receive()).str("result"), "pong");
    // A valid message, then a body that is no bencode value: the first is still answered.
    (void)bad.write(ping("b1") + "b2 {\"command\":\"ping\"}");
    EXPECT_EQ(Reply(bad.receive()).cookie, "b1");
    EXPECT_TRUE(bad.closed_by_server());

    ASSERT_TRUE(good.write(ping("g2")));
    EXPECT_EQ(Reply(good.receive()).cookie, "g2");
    udp.send(ping("u1"), server_.local_endpoint().port);
    EXPECT_EQ(Reply(udp.receive()).str("result"), "pong");
  }
  EXPECT_EQ(server_.counters().tcp_closed_bad, 1U);
  EXPECT_EQ(server_.counters().tcp_closed_oversize, 0U);
  EXPECT_EQ(server_.counters().tcp_connections, 2U);
}

TEST_F(NgServerTcpTest, OversizeMessageClosesTheConnection) {
  {
    Serving serving(server_);
    TcpClient big(tcp_port());
    TcpClient good(tcp_port());
    // A well-formed dictionary whose one string alone is over the size limit. The server may
    // close while the tail is still being written: the write result does not matter.
    std::string payload(kNgMaxMessage + 10, 'a');
    (void)big.write("o1 d3:sdp" + std::to_string(payload.size()) + ":" + payload + "e");
    EXPECT_TRUE(big.closed_by_server());
    ASSERT_TRUE(good.write(ping("g1")));
    EXPECT_EQ(Reply(good.receive()).str("result"), "pong");
  }
  EXPECT_EQ(server_.counters().tcp_closed_oversize, 1U);
  EXPECT_EQ(server_.counters().tcp_closed_bad, 0U);
  EXPECT_EQ(controller_.call_count(), 0U);
}

// The peer shuts its sending side after the last request (as `nc -N` does): it still gets every
// answer, then the server closes.
TEST_F(NgServerTcpTest, HalfClosedPeerGetsItsAnswersThenEof) {
  Serving serving(server_);
  TcpClient client(tcp_port());
  ASSERT_TRUE(client.write(ping("h1") + ping("h2")));
  client.shutdown_write();
  EXPECT_EQ(Reply(client.receive()).cookie, "h1");
  EXPECT_EQ(Reply(client.receive()).cookie, "h2");
  EXPECT_TRUE(client.closed_by_server());
}

// Limits, each on a server of its own (same controller, one serving at a time).
class NgServerTcpLimitTest : public NgServerTest {
 protected:
  std::unique_ptr<NgServer> limited(NgServerConfig config) {
    auto server = std::make_unique<NgServer>(controller_, clock_, config);
    EXPECT_TRUE(server->bind_tcp(net::Endpoint{loopback(), 0}).ok());  // TCP only: no UDP socket
    return server;
  }
};

TEST_F(NgServerTcpLimitTest, ConnectionsOverTheLimitAreClosedAtOnce) {
  NgServerConfig config;
  config.tcp_max_connections = 1;
  auto server = limited(config);
  {
    Serving serving(*server);
    TcpClient first(server->local_tcp_endpoint().port);
    ASSERT_TRUE(first.write(ping("l1")));  // answered: the first connection is in the table
    EXPECT_EQ(Reply(first.receive()).cookie, "l1");
    TcpClient second(server->local_tcp_endpoint().port);
    EXPECT_TRUE(second.closed_by_server());
    ASSERT_TRUE(first.write(ping("l2")));
    EXPECT_EQ(Reply(first.receive()).cookie, "l2");
  }
  EXPECT_EQ(server->counters().tcp_connections, 1U);
  EXPECT_EQ(server->counters().tcp_rejected, 1U);
}

// An idle timeout of zero closes a connection on the loop's next round: the idle path without
// waiting for a clock.
TEST_F(NgServerTcpLimitTest, IdleConnectionIsClosed) {
  NgServerConfig config;
  config.tcp_idle_timeout = Duration::zero();
  config.tick_interval = std::chrono::milliseconds(10);
  auto server = limited(config);
  {
    Serving serving(*server);
    TcpClient client(server->local_tcp_endpoint().port);
    EXPECT_TRUE(client.closed_by_server());
  }
  EXPECT_EQ(server->counters().tcp_closed_idle, 1U);
}

TEST_F(NgServerTcpLimitTest, ReplyOverTheOutputLimitClosesTheConnection) {
  NgServerConfig config;
  config.tcp_max_output = 8;  // less than any reply
  auto server = limited(config);
  {
    Serving serving(*server);
    TcpClient client(server->local_tcp_endpoint().port);
    ASSERT_TRUE(client.write(ping("p1")));
    EXPECT_TRUE(client.closed_by_server());
    EXPECT_EQ(client.receive(), "");
  }
  EXPECT_EQ(server->counters().tcp_closed_output, 1U);
  EXPECT_EQ(server->counters().received, 1U);
}

TEST(NgServerBindTcp, RefusesAPortInUse) {
  ManualClock clock;
  PortPool pool(loopback(), min_port(), static_cast<uint16_t>(min_port() + 3));
  RelayWorker worker({}, clock, [](const SessionKey&) {});
  MediaController controller(MediaControllerConfig{loopback(), {}, seconds(30)}, pool, {&worker}, clock);
  NgServer first(controller, clock);
  NgServer second(controller, clock);
  ASSERT_TRUE(first.bind_tcp(net::Endpoint{loopback(), 0}).ok());
  auto taken = second.bind_tcp(first.local_tcp_endpoint());
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.error().status, 500);
}

}  // namespace
}  // namespace pinhole::media
