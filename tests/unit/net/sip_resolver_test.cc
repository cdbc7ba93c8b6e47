// SipResolver and ResolvedUpstream against a real DNS server: a dnsmasq the test starts on
// 127.0.0.1 with a free port, answering only from records given on its command line (no
// /etc/hosts, no upstream servers), killed when the suite ends. Expected targets are worked out
// from RFC 3263 §4 and RFC 2782 by hand for those records.
//
// dnsmasq (Debian dnsmasq-base, installed by scripts/install-deps.sh) is required: without it
// these tests fail, they do not skip.
#include "net/sip_resolver.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "sip/uri.h"

extern char** environ;  // NOLINT(readability-redundant-declaration): for posix_spawn

namespace pinhole::net {

void PrintTo(const SipTarget& t, std::ostream* os) {  // NOLINT(readability-identifier-naming): gtest's name
  *os << transport_name(t.transport) << " " << t.endpoint.to_string() << " host=\"" << t.host << "\"";
}

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

constexpr const char* kDnsmasqPaths[] = {"/usr/sbin/dnsmasq", "/sbin/dnsmasq", "/usr/bin/dnsmasq"};

std::string find_dnsmasq() {
  for (const char* p : kDnsmasqPaths)
    if (::access(p, X_OK) == 0) return p;
  return {};
}

// A UDP socket on 127.0.0.1 with a free port, also free for TCP (dnsmasq binds both).
int bind_loopback(int type, uint16_t port) {
  int fd = ::socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

uint16_t local_port(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  return ntohs(a.sin_port);
}

uint16_t free_port() {
  for (int attempt = 0; attempt < 20; ++attempt) {
    int udp = bind_loopback(SOCK_DGRAM, 0);
    if (udp < 0) continue;
    uint16_t port = local_port(udp);
    int tcp = bind_loopback(SOCK_STREAM, port);
    ::close(udp);
    if (tcp >= 0) {
      ::close(tcp);
      return port;
    }
  }
  return 0;
}

// True once something answers a DNS query on 127.0.0.1:port.
bool answers_dns(uint16_t port) {
  int fd = bind_loopback(SOCK_DGRAM, 0);
  if (fd < 0) return false;
  timeval tv{0, 100000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  // Header (id 0x4242, RD, one question) + "ready.test" A IN.
  const unsigned char query[] = {0x42, 0x42, 0x01, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 5,    'r',
                                 'e',  'a',  'd',  'y',  4,    't',  'e',  's',  't',  0,    0x00, 0x01, 0x00, 0x01};
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::sendto(fd, query, sizeof query, 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  unsigned char reply[512];
  ssize_t n = ::recv(fd, reply, sizeof reply, 0);
  ::close(fd);
  return n >= 12 && reply[0] == 0x42 && reply[1] == 0x42;
}

// A dnsmasq child process serving `args` on 127.0.0.1:port().
class Dnsmasq {
 public:
  ~Dnsmasq() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      ::waitpid(pid_, &status, 0);
    }
    if (!dir_.empty()) std::system(("rm -rf '" + dir_ + "'").c_str());
  }

  // On failure returns null and says why in `error`.
  static std::unique_ptr<Dnsmasq> start(const std::vector<std::string>& records, std::string& error) {
    std::string binary = find_dnsmasq();
    if (binary.empty()) {
      error =
          "dnsmasq not found (looked in /usr/sbin, /sbin, /usr/bin): install the Debian package "
          "dnsmasq-base (scripts/install-deps.sh does)";
      return nullptr;
    }
    auto d = std::unique_ptr<Dnsmasq>(new Dnsmasq);
    char tmpl[] = "/tmp/pinhole-dns-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) {
      error = "mkdtemp failed";
      return nullptr;
    }
    d->dir_ = tmpl;
    // dnsmasq started as root drops to "nobody" and rereads the hosts file as that user on SIGHUP.
    ::chmod(tmpl, 0755);
    d->hosts_file_ = d->dir_ + "/hosts";
    d->write_hosts("192.0.2.200 dyn.test\n");
    for (int attempt = 0; attempt < 5; ++attempt) {
      d->port_ = free_port();
      if (d->port_ == 0) continue;
      std::vector<std::string> args = {binary,
                                       "--port=" + std::to_string(d->port_),
                                       "--listen-address=127.0.0.1",
                                       "--bind-interfaces",
                                       "--no-resolv",
                                       "--no-hosts",
                                       "--no-daemon",
                                       "--conf-file=/dev/null",
                                       "--pid-file=",
                                       "--local=/test/",  // names under test. are ours: unknown ones are NXDOMAIN
                                       "--local-ttl=60",
                                       "--addn-hosts=" + d->hosts_file_};
      args.insert(args.end(), records.begin(), records.end());
      std::vector<char*> argv;
      for (std::string& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      std::string log = d->dir_ + "/log";
      posix_spawn_file_actions_t actions;
      posix_spawn_file_actions_init(&actions);
      posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      posix_spawn_file_actions_adddup2(&actions, 1, 2);
      pid_t pid = 0;
      int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), environ);
      posix_spawn_file_actions_destroy(&actions);
      if (rc != 0) {
        error = "posix_spawn(" + binary + ") failed";
        return nullptr;
      }
      d->pid_ = pid;
      for (int i = 0; i < 100; ++i) {
        int status = 0;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
          d->pid_ = -1;
          break;
        }
        if (answers_dns(d->port_)) return d;
      }
      if (d->pid_ > 0) {
        ::kill(d->pid_, SIGKILL);
        ::waitpid(d->pid_, nullptr, 0);
        d->pid_ = -1;
      }
    }
    error = "dnsmasq did not start; its output:\n" + d->log();
    return nullptr;
  }

  uint16_t port() const { return port_; }
  ResolverOptions options() const {
    ResolverOptions o;
    o.servers = {Endpoint{Address::v4(0x7f000001), port_}};
    o.timeout = milliseconds(1000);
    o.tries = 2;
    return o;
  }
  void write_hosts(const std::string& text) const {
    std::ofstream(hosts_file_, std::ios::trunc) << text;
    ::chmod(hosts_file_.c_str(), 0644);
  }
  // Rereads the hosts file and clears the cache.
  void reload() const { ::kill(pid_, SIGHUP); }
  std::string log() const {
    std::ifstream in(dir_ + "/log");
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }

 private:
  Dnsmasq() = default;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::string dir_;
  std::string hosts_file_;
};

