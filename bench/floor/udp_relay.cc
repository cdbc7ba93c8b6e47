// bench_udp_relay: the kernel floor of bench/signaling.sh (docs/benchmarks.md, "Signaling: the
// floor"). A minimal stateless SIP-over-UDP forwarder that moves exactly the datagrams an edge
// proxy moves per REGISTER and per call between the same SIPp peers, with only the header edits
// SIPp needs to accept them, and nothing else: no parser beyond line scanning, no transaction
// state, no timers, no allocation per datagram. Its CPU per call is what the system calls and
// wake-ups alone cost on this machine; no user-space design can go below it with the same
// datagram pattern and process topology.
//
// Per datagram, from a client (any source other than --upstream):
//   request   our Via on top, with the client's address encoded in the branch (so the reply
//             needs no state); Record-Route on INVITE, Path on REGISTER; sent to --upstream. An
//             INVITE is also answered at once with a 100 Trying built from its headers (RFC 3261
//             §16.2), as the proxy does.
// From --upstream:
//   response  our top Via removed; 100 absorbed (hop by hop); sent to the client the branch names.
//   request   dropped (the benchmark's callee sends none).
//
// Topology as pinhole's: --threads threads, each blocking in recvmmsg(MSG_WAITFORONE) on its own
// SO_REUSEPORT socket bound to --listen (or, with --shared, all on one socket as Kamailio's UDP
// receivers are); what one receive batch produces leaves in one sendmmsg.
//
// Not a product: a measuring tool, built in the release preset only and not installed. It trusts
// its input as far as the benchmark's SIPp scenarios go and drops anything it does not recognise.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

constexpr size_t kSlot = 65536;     // one receive slot: the largest UDP datagram
constexpr size_t kOutSlot = 70000;  // a forwarded datagram plus the lines we add
constexpr std::string_view kCrlf = "\r\n";

struct Options {
  sockaddr_in listen{};
  sockaddr_in upstream{};
  unsigned threads = 2;
  unsigned batch = 32;
  bool shared = false;
};

bool parse_endpoint(const char* text, sockaddr_in& out) {
  std::string s(text);
  size_t colon = s.rfind(':');
  if (colon == std::string::npos) return false;
  out = {};
  out.sin_family = AF_INET;
  if (inet_pton(AF_INET, s.substr(0, colon).c_str(), &out.sin_addr) != 1) return false;
  char* end = nullptr;
  unsigned long port = std::strtoul(s.c_str() + colon + 1, &end, 10);
  if (*end != '\0' || port == 0 || port > 65535) return false;
  out.sin_port = htons(static_cast<uint16_t>(port));
  return true;
}

bool same(const sockaddr_in& a, const sockaddr_in& b) {
  return a.sin_addr.s_addr == b.sin_addr.s_addr && a.sin_port == b.sin_port;
}

// Appends to a fixed buffer; overflow makes the datagram be dropped, never written past the end.
class Out {
 public:
  Out(char* data, size_t capacity) : data_(data), capacity_(capacity) {}
  void add(std::string_view s) {
    if (s.size() > capacity_ - size_) {
      overflow_ = true;
      return;
    }
    std::memcpy(data_ + size_, s.data(), s.size());
    size_ += s.size();
  }
  void hex(uint32_t v, int digits) {
    static constexpr char kHex[] = "0123456789abcdef";
    char buf[8];
    for (int i = digits - 1; i >= 0; --i) {
      buf[i] = kHex[v & 0xf];
      v >>= 4;
    }
    add(std::string_view(buf, static_cast<size_t>(digits)));
  }
  size_t size() const { return overflow_ ? 0 : size_; }

 private:
  char* data_;
  size_t capacity_;
  size_t size_ = 0;
  bool overflow_ = false;
};

// The header section as lines (without CRLF); the body starts after the blank line.
struct Lines {
  std::string_view start;
  std::vector<std::string_view> headers;
  std::string_view body;
  bool ok = false;
};

