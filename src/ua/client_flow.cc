#include "ua/client_flow.h"

#include <utility>

#include "nat/stun.h"

namespace pinhole::ua {
namespace {

namespace asio = boost::asio;
constexpr size_t kReadBufferSize = 65536;

asio::ip::address to_asio(const net::Address& a) {
  if (a.is_v4()) return asio::ip::address_v4(a.v4_host_order());
  asio::ip::address_v6::bytes_type bytes{};
  auto span = a.bytes();
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = span[i];
  return asio::ip::address_v6(bytes);
}

}  // namespace

std::shared_ptr<ClientFlow> ClientFlow::open(asio::io_context& io, net::Transport transport,
                                             const net::Endpoint& remote, Callbacks callbacks,
                                             std::chrono::milliseconds connect_timeout, std::optional<TlsOptions> tls) {
  std::shared_ptr<ClientFlow> flow(new ClientFlow(io, transport, remote, std::move(callbacks), std::move(tls)));
  if (transport == net::Transport::kUdp) {
    flow->start_udp();
  } else {
    flow->start_tcp(connect_timeout);
  }
  return flow;
}

ClientFlow::ClientFlow(asio::io_context& io, net::Transport transport, const net::Endpoint& remote, Callbacks callbacks,
                       std::optional<TlsOptions> tls)
    : io_(io),
      transport_(transport),
      remote_(remote),
      callbacks_(std::move(callbacks)),
      udp_(io),
      tcp_(io),
      tls_options_(std::move(tls)),
      connect_timer_(io),
      read_buffer_(kReadBufferSize) {
  info_.transport = transport;
  // A TLS flow without a context cannot verify anything: open() refuses it (start_tcp fails).
  if (transport_ == net::Transport::kTls && tls_options_ && tls_options_->context) {
    tls_ = std::make_unique<TlsStream>(io, *tls_options_->context);
  }
}

ClientFlow::~ClientFlow() {
  boost::system::error_code ignored;
  udp_.close(ignored);
  tcp_socket().close(ignored);
}

void ClientFlow::connected_at(const asio::ip::address& address, uint16_t port) {
  auto local = net::Address::parse(address.to_string());
  std::string host = local ? local->to_string() : address.to_string();
  if (address.is_v6()) host = "[" + host + "]";
  info_.local = HostPort{host, port};
  connected_ = true;
}

void ClientFlow::start_udp() {
  boost::system::error_code ec;
  asio::ip::udp::endpoint peer(to_asio(remote_.address), remote_.port);
  udp_.open(peer.protocol(), ec);
  // connect() on UDP binds the socket and makes the kernel choose the source address the route
  // to the proxy uses: that address, not 0.0.0.0, goes into Via and Contact.
  if (!ec) udp_.connect(peer, ec);
  asio::ip::udp::endpoint local;
  if (!ec) local = udp_.local_endpoint(ec);
  auto self = shared_from_this();
  if (ec) {
    std::string why = "udp socket: " + ec.message();
    asio::post(io_, [self, why] { self->fail(why); });
    return;
  }
  connected_at(local.address(), local.port());
  asio::post(io_, [self] {
    if (self->closed_) return;
    if (self->callbacks_.on_connected) self->callbacks_.on_connected(self->info_);
    self->read_udp();
  });
}

void ClientFlow::read_udp() {
  if (closed_) return;
  auto self = shared_from_this();
  udp_.async_receive(asio::buffer(read_buffer_), [self](const boost::system::error_code& ec, size_t n) {
    if (self->closed_) return;
    if (ec) {
      // ICMP port unreachable on a connected UDP socket: the proxy is not listening (yet). Not a
      // proof that the flow is dead (NATs and firewalls lose ICMP both ways); the keepalive and
      // the transaction timeout decide that.
      if (ec == asio::error::connection_refused) {
        if (!self->icmp_reported_ && self->callbacks_.on_warning) {
          self->callbacks_.on_warning("udp: ICMP port unreachable from the proxy (is it listening?)");
        }
        self->icmp_reported_ = true;  // once per flow: every retransmission would repeat it
        self->read_udp();
        return;
      }
      if (ec == asio::error::operation_aborted) return;
      self->fail("udp receive: " + ec.message());
      return;
    }
    std::string_view datagram(self->read_buffer_.data(), n);
    if (nat::looks_like_stun(datagram)) {
      if (self->callbacks_.on_stun) self->callbacks_.on_stun(datagram);
    } else if (datagram.find_first_not_of("\r\n") == std::string_view::npos) {
      // RFC 5626 §3.5.1 keepalives are stream-only; a CRLF datagram is harmless noise.
    } else {
      auto message = sip::Message::parse(datagram, sip::Framing::kDatagram);
      if (!message) {
        if (self->callbacks_.on_warning) {
          self->callbacks_.on_warning("udp: dropped an unparseable datagram (" + std::string(message.error().what) +
                                      ")");
        }
      } else if (self->callbacks_.on_message) {
        self->callbacks_.on_message(std::move(message).value());
      }
    }
    self->read_udp();
  });
}

void ClientFlow::start_tcp(std::chrono::milliseconds connect_timeout) {
  auto self = shared_from_this();
  if (transport_ == net::Transport::kTls && !tls_) {
    asio::post(io_, [self] { self->fail("tls: no client context (a bug in the caller)"); });
    return;
  }
  asio::ip::tcp::endpoint peer(to_asio(remote_.address), remote_.port);
  connect_timer_.expires_after(connect_timeout);
  connect_timer_.async_wait([self](const boost::system::error_code& ec) {
    if (ec || self->closed_ || self->connected_) return;
    self->fail(self->tls_ ? "tls connect or handshake timed out" : "tcp connect timed out");
  });
  tcp_socket().async_connect(peer, [self](const boost::system::error_code& ec) {
    if (self->closed_) return;
    if (ec) {
      self->connect_timer_.cancel();
      self->fail(std::string(self->stream_name()) + " connect: " + ec.message());
      return;
    }
    self->on_tcp_connected();
  });
}

void ClientFlow::on_tcp_connected() {
  boost::system::error_code opt_ec;
  tcp_socket().set_option(asio::ip::tcp::no_delay(true), opt_ec);
  auto local = tcp_socket().local_endpoint(opt_ec);
  if (opt_ec) {
    connect_timer_.cancel();
    fail(std::string(stream_name()) + " local address: " + opt_ec.message());
    return;
  }
  // Known now, reported with on_connected once the stream is usable.
  auto address = local.address();
  auto port = local.port();
  if (!tls_) {
    connect_timer_.cancel();
    connected_at(address, port);
    start_stream();
    return;
  }
  if (auto prepared = prepare_tls_client(*tls_, tls_options_->server_name, tls_options_->verify); !prepared) {
    connect_timer_.cancel();
    fail(prepared.error().what);
    return;
  }
  auto self = shared_from_this();
  tls_->async_handshake(TlsStream::client, [self, address, port](const boost::system::error_code& ec) {
    if (self->closed_) return;
    self->connect_timer_.cancel();
    if (ec) {
      self->fail("tls handshake with " + self->tls_options_->server_name + ": " +
                 tls_handshake_failure(*self->tls_, ec));
      return;
    }
    self->connected_at(address, port);
    self->start_stream();
  });
}

void ClientFlow::start_stream() {
  if (callbacks_.on_connected) callbacks_.on_connected(info_);
  if (closed_) return;
  read_tcp();
  write_next();
}

void ClientFlow::read_tcp() {
  if (closed_) return;
  auto self = shared_from_this();
  auto on_read = [self](const boost::system::error_code& ec, size_t n) {
    if (self->closed_) return;
    if (ec) {
      if (ec == asio::error::operation_aborted) return;
      // A TLS peer that closes without close_notify shows up as stream_truncated: for us the
      // connection is just as gone as after a TCP FIN.
      bool closed = ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
      self->fail(closed ? "connection closed by the proxy"
                        : std::string(self->stream_name()) + " receive: " + ec.message());
      return;
    }
    self->framer_.append({self->read_buffer_.data(), n});
    self->drain_framer();
    self->read_tcp();
  };
  if (tls_) {
    tls_->async_read_some(asio::buffer(read_buffer_), std::move(on_read));
  } else {
    tcp_.async_read_some(asio::buffer(read_buffer_), std::move(on_read));
  }
}

void ClientFlow::drain_framer() {
  for (;;) {
    if (closed_) return;
    auto frame = framer_.next();
    switch (frame.kind) {
      case sip::StreamFramer::Kind::kNeedMore:
        return;
      case sip::StreamFramer::Kind::kPing:
        send("\r\n");  // RFC 5626 §3.5.1: answer a ping with a pong
        break;
      case sip::StreamFramer::Kind::kPong:
        if (callbacks_.on_pong) callbacks_.on_pong();
        break;
      case sip::StreamFramer::Kind::kError:
        fail(std::string("unframeable bytes on the ") + (tls_ ? "TLS" : "TCP") + " connection (" +
             std::string(frame.error.what) + ")");
        return;
      case sip::StreamFramer::Kind::kMessage: {
        auto message = sip::Message::parse(frame.bytes, sip::Framing::kStream);
        if (!message) {
          if (callbacks_.on_warning) {
            callbacks_.on_warning(std::string(stream_name()) + ": dropped an unparseable message (" +
                                  std::string(message.error().what) + ")");
          }
        } else if (callbacks_.on_message) {
          callbacks_.on_message(std::move(message).value());
        }
        break;
      }
    }
  }
}

void ClientFlow::send(std::string bytes) {
  if (closed_) return;
  if (transport_ == net::Transport::kUdp) {
    if (!connected_) return;
    // Datagrams are small and the socket's buffer takes them at once; a failed send is what a
    // retransmission or the keepalive will notice.
    boost::system::error_code ec;
    udp_.send(asio::buffer(bytes), 0, ec);
    if (ec && callbacks_.on_warning) callbacks_.on_warning("udp send: " + ec.message());
    return;
  }
  write_queue_.push_back(std::move(bytes));
  if (connected_) write_next();
}

void ClientFlow::write_next() {
  if (writing_ || write_queue_.empty() || closed_) return;
  writing_ = true;
  auto self = shared_from_this();
  auto on_written = [self](const boost::system::error_code& ec, size_t) {
    self->writing_ = false;
    if (self->closed_) return;
    if (ec) {
      self->fail(std::string(self->stream_name()) + " send: " + ec.message());
      return;
    }
    self->write_queue_.pop_front();
    self->write_next();
  };
  if (tls_) {
    asio::async_write(*tls_, asio::buffer(write_queue_.front()), std::move(on_written));
  } else {
    asio::async_write(tcp_, asio::buffer(write_queue_.front()), std::move(on_written));
  }
}

void ClientFlow::fail(std::string_view why) {
  if (closed_) return;
  auto callback = std::move(callbacks_.on_failure);
  close();
  if (callback) callback(why);
}

void ClientFlow::close() {
  if (closed_) return;
  closed_ = true;
  connected_ = false;
  boost::system::error_code ignored;
  connect_timer_.cancel();
  udp_.close(ignored);
  // No TLS close_notify: the flow is closed because it is dead or the UA is stopping after its
  // unregister was answered; the proxy sees the TCP FIN either way.
  tcp_socket().close(ignored);
  write_queue_.clear();
}

}  // namespace pinhole::ua
