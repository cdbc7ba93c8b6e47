// pinhole-bench: load generators for the benchmarks in bench/ (DESIGN.md §6). Subcommand `rtp`
// drives a media relay (pinhole-media or rtpengine) over rtpengine's ng protocol the way a SIP
// proxy would for N calls between pairs of loopback "phones", then sends RTP through it and
// measures what the relay adds:
//
//   phone A (127.0.0.1:a) --RTP--> relay leg B port --> phone B (127.0.0.1:b)   and back
//
// Per call: offer (A's SDP) and answer (B's SDP) over ng; A sends to the port in the answer's
// rewritten SDP, B to the port in the offer's. Each phone sends `pps` packets/s (PCMU-sized RTP,
// 160-byte payload) carrying a magic, the call, the direction, a sequence number and the
// CLOCK_MONOTONIC send time. Sends are paced by a timer in slices (default 1 ms): the phones'
// phases are spread evenly over the packet interval, so every slice sends about the same number
// of packets and no burst of all calls leaves at once. Receives: every phone socket is on the
// worker's epoll, drained with recvmmsg into buffers allocated once.
//
// Latency: `latency_*` is kernel receive time (SO_TIMESTAMPNS, stamped when the relay's send
// reaches our socket over loopback) minus the send time, so the bench's own loop delay is not
// counted; `app_latency_*` is the time the bench's loop read the packet minus the send time
// (what an application would see). Both go into fixed histograms (latency_histogram.h), no
// per-packet allocation. `--direct` skips the relay (phones send to each other): the floor of
// the measurement on this machine.
//
// CPU: with `--cpu-pid PID`, utime+stime of that process (/proc/PID/stat, all its threads) from
// the first packet to the end of the drain after the last, so ng setup and delete are excluded.
//
// Loss: 1 - received/sent; `bench_socket_drops` (SO_RXQ_OVFL) is the part the kernel dropped at
// the bench's own sockets (the bench fell behind), not at the relay.
//
// Output: one `key=value` line per metric on stdout (progress and errors on stderr). Exit status
// 0 when it ran (whatever the loss), 1 when setup failed, 2 for an unusable --ng/--local, CLI11's
// code for other bad arguments.
//
// `--busy-poll`: the workers spin on epoll_wait(0) instead of sleeping in it. Over loopback the
// sender's system call delivers the datagram into the receiver's socket and wakes the receiver
// up, so with a sleeping bench every wake-up is charged to the relay's CPU time (the same for any
// relay, which narrows their ratio); a spinning bench is rarely asleep. It costs the bench a
// whole CPU per worker.
//
// Threads: the main thread does the ng setup/teardown and the CPU readings; `--workers K`
// threads each own a contiguous share of the calls (their sockets, schedule, counters and
// histograms) during the traffic phase; results are merged after they join. Nothing is shared
// while they run except the start time and the stop time, fixed before they start.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <cerrno>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "latency_histogram.h"
#include "media/bencode.h"
#include "sdp/session_description.h"

