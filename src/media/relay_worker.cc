// Media forwarding loop: epoll, recvmmsg/sendmmsg batches, posted work, idle sweep (see
// relay_worker.h).
#include "media/relay_worker.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <system_error>

namespace pinhole::media {
namespace {

constexpr int kMaxEvents = 64;
// Batches read from one socket per wake-up before the loop moves on (fairness between sockets;
// epoll is level-triggered, so the rest is read on the next round).
constexpr int kBatchesPerEvent = 4;

}  // namespace

RelayWorker::RelayWorker(RelayWorkerConfig config, const Clock& clock, TimeoutCallback on_timeout)
    : config_(config), clock_(clock), on_timeout_(std::move(on_timeout)) {
  config_.batch = std::max<size_t>(config_.batch, 1);
  config_.max_datagram = std::max<size_t>(config_.max_datagram, 64);
  epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!epoll_.valid()) throw std::system_error(errno, std::generic_category(), "epoll_create1");
  wake_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_.valid()) throw std::system_error(errno, std::generic_category(), "eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = nullptr;  // null marks the eventfd
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_.get(), &ev) != 0) {
    throw std::system_error(errno, std::generic_category(), "epoll_ctl");
  }

  size_t n = config_.batch;
  buffers_.resize(n * config_.max_datagram);
  in_msgs_.resize(n);
  in_iov_.resize(n);
  in_addr_.resize(n);
  out_msgs_.resize(n);
  out_iov_.resize(n);
  out_addr_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    in_iov_[i] = iovec{&buffers_[i * config_.max_datagram], config_.max_datagram};
    in_msgs_[i] = mmsghdr{};
    in_msgs_[i].msg_hdr.msg_iov = &in_iov_[i];
    in_msgs_[i].msg_hdr.msg_iovlen = 1;
    in_msgs_[i].msg_hdr.msg_name = &in_addr_[i];
    out_msgs_[i] = mmsghdr{};
    out_msgs_[i].msg_hdr.msg_iov = &out_iov_[i];
    out_msgs_[i].msg_hdr.msg_iovlen = 1;
    out_msgs_[i].msg_hdr.msg_name = &out_addr_[i];
  }
}

RelayWorker::~RelayWorker() {
  stop();
  // Rules outlive nothing they point at: the sessions' ports go back to the pool now.
  TimePoint now = clock_.now();
  for (auto& [key, entry] : sessions_) clear_fast_path(*entry, now);
}

void RelayWorker::enable_fast_path(FastPath& fast_path, const net::Address& local) {
  fast_path_ = &fast_path;
  fast_path_local_ = local;
}

void RelayWorker::reconcile_fast_path(Entry& entry, TimePoint now) {
  if (fast_path_ == nullptr || entry.closed) return;
  FastPathTally tally;
  entry.fast.reconcile(*fast_path_, fast_path_local_, *entry.session, now, tally);
  if (tally.installed != 0) counters_.fast_path_installed.fetch_add(tally.installed, std::memory_order_relaxed);
  if (tally.removed != 0) counters_.fast_path_removed.fetch_add(tally.removed, std::memory_order_relaxed);
  if (tally.errors != 0) counters_.fast_path_errors.fetch_add(tally.errors, std::memory_order_relaxed);
}

void RelayWorker::clear_fast_path(Entry& entry, TimePoint now) {
  if (fast_path_ == nullptr || !entry.fast.active()) return;
  FastPathTally tally;
  entry.fast.clear(*fast_path_, *entry.session, now, tally);
  counters_.fast_path_removed.fetch_add(tally.removed, std::memory_order_relaxed);
}

bool RelayWorker::kernelized(const SessionKey& key, size_t leg, bool rtcp_socket) const {
  auto it = sessions_.find(key);
  return it != sessions_.end() && it->second->fast.installed(leg, rtcp_socket);
}

void RelayWorker::refresh_fast_path(const SessionKey& key) {
  auto it = sessions_.find(key);
  if (fast_path_ == nullptr || it == sessions_.end()) return;
  TimePoint now = clock_.now();
  it->second->fast.sync(*fast_path_, *it->second->session, now);
  reconcile_fast_path(*it->second, now);
}

