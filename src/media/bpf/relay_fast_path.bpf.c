/* The kernel fast path for latched media (see media/fast_path.h): a TC ingress program that
 * forwards a datagram of a latched RTP/RTCP stream by rewriting its addresses and ports and
 * either letting it go on up the stack (loopback to a local destination) or redirecting it out
 * of the interface user space's route lookup named, with the neighbour's MAC address. Anything it is not sure about returns TC_ACT_UNSPEC unchanged, so the
 * packet reaches the relay socket and user space decides, as without the fast path.
 *
 * Built by src/media/CMakeLists.txt with clang -target bpf and embedded into pinhole_media.
 */
/* <linux/bpf.h> (and its types) before libbpf's helper definitions, which use them. */
/* clang-format off */
#include <linux/bpf.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
/* clang-format on */
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>

#include "relay_fast_path_abi.h"

/* GPL: bpf_redirect_neigh and the checksum helpers are only offered to GPL programs. */
char LICENSE[] SEC("license") = "GPL";

#define AF_INET_ 2
#define AF_INET6_ 10
#define IP_MF_ 0x2000
#define IP_OFFSET_ 0x1fff
#define TTL_FRESH 64
#define LOOPBACK_IFINDEX 1 /* lo's ifindex in every network namespace */
#define RTP_MIN 12
#define RTCP_MIN 8
/* media::SeqTracker's constants (relay_session.h/.cc); the tracker below is the same algorithm. */
#define SEQ_SPAN 65536ULL
#define SEQ_MAX_DROPOUT 3000
#define SEQ_MAX_MISORDER 100

/* max_entries is set by the loader (FastPathConfig::max_rules) before the object is loaded. */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, 65536);
  __type(key, struct relay_fp_key);
  __type(value, struct relay_fp_value);
} relay_fp_rules SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, RELAY_FP_CTR_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} relay_fp_ctrs SEC(".maps");

static __always_inline void count(__u32 slot) {
  __u64* c = bpf_map_lookup_elem(&relay_fp_ctrs, &slot);
  if (c) *c += 1;
}

/* media::SeqTracker::on_packet on the state in the map (relay_session.cc). */
static __always_inline void track_seq(struct relay_fp_stats* s, __u16 seq) {
  if (!s->started) {
    s->started = 1;
    s->first = seq;
    s->base_ext = s->max_ext = SEQ_SPAN + seq;
    s->received = 1;
    return;
  }
  __u16 delta = (__u16)(seq - (__u16)(s->max_ext & 0xffff));
  if (delta < SEQ_MAX_DROPOUT) {
    s->max_ext += delta;
    s->received += 1;
  } else if (delta >= SEQ_SPAN - SEQ_MAX_MISORDER) {
    if (s->max_ext - (SEQ_SPAN - delta) >= s->base_ext) s->received += 1;
  } else {
    s->max_ext = (s->max_ext & ~0xffffULL) + 2 * SEQ_SPAN + seq;
    s->base_ext = s->max_ext;
    s->received = 1;
  }
}

/* What the parse found; offsets are from skb->data (the Ethernet header). */
struct parsed {
  struct relay_fp_key key;
  __u32 l3_off;
  __u32 l4_off;
  __u16 payload_len;
  __u16 udp_check;
  __u8 ttl_word[2]; /* IPv4: TTL and protocol, the 16-bit word the header checksum covers */
  __u8 head[4];     /* first payload bytes: version/flags, marker/PT, sequence number */
};

/* Parses Ethernet / IPv4 or IPv6 / UDP and the first payload bytes. 0 on success, -1 when the
 * packet is not one the fast path could handle (the caller lets it go up the stack). */
