// UDP: datagrams in, parsed and tagged with their flow; replies out through send(flow), from a
// worker thread (batched sendmmsg) and from any other thread.
#include <gtest/gtest.h>

#include <set>

#include "transport/transport_layer.h"
#include "transport_test_support.h"

namespace pinhole::transport {
namespace {

using test::Harness;
using test::Peer;

TransportConfig udp_config(const net::Endpoint& bind) {
  TransportConfig c;
  c.listeners.push_back(test::listener(net::Transport::kUdp, bind));
  return c;
}

TEST(UdpTransport, RequestArrivesWithItsFlowAndReplyReachesClient) {
  Harness h(udp_config(test::loopback4()));
  ASSERT_TRUE(h.layer) << h.error->what;
  auto& handler = h.handler();
  // Reply from the worker thread, as the proxy does.
  handler.on_message_hook = nullptr;
  const net::Endpoint server = h.bound(0);
  ASSERT_NE(server.port, 0);
  EXPECT_EQ(h.layer->local_sockets()[0].advertised_host, "127.0.0.1");
  EXPECT_EQ(h.layer->local_sockets()[0].advertised_port, server.port);

  Peer client = Peer::udp(test::loopback4());
  ASSERT_TRUE(client.send_to(server, test::make_request("udp-1")));
  ASSERT_TRUE(handler.wait_messages(1));
  test::Received got;
  {
    std::lock_guard lock(handler.mu);
    got = handler.messages[0];
  }
  EXPECT_EQ(got.call_id, "udp-1");
  EXPECT_EQ(got.flow.transport, net::Transport::kUdp);
  EXPECT_EQ(got.flow.local_socket_id, 0u);
  EXPECT_EQ(got.flow.remote, client.local());
  EXPECT_EQ(got.flow.connection_id, 0u);
  EXPECT_TRUE(h.layer->flow_alive(got.flow));

  // From a worker thread (queued, flushed by sendmmsg).
  ASSERT_TRUE(h.on_worker(0, [&] { return h.layer->send(got.flow, test::make_response("udp-1", 200)); }));
  auto reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(*reply, test::make_response("udp-1", 200));
  // From this (non-worker) thread.
  ASSERT_TRUE(h.layer->send(got.flow, test::make_response("udp-1", 202)));
  reply = client.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(*reply, test::make_response("udp-1", 202));

  // The sending worker counts after sendmmsg returns, possibly after the client has read.
  EXPECT_TRUE(test::eventually([&] { return h.layer->counters().udp_datagrams_out == 2; }));
  EXPECT_EQ(h.layer->counters().udp_datagrams_in, 1u);
}

TEST(UdpTransport, ManyDatagramsInBatchesAndRepliesBatched) {
  auto config = udp_config(test::loopback4());
  config.udp_batch = 8;
  Harness h(config, /*start=*/false);
  ASSERT_TRUE(h.layer);
  auto& handler = h.handler();
  TransportLayer* layer = h.layer.get();
  handler.on_message_hook = [&](const Inbound& in) {
    auto id = in.message->call_id();
    ASSERT_TRUE(id.ok());
    EXPECT_TRUE(layer->send(in.flow, test::make_response(*id, 200)));
  };
  h.layer->run();
  const net::Endpoint server = h.bound(0);
  Peer client = Peer::udp(test::loopback4());
  constexpr int kBursts = 10, kPerBurst = 20;
  std::set<std::string> replies;
  for (int b = 0; b < kBursts; ++b) {
    // Bursts bounded so the socket buffers cannot overflow on a loaded machine.
    for (int i = 0; i < kPerBurst; ++i) {
      ASSERT_TRUE(client.send_to(server, test::make_request("batch-" + std::to_string(b * kPerBurst + i))));
    }
    for (int i = 0; i < kPerBurst; ++i) {
      auto r = client.receive();
      ASSERT_TRUE(r) << "burst " << b << " reply " << i;
      replies.insert(*r);
    }
  }
  EXPECT_EQ(replies.size(), static_cast<size_t>(kBursts * kPerBurst));
  EXPECT_TRUE(replies.contains(test::make_response("batch-0", 200)));
  EXPECT_TRUE(replies.contains(test::make_response("batch-199", 200)));
  EXPECT_TRUE(test::eventually([&] { return h.layer->counters().udp_datagrams_out == 200; }));
  EXPECT_EQ(h.layer->counters().udp_datagrams_in, 200u);
}

TEST(UdpTransport, Ipv6) {
  Peer probe = Peer::udp(test::loopback6());
  if (!probe.ok()) GTEST_SKIP() << "no IPv6 loopback on this host";
  auto config = udp_config(test::loopback6());
  config.listeners.push_back(test::listener(net::Transport::kUdp, test::loopback4()));
  Harness h(config);
  ASSERT_TRUE(h.layer) << h.error->what;
  EXPECT_EQ(h.layer->local_sockets()[0].advertised_host, "[::1]");
  ASSERT_EQ(h.layer->socket_for(net::Transport::kUdp, net::Family::kIPv6), &h.layer->local_sockets()[0]);
  ASSERT_EQ(h.layer->socket_for(net::Transport::kUdp, net::Family::kIPv4), &h.layer->local_sockets()[1]);
  ASSERT_TRUE(probe.send_to(h.bound(0), test::make_request("v6")));
  ASSERT_TRUE(h.handler().wait_messages(1));
  net::Flow flow;
  {
    std::lock_guard lock(h.handler().mu);
    flow = h.handler().messages[0].flow;
  }
  EXPECT_TRUE(flow.remote.address.is_v6());
  EXPECT_EQ(flow.remote, probe.local());
  // send_to picks the listener of the destination's family.
  auto sent = h.layer->send_to(0, net::Transport::kUdp, probe.local(), test::make_response("v6", 200));
  ASSERT_TRUE(sent.ok());
  EXPECT_EQ(sent->local_socket_id, 0u);
  auto reply = probe.receive();
  ASSERT_TRUE(reply);
  EXPECT_EQ(*reply, test::make_response("v6", 200));
}

TEST(UdpTransport, GarbageGoesToOnUnparsableAndBlankKeepalivesAreIgnored) {
  Harness h(udp_config(test::loopback4()));
  ASSERT_TRUE(h.layer);
  Peer client = Peer::udp(test::loopback4());
  ASSERT_TRUE(client.send_to(h.bound(0), "\r\n\r\n"));
  ASSERT_TRUE(client.send_to(h.bound(0), "this is not SIP\r\n\r\n"));
  ASSERT_TRUE(h.handler().wait([&] { return !h.handler().unparsable.empty(); }));
  std::lock_guard lock(h.handler().mu);
  ASSERT_EQ(h.handler().unparsable.size(), 1u);
  EXPECT_EQ(h.handler().unparsable[0].status, 400);
  EXPECT_EQ(h.handler().unparsable[0].bytes, "this is not SIP\r\n\r\n");
  EXPECT_EQ(h.handler().unparsable[0].flow.remote, client.local());
  EXPECT_TRUE(h.handler().messages.empty());
}

TEST(UdpTransport, StunGoesToOnBinaryDatagramNotToTheSipParser) {
  Harness h(udp_config(test::loopback4()));
  ASSERT_TRUE(h.layer);
  Peer client = Peer::udp(test::loopback4());
  // A STUN Binding request header (RFC 8489 §5): type 0x0001, length 0, magic cookie, id.
  const std::string stun(
      "\x00\x01\x00\x00\x21\x12\xa4\x42"
      "abcdefghijkl",
      20);
  ASSERT_TRUE(client.send_to(h.bound(0), stun));
  ASSERT_TRUE(h.handler().wait([&] { return !h.handler().binary.empty(); }));
  std::lock_guard lock(h.handler().mu);
  EXPECT_EQ(h.handler().binary[0].bytes, stun);
  EXPECT_EQ(h.handler().binary[0].flow.remote, client.local());
  EXPECT_TRUE(h.handler().unparsable.empty());
  EXPECT_TRUE(h.handler().messages.empty());
}

TEST(UdpTransport, OversizeDatagramIs413) {
  auto config = udp_config(test::loopback4());
  config.parse_limits.max_message_size = 1000;
  Harness h(config);
  ASSERT_TRUE(h.layer);
  Peer client = Peer::udp(test::loopback4());
  ASSERT_TRUE(client.send_to(h.bound(0), test::make_request("big", "UDP", std::string(1500, 'x'))));
  ASSERT_TRUE(h.handler().wait([&] { return !h.handler().unparsable.empty(); }));
  std::lock_guard lock(h.handler().mu);
  EXPECT_EQ(h.handler().unparsable[0].status, 413);
  EXPECT_TRUE(h.handler().unparsable[0].bytes.starts_with("OPTIONS sip:"));
  EXPECT_EQ(h.layer->counters().drops[static_cast<size_t>(DropReason::kTooLarge)], 1u);
}

TEST(UdpTransport, SendToWithoutListenerOfThatFamilyIs503) {
  Harness h(udp_config(test::loopback4()));
  ASSERT_TRUE(h.layer);
  auto r = h.layer->send_to(0, net::Transport::kUdp, test::loopback6(5060), "x");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().status, 503);
  auto t = h.layer->send_to(0, net::Transport::kTcp, test::loopback4(5060), "x");
  ASSERT_FALSE(t.ok());
  EXPECT_EQ(t.error().status, 503);
}

TEST(UdpTransport, BindFailureNamesTheAddress) {
  Peer taken = Peer::udp(test::loopback4());  // bound without SO_REUSEPORT: nobody else may bind
  TransportConfig config = udp_config(taken.local());
  auto r = TransportLayer::create(config);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().what.find(taken.local().to_string()), std::string_view::npos) << r.error().what;
}