// The zone, in dnsmasq's syntax. --local-ttl=60 gives 60 s to records without their own TTL.
const std::vector<std::string>& zone() {
  static const std::vector<std::string> records = {
      // Plain hosts.
      "--host-record=a.test,192.0.2.1,2001:db8::1,300",
      "--host-record=aonly.test,192.0.2.31",
      "--cname=alias.test,a.test",
      // NAPTR -> SRV -> A. Order 5 is SCTP (not ours), then order 10: TCP (pref 10) before TLS
      // (pref 20); UDP comes last with order 20 although its preference is the best.
      "--naptr-record=naptr.test,5,10,S,SIP+D2S,,_sip._sctp.naptr.test",
      "--naptr-record=naptr.test,20,5,S,SIP+D2U,,_sip._udp.naptr.test",
      "--naptr-record=naptr.test,10,20,S,SIPS+D2T,,_sips._tcp.naptr.test",
      "--naptr-record=naptr.test,10,10,S,SIP+D2T,,_sip._tcp.naptr.test",
      "--srv-host=_sip._sctp.naptr.test,sctp1.test,5079,0,0",
      "--srv-host=_sip._tcp.naptr.test,tcp1.test,5070,0,0",
      "--srv-host=_sips._tcp.naptr.test,tls1.test,5071,0,0",
      "--srv-host=_sip._udp.naptr.test,udp1.test,5072,0,0",
      "--host-record=sctp1.test,192.0.2.10",
      "--host-record=tcp1.test,192.0.2.11",
      "--host-record=tls1.test,192.0.2.12",
      "--host-record=udp1.test,192.0.2.13",
      // SRV only: priority 10 holds s1 (weight 60, two addresses) and s2 (weight 40), priority
      // 20 holds s3; _sip._tcp exists too but _sip._udp is preferred.
      "--srv-host=_sip._udp.srv.test,s1.test,5060,10,60",
      "--srv-host=_sip._udp.srv.test,s3.test,5063,20,0",
      "--srv-host=_sip._udp.srv.test,s2.test,5062,10,40",
      "--srv-host=_sip._tcp.srv.test,s4.test,5064,0,0",
      "--host-record=s1.test,192.0.2.21,2001:db8::21",
      "--host-record=s2.test,192.0.2.22",
      "--host-record=s3.test,192.0.2.23",
      "--host-record=s4.test,192.0.2.24",
      // SRV for TLS only.
      "--srv-host=_sips._tcp.secure.test,tls2.test,5081,0,0",
      "--host-record=tls2.test,192.0.2.41",
      "--host-record=secure.test,192.0.2.40",
  };
  return records;
}

