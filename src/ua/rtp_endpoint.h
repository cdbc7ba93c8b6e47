// One call's RTP socket: symmetric RTP (we send from the port our SDP advertises, to the address
// the peer's SDP names and, once a packet arrives, to where packets come from: latching, so that
// a media relay or a NAT in between works) with a media mode to check the path end to end:
// echo (every received RTP payload sent back under our own SSRC, sequence and timestamp), tone
// (20 ms G.711 frames of a 440 Hz tone, 50 packets/s) or none (count only).
//
// Behind NAT nobody can reach us before we send: in echo mode, until the first packet arrives,
// a silence frame goes out every 200 ms so that the NAT opens and a relay can latch.
//
// Ownership and threads: created, used and closed on the UA's event-loop thread (the thread that
// runs `io`). Held by shared_ptr because Asio's completion handlers keep it alive until they have
// run after the owner let go; after close() nothing is sent or counted.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>

#include "common/result.h"
#include "net/address.h"
#include "transport/asio.h"  // NOLINT(misc-include-cleaner): Asio headers in their one place
#include "ua/media_sdp.h"
#include "ua/ua_config.h"

namespace pinhole::ua {

struct RtpStats {
  uint64_t packets_sent = 0;
  uint64_t bytes_sent = 0;  // RTP payload bytes
  uint64_t packets_received = 0;
  uint64_t bytes_received = 0;
  std::optional<uint16_t> first_sequence;  // of the received packets
  std::optional<uint16_t> last_sequence;
  std::optional<net::Endpoint> latched;  // where received packets come from (and ours go)
  uint32_t latch_changes = 0;            // times the source moved after the first packet
};

class RtpEndpoint : public std::enable_shared_from_this<RtpEndpoint> {
 public:
  // Binds a UDP socket on `local` (the SIP flow's local address), port from [port_min, port_max]
  // (0/0: any), and starts receiving. Errors (500) when no port can be bound.
  static Result<std::shared_ptr<RtpEndpoint>> open(boost::asio::io_context& io, const net::Address& local,
                                                   uint16_t port_min, uint16_t port_max, MediaMode mode);
  ~RtpEndpoint();
  RtpEndpoint(const RtpEndpoint&) = delete;
  RtpEndpoint& operator=(const RtpEndpoint&) = delete;

  // Media may flow: sets where to send (until latched) and the payload type of the tone, and
  // starts the mode's sending. Again later (a re-INVITE) only updates the remote side.
  void start(const RemoteMedia& remote);
  // Stops sending and closes the socket.
  void close();

  const net::Endpoint& local() const { return local_; }
  const RtpStats& stats() const { return stats_; }
  uint32_t ssrc() const { return ssrc_; }
  MediaMode mode() const { return mode_; }

 private:
  RtpEndpoint(boost::asio::io_context& io, MediaMode mode);
  void read();
  void on_packet(size_t size, const boost::asio::ip::udp::endpoint& from);
  void send_frame(uint8_t payload_type, bool marker, uint32_t timestamp, const uint8_t* payload, size_t size);
  void arm_timer();
  void on_tick();
  std::optional<boost::asio::ip::udp::endpoint> destination() const;

  MediaMode mode_;
  boost::asio::ip::udp::socket socket_;
  boost::asio::steady_timer timer_;
  boost::asio::ip::udp::endpoint from_;
  std::array<uint8_t, 2048> buffer_{};
  net::Endpoint local_;
  RemoteMedia remote_;
  std::optional<boost::asio::ip::udp::endpoint> latched_;
  bool started_ = false;
  bool closed_ = false;
  RtpStats stats_;

  uint32_t ssrc_ = 0;
  uint16_t sequence_ = 0;
  uint32_t timestamp_ = 0;  // ours: advances 160 per tone frame
  std::optional<uint32_t> first_remote_timestamp_;
  uint32_t tone_phase_ = 0;
  bool marker_pending_ = true;  // the first packet of a talk spurt carries the marker bit
  boost::asio::steady_timer::time_point next_tick_{};
};

}  // namespace pinhole::ua
