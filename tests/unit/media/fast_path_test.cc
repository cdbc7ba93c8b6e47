// The kernel fast path (media/fast_path.h) against the real kernel: each test loads the program
// into a network namespace of its own (nothing touches the host's interfaces), attaches it, and
// sends real datagrams between plain UDP sockets standing in for the peers and the relay ports.
// Needs root (CAP_BPF, CAP_NET_ADMIN, unshare); CI runs as root, so there a failure to load is a
// failure, never a skip.
#include "media/fast_path.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

// <linux/ethtool.h> after glibc's <net/if.h> (it includes <linux/if.h>).
#include <linux/ethtool.h>
#include <linux/sockios.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "media/port_pool.h"
#include "media/relay_session.h"

namespace pinhole::media {
namespace {

constexpr int kArriveMs = 1000;  // a datagram that must arrive
constexpr int kAbsentMs = 100;   // one that must not

// Runs `body` on a thread of its own that first moves into a fresh network namespace (only that
// thread: unshare(CLONE_NEWNET) is per task), so the attachment, the sockets and any sysctl
// written there vanish with it.
void in_new_netns(const std::function<void()>& body) {
  std::thread thread([&] {
    if (unshare(CLONE_NEWNET) != 0) {
      ADD_FAILURE() << "unshare(CLONE_NEWNET): " << std::strerror(errno);
      return;
    }
    body();
  });
  thread.join();
}

bool set_up(const char* name) {
  UniqueFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq req{};
  std::strncpy(req.ifr_name, name, sizeof(req.ifr_name) - 1);
  if (ioctl(sock.get(), SIOCGIFFLAGS, &req) != 0) return false;
  req.ifr_flags = static_cast<short>(req.ifr_flags | IFF_UP);
  return ioctl(sock.get(), SIOCSIFFLAGS, &req) == 0;
}

// /proc/sys/net follows the calling thread's namespace.
bool write_sysctl(const std::string& path, const char* value) {
  std::ofstream out("/proc/sys/net/" + path);
  out << value;
  out.flush();
  return static_cast<bool>(out);
}

// lo up, with forwarding off as on a default host: the fast path must not depend on it.
void set_up_loopback() {
  ASSERT_TRUE(set_up("lo")) << std::strerror(errno);
  ASSERT_TRUE(write_sysctl("ipv4/conf/lo/forwarding", "0"));
  ASSERT_TRUE(write_sysctl("ipv6/conf/lo/forwarding", "0"));
}

struct Socket {
  UniqueFd fd;
  net::Endpoint local;
};

Socket bind_udp(const char* address) {
  Socket s;
  net::Endpoint want{net::Address::parse(address).value(), 0};
  sockaddr_storage addr{};
  socklen_t length = want.to_sockaddr(addr);
  s.fd.reset(socket(addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  EXPECT_TRUE(s.fd.valid()) << std::strerror(errno);
  EXPECT_EQ(bind(s.fd.get(), reinterpret_cast<sockaddr*>(&addr), length), 0) << std::strerror(errno);
  length = sizeof(addr);
  EXPECT_EQ(getsockname(s.fd.get(), reinterpret_cast<sockaddr*>(&addr), &length), 0);
  Result<net::Endpoint> bound = net::Endpoint::from_sockaddr(addr, length);
  EXPECT_TRUE(bound.ok());
  if (bound.ok()) s.local = *bound;
  return s;
}

void send_to(const Socket& from, const net::Endpoint& to, const std::vector<uint8_t>& data) {
  sockaddr_storage addr{};
  socklen_t length = to.to_sockaddr(addr);
  ASSERT_EQ(sendto(from.fd.get(), data.data(), data.size(), 0, reinterpret_cast<sockaddr*>(&addr), length),
            static_cast<ssize_t>(data.size()))
      << std::strerror(errno);
}

struct Datagram {
  std::vector<uint8_t> data;
  net::Endpoint from;
  int ttl = -1;  // TTL / hop limit it arrived with, when the socket asked for it (report_ttl)
};

// Makes `s` report each datagram's TTL / hop limit, and `sender` send with `ttl`.
void report_ttl(const Socket& s) {
  int on = 1;
  bool v4 = s.local.address.is_v4();
  ASSERT_EQ(
      setsockopt(s.fd.get(), v4 ? IPPROTO_IP : IPPROTO_IPV6, v4 ? IP_RECVTTL : IPV6_RECVHOPLIMIT, &on, sizeof(on)), 0);
}
void send_with_ttl(const Socket& sender, int ttl) {
  bool v4 = sender.local.address.is_v4();
  ASSERT_EQ(
      setsockopt(sender.fd.get(), v4 ? IPPROTO_IP : IPPROTO_IPV6, v4 ? IP_TTL : IPV6_UNICAST_HOPS, &ttl, sizeof(ttl)),
      0);
}

std::optional<Datagram> receive(const Socket& s, int timeout_ms) {
  pollfd p{s.fd.get(), POLLIN, 0};
  if (poll(&p, 1, timeout_ms) != 1) return std::nullopt;
  std::vector<uint8_t> buffer(2048);
  sockaddr_storage addr{};
  std::array<char, 128> control{};
  iovec iov{buffer.data(), buffer.size()};
  msghdr msg{};
  msg.msg_name = &addr;
  msg.msg_namelen = sizeof(addr);
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control.data();
  msg.msg_controllen = control.size();
  ssize_t n = recvmsg(s.fd.get(), &msg, 0);
  if (n < 0) return std::nullopt;
  buffer.resize(static_cast<size_t>(n));
  Result<net::Endpoint> from = net::Endpoint::from_sockaddr(addr, msg.msg_namelen);
  if (!from.ok()) return std::nullopt;
  Datagram d{std::move(buffer), *from};
  for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if ((c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TTL) ||
        (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_HOPLIMIT)) {
      std::memcpy(&d.ttl, CMSG_DATA(c), sizeof(d.ttl));
    }
  }
  return d;
}

// An RTP packet (version 2, PT 0) whose payload depends on the sequence number, so a packet that
// arrives with another one's body is noticed.
std::vector<uint8_t> rtp(uint16_t seq, size_t payload = 20) {
  std::vector<uint8_t> p(12 + payload);
  p[0] = 0x80;
  p[1] = 0;
  p[2] = static_cast<uint8_t>(seq >> 8);
  p[3] = static_cast<uint8_t>(seq & 0xff);
  for (size_t i = 4; i < p.size(); ++i) p[i] = static_cast<uint8_t>(size_t{seq} * 7 + i);
  return p;
}

// An RTCP receiver report without report blocks (8 bytes): version 2, PT 201, length 1.
std::vector<uint8_t> rtcp_rr() { return {0x80, 201, 0, 1, 0x12, 0x34, 0x56, 0x78}; }

FastPathRule rule_for(const Socket& a, const Socket& r1, const Socket& r2, const Socket& b) {
  FastPathRule rule;
  rule.local = r1.local;
  rule.source = a.local;
  rule.out_local = r2.local;
  rule.destination = b.local;
  return rule;
}

std::unique_ptr<FastPath> open_on_lo() {
  FastPathConfig config;
  config.interfaces = {"lo"};
  Result<std::unique_ptr<FastPath>> fp = FastPath::open(config);
  EXPECT_TRUE(fp.ok()) << (fp.ok() ? "" : fp.error().what);
  if (!fp.ok()) return nullptr;
  EXPECT_EQ((*fp)->attached(), std::vector<std::string>{"lo"});
  EXPECT_NE((*fp)->program_id(), 0U);
  return std::move(*fp);
}

// The fast path on a fresh loopback and the four sockets of one rule: phone A, the relay's
// sockets R1 (A's leg) and R2 (B's leg), phone B.
struct LoopbackRule {
  std::unique_ptr<FastPath> fp;
  Socket a;
  Socket r1;
  Socket r2;
  Socket b;
};

LoopbackRule loopback_rule(const char* address) {
  set_up_loopback();
  std::unique_ptr<FastPath> fp = open_on_lo();
  return LoopbackRule{std::move(fp), bind_udp(address), bind_udp(address), bind_udp(address), bind_udp(address)};
}

// The tracker state a SeqTracker reports, in the form FastPathSeqState carries it.
void expect_same_tracking(const FastPathSeqState& kernel, const SeqTracker& user) {
  EXPECT_EQ(kernel.started, user.started());
  EXPECT_EQ(kernel.first, user.first());
  EXPECT_EQ(static_cast<uint16_t>(kernel.max_ext & 0xffff), user.highest());
  uint64_t expected = kernel.started ? kernel.max_ext - kernel.base_ext + 1 : 0;
  EXPECT_EQ(expected, user.expected());
  EXPECT_EQ(kernel.received, user.received());
  EXPECT_EQ(expected > kernel.received ? expected - kernel.received : 0, user.lost());
}

class FastPathTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) GTEST_SKIP() << "needs root (CAP_BPF, CAP_NET_ADMIN, unshare); CI runs as root";
  }
};