namespace {

using pinhole::bench::LatencyHistogram;
namespace bencode = pinhole::media::bencode;

constexpr uint32_t kMagic = 0x50484231;  // "PHB1"
constexpr size_t kRtpHeader = 12;
constexpr size_t kPayload = 160;  // PCMU, 20 ms
constexpr size_t kPacket = kRtpHeader + kPayload;
constexpr size_t kBatch = 32;
constexpr size_t kMaxEvents = 256;
constexpr int64_t kNsPerSec = 1'000'000'000;

int64_t now_ns(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return int64_t{ts.tv_sec} * kNsPerSec + ts.tv_nsec;
}

void put32(uint8_t* p, uint32_t v) {
  v = htonl(v);
  std::memcpy(p, &v, 4);
}
uint32_t get32(const uint8_t* p) {
  uint32_t v = 0;
  std::memcpy(&v, p, 4);
  return ntohl(v);
}

// ------------------------------------------------------------------ options and addresses

struct Options {
  std::string ng = "127.0.0.1:2223";
  std::string local = "127.0.0.1";
  unsigned calls = 100;
  double duration_s = 10;
  unsigned pps = 50;
  unsigned workers = 1;
  unsigned slice_us = 1000;
  double drain_s = 0.5;
  int cpu_pid = 0;
  bool direct = false;
  bool busy_poll = false;
  double ng_timeout_s = 2;
};

std::optional<sockaddr_in> parse_ipv4(const std::string& host, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (inet_pton(AF_INET, host.c_str(), &sa.sin_addr) != 1) return std::nullopt;
  return sa;
}

std::optional<sockaddr_in> parse_host_port(const std::string& text) {
  size_t colon = text.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  unsigned long port = 0;
  try {
    port = std::stoul(text.substr(colon + 1));
  } catch (const std::exception&) {
    return std::nullopt;
  }
  if (port == 0 || port > 65535) return std::nullopt;
  return parse_ipv4(text.substr(0, colon), static_cast<uint16_t>(port));
}

// ------------------------------------------------------------------ ng client

// A blocking ng client on one UDP socket: one request at a time, retransmitted with the same
// cookie (the relay's reply cache answers a retransmission) until a reply with that cookie
// arrives. Main thread only.
class NgClient {
 public:
  NgClient(sockaddr_in server, double timeout_s) : server_(server), timeout_s_(timeout_s) {}
  ~NgClient() {
    if (fd_ >= 0) close(fd_);
  }
  NgClient(const NgClient&) = delete;
  NgClient& operator=(const NgClient&) = delete;

  bool open() {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) return false;
    return connect(fd_, reinterpret_cast<const sockaddr*>(&server_), sizeof server_) == 0;
  }

  // Sends `body` (a bencoded dictionary) and returns the reply's dictionary bytes, or nullopt
  // after three unanswered tries.
  std::optional<std::string> request(const std::string& body) {
    std::string cookie = std::to_string(getpid()) + "_" + std::to_string(++sequence_);
    std::string message = cookie + " " + body;
    std::string reply(size_t{65536}, '\0');
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (send(fd_, message.data(), message.size(), 0) < 0) return std::nullopt;
      int64_t deadline = now_ns(CLOCK_MONOTONIC) + static_cast<int64_t>(timeout_s_ * 1e9);
      for (;;) {
        int64_t left = deadline - now_ns(CLOCK_MONOTONIC);
        if (left <= 0) break;
        timeval tv{static_cast<time_t>(left / kNsPerSec), static_cast<suseconds_t>(left % kNsPerSec / 1000)};
        setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        ssize_t n = recv(fd_, reply.data(), reply.size(), 0);
        if (n < 0) {
          if (errno == EINTR) continue;
          break;  // timeout (EAGAIN) or an ICMP error: try again
        }
        std::string_view got(reply.data(), static_cast<size_t>(n));
        if (got.size() > cookie.size() && got.substr(0, cookie.size()) == cookie && got[cookie.size()] == ' ')
          return std::string(got.substr(cookie.size() + 1));
        // a late reply to an earlier request: keep waiting for ours
      }
    }
    return std::nullopt;
  }

 private:
  sockaddr_in server_;
  double timeout_s_;
  int fd_ = -1;
  uint64_t sequence_ = 0;
};

// ------------------------------------------------------------------ phones and calls

// One endpoint of one call: its socket and where it sends. Owned by the call table (main
// thread) during setup, used by exactly one worker during the traffic phase.
struct Phone {
  int fd = -1;
  uint16_t port = 0;
  sockaddr_in peer{};  // where its RTP goes (the relay's port for the other leg)
  uint32_t call = 0;
  uint8_t direction = 0;  // 0: A->B (sent by A), 1: B->A
  int64_t phase_ns = 0;   // offset of its sends within the packet interval
  uint32_t next_seq = 0;  // next sequence number to send
  // receive side: packets sent by the other phone of the call
  uint64_t received = 0;
  uint32_t highest_seq = 0;
  bool any = false;
  uint64_t late = 0;          // sequence not above the highest seen: reordered or duplicated
  uint32_t socket_drops = 0;  // the kernel's SO_RXQ_OVFL count: dropped at our socket (buffer full)
};