void RelayWorker::start() {
  stopping_ = false;
  thread_ = std::thread([this] { run(); });
}

void RelayWorker::stop() {
  stopping_ = true;
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
  if (thread_.joinable()) thread_.join();
}

void RelayWorker::post(std::function<void()> fn) {
  {
    std::lock_guard lock(queue_mutex_);
    queue_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof one);
}

void RelayWorker::run_posted() {
  uint64_t value = 0;
  (void)!::read(wake_.get(), &value, sizeof value);
  {
    std::lock_guard lock(queue_mutex_);
    running_.swap(queue_);
  }
  for (auto& fn : running_) fn();
  running_.clear();
}

void RelayWorker::run() {
  loop_thread_ = std::this_thread::get_id();
  std::array<epoll_event, kMaxEvents> events{};
  next_sweep_ = clock_.now() + config_.sweep_interval;
  while (!stopping_) {
    auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(next_sweep_ - clock_.now());
    auto cap = std::chrono::duration_cast<std::chrono::milliseconds>(config_.sweep_interval);
    int timeout_ms = static_cast<int>(std::clamp(wait, std::chrono::milliseconds(0), cap).count());
    int n = ::epoll_wait(epoll_.get(), events.data(), kMaxEvents, timeout_ms);
    for (size_t i = 0; i < static_cast<size_t>(std::max(n, 0)); ++i) {
      if (events[i].data.ptr == nullptr) {
        run_posted();
      } else {
        on_readable(*static_cast<SocketRef*>(events[i].data.ptr));
      }
    }
    TimePoint now = clock_.now();
    if (now >= next_sweep_) {
      sweep(now);
      next_sweep_ = now + config_.sweep_interval;
    }
    graveyard_.clear();  // no event of this round points at them any more
  }
  loop_thread_ = std::thread::id{};
}

void RelayWorker::sweep(TimePoint now) {
  std::vector<SessionKey> idle;
  for (auto& [key, entry] : sessions_) {
    RelaySession& s = *entry->session;
    // The kernel's counts first: its traffic is activity too.
    if (fast_path_ != nullptr && entry->fast.active()) entry->fast.sync(*fast_path_, s, now);
    if (!s.timeout_reported && s.idle(now, config_.inactivity_timeout, config_.hold_timeout)) {
      s.timeout_reported = true;
      idle.push_back(key);
    }
  }
  // Called after the walk: a callback that removes its session must not invalidate it.
  for (const auto& key : idle) {
    counters_.timeouts_reported.fetch_add(1, std::memory_order_relaxed);
    if (on_timeout_) on_timeout_(key);
  }
}

void RelayWorker::flush(int fd, size_t count, LegStats& stats) {
  size_t sent = 0;
  while (sent < count) {
    int r = ::sendmmsg(fd, &out_msgs_[sent], static_cast<unsigned>(count - sent), MSG_DONTWAIT);
    if (r < 0) {
      if (errno == EINTR) continue;
      // The datagram at `sent` failed (full buffer, unreachable peer...): drop it, go on.
      ++stats.send_errors;
      counters_.send_errors.fetch_add(1, std::memory_order_relaxed);
      ++sent;
      continue;
    }
    counters_.forwarded.fetch_add(static_cast<uint64_t>(r), std::memory_order_relaxed);
    sent += static_cast<size_t>(r);
  }
}