// Sends `packet` from `from` to `to` and checks it comes out at `b` from `r2`, intact, and not at
// `r1`.
void expect_forwarded(const Socket& from, const Socket& r1, const Socket& r2, const Socket& b,
                      const std::vector<uint8_t>& packet, int ttl = -1) {
  send_to(from, r1.local, packet);
  std::optional<Datagram> got = receive(b, kArriveMs);
  ASSERT_TRUE(got.has_value()) << "not forwarded";
  EXPECT_EQ(got->from, r2.local);
  EXPECT_EQ(got->data, packet);
  if (ttl >= 0) {
    EXPECT_EQ(got->ttl, ttl);
  }
  EXPECT_FALSE(receive(r1, kAbsentMs).has_value()) << "also reached the relay socket";
}

// Sends `packet` and checks that it reaches the relay socket `r1` unchanged and not `b`.
void expect_to_user_space(const Socket& from, const Socket& r1, const Socket& b, const std::vector<uint8_t>& packet) {
  send_to(from, r1.local, packet);
  std::optional<Datagram> got = receive(r1, kArriveMs);
  ASSERT_TRUE(got.has_value()) << "did not reach the relay socket";
  EXPECT_EQ(got->from, from.local);
  EXPECT_EQ(got->data, packet);
  EXPECT_FALSE(receive(b, kAbsentMs).has_value()) << "forwarded by the kernel";
}

