// Remote ng relays with weights, pinning, retransmission and failover (ng_relay_pool.h).
#include "media/ng_relay_pool.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <limits>
#include <random>
#include <stdexcept>
#include <system_error>
#include <utility>

#include "media/ng_message.h"
#include "media/ng_request.h"

namespace pinhole::media {
namespace {

constexpr size_t kNone = std::numeric_limits<size_t>::max();
// Longest the loop sleeps without anything due: bounds how late a stop or a sweep can be.
constexpr std::chrono::milliseconds kMaxSleep{1000};
constexpr std::chrono::milliseconds kPinSweepInterval{1000};
// Datagrams read per socket per wake-up, so that one busy relay cannot starve the others.
constexpr int kReadBurst = 64;

std::system_error system_error(const char* what) { return {errno, std::generic_category(), what}; }

}  // namespace

Result<net::Endpoint> parse_ng_relay_address(std::string_view text) {
  constexpr std::string_view kUdp = "udp:";
  if (text.starts_with("tcp:")) return Error{400, "ng over TCP is not supported yet: use udp:HOST:PORT"};
  if (!text.starts_with(kUdp)) return Error{400, "a relay address is udp:HOST:PORT"};
  auto endpoint = net::Endpoint::parse(text.substr(kUdp.size()));
  if (!endpoint) return Error{400, "a relay address is udp:IP:PORT with a numeric IP (IPv6 in brackets)"};
  if (endpoint->port == 0) return Error{400, "a relay address needs a port (1-65535)"};
  return *endpoint;
}

NgRelayPoolCounters::NgRelayPoolCounters(MetricsRegistry& registry)
    : requests(registry.counter("pinhole_media_ng_requests_total", "Requests sent to remote media relays")),
      replies(registry.counter("pinhole_media_ng_replies_total", "Replies received from remote media relays")),
      retransmissions(
          registry.counter("pinhole_media_ng_retransmissions_total", "ng requests sent again after a timeout")),
      timeouts(registry.counter("pinhole_media_ng_timeouts_total", "ng requests a relay never answered")),
      failovers(registry.counter("pinhole_media_ng_failovers_total", "Offers moved to another relay after a timeout")),
      rejected(registry.counter("pinhole_media_ng_rejected_total",
                                "Requests refused at once (too many in flight, no relay up, the call's relay down)")),
      relay_down(registry.counter("pinhole_media_ng_relay_down_total", "Relays marked down after a timeout")),
      relay_up(registry.counter("pinhole_media_ng_relay_up_total", "Relays back up after answering a ping")),
      stray_replies(registry.counter("pinhole_media_ng_stray_replies_total",
                                     "Replies matching no request in flight (late or duplicate)")) {}

NgRelayPool::NgRelayPool(NgRelayPoolConfig config, MetricsRegistry& metrics)
    : config_(std::move(config)), counters_(metrics) {
  if (config_.relays.empty()) throw std::invalid_argument("NgRelayPool needs at least one relay");
  if (config_.tries == 0) config_.tries = 1;
  if (!config_.random) {
    // shared_ptr: std::function must be copyable, the generator is not cheap to copy.
    config_.random = [rng = std::make_shared<std::mt19937_64>(std::random_device{}())] { return (*rng)(); };
  }
  for (const auto& target : config_.relays) {
    auto relay = std::make_unique<Relay>();
    relay->target = target;
    int family = target.endpoint.address.is_v4() ? AF_INET : AF_INET6;
    relay->socket.reset(::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!relay->socket.valid()) throw system_error("ng relay socket");
    sockaddr_storage addr{};
    socklen_t len = target.endpoint.to_sockaddr(addr);
    // Connected: only this relay's datagrams arrive on the socket, so a reply's sender is known.
    if (::connect(relay->socket.get(), reinterpret_cast<const sockaddr*>(&addr), len) != 0)
      throw system_error("ng relay connect");
    relays_.push_back(std::move(relay));
  }
  wake_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!wake_.valid()) throw system_error("ng relay pool eventfd");
  // Cookies must not repeat across restarts while a relay still caches the old replies.
  std::array<char, 24> prefix{};
  std::snprintf(prefix.data(), prefix.size(), "%08llx_",
                static_cast<unsigned long long>(config_.random() & 0xffffffffULL));  // NOLINT(google-runtime-int)
  cookie_prefix_ = prefix.data();
}