SipTarget target(Transport t, std::string_view endpoint, std::string host) {
  auto e = Endpoint::parse(endpoint);
  EXPECT_TRUE(e.ok()) << endpoint;
  return SipTarget{t, e.ok() ? *e : Endpoint{}, std::move(host)};
}

class SipResolverTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { dns_ = Dnsmasq::start(zone(), *start_error_).release(); }
  static void TearDownTestSuite() {
    delete dns_;
    dns_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(dns_, nullptr) << *start_error_;
    auto r = SipResolver::create(dns_->options());
    ASSERT_TRUE(r.ok());
    resolver_ = std::move(r).value();
  }

  // Resolves `text` (which must outlive nothing: the Uri is used at once).
  Result<std::vector<SipTarget>> resolve(std::string_view text, seconds* ttl = nullptr) {
    auto uri = sip::parse_uri(text);
    EXPECT_TRUE(uri.ok()) << text;
    if (!uri.ok()) return uri.error();
    return resolver_->resolve(*uri, ttl);
  }
  std::vector<SipTarget> must_resolve(std::string_view text, seconds* ttl = nullptr) {
    auto r = resolve(text, ttl);
    EXPECT_TRUE(r.ok()) << text << ": " << resolver_->last_error() << "\ndnsmasq log:\n" << dns_->log();
    return r.ok() ? *r : std::vector<SipTarget>{};
  }

  static Dnsmasq* dns_;  // NOLINT: suite-wide, owned (raw for SetUpTestSuite/TearDownTestSuite)
  static std::string* start_error_;
  std::unique_ptr<SipResolver> resolver_;
};
Dnsmasq* SipResolverTest::dns_ = nullptr;
std::string* SipResolverTest::start_error_ = new std::string;  // NOLINT: leaked on purpose

// ---------------------------------------------------------------------------------------------
// §4.1/§4.2 numeric hosts: no DNS at all.

TEST_F(SipResolverTest, NumericIPv4WithoutPortIsUdp5060) {
  seconds ttl{0};
  EXPECT_EQ(must_resolve("sip:192.0.2.7", &ttl), (std::vector{target(Transport::kUdp, "192.0.2.7:5060", "")}));
  EXPECT_EQ(ttl, std::chrono::hours(24));
}

TEST_F(SipResolverTest, NumericIPv4WithPortAndTransport) {
  EXPECT_EQ(must_resolve("sip:192.0.2.7:5080;transport=tcp"),
            (std::vector{target(Transport::kTcp, "192.0.2.7:5080", "")}));
  EXPECT_EQ(must_resolve("sip:192.0.2.7;transport=TLS"), (std::vector{target(Transport::kTls, "192.0.2.7:5061", "")}));
}

TEST_F(SipResolverTest, NumericIPv6) {
  EXPECT_EQ(must_resolve("sip:[2001:db8::5]"), (std::vector{target(Transport::kUdp, "[2001:db8::5]:5060", "")}));
  EXPECT_EQ(must_resolve("sip:user@[2001:db8::5]:5090"),
            (std::vector{target(Transport::kUdp, "[2001:db8::5]:5090", "")}));
  // sips means TLS over TCP, port 5061; transport=tcp on a sips URI is TLS too.
  EXPECT_EQ(must_resolve("sips:[2001:db8::5]"), (std::vector{target(Transport::kTls, "[2001:db8::5]:5061", "")}));
  EXPECT_EQ(must_resolve("sips:[2001:db8::5];transport=tcp"),
            (std::vector{target(Transport::kTls, "[2001:db8::5]:5061", "")}));
}