void forwards_latched_rtp(const char* address) {
  LoopbackRule setup = loopback_rule(address);
  ASSERT_NE(setup.fp, nullptr);
  auto& [fp, a, r1, r2, b] = setup;
  ASSERT_TRUE(fp->install(rule_for(a, r1, r2, b)).ok());
  EXPECT_EQ(fp->rule_count(), 1U);
  FastPathCounters before = fp->counters();
  // The packet leaves as a fresh send from the relay would: TTL / hop limit 64, whatever it
  // arrived with (loopback itself does not touch it).
  report_ttl(b);
  send_with_ttl(a, 5);

  // A gap (103 lost), a late packet (103 after 105) and a duplicate; sizes vary.
  const std::vector<uint16_t> seqs = {100, 101, 102, 104, 105, 103, 106, 106, 110};
  SeqTracker tracker;
  uint64_t bytes = 0;
  for (size_t i = 0; i < seqs.size(); ++i) {
    std::vector<uint8_t> packet = rtp(seqs[i], 20 + i);
    expect_forwarded(a, r1, r2, b, packet, /*ttl=*/64);
    tracker.on_packet(seqs[i]);
    bytes += packet.size();
  }
  Result<FastPathRuleStats> stats = fp->read(r1.local, a.local);
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ(stats->packets, seqs.size());
  EXPECT_EQ(stats->bytes, bytes);
  EXPECT_EQ(stats->last_seq, seqs.back());
  expect_same_tracking(stats->seq, tracker);
  EXPECT_EQ(fp->counters().forwarded - before.forwarded, seqs.size());
  EXPECT_EQ(fp->counters().passed, before.passed);
}

