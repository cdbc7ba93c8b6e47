// Relay session: sequence tracking (wrap, loss, reorder, restart), forwarding decisions, per-leg
// counters, RTCP routing with and without mux, idle/on-hold timeouts, the per-leg latch flags.
#include "media/relay_session.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <initializer_list>
#include <vector>

namespace pinhole::media {
namespace {

using std::chrono::seconds;

net::Endpoint ep(const char* text) { return *net::Endpoint::parse(text); }
net::Address ip(const char* text) { return *net::Address::parse(text); }
const TimePoint kT0 = TimePoint{} + seconds(500);

std::vector<uint8_t> rtp(uint16_t seq, size_t payload = 20) {
  std::vector<uint8_t> p(12 + payload, 0);
  p[0] = 0x80;
  p[1] = 0;  // PCMU
  p[2] = static_cast<uint8_t>(seq >> 8);
  p[3] = static_cast<uint8_t>(seq & 0xff);
  return p;
}

std::vector<uint8_t> rtcp_rr() { return {0x80, 201, 0, 1, 0, 0, 0, 1}; }

TEST(SeqTracker, CountsAcrossTheWrapWithoutLoss) {
  SeqTracker t;
  for (uint32_t i = 0; i < 100; ++i) t.on_packet(static_cast<uint16_t>(65500 + i));
  EXPECT_EQ(t.first(), 65500);
  EXPECT_EQ(t.highest(), static_cast<uint16_t>(65500 + 99));
  EXPECT_EQ(t.expected(), 100U);
  EXPECT_EQ(t.received(), 100U);
  EXPECT_EQ(t.lost(), 0U);
}

TEST(SeqTracker, LossFromGapsIncludingOneAcrossTheWrap) {
  SeqTracker t;
  for (uint16_t s : std::initializer_list<uint16_t>{65530, 65531, 65534, 65535, 2, 3})
    t.on_packet(s);  // missing 65532-3, 0-1
  EXPECT_EQ(t.expected(), 10U);
  EXPECT_EQ(t.received(), 6U);
  EXPECT_EQ(t.lost(), 4U);
}

TEST(SeqTracker, ReorderedPacketFillsItsGap) {
  SeqTracker t;
  for (uint16_t s : std::initializer_list<uint16_t>{10, 11, 13, 12, 14}) t.on_packet(s);
  EXPECT_EQ(t.highest(), 14);
  EXPECT_EQ(t.lost(), 0U);
}

TEST(SeqTracker, BigJumpRestartsTheCount) {
  SeqTracker t;
  for (uint16_t s : std::initializer_list<uint16_t>{100, 101, 102}) t.on_packet(s);
  t.on_packet(40000);
  t.on_packet(40001);
  EXPECT_EQ(t.expected(), 2U);
  EXPECT_EQ(t.lost(), 0U);
}

// The kernel's tracker starts as a copy of user space's and counts what the kernel forwards,
// while user space still counts what was queued in its socket: folded together they must equal
// one tracker that saw every packet.
TEST(SeqTracker, AbsorbAddsWhatTheKernelCountedToWhatUserSpaceSawMeanwhile) {
  SeqTracker user;
  SeqTracker all;
  for (uint16_t s = 100; s < 110; ++s) {
    user.on_packet(s);
    all.on_packet(s);
  }
  SeqTracker kernel;  // restored from user.state(): the same numbers
  for (uint16_t s = 100; s < 110; ++s) kernel.on_packet(s);
  ASSERT_EQ(kernel.state().max_ext, user.state().max_ext);
  FastPathSeqState handed = kernel.state();
  for (uint16_t s : std::initializer_list<uint16_t>{113, 114, 116, 117}) {  // 115 lost
    kernel.on_packet(s);
    all.on_packet(s);
  }
  for (uint16_t s : std::initializer_list<uint16_t>{110, 111, 112}) {  // queued before the handover
    user.on_packet(s);
    all.on_packet(s);
  }
  user.absorb(handed, kernel.state());
  EXPECT_EQ(user.expected(), all.expected());
  EXPECT_EQ(user.received(), all.received());
  EXPECT_EQ(user.lost(), all.lost());
  EXPECT_EQ(user.highest(), all.highest());
  // A second fold adds only what is new.
  FastPathSeqState before = kernel.state();
  kernel.on_packet(118);
  all.on_packet(118);
  user.absorb(before, kernel.state());
  EXPECT_EQ(user.received(), all.received());
  EXPECT_EQ(user.lost(), all.lost());
  // Nothing new: nothing changes.
  user.absorb(kernel.state(), kernel.state());
  EXPECT_EQ(user.received(), all.received());
}

TEST(SeqTracker, AbsorbTakesTheKernelsCountAfterTheSourceRestarted) {
  SeqTracker user;
  for (uint16_t s = 100; s < 105; ++s) user.on_packet(s);
  SeqTracker kernel = user;
  FastPathSeqState handed = kernel.state();
  for (uint16_t s = 40000; s < 40004; ++s) kernel.on_packet(s);  // restarted far away
  user.absorb(handed, kernel.state());
  EXPECT_EQ(user.received(), kernel.received());
  EXPECT_EQ(user.expected(), kernel.expected());
  EXPECT_EQ(user.highest(), 40003);
}

class RelaySessionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    LegSetup a;
    a.sdp_rtp = ep("192.168.1.10:27910");  // NATed caller: its SDP lies
    a.signaling_ip = ip("127.0.0.1");
    LegSetup b;
    b.sdp_rtp = ep("127.0.0.1:5004");
    b.signaling_ip = ip("127.0.0.1");
    b.rtcp_mux = true;
    auto s = RelaySession::create({"call-1", "tag-a", ""}, pool, a, b, SessionConfig{}, kT0);
    ASSERT_TRUE(s.ok());
    session = std::move(*s);
  }

