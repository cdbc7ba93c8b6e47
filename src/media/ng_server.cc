// The ng control endpoint: see ng_server.h.
#include "media/ng_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "media/ng_message.h"

namespace pinhole::media {
namespace {

// Connections accepted per poll round, so that a connect flood cannot starve the UDP socket.
constexpr int kAcceptBurst = 64;
// Bytes read from one connection per poll round (level-triggered: the rest comes next round).
constexpr size_t kTcpReadChunk = size_t{64} * 1024;
constexpr int kListenBacklog = 64;

}  // namespace

// One ng-over-TCP peer. Owned by NgServer::connections_, touched only by serve().
struct NgServer::TcpConnection {
  explicit TcpConnection(UniqueFd socket, TimePoint now) : fd(std::move(socket)), last_activity(now) {}

  UniqueFd fd;
  NgStreamSplitter splitter;
  std::string output;      // reply bytes not yet taken by the socket
  size_t output_sent = 0;  // prefix of `output` already written
  TimePoint last_activity;
  bool read_closed = false;  // the peer shut its side: answer what is queued, then close
};

NgServer::NgServer(MediaController& controller, const Clock& clock, NgServerConfig config)
    : controller_(controller), clock_(clock), config_(config) {}

NgServer::~NgServer() = default;

void NgServer::expire(TimePoint now) {
  while (!order_.empty() && (order_.front().second + config_.cache_ttl <= now || order_.size() > config_.max_cached)) {
    cache_.erase(order_.front().first);
    order_.pop_front();
  }
}

std::optional<std::string> NgServer::handle(std::string_view message) {
  ++counters_.received;
  auto frame = split_ng_frame(message);
  if (!frame) {
    ++counters_.dropped;
    return std::nullopt;
  }
  TimePoint now = clock_.now();
  expire(now);
  if (auto hit = cache_.find(std::string(frame->cookie)); hit != cache_.end()) {
    ++counters_.retransmissions;
    return hit->second;
  }
  controller_.tick();

  std::string reply;
  auto command = parse_ng_body(frame->body);
  if (!command) {
    ++counters_.errors;
    NgReply error;
    error.result = NgResult::kError;
    error.error_reason = command.error().what;
    reply = encode_ng_reply(frame->cookie, error);
  } else {
    reply = controller_.execute(frame->cookie, *command);
  }
  std::string cookie(frame->cookie);
  cache_.emplace(cookie, reply);
  order_.emplace_back(std::move(cookie), now);
  expire(now);
  return reply;
}

bool NgServer::ensure_wake() {
  if (wake_.valid()) return true;
  wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  return wake_.valid();
}

Status NgServer::bind(const net::Endpoint& endpoint) {
  sockaddr_storage ss{};
  socklen_t len = endpoint.to_sockaddr(ss);
  UniqueFd fd(::socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return Error{500, "ng socket"};
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) return Error{500, "ng bind"};
  len = sizeof ss;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return Error{500, "ng getsockname"};
  auto local = net::Endpoint::from_sockaddr(ss, len);
  if (!local) return local.error();
  if (!ensure_wake()) return Error{500, "ng eventfd"};
  local_ = *local;
  socket_ = std::move(fd);
  return Status::Ok();
}

Status NgServer::bind_tcp(const net::Endpoint& endpoint) {
  sockaddr_storage ss{};
  socklen_t len = endpoint.to_sockaddr(ss);
  UniqueFd fd(::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return Error{500, "ng tcp socket"};
  // A restarted daemon must be able to listen again while old connections sit in TIME_WAIT.
  int one = 1;
  (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&ss), len) != 0) return Error{500, "ng tcp bind"};
  if (::listen(fd.get(), kListenBacklog) != 0) return Error{500, "ng tcp listen"};
  len = sizeof ss;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len) != 0) return Error{500, "ng getsockname"};
  auto local = net::Endpoint::from_sockaddr(ss, len);
  if (!local) return local.error();
  if (!ensure_wake()) return Error{500, "ng eventfd"};
  local_tcp_ = *local;
  listener_ = std::move(fd);
  return Status::Ok();
}

void NgServer::receive_udp(std::vector<char>& buffer) {
  for (;;) {
    sockaddr_storage from{};
    socklen_t from_len = sizeof from;
    ssize_t n =
        ::recvfrom(socket_.get(), buffer.data(), buffer.size(), 0, reinterpret_cast<sockaddr*>(&from), &from_len);
    if (n < 0) break;
    if (static_cast<size_t>(n) > kNgMaxMessage) {  // truncated: cannot be framed reliably
      ++counters_.dropped;
      continue;
    }
    std::optional<std::string> reply = handle(std::string_view(buffer.data(), static_cast<size_t>(n)));
    if (!reply) continue;
    const std::string& bytes = *reply;
    (void)::sendto(socket_.get(), bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&from), from_len);
  }
}