void split(std::string_view msg, Lines& out) {
  out.headers.clear();
  out.ok = false;
  size_t end = msg.find("\r\n\r\n");
  if (end == std::string_view::npos) return;
  out.body = msg.substr(end + 4);
  std::string_view head = msg.substr(0, end);
  size_t pos = 0;
  bool first = true;
  while (pos <= head.size()) {
    size_t eol = head.find(kCrlf, pos);
    std::string_view line = head.substr(pos, eol == std::string_view::npos ? std::string_view::npos : eol - pos);
    if (first) {
      out.start = line;
      first = false;
    } else {
      out.headers.push_back(line);
    }
    if (eol == std::string_view::npos) break;
    pos = eol + 2;
  }
  out.ok = true;
}

bool is_header(std::string_view line, std::string_view name) {
  if (line.size() <= name.size() || line[name.size()] != ':') return false;
  for (size_t i = 0; i < name.size(); ++i) {
    if ((line[i] | 0x20) != (name[i] | 0x20)) return false;
  }
  return true;
}

// Our branch: magic cookie, the client's IPv4 address and port in hex, then the client's branch
// (so retransmissions and the CANCEL-less flows of the benchmark map one to one).
void add_our_via(Out& o, const Options& opt, const sockaddr_in& client, std::string_view client_via) {
  char host[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &opt.listen.sin_addr, host, sizeof host);
  o.add("Via: SIP/2.0/UDP ");
  o.add(host);
  o.add(":");
  o.add(std::to_string(ntohs(opt.listen.sin_port)));
  o.add(";branch=z9hG4bKfl");
  o.hex(ntohl(client.sin_addr.s_addr), 8);
  o.hex(ntohs(client.sin_port), 4);
  size_t b = client_via.find("branch=");
  if (b != std::string_view::npos) {
    std::string_view rest = client_via.substr(b + 7);
    o.add(rest.substr(0, rest.find_first_of(";, ")));
  }
  o.add(kCrlf);
}

void add_route_header(Out& o, const Options& opt, std::string_view name) {
  char host[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &opt.listen.sin_addr, host, sizeof host);
  o.add(name);
  o.add(": <sip:");
  o.add(host);
  o.add(":");
  o.add(std::to_string(ntohs(opt.listen.sin_port)));
  o.add(";lr>\r\n");
}

// The client's Via with received/rport (RFC 3581), as the proxy writes it.
void add_client_via(Out& o, std::string_view via, const sockaddr_in& client) {
  char host[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &client.sin_addr, host, sizeof host);
  size_t rport = via.find(";rport");
  if (rport != std::string_view::npos && (rport + 6 == via.size() || via[rport + 6] == ';')) {
    o.add(via.substr(0, rport));
    o.add(via.substr(rport + 6));
  } else {
    o.add(via);
  }
  o.add(";received=");
  o.add(host);
  o.add(";rport=");
  o.add(std::to_string(ntohs(client.sin_port)));
  o.add(kCrlf);
}

struct Datagram {
  std::array<char, kOutSlot> bytes{};
  size_t size = 0;
  sockaddr_in to{};
};

class Relay {
 public:
  Relay(const Options& opt, int fd) : opt_(opt), fd_(fd) {
    rx_.resize(static_cast<size_t>(opt.batch) * kSlot);
    rx_headers_.resize(opt.batch);
    rx_iov_.resize(opt.batch);
    rx_from_.resize(opt.batch);
    // Up to two datagrams out per datagram in (an INVITE: the 100 and the forwarded request).
    tx_.resize(static_cast<size_t>(opt.batch) * 2);
    tx_headers_.resize(tx_.size());
    tx_iov_.resize(tx_.size());
  }