static __always_inline int parse(struct __sk_buff* skb, struct parsed* p) {
  void* data = (void*)(long)skb->data;
  void* data_end = (void*)(long)skb->data_end;
  struct ethhdr* eth = data;
  if ((void*)(eth + 1) > data_end) return -1;
  __u16 proto = eth->h_proto;
  __u32 l4_off;

  if (proto == bpf_htons(ETH_P_IP)) {
    struct iphdr* ip = (void*)(eth + 1);
    if ((void*)(ip + 1) > data_end) return -1;
    if (ip->protocol != IPPROTO_UDP) return -1;
    if (ip->frag_off & bpf_htons(IP_MF_ | IP_OFFSET_)) return -1;
    __u32 ihl = ip->ihl;
    if (ihl < 5) return -1;
    l4_off = sizeof(struct ethhdr) + ihl * 4;
  } else if (proto == bpf_htons(ETH_P_IPV6)) {
    struct ipv6hdr* ip6 = (void*)(eth + 1);
    if ((void*)(ip6 + 1) > data_end) return -1;
    /* Extension headers (fragments included) are left to user space. */
    if (ip6->nexthdr != IPPROTO_UDP) return -1;
    l4_off = sizeof(struct ethhdr) + sizeof(struct ipv6hdr);
  } else {
    return -1;
  }

  /* Headers and the start of the payload must be in the linear part for direct access. */
  __u32 want = l4_off + sizeof(struct udphdr) + RTP_MIN;
  if (want > skb->len) want = skb->len;
  if (data + want > data_end) {
    if (bpf_skb_pull_data(skb, want) < 0) return -1;
    data = (void*)(long)skb->data;
    data_end = (void*)(long)skb->data_end;
  }

  p->l3_off = sizeof(struct ethhdr);
  p->l4_off = l4_off;
  if (l4_off > 14 + 60) return -1; /* bounds the offset for the verifier */
  struct udphdr* udp = data + l4_off;
  if ((void*)(udp + 1) > data_end) return -1;
  __u16 udp_len = bpf_ntohs(udp->len);
  if (udp_len < sizeof(struct udphdr)) return -1;
  p->payload_len = udp_len - sizeof(struct udphdr);
  p->udp_check = udp->check;
  p->key.local_port = udp->dest;
  p->key.source_port = udp->source;
  __u8* payload = (void*)(udp + 1);
  if (p->payload_len >= 4) {
    if ((void*)(payload + 4) > data_end) return -1;
    __builtin_memcpy(p->head, payload, 4);
  } else if (p->payload_len >= 2) {
    if ((void*)(payload + 2) > data_end) return -1;
    p->head[0] = payload[0];
    p->head[1] = payload[1];
  }

  if (proto == bpf_htons(ETH_P_IP)) {
    struct iphdr* ip = data + sizeof(struct ethhdr);
    if ((void*)(ip + 1) > data_end) return -1;
    p->key.family = RELAY_FP_FAMILY_V4;
    __builtin_memcpy(p->key.local_addr, &ip->daddr, 4);
    __builtin_memcpy(p->key.source_addr, &ip->saddr, 4);
    __builtin_memcpy(p->ttl_word, &ip->ttl, 2);
  } else {
    struct ipv6hdr* ip6 = data + sizeof(struct ethhdr);
    if ((void*)(ip6 + 1) > data_end) return -1;
    p->key.family = RELAY_FP_FAMILY_V6;
    __builtin_memcpy(p->key.local_addr, &ip6->daddr, 16);
    __builtin_memcpy(p->key.source_addr, &ip6->saddr, 16);
  }
  return 0;
}

/* Whether the payload is what the rule forwards (else user space drops, counts or routes it). */
static __always_inline int payload_ok(const struct parsed* p, __u8 flags) {
  if ((p->head[0] >> 6) != 2) return 0;
  if (flags & RELAY_FP_F_RTP) {
    if (p->payload_len < RTP_MIN) return 0;
    /* RFC 5761 §4: on a muxed port, RTCP is told apart by the packet type byte. */
    if ((flags & RELAY_FP_F_RTCP_MUX) && p->head[1] >= 192 && p->head[1] <= 223) return 0;
  } else if (p->payload_len < RTCP_MIN) {
    return 0;
  }
  return 1;
}

/* Rewrites an IPv4 packet's addresses, ports and TTL with the helpers that keep both checksums
 * (and, for CHECKSUM_PARTIAL / COMPLETE skbs, the skb's checksum state) right. */
