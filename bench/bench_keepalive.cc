// bench_keepalive: the keepalive engine at scale (issue 5 benchmark).
//
// Part 1, fake clock: loads N synthetic UDP endpoints (default 1,000,000) registered in the same
// instant, then advances over one full interval in 10 ms ticks building every OPTIONS. Reports
// insert time, memory per endpoint (RSS delta and the engine's own accounting), CPU per 10,000
// keepalives built, and the evenness of the send rate over every 1 s window (sliding by 10 ms).
// Part 2, real sockets: M endpoints (default 10,000) whose keepalives are sent with sendto() from
// one UDP socket on 127.0.0.1 to a sink socket on 127.0.0.1 (both bound here on ephemeral ports;
// every synthetic flow's bytes go to the sink, the flows only differ in the text), bounded in
// count and time. Reports sent/received and CPU per 10,000 sends including the syscalls.
//
// Output: "key value" lines, the last one exactly `bytes_per_endpoint <n>` (RSS delta / N).
// Usage: bench_keepalive [endpoints] [socket_endpoints]
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <string>
#include <vector>

#include "common/clock.h"
#include "nat/keepalive_engine.h"

namespace {

using namespace pinhole;
using namespace pinhole::nat;
using std::chrono::milliseconds;
using std::chrono::seconds;

long rss_bytes() {
  std::ifstream f("/proc/self/statm");
  long pages = 0;
  long resident = 0;
  f >> pages >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

net::Flow synthetic_flow(uint32_t i) {
  // 10.0.0.0/8 addresses, 16 ports each: distinct flows, like phones behind many NATs.
  return net::Flow{net::Transport::kUdp, 1,
                   net::Endpoint{net::Address::v4(0x0A000000U + i / 16), static_cast<uint16_t>(20000 + i % 16)}, 0};
}

void print(const char* key, double v) { std::printf("%s %.3f\n", key, v); }
void print(const char* key, long v) { std::printf("%s %ld\n", key, v); }

int fake_clock_part(uint32_t n, long& bytes_per_endpoint) {
  ManualClock clock(TimePoint{} + std::chrono::hours(1));
  KeepaliveConfig config;
  config.max_misses = 255;  // nobody answers in this part
  const long rss0 = rss_bytes();
  auto engine = std::make_unique<KeepaliveEngine>(
      config, clock, [](uint32_t) { return std::string("192.0.2.1:5060"); }, std::array<uint64_t, 2>{1, 2});

  double t0 = wall_seconds();
  for (uint32_t i = 0; i < n; ++i) {
    engine->set_reason(synthetic_flow(i), KeepaliveReason::kRegistration, "binding", seconds(3600));
  }
  double insert_s = wall_seconds() - t0;
  const long rss1 = rss_bytes();
  bytes_per_endpoint = (rss1 - rss0) / static_cast<long>(n);
  print("endpoints", static_cast<long>(n));
  print("insert_ns_per_endpoint", insert_s * 1e9 / n);
  print("rss_bytes_per_endpoint", static_cast<double>(rss1 - rss0) / n);
  print("engine_bytes_per_endpoint", static_cast<double>(engine->memory_bytes()) / n);

  // One full interval, 10 ms ticks.
  const int ticks = static_cast<int>(config.udp_interval / KeepaliveEngine::kTick);
  std::vector<long> per_tick(static_cast<size_t>(ticks), 0);
  KeepaliveEngine::Due due;
  long sends = 0;
  size_t bytes = 0;
  double c0 = cpu_seconds();
  for (int t = 0; t < ticks; ++t) {
    clock.advance(KeepaliveEngine::kTick);
    engine->advance(clock.now(), due);
    per_tick[static_cast<size_t>(t)] = static_cast<long>(due.sends.size());
    sends += static_cast<long>(due.sends.size());
    for (const auto& s : due.sends) bytes += s.bytes.size();
  }
  double cpu = cpu_seconds() - c0;
  print("sends_over_interval", sends);
  print("mean_keepalive_bytes", sends > 0 ? static_cast<double>(bytes) / static_cast<double>(sends) : 0.0);
  print("cpu_us_per_10k_sends", sends > 0 ? cpu * 1e6 * 10000 / static_cast<double>(sends) : 0.0);

  // Every 1 s window inside the interval (sliding by one tick).
  const double mean = static_cast<double>(n) / static_cast<double>(config.udp_interval.count());
  const int window = static_cast<int>(seconds(1) / KeepaliveEngine::kTick);
  long max_w = 0;
  long min_w = -1;
  long sum = 0;
  for (int t = 0; t < ticks; ++t) {
    sum += per_tick[static_cast<size_t>(t)];
    if (t >= window) sum -= per_tick[static_cast<size_t>(t - window)];
    if (t >= window - 1) {
      max_w = std::max(max_w, sum);
      min_w = min_w < 0 ? sum : std::min(min_w, sum);
    }
  }
  print("sends_per_second_mean", mean);
  print("sends_per_second_max_window", max_w);
  print("sends_per_second_min_window", min_w);
  print("max_window_over_mean", mean > 0 ? static_cast<double>(max_w) / mean : 0.0);
  return sends == static_cast<long>(n) ? 0 : 1;
}

int socket_part(uint32_t n) {
  int tx = socket(AF_INET, SOCK_DGRAM, 0);
  int rx = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
  if (tx < 0 || rx < 0) {
    std::perror("socket");
    return 1;
  }
  int buf = 8 << 20;
  setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (bind(tx, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      bind(rx, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(rx, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    std::perror("bind");
    return 1;
  }
  sockaddr_in txa{};
  len = sizeof txa;
  getsockname(tx, reinterpret_cast<sockaddr*>(&txa), &len);
  std::string sent_by = "127.0.0.1:" + std::to_string(ntohs(txa.sin_port));

  ManualClock clock(TimePoint{} + std::chrono::hours(1));
  KeepaliveConfig config;
  config.max_misses = 255;
  KeepaliveEngine engine(config, clock, [&](uint32_t) { return sent_by; });
  for (uint32_t i = 0; i < n; ++i) {
    engine.set_reason(synthetic_flow(i), KeepaliveReason::kRegistration, "binding", seconds(3600));
  }
  const int ticks = static_cast<int>(config.udp_interval / KeepaliveEngine::kTick);
  KeepaliveEngine::Due due;
  long sent = 0;
  long received = 0;
  long options = 0;
  std::vector<char> rbuf(65536);
  auto drain = [&] {
    for (;;) {
      ssize_t r = recv(rx, rbuf.data(), rbuf.size(), 0);
      if (r <= 0) break;
      ++received;
      if (std::string_view(rbuf.data(), static_cast<size_t>(r)).starts_with("OPTIONS sip:10.")) ++options;
    }
  };
  const double deadline = wall_seconds() + 20;  // bounded whatever the machine
  double c0 = cpu_seconds();
  double w0 = wall_seconds();
  for (int t = 0; t < ticks && wall_seconds() < deadline; ++t) {
    clock.advance(KeepaliveEngine::kTick);
    engine.advance(clock.now(), due);
    for (const auto& s : due.sends) {
      if (sendto(tx, s.bytes.data(), s.bytes.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a) ==
          static_cast<ssize_t>(s.bytes.size())) {
        ++sent;
      }
    }
    drain();
  }
  double cpu = cpu_seconds() - c0;
  double wall = wall_seconds() - w0;
  for (int i = 0; i < 100 && received < sent; ++i) {
    usleep(1000);
    drain();
  }
  print("socket_endpoints", static_cast<long>(n));
  print("socket_sent", sent);
  print("socket_received", received);
  print("socket_received_options", options);
  print("socket_cpu_us_per_10k_sends", sent > 0 ? cpu * 1e6 * 10000 / static_cast<double>(sent) : 0.0);
  print("socket_sends_per_second", wall > 0 ? static_cast<double>(sent) / wall : 0.0);
  close(tx);
  close(rx);
  return sent == static_cast<long>(n) ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  uint32_t n = argc > 1 ? static_cast<uint32_t>(std::strtoul(argv[1], nullptr, 10)) : 1000000U;
  uint32_t m = argc > 2 ? static_cast<uint32_t>(std::strtoul(argv[2], nullptr, 10)) : 10000U;
  if (n == 0 || m == 0) {
    std::fprintf(stderr, "usage: bench_keepalive [endpoints>0] [socket_endpoints>0]\n");
    return 2;
  }
  long bytes_per_endpoint = 0;
  int rc = fake_clock_part(n, bytes_per_endpoint);
  rc |= socket_part(m);
  std::printf("bytes_per_endpoint %ld\n", bytes_per_endpoint);
  return rc;
}
