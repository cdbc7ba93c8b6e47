// Latching decision table: trusted first packet, provisional foreign peer, override, lock, window
// expiry, reset on new SDP, media handover; the per-leg ng flags asymmetric and strict-source.
#include "media/latching.h"

#include <gtest/gtest.h>

namespace pinhole::media {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

net::Endpoint ep(const char* text) { return *net::Endpoint::parse(text); }
net::Address ip(const char* text) { return *net::Address::parse(text); }

const TimePoint kT0 = TimePoint{} + seconds(1000);

class LatchTest : public ::testing::Test {
 protected:
  // Phone signaled from 203.0.113.101; its SDP says 192.168.1.10:27910.
  Latch latch{LatchConfig{}, ip("203.0.113.101"), ep("192.168.1.10:27910"), kT0};
};

TEST_F(LatchTest, UntilLatchedMediaGoesToTheSdpAddress) {
  EXPECT_EQ(latch.state(), LatchState::kLearning);
  EXPECT_FALSE(latch.peer());
  EXPECT_EQ(latch.destination(), ep("192.168.1.10:27910"));
}

TEST_F(LatchTest, FirstPacketFromTrustedIpLatchesAndLocksAtOnce) {
  EXPECT_EQ(latch.on_packet(ep("203.0.113.101:52500"), kT0), LatchVerdict::kLatchedTrusted);
  EXPECT_EQ(latch.state(), LatchState::kLocked);
  EXPECT_EQ(latch.destination(), ep("203.0.113.101:52500"));
  EXPECT_EQ(latch.on_packet(ep("203.0.113.101:52500"), kT0 + milliseconds(20)), LatchVerdict::kAccept);
}

TEST_F(LatchTest, AfterLockOtherSourcesAreDroppedEvenFromTheTrustedIp) {
  ASSERT_EQ(latch.on_packet(ep("203.0.113.101:52500"), kT0), LatchVerdict::kLatchedTrusted);
  EXPECT_EQ(latch.on_packet(ep("198.51.100.7:4000"), kT0 + milliseconds(10)), LatchVerdict::kDropLocked);
  EXPECT_EQ(latch.on_packet(ep("203.0.113.101:52502"), kT0 + milliseconds(10)), LatchVerdict::kDropLocked);
  EXPECT_EQ(latch.destination(), ep("203.0.113.101:52500"));
}

TEST_F(LatchTest, ForeignSourceLatchesProvisionallyInsideTheWindow) {
  EXPECT_EQ(latch.on_packet(ep("198.51.100.7:4000"), kT0 + seconds(1)), LatchVerdict::kLatchedForeign);
  EXPECT_EQ(latch.state(), LatchState::kProvisional);
  EXPECT_EQ(latch.destination(), ep("198.51.100.7:4000"));
  EXPECT_EQ(latch.on_packet(ep("198.51.100.7:4000"), kT0 + seconds(2)), LatchVerdict::kAccept);
  // A second foreign source cannot take the leg while the first holds it.
  EXPECT_EQ(latch.on_packet(ep("198.51.100.8:4000"), kT0 + seconds(2)), LatchVerdict::kDropProvisional);
  EXPECT_EQ(latch.destination(), ep("198.51.100.7:4000"));
}

TEST_F(LatchTest, TrustedSourceOverridesAProvisionalPeer) {
  ASSERT_EQ(latch.on_packet(ep("198.51.100.7:4000"), kT0 + seconds(1)), LatchVerdict::kLatchedForeign);
  EXPECT_EQ(latch.on_packet(ep("203.0.113.101:52500"), kT0 + seconds(2)), LatchVerdict::kLatchedTrusted);
  EXPECT_EQ(latch.state(), LatchState::kLocked);
  EXPECT_EQ(latch.on_packet(ep("198.51.100.7:4000"), kT0 + seconds(2)), LatchVerdict::kDropLocked);
}

TEST_F(LatchTest, ProvisionalPeerIsLockedWhenTheWindowEnds) {
  ASSERT_EQ(latch.on_packet(ep("198.51.100.7:4000"), kT0 + seconds(1)), LatchVerdict::kLatchedForeign);
  // Past the 3 s window the trusted IP comes too late.
  EXPECT_EQ(latch.on_packet(ep("203.0.113.101:52500"), kT0 + seconds(3)), LatchVerdict::kDropLocked);
  EXPECT_EQ(latch.state(), LatchState::kLocked);
  EXPECT_EQ(latch.on_packet(ep("198.51.100.7:4000"), kT0 + seconds(4)), LatchVerdict::kAccept);
}

TEST_F(LatchTest, ForeignSourceAfterTheWindowIsRefusedButTrustedStillLatches) {
  EXPECT_EQ(latch.on_packet(ep("198.51.100.7:4000"), kT0 + seconds(3)), LatchVerdict::kDropWindowClosed);
  Latch early{LatchConfig{}, ip("203.0.113.101"), ep("192.168.1.10:27910"), kT0};
  EXPECT_EQ(early.on_packet(ep("198.51.100.7:4000"), kT0 + milliseconds(2999)), LatchVerdict::kLatchedForeign);
  Latch late{LatchConfig{}, ip("203.0.113.101"), ep("192.168.1.10:27910"), kT0};
  EXPECT_EQ(late.on_packet(ep("198.51.100.7:4000"), kT0 + seconds(10)), LatchVerdict::kDropWindowClosed);
  EXPECT_EQ(late.on_packet(ep("203.0.113.101:52500"), kT0 + seconds(10)), LatchVerdict::kLatchedTrusted);
}

TEST_F(LatchTest, NewSdpResetsAndRelearns) {
  ASSERT_EQ(latch.on_packet(ep("203.0.113.101:52500"), kT0), LatchVerdict::kLatchedTrusted);
  TimePoint t1 = kT0 + seconds(30);
  latch.reset_expected(ip("203.0.113.101"), ep("192.168.1.10:30000"), t1);
  EXPECT_EQ(latch.state(), LatchState::kLearning);
  EXPECT_EQ(latch.destination(), ep("192.168.1.10:30000"));
  // The window counts from the reset, not from creation.
  EXPECT_EQ(latch.on_packet(ep("203.0.113.101:52600"), t1 + seconds(1)), LatchVerdict::kLatchedTrusted);
  EXPECT_EQ(latch.destination(), ep("203.0.113.101:52600"));
}

TEST_F(LatchTest, TheSameSdpAgainKeepsTheLatchedPeer) {
  ASSERT_EQ(latch.on_packet(ep("203.0.113.101:52500"), kT0), LatchVerdict::kLatchedTrusted);
  // A refresh (or the other side's re-INVITE) describing this leg unchanged.
  latch.reset_expected(ip("203.0.113.101"), ep("192.168.1.10:27910"), kT0 + seconds(30));
  EXPECT_EQ(latch.state(), LatchState::kLocked);
  EXPECT_EQ(latch.destination(), ep("203.0.113.101:52500"));
  EXPECT_EQ(latch.on_packet(ep("203.0.113.101:52600"), kT0 + seconds(31)), LatchVerdict::kDropLocked);
}

TEST_F(LatchTest, MediaHandoverLetsANewSourceTakeOver) {
  latch.set_media_handover(true);
  ASSERT_EQ(latch.on_packet(ep("203.0.113.101:52500"), kT0), LatchVerdict::kLatchedTrusted);
  EXPECT_EQ(latch.on_packet(ep("198.51.100.9:6000"), kT0 + seconds(10)), LatchVerdict::kHandover);
  EXPECT_EQ(latch.destination(), ep("198.51.100.9:6000"));
  EXPECT_EQ(latch.on_packet(ep("198.51.100.9:6000"), kT0 + seconds(11)), LatchVerdict::kAccept);
}

TEST(Latch, WithoutSignalingIpOnlyTheWindowApplies) {
  Latch latch{LatchConfig{seconds(1), false}, std::nullopt, std::nullopt, kT0};
  EXPECT_FALSE(latch.destination());
  EXPECT_EQ(latch.on_packet(ep("10.0.0.1:1000"), kT0 + milliseconds(500)), LatchVerdict::kLatchedForeign);
  EXPECT_EQ(latch.on_packet(ep("10.0.0.1:1000"), kT0 + seconds(2)), LatchVerdict::kAccept);
  EXPECT_EQ(latch.on_packet(ep("10.0.0.2:1000"), kT0 + seconds(2)), LatchVerdict::kDropLocked);
}

TEST(Latch, MappedAndPlainIpv4CompareEqual) {
  Latch latch{LatchConfig{}, ip("::ffff:203.0.113.101"), std::nullopt, kT0};
  EXPECT_EQ(latch.on_packet(ep("203.0.113.101:5000"), kT0), LatchVerdict::kLatchedTrusted);
}

// --- asymmetric ---

TEST_F(LatchTest, AsymmetricNeverLatchesAndForwardsEverySource) {
  latch.set_asymmetric(true);
  EXPECT_EQ(latch.on_packet(ep("203.0.113.101:52500"), kT0), LatchVerdict::kAcceptUnlatched);
  EXPECT_EQ(latch.on_packet(ep("198.51.100.7:4000"), kT0 + milliseconds(10)), LatchVerdict::kAcceptUnlatched);
  EXPECT_EQ(latch.on_packet(ep("198.51.100.8:4000"), kT0 + seconds(60)), LatchVerdict::kAcceptUnlatched);
  EXPECT_TRUE(accepted(LatchVerdict::kAcceptUnlatched));
  EXPECT_EQ(latch.state(), LatchState::kLearning);
  EXPECT_FALSE(latch.peer());
  EXPECT_EQ(latch.destination(), ep("192.168.1.10:27910"));  // always the SDP's
}

TEST_F(LatchTest, AsymmetricForgetsALearnedPeerAndOffLearnsAgain) {
  ASSERT_EQ(latch.on_packet(ep("203.0.113.101:52500"), kT0), LatchVerdict::kLatchedTrusted);
  latch.set_asymmetric(true);
  EXPECT_FALSE(latch.peer());
  EXPECT_EQ(latch.destination(), ep("192.168.1.10:27910"));
  latch.set_asymmetric(false);
  EXPECT_EQ(latch.on_packet(ep("203.0.113.101:52600"), kT0 + seconds(1)), LatchVerdict::kLatchedTrusted);
  EXPECT_EQ(latch.destination(), ep("203.0.113.101:52600"));
}

TEST_F(LatchTest, AsymmetricWithStrictSourceChecksTheIpOnly) {
  latch.set_asymmetric(true);
  latch.set_strict_source(true);
  EXPECT_EQ(latch.on_packet(ep("203.0.113.101:1"), kT0), LatchVerdict::kAcceptUnlatched);  // trusted IP
  EXPECT_EQ(latch.on_packet(ep("192.168.1.10:9"), kT0), LatchVerdict::kAcceptUnlatched);   // the SDP's IP
  EXPECT_EQ(latch.on_packet(ep("198.51.100.7:4000"), kT0), LatchVerdict::kDropStrict);
  EXPECT_FALSE(accepted(LatchVerdict::kDropStrict));
  EXPECT_FALSE(latch.peer());
}

// --- strict-source ---

TEST_F(LatchTest, StrictSourceRefusesAForeignLatchInsideTheWindow) {
  latch.set_strict_source(true);
  EXPECT_EQ(latch.on_packet(ep("198.51.100.7:4000"), kT0), LatchVerdict::kDropStrict);
  EXPECT_EQ(latch.state(), LatchState::kLearning);
  EXPECT_EQ(latch.destination(), ep("192.168.1.10:27910"));
  EXPECT_EQ(latch.on_packet(ep("203.0.113.101:52500"), kT0 + milliseconds(40)), LatchVerdict::kLatchedTrusted);
  EXPECT_EQ(latch.state(), LatchState::kLocked);
  EXPECT_EQ(latch.on_packet(ep("203.0.113.101:52502"), kT0 + milliseconds(60)), LatchVerdict::kDropLocked);
}

TEST_F(LatchTest, StrictSourceWaitsForTheTrustedIpPastTheWindow) {
  latch.set_strict_source(true);
  EXPECT_EQ(latch.on_packet(ep("198.51.100.7:4000"), kT0 + seconds(10)), LatchVerdict::kDropStrict);
  EXPECT_EQ(latch.on_packet(ep("203.0.113.101:52500"), kT0 + seconds(20)), LatchVerdict::kLatchedTrusted);
}

// With trust-address there is no signaling IP: the SDP's address is the one that may latch (from
// any port of that IP, as a NAT may have changed it), and it locks at once.
TEST(Latch, StrictSourceWithoutSignalingIpLatchesOnlyTheSdpIp) {
  LatchConfig config;
  config.strict_source = true;
  Latch latch{config, std::nullopt, ep("198.51.100.5:4000"), kT0};
  EXPECT_EQ(latch.on_packet(ep("10.0.0.1:4000"), kT0), LatchVerdict::kDropStrict);
  EXPECT_EQ(latch.on_packet(ep("198.51.100.5:4002"), kT0 + milliseconds(5)), LatchVerdict::kLatchedTrusted);
  EXPECT_EQ(latch.destination(), ep("198.51.100.5:4002"));
  EXPECT_EQ(latch.on_packet(ep("198.51.100.5:4000"), kT0 + milliseconds(6)), LatchVerdict::kDropLocked);
}

TEST_F(LatchTest, StrictSourceOverridesMediaHandover) {
  latch.set_media_handover(true);
  latch.set_strict_source(true);
  ASSERT_EQ(latch.on_packet(ep("203.0.113.101:52500"), kT0), LatchVerdict::kLatchedTrusted);
  EXPECT_EQ(latch.on_packet(ep("198.51.100.9:6000"), kT0 + seconds(10)), LatchVerdict::kDropLocked);
  EXPECT_EQ(latch.destination(), ep("203.0.113.101:52500"));
}

TEST_F(LatchTest, StrictSourceForgetsAForeignPeerButKeepsATrustedOne) {
  ASSERT_EQ(latch.on_packet(ep("198.51.100.7:4000"), kT0), LatchVerdict::kLatchedForeign);
  latch.set_strict_source(true);
  EXPECT_FALSE(latch.peer());
  EXPECT_EQ(latch.on_packet(ep("198.51.100.7:4000"), kT0 + milliseconds(10)), LatchVerdict::kDropStrict);
  ASSERT_EQ(latch.on_packet(ep("203.0.113.101:52500"), kT0 + milliseconds(20)), LatchVerdict::kLatchedTrusted);
  latch.set_strict_source(true);  // said again by a later command
  EXPECT_EQ(latch.peer(), ep("203.0.113.101:52500"));
}

}  // namespace
}  // namespace pinhole::media