TEST_F(SipResolverTest, MaddrReplacesTheHost) {
  EXPECT_EQ(must_resolve("sip:naptr.test;maddr=192.0.2.99"),
            (std::vector{target(Transport::kUdp, "192.0.2.99:5060", "")}));
}

// ---------------------------------------------------------------------------------------------
// §4.2 a name with a port: A/AAAA only.

TEST_F(SipResolverTest, NameWithPortUsesAddressRecordsOnly) {
  seconds ttl{0};
  // naptr.test has NAPTR records but no address: with a port they are not consulted.
  EXPECT_EQ(must_resolve("sip:a.test:5070", &ttl),
            (std::vector{target(Transport::kUdp, "192.0.2.1:5070", "a.test"),
                         target(Transport::kUdp, "[2001:db8::1]:5070", "a.test")}));
  EXPECT_EQ(ttl, seconds(300));
  auto r = resolve("sip:naptr.test:5060");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().status, 503);
}

TEST_F(SipResolverTest, NameWithPortAndTransport) {
  EXPECT_EQ(must_resolve("sips:A.Test:5999"), (std::vector{target(Transport::kTls, "192.0.2.1:5999", "a.test"),
                                                           target(Transport::kTls, "[2001:db8::1]:5999", "a.test")}));
}

TEST_F(SipResolverTest, FollowsCname) {
  EXPECT_EQ(must_resolve("sip:alias.test:5060"),
            (std::vector{target(Transport::kUdp, "192.0.2.1:5060", "alias.test"),
                         target(Transport::kUdp, "[2001:db8::1]:5060", "alias.test")}));
}

TEST_F(SipResolverTest, Ipv6OffAsksForIpv4Only) {
  ResolverOptions o = dns_->options();
  o.ipv6 = false;
  auto r = SipResolver::create(o);
  ASSERT_TRUE(r.ok());
  auto uri = sip::parse_uri("sip:a.test:5060");
  ASSERT_TRUE(uri.ok());
  auto targets = (*r)->resolve(*uri);
  ASSERT_TRUE(targets.ok());
  EXPECT_EQ(*targets, (std::vector{target(Transport::kUdp, "192.0.2.1:5060", "a.test")}));
}

// ---------------------------------------------------------------------------------------------
// §4.1 NAPTR -> SRV -> A/AAAA.

TEST_F(SipResolverTest, NaptrChainInOrderThenPreference) {
  seconds ttl{0};
  // SCTP (order 5) is not supported; order 10: TCP (pref 10), TLS (pref 20); order 20: UDP.
  // The host for TLS is the URI's domain (RFC 5922), not the SRV target.
  EXPECT_EQ(must_resolve("sip:naptr.test", &ttl),
            (std::vector{target(Transport::kTcp, "192.0.2.11:5070", "naptr.test"),
                         target(Transport::kTls, "192.0.2.12:5071", "naptr.test"),
                         target(Transport::kUdp, "192.0.2.13:5072", "naptr.test")}));
  EXPECT_EQ(ttl, seconds(60));  // --local-ttl: the smallest on the chain
}

TEST_F(SipResolverTest, NaptrForSipsUsesOnlySipsD2T) {
  EXPECT_EQ(must_resolve("sips:naptr.test"), (std::vector{target(Transport::kTls, "192.0.2.12:5071", "naptr.test")}));
}

TEST_F(SipResolverTest, NaptrSkipsUnsupportedTransports) {
  ResolverOptions o = dns_->options();
  o.supported = {Transport::kUdp};
  auto r = SipResolver::create(o);
  ASSERT_TRUE(r.ok());
  auto uri = sip::parse_uri("sip:naptr.test");
  ASSERT_TRUE(uri.ok());
  auto targets = (*r)->resolve(*uri);
  ASSERT_TRUE(targets.ok());
  EXPECT_EQ(*targets, (std::vector{target(Transport::kUdp, "192.0.2.13:5072", "naptr.test")}));
}