void RelayWorker::on_readable(SocketRef& ref) {
  Entry& entry = *ref.entry;
  if (entry.closed) return;
  RelaySession& session = *entry.session;
  const PortLease& ports = session.leg(ref.leg).ports();
  int fd = ref.rtcp ? ports.rtcp_fd() : ports.rtp_fd();
  LegStats& stats = session.leg(ref.leg).stats();

  for (int round = 0; round < kBatchesPerEvent; ++round) {
    for (auto& m : in_msgs_) {
      m.msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      m.msg_hdr.msg_flags = 0;
      m.msg_len = 0;
    }
    int n = ::recvmmsg(fd, in_msgs_.data(), static_cast<unsigned>(in_msgs_.size()), MSG_DONTWAIT, nullptr);
    if (n <= 0) return;
    counters_.received.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
    TimePoint now = clock_.now();
    size_t out = 0;
    int out_fd = -1;
    for (size_t i = 0; i < static_cast<size_t>(n); ++i) {
      const mmsghdr& m = in_msgs_[i];
      if ((m.msg_hdr.msg_flags & MSG_TRUNC) != 0) {
        counters_.truncated.fetch_add(1, std::memory_order_relaxed);
        counters_.dropped.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      auto source = net::Endpoint::from_sockaddr(in_addr_[i], m.msg_hdr.msg_namelen);
      if (!source) {
        counters_.dropped.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      std::span<const uint8_t> data(static_cast<const uint8_t*>(in_iov_[i].iov_base), m.msg_len);
      auto action = session.on_packet(ref.leg, ref.rtcp, *source, data, now);
      if (!action) {
        counters_.dropped.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      // One sendmmsg per run of datagrams leaving through the same socket.
      if (out > 0 && action->fd != out_fd) {
        flush(out_fd, out, stats);
        out = 0;
      }
      out_fd = action->fd;
      out_iov_[out] = iovec{in_iov_[i].iov_base, m.msg_len};
      out_msgs_[out].msg_hdr.msg_namelen = action->destination.to_sockaddr(out_addr_[out]);
      ++out;
    }
    if (out > 0) flush(out_fd, out, stats);
    // Whatever latching decided in this batch may let the kernel take a stream over (or must
    // take one back).
    reconcile_fast_path(entry, now);
    if (static_cast<size_t>(n) < in_msgs_.size()) return;  // drained
  }
}

Status RelayWorker::watch(int fd, SocketRef* ref) {
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = ref;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return Error{500, "epoll_ctl add failed"};
  return {};
}

void RelayWorker::unwatch(Entry& entry) {
  for (size_t leg = 0; leg < 2; ++leg) {
    const PortLease& ports = entry.session->leg(leg).ports();
    for (int fd : {ports.rtp_fd(), ports.rtcp_fd()}) {
      if (fd >= 0) (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    }
  }
}

Status RelayWorker::add_session(std::unique_ptr<RelaySession> session) {
  if (!session) return Error{500, "null session"};
  if (sessions_.contains(session->key())) return Error{409, "relay session exists"};
  auto entry = std::make_unique<Entry>();
  entry->session = std::move(session);
  for (uint8_t leg = 0; leg < 2; ++leg) {
    for (bool rtcp : {false, true}) {
      SocketRef& ref = entry->refs[size_t{leg} * 2 + (rtcp ? 1 : 0)];
      ref = SocketRef{entry.get(), leg, rtcp};
      const PortLease& ports = entry->session->leg(leg).ports();
      int fd = rtcp ? ports.rtcp_fd() : ports.rtp_fd();
      if (fd < 0) continue;
      if (Status s = watch(fd, &ref); !s) {
        unwatch(*entry);
        return s;
      }
    }
  }
  SessionKey key = entry->session->key();
  sessions_.emplace(std::move(key), std::move(entry));
  return {};
}

bool RelayWorker::remove_session(const SessionKey& key) {
  auto it = sessions_.find(key);
  if (it == sessions_.end()) return false;
  unwatch(*it->second);
  clear_fast_path(*it->second, clock_.now());
  it->second->closed = true;
  // Freed (sockets closed, ports back to the pool) after the current batch of events, which
  // may still point at it.
  graveyard_.push_back(std::move(it->second));
  sessions_.erase(it);
  if (loop_thread_.load() != std::this_thread::get_id()) graveyard_.clear();  // loop not running
  return true;
}

RelaySession* RelayWorker::find(const SessionKey& key) {
  auto it = sessions_.find(key);
  return it == sessions_.end() ? nullptr : it->second->session.get();
}

}  // namespace pinhole::media
