// The kernel fast path for latched media: an eBPF program on the TC ingress hook of the relay's
// interfaces that forwards a datagram of a latched stream without it ever reaching a relay
// socket. What rtpengine does with its kernel module (xt_RTPENGINE), done with eBPF (DESIGN.md
// §2: libbpf + clang).
//
// The division of work:
// - User space (RelaySession) decides everything: latching, RTP Bleed, handover, SDP changes.
//   Only when a leg is locked to its peer and the other leg's destination is known does the
//   relay worker install a rule for that direction; any change of either makes it replace or
//   remove the rule.
// - A rule matches one exact 4-tuple: the relay socket's address and port (destination) and the
//   latched peer's (source). A packet from any other source, a malformed one (not RTP/RTCP
//   version 2, too short), an IP fragment, or RTCP on a muxed RTP port misses the rule and goes
//   up the stack to the relay socket as before, where user space drops and counts it, or handles
//   it. So the kernel never widens what user space would forward.
// - A hit rewrites the addresses and ports (the packet leaves from the other leg's relay port to
//   that leg's peer), fixes the IP and UDP checksums and sets a fresh TTL / hop limit. Where it
//   goes was looked up once, at install, in the routing table (route_lookup.h): a destination
//   on this host is delivered up the stack (handled when the packet came in on loopback; from
//   another interface it is left to user space), any other leaves by the route's interface
//   through bpf_redirect_neigh (the kernel fills in the neighbour's MAC). Not bpf_fib_lookup per
//   packet: it refuses every lookup on an interface with forwarding off, a relay host's normal
//   state. A route change reaches a stream's rule when it is next installed.
// - Per rule, the kernel counts packets and bytes and, for RTP, keeps the stream's sequence
//   tracker (media::SeqTracker's state, handed over at install and read back), so user space's
//   statistics and inactivity timeouts stay whole.
//
// Ownership and threads: a FastPath owns the loaded program, its map and the attachments; the
// attachments go away with the object (and, where the kernel has tcx links, also if the process
// dies). All methods may be called from any thread (each is one or a few bpf() syscalls on the
// shared map; the kernel serialises). Counters in the map are updated without atomics by the
// CPU that runs the program: a rule's stream comes from one sender, so races are rare and only
// ever lose a count.
#pragma once

#include <spdlog/logger.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "net/address.h"

namespace pinhole::media {

// SeqTracker's state (relay_session.h), carried into and out of the kernel.
struct FastPathSeqState {
  bool started = false;
  uint16_t first = 0;
  uint64_t base_ext = 0;
  uint64_t max_ext = 0;
  uint64_t received = 0;
};

// One direction of one stream.
struct FastPathRule {
  net::Endpoint local;        // the relay socket it arrives on (packet's destination)
  net::Endpoint source;       // the latched peer (packet's source): only it matches
  net::Endpoint out_local;    // the relay socket it leaves from (new source)
  net::Endpoint destination;  // the other leg's peer (new destination)
  // True: an RTP socket (RTP version 2, at least 12 bytes; the sequence number is tracked).
  // False: an RTCP socket (version 2, at least 8 bytes).
  bool rtp = true;
  // On an rtcp-mux port, packets that look like RTCP (RFC 5761 §4, payload type byte 192..223)
  // are not forwarded by the kernel: they go to user space (rare, and it owns their routing).
  bool rtcp_mux = false;
  FastPathSeqState seq;  // RTP: where the tracker stands at install time
};

// What the kernel counted for one rule since it was installed (packets and bytes) and the RTP
// tracker's current state.
struct FastPathRuleStats {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint16_t last_seq = 0;  // RTP, valid when packets > 0
  FastPathSeqState seq;
};

struct FastPathConfig {
  // Interfaces to attach to, by name. Empty: every interface that is up when open() runs
  // (loopback included). Interfaces that appear later are not covered (user space still
  // relays them).
  std::vector<std::string> interfaces;
  uint32_t max_rules = 65536;  // map size: four rules per call with RTCP, two with rtcp-mux
  // Where open() reports what it skipped (an interface that could not be attached, forwarding
  // off on one, libbpf's warnings). Null: not reported. Only used during open().
  std::shared_ptr<spdlog::logger> logger = nullptr;
};

// Kernel-wide totals of the program (for metrics).
struct FastPathCounters {
  uint64_t forwarded = 0;  // rewritten and passed on or redirected
  uint64_t passed = 0;     // matched a rule but left to user space (see above)
  uint64_t redirect_errors = 0;
};

class FastPath {
 public:
  // Loads the program, creates its map and attaches it to the TC ingress hook of the
  // configured interfaces. Errors (no CAP_BPF / CAP_NET_ADMIN, a kernel without BPF or clsact,
  // no interface could be attached) are Error{503, "..."} with the reason: the caller logs it
  // and relays in user space.
  static Result<std::unique_ptr<FastPath>> open(const FastPathConfig& config);
  ~FastPath();
  FastPath(const FastPath&) = delete;
  FastPath& operator=(const FastPath&) = delete;

  // Adds or replaces the rule keyed by (local, source). The four endpoints must share one
  // address family (IPv4-mapped IPv6 counts as IPv4), else Error{400}. A full map, or no route
  // to the destination: Error{503}. Blocks for one routing-table lookup (rtnetlink).
  Status install(const FastPathRule& rule);
  // Removes the rule and returns its final statistics. Not installed: Error{404}.
  Result<FastPathRuleStats> remove(const net::Endpoint& local, const net::Endpoint& source);
  // Reads a rule's statistics without changing it. Not installed: Error{404}.
  Result<FastPathRuleStats> read(const net::Endpoint& local, const net::Endpoint& source) const;

  size_t rule_count() const;
  FastPathCounters counters() const;
  // The names of the interfaces the program is attached to.
  const std::vector<std::string>& attached() const;
  // The kernel's id for the loaded program (bpftool prog show id N; the benchmark reads its
  // run time from there).
  uint32_t program_id() const;

  struct Impl;

 private:
  explicit FastPath(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace pinhole::media