NgRelayPool::~NgRelayPool() { stop(); }

void NgRelayPool::start() {
  if (running_.exchange(true)) return;
  thread_ = std::thread([this] { run(); });
}

void NgRelayPool::stop() {
  {
    std::lock_guard lock(inbox_mutex_);
    if (stopping_.exchange(true)) return;
  }
  wake();
  if (thread_.joinable()) thread_.join();
  // Whatever the thread did not take (or everything, when it never ran).
  std::deque<std::pair<proxy::MediaRequest, Done>> left;
  {
    std::lock_guard lock(inbox_mutex_);
    left.swap(inbox_);
  }
  for (auto& [request, done] : left) {
    outstanding_.fetch_sub(1, std::memory_order_relaxed);
    done(Error{503, "media relay pool stopped"});
  }
}

bool NgRelayPool::relay_is_up(size_t index) const {
  return index < relays_.size() && relays_[index]->up_flag.load(std::memory_order_relaxed);
}

void NgRelayPool::request(proxy::MediaRequest request, Done done) {
  if (outstanding_.fetch_add(1, std::memory_order_relaxed) >= config_.max_outstanding) {
    outstanding_.fetch_sub(1, std::memory_order_relaxed);
    counters_.rejected.inc();
    done(Error{503, "too many media relay requests in flight"});
    return;
  }
  {
    std::unique_lock lock(inbox_mutex_);
    if (stopping_.load() || !running_.load()) {
      lock.unlock();
      outstanding_.fetch_sub(1, std::memory_order_relaxed);
      counters_.rejected.inc();
      done(Error{503, "media relay pool is not running"});
      return;
    }
    inbox_.emplace_back(std::move(request), std::move(done));
  }
  counters_.requests.inc();
  wake();
}

void NgRelayPool::wake() const {
  uint64_t one = 1;
  // A full counter (never in practice) still leaves the fd readable: the wake-up is not lost.
  [[maybe_unused]] ssize_t n = ::write(wake_.get(), &one, sizeof one);
}

std::string NgRelayPool::next_cookie() { return cookie_prefix_ + std::to_string(++cookie_seq_); }

void NgRelayPool::run() {
  std::vector<pollfd> fds(relays_.size() + 1);
  fds[0] = {wake_.get(), POLLIN, 0};
  for (size_t i = 0; i < relays_.size(); ++i) fds[i + 1] = {relays_[i]->socket.get(), POLLIN, 0};
  next_pin_sweep_ = Clock::now() + kPinSweepInterval;
  while (!stopping_.load()) {
    Clock::time_point now = Clock::now();
    Clock::time_point next = std::min(now + kMaxSleep, next_pin_sweep_);
    if (!deadlines_.empty()) next = std::min(next, deadlines_.begin()->first);
    for (const auto& relay : relays_)
      if (!relay->up && !relay->ping_in_flight) next = std::min(next, relay->down_until);
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(next - now);
    int timeout_ms = static_cast<int>(std::clamp<int64_t>(wait.count(), 0, kMaxSleep.count()));
    for (auto& fd : fds) fd.revents = 0;
    int ready = ::poll(fds.data(), fds.size(), timeout_ms);
    if (ready < 0 && errno != EINTR) break;  // cannot happen with valid fds; stop() still answers
    if (fds[0].revents & POLLIN) {
      uint64_t count = 0;
      [[maybe_unused]] ssize_t n = ::read(wake_.get(), &count, sizeof count);
      take_inbox();
    }
    for (size_t i = 0; i < relays_.size(); ++i)
      if (fds[i + 1].revents & (POLLIN | POLLERR)) on_readable(i);
    now = Clock::now();
    expire(now);
    send_pings(now);
    forget_idle_pins(now);
  }
  // Answer what is still in flight; the inbox is drained by stop().
  auto pending = std::move(pending_);
  pending_.clear();
  deadlines_.clear();
  for (auto& [cookie, p] : pending)
    if (!p.ping) finish(p, Error{503, "media relay pool stopped"});
}

