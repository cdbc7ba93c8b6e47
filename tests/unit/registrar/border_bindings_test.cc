// BorderBindings on its own: what the upstream's 2xx teaches, when a refresh may be answered
// here, how a binding follows its phone to a new port, expiry and bounds.
#include "registrar/border_bindings.h"

#include <gtest/gtest.h>

namespace pinhole::registrar {
namespace {

using std::chrono::seconds;

net::Flow udp(std::string_view remote) { return {net::Transport::kUdp, 0, *net::Endpoint::parse(remote), 0}; }

const net::Flow kHome = udp("198.51.100.7:40000");
const net::Flow kHomeAfterReboot = udp("198.51.100.7:52000");
const net::Flow kElsewhere = udp("192.0.2.9:40000");

BorderRegister refresh(uint32_t cseq, uint32_t expires, const net::Flow& from = kHome, std::string key = "c1") {
  return BorderRegister{.aor = "sip:alice@example.com",
                        .call_id = "cid-1",
                        .cseq = cseq,
                        .star = false,
                        .contacts = {BorderContact{std::move(key), expires}},
                        .source = from,
                        .nat_udp = true};
}

class BorderBindingsTest : public ::testing::Test {
 protected:
  TimePoint now_ = TimePoint{} + std::chrono::hours(10);
  BorderBindings table_{BorderConfig{}};

  // The upstream granted `granted` for the request's single contact.
  std::vector<LocalGrant> upstream_ok(const BorderRegister& reg, uint32_t granted) {
    return table_.learn(reg, reg.source, {LocalGrant{reg.contacts[0].key, granted}}, now_);
  }
};

TEST_F(BorderBindingsTest, NatedPhoneIsToldTheLeaseNeverMoreThanGranted) {
  auto told = upstream_ok(refresh(1, 3600), 3600);
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0].expires, 60u);
  auto r2 = refresh(2, 3600);
  r2.contacts[0].key = "c2";
  EXPECT_EQ(upstream_ok(r2, 40)[0].expires, 40u);  // the upstream granted less than the lease
  auto pub = refresh(1, 3600, kHome, "c3");
  pub.nat_udp = false;
  EXPECT_EQ(upstream_ok(pub, 1800)[0].expires, 1800u);  // not NATed: no lease
}

TEST_F(BorderBindingsTest, RefreshesAreAnsweredHereUntilTheUpstreamNeedsOne) {
  upstream_ok(refresh(1, 300), 300);
  now_ += seconds(200);
  auto d = table_.decide(refresh(2, 300), now_);
  EXPECT_EQ(d.kind, BorderDecision::Kind::kAnswerLocally);
  ASSERT_EQ(d.grants.size(), 1u);
  EXPECT_EQ(d.grants[0].expires, 60u);
  EXPECT_FALSE(d.rebinding);
  // 300 - 211 = 89 s left: within lease + margin (90 s), the next one could arrive too late.
  now_ += seconds(11);
  EXPECT_EQ(table_.decide(refresh(3, 300), now_).kind, BorderDecision::Kind::kForward);
}

TEST_F(BorderBindingsTest, SameCseqTwiceIsNotAnsweredTwice) {
  upstream_ok(refresh(1, 3600), 3600);
  EXPECT_EQ(table_.decide(refresh(2, 3600), now_).kind, BorderDecision::Kind::kAnswerLocally);
  EXPECT_EQ(table_.decide(refresh(2, 3600), now_).kind, BorderDecision::Kind::kForward);
}

TEST_F(BorderBindingsTest, RemovalsQueriesAndUnknownContactsGoUpstream) {
  upstream_ok(refresh(1, 3600), 3600);
  EXPECT_EQ(table_.decide(refresh(2, 0), now_).kind, BorderDecision::Kind::kForward);
  auto query = refresh(3, 3600);
  query.contacts.clear();
  EXPECT_EQ(table_.decide(query, now_).kind, BorderDecision::Kind::kForward);
  EXPECT_EQ(table_.decide(refresh(4, 3600, kHome, "new-contact"), now_).kind, BorderDecision::Kind::kForward);
  auto star = refresh(5, 0);
  star.star = true;
  star.contacts.clear();
  EXPECT_EQ(table_.decide(star, now_).kind, BorderDecision::Kind::kForward);
  table_.learn(star, kHome, {}, now_);
  EXPECT_EQ(table_.size(), 0u);
}

TEST_F(BorderBindingsTest, AdoptedLeaseIsAskedUpstreamAsTheOriginalInterval) {
  upstream_ok(refresh(1, 1800), 1800);
  now_ += seconds(1750);
  auto d = table_.decide(refresh(2, 60), now_);
  EXPECT_EQ(d.kind, BorderDecision::Kind::kForward);
  EXPECT_EQ(d.upstream_expires, std::optional<uint32_t>(1800));
  // The upstream granted the original again; the phone keeps its lease and the ask is kept.
  upstream_ok(refresh(2, 60), 1800);
  auto list = table_.list(now_);
  ASSERT_EQ(list.size(), 1u);
  EXPECT_EQ(list[0].asked_expires, 1800u);
  EXPECT_EQ(list[0].upstream_remaining, seconds(1800));
}