static __always_inline int rewrite_v4(struct __sk_buff* skb, const struct parsed* p,
                                      const struct relay_fp_rewrite* rw) {
  __u32 ip_csum = p->l3_off + offsetof(struct iphdr, check);
  __u32 udp_csum = p->l4_off + offsetof(struct udphdr, check);
  /* UDP checksum 0 is "none": keep it so; a result of 0 is written as 0xffff. */
  __u64 l4_flags = BPF_F_MARK_MANGLED_0;
  __u32 old_src, old_dst, new_src, new_dst;
  __builtin_memcpy(&old_src, p->key.source_addr, 4);
  __builtin_memcpy(&old_dst, p->key.local_addr, 4);
  __builtin_memcpy(&new_src, rw->out_local_addr, 4);
  __builtin_memcpy(&new_dst, rw->dest_addr, 4);

  if (bpf_l4_csum_replace(skb, udp_csum, old_src, new_src, l4_flags | BPF_F_PSEUDO_HDR | 4) < 0) return -1;
  if (bpf_l4_csum_replace(skb, udp_csum, old_dst, new_dst, l4_flags | BPF_F_PSEUDO_HDR | 4) < 0) return -1;
  if (bpf_l4_csum_replace(skb, udp_csum, p->key.source_port, rw->out_local_port, l4_flags | 2) < 0) return -1;
  if (bpf_l4_csum_replace(skb, udp_csum, p->key.local_port, rw->dest_port, l4_flags | 2) < 0) return -1;
  if (bpf_l3_csum_replace(skb, ip_csum, old_src, new_src, 4) < 0) return -1;
  if (bpf_l3_csum_replace(skb, ip_csum, old_dst, new_dst, 4) < 0) return -1;

  __u16 old_ttl_word, new_ttl_word;
  __u8 fresh[2] = {TTL_FRESH, p->ttl_word[1]};
  __builtin_memcpy(&old_ttl_word, p->ttl_word, 2);
  __builtin_memcpy(&new_ttl_word, fresh, 2);
  if (bpf_l3_csum_replace(skb, ip_csum, old_ttl_word, new_ttl_word, 2) < 0) return -1;

  if (bpf_skb_store_bytes(skb, p->l3_off + offsetof(struct iphdr, ttl), fresh, 1, 0) < 0) return -1;
  if (bpf_skb_store_bytes(skb, p->l3_off + offsetof(struct iphdr, saddr), &new_src, 4, 0) < 0) return -1;
  if (bpf_skb_store_bytes(skb, p->l3_off + offsetof(struct iphdr, daddr), &new_dst, 4, 0) < 0) return -1;
  if (bpf_skb_store_bytes(skb, p->l4_off + offsetof(struct udphdr, source), &rw->out_local_port, 2, 0) < 0) return -1;
  if (bpf_skb_store_bytes(skb, p->l4_off + offsetof(struct udphdr, dest), &rw->dest_port, 2, 0) < 0) return -1;
  return 0;
}

static __always_inline int rewrite_v6(struct __sk_buff* skb, const struct parsed* p,
                                      const struct relay_fp_rewrite* rw) {
  __u32 udp_csum = p->l4_off + offsetof(struct udphdr, check);
  __u64 l4_flags = BPF_F_MARK_MANGLED_0;
  /* The addresses only enter the UDP checksum through the pseudo-header: pass their difference. */
  __s64 diff = bpf_csum_diff((__be32*)p->key.source_addr, 16, (__be32*)rw->out_local_addr, 16, 0);
  if (diff < 0) return -1;
  diff = bpf_csum_diff((__be32*)p->key.local_addr, 16, (__be32*)rw->dest_addr, 16, (__wsum)diff);
  if (diff < 0) return -1;
  if (bpf_l4_csum_replace(skb, udp_csum, 0, (__u64)diff, l4_flags | BPF_F_PSEUDO_HDR) < 0) return -1;
  if (bpf_l4_csum_replace(skb, udp_csum, p->key.source_port, rw->out_local_port, l4_flags | 2) < 0) return -1;
  if (bpf_l4_csum_replace(skb, udp_csum, p->key.local_port, rw->dest_port, l4_flags | 2) < 0) return -1;

  __u8 hop = TTL_FRESH;
  if (bpf_skb_store_bytes(skb, p->l3_off + offsetof(struct ipv6hdr, hop_limit), &hop, 1, 0) < 0) return -1;
  if (bpf_skb_store_bytes(skb, p->l3_off + offsetof(struct ipv6hdr, saddr), rw->out_local_addr, 16, 0) < 0) return -1;
  if (bpf_skb_store_bytes(skb, p->l3_off + offsetof(struct ipv6hdr, daddr), rw->dest_addr, 16, 0) < 0) return -1;
  if (bpf_skb_store_bytes(skb, p->l4_off + offsetof(struct udphdr, source), &rw->out_local_port, 2, 0) < 0) return -1;
  if (bpf_skb_store_bytes(skb, p->l4_off + offsetof(struct udphdr, dest), &rw->dest_port, 2, 0) < 0) return -1;
  return 0;
}