void NgRelayPool::take_inbox() {
  std::deque<std::pair<proxy::MediaRequest, Done>> batch;
  {
    std::lock_guard lock(inbox_mutex_);
    batch.swap(inbox_);
  }
  for (auto& [request, done] : batch) {
    Pending p;
    p.request = std::move(request);
    p.done = std::move(done);
    dispatch(std::move(p));
  }
}

void NgRelayPool::dispatch(Pending pending) {
  Clock::time_point now = Clock::now();
  pending.tried.assign(relays_.size(), false);
  const std::string& call_id = pending.request.call_id;
  if (auto it = pins_.find(call_id); it != pins_.end()) {
    it->second.last_used = now;
    size_t relay = it->second.relay;
    if (!relays_[relay]->up) {
      counters_.rejected.inc();
      finish(pending, Error{503, "the call's media relay is down"});
      return;
    }
    pending.may_fail_over = false;
    send_to(std::move(pending), relay);
    return;
  }
  // Not pinned: a new call (an offer), or one whose pin was forgotten. Only an offer may move on
  // to another relay: the others name sessions that a different relay does not have.
  pending.may_fail_over = pending.request.op == proxy::MediaOp::kOffer;
  size_t relay = choose(pending.tried);
  if (relay == kNone) {
    counters_.rejected.inc();
    finish(pending, Error{503, "no media relay is up"});
    return;
  }
  if (pending.request.op != proxy::MediaOp::kDelete) {
    pins_[call_id] = Pin{relay, now};
    pinned_count_.store(pins_.size(), std::memory_order_relaxed);
  }
  send_to(std::move(pending), relay);
}

size_t NgRelayPool::choose(const std::vector<bool>& exclude) {
  uint64_t total = 0;
  for (size_t i = 0; i < relays_.size(); ++i)
    if (relays_[i]->up && !exclude[i]) total += relays_[i]->target.weight;
  if (total == 0) return kNone;
  uint64_t pick = config_.random() % total;
  for (size_t i = 0; i < relays_.size(); ++i) {
    if (!relays_[i]->up || exclude[i]) continue;
    if (pick < relays_[i]->target.weight) return i;
    pick -= relays_[i]->target.weight;
  }
  return kNone;  // unreachable: pick < total
}

void NgRelayPool::send_to(Pending pending, size_t relay) {
  pending.relay = relay;
  pending.cookie = next_cookie();
  pending.wire = pending.ping ? encode_ng_ping(pending.cookie) : encode_ng_request(pending.cookie, pending.request);
  pending.tries = 1;
  pending.deadline = Clock::now() + config_.timeout;
  transmit(pending);
  deadlines_.emplace(pending.deadline, pending.cookie);
  std::string cookie = pending.cookie;
  pending_.emplace(std::move(cookie), std::move(pending));
}

void NgRelayPool::transmit(const Pending& pending) {
  // A failed send (no route, an ICMP error left on the socket) is left to the timeout: the
  // retransmission or the failover handles it like a lost datagram.
  [[maybe_unused]] ssize_t n =
      ::send(relays_[pending.relay]->socket.get(), pending.wire.data(), pending.wire.size(), MSG_NOSIGNAL);
}

void NgRelayPool::on_readable(size_t relay) {
  std::string& buffer = recv_buffer_;
  if (buffer.empty()) buffer.resize(kNgMaxMessage + 1);  // once; one byte more shows truncation
  for (int i = 0; i < kReadBurst; ++i) {
    ssize_t n = ::recv(relays_[relay]->socket.get(), buffer.data(), buffer.size(), 0);
    if (n < 0) {
      if (errno == EINTR || errno == ECONNREFUSED) continue;  // ICMP error from an earlier send
      return;                                                 // EAGAIN: drained
    }
    if (static_cast<size_t>(n) > kNgMaxMessage) continue;  // truncated: not a reply we can read
    std::string_view message(buffer.data(), static_cast<size_t>(n));
    auto frame = split_ng_frame(message);
    if (!frame) {
      counters_.stray_replies.inc();
      continue;
    }
    auto it = pending_.find(std::string(frame->cookie));
    if (it == pending_.end() || it->second.relay != relay) {
      counters_.stray_replies.inc();
      continue;
    }
    Pending p = std::move(it->second);
    pending_.erase(it);
    on_reply(p, frame->body);
  }
}