TEST(UdpTransport, SendToLeavesFromTheWorkersOwnSocketAndItsAnswersComeBackThere) {
  auto config = udp_config(test::loopback4());
  config.workers = 2;
  Harness h(config);
  ASSERT_TRUE(h.layer) << h.error->what;
  Peer upstream = Peer::udp(test::loopback4());
  for (uint32_t w = 0; w < 2; ++w) {
    const uint16_t port = h.layer->udp_client_port(w, 0);
    ASSERT_NE(port, 0);
    EXPECT_NE(port, h.bound(0).port);  // not the shared listener port
    ASSERT_TRUE(h.on_worker(w, [&] {
      return h.layer->send_to(w, net::Transport::kUdp, upstream.local(), test::make_request("out-" + std::to_string(w)))
          .ok();
    }));
    auto got = upstream.receive_from();
    ASSERT_TRUE(got);
    EXPECT_EQ(got->second.port, port);
    // The upstream answers where the request came from: that worker, and only it, gets it.
    ASSERT_TRUE(upstream.send_to(got->second, test::make_response("out-" + std::to_string(w), 200)));
    ASSERT_TRUE(h.handler(w).wait_messages(1));
  }
  for (uint32_t w = 0; w < 2; ++w) {
    std::lock_guard lock(h.handler(w).mu);
    EXPECT_EQ(h.handler(w).messages.size(), 1u);
  }
}

}  // namespace
}  // namespace pinhole::transport