struct Results {
  uint64_t sent = 0;
  uint64_t send_errors = 0;
  uint64_t received = 0;
  uint64_t misrouted = 0;  // right magic, wrong call/direction for that socket
  uint64_t garbage = 0;    // not one of our packets
  uint64_t late = 0;
  uint64_t no_timestamp = 0;
  uint64_t negative = 0;
  LatencyHistogram kernel;
  LatencyHistogram app;
};

void close_phone(Phone& p) {
  if (p.fd >= 0) close(p.fd);
  p.fd = -1;
}

bool open_phone(Phone& p, const sockaddr_in& local) {
  p.fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (p.fd < 0) return false;
  int on = 1;
  setsockopt(p.fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
  // Datagrams the kernel dropped at this socket come with every later datagram: loss on the
  // bench's side (it fell behind), as opposed to loss in or at the relay.
  setsockopt(p.fd, SOL_SOCKET, SO_RXQ_OVFL, &on, sizeof on);
  sockaddr_in bind_to = local;
  bind_to.sin_port = 0;
  if (bind(p.fd, reinterpret_cast<const sockaddr*>(&bind_to), sizeof bind_to) != 0) return false;
  sockaddr_in got{};
  socklen_t len = sizeof got;
  if (getsockname(p.fd, reinterpret_cast<sockaddr*>(&got), &len) != 0) return false;
  p.port = ntohs(got.sin_port);
  return true;
}

std::string phone_sdp(const std::string& local, uint16_t port, uint32_t call, char side) {
  std::ostringstream s;
  s << "v=0\r\no=bench " << call * 2 + (side == 'a' ? 0 : 1) << " 1 IN IP4 " << local << "\r\ns=pinhole-bench\r\n"
    << "c=IN IP4 " << local << "\r\nt=0 0\r\nm=audio " << port << " RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    << "a=sendrecv\r\n";
  return s.str();
}

std::string call_id(uint32_t call) { return "bench-" + std::to_string(getpid()) + "-" + std::to_string(call); }

// The offer/answer/delete request dictionaries, with the keys Kamailio's rtpengine module sends
// for a NATed call (received-from, replace origin + session-connection).
std::string ng_request(std::string_view command, uint32_t call, const std::string& local, const std::string* sdp) {
  std::string out;
  bencode::Writer w(out);
  w.begin_dict();
  w.entry("command", command);
  w.entry("call-id", call_id(call));
  w.entry("from-tag", "a" + std::to_string(call));
  if (command != "offer") w.entry("to-tag", "b" + std::to_string(call));
  if (sdp != nullptr) {
    w.entry("sdp", *sdp);
    w.key("received-from").begin_list().string("IP4").string(local).end();
    w.key("replace").begin_list().string("origin").string("session-connection").end();
  } else {
    w.entry("delete-delay", int64_t{0});
  }
  w.end();
  return out;
}

// From an ok reply's dictionary: the first stream's address and port in its SDP.
std::optional<sockaddr_in> reply_media(const std::string& reply, std::string& why) {
  auto doc = bencode::decode(reply);
  if (!doc) {
    why = "reply is not bencode";
    return std::nullopt;
  }
  auto result = doc->root().find("result");
  auto result_text = result ? result->as_string() : std::nullopt;
  if (!result_text || *result_text != "ok") {
    auto reason = doc->root().find("error-reason");
    auto text = reason ? reason->as_string() : std::nullopt;
    why = "result " + std::string(result_text.value_or("?")) + ": " + std::string(text.value_or(""));
    return std::nullopt;
  }
  auto sdp_value = doc->root().find("sdp");
  auto sdp_text = sdp_value ? sdp_value->as_string() : std::nullopt;
  if (!sdp_text) {
    why = "ok reply without sdp";
    return std::nullopt;
  }
  auto desc = pinhole::sdp::parse_sdp(*sdp_text);
  if (!desc || desc->media.empty() || !desc->media[0].connection || desc->media[0].port == 0) {
    why = "reply SDP without a usable m= line";
    return std::nullopt;
  }
  return parse_ipv4(std::string(desc->media[0].connection->address_text), desc->media[0].port);
}

// ------------------------------------------------------------------ traffic worker

// Runs one worker's share of the phones from `start_ns` until `stop_ns` (sending) plus the drain.
class Worker {
 public:
  Worker(std::vector<Phone*> phones, const Options& opt, int64_t start_ns, int64_t stop_ns)
      : phones_(std::move(phones)), opt_(opt), start_ns_(start_ns), stop_ns_(stop_ns) {}

  Results& results() { return results_; }
  std::string& error() { return error_; }

  void run() {
    // Sends go out in phase order: sorting once makes the schedule a round-robin cursor.
    std::sort(phones_.begin(), phones_.end(), [](const Phone* a, const Phone* b) { return a->phase_ns < b->phase_ns; });
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (epfd < 0 || tfd < 0) {
      error_ = "epoll/timerfd";
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // the timer
    epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &ev);
    for (Phone* p : phones_) {
      ev.data.ptr = p;
      if (epoll_ctl(epfd, EPOLL_CTL_ADD, p->fd, &ev) != 0) {
        error_ = "epoll_ctl";
        close(tfd);
        close(epfd);
        return;
      }
    }
    itimerspec its{};
    its.it_value.tv_sec = start_ns_ / kNsPerSec;
    its.it_value.tv_nsec = start_ns_ % kNsPerSec;
    its.it_interval.tv_nsec = static_cast<long>(opt_.slice_us) * 1000;
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, nullptr);

    interval_ns_ = kNsPerSec / opt_.pps;
    int64_t end_ns = stop_ns_ + static_cast<int64_t>(opt_.drain_s * 1e9);
    std::array<epoll_event, kMaxEvents> events{};
    for (;;) {
      int64_t now = now_ns(CLOCK_MONOTONIC);
      if (now >= end_ns) break;
      int timeout_ms = opt_.busy_poll ? 0 : static_cast<int>((end_ns - now) / 1'000'000) + 1;
      int n = epoll_wait(epfd, events.data(), static_cast<int>(events.size()), timeout_ms);
      if (n < 0) {
        if (errno == EINTR) continue;
        error_ = "epoll_wait";
        break;
      }
      for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
        if (events[i].data.ptr == nullptr) {
          uint64_t expirations = 0;
          ssize_t r = read(tfd, &expirations, sizeof expirations);
          (void)r;
          send_due();
        } else {
          drain(*static_cast<Phone*>(events[i].data.ptr));
        }
      }
    }
    close(tfd);
    close(epfd);
  }

 private:
  // Every send whose time has come: phone `cursor_` in round `round_` is due at
  // start + round * interval + phase.
  void send_due() {
    int64_t now = now_ns(CLOCK_MONOTONIC);
    for (;;) {
      if (phones_.empty()) return;
      Phone& p = *phones_[cursor_];
      int64_t due = start_ns_ + round_ * interval_ns_ + p.phase_ns;
      if (due > now || due >= stop_ns_) return;
      send_one(p);
      if (++cursor_ == phones_.size()) {
        cursor_ = 0;
        ++round_;
      }
    }
  }

  void send_one(Phone& p) {
    std::array<uint8_t, kPacket> pkt{};
    uint32_t seq = p.next_seq++;
    pkt[0] = 0x80;  // RTP version 2
    pkt[1] = 0;     // PT 0 (PCMU)
    pkt[2] = static_cast<uint8_t>(seq >> 8);
    pkt[3] = static_cast<uint8_t>(seq);
    put32(&pkt[4], seq * 160);                     // RTP timestamp: 160 samples per packet
    put32(&pkt[8], p.call * 2 + p.direction + 1);  // SSRC
    uint8_t* body = &pkt[kRtpHeader];
    put32(body, kMagic);
    put32(body + 4, p.call);
    body[8] = p.direction;
    put32(body + 12, seq);
    auto sent_at = static_cast<uint64_t>(now_ns(CLOCK_MONOTONIC));
    std::memcpy(body + 16, &sent_at, sizeof sent_at);
    ssize_t n =
        sendto(p.fd, pkt.data(), pkt.size(), MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&p.peer), sizeof p.peer);
    if (n == static_cast<ssize_t>(pkt.size())) {
      ++results_.sent;
    } else {
      ++results_.send_errors;
    }
  }

  void drain(Phone& p) {
    for (;;) {
      for (size_t i = 0; i < kBatch; ++i) {
        iov_[i] = {buffers_[i].data(), buffers_[i].size()};
        msgs_[i] = {};
        msgs_[i].msg_hdr.msg_iov = &iov_[i];
        msgs_[i].msg_hdr.msg_iovlen = 1;
        msgs_[i].msg_hdr.msg_control = control_[i].data();
        msgs_[i].msg_hdr.msg_controllen = control_[i].size();
      }
      int n = recvmmsg(p.fd, msgs_.data(), kBatch, MSG_DONTWAIT, nullptr);
      if (n <= 0) return;  // EAGAIN (drained), or an ICMP error that we cannot act on
      // The two clocks read together: kernel timestamps are CLOCK_REALTIME, send times MONOTONIC.
      int64_t app_mono = now_ns(CLOCK_MONOTONIC);
      int64_t real_minus_mono = now_ns(CLOCK_REALTIME) - app_mono;
      for (int i = 0; i < n; ++i)
        account(p, msgs_[static_cast<size_t>(i)], buffers_[static_cast<size_t>(i)].data(), app_mono, real_minus_mono);
      if (static_cast<size_t>(n) < kBatch) return;
    }
  }

  void account(Phone& p, const mmsghdr& m, const uint8_t* data, int64_t app_mono, int64_t real_minus_mono) {
    if (m.msg_len != kPacket || get32(data + kRtpHeader) != kMagic) {
      ++results_.garbage;
      return;
    }
    const uint8_t* body = data + kRtpHeader;
    if (get32(body + 4) != p.call || body[8] == p.direction) {
      ++results_.misrouted;
      return;
    }
    uint32_t seq = get32(body + 12);
    uint64_t sent_at = 0;
    std::memcpy(&sent_at, body + 16, sizeof sent_at);
    ++p.received;
    ++results_.received;
    if (p.any && seq <= p.highest_seq) {
      ++p.late;
      ++results_.late;
    } else {
      p.highest_seq = seq;
      p.any = true;
    }
    record(results_.app, app_mono - static_cast<int64_t>(sent_at));
    const auto* hdr = &m.msg_hdr;
    bool stamped = false;
    for (const cmsghdr* c = CMSG_FIRSTHDR(hdr); c != nullptr;
         c = CMSG_NXTHDR(const_cast<msghdr*>(hdr), const_cast<cmsghdr*>(c))) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
        timespec ts{};
        std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
        int64_t kernel_mono = int64_t{ts.tv_sec} * kNsPerSec + ts.tv_nsec - real_minus_mono;
        record(results_.kernel, kernel_mono - static_cast<int64_t>(sent_at));
        stamped = true;
      } else if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
        uint32_t drops = 0;
        std::memcpy(&drops, CMSG_DATA(c), sizeof drops);
        p.socket_drops = std::max(p.socket_drops, drops);  // cumulative per socket
      }
    }
    if (!stamped) ++results_.no_timestamp;
  }

  void record(LatencyHistogram& h, int64_t ns) {
    if (ns < 0) {
      ++results_.negative;
      ns = 0;
    }
    h.record(static_cast<uint64_t>(ns));
  }

  std::vector<Phone*> phones_;
  const Options& opt_;
  int64_t start_ns_;
  int64_t stop_ns_;
  int64_t interval_ns_ = 0;
  size_t cursor_ = 0;
  int64_t round_ = 0;
  Results results_;
  std::string error_;
  // receive buffers, allocated once with the worker
  std::array<std::array<uint8_t, 2048>, kBatch> buffers_{};
  std::array<std::array<uint8_t, CMSG_SPACE(sizeof(timespec)) + 64>, kBatch> control_{};
  std::array<iovec, kBatch> iov_{};
  std::array<mmsghdr, kBatch> msgs_{};
};