// ---------------------------------------------------------------------------------------------
// §4.1 without NAPTR: SRV, then A/AAAA.

TEST_F(SipResolverTest, SrvOnlyPriorityThenWeight) {
  const std::set<std::string> first_group = {"192.0.2.21:5060", "[2001:db8::21]:5060", "192.0.2.22:5062"};
  std::set<std::string> leaders;
  for (int i = 0; i < 40; ++i) {
    auto targets = must_resolve("sip:srv.test");
    ASSERT_EQ(targets.size(), 4u);
    std::set<std::string> group;
    for (size_t k = 0; k < 3; ++k) {
      EXPECT_EQ(targets[k].transport, Transport::kUdp);  // _sip._udp wins over _sip._tcp
      EXPECT_EQ(targets[k].host, "srv.test");
      group.insert(targets[k].endpoint.to_string());
    }
    EXPECT_EQ(group, first_group);  // priority 10 before priority 20
    EXPECT_EQ(targets[3], target(Transport::kUdp, "192.0.2.23:5063", "srv.test"));
    // A record's addresses stay together: IPv4 then IPv6 of s1.
    auto s1 = std::find_if(targets.begin(), targets.end(),
                           [](const SipTarget& t) { return t.endpoint.to_string() == "192.0.2.21:5060"; });
    ASSERT_NE(s1 + 1, targets.end());
    EXPECT_EQ((s1 + 1)->endpoint.to_string(), "[2001:db8::21]:5060");
    leaders.insert(targets[0].endpoint.to_string());
  }
  // Weights 60/40: each of s1 and s2 leads sometimes (40 draws all alike: p < 1e-8).
  EXPECT_EQ(leaders, (std::set<std::string>{"192.0.2.21:5060", "192.0.2.22:5062"}));
}

TEST_F(SipResolverTest, TransportParamSelectsTheSrvService) {
  EXPECT_EQ(must_resolve("sip:srv.test;transport=tcp"),
            (std::vector{target(Transport::kTcp, "192.0.2.24:5064", "srv.test")}));
}

TEST_F(SipResolverTest, SipsUsesSipsTcpSrv) {
  EXPECT_EQ(must_resolve("sips:secure.test"), (std::vector{target(Transport::kTls, "192.0.2.41:5081", "secure.test")}));
  // A sip URI falls to _sips._tcp when neither _sip._udp nor _sip._tcp exist.
  EXPECT_EQ(must_resolve("sip:secure.test"), (std::vector{target(Transport::kTls, "192.0.2.41:5081", "secure.test")}));
}

TEST_F(SipResolverTest, AddressFallbackWithoutNaptrOrSrv) {
  EXPECT_EQ(must_resolve("sip:aonly.test"), (std::vector{target(Transport::kUdp, "192.0.2.31:5060", "aonly.test")}));
  EXPECT_EQ(must_resolve("sips:aonly.test"), (std::vector{target(Transport::kTls, "192.0.2.31:5061", "aonly.test")}));
  EXPECT_EQ(must_resolve("sip:aonly.test;transport=tcp"),
            (std::vector{target(Transport::kTcp, "192.0.2.31:5060", "aonly.test")}));
  EXPECT_EQ(must_resolve("sip:aonly.test;transport=tls"),
            (std::vector{target(Transport::kTls, "192.0.2.31:5061", "aonly.test")}));
}

// ---------------------------------------------------------------------------------------------
// Errors.

TEST_F(SipResolverTest, NxdomainIs503NamingTheHost) {
  auto r = resolve("sip:nope.test");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().status, 503);
  EXPECT_NE(resolver_->last_error().find("nope.test"), std::string::npos) << resolver_->last_error();
  auto with_port = resolve("sip:nope.test:5060");
  ASSERT_FALSE(with_port.ok());
  EXPECT_EQ(with_port.error().status, 503);
  EXPECT_EQ(with_port.error().what, "DNS name not found");
}