TEST_F(FastPathTest, ForwardsLatchedRtpOverIpv4) {
  in_new_netns([] { forwards_latched_rtp("127.0.0.1"); });
}

TEST_F(FastPathTest, ForwardsLatchedRtpOverIpv6) {
  in_new_netns([] { forwards_latched_rtp("::1"); });
}

TEST_F(FastPathTest, OtherSourcesAndMalformedPacketsGoToUserSpace) {
  in_new_netns([] {
    LoopbackRule setup = loopback_rule("127.0.0.1");
    ASSERT_NE(setup.fp, nullptr);
    auto& [fp, a, r1, r2, b] = setup;
    Socket a2 = bind_udp("127.0.0.1");
    ASSERT_TRUE(fp->install(rule_for(a, r1, r2, b)).ok());

    expect_to_user_space(a2, r1, b, rtp(1));  // not the latched source
    std::vector<uint8_t> version0 = rtp(2);
    version0[0] = 0x00;
    expect_to_user_space(a, r1, b, version0);
    expect_to_user_space(a, r1, b, {0x80, 0, 0, 3});  // shorter than an RTP header
    expect_to_user_space(a, r1, b, rtcp_rr());        // 8 bytes: RTCP size, but an RTP rule

    Result<FastPathRuleStats> stats = fp->read(r1.local, a.local);
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->packets, 0U);
    EXPECT_FALSE(stats->seq.started);
    EXPECT_EQ(fp->counters().forwarded, 0U);
    // And the rule still works for the latched source.
    expect_forwarded(a, r1, r2, b, rtp(4));
  });
}

TEST_F(FastPathTest, RtcpOnMuxedPortGoesToUserSpace) {
  in_new_netns([] {
    LoopbackRule setup = loopback_rule("127.0.0.1");
    ASSERT_NE(setup.fp, nullptr);
    auto& [fp, a, r1, r2, b] = setup;
    FastPathRule rule = rule_for(a, r1, r2, b);
    rule.rtcp_mux = true;
    ASSERT_TRUE(fp->install(rule).ok());

    std::vector<uint8_t> sender_report(28, 0);
    sender_report[0] = 0x80;
    sender_report[1] = 200;
    sender_report[3] = 6;
    expect_to_user_space(a, r1, b, sender_report);
    expect_forwarded(a, r1, r2, b, rtp(7));
    // Marker bit set with PT 72..95 would read as 200..223: RFC 5761 §4 avoids those PTs, and
    // PT 96 with the marker (byte 224) is RTP.
    std::vector<uint8_t> marked = rtp(8);
    marked[1] = 0x80 | 96;
    expect_forwarded(a, r1, r2, b, marked);
    EXPECT_EQ(fp->read(r1.local, a.local)->packets, 2U);
  });
}

TEST_F(FastPathTest, RtcpRuleForwardsRtcp) {
  in_new_netns([] {
    LoopbackRule setup = loopback_rule("127.0.0.1");
    ASSERT_NE(setup.fp, nullptr);
    auto& [fp, a, r1, r2, b] = setup;
    FastPathRule rule = rule_for(a, r1, r2, b);
    rule.rtp = false;
    ASSERT_TRUE(fp->install(rule).ok());

    expect_forwarded(a, r1, r2, b, rtcp_rr());
    expect_to_user_space(a, r1, b, {0x80, 201, 0, 0});  // shorter than an RTCP header
    Result<FastPathRuleStats> stats = fp->read(r1.local, a.local);
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->packets, 1U);
    EXPECT_EQ(stats->bytes, rtcp_rr().size());
    EXPECT_FALSE(stats->seq.started);  // RTCP carries no RTP sequence number
  });
}

