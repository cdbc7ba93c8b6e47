// Relay worker end to end on loopback: two fake phones exchange RTP and RTCP through a session,
// nothing is clipped, a third socket's packets are dropped after latching (RTP Bleed), deleting
// the session frees its ports, an idle session is reported. Waits poll with a deadline.
#include "media/relay_worker.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <vector>

#include "media/fast_path.h"

namespace pinhole::media {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

net::Address loopback() { return *net::Address::parse("127.0.0.1"); }
constexpr auto kDeadline = seconds(10);

// A test-side UDP socket on 127.0.0.1 with an ephemeral port.
class Phone {
 public:
  Phone() {
    fd_.reset(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    sockaddr_storage ss{};
    socklen_t len = net::Endpoint{loopback(), 0}.to_sockaddr(ss);
    EXPECT_EQ(::bind(fd_.get(), reinterpret_cast<sockaddr*>(&ss), len), 0);
    int size = 1 << 20;
    (void)::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
    len = sizeof ss;
    EXPECT_EQ(::getsockname(fd_.get(), reinterpret_cast<sockaddr*>(&ss), &len), 0);
    self_ = *net::Endpoint::from_sockaddr(ss, len);
  }
  const net::Endpoint& endpoint() const { return self_; }

  void send(const std::vector<uint8_t>& data, uint16_t port) const {
    sockaddr_storage ss{};
    socklen_t len = net::Endpoint{loopback(), port}.to_sockaddr(ss);
    ASSERT_EQ(::sendto(fd_.get(), data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&ss), len),
              static_cast<ssize_t>(data.size()));
  }
  // Next datagram, or empty when none came before the deadline; `from` gets its source.
  std::vector<uint8_t> receive(std::chrono::milliseconds wait, net::Endpoint* from = nullptr) const {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(wait.count())) <= 0) return {};
    std::vector<uint8_t> buf(2048);
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ssize_t n = ::recvfrom(fd_.get(), buf.data(), buf.size(), MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&ss), &len);
    buf.resize(n > 0 ? static_cast<size_t>(n) : 0);
    if (from != nullptr && n > 0) *from = *net::Endpoint::from_sockaddr(ss, len);
    return buf;
  }
  bool nothing_pending() const { return receive(milliseconds(0)).empty(); }

 private:
  UniqueFd fd_;
  net::Endpoint self_;
};

std::vector<uint8_t> rtp(uint16_t seq, uint8_t marker) {
  std::vector<uint8_t> p(12 + 160, marker);
  p[0] = 0x80;
  p[1] = 0;
  p[2] = static_cast<uint8_t>(seq >> 8);
  p[3] = static_cast<uint8_t>(seq & 0xff);
  return p;
}

uint16_t seq_of(const std::vector<uint8_t>& p) { return static_cast<uint16_t>((p[2] << 8) | p[3]); }

std::vector<uint8_t> rtcp_sr(uint8_t marker) {
  std::vector<uint8_t> p(28, marker);
  p[0] = 0x80;
  p[1] = 200;
  return p;
}

// Polls `read` on the worker thread until it returns true or the deadline passes.
template <typename F>
bool eventually(RelayWorker& worker, F read) {
  auto end = MonoClock::now() + kDeadline;
  while (MonoClock::now() < end) {
    auto r = worker.call(read);
    if (r.ok() && *r) return true;
    std::this_thread::yield();
  }
  return false;
}

class RelayWorkerTest : public ::testing::Test {
 protected:
  uint16_t lo = static_cast<uint16_t>(36000 + (::getpid() % 500) * 8);
  PortPool pool{loopback(), lo, static_cast<uint16_t>(lo + 7)};
  SteadyClock clock;
};

