#include "transport/stream_connection.h"

#include <algorithm>
#include <utility>

#include "sip/message.h"
#include "transport/asio.h"
#include "transport/socket_util.h"
#include "transport/worker.h"

namespace pinhole::transport {
namespace {

constexpr size_t kReadBufferSize = size_t{8} * 1024;
constexpr size_t kHeadLimit = size_t{8} * 1024;  // enough for the start line and the Vias
constexpr size_t kMaxBuffersPerWrite = 64;       // one gathered write
// How long a connection closed for a framing error may take to take our last answer, and then
// to close its side, before it is cut.
constexpr auto kLingerTime = std::chrono::seconds(2);

}  // namespace

std::shared_ptr<StreamConnection> StreamConnection::accepted(Worker& worker, const net::Flow& flow,
                                                             boost::asio::ip::tcp::socket socket) {
  auto c = std::make_shared<StreamConnection>(worker, flow, /*outbound=*/false);
  if (flow.transport == net::Transport::kTls) {
    c->tls_.emplace(std::move(socket), *worker.shared().tls->server());
  } else {
    c->tcp_ = std::move(socket);
  }
  c->connected_ = true;
  return c;
}

std::shared_ptr<StreamConnection> StreamConnection::outbound(Worker& worker, const net::Flow& flow,
                                                             const std::optional<net::Endpoint>& local,
                                                             std::string server_name) {
  auto c = std::make_shared<StreamConnection>(worker, flow, /*outbound=*/true);
  c->server_name_ = std::move(server_name);
  if (flow.transport == net::Transport::kTls) c->tls_.emplace(worker.io(), worker.shared().tls->client());
  // The socket is opened here so that start() only has to connect.
  boost::system::error_code ec;
  auto& socket = c->lowest();
  socket.open(flow.remote.address.is_v6() ? boost::asio::ip::tcp::v6() : boost::asio::ip::tcp::v4(), ec);
  if (!ec && local) socket.bind(to_asio<boost::asio::ip::tcp::endpoint>(*local), ec);
  // A failure here shows as a failed connect in start() (the socket is closed).
  if (ec) socket.close(ec);
  return c;
}

StreamConnection::StreamConnection(Worker& worker, const net::Flow& flow, bool outbound)
    : worker_(worker),
      flow_(flow),
      outbound_(outbound),
      tcp_(worker.io()),
      timer_(worker.io()),
      framer_(worker.shared().config.parse_limits),
      read_buffer_(std::make_unique<char[]>(kReadBufferSize)) {}

StreamConnection::~StreamConnection() = default;

void StreamConnection::start() {
  last_activity_ = Clock::now();
  phase_deadline_ = last_activity_ + worker_.shared().config.limits.connect_timeout;
  if (outbound_) {
    state_ = State::kConnecting;
    arm_timer(phase_deadline_);
    auto self = shared_from_this();
    if (!lowest().is_open()) {
      // Could not open or bind: report it from the loop, like any connect failure.
      boost::asio::post(worker_.io(), [self] { self->on_connected(boost::asio::error::bad_descriptor); });
      return;
    }
    lowest().async_connect(to_asio<boost::asio::ip::tcp::endpoint>(flow_.remote),
                           [self](const boost::system::error_code& ec) { self->on_connected(ec); });
    return;
  }
  if (tls_) {
    arm_timer(phase_deadline_);
    handshake();
  } else {
    on_established();
  }
}

void StreamConnection::on_connected(const boost::system::error_code& ec) {
  if (state_ == State::kClosed) return;
  if (ec) {
    close();
    return;
  }
  if (tls_) {
    std::string name = server_name_.empty() ? flow_.remote.address.to_string() : server_name_;
    worker_.shared().tls->prepare_client(*tls_, name);
    handshake();
  } else {
    on_established();
  }
}

void StreamConnection::handshake() {
  state_ = State::kHandshaking;
  auto self = shared_from_this();
  auto type = outbound_ ? TlsStream::client : TlsStream::server;
  tls_->async_handshake(type, [self](const boost::system::error_code& ec) {
    if (self->state_ == State::kClosed) return;
    if (ec) {
      self->worker_.counters().drop(DropReason::kTlsHandshake);
      self->close();
      return;
    }
    self->on_established();
  });
}

void StreamConnection::on_established() {
  state_ = State::kOpen;
  if (outbound_) connected_ = true;
  last_activity_ = Clock::now();
  arm_timer(deadline());
  read();
  if (!write_queue_.empty() && !writing_) start_write();
}

void StreamConnection::read() {
  auto self = shared_from_this();
  with_stream([&](auto& stream) {
    stream.async_read_some(boost::asio::buffer(read_buffer_.get(), kReadBufferSize),
                           [self](const boost::system::error_code& ec, size_t n) { self->on_read(ec, n); });
  });
}

void StreamConnection::on_read(const boost::system::error_code& ec, size_t n) {
  if (state_ == State::kClosed) return;
  if (ec) {  // EOF, reset, TLS error: the flow is gone
    close();
    return;
  }
  last_activity_ = Clock::now();
  if (state_ == State::kLingering) {  // discard until the peer closes
    read();
    return;
  }
  std::string_view chunk(read_buffer_.get(), n);
  framer_.append(chunk);
  process(chunk);
  if (state_ == State::kOpen) read();
}

void StreamConnection::process(std::string_view chunk) {
  MessageHandler* handler = worker_.handler();
  WorkerCounters& counters = worker_.counters();
  const sip::ParseLimits& limits = worker_.shared().config.parse_limits;
  for (;;) {
    sip::StreamFramer::Frame frame = framer_.next();
    switch (frame.kind) {
      case sip::StreamFramer::Kind::kNeedMore:
        track_head(chunk);
        return;
      case sip::StreamFramer::Kind::kPing:
        WorkerCounters::inc(counters.pings_answered);
        enqueue("\r\n");  // RFC 5626 §3.5.1 pong
        break;
      case sip::StreamFramer::Kind::kPong:
        WorkerCounters::inc(counters.pongs_received);
        if (handler) handler->on_pong(flow_);
        break;
      case sip::StreamFramer::Kind::kMessage: {
        WorkerCounters::inc(counters.stream_messages_in);
        auto message = sip::Message::parse(frame.bytes, sip::Framing::kStream, limits);
        if (!message) {
          // Framed by Content-Length, so the stream is still in step: report, keep the connection.
          counters.drop(message.error().status == 413 ? DropReason::kTooLarge : DropReason::kParseError);
          if (handler) handler->on_unparsable(flow_, worker_.index(), frame.bytes, message.error());
        } else if (handler) {
          handler->on_message(Inbound{std::move(message).value(), flow_, worker_.index()});
        }
        break;
      }
      case sip::StreamFramer::Kind::kError:
        track_head(chunk);
        counters.drop(frame.error.status == 413 ? DropReason::kTooLarge : DropReason::kFramingError);
        // The handler may answer with send(flow) now (it lands in the write queue); the
        // connection closes once that is written.
        if (handler) handler->on_unparsable(flow_, worker_.index(), head_, frame.error);
        if (state_ != State::kClosed) begin_drain();
        return;
    }
    if (state_ != State::kOpen) return;  // a handler's send overflowed the queue and closed it
  }
}

void StreamConnection::track_head(std::string_view chunk) {
  // The unframed bytes are the last `pending` bytes received. If they all came in this chunk the
  // head is their start; otherwise their start is already in head_ (a frame never completes
  // without bytes of the chunk that completes it), and this chunk continues it.
  const size_t pending = framer_.buffered();
  if (pending <= chunk.size()) {
    head_.assign(chunk.substr(chunk.size() - pending, std::min(pending, kHeadLimit)));
  } else if (head_.size() < kHeadLimit) {
    head_.append(chunk.substr(0, std::min(chunk.size(), kHeadLimit - head_.size())));
  }
}

bool StreamConnection::send(std::string_view bytes) {
  if (!enqueue(bytes)) {
    WorkerCounters::inc(worker_.counters().send_failures);
    return false;
  }
  WorkerCounters::inc(worker_.counters().stream_messages_out);
  return true;
}

bool StreamConnection::enqueue(std::string_view bytes) {
  if (state_ == State::kClosed || state_ == State::kLingering) return false;
  if (queued_bytes_ + bytes.size() > worker_.shared().config.limits.max_write_queue_bytes) {
    worker_.counters().drop(DropReason::kWriteQueueFull);
    close();
    return false;
  }
  write_queue_.emplace_back(bytes);
  queued_bytes_ += bytes.size();
  if ((state_ == State::kOpen || state_ == State::kDraining) && !writing_) start_write();
  return true;
}

void StreamConnection::start_write() {
  writing_ = true;
  in_flight_ = std::min(write_queue_.size(), kMaxBuffersPerWrite);
  write_buffers_.clear();
  for (size_t i = 0; i < in_flight_; ++i) write_buffers_.emplace_back(boost::asio::buffer(write_queue_[i]));
  auto self = shared_from_this();
  with_stream([&](auto& stream) {
    boost::asio::async_write(stream, write_buffers_,
                             [self](const boost::system::error_code& ec, size_t) { self->on_write(ec); });
  });
}

void StreamConnection::on_write(const boost::system::error_code& ec) {
  writing_ = false;
  if (state_ == State::kClosed) return;
  if (ec) {
    WorkerCounters::inc(worker_.counters().send_failures);
    close();
    return;
  }
  for (size_t i = 0; i < in_flight_; ++i) {
    queued_bytes_ -= write_queue_.front().size();
    write_queue_.pop_front();
  }
  in_flight_ = 0;
  last_activity_ = Clock::now();
  if (!write_queue_.empty()) {
    start_write();
  } else if (state_ == State::kDraining) {
    begin_linger();
  }
}

void StreamConnection::begin_drain() {
  state_ = State::kDraining;
  phase_deadline_ = Clock::now() + kLingerTime;
  arm_timer(phase_deadline_);
  if (!writing_ && write_queue_.empty()) begin_linger();
}

void StreamConnection::begin_linger() {
  // Half-close rather than close: closing with unread input would send a RST, and the peer's
  // stack may then discard our answer before its application reads it.
  state_ = State::kLingering;
  boost::system::error_code ec;
  lowest().shutdown(boost::asio::ip::tcp::socket::shutdown_send, ec);
  phase_deadline_ = Clock::now() + kLingerTime;
  arm_timer(phase_deadline_);
  read();
}

StreamConnection::Clock::time_point StreamConnection::deadline() const {
  if (state_ != State::kOpen) return phase_deadline_;
  auto idle = worker_.shared().config.limits.idle_timeout;
  if (idle.count() <= 0) return Clock::time_point::max();
  return std::max(last_activity_ + idle, keep_until_);
}

void StreamConnection::arm_timer(Clock::time_point when) {
  // A new wait replaces the pending one (which completes with operation_aborted).
  timer_.expires_at(when);
  auto self = shared_from_this();
  timer_.async_wait([self](const boost::system::error_code& ec) { self->on_timer(ec); });
}

void StreamConnection::on_timer(const boost::system::error_code& ec) {
  if (ec || state_ == State::kClosed) return;
  // Activity does not re-arm the timer (that would cost a timer operation per message); the
  // deadline is recomputed when it fires instead.
  auto when = deadline();
  if (Clock::now() < when) {
    arm_timer(when);
    return;
  }
  close();
}

void StreamConnection::close() {
  if (state_ == State::kClosed) return;
  auto self = shared_from_this();  // the table's reference goes below; finish this call first
  state_ = State::kClosed;
  boost::system::error_code ec;
  timer_.cancel();
  lowest().close(ec);
  worker_.connections().remove(flow_.connection_id);
  worker_.shared().directory.remove(flow_.connection_id);
  WorkerCounters::inc(worker_.counters().connections_closed);
  if (MessageHandler* handler = worker_.handler()) handler->on_flow_closed(flow_, connected_);
}

}  // namespace pinhole::transport
