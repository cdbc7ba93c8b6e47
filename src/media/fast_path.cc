// FastPath (fast_path.h): loads the embedded eBPF object (bpf/relay_fast_path.bpf.c) with libbpf,
// attaches it to TC ingress (a tcx link where the kernel has one, else a legacy clsact filter)
// and keeps the rule map in step with what the relay worker asks for.
#include "media/fast_path.h"

// glibc's <net/if.h> before the kernel headers that pull in <linux/if.h> (<linux/if_arp.h>,
// libbpf's): the other order defines struct ifreq twice.
// clang-format off
#include <net/if.h>
#include <linux/if_arp.h>
// clang-format on

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <string_view>
#include <utility>

#include "media/route_lookup.h"
#include "relay_fast_path_abi.h"

namespace pinhole::media {

// The compiled object, generated into the build tree by cmake/embed_bytes.cmake.
namespace embedded {
extern const unsigned char relay_fast_path_object[];
extern const size_t relay_fast_path_object_size;
}  // namespace embedded

namespace {

// An owned file descriptor (media::UniqueFd lives in pinhole_media, which this library is below).
class OwnedFd {
 public:
  OwnedFd() = default;
  explicit OwnedFd(int fd) : fd_(fd) {}
  OwnedFd(OwnedFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  OwnedFd& operator=(OwnedFd&& other) noexcept {
    if (this != &other) reset(std::exchange(other.fd_, -1));
    return *this;
  }
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  ~OwnedFd() { reset(); }
  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// BPF_TCX_INGRESS (kernel >= 6.6). Debian 12's linux-libc-dev (6.1) lacks the name; the value is
// part of the kernel ABI and cannot change.
constexpr int kBpfTcxIngress = 46;
// lo's ifindex in every network namespace (the kernel's LOOPBACK_IFINDEX).
constexpr unsigned kLoopbackIfindex = 1;

// libbpf reports through one process-wide print callback without a user pointer. open() points
// this thread-local at its own list for the duration of the call, so the warnings of that load
// land in that open()'s log; anything libbpf prints elsewhere (never on the data path) is dropped.
thread_local std::vector<std::string>* libbpf_messages = nullptr;

int libbpf_print(enum libbpf_print_level level, const char* format, va_list args) {
  if (level == LIBBPF_DEBUG || libbpf_messages == nullptr) return 0;
  std::array<char, 1024> line{};
  int n = vsnprintf(line.data(), line.size(), format, args);
  if (n <= 0) return 0;
  std::string text(line.data());
  while (!text.empty() && text.back() == '\n') text.pop_back();
  if (!text.empty()) libbpf_messages->push_back(std::move(text));
  return 0;
}

void set_libbpf_print_once() {
  static std::once_flag once;
  std::call_once(once, [] { libbpf_set_print(libbpf_print); });
}

void copy_address(const net::Address& a, uint8_t (&out)[16]) {  // NOLINT(cppcoreguidelines-avoid-c-arrays)
  std::span<const uint8_t> bytes = a.bytes();
  std::memset(out, 0, sizeof(out));
  std::memcpy(out, bytes.data(), bytes.size());
}

uint16_t to_network(uint16_t port) { return htons(port); }

Result<relay_fp_key> make_key(const net::Endpoint& local_in, const net::Endpoint& source_in) {
  net::Endpoint local = local_in.unmapped();
  net::Endpoint source = source_in.unmapped();
  if (local.address.family() != source.address.family()) {
    return Error{400, "fast path rule: local and source differ in address family"};
  }
  relay_fp_key key{};  // zeroes the padding: the map hashes every byte
  key.family = local.address.is_v4() ? RELAY_FP_FAMILY_V4 : RELAY_FP_FAMILY_V6;
  copy_address(local.address, key.local_addr);
  copy_address(source.address, key.source_addr);
  key.local_port = to_network(local.port);
  key.source_port = to_network(source.port);
  return key;
}

FastPathRuleStats to_stats(const relay_fp_stats& s) {
  FastPathRuleStats out;
  out.packets = s.packets;
  out.bytes = s.bytes;
  out.last_seq = s.last_seq;
  out.seq.started = s.started != 0;
  out.seq.first = s.first;
  out.seq.base_ext = s.base_ext;
  out.seq.max_ext = s.max_ext;
  out.seq.received = s.received;
  return out;
}

template <typename... Args>
void log_warn(const FastPathConfig& config, fmt::format_string<Args...> format, Args&&... args) {
  if (config.logger) config.logger->warn(format, std::forward<Args>(args)...);
}

struct Candidate {
  std::string name;
  unsigned ifindex = 0;
};

// The interfaces to attach to: the configured ones, or every Ethernet-like interface that is up.
std::vector<Candidate> candidates(const FastPathConfig& config) {
  std::vector<Candidate> out;
  OwnedFd sock(socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  // The TC program parses an Ethernet header: loopback and Ethernet devices carry one, tunnels
  // (ARPHRD_NONE) and the like do not.
  auto suitable = [&](const std::string& name, bool need_up, std::string& why) {
    ifreq req{};
    if (name.size() >= sizeof(req.ifr_name)) {
      why = "name too long";
      return false;
    }
    std::memcpy(req.ifr_name, name.c_str(), name.size() + 1);
    if (!sock.valid() || ioctl(sock.get(), SIOCGIFHWADDR, &req) != 0) {
      why = "cannot read its link type";
      return false;
    }
    if (req.ifr_hwaddr.sa_family != ARPHRD_ETHER && req.ifr_hwaddr.sa_family != ARPHRD_LOOPBACK) {
      why = "not an Ethernet or loopback device";
      return false;
    }
    if (need_up) {
      if (ioctl(sock.get(), SIOCGIFFLAGS, &req) != 0 || (req.ifr_flags & IFF_UP) == 0) {
        why = "down";
        return false;
      }
    }
    return true;
  };
  if (!config.interfaces.empty()) {
    for (const std::string& name : config.interfaces) {
      unsigned index = if_nametoindex(name.c_str());
      std::string why;
      if (index == 0) {
        log_warn(config, "media fast path: interface {} not found, not attached", name);
      } else if (!suitable(name, false, why)) {
        log_warn(config, "media fast path: interface {} skipped: {}", name, why);
      } else {
        out.push_back({name, index});
      }
    }
    return out;
  }
  struct if_nameindex* all = if_nameindex();
  if (all == nullptr) return out;
  for (struct if_nameindex* i = all; i->if_index != 0 && i->if_name != nullptr; ++i) {
    std::string why;
    if (suitable(i->if_name, true, why)) out.push_back({i->if_name, i->if_index});
  }
  if_freenameindex(all);
  return out;
}

}  // namespace

struct FastPath::Impl {
  // One attachment: a tcx link (its fd is the attachment) or a legacy clsact filter.
  struct Attachment {
    std::string name;
    OwnedFd link;
    bool legacy = false;
    bpf_tc_hook hook{};
    bpf_tc_opts opts{};
  };

  bpf_object* object = nullptr;
  int prog_fd = -1;
  int rules_fd = -1;
  int counters_fd = -1;
  uint32_t prog_id = 0;
  int cpus = 1;
  std::vector<Attachment> attachments;
  std::vector<std::string> attached;
  std::atomic<size_t> rules{0};

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    for (Attachment& a : attachments) {
      if (!a.legacy) continue;  // a tcx link goes when its fd closes
      // Only our filter: the clsact qdisc may carry other users' filters, so it stays.
      bpf_tc_opts detach{};
      detach.sz = sizeof(detach);
      detach.handle = a.opts.handle;
      detach.priority = a.opts.priority;
      bpf_tc_detach(&a.hook, &detach);
    }
    attachments.clear();
    if (object != nullptr) bpf_object__close(object);
  }

  Status attach(const Candidate& c, const FastPathConfig& config) {
    Attachment a;
    a.name = c.name;
    // A tcx link lives exactly as long as its fd: if the process dies, the kernel detaches the
    // program, so no stale rule keeps forwarding for a relay that is gone.
    int link =
        bpf_link_create(prog_fd, static_cast<int>(c.ifindex), static_cast<bpf_attach_type>(kBpfTcxIngress), nullptr);
    if (link >= 0) {
      a.link.reset(link);
      attachments.push_back(std::move(a));
      return Status::Ok();
    }
    // Older kernel: a direct-action filter on the clsact qdisc. It outlives the process if the
    // process is killed (the destructor removes it on a clean exit).
    a.legacy = true;
    a.hook.sz = sizeof(a.hook);
    a.hook.ifindex = static_cast<int>(c.ifindex);
    a.hook.attach_point = BPF_TC_INGRESS;
    int err = bpf_tc_hook_create(&a.hook);
    if (err != 0 && err != -EEXIST) {
      log_warn(config, "media fast path: interface {}: no tcx link ({}) and no clsact qdisc ({})", c.name,
               std::strerror(-link), std::strerror(-err));
      return Error{503, "cannot attach"};
    }
    a.opts.sz = sizeof(a.opts);
    a.opts.prog_fd = prog_fd;
    err = bpf_tc_attach(&a.hook, &a.opts);
    if (err != 0) {
      log_warn(config, "media fast path: interface {}: no tcx link ({}) and tc attach failed ({})", c.name,
               std::strerror(-link), std::strerror(-err));
      return Error{503, "cannot attach"};
    }
    // bpf_tc_detach wants the filter's handle and priority only.
    a.opts.prog_fd = 0;
    a.opts.flags = 0;
    a.opts.prog_id = 0;
    attachments.push_back(std::move(a));
    return Status::Ok();
  }
};

FastPath::FastPath(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
FastPath::~FastPath() = default;

Result<std::unique_ptr<FastPath>> FastPath::open(const FastPathConfig& config) {
  set_libbpf_print_once();
  std::vector<std::string> messages;
  libbpf_messages = &messages;
  struct Restore {
    Restore(const Restore&) = delete;
    Restore& operator=(const Restore&) = delete;
    explicit Restore(const FastPathConfig& c, std::vector<std::string>& m) : config(c), messages(m) {}
    ~Restore() {
      libbpf_messages = nullptr;
      for (const std::string& m : messages) log_warn(config, "media fast path: libbpf: {}", m);
    }
    const FastPathConfig& config;
    std::vector<std::string>& messages;
  } restore(config, messages);

  if (config.max_rules == 0) return Error{503, "fast path: max_rules is 0"};
  auto impl = std::make_unique<Impl>();
  bpf_object_open_opts opts{};
  opts.sz = sizeof(opts);
  opts.object_name = "pinhole_relay_fast_path";
  impl->object = bpf_object__open_mem(embedded::relay_fast_path_object, embedded::relay_fast_path_object_size, &opts);
  if (impl->object == nullptr) return Error{503, "fast path: cannot open the embedded BPF object"};
  bpf_map* rules = bpf_object__find_map_by_name(impl->object, "relay_fp_rules");
  bpf_map* counters = bpf_object__find_map_by_name(impl->object, "relay_fp_ctrs");
  bpf_program* prog = bpf_object__find_program_by_name(impl->object, "relay_fastpath");
  if (rules == nullptr || counters == nullptr || prog == nullptr) {
    return Error{503, "fast path: the BPF object lacks its maps or program"};
  }
  if (bpf_map__set_max_entries(rules, config.max_rules) != 0) return Error{503, "fast path: cannot size the rule map"};
  int err = bpf_object__load(impl->object);
  if (err != 0) {
    return Error{503, err == -EPERM ? "fast path: not permitted to load BPF (needs CAP_BPF and CAP_NET_ADMIN)"
                                    : "fast path: the kernel refused the BPF program"};
  }
  impl->prog_fd = bpf_program__fd(prog);
  impl->rules_fd = bpf_map__fd(rules);
  impl->counters_fd = bpf_map__fd(counters);
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) return Error{503, "fast path: cannot count the CPUs"};
  impl->cpus = cpus;
  bpf_prog_info info{};
  uint32_t info_len = sizeof(info);
  if (bpf_obj_get_info_by_fd(impl->prog_fd, &info, &info_len) == 0) impl->prog_id = info.id;

  for (const Candidate& c : candidates(config)) {
    if (!impl->attach(c, config).ok()) continue;
    impl->attached.push_back(c.name);
    if (config.logger) {
      config.logger->info("media fast path: program {} attached to {} ({})", impl->prog_id, c.name,
                          impl->attachments.back().legacy ? "clsact filter" : "tcx link");
    }
  }
  if (impl->attached.empty()) return Error{503, "fast path: no interface could be attached"};
  return std::unique_ptr<FastPath>(new FastPath(std::move(impl)));
}

Status FastPath::install(const FastPathRule& rule) {
  Result<relay_fp_key> key = make_key(rule.local, rule.source);
  if (!key.ok()) return key.error();
  net::Endpoint out_local = rule.out_local.unmapped();
  net::Endpoint destination = rule.destination.unmapped();
  net::Family family = rule.local.unmapped().address.family();
  if (out_local.address.family() != family || destination.address.family() != family) {
    return Error{400, "fast path rule: endpoints differ in address family"};
  }
  // Where the rewritten packet goes, decided once here rather than per packet in the kernel.
  Result<RouteChoice> route = lookup_route(out_local.address, destination.address);
  if (!route) return route.error();
  relay_fp_value value{};
  value.rewrite.out_ifindex = route->local ? 0 : route->ifindex;
  copy_address(out_local.address, value.rewrite.out_local_addr);
  copy_address(destination.address, value.rewrite.dest_addr);
  value.rewrite.out_local_port = to_network(out_local.port);
  value.rewrite.dest_port = to_network(destination.port);
  value.rewrite.flags =
      static_cast<uint8_t>((rule.rtp ? RELAY_FP_F_RTP : 0) | (rule.rtcp_mux ? RELAY_FP_F_RTCP_MUX : 0));
  value.stats.started = rule.seq.started ? 1 : 0;
  value.stats.first = rule.seq.first;
  value.stats.base_ext = rule.seq.base_ext;
  value.stats.max_ext = rule.seq.max_ext;
  value.stats.received = rule.seq.received;

  // Create or replace, telling which it was so that rule_count stays exact even if another
  // thread removes the same key in between (then the create is tried again).
  for (int attempt = 0; attempt < 4; ++attempt) {
    if (bpf_map_update_elem(impl_->rules_fd, &key.value(), &value, BPF_NOEXIST) == 0) {
      impl_->rules.fetch_add(1, std::memory_order_relaxed);
      return Status::Ok();
    }
    int err = errno;
    if (err == E2BIG || err == ENOMEM) return Error{503, "fast path: rule map full"};
    if (err != EEXIST) return Error{503, "fast path: rule update failed"};
    if (bpf_map_update_elem(impl_->rules_fd, &key.value(), &value, BPF_EXIST) == 0) return Status::Ok();
    if (errno != ENOENT) return Error{503, "fast path: rule update failed"};
  }
  return Error{503, "fast path: rule update raced"};
}

Result<FastPathRuleStats> FastPath::remove(const net::Endpoint& local, const net::Endpoint& source) {
  Result<relay_fp_key> key = make_key(local, source);
  if (!key.ok()) return key.error();
  relay_fp_value value{};
  // One syscall reads and deletes, so no packet counted in between is lost (kernel >= 5.14).
  if (bpf_map_lookup_and_delete_elem(impl_->rules_fd, &key.value(), &value) != 0) {
    int err = errno;
    if (err == ENOENT) return Error{404, "fast path rule not installed"};
    if (err != EINVAL && err != ENOTSUP && err != EOPNOTSUPP) return Error{503, "fast path: rule removal failed"};
    // Older kernel without lookup-and-delete on hash maps.
    if (bpf_map_lookup_elem(impl_->rules_fd, &key.value(), &value) != 0) {
      return Error{404, "fast path rule not installed"};
    }
    if (bpf_map_delete_elem(impl_->rules_fd, &key.value()) != 0) return Error{404, "fast path rule not installed"};
  }
  impl_->rules.fetch_sub(1, std::memory_order_relaxed);
  return to_stats(value.stats);
}

Result<FastPathRuleStats> FastPath::read(const net::Endpoint& local, const net::Endpoint& source) const {
  Result<relay_fp_key> key = make_key(local, source);
  if (!key.ok()) return key.error();
  relay_fp_value value{};
  if (bpf_map_lookup_elem(impl_->rules_fd, &key.value(), &value) != 0) {
    return Error{404, "fast path rule not installed"};
  }
  return to_stats(value.stats);
}

size_t FastPath::rule_count() const { return impl_->rules.load(std::memory_order_relaxed); }

FastPathCounters FastPath::counters() const {
  FastPathCounters out;
  std::vector<uint64_t> per_cpu(static_cast<size_t>(impl_->cpus));
  auto sum = [&](uint32_t slot) {
    uint64_t total = 0;
    if (bpf_map_lookup_elem(impl_->counters_fd, &slot, per_cpu.data()) != 0) return total;
    for (uint64_t v : per_cpu) total += v;
    return total;
  };
  out.forwarded = sum(RELAY_FP_CTR_FORWARDED);
  out.passed = sum(RELAY_FP_CTR_PASSED);
  out.redirect_errors = sum(RELAY_FP_CTR_REDIRECT_ERRORS);
  return out;
}

const std::vector<std::string>& FastPath::attached() const { return impl_->attached; }

uint32_t FastPath::program_id() const { return impl_->prog_id; }

}  // namespace pinhole::media