TEST_F(RelayWorkerTest, EndToEndNoClippingNoBleedRtcpAndRelease) {
  Phone a;       // caller, NATed: its SDP names an address nothing listens on
  Phone a_rtcp;  // caller's RTCP socket
  Phone b;       // callee, reachable at its SDP address
  Phone b_rtcp;
  Phone attacker;

  LegSetup leg_a;
  leg_a.sdp_rtp = net::Endpoint{*net::Address::parse("192.0.2.1"), 27910};
  leg_a.signaling_ip = loopback();
  LegSetup leg_b;
  leg_b.sdp_rtp = b.endpoint();
  leg_b.sdp_rtcp = b_rtcp.endpoint();
  leg_b.signaling_ip = loopback();
  SessionKey key{"call-e2e", "from-tag", ""};
  auto created = RelaySession::create(key, pool, leg_a, leg_b, SessionConfig{}, clock.now());
  ASSERT_TRUE(created.ok()) << created.error().what;
  const uint16_t a_port = (*created)->leg(0).ports().rtp_port();
  const uint16_t b_port = (*created)->leg(1).ports().rtp_port();
  const uint16_t a_rtcp_port = (*created)->leg(0).ports().rtcp_port();
  const uint16_t b_rtcp_port = (*created)->leg(1).ports().rtcp_port();

  RelayWorker worker(RelayWorkerConfig{}, clock, nullptr);
  ASSERT_TRUE(worker.add_session(std::move(*created)).ok());
  worker.start();

  constexpr int kCount = 200;
  const uint16_t a_first = 65450;  // wraps during the call
  const uint16_t b_first = 1000;

  // A speaks first; every packet reaches B (B's SDP address is right).
  for (int i = 0; i < kCount; ++i) {
    a.send(rtp(static_cast<uint16_t>(a_first + i), 0xaa), a_port);
    if (i % 20 == 19) {  // keep well inside the socket buffers
      for (int j = i - 19; j <= i; ++j) {
        auto got = b.receive(kDeadline);
        ASSERT_EQ(got.size(), 172U) << "packet " << j << " lost";
        EXPECT_EQ(seq_of(got), static_cast<uint16_t>(a_first + j));
      }
    }
  }
  // B answers from its own socket; A was latched on its first packet, so B's media reaches it.
  for (int i = 0; i < kCount; ++i) {
    b.send(rtp(static_cast<uint16_t>(b_first + i), 0xbb), b_port);
    if (i % 20 == 19) {
      for (int j = i - 19; j <= i; ++j) {
        auto got = a.receive(kDeadline);
        ASSERT_EQ(got.size(), 172U) << "packet " << j << " lost";
        EXPECT_EQ(seq_of(got), static_cast<uint16_t>(b_first + j));
      }
    }
  }

  // RTCP both ways on the odd ports.
  a_rtcp.send(rtcp_sr(0x11), a_rtcp_port);
  auto sr = b_rtcp.receive(kDeadline);
  ASSERT_EQ(sr.size(), 28U);
  EXPECT_EQ(sr[27], 0x11);
  b_rtcp.send(rtcp_sr(0x22), b_rtcp_port);
  sr = a_rtcp.receive(kDeadline);
  ASSERT_EQ(sr.size(), 28U);
  EXPECT_EQ(sr[27], 0x22);

  // RTP Bleed: a third socket (same IP, other port) aims at both relay ports after latching.
  constexpr int kBleed = 20;
  for (int i = 0; i < kBleed; ++i) {
    attacker.send(rtp(static_cast<uint16_t>(i), 0xee), a_port);
    attacker.send(rtp(static_cast<uint16_t>(i), 0xee), b_port);
  }
  ASSERT_TRUE(eventually(worker, [&] {
    RelaySession* s = worker.find(key);
    return s->leg(0).stats().dropped_foreign == kBleed && s->leg(1).stats().dropped_foreign == kBleed;
  }));
  EXPECT_TRUE(a.nothing_pending());
  EXPECT_TRUE(b.nothing_pending());
  EXPECT_TRUE(attacker.nothing_pending());

  auto stats = worker.call([&] {
    RelaySession* s = worker.find(key);
    return std::array<LegStats, 2>{s->leg(0).stats(), s->leg(1).stats()};
  });
  ASSERT_TRUE(stats.ok());
  const LegStats& sa = (*stats)[0];
  const LegStats& sb = (*stats)[1];
  EXPECT_EQ(sa.rtp_received.packets, static_cast<uint64_t>(kCount));
  EXPECT_EQ(sa.rtp_forwarded.packets, static_cast<uint64_t>(kCount));
  EXPECT_EQ(sa.rtp_forwarded.first_seq, a_first);  // no clipping
  EXPECT_EQ(sa.rtp_received.first_seq, sa.rtp_forwarded.first_seq);
  EXPECT_EQ(sa.rtp_forwarded.last_seq, static_cast<uint16_t>(a_first + kCount - 1));
  EXPECT_EQ(sa.rtp_seq.lost(), 0U);
  EXPECT_EQ(sa.rtp_seq.expected(), static_cast<uint64_t>(kCount));
  EXPECT_EQ(sb.rtp_forwarded.first_seq, b_first);
  EXPECT_EQ(sb.rtp_forwarded.packets, static_cast<uint64_t>(kCount));
  EXPECT_EQ(sa.rtcp_forwarded.packets, 1U);
  EXPECT_EQ(sb.rtcp_forwarded.packets, 1U);
  EXPECT_EQ(sa.send_errors + sb.send_errors, 0U);

  // Delete: the ports go back to the pool.
  EXPECT_EQ(pool.free_count(), pool.capacity() - 2);
  auto removed = worker.call([&] { return worker.remove_session(key); });
  ASSERT_TRUE(removed.ok());
  EXPECT_TRUE(*removed);
  ASSERT_TRUE(eventually(worker, [&] { return pool.free_count() == pool.capacity(); }));
  worker.stop();
}