TEST_F(FastPathTest, RemoveReturnsFinalStatsAndStopsForwarding) {
  in_new_netns([] {
    LoopbackRule setup = loopback_rule("127.0.0.1");
    ASSERT_NE(setup.fp, nullptr);
    auto& [fp, a, r1, r2, b] = setup;
    EXPECT_EQ(fp->rule_count(), 0U);
    ASSERT_TRUE(fp->install(rule_for(a, r1, r2, b)).ok());
    ASSERT_TRUE(fp->install(rule_for(a, r1, r2, b)).ok());  // a replace is not a second rule
    EXPECT_EQ(fp->rule_count(), 1U);
    expect_forwarded(a, r1, r2, b, rtp(50));
    expect_forwarded(a, r1, r2, b, rtp(51));

    Result<FastPathRuleStats> last = fp->remove(r1.local, a.local);
    ASSERT_TRUE(last.ok());
    EXPECT_EQ(last->packets, 2U);
    EXPECT_EQ(last->last_seq, 51);
    EXPECT_EQ(fp->rule_count(), 0U);
    expect_to_user_space(a, r1, b, rtp(52));

    Result<FastPathRuleStats> again = fp->remove(r1.local, a.local);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().status, 404);
    EXPECT_EQ(fp->rule_count(), 0U);
    Result<FastPathRuleStats> missing = fp->read(r1.local, a.local);
    ASSERT_FALSE(missing.ok());
    EXPECT_EQ(missing.error().status, 404);
  });
}

TEST_F(FastPathTest, ReinstallContinuesTheSequenceTracker) {
  in_new_netns([] {
    LoopbackRule setup = loopback_rule("127.0.0.1");
    ASSERT_NE(setup.fp, nullptr);
    auto& [fp, a, r1, r2, b] = setup;
    Socket b2 = bind_udp("127.0.0.1");
    SeqTracker tracker;
    ASSERT_TRUE(fp->install(rule_for(a, r1, r2, b)).ok());
    // Across the 16-bit wrap, with a gap.
    for (uint16_t seq : {uint16_t{65533}, uint16_t{65534}, uint16_t{65535}}) {
      expect_forwarded(a, r1, r2, b, rtp(seq));
      tracker.on_packet(seq);
    }
    // The other leg's peer moved: user space replaces the rule, handing the tracker over.
    Result<FastPathRuleStats> handed = fp->remove(r1.local, a.local);
    ASSERT_TRUE(handed.ok());
    FastPathRule moved = rule_for(a, r1, r2, b2);
    moved.seq = handed->seq;
    ASSERT_TRUE(fp->install(moved).ok());
    for (uint16_t seq : {uint16_t{0}, uint16_t{2}, uint16_t{1}, uint16_t{3}}) {
      expect_forwarded(a, r1, r2, b2, rtp(seq));
      tracker.on_packet(seq);
    }
    Result<FastPathRuleStats> stats = fp->read(r1.local, a.local);
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->packets, 4U);  // since the replace
    expect_same_tracking(stats->seq, tracker);
  });
}