TEST_F(BorderBindingsTest, RebindingMovesTheBindingAndOldFlowsFollow) {
  upstream_ok(refresh(1, 3600), 3600);
  auto d = table_.decide(refresh(2, 3600, kHomeAfterReboot), now_);
  EXPECT_EQ(d.kind, BorderDecision::Kind::kAnswerLocally);
  EXPECT_TRUE(d.rebinding);
  EXPECT_EQ(table_.current_flow(kHome), kHomeAfterReboot);  // the upstream's Path names kHome
  EXPECT_EQ(table_.current_flow(kHomeAfterReboot), kHomeAfterReboot);
  EXPECT_EQ(table_.current_flow(kElsewhere), std::nullopt);
  // The next refresh comes from the new port like any other.
  d = table_.decide(refresh(3, 3600, kHomeAfterReboot), now_);
  EXPECT_EQ(d.kind, BorderDecision::Kind::kAnswerLocally);
  EXPECT_FALSE(d.rebinding);
  EXPECT_EQ(table_.list(now_)[0].rebindings, 1u);
}

TEST_F(BorderBindingsTest, AnotherAddressIsNeverAbsorbed) {
  upstream_ok(refresh(1, 3600), 3600);
  EXPECT_EQ(table_.decide(refresh(2, 3600, kElsewhere), now_).kind, BorderDecision::Kind::kForward);
  EXPECT_EQ(table_.current_flow(kHome), kHome);
}

TEST_F(BorderBindingsTest, RebindingAbsorptionCanBeTurnedOff) {
  BorderBindings strict{BorderConfig{.absorb_rebinding = false}};
  auto r = refresh(1, 3600);
  strict.learn(r, kHome, {LocalGrant{"c1", 3600}}, now_);
  EXPECT_EQ(strict.decide(refresh(2, 3600, kHomeAfterReboot), now_).kind, BorderDecision::Kind::kForward);
  EXPECT_EQ(strict.decide(refresh(3, 3600), now_).kind, BorderDecision::Kind::kAnswerLocally);
}

TEST_F(BorderBindingsTest, AFlappingNatKeepsOnlyTheRecentFlows) {
  upstream_ok(refresh(1, 3600), 3600);
  std::vector<net::Flow> flows;
  for (uint32_t i = 0; i < 8; ++i) {
    flows.push_back(udp("198.51.100.7:" + std::to_string(50000 + i)));
    ASSERT_EQ(table_.decide(refresh(2 + i, 3600, flows.back()), now_).kind, BorderDecision::Kind::kAnswerLocally);
  }
  EXPECT_EQ(table_.current_flow(kHome), flows.back());     // the Path's flow always follows
  EXPECT_EQ(table_.current_flow(flows[6]), flows.back());  // a recent one too
  EXPECT_EQ(table_.current_flow(flows[0]), std::nullopt);  // long gone
}

TEST_F(BorderBindingsTest, UpstreamRefreshFromTheNewFlowResetsThePath) {
  upstream_ok(refresh(1, 3600), 3600);
  table_.decide(refresh(2, 3600, kHomeAfterReboot), now_);
  // A later upstream refresh carries a Path naming the new flow.
  auto r = refresh(3, 3600, kHomeAfterReboot);
  table_.learn(r, kHomeAfterReboot, {LocalGrant{"c1", 3600}}, now_);
  EXPECT_EQ(table_.current_flow(kHome), std::nullopt);
  EXPECT_EQ(table_.current_flow(kHomeAfterReboot), kHomeAfterReboot);
}

TEST_F(BorderBindingsTest, TwoLinesOnOneFlowKeepTheirOwnIndex) {
  upstream_ok(refresh(1, 3600, kHome, "line1"), 3600);
  upstream_ok(refresh(1, 3600, kHome, "line2"), 3600);
  auto gone = refresh(2, 0, kHome, "line2");
  table_.learn(gone, kHome, {}, now_);  // line2 unregistered
  EXPECT_EQ(table_.size(), 1u);
  // line1 still routes (the flow index was not dropped with line2).
  auto d = table_.decide(refresh(3, 3600, kHomeAfterReboot, "line1"), now_);
  EXPECT_TRUE(d.rebinding);
  EXPECT_EQ(table_.current_flow(kHome), kHomeAfterReboot);
}

TEST_F(BorderBindingsTest, ExpiryDropsWhatTheUpstreamLetLapse) {
  upstream_ok(refresh(1, 120), 120);
  upstream_ok(refresh(1, 3600, kHome, "c2"), 3600);
  EXPECT_EQ(table_.expire(now_ + seconds(119)), 0u);
  EXPECT_EQ(table_.expire(now_ + seconds(120)), 1u);
  EXPECT_EQ(table_.size(), 1u);
}

TEST_F(BorderBindingsTest, TableIsBounded) {
  BorderBindings small{BorderConfig{.max_bindings = 1}};
  auto a = refresh(1, 3600, kHome, "a");
  auto b = refresh(1, 3600, kHome, "b");
  small.learn(a, kHome, {LocalGrant{"a", 3600}}, now_);
  auto told = small.learn(b, kHome, {LocalGrant{"b", 3600}}, now_);
  ASSERT_EQ(told.size(), 1u);
  EXPECT_EQ(told[0].expires, 3600u);  // not tracked: no lease it could not honour
  EXPECT_EQ(small.size(), 1u);
}

}  // namespace
}  // namespace pinhole::registrar
