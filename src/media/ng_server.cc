// The ng control endpoint: see ng_server.h.
#include "media/ng_server.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <vector>

namespace pinhole::media {

NgServer::NgServer(MediaController& controller, const Clock& clock, NgServerConfig config)
    : controller_(controller), clock_(clock), config_(config) {}

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
  UniqueFd wake(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake.valid()) return Error{500, "ng eventfd"};
  local_ = *local;
  socket_ = std::move(fd);
  wake_ = std::move(wake);
  return Status::Ok();
}

void NgServer::serve() {
  std::vector<char> buffer(kNgMaxMessage + 1);
  while (!stopping_.load()) {
    std::array<pollfd, 2> fds{pollfd{socket_.get(), POLLIN, 0}, pollfd{wake_.get(), POLLIN, 0}};
    int ready = ::poll(fds.data(), fds.size(), static_cast<int>(config_.tick_interval.count()));
    if (ready <= 0) {
      controller_.tick();
      continue;
    }
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
}

void NgServer::stop() {
  stopping_.store(true);
  if (wake_.valid()) {
    uint64_t one = 1;
    (void)::write(wake_.get(), &one, sizeof one);
  }
}

}  // namespace pinhole::media
