#include "transport/udp_endpoint.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "common/startup_error.h"
#include "sip/message.h"
#include "transport/asio.h"
#include "transport/socket_util.h"
#include "transport/worker.h"

namespace pinhole::transport {
namespace {

// Datagrams of CR and LF only: the keepalives some UAs send over UDP (RFC 5626 allows STUN only,
// but "\r\n\r\n" is common). Nothing to parse and nothing to answer.
bool is_blank(std::string_view bytes) {
  return std::all_of(bytes.begin(), bytes.end(), [](char c) { return c == '\r' || c == '\n'; });
}

// A receive pass reads at most this many batches before yielding to the rest of the loop.
constexpr int kMaxBatchesPerWakeup = 8;

}  // namespace

Result<std::unique_ptr<UdpEndpoint>> UdpEndpoint::open(Worker& worker, uint32_t socket_id, const net::Endpoint& bind) {
  auto endpoint = std::make_unique<UdpEndpoint>(worker, socket_id, bind.address.family());
  if (auto ec = open_and_bind(endpoint->socket_, bind)) {
    return startup_error(500, "cannot bind UDP " + bind.to_string() + ": " + ec.message());
  }
  endpoint->fd_ = endpoint->socket_.native_handle();
  endpoint->local_port_ = endpoint->local().port;
  return endpoint;
}

UdpEndpoint::UdpEndpoint(Worker& worker, uint32_t socket_id, net::Family family)
    : worker_(worker), socket_id_(socket_id), family_(family), socket_(worker.io()) {
  const TransportConfig& config = worker.shared().config;
  batch_ = std::max<size_t>(1, config.udp_batch);
  // One byte more than the largest message we accept, so a larger datagram shows as such; a
  // datagram cannot exceed 65535 bytes anyway.
  slot_size_ = std::min<size_t>(config.parse_limits.max_message_size, 65535) + 1;
  rx_buffer_ = std::make_unique<char[]>(batch_ * slot_size_);
  rx_headers_.resize(batch_);
  rx_iov_.resize(batch_);
  rx_from_.resize(batch_);
  tx_.resize(batch_);
  tx_headers_.resize(batch_);
  tx_iov_.resize(batch_);
}

net::Endpoint UdpEndpoint::local() const {
  boost::system::error_code ec;
  auto ep = socket_.local_endpoint(ec);
  if (ec) return {};
  auto r = from_asio(ep);
  return r ? *r : net::Endpoint{};
}

void UdpEndpoint::start() { wait_readable(); }

void UdpEndpoint::wait_readable() {
  if (closed_) return;
  // `this` is safe: the endpoint lives as long as its worker, and a handler still queued when the
  // worker goes is destroyed with the io_context without running.
  socket_.async_wait(boost::asio::ip::udp::socket::wait_read, [this](const boost::system::error_code& ec) {
    if (ec || closed_) return;  // operation_aborted: closed
    receive();
    wait_readable();
  });
}

void UdpEndpoint::receive() {
  const int fd = socket_.native_handle();
  for (int round = 0; round < kMaxBatchesPerWakeup && !closed_; ++round) {
    for (size_t i = 0; i < batch_; ++i) {
      rx_iov_[i] = {rx_buffer_.get() + i * slot_size_, slot_size_};
      msghdr& h = rx_headers_[i].msg_hdr;
      h = {};
      h.msg_name = &rx_from_[i];
      h.msg_namelen = sizeof(sockaddr_storage);
      h.msg_iov = &rx_iov_[i];
      h.msg_iovlen = 1;
      rx_headers_[i].msg_len = 0;
    }
    int n = ::recvmmsg(fd, rx_headers_.data(), static_cast<unsigned>(batch_), MSG_DONTWAIT, nullptr);
    if (n <= 0) return;  // EAGAIN: drained; other errors (ICMP reports) also end this pass
    const auto received = static_cast<size_t>(n);
    WorkerCounters::inc(worker_.counters().udp_datagrams_in, received);
    worker_.begin_batch();
    for (size_t i = 0; i < received && !closed_; ++i) {
      deliver(i, rx_headers_[i].msg_len, (rx_headers_[i].msg_hdr.msg_flags & MSG_TRUNC) != 0);
    }
    worker_.end_batch();
    if (received < batch_) return;
  }
}

void UdpEndpoint::deliver(size_t slot, size_t length, bool truncated) {
  const char* data = rx_buffer_.get() + slot * slot_size_;
  std::string_view bytes(data, length);
  if (is_blank(bytes)) return;
  auto from = net::Endpoint::from_sockaddr(rx_from_[slot], rx_headers_[slot].msg_hdr.msg_namelen);
  if (!from) return;
  net::Flow flow{net::Transport::kUdp, socket_id_, *from, 0};
  MessageHandler* handler = worker_.handler();
  const sip::ParseLimits& limits = worker_.shared().config.parse_limits;
  if (static_cast<uint8_t>(bytes.front()) < 4) {  // RFC 7983: STUN, not SIP (which starts with a letter)
    if (handler) handler->on_binary_datagram(flow, worker_.index(), bytes);
    return;
  }

  if (truncated || length > limits.max_message_size) {
    worker_.counters().drop(DropReason::kTooLarge);
    if (handler) handler->on_unparsable(flow, worker_.index(), bytes, Error{413, "datagram exceeds the size limit"});
    return;
  }
  // The message owns an exact-size copy: the slot is reused by the next recvmmsg, and a 64 KiB
  // slot per queued message would waste memory.
  auto buffer = std::make_unique<char[]>(length);
  std::memcpy(buffer.get(), data, length);
  auto message = sip::Message::parse(std::move(buffer), length, sip::Framing::kDatagram, limits);
  if (!message) {
    worker_.counters().drop(message.error().status == 413 ? DropReason::kTooLarge : DropReason::kParseError);
    if (handler) handler->on_unparsable(flow, worker_.index(), bytes, message.error());
    return;
  }
  if (handler) handler->on_message(Inbound{std::move(message).value(), flow, worker_.index()});
}

bool UdpEndpoint::send(const net::Endpoint& to, std::string_view bytes) {
  if (closed_ || !addressable(to)) {
    WorkerCounters::inc(worker_.counters().send_failures);
    return false;
  }
  Pending& p = tx_[tx_count_++];
  p.bytes.assign(bytes);
  p.to_length = to.to_sockaddr(p.to);
  if (tx_count_ == tx_.size()) {
    flush();
  } else if (!flush_posted_) {
    flush_posted_ = true;
    if (worker_.batching() && worker_.on_own_thread()) {
      worker_.defer_flush(this);
    } else {
      boost::asio::post(worker_.io(), [this] { flush_deferred(); });
    }
  }
  return true;
}

void UdpEndpoint::flush_deferred() {
  flush_posted_ = false;
  flush();
}

void UdpEndpoint::flush() {
  size_t done = 0;
  while (done < tx_count_ && !closed_) {
    const size_t n = tx_count_ - done;
    for (size_t i = 0; i < n; ++i) {
      Pending& p = tx_[done + i];
      tx_iov_[i] = {p.bytes.data(), p.bytes.size()};
      msghdr& h = tx_headers_[i].msg_hdr;
      h = {};
      h.msg_name = &p.to;
      h.msg_namelen = p.to_length;
      h.msg_iov = &tx_iov_[i];
      h.msg_iovlen = 1;
    }
    int sent = ::sendmmsg(socket_.native_handle(), tx_headers_.data(), static_cast<unsigned>(n), MSG_DONTWAIT);
    if (sent < 0) {
      if (errno == EINTR) continue;
      // The first datagram failed (buffer full, unreachable): drop it and go on with the rest.
      WorkerCounters::inc(worker_.counters().send_failures);
      ++done;
      continue;
    }
    WorkerCounters::inc(worker_.counters().udp_datagrams_out, static_cast<uint64_t>(sent));
    done += static_cast<size_t>(sent);
  }
  if (done < tx_count_) WorkerCounters::inc(worker_.counters().send_failures, tx_count_ - done);
  tx_count_ = 0;
}

bool UdpEndpoint::send_now(const net::Endpoint& to, std::string_view bytes) {
  if (closed_ || !addressable(to)) {
    WorkerCounters::inc(worker_.counters().send_failures);
    return false;
  }
  sockaddr_storage addr{};
  socklen_t length = to.to_sockaddr(addr);
  ssize_t n =
      ::sendto(fd_.load(), bytes.data(), bytes.size(), MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&addr), length);
  if (n < 0) {
    WorkerCounters::inc(worker_.counters().send_failures);
    return false;
  }
  WorkerCounters::inc(worker_.counters().udp_datagrams_out);
  return true;
}

void UdpEndpoint::close() {
  if (closed_) return;
  flush();
  closed_ = true;
  fd_ = -1;
  boost::system::error_code ec;
  socket_.close(ec);
}

}  // namespace pinhole::transport