  uint16_t lo = static_cast<uint16_t>(34000 + (::getpid() % 500) * 8);
  PortPool pool{ip("127.0.0.1"), lo, static_cast<uint16_t>(lo + 7)};
  std::unique_ptr<RelaySession> session;
};

TEST_F(RelaySessionTest, ForwardsOutOfTheOtherLegToItsSdpAddressUntilLatched) {
  auto p = rtp(7000);
  auto action = session->on_packet(0, false, ep("127.0.0.1:40000"), p, kT0);
  ASSERT_TRUE(action);
  EXPECT_EQ(action->fd, session->leg(1).ports().rtp_fd());
  EXPECT_EQ(action->destination, ep("127.0.0.1:5004"));
  const LegStats& st = session->leg(0).stats();
  EXPECT_EQ(st.rtp_received.packets, 1U);
  EXPECT_EQ(st.rtp_received.bytes, p.size());
  EXPECT_EQ(st.rtp_received.first_seq, 7000);
  EXPECT_EQ(st.rtp_forwarded.first_seq, 7000);
  EXPECT_EQ(session->leg(0).rtp_latch().state(), LatchState::kLocked);

  // The answer side sends from elsewhere than its SDP: it latches and leg A's media follows.
  auto back = session->on_packet(1, false, ep("127.0.0.1:41000"), rtp(1), kT0);
  ASSERT_TRUE(back);
  EXPECT_EQ(back->fd, session->leg(0).ports().rtp_fd());
  EXPECT_EQ(back->destination, ep("127.0.0.1:40000"));
  auto again = session->on_packet(0, false, ep("127.0.0.1:40000"), rtp(7001), kT0);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->destination, ep("127.0.0.1:41000"));
}

TEST_F(RelaySessionTest, ForeignAndMalformedPacketsAreDroppedAndCounted) {
  ASSERT_TRUE(session->on_packet(0, false, ep("127.0.0.1:40000"), rtp(1), kT0));
  EXPECT_FALSE(session->on_packet(0, false, ep("127.0.0.1:40002"), rtp(2), kT0));
  std::vector<uint8_t> junk = {0x00, 0x01, 0x02};
  EXPECT_FALSE(session->on_packet(0, false, ep("127.0.0.1:40000"), junk, kT0));
  const LegStats& st = session->leg(0).stats();
  EXPECT_EQ(st.dropped_foreign, 1U);
  EXPECT_EQ(st.dropped_malformed, 1U);
  EXPECT_EQ(st.rtp_received.packets, 1U);
}