void NgServer::accept_tcp(TimePoint now) {
  for (int i = 0; i < kAcceptBurst; ++i) {
    UniqueFd fd(::accept4(listener_.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
    if (!fd.valid()) return;  // EAGAIN, or an error on a connection already gone
    if (connections_.size() >= config_.tcp_max_connections) {
      ++counters_.tcp_rejected;  // closed by fd's destructor
      continue;
    }
    ++counters_.tcp_connections;
    ++counters_.tcp_open;
    connections_.push_back(std::make_unique<TcpConnection>(std::move(fd), now));
  }
}

std::optional<NgServer::CloseReason> NgServer::read_tcp(TcpConnection& c, std::vector<char>& buffer, TimePoint now) {
  ssize_t n = ::recv(c.fd.get(), buffer.data(), std::min(buffer.size(), kTcpReadChunk), 0);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return std::nullopt;
    return CloseReason::kPeer;  // reset
  }
  if (n == 0) {
    c.read_closed = true;
    return std::nullopt;
  }
  c.last_activity = now;
  c.splitter.append(std::string_view(buffer.data(), static_cast<size_t>(n)));
  for (;;) {
    NgStreamSplitter::Frame frame = c.splitter.next();
    if (frame.kind == NgStreamSplitter::Kind::kNeedMore) return std::nullopt;
    if (frame.kind == NgStreamSplitter::Kind::kError) {
      // Answers to the messages before the bad one are still sent if the socket takes them now.
      (void)flush_tcp(c, now);
      return frame.error.status == 413 ? CloseReason::kOversize : CloseReason::kBad;
    }
    // The cookie, its space and the body are contiguous in the splitter's buffer.
    const NgFrame& m = frame.message;
    std::string_view whole(m.cookie.data(), m.cookie.size() + 1 + m.body.size());
    std::optional<std::string> reply = handle(whole);
    if (!reply) continue;
    if (c.output.size() - c.output_sent + reply->size() > config_.tcp_max_output) return CloseReason::kOutput;
    c.output += *reply;
  }
}

bool NgServer::flush_tcp(TcpConnection& c, TimePoint now) {
  while (c.output_sent < c.output.size()) {
    ssize_t n = ::send(c.fd.get(), c.output.data() + c.output_sent, c.output.size() - c.output_sent, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    c.output_sent += static_cast<size_t>(n);
    c.last_activity = now;
  }
  c.output.clear();
  c.output_sent = 0;
  return true;
}

void NgServer::close_tcp(size_t index, CloseReason reason) {
  switch (reason) {
    case CloseReason::kBad:
      ++counters_.tcp_closed_bad;
      break;
    case CloseReason::kOversize:
      ++counters_.tcp_closed_oversize;
      break;
    case CloseReason::kIdle:
      ++counters_.tcp_closed_idle;
      break;
    case CloseReason::kOutput:
      ++counters_.tcp_closed_output;
      break;
    case CloseReason::kPeer:
    case CloseReason::kShutdown:
      break;
  }
  --counters_.tcp_open;
  // Order does not matter: swap with the last and pop (the unique_ptr closes the socket).
  connections_[index] = std::move(connections_.back());
  connections_.pop_back();
}

void NgServer::serve() {
  std::vector<char> buffer(kNgMaxMessage + 1);
  std::vector<pollfd> fds;
  constexpr size_t kFixed = 3;  // UDP socket, wake-up eventfd, TCP listener (-1: ignored by poll)
  while (!stopping_.load()) {
    fds.clear();
    fds.push_back(pollfd{socket_.get(), POLLIN, 0});
    fds.push_back(pollfd{wake_.get(), POLLIN, 0});
    fds.push_back(pollfd{listener_.get(), POLLIN, 0});
    for (const auto& c : connections_) {
      auto events = static_cast<short>(c->read_closed ? 0 : POLLIN);
      if (c->output_sent < c->output.size()) events = static_cast<short>(events | POLLOUT);
      fds.push_back(pollfd{c->fd.get(), events, 0});
    }
    int ready = ::poll(fds.data(), fds.size(), static_cast<int>(config_.tick_interval.count()));
    TimePoint now = clock_.now();
    if (ready <= 0) controller_.tick();
    if (ready > 0 && (fds[0].revents & POLLIN) != 0) receive_udp(buffer);

    // Connections first (their indexes in `fds` are those of connections_ before any change),
    // walking backwards so that close_tcp's swap-with-last never moves an unvisited one.
    for (size_t i = connections_.size(); i-- > 0;) {
      TcpConnection& c = *connections_[i];
      short revents = ready > 0 ? fds[kFixed + i].revents : short{0};
      std::optional<CloseReason> close;
      if ((revents & (POLLIN | POLLHUP | POLLERR)) != 0 && !c.read_closed) close = read_tcp(c, buffer, now);
      if (!close && c.output_sent < c.output.size() && !flush_tcp(c, now)) close = CloseReason::kPeer;
      // The peer shut its side and has every answer: done.
      if (!close && c.read_closed && c.output_sent >= c.output.size()) close = CloseReason::kPeer;
      if (!close && now - c.last_activity >= config_.tcp_idle_timeout) close = CloseReason::kIdle;
      if (close) close_tcp(i, *close);
    }
    if (ready > 0 && (fds[2].revents & POLLIN) != 0) accept_tcp(now);
  }
  while (!connections_.empty()) close_tcp(connections_.size() - 1, CloseReason::kShutdown);
}

void NgServer::stop() {
  stopping_.store(true);
  if (wake_.valid()) {
    uint64_t one = 1;
    (void)::write(wake_.get(), &one, sizeof one);
  }
}

}  // namespace pinhole::media
