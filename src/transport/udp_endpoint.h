// One worker's socket of one UDP listener. All workers bind the same address with SO_REUSEPORT,
// so the kernel spreads datagrams by 4-tuple hash and every worker's socket sends from the same
// source address.
//
// Receive: an Asio wait for readability on the native handle, then recvmmsg() batches of
// `udp_batch` datagrams (non-blocking) until the socket is empty, each datagram parsed and handed
// to the worker's handler. Send: on the owning thread datagrams are queued and flushed by one
// sendmmsg(): at the end of the receive batch being handled (Worker::end_batch), else by a flush
// posted when the queue becomes non-empty, or at once when it is full; from any other thread,
// one sendto() (the socket is safe to use concurrently at the syscall level). Owned by its Worker.
#pragma once

#include <sys/socket.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "net/address.h"
#include "transport/asio.h"

namespace pinhole::transport {

class Worker;

class UdpEndpoint {
 public:
  // Binds (port 0 picks one). The error names the address.
  static Result<std::unique_ptr<UdpEndpoint>> open(Worker& worker, uint32_t socket_id, const net::Endpoint& bind);
  UdpEndpoint(Worker& worker, uint32_t socket_id, net::Family family);

  // getsockname(): start-up and diagnostics. local_port() is the cached port, read per
  // forwarded request (our Via names it), so it must not cost a system call.
  net::Endpoint local() const;
  uint16_t local_port() const { return local_port_; }
  int native_fd() const { return fd_.load(); }
  net::Family family() const { return family_; }
  // Arms the first wait (the loop may not run yet).
  void start();
  // Owning thread: queued for the next sendmmsg. False if the datagram cannot be sent at all.
  bool send(const net::Endpoint& to, std::string_view bytes);
  // Any thread: sends at once.
  bool send_now(const net::Endpoint& to, std::string_view bytes);
  // Owning thread: sends what send() queued during the worker's batch (Worker::end_batch).
  void flush_deferred();
  // Owning thread (or no loop running).
  void close();

 private:
  void wait_readable();
  void receive();
  void deliver(size_t slot, size_t length, bool truncated);
  void flush();
  bool addressable(const net::Endpoint& to) const { return to.address.family() == family_; }

  struct Pending {
    std::string bytes;  // reused between flushes: the capacity stays
    sockaddr_storage to{};
    socklen_t to_length = 0;
  };

  Worker& worker_;
  uint32_t socket_id_;
  net::Family family_;
  boost::asio::ip::udp::socket socket_;
  // Atomic: send_now() reads them on other threads. fd_ is -1 once closed.
  std::atomic<bool> closed_{false};
  std::atomic<int> fd_{-1};
  uint16_t local_port_ = 0;  // set by open() once bound

  size_t batch_;
  size_t slot_size_;
  std::unique_ptr<char[]> rx_buffer_;  // batch_ slots of slot_size_
  std::vector<mmsghdr> rx_headers_;
  std::vector<iovec> rx_iov_;
  std::vector<sockaddr_storage> rx_from_;

  std::vector<Pending> tx_;  // tx_[0, tx_count_) wait for the flush
  size_t tx_count_ = 0;
  bool flush_posted_ = false;  // a flush is posted to the loop or deferred to the batch's end
  std::vector<mmsghdr> tx_headers_;
  std::vector<iovec> tx_iov_;
};

}  // namespace pinhole::transport