TEST_F(RelaySessionTest, RtcpFollowsTheRtcpPortOrTheMuxedSocket) {
  // Leg A (no mux) RTCP socket -> leg B muxed: out of B's RTP socket to B's RTP peer.
  auto a_rtcp = session->on_packet(0, true, ep("127.0.0.1:40001"), rtcp_rr(), kT0);
  ASSERT_TRUE(a_rtcp);
  EXPECT_EQ(a_rtcp->fd, session->leg(1).ports().rtp_fd());
  EXPECT_EQ(a_rtcp->destination, ep("127.0.0.1:5004"));
  // Leg B's muxed RTCP -> leg A's RTCP socket, to its SDP RTP port + 1 (not latched on RTCP yet).
  auto b_rtcp = session->on_packet(1, false, ep("127.0.0.1:5004"), rtcp_rr(), kT0);
  ASSERT_TRUE(b_rtcp);
  EXPECT_EQ(b_rtcp->fd, session->leg(0).ports().rtcp_fd());
  EXPECT_EQ(b_rtcp->destination, ep("127.0.0.1:40001"));  // learned from A's RTCP above
  EXPECT_EQ(session->leg(1).stats().rtcp_received.packets, 1U);
  EXPECT_EQ(session->leg(1).stats().rtp_received.packets, 0U);
}

TEST_F(RelaySessionTest, IdleTimeoutIsLongerOnHold) {
  ASSERT_TRUE(session->on_packet(0, false, ep("127.0.0.1:40000"), rtp(1), kT0 + seconds(5)));
  EXPECT_FALSE(session->idle(kT0 + seconds(64), seconds(60), seconds(600)));
  EXPECT_TRUE(session->idle(kT0 + seconds(65), seconds(60), seconds(600)));
  session->leg(1).set_on_hold(true);
  EXPECT_FALSE(session->idle(kT0 + seconds(65), seconds(60), seconds(600)));
  EXPECT_TRUE(session->idle(kT0 + seconds(605), seconds(60), seconds(600)));
}

TEST_F(RelaySessionTest, NewSdpRelearnsTheLeg) {
  ASSERT_TRUE(session->on_packet(1, false, ep("127.0.0.1:41000"), rtp(1), kT0));
  LegSetup moved;
  moved.sdp_rtp = ep("127.0.0.1:6000");
  moved.signaling_ip = ip("127.0.0.1");
  session->leg(1).reset_expected(moved, kT0 + seconds(30));
  auto a = session->on_packet(0, false, ep("127.0.0.1:40000"), rtp(1), kT0 + seconds(30));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->destination, ep("127.0.0.1:6000"));
}

TEST_F(RelaySessionTest, CreateFailsCleanlyWhenThePoolRunsOut) {
  // 4 pairs, 2 taken by the fixture's session.
  auto second = RelaySession::create({"call-2", "t", ""}, pool, LegSetup{}, LegSetup{}, SessionConfig{}, kT0);
  size_t free_after_second = pool.free_count();
  auto third = RelaySession::create({"call-3", "t", ""}, pool, LegSetup{}, LegSetup{}, SessionConfig{}, kT0);
  if (second.ok()) {
    ASSERT_FALSE(third.ok());
    EXPECT_EQ(third.error().status, 503);
    EXPECT_EQ(pool.free_count(), free_after_second);  // nothing leaked by the failed create
  }
  session.reset();
  second = Error{0, ""};
  EXPECT_EQ(pool.free_count(), pool.capacity());
}

