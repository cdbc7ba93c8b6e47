// One worker's acceptor of one TCP or TLS listener (SO_REUSEPORT: every worker accepts on the
// same address and the kernel spreads connections). Admits each connection against the limits
// in the ConnectionDirectory, refusing (closing) the ones beyond them, and hands the rest to a
// new StreamConnection owned by the worker's ConnectionTable. Owned by its Worker; its thread.
#pragma once

#include <cstdint>
#include <memory>

#include "common/result.h"
#include "net/address.h"
#include "net/transport.h"
#include "transport/asio.h"

namespace pinhole::transport {

class Worker;

class StreamListener {
 public:
  static Result<std::unique_ptr<StreamListener>> open(Worker& worker, uint32_t socket_id, net::Transport transport,
                                                      const net::Endpoint& bind);
  StreamListener(Worker& worker, uint32_t socket_id, net::Transport transport);

  net::Endpoint local() const;
  void start();
  void close();

 private:
  void accept();
  void on_accept(boost::asio::ip::tcp::socket socket);

  Worker& worker_;
  uint32_t socket_id_;
  net::Transport transport_;
  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_;  // after EMFILE and the like, so accept does not spin
  bool closed_ = false;
};

}  // namespace pinhole::transport
