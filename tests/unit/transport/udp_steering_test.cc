// The reuseport steering program against the kernel: datagrams from many source ports (IPv4 and
// IPv6 loopback) reach exactly the socket udp_steering_worker() names, for 2 and 3 workers.
#include "transport/udp_steering.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <vector>

namespace pinhole::transport {
namespace {

struct Fd {
  int fd = -1;
  explicit Fd(int f) : fd(f) {}
  Fd(Fd&& o) noexcept : fd(o.fd) { o.fd = -1; }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd& operator=(Fd&&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

sockaddr_storage loopback(bool v6, uint16_t port, socklen_t& len) {
  sockaddr_storage ss{};
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_loopback;
    a->sin6_port = htons(port);
    len = sizeof(sockaddr_in6);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a->sin_port = htons(port);
    len = sizeof(sockaddr_in);
  }
  return ss;
}

uint16_t port_of(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
  return ss.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                                  : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
}

// Which of `group` holds a datagram now (-1: none), and drains it.
int holder(const std::vector<Fd>& group) {
  std::vector<pollfd> p;
  p.reserve(group.size());
  for (const auto& s : group) p.push_back(pollfd{s.fd, POLLIN, 0});
  if (::poll(p.data(), p.size(), 2000) <= 0) return -1;
  for (size_t i = 0; i < p.size(); ++i) {
    if ((p[i].revents & POLLIN) != 0) {
      char buf[64];
      (void)::recv(group[i].fd, buf, sizeof(buf), 0);
      return static_cast<int>(i);
    }
  }
  return -1;
}

void check_steering(bool v6, size_t workers) {
  SCOPED_TRACE(testing::Message() << (v6 ? "IPv6" : "IPv4") << ", " << workers << " workers");
  const int family = v6 ? AF_INET6 : AF_INET;
  std::vector<Fd> group;
  uint16_t port = 0;
  for (size_t i = 0; i < workers; ++i) {
    Fd s(::socket(family, SOCK_DGRAM, 0));
    ASSERT_GE(s.fd, 0);
    int one = 1;
    ASSERT_EQ(::setsockopt(s.fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)), 0);
    if (v6) ASSERT_EQ(::setsockopt(s.fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)), 0);
    socklen_t len = 0;
    auto addr = loopback(v6, port, len);
    if (::bind(s.fd, reinterpret_cast<sockaddr*>(&addr), len) != 0) {
      if (v6) GTEST_SKIP() << "no IPv6 loopback here";
      FAIL() << "bind: " << std::strerror(errno);
    }
    port = port_of(s.fd);
    group.push_back(std::move(s));
  }
  ASSERT_TRUE(attach_udp_steering(group.front().fd, workers, v6).ok());
  std::vector<size_t> per_worker(workers, 0);
  for (int n = 0; n < 40; ++n) {
    Fd client(::socket(family, SOCK_DGRAM, 0));
    ASSERT_GE(client.fd, 0);
    socklen_t len = 0;
    auto any = loopback(v6, 0, len);
    ASSERT_EQ(::bind(client.fd, reinterpret_cast<sockaddr*>(&any), len), 0);
    auto to = loopback(v6, port, len);
    ASSERT_EQ(::sendto(client.fd, "x", 1, 0, reinterpret_cast<sockaddr*>(&to), len), 1);
    auto source = net::Endpoint{v6 ? net::Address::parse("::1").value() : net::Address::parse("127.0.0.1").value(),
                                port_of(client.fd)};
    int got = holder(group);
    ASSERT_GE(got, 0) << "datagram lost";
    EXPECT_EQ(static_cast<uint32_t>(got), udp_steering_worker(source, workers)) << "source port " << source.port;
    ++per_worker[static_cast<size_t>(got)];
  }
  for (size_t w = 0; w < workers; ++w) EXPECT_GT(per_worker[w], 0U) << "worker " << w << " never chosen";
}

TEST(UdpSteering, KernelPicksTheWorkerWeComputeIPv4) {
  check_steering(false, 2);
  check_steering(false, 3);
}

TEST(UdpSteering, KernelPicksTheWorkerWeComputeIPv6) {
  check_steering(true, 2);
  check_steering(true, 3);
}

TEST(UdpSteering, OneWorkerIsAlwaysZero) {
  EXPECT_EQ(udp_steering_worker(net::Endpoint::parse("192.0.2.1:5060").value(), 1), 0U);
  EXPECT_TRUE(attach_udp_steering(-1, 1, false).ok());  // nothing to attach for one worker
}

}  // namespace
}  // namespace pinhole::transport