// Leg B's phone sends from a port other than its SDP's (ng `asymmetric`): media to it keeps
// going to the SDP address, and its packets are forwarded from whatever source.
TEST_F(RelaySessionTest, AsymmetricLegKeepsItsSdpDestinationAndForwardsAnySource) {
  LegSetup b;
  b.sdp_rtp = ep("127.0.0.1:5004");
  b.signaling_ip = ip("127.0.0.1");
  b.rtcp_mux = true;
  b.asymmetric = true;
  session->leg(1).reset_expected(b, kT0);
  ASSERT_TRUE(session->on_packet(1, false, ep("127.0.0.1:41000"), rtp(1), kT0));
  ASSERT_TRUE(session->on_packet(1, false, ep("198.51.100.9:7000"), rtp(2), kT0));
  auto to_b = session->on_packet(0, false, ep("127.0.0.1:40000"), rtp(9), kT0);
  ASSERT_TRUE(to_b);
  EXPECT_EQ(to_b->destination, ep("127.0.0.1:5004"));
  EXPECT_EQ(session->leg(1).stats().dropped_foreign, 0U);
  EXPECT_EQ(session->leg(1).stats().rtp_forwarded.packets, 2U);
  EXPECT_FALSE(session->leg(1).rtp_latch().peer());

  // The next description without the flag: the leg latches again.
  b.asymmetric = false;
  session->leg(1).reset_expected(b, kT0 + seconds(1));
  ASSERT_TRUE(session->on_packet(1, false, ep("127.0.0.1:41000"), rtp(3), kT0 + seconds(1)));
  EXPECT_EQ(session->on_packet(0, false, ep("127.0.0.1:40000"), rtp(10), kT0 + seconds(1))->destination,
            ep("127.0.0.1:41000"));
}

TEST_F(RelaySessionTest, StrictSourceLegDropsAForeignFirstPacket) {
  LegSetup a;
  a.sdp_rtp = ep("192.168.1.10:27910");
  a.signaling_ip = ip("127.0.0.1");
  a.strict_source = true;
  session->leg(0).reset_expected(a, kT0);
  EXPECT_FALSE(session->on_packet(0, false, ep("198.51.100.9:7000"), rtp(1), kT0));
  EXPECT_EQ(session->leg(0).stats().dropped_foreign, 1U);
  EXPECT_EQ(session->leg(0).rtp_latch().state(), LatchState::kLearning);
  ASSERT_TRUE(session->on_packet(0, false, ep("127.0.0.1:40000"), rtp(2), kT0));
  EXPECT_EQ(session->leg(0).rtp_latch().state(), LatchState::kLocked);
  // The flag holds for the leg's RTCP stream too.
  EXPECT_FALSE(session->on_packet(0, true, ep("198.51.100.9:7001"), rtcp_rr(), kT0));
  EXPECT_TRUE(session->leg(0).rtcp_latch().strict_source());
  // Leg B was described without it.
  EXPECT_FALSE(session->leg(1).rtp_latch().strict_source());
}

TEST_F(RelaySessionTest, SessionDefaultsApplyUnderTheLegFlags) {
  SessionConfig config;
  config.latch.strict_source = true;
  LegSetup a;
  a.sdp_rtp = ep("192.0.2.1:4000");
  LegSetup b = a;
  b.asymmetric = true;
  session.reset();  // give its ports back
  auto s = RelaySession::create({"call-d", "t", ""}, pool, a, b, config, kT0);
  ASSERT_TRUE(s.ok());
  EXPECT_TRUE((*s)->leg(0).rtp_latch().strict_source());
  EXPECT_FALSE((*s)->leg(0).rtp_latch().asymmetric());
  EXPECT_TRUE((*s)->leg(1).rtp_latch().strict_source());
  EXPECT_TRUE((*s)->leg(1).rtp_latch().asymmetric());
}

