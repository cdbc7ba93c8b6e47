// A TransportLayer that records what the proxy sends, for EdgeProxy tests: two listeners
// (UDP and TCP on 203.0.113.10:5060), connections "die" when their id is put in dead_connections.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <deque>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "transport/transport_layer.h"

namespace pinhole::proxy::fakes {

using net::Transport;

struct Sent {
  net::Flow flow;
  std::string bytes;
  sip::MessagePtr msg() const {
    auto m = sip::Message::parse(bytes, sip::Framing::kDatagram);
    EXPECT_TRUE(m.ok()) << bytes;
    return m.ok() ? std::move(m.value()) : nullptr;
  }
};

class FakeTransport final : public transport::TransportLayer {
 public:
  FakeTransport() {
    sockets_.push_back(make(0, Transport::kUdp, 5060));
    sockets_.push_back(make(1, Transport::kTcp, 5060));
  }
  static transport::LocalSocket make(uint32_t id, Transport t, uint16_t port) {
    transport::LocalSocket s;
    s.id = id;
    s.transport = t;
    s.bound = *net::Endpoint::parse("203.0.113.10:" + std::to_string(port));
    s.advertised_host = "203.0.113.10";
    s.advertised_port = port;
    return s;
  }
  void set_handler(uint32_t, transport::MessageHandler*) override {}
  void run() override {}
  void stop() override {}
  uint32_t worker_count() const override { return 1; }
  boost::asio::io_context& io(uint32_t) override { return io_; }
  void post(uint32_t, std::function<void()> fn) override { posted.push_back(std::move(fn)); }
  const std::vector<transport::LocalSocket>& local_sockets() const override { return sockets_; }
  const transport::LocalSocket* socket_for(Transport t, net::Family) const override {
    for (const auto& s : sockets_) {
      if (s.transport == t) return &s;
    }
    return nullptr;
  }
  bool send(const net::Flow& flow, std::string_view bytes) override {
    if (!flow_alive(flow)) return false;
    sent.push_back({flow, std::string(bytes)});
    return true;
  }
  Result<net::Flow> send_to(uint32_t, Transport t, const net::Endpoint& dest, std::string_view bytes,
                            std::string_view) override {
    net::Flow f{t, t == Transport::kUdp ? 0u : 1u, dest, t == Transport::kUdp ? 0u : 77u};
    sent.push_back({f, std::string(bytes)});
    return f;
  }
  void keep_flow_until(const net::Flow& flow, std::chrono::steady_clock::time_point) override { kept.push_back(flow); }
  bool flow_alive(const net::Flow& flow) const override {
    return flow.connection_id == 0 || !dead_connections.contains(flow.connection_id);
  }
  void close_flow(const net::Flow& flow) override {
    closed.push_back(flow);
    if (flow.connection_id != 0) dead_connections.insert(flow.connection_id);
  }
  std::vector<net::Flow> closed;
  size_t open_connections() const override { return 0; }
  uint16_t udp_client_port(uint32_t, uint32_t) const override { return client_port; }
  uint16_t client_port = 0;
  std::vector<transport::LocalSocket>& sockets() { return sockets_; }
  transport::TransportCounters counters() const override { return {}; }

  Sent take() {
    EXPECT_FALSE(sent.empty());
    if (sent.empty()) return {};
    Sent s = std::move(sent.front());
    sent.pop_front();
    return s;
  }

  std::deque<Sent> sent;
  std::vector<net::Flow> kept;
  std::vector<std::function<void()>> posted;
  std::set<uint64_t> dead_connections;

 private:
  boost::asio::io_context io_;
  std::vector<transport::LocalSocket> sockets_;
};

}  // namespace pinhole::proxy::fakes