TEST_F(SipResolverTest, BadUris) {
  auto tel = resolve("tel:+15551234");
  ASSERT_FALSE(tel.ok());
  EXPECT_EQ(tel.error().status, 400);
  auto sips_udp = resolve("sips:a.test;transport=udp");
  ASSERT_FALSE(sips_udp.ok());
  EXPECT_EQ(sips_udp.error().status, 400);
  auto sctp = resolve("sip:a.test;transport=sctp");
  ASSERT_FALSE(sctp.ok());
  EXPECT_EQ(sctp.error().status, 503);
}

TEST_F(SipResolverTest, UnsupportedTransportIs503) {
  ResolverOptions o = dns_->options();
  o.supported = {Transport::kUdp, Transport::kTcp};
  auto r = SipResolver::create(o);
  ASSERT_TRUE(r.ok());
  auto uri = sip::parse_uri("sips:a.test:5061");
  ASSERT_TRUE(uri.ok());
  auto targets = (*r)->resolve(*uri);
  ASSERT_FALSE(targets.ok());
  EXPECT_EQ(targets.error().status, 503);
}

// A server that never answers: the lookup fails within timeout × tries, and cancel() cuts it short.
class SilentServer {
 public:
  SilentServer() : fd_(bind_loopback(SOCK_DGRAM, 0)) {}
  ~SilentServer() {
    if (fd_ >= 0) ::close(fd_);
  }
  ResolverOptions options(milliseconds timeout, int tries) const {
    ResolverOptions o;
    o.servers = {Endpoint{Address::v4(0x7f000001), local_port(fd_)}};
    o.timeout = timeout;
    o.tries = tries;
    return o;
  }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_;
};

TEST(SipResolverTimeout, SilentServerFailsWithinTheTimeout) {
  SilentServer silent;
  ASSERT_TRUE(silent.ok());
  auto r = SipResolver::create(silent.options(milliseconds(200), 2));
  ASSERT_TRUE(r.ok());
  auto uri = sip::parse_uri("sip:core.example.com");
  ASSERT_TRUE(uri.ok());
  auto begin = Clock::now();
  auto targets = (*r)->resolve(*uri);
  auto took = Clock::now() - begin;
  ASSERT_FALSE(targets.ok());
  EXPECT_EQ(targets.error().status, 503);
  EXPECT_EQ(targets.error().what, "DNS lookup timed out");
  EXPECT_NE((*r)->last_error().find("core.example.com"), std::string::npos);
  // One stage (NAPTR) of 2 × 200 ms; generous upper bound for a loaded machine.
  EXPECT_GE(took, milliseconds(350));
  EXPECT_LT(took, milliseconds(1500));
}

TEST(SipResolverTimeout, CancelEndsALookupAtOnce) {
  SilentServer silent;
  ASSERT_TRUE(silent.ok());
  auto r = SipResolver::create(silent.options(milliseconds(10000), 1));
  ASSERT_TRUE(r.ok());
  SipResolver& resolver = **r;
  auto uri = sip::parse_uri("sip:core.example.com:5060");
  ASSERT_TRUE(uri.ok());
  std::atomic<bool> done{false};
  Result<std::vector<SipTarget>> result = Error{};
  auto begin = Clock::now();
  std::thread t([&] {
    result = resolver.resolve(*uri);
    done = true;
  });
  std::this_thread::sleep_for(milliseconds(100));
  EXPECT_FALSE(done.load());
  resolver.cancel();
  t.join();
  EXPECT_LT(Clock::now() - begin, milliseconds(5000));
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().what, "DNS lookup cancelled");
  // Sticky: later lookups fail at once too.
  auto again = resolver.resolve(*uri);
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().status, 503);
}

// ---------------------------------------------------------------------------------------------
// ResolvedUpstream.