// The kernel may take a stream only while user space would send every packet from one source
// to one place without learning anything: the leg locked, the other leg's peer learned.
TEST_F(RelaySessionTest, FastPathRouteOnlyOnceBothSidesOfAStreamAreLatched) {
  EXPECT_FALSE(session->fast_path_route(0, false));
  ASSERT_TRUE(session->on_packet(0, false, ep("127.0.0.1:40000"), rtp(1), kT0));
  EXPECT_FALSE(session->fast_path_route(0, false)) << "leg B has no learned peer yet (its SDP address only)";
  EXPECT_FALSE(session->fast_path_route(1, false));
  ASSERT_TRUE(session->on_packet(1, false, ep("127.0.0.1:41000"), rtp(1), kT0));
  auto a_to_b = session->fast_path_route(0, false);
  ASSERT_TRUE(a_to_b);
  EXPECT_EQ(a_to_b->source, ep("127.0.0.1:40000"));
  EXPECT_EQ(a_to_b->out_port, session->leg(1).ports().rtp_port());
  EXPECT_EQ(a_to_b->destination, ep("127.0.0.1:41000"));
  EXPECT_TRUE(a_to_b->rtp);
  EXPECT_FALSE(a_to_b->rtcp_mux);
  auto b_to_a = session->fast_path_route(1, false);
  ASSERT_TRUE(b_to_a);
  EXPECT_EQ(b_to_a->out_port, session->leg(0).ports().rtp_port());
  EXPECT_EQ(b_to_a->destination, ep("127.0.0.1:40000"));
  EXPECT_TRUE(b_to_a->rtcp_mux) << "leg B muxes: its RTCP must stay in user space";
  EXPECT_FALSE(session->fast_path_route(1, true)) << "a muxed leg has no RTCP socket";
  // Leg A's RTCP socket: not latched yet.
  EXPECT_FALSE(session->fast_path_route(0, true));
  ASSERT_TRUE(session->on_packet(0, true, ep("127.0.0.1:40001"), rtcp_rr(), kT0));
  auto a_rtcp = session->fast_path_route(0, true);
  ASSERT_TRUE(a_rtcp);
  EXPECT_FALSE(a_rtcp->rtp);
  EXPECT_EQ(a_rtcp->out_port, session->leg(1).ports().rtp_port()) << "into B's muxed socket";
  EXPECT_EQ(a_rtcp->destination, ep("127.0.0.1:41000"));

  // New SDP for leg B: it learns again, so neither direction may stay in the kernel.
  LegSetup moved;
  moved.sdp_rtp = ep("127.0.0.1:6000");
  moved.signaling_ip = ip("127.0.0.1");
  moved.rtcp_mux = true;
  session->leg(1).reset_expected(moved, kT0 + seconds(1));
  EXPECT_FALSE(session->fast_path_route(0, false));
  EXPECT_FALSE(session->fast_path_route(1, false));
}

TEST_F(RelaySessionTest, FastPathTrafficCountsAsForwardedActivity) {
  ASSERT_TRUE(session->on_packet(0, false, ep("127.0.0.1:40000"), rtp(10), kT0));
  FastPathSeqState before = session->leg(0).stats().rtp_seq.state();
  SeqTracker kernel;
  kernel.on_packet(10);
  for (uint16_t s = 11; s < 16; ++s) kernel.on_packet(s);
  session->timeout_reported = true;
  session->add_fast_path_traffic(0, false, 5, 5U * 32, 15, before, kernel.state(), kT0 + seconds(20));
  const LegStats& st = session->leg(0).stats();
  EXPECT_EQ(st.rtp_received.packets, 6U);
  EXPECT_EQ(st.rtp_forwarded.packets, 6U);
  EXPECT_EQ(st.rtp_received.bytes, 32U * 6);
  EXPECT_EQ(st.rtp_received.first_seq, 10);
  EXPECT_EQ(st.rtp_forwarded.last_seq, 15);
  EXPECT_EQ(st.rtp_seq.received(), 6U);
  EXPECT_EQ(st.rtp_seq.lost(), 0U);
  EXPECT_EQ(session->last_activity(), kT0 + seconds(20));
  EXPECT_FALSE(session->timeout_reported);
  EXPECT_FALSE(session->idle(kT0 + seconds(70), seconds(60), seconds(3600)));
}

}  // namespace
}  // namespace pinhole::media
