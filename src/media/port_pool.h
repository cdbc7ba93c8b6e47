// Port pool of the media relay: RTP/RTCP port pairs on one local interface, handed out per call
// leg as bound, non-blocking UDP sockets and returned when the lease dies.
//
// A pair is an even RTP port and the odd RTCP port above it (RFC 3550 §11); a leg using rtcp-mux
// (RFC 5761) binds only the even port but still takes the whole pair, so a later leg without mux
// can always get both halves of any free slot. Free slots sit in a FIFO ring: allocate and
// release are O(1), and a released pair goes to the back, so a stale packet for an ended call is
// unlikely to land on a brand-new leg. A pair somebody else holds (bind fails with EADDRINUSE) is
// skipped, counted and put back at the end of the ring to be tried again later.
//
// Ownership and threads: the pool owns its slot table; a PortLease owns its sockets and gives its
// slot back when destroyed, so the pool must outlive every lease it handed out. allocate() and
// release (lease destruction) may be called from any thread: they take a mutex, which is fine
// because they run per call leg on the control path, never per packet. The counters are atomics.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "common/result.h"
#include "net/address.h"

namespace pinhole::media {

// An owned file descriptor, closed on destruction. Move-only.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

class PortPool;

// One leg's local ports: the RTP socket and, without rtcp-mux, the RTCP socket on port + 1.
// Move-only; destroying it closes the sockets and then gives the pair back to the pool.
class PortLease {
 public:
  PortLease() = default;
  PortLease(PortLease&& other) noexcept;
  PortLease& operator=(PortLease&& other) noexcept;
  PortLease(const PortLease&) = delete;
  PortLease& operator=(const PortLease&) = delete;
  ~PortLease() { reset(); }

  uint16_t rtp_port() const { return rtp_port_; }
  // 0 with rtcp-mux (RTCP then shares the RTP socket).
  uint16_t rtcp_port() const { return rtcp_fd_.valid() ? static_cast<uint16_t>(rtp_port_ + 1) : 0; }
  bool rtcp_mux() const { return !rtcp_fd_.valid(); }
  int rtp_fd() const { return rtp_fd_.get(); }
  // -1 with rtcp-mux.
  int rtcp_fd() const { return rtcp_fd_.get(); }
  bool valid() const { return pool_ != nullptr; }
  // Closes the sockets and returns the pair now (a no-op on an empty lease).
  void reset();

 private:
  friend class PortPool;
  PortPool* pool_ = nullptr;
  uint32_t slot_ = 0;
  uint16_t rtp_port_ = 0;
  UniqueFd rtp_fd_;
  UniqueFd rtcp_fd_;
};

class PortPool {
 public:
  // Pairs (even, even + 1) inside [min_port, max_port] on `address` (IPv4 or IPv6; an odd
  // min_port is rounded up, a pair whose odd half is above max_port is left out). An empty range
  // makes a pool whose every allocate() answers 503.
  PortPool(net::Address address, uint16_t min_port, uint16_t max_port);
  PortPool(const PortPool&) = delete;
  PortPool& operator=(const PortPool&) = delete;

  // Binds the next free pair (only its even port when `rtcp_mux`). No free pair, or every free
  // pair refusing to bind: Error{503, ...}, counted in exhausted().
  Result<PortLease> allocate(bool rtcp_mux);

  const net::Address& address() const { return address_; }
  size_t capacity() const { return slot_count_; }
  size_t free_count() const;
  uint64_t exhausted() const { return exhausted_.load(std::memory_order_relaxed); }
  uint64_t bind_failures() const { return bind_failures_.load(std::memory_order_relaxed); }

 private:
  friend class PortLease;
  void release(uint32_t slot);
  uint16_t port_of(uint32_t slot) const { return static_cast<uint16_t>(first_port_ + 2 * slot); }
  // Returns the bound socket or -1 (errno kept).
  int bind_udp(uint16_t port) const;

  net::Address address_;
  uint32_t first_port_ = 0;
  uint32_t slot_count_ = 0;

  mutable std::mutex mutex_;
  std::vector<uint32_t> ring_;  // free slots, FIFO; capacity slot_count_
  size_t head_ = 0;
  size_t free_ = 0;
  std::vector<bool> in_use_;  // guards against a double release

  std::atomic<uint64_t> exhausted_{0};
  std::atomic<uint64_t> bind_failures_{0};
};

}  // namespace pinhole::media
