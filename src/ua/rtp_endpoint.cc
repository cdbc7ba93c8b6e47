#include "ua/rtp_endpoint.h"

#include <cmath>
#include <numbers>
#include <span>
#include <vector>

#include "ua/g711.h"
#include "ua/random.h"

namespace pinhole::ua {
namespace {

namespace asio = boost::asio;
using std::chrono::milliseconds;

constexpr size_t kRtpHeader = 12;
constexpr size_t kFrameSamples = 160;  // 20 ms at 8000 Hz
constexpr milliseconds kFrameTime{20};
constexpr milliseconds kPrimeInterval{200};
// 440 Hz at 8000 Hz repeats exactly every 400 samples (22 periods): one table, no drift.
constexpr size_t kToneTable = 400;
constexpr double kToneHz = 440.0;
constexpr double kToneAmplitude = 8000.0;  // about −12 dBFS: clearly audible, far from clipping
constexpr Error kNoRtpPort{500, "rtp: no port could be bound"};

const std::array<int16_t, kToneTable>& tone_table() {
  static const std::array<int16_t, kToneTable> table = [] {
    std::array<int16_t, kToneTable> t{};
    for (size_t i = 0; i < kToneTable; ++i) {
      double phase = 2.0 * std::numbers::pi * kToneHz * static_cast<double>(i) / 8000.0;
      t[i] = static_cast<int16_t>(std::lround(kToneAmplitude * std::sin(phase)));
    }
    return t;
  }();
  return table;
}

uint16_t read16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t read32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
void write16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
void write32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

net::Endpoint to_endpoint(const asio::ip::udp::endpoint& e) {
  auto address = net::Address::parse(e.address().to_string());
  return {address ? *address : net::Address(), e.port()};
}

}  // namespace

Result<std::shared_ptr<RtpEndpoint>> RtpEndpoint::open(asio::io_context& io, const net::Address& local,
                                                       uint16_t port_min, uint16_t port_max, MediaMode mode) {
  std::shared_ptr<RtpEndpoint> rtp(new RtpEndpoint(io, mode));
  boost::system::error_code ec;
  auto address = asio::ip::make_address(local.to_string(), ec);
  if (ec) return kNoRtpPort;
  asio::ip::udp::endpoint bind_to(address, 0);
  rtp->socket_.open(bind_to.protocol(), ec);
  if (ec) return kNoRtpPort;
  bool bound = false;
  if (port_min == 0 || port_max < port_min) {
    rtp->socket_.bind(bind_to, ec);
    bound = !ec;
  } else {
    // Even ports first (RFC 3550 §11: RTP on even, RTCP on the odd one above), from a random
    // point of the range so that two UAs on one host rarely collide.
    uint32_t span = uint32_t{port_max} - port_min + 1;
    auto start = static_cast<uint32_t>(random_between(0, span - 1));
    for (int pass = 0; pass < 2 && !bound; ++pass) {
      for (uint32_t i = 0; i < span && !bound; ++i) {
        auto port = static_cast<uint16_t>(port_min + (start + i) % span);
        if ((port % 2 == 0) != (pass == 0)) continue;
        bind_to.port(port);
        rtp->socket_.bind(bind_to, ec);
        bound = !ec;
      }
    }
  }
  if (!bound) return kNoRtpPort;
  auto bound_at = rtp->socket_.local_endpoint(ec);
  if (ec) return kNoRtpPort;
  rtp->local_ = {local, bound_at.port()};
  rtp->read();
  return rtp;
}

RtpEndpoint::RtpEndpoint(asio::io_context& io, MediaMode mode) : mode_(mode), socket_(io), timer_(io) {
  std::array<uint8_t, 10> seed{};
  random_bytes(seed);
  ssrc_ = read32(seed.data());
  sequence_ = read16(seed.data() + 4);  // RFC 3550 §5.1: random initial sequence and timestamp
  timestamp_ = read32(seed.data() + 6);
}

RtpEndpoint::~RtpEndpoint() {
  boost::system::error_code ignored;
  socket_.close(ignored);
}

void RtpEndpoint::start(const RemoteMedia& remote) {
  if (closed_) return;
  remote_ = remote;
  if (started_) return;
  started_ = true;
  next_tick_ = asio::steady_timer::clock_type::now();
  if (mode_ == MediaMode::kTone || mode_ == MediaMode::kEcho) on_tick();
}

void RtpEndpoint::close() {
  if (closed_) return;
  closed_ = true;
  timer_.cancel();
  boost::system::error_code ignored;
  socket_.close(ignored);
}

std::optional<asio::ip::udp::endpoint> RtpEndpoint::destination() const {
  if (latched_) return latched_;
  if (!remote_.rtp) return std::nullopt;
  boost::system::error_code ec;
  auto address = asio::ip::make_address(remote_.rtp->address.to_string(), ec);
  if (ec) return std::nullopt;
  return asio::ip::udp::endpoint(address, remote_.rtp->port);
}

void RtpEndpoint::read() {
  if (closed_) return;
  auto self = shared_from_this();
  socket_.async_receive_from(asio::buffer(buffer_), from_, [self](const boost::system::error_code& ec, size_t n) {
    if (self->closed_) return;
    // ICMP errors from an earlier send surface here on Linux; they say nothing about this socket.
    if (!ec) self->on_packet(n, self->from_);
    if (ec == asio::error::operation_aborted) return;
    self->read();
  });
}

void RtpEndpoint::on_packet(size_t size, const asio::ip::udp::endpoint& from) {
  const uint8_t* p = buffer_.data();
  if (size < kRtpHeader || (p[0] >> 6) != 2) return;  // not RTP (STUN, garbage)
  if (p[1] >= 192 && p[1] <= 223) return;             // RTCP multiplexed on the port (RFC 5761 §4)
  size_t offset = kRtpHeader + size_t{4} * (p[0] & 0x0f);
  if ((p[0] & 0x10) != 0) {  // header extension
    if (offset + 4 > size) return;
    offset += 4 + size_t{4} * read16(p + offset + 2);
  }
  size_t end = size;
  if ((p[0] & 0x20) != 0) {  // padding: the last byte counts it
    size_t pad = p[size - 1];
    if (pad == 0 || pad > size - std::min(offset, size)) return;
    end -= pad;
  }
  if (offset > end) return;

  uint16_t sequence = read16(p + 2);
  uint32_t timestamp = read32(p + 4);
  ++stats_.packets_received;
  stats_.bytes_received += end - offset;
  if (!stats_.first_sequence) stats_.first_sequence = sequence;
  stats_.last_sequence = sequence;
  // Latching: send where packets come from. A move later (a NAT rebinding, a relay failover)
  // is followed too and counted.
  if (!latched_ || *latched_ != from) {
    if (latched_) ++stats_.latch_changes;
    latched_ = from;
    stats_.latched = to_endpoint(from);
  }
  if (mode_ != MediaMode::kEcho || !started_) return;
  if (!first_remote_timestamp_) first_remote_timestamp_ = timestamp;
  // Our timestamp keeps the peer's spacing from our own random origin.
  uint32_t ours = timestamp_ + (timestamp - *first_remote_timestamp_);
  bool marker = (p[1] & 0x80) != 0;
  std::vector<uint8_t> payload(p + offset, p + end);
  send_frame(static_cast<uint8_t>(p[1] & 0x7f), marker, ours, payload.data(), payload.size());
}

void RtpEndpoint::send_frame(uint8_t payload_type, bool marker, uint32_t timestamp, const uint8_t* payload,
                             size_t size) {
  auto to = destination();
  if (!to || closed_) return;
  std::vector<uint8_t> packet(kRtpHeader + size);
  packet[0] = 0x80;
  packet[1] = static_cast<uint8_t>((marker ? 0x80 : 0) | (payload_type & 0x7f));
  write16(packet.data() + 2, sequence_++);
  write32(packet.data() + 4, timestamp);
  write32(packet.data() + 8, ssrc_);
  std::copy(payload, payload + size, packet.begin() + kRtpHeader);
  boost::system::error_code ec;
  socket_.send_to(asio::buffer(packet), *to, 0, ec);
  if (ec) return;  // ICMP or no route: the peer may come up later; counters show what went out
  ++stats_.packets_sent;
  stats_.bytes_sent += size;
}

void RtpEndpoint::on_tick() {
  if (closed_) return;
  if (mode_ == MediaMode::kTone) {
    std::array<uint8_t, kFrameSamples> frame{};
    const auto& table = tone_table();
    bool alaw = remote_.payload_type == kPayloadPcma;
    for (auto& byte : frame) {
      int16_t sample = table[tone_phase_];
      tone_phase_ = (tone_phase_ + 1) % kToneTable;
      byte = alaw ? linear_to_alaw(sample) : linear_to_ulaw(sample);
    }
    send_frame(remote_.payload_type, marker_pending_, timestamp_, frame.data(), frame.size());
    marker_pending_ = false;
    timestamp_ += kFrameSamples;
    next_tick_ += kFrameTime;
  } else if (mode_ == MediaMode::kEcho) {
    if (stats_.packets_received > 0) return;  // the path is open: echo only from now on
    std::array<uint8_t, kFrameSamples> silence{};
    silence.fill(remote_.payload_type == kPayloadPcma ? linear_to_alaw(0) : linear_to_ulaw(0));
    send_frame(remote_.payload_type, marker_pending_, timestamp_, silence.data(), silence.size());
    marker_pending_ = false;
    next_tick_ += kPrimeInterval;
  } else {
    return;
  }
  arm_timer();
}

void RtpEndpoint::arm_timer() {
  // Ticks against a fixed schedule, not "now + 20 ms", so that the 50 packets/s do not drift.
  auto now = asio::steady_timer::clock_type::now();
  if (next_tick_ < now - milliseconds(200)) next_tick_ = now;  // after a stall, do not burst
  timer_.expires_at(next_tick_);
  auto self = shared_from_this();
  timer_.async_wait([self](const boost::system::error_code& ec) {
    if (ec || self->closed_) return;
    self->on_tick();
  });
}

}  // namespace pinhole::ua