TEST_F(FastPathTest, RuleEndpointsMustShareAFamily) {
  in_new_netns([] {
    LoopbackRule setup = loopback_rule("127.0.0.1");
    ASSERT_NE(setup.fp, nullptr);
    auto& [fp, a, r1, r2, b] = setup;
    net::Endpoint v6{net::Address::parse("::1").value(), 4000};

    FastPathRule rule = rule_for(a, r1, r2, b);
    rule.destination = v6;
    Status mixed = fp->install(rule);
    ASSERT_FALSE(mixed.ok());
    EXPECT_EQ(mixed.error().status, 400);
    rule = rule_for(a, r1, r2, b);
    rule.source = v6;
    mixed = fp->install(rule);
    ASSERT_FALSE(mixed.ok());
    EXPECT_EQ(mixed.error().status, 400);
    EXPECT_EQ(fp->rule_count(), 0U);
    EXPECT_EQ(fp->read(r1.local, v6).error().status, 400);

    // IPv4-mapped endpoints (a dual-stack socket's view of an IPv4 peer) count as IPv4, and the
    // rule they make matches plain IPv4 packets.
    rule = rule_for(a, r1, r2, b);
    rule.source.address = a.local.address.v4_mapped();
    rule.destination.address = b.local.address.v4_mapped();
    ASSERT_TRUE(fp->install(rule).ok());
    expect_forwarded(a, r1, r2, b, rtp(9));
    EXPECT_EQ(fp->read(r1.local, a.local)->packets, 1U);
  });
}

TEST_F(FastPathTest, FullMapRefusesNewRulesButReplacesExistingOnes) {
  in_new_netns([] {
    set_up_loopback();
    FastPathConfig config;
    config.interfaces = {"lo"};
    config.max_rules = 2;
    Result<std::unique_ptr<FastPath>> opened = FastPath::open(config);
    ASSERT_TRUE(opened.ok()) << opened.error().what;
    FastPath& fp = **opened;
    Socket r1 = bind_udp("127.0.0.1");
    Socket r2 = bind_udp("127.0.0.1");
    Socket b = bind_udp("127.0.0.1");
    std::array<Socket, 3> sources = {bind_udp("127.0.0.1"), bind_udp("127.0.0.1"), bind_udp("127.0.0.1")};
    ASSERT_TRUE(fp.install(rule_for(sources[0], r1, r2, b)).ok());
    ASSERT_TRUE(fp.install(rule_for(sources[1], r1, r2, b)).ok());
    Status full = fp.install(rule_for(sources[2], r1, r2, b));
    ASSERT_FALSE(full.ok());
    EXPECT_EQ(full.error().status, 503);
    EXPECT_EQ(fp.rule_count(), 2U);
    EXPECT_TRUE(fp.install(rule_for(sources[1], r1, r2, b)).ok());  // a replace needs no new slot
    EXPECT_EQ(fp.rule_count(), 2U);
    expect_to_user_space(sources[2], r1, b, rtp(1));
    expect_forwarded(sources[1], r1, r2, b, rtp(2));
  });
}

TEST_F(FastPathTest, OpenFailsWithoutAnyInterface) {
  in_new_netns([] {
    FastPathConfig config;
    config.interfaces = {"pinhole-none0"};
    Result<std::unique_ptr<FastPath>> fp = FastPath::open(config);
    ASSERT_FALSE(fp.ok());
    EXPECT_EQ(fp.error().status, 503);
  });
}

// --- Redirect over a veth pair, with checksums the receiving kernel verifies -----------------
//
// Loopback cannot show that the rewritten checksums are right: lo's TX checksum offload cannot
// be turned off (ETHTOOL_STXCSUM: EOPNOTSUPP), so its UDP packets are CHECKSUM_PARTIAL and the
// receiver trusts them. A veth pair between two namespaces can: with TX offload off on the
// sender's end, packets carry a full checksum in the header, which the receiver checks.
//
//   peers namespace: A and B on 10.77.0.1 (vx)  ==veth==  relay namespace: R1, R2 on 10.77.0.2 (vy)
//
// A sends to R1; the program on vy's ingress rewrites to R2 -> B and redirects out of vy (the
// route looked up at install, the neighbour's MAC filled in by the kernel); B must receive it.

bool run(const std::string& command) { return std::system(command.c_str()) == 0; }  // NOLINT(cert-env33-c)

