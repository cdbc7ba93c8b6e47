/* The layout shared by the kernel fast path (relay_fast_path.bpf.c) and its loader
 * (fast_path.cc): the rule map's key and value and the slots of the per-CPU counter array.
 * Plain C with fixed-size <linux/types.h> fields and explicit padding, because the BPF program
 * and user space must agree byte for byte and the hash map hashes every byte of the key (the
 * padding is always zero, so equal keys hash equally).
 *
 * Conventions:
 * - Addresses are 16 bytes in network order. IPv4 uses the first 4 bytes and keeps the other 12
 *   zero (the same layout as net::Address; never IPv4-mapped).
 * - Ports are in network byte order, as they sit in the UDP header, so the program compares and
 *   copies them without swapping.
 * - Everything else (stats, sequence state) is in host byte order.
 */
#pragma once

#include <linux/types.h>

/* C names, shared with the BPF program. */
/* NOLINTBEGIN(readability-identifier-naming) */

/* relay_fp_key.family; not AF_* so that the value does not depend on libc headers. */
#define RELAY_FP_FAMILY_V4 4
#define RELAY_FP_FAMILY_V6 6

/* relay_fp_rewrite.flags */
#define RELAY_FP_F_RTP 0x1      /* RTP socket: >= 12 bytes, sequence tracked (else RTCP: >= 8) */
#define RELAY_FP_F_RTCP_MUX 0x2 /* RTP rule on an rtcp-mux port: RTCP (PT 192..223) misses */

/* One direction of one stream: the packet's destination (the relay socket) and source (the
 * latched peer). 40 bytes, no implicit padding. */
struct relay_fp_key {
  __u8 family; /* RELAY_FP_FAMILY_V4 / _V6 */
  __u8 pad[3]; /* zero */
  __u8 local_addr[16];
  __u8 source_addr[16];
  __u16 local_port;  /* network order */
  __u16 source_port; /* network order */
};

/* What a hit becomes: it leaves from out_local to destination, out of interface out_ifindex
 * (0: the destination is an address of this host). 48 bytes. */
struct relay_fp_rewrite {
  __u8 out_local_addr[16];
  __u8 dest_addr[16];
  __u16 out_local_port; /* network order */
  __u16 dest_port;      /* network order */
  __u8 flags;           /* RELAY_FP_F_* */
  __u8 pad[3];          /* zero */
  __u32 out_ifindex;    /* the route user space looked up when it installed the rule */
  __u32 pad2;           /* zero */
};

/* What the kernel counted since the rule was (re)installed, and media::SeqTracker's state
 * (relay_session.h), continued from what user space handed over. 48 bytes. */
struct relay_fp_stats {
  __u64 packets;
  __u64 bytes; /* UDP payload bytes, what user space counts as datagram size */
  __u64 base_ext;
  __u64 max_ext;
  __u64 received;
  __u16 first;
  __u16 last_seq; /* valid when packets > 0 (RTP rules) */
  __u8 started;
  __u8 pad[3]; /* zero */
};

struct relay_fp_value {
  struct relay_fp_rewrite rewrite;
  struct relay_fp_stats stats;
};

/* Slots of the per-CPU __u64 array "relay_fp_ctrs". */
enum relay_fp_counter {
  RELAY_FP_CTR_FORWARDED = 0,       /* rewritten and passed up the stack or redirected */
  RELAY_FP_CTR_PASSED = 1,          /* matched a rule but left to user space unchanged */
  RELAY_FP_CTR_REDIRECT_ERRORS = 2, /* a rewrite helper or bpf_redirect_neigh failed: dropped */
  RELAY_FP_CTR_COUNT = 3,
};

/* NOLINTEND(readability-identifier-naming) */