// ------------------------------------------------------------------ CPU readings

// utime+stime of a process in clock ticks (all its threads), or -1 when it cannot be read.
int64_t process_ticks(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(in, line)) return -1;
  size_t paren = line.rfind(')');
  if (paren == std::string::npos) return -1;
  std::istringstream fields(line.substr(paren + 2));
  std::string field;
  int64_t utime = -1;
  int64_t stime = -1;
  // after "pid (comm) ": state is field 3, utime field 14, stime field 15
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoll(field);
    if (i == 15) stime = std::stoll(field);
  }
  return utime < 0 || stime < 0 ? -1 : utime + stime;
}

double self_cpu_s() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

// ------------------------------------------------------------------ the rtp subcommand

int run_rtp(const Options& opt) {
  auto local = parse_ipv4(opt.local, 0);
  std::optional<sockaddr_in> ng;
  if (!opt.direct) ng = parse_host_port(opt.ng);
  if (!local || (!opt.direct && !ng)) {
    std::fprintf(stderr, "pinhole-bench rtp: bad --local or --ng (IPv4 HOST:PORT)\n");
    return 2;
  }
  std::vector<std::unique_ptr<Phone>> phones;  // 2 per call: [2i] = A, [2i+1] = B
  phones.reserve(size_t{opt.calls} * 2);
  auto fail = [&](const std::string& what) {
    std::fprintf(stderr, "pinhole-bench rtp: %s\n", what.c_str());
    for (auto& p : phones) close_phone(*p);
    return 1;
  };
  int64_t interval = kNsPerSec / opt.pps;
  for (uint32_t c = 0; c < opt.calls; ++c) {
    for (uint8_t d = 0; d < 2; ++d) {
      auto p = std::make_unique<Phone>();
      p->call = c;
      p->direction = d;
      // calls spread over the interval; B half an interval after A
      p->phase_ns = (static_cast<int64_t>(c) * interval / opt.calls + d * interval / 2) % interval;
      if (!open_phone(*p, *local)) return fail("cannot open a phone socket: " + std::string(std::strerror(errno)));
      phones.push_back(std::move(p));
    }
  }

  std::unique_ptr<NgClient> client;
  int64_t setup_start = now_ns(CLOCK_MONOTONIC);
  if (opt.direct) {
    for (size_t i = 0; i < phones.size(); i += 2) {
      phones[i]->peer = *parse_ipv4(opt.local, phones[i + 1]->port);
      phones[i + 1]->peer = *parse_ipv4(opt.local, phones[i]->port);
    }
  } else {
    client = std::make_unique<NgClient>(*ng, opt.ng_timeout_s);
    if (!client->open()) return fail("cannot open the ng socket");
    for (uint32_t c = 0; c < opt.calls; ++c) {
      Phone& a = *phones[size_t{c} * 2];
      Phone& b = *phones[size_t{c} * 2 + 1];
      std::string why;
      std::string sdp_a = phone_sdp(opt.local, a.port, c, 'a');
      auto offer = client->request(ng_request("offer", c, opt.local, &sdp_a));
      if (!offer) return fail("offer " + std::to_string(c) + ": no reply from " + opt.ng);
      auto to_b = reply_media(*offer, why);  // the relay's port that B sends to
      if (!to_b) return fail("offer " + std::to_string(c) + ": " + why);
      std::string sdp_b = phone_sdp(opt.local, b.port, c, 'b');
      auto answer = client->request(ng_request("answer", c, opt.local, &sdp_b));
      if (!answer) return fail("answer " + std::to_string(c) + ": no reply from " + opt.ng);
      auto to_a = reply_media(*answer, why);  // the relay's port that A sends to
      if (!to_a) return fail("answer " + std::to_string(c) + ": " + why);
      a.peer = *to_a;
      b.peer = *to_b;
    }
  }
  double setup_s = static_cast<double>(now_ns(CLOCK_MONOTONIC) - setup_start) / 1e9;
  std::fprintf(stderr, "pinhole-bench rtp: %u calls set up in %.2f s\n", opt.calls, setup_s);

  // Workers start together 50 ms from now; phones split in contiguous call ranges.
  int64_t start = now_ns(CLOCK_MONOTONIC) + 50'000'000;
  int64_t stop = start + static_cast<int64_t>(opt.duration_s * 1e9);
  unsigned nworkers = std::max(1U, std::min(opt.workers, opt.calls));
  std::vector<std::unique_ptr<Worker>> workers;
  for (unsigned w = 0; w < nworkers; ++w) {
    size_t lo = size_t{opt.calls} * w / nworkers;
    size_t hi = size_t{opt.calls} * (w + 1) / nworkers;
    std::vector<Phone*> mine;
    for (size_t c = lo; c < hi; ++c) {
      mine.push_back(phones[2 * c].get());
      mine.push_back(phones[2 * c + 1].get());
    }
    workers.push_back(std::make_unique<Worker>(std::move(mine), opt, start, stop));
  }
  // CPU baseline just before the first packet (the workers sleep until `start`).
  while (now_ns(CLOCK_MONOTONIC) < start - 5'000'000) {
    timespec pause{0, 1'000'000};
    nanosleep(&pause, nullptr);
  }
  int64_t ticks0 = opt.cpu_pid > 0 ? process_ticks(opt.cpu_pid) : -1;
  double self0 = self_cpu_s();
  int64_t window_start = now_ns(CLOCK_MONOTONIC);
  std::vector<std::thread> threads;
  threads.reserve(workers.size());
  for (auto& w : workers) threads.emplace_back([&w] { w->run(); });
  for (auto& t : threads) t.join();
  int64_t ticks1 = opt.cpu_pid > 0 ? process_ticks(opt.cpu_pid) : -1;
  double bench_cpu = self_cpu_s() - self0;
  double window_s = static_cast<double>(now_ns(CLOCK_MONOTONIC) - window_start) / 1e9;

  Results total;
  std::string worker_error;
  for (auto& w : workers) {
    const Results& r = w->results();
    total.sent += r.sent;
    total.send_errors += r.send_errors;
    total.received += r.received;
    total.misrouted += r.misrouted;
    total.garbage += r.garbage;
    total.late += r.late;
    total.no_timestamp += r.no_timestamp;
    total.negative += r.negative;
    total.kernel.merge(r.kernel);
    total.app.merge(r.app);
    if (!w->error().empty()) worker_error = w->error();
  }
  uint64_t silent_directions = 0;   // call directions that received nothing at all
  uint64_t bench_socket_drops = 0;  // seen up to each socket's last received datagram
  for (auto& p : phones) {
    silent_directions += p->received == 0 ? 1U : 0U;
    bench_socket_drops += p->socket_drops;
  }

  // Teardown (not measured).
  uint64_t delete_failures = 0;
  if (client) {
    for (uint32_t c = 0; c < opt.calls; ++c) {
      auto reply = client->request(ng_request("delete", c, opt.local, nullptr));
      if (!reply || reply->find("2:ok") == std::string::npos) ++delete_failures;
    }
  }
  for (auto& p : phones) close_phone(*p);

  double loss = total.sent > 0 ? 1.0 - static_cast<double>(total.received) / static_cast<double>(total.sent) : 0;
  if (loss < 0) loss = 0;
  auto us = [](uint64_t ns) { return static_cast<double>(ns) / 1000.0; };
  std::printf("mode=%s\n", opt.direct ? "direct" : "relay");
  std::printf("calls=%u\n", opt.calls);
  std::printf("duration_s=%.3f\n", opt.duration_s);
  std::printf("pps_per_direction=%u\n", opt.pps);
  std::printf("workers=%u\n", nworkers);
  std::printf("busy_poll=%d\n", opt.busy_poll ? 1 : 0);
  std::printf("setup_s=%.3f\n", setup_s);
  std::printf("packets_sent=%" PRIu64 "\n", total.sent);
  std::printf("packets_received=%" PRIu64 "\n", total.received);
  std::printf("send_errors=%" PRIu64 "\n", total.send_errors);
  std::printf("misrouted=%" PRIu64 "\n", total.misrouted);
  std::printf("garbage=%" PRIu64 "\n", total.garbage);
  std::printf("late_or_duplicate=%" PRIu64 "\n", total.late);
  std::printf("silent_directions=%" PRIu64 "\n", silent_directions);
  std::printf("loss=%.6f\n", loss);
  std::printf("latency_p50_us=%.1f\n", us(total.kernel.quantile(0.50)));
  std::printf("latency_p99_us=%.1f\n", us(total.kernel.quantile(0.99)));
  std::printf("latency_max_us=%.1f\n", us(total.kernel.max()));
  std::printf("app_latency_p50_us=%.1f\n", us(total.app.quantile(0.50)));
  std::printf("app_latency_p99_us=%.1f\n", us(total.app.quantile(0.99)));
  std::printf("bench_socket_drops=%" PRIu64 "\n", bench_socket_drops);
  std::printf("no_kernel_timestamp=%" PRIu64 "\n", total.no_timestamp);
  std::printf("cpu_window_s=%.3f\n", window_s);
  std::printf("bench_cpu_s=%.3f\n", bench_cpu);
  if (ticks0 >= 0 && ticks1 >= ticks0) {
    double relay_cpu = static_cast<double>(ticks1 - ticks0) / static_cast<double>(sysconf(_SC_CLK_TCK));
    std::printf("relay_cpu_s=%.3f\n", relay_cpu);
    if (total.received > 0)
      std::printf("cpu_s_per_million_packets=%.4f\n", relay_cpu * 1e6 / static_cast<double>(total.received));
  } else if (opt.cpu_pid > 0) {
    std::fprintf(stderr, "pinhole-bench rtp: cannot read /proc/%d/stat\n", opt.cpu_pid);
  }
  if (client) std::printf("delete_failures=%" PRIu64 "\n", delete_failures);
  if (!worker_error.empty()) {
    std::fprintf(stderr, "pinhole-bench rtp: worker error: %s\n", worker_error.c_str());
    return 1;
  }
  return 0;
}