void NgRelayPool::on_reply(Pending& pending, std::string_view body) {
  Relay& relay = *relays_[pending.relay];
  if (pending.ping) {
    relay.ping_in_flight = false;
    if (is_ng_pong(body)) {
      relay.up = true;
      relay.up_flag.store(true, std::memory_order_relaxed);
      counters_.relay_up.inc();
    } else {
      relay.down_until = Clock::now() + config_.down_time;
    }
    return;
  }
  counters_.replies.inc();
  std::string reason;
  auto result = decode_ng_reply(body, pending.request.op, &reason);
  const proxy::MediaRequest& request = pending.request;
  auto pin = pins_.find(request.call_id);
  bool whole_call_deleted =
      request.op == proxy::MediaOp::kDelete && request.to_tag.empty() && request.via_branch.empty();
  // A new call the relay refused has nothing there: let its next offer choose afresh.
  bool refused_new_call = pending.may_fail_over && !result.ok();
  if (pin != pins_.end()) {
    if (whole_call_deleted || refused_new_call) {
      pins_.erase(pin);
      pinned_count_.store(pins_.size(), std::memory_order_relaxed);
    } else {
      pin->second.last_used = Clock::now();
    }
  }
  finish(pending, std::move(result));
}

void NgRelayPool::expire(Clock::time_point now) {
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    auto [deadline, cookie] = *deadlines_.begin();
    deadlines_.erase(deadlines_.begin());
    auto it = pending_.find(cookie);
    if (it == pending_.end() || it->second.deadline != deadline) continue;  // answered or rescheduled
    Pending& p = it->second;
    if (p.tries < config_.tries) {
      ++p.tries;
      p.deadline = now + config_.timeout;
      transmit(p);
      if (!p.ping) counters_.retransmissions.inc();
      deadlines_.emplace(p.deadline, cookie);
      continue;
    }
    Pending timed_out = std::move(p);
    pending_.erase(it);
    on_timeout(std::move(timed_out), now);
  }
}

void NgRelayPool::on_timeout(Pending pending, Clock::time_point now) {
  Relay& relay = *relays_[pending.relay];
  if (pending.ping) {
    relay.ping_in_flight = false;
    relay.down_until = now + config_.down_time;
    return;
  }
  counters_.timeouts.inc();
  mark_down(pending.relay, now);
  auto pin = pins_.find(pending.request.call_id);
  if (pending.may_fail_over) {
    pending.tried[pending.relay] = true;
    size_t next = choose(pending.tried);
    if (next != kNone) {
      counters_.failovers.inc();
      pins_[pending.request.call_id] = Pin{next, now};
      pinned_count_.store(pins_.size(), std::memory_order_relaxed);
      send_to(std::move(pending), next);
      return;
    }
    if (pin != pins_.end()) {
      pins_.erase(pin);
      pinned_count_.store(pins_.size(), std::memory_order_relaxed);
    }
  }
  finish(pending, Error{503, "media relay timed out"});
}

void NgRelayPool::mark_down(size_t index, Clock::time_point now) {
  Relay& relay = *relays_[index];
  if (!relay.up) return;
  relay.up = false;
  relay.up_flag.store(false, std::memory_order_relaxed);
  relay.down_until = now + config_.down_time;
  counters_.relay_down.inc();
}

void NgRelayPool::send_pings(Clock::time_point now) {
  for (size_t i = 0; i < relays_.size(); ++i) {
    Relay& relay = *relays_[i];
    if (relay.up || relay.ping_in_flight || now < relay.down_until) continue;
    relay.ping_in_flight = true;
    Pending ping;
    ping.ping = true;
    send_to(std::move(ping), i);
  }
}

void NgRelayPool::forget_idle_pins(Clock::time_point now) {
  if (now < next_pin_sweep_) return;
  next_pin_sweep_ = now + kPinSweepInterval;
  std::erase_if(pins_, [&](const auto& entry) { return now - entry.second.last_used >= config_.pin_idle; });
  pinned_count_.store(pins_.size(), std::memory_order_relaxed);
}

void NgRelayPool::finish(Pending& pending, Result<proxy::MediaReply> result) {
  outstanding_.fetch_sub(1, std::memory_order_relaxed);
  Done done = std::move(pending.done);
  if (done) done(std::move(result));
}

}  // namespace pinhole::media