bool tx_checksum_off(const char* name) {
  UniqueFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  ifreq req{};
  std::strncpy(req.ifr_name, name, sizeof(req.ifr_name) - 1);
  ethtool_value value{ETHTOOL_STXCSUM, 0};
  req.ifr_data = reinterpret_cast<char*>(&value);
  if (ioctl(sock.get(), SIOCETHTOOL, &req) != 0) return false;
  value = {ETHTOOL_GTXCSUM, 1};
  if (ioctl(sock.get(), SIOCETHTOOL, &req) != 0) return false;
  return value.data == 0;
}

// Udp InCsumErrors of the calling thread's namespace (/proc/thread-self, not /proc/self: the
// main thread lives in another namespace).
uint64_t udp_checksum_errors() {
  std::ifstream in("/proc/thread-self/net/snmp");
  std::string header;
  std::string values;
  while (std::getline(in, header) && std::getline(in, values)) {
    if (header.rfind("Udp:", 0) != 0) continue;
    std::istringstream names(header);
    std::istringstream numbers(values);
    std::string name;
    std::string number;
    while (names >> name && numbers >> number) {
      if (name == "InCsumErrors") return std::stoull(number);
    }
  }
  ADD_FAILURE() << "no Udp InCsumErrors in /proc/thread-self/net/snmp";
  return 0;
}

// A UDP datagram from `from_port` to `to` through a raw socket, with the checksum computed here
// (wrong on purpose when `corrupt`).
void send_raw_udp(const net::Endpoint& from, const net::Endpoint& to, const std::vector<uint8_t>& payload,
                  bool corrupt) {
  UniqueFd raw(socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_UDP));
  ASSERT_TRUE(raw.valid()) << std::strerror(errno);
  std::vector<uint8_t> udp(8 + payload.size());
  auto put16 = [&](size_t at, uint32_t v) {
    udp[at] = static_cast<uint8_t>(v >> 8);
    udp[at + 1] = static_cast<uint8_t>(v & 0xff);
  };
  put16(0, from.port);
  put16(2, to.port);
  put16(4, static_cast<uint32_t>(udp.size()));
  std::copy(payload.begin(), payload.end(), udp.begin() + 8);
  uint32_t sum = 0;
  auto add = [&](std::span<const uint8_t> bytes) {
    for (size_t i = 0; i < bytes.size(); i += 2) {
      sum += static_cast<uint32_t>(bytes[i] << 8) + (i + 1 < bytes.size() ? bytes[i + 1] : 0U);
    }
  };
  add(from.address.bytes());
  add(to.address.bytes());
  sum += IPPROTO_UDP + static_cast<uint32_t>(udp.size());
  add(udp);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  uint32_t check = ~sum & 0xffff;
  if (check == 0) check = 0xffff;
  if (corrupt) check ^= 0x0101;
  put16(6, check);
  sockaddr_storage addr{};
  socklen_t length = to.to_sockaddr(addr);
  ASSERT_EQ(sendto(raw.get(), udp.data(), udp.size(), 0, reinterpret_cast<sockaddr*>(&addr), length),
            static_cast<ssize_t>(udp.size()))
      << std::strerror(errno);
}