TEST_F(RelayWorkerTest, IdleSessionIsReportedAndCanBeRemovedFromTheCallback) {
  ManualClock manual(TimePoint{} + seconds(100));
  std::vector<SessionKey> reported;
  RelayWorker* self = nullptr;
  RelayWorkerConfig config;
  config.inactivity_timeout = seconds(60);
  RelayWorker worker(config, manual, [&](const SessionKey& key) {
    reported.push_back(key);
    self->remove_session(key);  // deferred by the worker: safe inside the callback
  });
  self = &worker;
  SessionKey key{"idle", "t", "z9hG4bK1"};
  auto created = RelaySession::create(key, pool, LegSetup{}, LegSetup{}, SessionConfig{}, manual.now());
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE(worker.add_session(std::move(*created)).ok());
  EXPECT_EQ(worker.add_session(nullptr).error().status, 500);
  worker.start();

  // The clock moves only on the worker thread (ManualClock is not thread-safe).
  ASSERT_TRUE(worker
                  .call([&] {
                    manual.advance(seconds(59));
                    return true;
                  })
                  .ok());
  ASSERT_TRUE(worker.call([&] { return reported.empty(); }).value());
  ASSERT_TRUE(worker
                  .call([&] {
                    manual.advance(seconds(2));
                    return true;
                  })
                  .ok());
  ASSERT_TRUE(eventually(worker, [&] { return reported.size() == 1; }));
  EXPECT_EQ(reported[0], key);
  EXPECT_EQ(worker.call([&] { return worker.session_count(); }).value(), 0U);
  ASSERT_TRUE(eventually(worker, [&] { return pool.free_count() == pool.capacity(); }));
  worker.stop();
}

TEST_F(RelayWorkerTest, IdleSessionIsReportedOnceUntilTrafficResumes) {
  ManualClock manual(TimePoint{} + seconds(100));
  int reports = 0;
  RelayWorker worker(RelayWorkerConfig{}, manual, [&](const SessionKey&) { ++reports; });
  auto created = RelaySession::create({"quiet", "t", ""}, pool, LegSetup{}, LegSetup{}, SessionConfig{}, manual.now());
  ASSERT_TRUE(created.ok());
  ASSERT_TRUE(worker.add_session(std::move(*created)).ok());
  worker.start();
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(worker
                    .call([&] {
                      manual.advance(seconds(61));
                      return true;
                    })
                    .ok());
  }
  ASSERT_TRUE(eventually(worker, [&] { return reports >= 1; }));
  EXPECT_EQ(worker.call([&] { return reports; }).value(), 1);
  EXPECT_EQ(worker.counters().timeouts_reported.load(), 1U);
  worker.stop();
}

TEST_F(RelayWorkerTest, DuplicateKeyIsRefused) {
  RelayWorker worker(RelayWorkerConfig{}, clock, nullptr);
  SessionKey key{"dup", "t", ""};
  auto one = RelaySession::create(key, pool, LegSetup{}, LegSetup{}, SessionConfig{}, clock.now());
  auto two = RelaySession::create(key, pool, LegSetup{}, LegSetup{}, SessionConfig{}, clock.now());
  ASSERT_TRUE(one.ok());
  ASSERT_TRUE(two.ok());
  ASSERT_TRUE(worker.add_session(std::move(*one)).ok());
  Status s = worker.add_session(std::move(*two));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().status, 409);
  EXPECT_TRUE(worker.remove_session(key));
  EXPECT_FALSE(worker.remove_session(key));
}

