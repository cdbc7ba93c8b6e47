// Port pool: FIFO ring of free RTP/RTCP pairs, sockets bound on allocation (see port_pool.h).
#include "media/port_pool.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <utility>

namespace pinhole::media {

UniqueFd& UniqueFd::operator=(UniqueFd&& other) noexcept {
  if (this != &other) reset(other.release());
  return *this;
}

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

PortLease::PortLease(PortLease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)),
      slot_(other.slot_),
      rtp_port_(other.rtp_port_),
      rtp_fd_(std::move(other.rtp_fd_)),
      rtcp_fd_(std::move(other.rtcp_fd_)) {}

PortLease& PortLease::operator=(PortLease&& other) noexcept {
  if (this != &other) {
    reset();
    pool_ = std::exchange(other.pool_, nullptr);
    slot_ = other.slot_;
    rtp_port_ = other.rtp_port_;
    rtp_fd_ = std::move(other.rtp_fd_);
    rtcp_fd_ = std::move(other.rtcp_fd_);
  }
  return *this;
}

void PortLease::reset() {
  // Sockets close before the slot is free again, so the next owner's bind cannot fail on them.
  rtp_fd_.reset();
  rtcp_fd_.reset();
  if (pool_ != nullptr) std::exchange(pool_, nullptr)->release(slot_);
}

PortPool::PortPool(net::Address address, uint16_t min_port, uint16_t max_port) : address_(address) {
  uint32_t first = min_port + (min_port % 2);
  if (first == 0) first = 2;  // port 0 would mean "any port" to bind()
  if (first + 1 <= max_port) slot_count_ = (static_cast<uint32_t>(max_port) - first + 1) / 2;
  first_port_ = first;
  ring_.resize(slot_count_);
  for (uint32_t i = 0; i < slot_count_; ++i) ring_[i] = i;
  free_ = slot_count_;
  in_use_.assign(slot_count_, false);
}

size_t PortPool::free_count() const {
  std::lock_guard lock(mutex_);
  return free_;
}

int PortPool::bind_udp(uint16_t port) const {
  int family = address_.is_v4() ? AF_INET : AF_INET6;
  int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (family == AF_INET6) {
    int on = 1;
    (void)::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
  }
  // No SO_REUSEADDR/SO_REUSEPORT: a port someone else holds must fail here, not be shared.
  sockaddr_storage storage{};
  socklen_t length = net::Endpoint{address_, port}.to_sockaddr(storage);
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&storage), length) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

Result<PortLease> PortPool::allocate(bool rtcp_mux) {
  std::lock_guard lock(mutex_);
  if (free_ == 0) {
    exhausted_.fetch_add(1, std::memory_order_relaxed);
    return Error{503, "relay port pool exhausted"};
  }
  // Each free pair is tried at most once per call: a pool full of foreign-held ports ends in a
  // 503 rather than a loop.
  for (size_t tries = free_; tries > 0; --tries) {
    uint32_t slot = ring_[head_];
    head_ = (head_ + 1) % slot_count_;
    --free_;
    UniqueFd rtp(bind_udp(port_of(slot)));
    UniqueFd rtcp;
    if (rtp.valid() && !rtcp_mux) rtcp.reset(bind_udp(static_cast<uint16_t>(port_of(slot) + 1)));
    if (!rtp.valid() || (!rtcp_mux && !rtcp.valid())) {
      bind_failures_.fetch_add(1, std::memory_order_relaxed);
      ring_[(head_ + free_) % slot_count_] = slot;  // back of the queue: retried later
      ++free_;
      continue;
    }
    in_use_[slot] = true;
    PortLease lease;
    lease.pool_ = this;
    lease.slot_ = slot;
    lease.rtp_port_ = port_of(slot);
    lease.rtp_fd_ = std::move(rtp);
    lease.rtcp_fd_ = std::move(rtcp);
    return lease;
  }
  exhausted_.fetch_add(1, std::memory_order_relaxed);
  return Error{503, "no bindable relay port"};
}

void PortPool::release(uint32_t slot) {
  std::lock_guard lock(mutex_);
  // Only leases call this, once each; the check keeps a bug from handing a port out twice.
  if (slot >= slot_count_ || !in_use_[slot]) return;
  in_use_[slot] = false;
  ring_[(head_ + free_) % slot_count_] = slot;
  ++free_;
}

}  // namespace pinhole::media