TEST_F(SipResolverTest, UpstreamSnapshotHasTheInitialList) {
  auto up = ResolvedUpstream::start("sip:naptr.test", dns_->options());
  ASSERT_TRUE(up.ok());
  auto list = (*up)->snapshot();
  ASSERT_NE(list, nullptr);
  EXPECT_EQ(*list, (std::vector{target(Transport::kTcp, "192.0.2.11:5070", "naptr.test"),
                                target(Transport::kTls, "192.0.2.12:5071", "naptr.test"),
                                target(Transport::kUdp, "192.0.2.13:5072", "naptr.test")}));
  EXPECT_EQ((*up)->last_error(), "");
  auto begin = Clock::now();
  (*up)->stop();  // the refresher sleeps for the 60 s TTL: stop wakes it
  EXPECT_LT(Clock::now() - begin, milliseconds(1000));
  EXPECT_EQ(list->size(), 3u);  // a reader's list outlives the refresher
  (*up)->stop();                // idempotent
}

TEST_F(SipResolverTest, UpstreamPicksUpAChangedRecord) {
  RefreshOptions fast;
  fast.min_interval = milliseconds(20);
  fast.max_interval = milliseconds(100);  // the hosts-file TTL is 60 s
  auto up = ResolvedUpstream::start("sip:dyn.test:5060;transport=tcp", dns_->options(), fast);
  ASSERT_TRUE(up.ok());
  EXPECT_EQ(*(*up)->snapshot(), (std::vector{target(Transport::kTcp, "192.0.2.200:5060", "dyn.test")}));
  dns_->write_hosts("192.0.2.201 dyn.test\n");
  dns_->reload();
  auto deadline = Clock::now() + seconds(10);
  while ((*up)->snapshot()->front().endpoint.to_string() != "192.0.2.201:5060" && Clock::now() < deadline)
    std::this_thread::sleep_for(milliseconds(20));
  EXPECT_EQ(*(*up)->snapshot(), (std::vector{target(Transport::kTcp, "192.0.2.201:5060", "dyn.test")})) << dns_->log();
  dns_->write_hosts("192.0.2.200 dyn.test\n");
  dns_->reload();
}

TEST_F(SipResolverTest, UpstreamKeepsTheLastGoodListOnFailure) {
  RefreshOptions fast;
  fast.min_interval = milliseconds(20);
  fast.max_interval = milliseconds(50);
  fast.first_retry = milliseconds(10);
  auto up = ResolvedUpstream::start("sip:dyn.test:5060", dns_->options(), fast);
  ASSERT_TRUE(up.ok());
  ASSERT_EQ((*up)->snapshot()->size(), 1u);
  dns_->write_hosts("");
  dns_->reload();
  auto deadline = Clock::now() + seconds(10);
  while ((*up)->last_error().empty() && Clock::now() < deadline) std::this_thread::sleep_for(milliseconds(20));
  EXPECT_NE((*up)->last_error().find("dyn.test"), std::string::npos);
  EXPECT_EQ(*(*up)->snapshot(), (std::vector{target(Transport::kUdp, "192.0.2.200:5060", "dyn.test")}));
  dns_->write_hosts("192.0.2.200 dyn.test\n");
  dns_->reload();
}

TEST(ResolvedUpstreamStandalone, BadUriFailsStart) {
  auto up = ResolvedUpstream::start("tel:+15551234", ResolverOptions{});
  ASSERT_FALSE(up.ok());
  EXPECT_EQ(up.error().status, 400);
  auto junk = ResolvedUpstream::start("not a uri", ResolverOptions{});
  ASSERT_FALSE(junk.ok());
}

TEST(ResolvedUpstreamStandalone, FailingFirstLookupStartsEmptyAndStopsPromptly) {
  SilentServer silent;
  ASSERT_TRUE(silent.ok());
  RefreshOptions fast;
  fast.first_retry = milliseconds(1);
  auto up = ResolvedUpstream::start("sip:core.example.com", silent.options(milliseconds(300), 1), fast);
  ASSERT_TRUE(up.ok());
  EXPECT_TRUE((*up)->snapshot()->empty());
  EXPECT_NE((*up)->last_error().find("timed out"), std::string::npos) << (*up)->last_error();
  // The refresher is now inside its next lookup (300 ms): stop() cancels it.
  std::this_thread::sleep_for(milliseconds(50));
  auto begin = Clock::now();
  (*up)->stop();
  EXPECT_LT(Clock::now() - begin, milliseconds(250));
}

}  // namespace
}  // namespace pinhole::net