// With the kernel fast path: once both legs are latched, their RTP goes through the kernel (the
// worker reads nothing more), arrives from the relay's ports with every packet, the statistics
// still count every packet, a foreign source still reaches user space and is dropped there, and
// deleting the session takes its rules out of the kernel. Loading eBPF needs root: CI runs as
// root, so there the test always runs.
TEST_F(RelayWorkerTest, LatchedStreamsMoveToTheKernelFastPathAndBack) {
  if (::geteuid() != 0) GTEST_SKIP() << "loading the eBPF fast path needs root";
  auto opened = FastPath::open(FastPathConfig{{"lo"}, 1024});
  ASSERT_TRUE(opened.ok()) << opened.error().what;
  FastPath& fast_path = **opened;

  Phone a;
  Phone b;
  Phone attacker;
  LegSetup leg_a;
  leg_a.sdp_rtp = net::Endpoint{*net::Address::parse("192.0.2.1"), 27910};  // NATed: its SDP lies
  leg_a.signaling_ip = loopback();
  leg_a.rtcp_mux = true;
  LegSetup leg_b;
  leg_b.sdp_rtp = b.endpoint();
  leg_b.signaling_ip = loopback();
  leg_b.rtcp_mux = true;
  SessionKey key{"call-fast", "from-tag", ""};
  auto created = RelaySession::create(key, pool, leg_a, leg_b, SessionConfig{}, clock.now());
  ASSERT_TRUE(created.ok()) << created.error().what;
  const uint16_t a_port = (*created)->leg(0).ports().rtp_port();
  const uint16_t b_port = (*created)->leg(1).ports().rtp_port();

  RelayWorker worker(RelayWorkerConfig{}, clock, nullptr);
  worker.enable_fast_path(fast_path, loopback());
  ASSERT_TRUE(worker.add_session(std::move(*created)).ok());
  worker.start();

  // One packet each way in user space: both legs latch, and the kernel takes both directions.
  a.send(rtp(500, 0xaa), a_port);
  ASSERT_EQ(b.receive(kDeadline).size(), 172U);
  b.send(rtp(9000, 0xbb), b_port);
  ASSERT_EQ(a.receive(kDeadline).size(), 172U);
  ASSERT_TRUE(eventually(worker, [&] { return fast_path.rule_count() == 2; }));
  EXPECT_EQ(worker.counters().fast_path_installed.load(), 2U);
  const uint64_t read_by_worker = worker.counters().received.load();

  constexpr int kCount = 300;
  for (int i = 1; i <= kCount; ++i) {
    a.send(rtp(static_cast<uint16_t>(500 + i), 0xaa), a_port);
    b.send(rtp(static_cast<uint16_t>(9000 + i), 0xbb), b_port);
    if (i % 20 == 0) {
      for (int j = i - 19; j <= i; ++j) {
        net::Endpoint from;
        auto at_b = b.receive(kDeadline, &from);
        ASSERT_EQ(at_b.size(), 172U) << "packet " << j << " lost";
        EXPECT_EQ(seq_of(at_b), static_cast<uint16_t>(500 + j));
        EXPECT_EQ(from, (net::Endpoint{loopback(), b_port})) << "must come from the relay's port for B";
        auto at_a = a.receive(kDeadline, &from);
        ASSERT_EQ(at_a.size(), 172U) << "packet " << j << " lost";
        EXPECT_EQ(seq_of(at_a), static_cast<uint16_t>(9000 + j));
        EXPECT_EQ(from, (net::Endpoint{loopback(), a_port}));
      }
    }
  }
  EXPECT_EQ(worker.counters().received.load(), read_by_worker) << "the kernel forwarded them, not the worker";
  EXPECT_GE(fast_path.counters().forwarded, 2U * kCount);

  // RTP Bleed is still user space's to drop: the kernel rule matches the latched peer only.
  constexpr int kBleed = 10;
  for (int i = 0; i < kBleed; ++i) attacker.send(rtp(static_cast<uint16_t>(i), 0xee), a_port);
  ASSERT_TRUE(eventually(worker, [&] { return worker.find(key)->leg(0).stats().dropped_foreign == kBleed; }));
  EXPECT_TRUE(b.nothing_pending());

  // The statistics hold every packet, the kernel's folded in.
  auto stats = worker.call([&] {
    worker.refresh_fast_path(key);
    RelaySession* s = worker.find(key);
    return std::array<LegStats, 2>{s->leg(0).stats(), s->leg(1).stats()};
  });
  ASSERT_TRUE(stats.ok());
  for (const LegStats& st : *stats) {
    EXPECT_EQ(st.rtp_received.packets, kCount + 1U);
    EXPECT_EQ(st.rtp_forwarded.packets, kCount + 1U);
    EXPECT_EQ(st.rtp_received.bytes, (kCount + 1U) * 172);
    EXPECT_EQ(st.rtp_seq.received(), kCount + 1U);
    EXPECT_EQ(st.rtp_seq.lost(), 0U);
  }
  EXPECT_EQ((*stats)[0].rtp_forwarded.first_seq, 500);
  EXPECT_EQ((*stats)[0].rtp_forwarded.last_seq, 500 + kCount);
  EXPECT_EQ((*stats)[1].rtp_forwarded.last_seq, 9000 + kCount);

  // Deleting the session takes its rules out of the kernel before its ports go back.
  auto removed = worker.call([&] { return worker.remove_session(key); });
  ASSERT_TRUE(removed.ok() && *removed);
  EXPECT_EQ(fast_path.rule_count(), 0U);
  EXPECT_EQ(worker.counters().fast_path_removed.load(), 2U);
  a.send(rtp(1, 0xaa), a_port);
  EXPECT_TRUE(b.receive(milliseconds(200)).empty());
  worker.stop();
}

}  // namespace
}  // namespace pinhole::media