  void run() {
    for (;;) {
      for (unsigned i = 0; i < opt_.batch; ++i) {
        rx_iov_[i] = {rx_.data() + static_cast<size_t>(i) * kSlot, kSlot};
        msghdr& h = rx_headers_[i].msg_hdr;
        h = {};
        h.msg_name = &rx_from_[i];
        h.msg_namelen = sizeof(sockaddr_in);
        h.msg_iov = &rx_iov_[i];
        h.msg_iovlen = 1;
      }
      int n = ::recvmmsg(fd_, rx_headers_.data(), opt_.batch, MSG_WAITFORONE, nullptr);
      if (n <= 0) continue;  // an ICMP error report (e.g. the peer's port closed)
      tx_count_ = 0;
      for (int i = 0; i < n; ++i) {
        auto slot = static_cast<size_t>(i);
        handle(std::string_view(rx_.data() + slot * kSlot, rx_headers_[slot].msg_len), rx_from_[slot]);
      }
      flush();
    }
  }

 private:
  Datagram& next() { return tx_[tx_count_]; }
  void commit(size_t size, const sockaddr_in& to) {
    if (size == 0) return;
    tx_[tx_count_].size = size;
    tx_[tx_count_].to = to;
    ++tx_count_;
  }

  void handle(std::string_view msg, const sockaddr_in& from) {
    split(msg, lines_);
    if (!lines_.ok) return;
    bool response = lines_.start.starts_with("SIP/2.0 ");
    if (same(from, opt_.upstream)) {
      if (response) upstream_response(msg);
      return;
    }
    if (!response) client_request(from);
  }

  void client_request(const sockaddr_in& from) {
    std::string_view method = lines_.start.substr(0, lines_.start.find(' '));
    std::string_view top_via;
    for (auto h : lines_.headers) {
      if (is_header(h, "Via")) {
        top_via = h;
        break;
      }
    }
    if (top_via.empty()) return;
    if (method == "INVITE") {
      Datagram& d = next();
      Out o(d.bytes.data(), d.bytes.size());
      o.add("SIP/2.0 100 Trying\r\n");
      bool first_via = true;
      for (auto h : lines_.headers) {
        if (is_header(h, "Via")) {
          if (first_via) {
            add_client_via(o, h, from);
            first_via = false;
          } else {
            o.add(h);
            o.add(kCrlf);
          }
        } else if (is_header(h, "From") || is_header(h, "To") || is_header(h, "Call-ID") || is_header(h, "CSeq")) {
          o.add(h);
          o.add(kCrlf);
        }
      }
      o.add("Content-Length: 0\r\n\r\n");
      commit(o.size(), from);
    }
    Datagram& d = next();
    Out o(d.bytes.data(), d.bytes.size());
    o.add(lines_.start);
    o.add(kCrlf);
    add_our_via(o, opt_, from, top_via);
    if (method == "INVITE") add_route_header(o, opt_, "Record-Route");
    if (method == "REGISTER") add_route_header(o, opt_, "Path");
    bool first_via = true;
    for (auto h : lines_.headers) {
      if (first_via && is_header(h, "Via")) {
        add_client_via(o, h, from);
        first_via = false;
      } else if (is_header(h, "Route")) {
        continue;  // our own Record-Route, echoed back by the caller: popped (loose routing)
      } else {
        o.add(h);
        o.add(kCrlf);
      }
    }
    o.add(kCrlf);
    o.add(lines_.body);
    commit(o.size(), opt_.upstream);
  }

  void upstream_response(std::string_view /*msg*/) {
    // 100 Trying is hop by hop (RFC 3261 §16.7 step 5): absorbed, as the proxy does.
    if (lines_.start.starts_with("SIP/2.0 100 ")) return;
    std::string_view ours;
    for (auto h : lines_.headers) {
      if (is_header(h, "Via")) {
        ours = h;
        break;
      }
    }
    size_t b = ours.find("branch=z9hG4bKfl");
    if (b == std::string_view::npos || ours.size() < b + 16 + 12) return;
    std::string_view code = ours.substr(b + 16, 12);
    uint64_t v = 0;
    for (char c : code) {
      int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
      if (digit < 0) return;
      v = (v << 4) | static_cast<uint64_t>(digit);
    }
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_addr.s_addr = htonl(static_cast<uint32_t>(v >> 16));
    to.sin_port = htons(static_cast<uint16_t>(v & 0xffff));

    Datagram& d = next();
    Out o(d.bytes.data(), d.bytes.size());
    o.add(lines_.start);
    o.add(kCrlf);
    bool dropped = false;
    for (auto h : lines_.headers) {
      if (!dropped && is_header(h, "Via")) {
        // SIPp may put several values on one Via line: drop only the first value.
        dropped = true;
        size_t comma = h.find(',');
        if (comma == std::string_view::npos) continue;
        std::string_view rest = h.substr(comma + 1);
        while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
        o.add("Via: ");
        o.add(rest);
        o.add(kCrlf);
        continue;
      }
      o.add(h);
      o.add(kCrlf);
    }
    o.add(kCrlf);
    o.add(lines_.body);
    commit(o.size(), to);
  }

