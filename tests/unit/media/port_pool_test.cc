// Port pool: even/odd pairs, rtcp-mux, exhaustion (503), release and reuse, bind-failure skip.
#include "media/port_pool.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <vector>

namespace pinhole::media {
namespace {

net::Address loopback() { return *net::Address::parse("127.0.0.1"); }

// A range unlikely to collide with parallel test runs; bind failures are skipped anyway.
uint16_t base_port(uint16_t offset) { return static_cast<uint16_t>(30000 + (::getpid() % 500) * 40 + offset); }

uint16_t local_port(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  EXPECT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len), 0);
  return net::Endpoint::from_sockaddr(ss, len)->port;
}

TEST(PortPool, EvenRtpOddRtcpBoundOnThosePorts) {
  uint16_t lo = base_port(1);  // odd lower bound: rounded up to even
  PortPool pool(loopback(), lo, static_cast<uint16_t>(lo + 9));
  EXPECT_EQ(pool.capacity(), 4U);
  auto lease = pool.allocate(false);
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease->rtp_port() % 2, 0);
  EXPECT_GE(lease->rtp_port(), lo);
  EXPECT_EQ(lease->rtcp_port(), lease->rtp_port() + 1);
  EXPECT_FALSE(lease->rtcp_mux());
  EXPECT_EQ(local_port(lease->rtp_fd()), lease->rtp_port());
  EXPECT_EQ(local_port(lease->rtcp_fd()), lease->rtcp_port());
  EXPECT_EQ(pool.free_count(), 3U);
}

TEST(PortPool, RtcpMuxBindsOnlyTheEvenPort) {
  uint16_t lo = base_port(10);
  PortPool pool(loopback(), lo, static_cast<uint16_t>(lo + 3));
  auto lease = pool.allocate(true);
  ASSERT_TRUE(lease.ok());
  EXPECT_TRUE(lease->rtcp_mux());
  EXPECT_EQ(lease->rtcp_fd(), -1);
  EXPECT_EQ(lease->rtcp_port(), 0);
  EXPECT_EQ(local_port(lease->rtp_fd()), lease->rtp_port());
}

TEST(PortPool, ExhaustionIs503AndCounted) {
  uint16_t lo = base_port(14);
  PortPool pool(loopback(), lo, static_cast<uint16_t>(lo + 5));
  ASSERT_EQ(pool.capacity(), 3U);
  std::vector<PortLease> leases;
  std::set<uint16_t> ports;
  while (true) {
    auto lease = pool.allocate(false);
    if (!lease) {
      EXPECT_EQ(lease.error().status, 503);
      break;
    }
    EXPECT_TRUE(ports.insert(lease->rtp_port()).second) << "port handed out twice";
    leases.push_back(std::move(*lease));
  }
  EXPECT_EQ(leases.size() + pool.bind_failures(), 3U);
  EXPECT_EQ(pool.exhausted(), 1U);
  EXPECT_EQ(pool.free_count(), pool.bind_failures());
}

TEST(PortPool, ReleaseMakesThePairReusable) {
  uint16_t lo = base_port(20);
  PortPool pool(loopback(), lo, static_cast<uint16_t>(lo + 1));
  ASSERT_EQ(pool.capacity(), 1U);
  uint16_t port = 0;
  {
    auto lease = pool.allocate(false);
    ASSERT_TRUE(lease.ok());
    port = lease->rtp_port();
    EXPECT_FALSE(pool.allocate(false).ok());
  }  // lease destroyed: sockets closed, pair back
  EXPECT_EQ(pool.free_count(), 1U);
  auto again = pool.allocate(false);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->rtp_port(), port);
  again->reset();
  EXPECT_EQ(pool.free_count(), 1U);
  again->reset();  // second reset is a no-op, never a double release
  EXPECT_EQ(pool.free_count(), 1U);
}

TEST(PortPool, MovedLeaseReleasesOnce) {
  uint16_t lo = base_port(22);
  PortPool pool(loopback(), lo, static_cast<uint16_t>(lo + 3));
  auto a = pool.allocate(false);
  ASSERT_TRUE(a.ok());
  PortLease moved = std::move(*a);
  EXPECT_EQ(pool.free_count(), 1U);
  moved = PortLease{};
  EXPECT_EQ(pool.free_count(), 2U);
}

TEST(PortPool, PairHeldBySomeoneElseIsSkippedAndCounted) {
  // Occupy the RTCP half of the first pair of a range; a range whose port is already taken by
  // someone else is replaced by another one (bounded), never skipped.
  uint16_t lo = 0;
  uint16_t first = 0;
  int blocker = -1;
  for (uint16_t attempt = 0; attempt < 15 && blocker < 0; ++attempt) {
    lo = static_cast<uint16_t>(base_port(26) + 1000 * attempt);
    first = static_cast<uint16_t>(lo + (lo % 2));
    blocker = ::socket(AF_INET, SOCK_DGRAM, 0);
    ASSERT_GE(blocker, 0);
    sockaddr_storage ss{};
    socklen_t len = net::Endpoint{loopback(), static_cast<uint16_t>(first + 1)}.to_sockaddr(ss);
    if (::bind(blocker, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
      ::close(blocker);
      blocker = -1;
    }
  }
  ASSERT_GE(blocker, 0) << "no free test port found to block";
  PortPool pool(loopback(), lo, static_cast<uint16_t>(lo + 3));  // two pairs
  auto lease = pool.allocate(false);
  ASSERT_TRUE(lease.ok());
  EXPECT_NE(lease->rtp_port(), first);
  EXPECT_GE(pool.bind_failures(), 1U);
  // The skipped pair stays in the pool: with the blocker gone it is handed out again.
  ::close(blocker);
  auto second = pool.allocate(false);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->rtp_port(), first);
}

TEST(PortPool, EmptyRangeAlways503) {
  PortPool pool(loopback(), 40001, 40001);
  EXPECT_EQ(pool.capacity(), 0U);
  auto lease = pool.allocate(true);
  ASSERT_FALSE(lease.ok());
  EXPECT_EQ(lease.error().status, 503);
}

}  // namespace
}  // namespace pinhole::media