TEST_F(FastPathTest, RedirectsOverVethWithChecksumsTheReceiverVerifies) {
  if (access("/usr/sbin/ip", X_OK) != 0 && access("/sbin/ip", X_OK) != 0 && access("/usr/bin/ip", X_OK) != 0) {
    FAIL() << "iproute2's ip is needed (scripts/install-deps.sh installs it)";
  }
  std::thread thread([] {
    // Two namespaces made by this thread: it moves between them with setns.
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << std::strerror(errno);
    UniqueFd relay_ns(open("/proc/thread-self/ns/net", O_RDONLY));  // no O_CLOEXEC: `ip` opens it
    ASSERT_TRUE(relay_ns.valid());
    ASSERT_EQ(unshare(CLONE_NEWNET), 0) << std::strerror(errno);
    UniqueFd peers_ns(open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(peers_ns.valid());

    // Commands forked from this thread run in its current namespace.
    ASSERT_TRUE(run("ip link add vx type veth peer name vy netns /proc/self/fd/" + std::to_string(relay_ns.get())));
    ASSERT_TRUE(run("ip addr add 10.77.0.1/24 dev vx && ip link set vx up && ip link set lo up"));
    ASSERT_TRUE(tx_checksum_off("vx")) << "cannot turn TX checksum offload off on vx";
    Socket a = bind_udp("10.77.0.1");
    Socket b = bind_udp("10.77.0.1");

    ASSERT_EQ(setns(relay_ns.get(), CLONE_NEWNET), 0) << std::strerror(errno);
    ASSERT_TRUE(run("ip addr add 10.77.0.2/24 dev vy && ip link set vy up && ip link set lo up"));
    ASSERT_TRUE(tx_checksum_off("vy"));
    // Forwarding off, as on a relay host that is not a router: the fast path must not need it.
    ASSERT_TRUE(write_sysctl("ipv4/conf/vy/forwarding", "0"));
    ASSERT_TRUE(write_sysctl("ipv4/conf/all/forwarding", "0"));
    Socket r1 = bind_udp("10.77.0.2");
    Socket r2 = bind_udp("10.77.0.2");
    FastPathConfig config;  // every interface that is up: lo and vy
    Result<std::unique_ptr<FastPath>> opened = FastPath::open(config);
    ASSERT_TRUE(opened.ok()) << opened.error().what;
    std::unique_ptr<FastPath> fp = std::move(*opened);
    EXPECT_EQ(fp->attached().size(), 2U);
    ASSERT_TRUE(fp->install(rule_for(a, r1, r2, b)).ok());

    // Control: the peers' kernel drops a datagram with a wrong UDP checksum coming over the veth
    // and counts it, and takes the same datagram with the right one.
    ASSERT_EQ(setns(peers_ns.get(), CLONE_NEWNET), 0);
    uint64_t errors_before = udp_checksum_errors();
    ASSERT_EQ(setns(relay_ns.get(), CLONE_NEWNET), 0);
    send_raw_udp(r2.local, b.local, rtp(1), /*corrupt=*/true);
    EXPECT_FALSE(receive(b, kAbsentMs).has_value()) << "a wrong checksum was not checked";
    send_raw_udp(r2.local, b.local, rtp(2), /*corrupt=*/false);
    std::optional<Datagram> good = receive(b, kArriveMs);
    ASSERT_TRUE(good.has_value()) << "the control datagram with a right checksum was lost";
    EXPECT_EQ(good->data, rtp(2));
    ASSERT_EQ(setns(peers_ns.get(), CLONE_NEWNET), 0);
    EXPECT_EQ(udp_checksum_errors(), errors_before + 1);

    SeqTracker tracker;
    for (uint16_t seq = 10; seq < 15; ++seq) {
      expect_forwarded(a, r1, r2, b, rtp(seq, 40U + seq));
      tracker.on_packet(seq);
    }
    EXPECT_EQ(udp_checksum_errors(), errors_before + 1);  // none from the forwarded ones
    Result<FastPathRuleStats> stats = fp->read(r1.local, a.local);
    ASSERT_TRUE(stats.ok());
    EXPECT_EQ(stats->packets, 5U);
    expect_same_tracking(stats->seq, tracker);
    FastPathCounters counters = fp->counters();
    EXPECT_EQ(counters.forwarded, 5U);
    EXPECT_EQ(counters.redirect_errors, 0U);
    // The FastPath goes first (in the relay namespace, where it attached); the namespaces go
    // with the thread's last reference.
    ASSERT_EQ(setns(relay_ns.get(), CLONE_NEWNET), 0);
    fp.reset();
  });
  thread.join();
}

}  // namespace
}  // namespace pinhole::media