  void flush() {
    size_t done = 0;
    while (done < tx_count_) {
      size_t n = tx_count_ - done;
      for (size_t i = 0; i < n; ++i) {
        Datagram& d = tx_[done + i];
        tx_iov_[i] = {d.bytes.data(), d.size};
        msghdr& h = tx_headers_[i].msg_hdr;
        h = {};
        h.msg_name = &d.to;
        h.msg_namelen = sizeof(sockaddr_in);
        h.msg_iov = &tx_iov_[i];
        h.msg_iovlen = 1;
      }
      int sent = ::sendmmsg(fd_, tx_headers_.data(), static_cast<unsigned>(n), 0);
      if (sent <= 0) {
        ++done;  // the first one failed: drop it, send the rest
        continue;
      }
      done += static_cast<size_t>(sent);
    }
    tx_count_ = 0;
  }

  const Options& opt_;
  int fd_;
  Lines lines_;
  std::vector<char> rx_;
  std::vector<mmsghdr> rx_headers_;
  std::vector<iovec> rx_iov_;
  std::vector<sockaddr_in> rx_from_;
  std::vector<Datagram> tx_;
  size_t tx_count_ = 0;
  std::vector<mmsghdr> tx_headers_;
  std::vector<iovec> tx_iov_;
};

int open_socket(const Options& opt) {
  int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
  if (fd < 0) return -1;
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  // As pinhole and Kamailio (maxbuffer): large buffers, so short stalls do not drop datagrams.
  int size = 8 << 20;
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0) {
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&opt.listen), sizeof opt.listen) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

void usage() {
  std::fprintf(stderr,
               "usage: bench_udp_relay --listen IP:PORT --upstream IP:PORT [--threads N] [--batch N] [--shared]\n");
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  bool have_listen = false;
  bool have_upstream = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (a == "--listen") {
      const char* v = value();
      have_listen = v != nullptr && parse_endpoint(v, opt.listen);
    } else if (a == "--upstream") {
      const char* v = value();
      have_upstream = v != nullptr && parse_endpoint(v, opt.upstream);
    } else if (a == "--threads") {
      const char* v = value();
      opt.threads = v ? static_cast<unsigned>(std::strtoul(v, nullptr, 10)) : 0;
    } else if (a == "--batch") {
      const char* v = value();
      opt.batch = v ? static_cast<unsigned>(std::strtoul(v, nullptr, 10)) : 0;
    } else if (a == "--shared") {
      opt.shared = true;
    } else {
      usage();
      return 2;
    }
  }
  if (!have_listen || !have_upstream || opt.threads == 0 || opt.threads > 64 || opt.batch == 0 || opt.batch > 1024) {
    usage();
    return 2;
  }

  // SIGTERM/SIGINT are taken by the main thread (sigwait); the relay threads, blocked in
  // recvmmsg, are ended with the process.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::vector<int> fds;
  for (unsigned t = 0; t < (opt.shared ? 1U : opt.threads); ++t) {
    int fd = open_socket(opt);
    if (fd < 0) {
      std::perror("bench_udp_relay: bind");
      return 1;
    }
    fds.push_back(fd);
  }
  for (unsigned t = 0; t < opt.threads; ++t) {
    int fd = fds[opt.shared ? 0 : t];
    std::thread([&opt, fd] { Relay(opt, fd).run(); }).detach();
  }
  int sig = 0;
  sigwait(&stop_signals, &sig);
  std::_Exit(0);
}