int run_main(int argc, char** argv) {
  CLI::App cli{"pinhole-bench: load generators for pinhole's benchmarks"};
  cli.require_subcommand(1);
  Options opt;
  CLI::App* rtp = cli.add_subcommand("rtp", "RTP through a media relay set up over ng: loss, added latency, CPU");
  rtp->add_option("--ng", opt.ng, "the relay's ng address (UDP, IPv4 HOST:PORT)");
  rtp->add_option("--local", opt.local, "the phones' address (IPv4)");
  rtp->add_option("--calls", opt.calls, "concurrent calls")->check(CLI::Range(1U, 30000U));
  rtp->add_option("--duration", opt.duration_s, "seconds of traffic")->check(CLI::Range(0.1, 3600.0));
  rtp->add_option("--pps", opt.pps, "packets per second per direction per call")->check(CLI::Range(1U, 1000U));
  rtp->add_option("--workers", opt.workers, "sending/receiving threads")->check(CLI::Range(1U, 64U));
  rtp->add_option("--slice-us", opt.slice_us, "pacing slice in microseconds")->check(CLI::Range(50U, 20000U));
  rtp->add_option("--drain", opt.drain_s, "seconds to keep receiving after the last send")
      ->check(CLI::Range(0.0, 60.0));
  rtp->add_option("--cpu-pid", opt.cpu_pid, "report this process's CPU time over the traffic phase");
  rtp->add_option("--ng-timeout", opt.ng_timeout_s, "seconds per ng try (3 tries)")->check(CLI::Range(0.01, 60.0));
  rtp->add_flag("--busy-poll", opt.busy_poll,
                "spin on epoll instead of sleeping: a sleeping receiver's wake-up is charged to the relay's "
                "send over loopback");
  rtp->add_flag("--direct", opt.direct, "no relay: the phones send to each other (the floor)");
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  return run_rtp(opt);
}

}  // namespace

int main(int argc, char** argv) {
  // Exceptions only for start-up bugs (std::stoll on a malformed /proc line, bad_alloc): say what
  // happened rather than abort; the traffic path does not throw.
  try {
    return run_main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "pinhole-bench: fatal: %s\n", e.what());
    return 1;
  }
}