SEC("tc")
int relay_fastpath(struct __sk_buff* skb) {
  struct parsed p = {};
  if (parse(skb, &p) < 0) return TC_ACT_UNSPEC;

  struct relay_fp_value* v = bpf_map_lookup_elem(&relay_fp_rules, &p.key);
  if (!v) return TC_ACT_UNSPEC;
  struct relay_fp_rewrite rw = v->rewrite;
  if (!payload_ok(&p, rw.flags)) return TC_ACT_UNSPEC;
  /* A zero UDP checksum is "no checksum" on IPv4 (invalid on IPv6), or, on a CHECKSUM_PARTIAL
   * skb, a pseudo-header seed that happens to be zero: the helpers cannot tell which, user space
   * can (1 in 65536 offloaded packets takes the slow path). */
  if (p.udp_check == 0) return TC_ACT_UNSPEC;

  /* Where it goes was decided by user space's route lookup at install (bpf_fib_lookup is not
   * used: it refuses every lookup on an interface with forwarding off, a relay host's normal
   * state). A local destination is only handled on loopback, where the skb already carries a
   * local route; one arriving from outside (a phone on this host talking to a remote one) would
   * need a new route and a way past the martian-source check: user space sends it. */
  int local = rw.out_ifindex == 0;
  if (local && skb->ingress_ifindex != LOOPBACK_IFINDEX) {
    count(RELAY_FP_CTR_PASSED);
    return TC_ACT_UNSPEC;
  }

  int rc = p.key.family == RELAY_FP_FAMILY_V4 ? rewrite_v4(skb, &p, &rw) : rewrite_v6(skb, &p, &rw);
  if (rc < 0) {
    /* A helper failed half way (cannot happen for a parsed linear header): the packet may be
     * half rewritten, so it must not reach the relay socket as if untouched. */
    count(RELAY_FP_CTR_REDIRECT_ERRORS);
    return TC_ACT_SHOT;
  }

  v->stats.packets += 1;
  v->stats.bytes += p.payload_len;
  if (rw.flags & RELAY_FP_F_RTP) {
    __u16 seq = ((__u16)p.head[2] << 8) | p.head[3];
    v->stats.last_seq = seq;
    track_seq(&v->stats, seq);
  }

  if (local) {
    /* Loopback to this host: on up the stack to the receiver's socket. */
    count(RELAY_FP_CTR_FORWARDED);
    return TC_ACT_OK;
  }
  /* Out of the route's interface; the kernel does the output route lookup on that interface and
   * fills in the MAC addresses from the neighbour table (resolving, and queueing, if needed). */
  long redirect = bpf_redirect_neigh(rw.out_ifindex, 0, 0, 0);
  if (redirect != TC_ACT_REDIRECT) {
    count(RELAY_FP_CTR_REDIRECT_ERRORS);
    return TC_ACT_SHOT;  /* already rewritten: it must not reach the relay socket */
  }
  count(RELAY_FP_CTR_FORWARDED);
  return TC_ACT_REDIRECT;
}
