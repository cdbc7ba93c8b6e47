// TCP: stream framing (split and pipelined messages), keepalive ping/pong, oversize messages
// answered then closed, connection limits, liveness and idle closing.
#include <gtest/gtest.h>

#include "transport/transport_layer.h"
#include "transport_test_support.h"

namespace pinhole::transport {
namespace {

using test::Harness;
using test::Peer;

TransportConfig tcp_config() {
  TransportConfig c;
  c.listeners.push_back(test::listener(net::Transport::kTcp, test::loopback4()));
  return c;
}

net::Flow first_flow(test::RecordingHandler& h) {
  std::lock_guard lock(h.mu);
  return h.messages.at(0).flow;
}

TEST(TcpTransport, MessageSplitAcrossWritesAndReplyOnTheConnection) {
  Harness h(tcp_config());
  ASSERT_TRUE(h.layer) << h.error->what;
  Peer client = Peer::tcp_connect(h.bound(0));
  ASSERT_TRUE(client.ok());
  std::string m = test::make_request("split", "TCP", "v=0\r\n");
  // Three writes, the second waiting until the layer has seen the first bytes.
  ASSERT_TRUE(client.send(m.substr(0, 10)));
  ASSERT_TRUE(test::eventually([&] { return h.layer->open_connections() == 1; }));
  ASSERT_TRUE(client.send(m.substr(10, 60)));
  ASSERT_TRUE(client.send(m.substr(70)));
  ASSERT_TRUE(h.handler().wait_messages(1));
  net::Flow flow = first_flow(h.handler());
  {
    std::lock_guard lock(h.handler().mu);
    EXPECT_EQ(h.handler().messages[0].bytes, m);
  }
  EXPECT_EQ(flow.transport, net::Transport::kTcp);
  EXPECT_EQ(flow.remote, client.local());
  EXPECT_NE(flow.connection_id, 0u);
  EXPECT_EQ(flow.connection_id >> 56, 0u);
  EXPECT_TRUE(h.layer->flow_alive(flow));
  ASSERT_TRUE(h.layer->send(flow, test::make_response("split", 200)));  // from a non-worker thread
  EXPECT_EQ(client.receive_until("\r\n\r\n"), test::make_response("split", 200));
  EXPECT_EQ(h.layer->counters().connections_accepted, 1u);
}

TEST(TcpTransport, PipelinedMessages) {
  Harness h(tcp_config());
  ASSERT_TRUE(h.layer);
  Peer client = Peer::tcp_connect(h.bound(0));
  std::string all;
  for (int i = 0; i < 5; ++i) all += test::make_request("pipe-" + std::to_string(i), "TCP", i % 2 ? "body" : "");
  ASSERT_TRUE(client.send(all));
  ASSERT_TRUE(h.handler().wait_messages(5));
  std::lock_guard lock(h.handler().mu);
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(h.handler().messages[static_cast<size_t>(i)].call_id, "pipe-" + std::to_string(i));
  EXPECT_EQ(h.handler().messages[0].flow, h.handler().messages[4].flow);
}

TEST(TcpTransport, PingGetsPong) {
  Harness h(tcp_config());
  ASSERT_TRUE(h.layer);
  Peer client = Peer::tcp_connect(h.bound(0));
  ASSERT_TRUE(client.send("\r\n\r\n"));
  auto pong = client.receive();
  ASSERT_TRUE(pong);
  EXPECT_EQ(*pong, "\r\n");
  // The connection still carries messages afterwards.
  ASSERT_TRUE(client.send(test::make_request("after-ping", "TCP")));
  ASSERT_TRUE(h.handler().wait_messages(1));
  EXPECT_EQ(h.layer->counters().pings_answered, 1u);
}

TEST(TcpTransport, OversizeMessageGets413ThenCloseWhileOthersKeepWorking) {
  auto config = tcp_config();
  config.parse_limits.max_message_size = 2000;
  Harness h(config, /*start=*/false);
  ASSERT_TRUE(h.layer);
  TransportLayer* layer = h.layer.get();
  h.handler().on_unparsable_hook = [&](const net::Flow& flow, const Error& error) {
    EXPECT_TRUE(layer->send(flow, test::make_response("big", error.status)));
  };
  h.layer->run();

  Peer other = Peer::tcp_connect(h.bound(0));
  ASSERT_TRUE(other.send(test::make_request("other-1", "TCP")));
  ASSERT_TRUE(h.handler().wait_messages(1));

  Peer big = Peer::tcp_connect(h.bound(0));
  const net::Endpoint big_local = big.local();
  ASSERT_TRUE(big.send(test::make_request("big", "TCP", std::string(5000, 'x'))));
  EXPECT_EQ(big.receive_until("\r\n\r\n"), test::make_response("big", 413));
  EXPECT_TRUE(big.wait_closed());
  big = Peer();  // our side lingers until the peer closes too
  ASSERT_TRUE(h.handler().wait([&] { return h.handler().closed.size() == 1; }));
  {
    std::lock_guard lock(h.handler().mu);
    ASSERT_EQ(h.handler().unparsable.size(), 1u);
    EXPECT_EQ(h.handler().unparsable[0].status, 413);
    // The head of the refused message is handed over so a Via can be found.
    EXPECT_TRUE(h.handler().unparsable[0].bytes.starts_with("OPTIONS sip:edge@127.0.0.1 SIP/2.0\r\nVia:"));
    EXPECT_TRUE(h.handler().closed[0].connected);
    EXPECT_EQ(h.handler().closed[0].flow.remote, big_local);
  }
  ASSERT_TRUE(other.send(test::make_request("other-2", "TCP")));
  ASSERT_TRUE(h.handler().wait_messages(2));
  EXPECT_EQ(h.layer->counters().drops[static_cast<size_t>(DropReason::kTooLarge)], 1u);
}

TEST(TcpTransport, PerIpLimitRefusesTheExtraConnection) {
  auto config = tcp_config();
  config.limits.max_per_source_ip = 1;
  Harness h(config);
  ASSERT_TRUE(h.layer);
  Peer first = Peer::tcp_connect(h.bound(0));
  ASSERT_TRUE(first.send(test::make_request("first", "TCP")));
  ASSERT_TRUE(h.handler().wait_messages(1));
  Peer second = Peer::tcp_connect(h.bound(0));  // the kernel accepts; the layer closes it
  ASSERT_TRUE(second.ok());
  EXPECT_TRUE(second.wait_closed());
  EXPECT_EQ(h.layer->counters().drops[static_cast<size_t>(DropReason::kConnectionLimit)], 1u);
  EXPECT_EQ(h.layer->open_connections(), 1u);
  // When the first goes, a new one is admitted.
  first = Peer();
  ASSERT_TRUE(test::eventually([&] { return h.layer->open_connections() == 0; }));
  Peer third = Peer::tcp_connect(h.bound(0));
  ASSERT_TRUE(third.send(test::make_request("third", "TCP")));
  ASSERT_TRUE(h.handler().wait_messages(2));
}

TEST(TcpTransport, FlowNotAliveAfterPeerClose) {
  Harness h(tcp_config());
  ASSERT_TRUE(h.layer);
  Peer client = Peer::tcp_connect(h.bound(0));
  ASSERT_TRUE(client.send(test::make_request("bye", "TCP")));
  ASSERT_TRUE(h.handler().wait_messages(1));
  net::Flow flow = first_flow(h.handler());
  EXPECT_TRUE(h.layer->flow_alive(flow));
  client = Peer();
  ASSERT_TRUE(h.handler().wait([&] { return h.handler().closed.size() == 1; }));
  EXPECT_FALSE(h.layer->flow_alive(flow));
  EXPECT_FALSE(h.layer->send(flow, "x"));
  EXPECT_EQ(h.layer->open_connections(), 0u);
  std::lock_guard lock(h.handler().mu);
  EXPECT_EQ(h.handler().closed[0].flow, flow);
  EXPECT_TRUE(h.handler().closed[0].connected);
}

TEST(TcpTransport, IdleTimeoutClosesUnusedConnectionButKeepFlowUntilKeepsOne) {
  auto config = tcp_config();
  config.limits.idle_timeout = std::chrono::seconds(1);
  Harness h(config);
  ASSERT_TRUE(h.layer);
  Peer kept = Peer::tcp_connect(h.bound(0));
  ASSERT_TRUE(kept.send(test::make_request("kept", "TCP")));
  ASSERT_TRUE(h.handler().wait_messages(1));
  net::Flow kept_flow = first_flow(h.handler());
  h.layer->keep_flow_until(kept_flow, std::chrono::steady_clock::now() + std::chrono::minutes(5));
  // Opened after the kept one: its idle deadline is later, so once it has closed the kept one
  // would have closed too had keep_flow_until not held it.
  Peer idle = Peer::tcp_connect(h.bound(0));
  ASSERT_TRUE(idle.send(test::make_request("idle", "TCP")));
  ASSERT_TRUE(h.handler().wait_messages(2));
  EXPECT_TRUE(idle.wait_closed());
  ASSERT_TRUE(h.handler().wait([&] { return h.handler().closed.size() == 1; }));
  EXPECT_TRUE(h.layer->flow_alive(kept_flow));
  {
    std::lock_guard lock(h.handler().mu);
    EXPECT_EQ(h.handler().closed[0].flow.remote, idle.local());
  }
  ASSERT_TRUE(h.layer->send(kept_flow, test::make_response("kept", 200)));
  EXPECT_EQ(kept.receive_until("\r\n\r\n"), test::make_response("kept", 200));
}

TEST(TcpTransport, SendToOpensAConnectionAndReusesIt) {
  auto config = tcp_config();
  Harness h(config);
  ASSERT_TRUE(h.layer);
  test::TcpServer server(test::loopback4());
  auto first = h.on_worker(
      0, [&] { return h.layer->send_to(0, net::Transport::kTcp, server.local(), test::make_request("out-1", "TCP")); });
  ASSERT_TRUE(first.ok());
  EXPECT_NE(first->connection_id, 0u);
  EXPECT_EQ(first->remote, server.local());
  EXPECT_EQ(first->local_socket_id, 0u);
  EXPECT_TRUE(h.layer->flow_alive(*first));
  auto accepted = server.accept();
  ASSERT_TRUE(accepted);
  EXPECT_EQ(accepted->receive_until("\r\n\r\n"), test::make_request("out-1", "TCP"));
  auto second = h.on_worker(
      0, [&] { return h.layer->send_to(0, net::Transport::kTcp, server.local(), test::make_request("out-2", "TCP")); });
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->connection_id, first->connection_id);
  EXPECT_EQ(accepted->receive_until("\r\n\r\n"), test::make_request("out-2", "TCP"));
  EXPECT_FALSE(server.accept(std::chrono::milliseconds(0)));  // no second connection
  // The peer answers on the same connection: it arrives on the same flow.
  ASSERT_TRUE(accepted->send(test::make_response("out-2", 200)));
  ASSERT_TRUE(h.handler().wait_messages(1));
  EXPECT_EQ(first_flow(h.handler()), *first);
  EXPECT_EQ(h.layer->counters().connections_opened, 1u);
}

TEST(TcpTransport, ConnectFailureReportsFlowClosedNotConnected) {
  Harness h(tcp_config());
  ASSERT_TRUE(h.layer);
  auto flow = h.layer->send_to(0, net::Transport::kTcp, test::loopback4(test::unused_tcp_port()),
                               test::make_request("nobody", "TCP"));
  ASSERT_TRUE(flow.ok());
  ASSERT_TRUE(h.handler().wait([&] { return h.handler().closed.size() == 1; }));
  std::lock_guard lock(h.handler().mu);
  EXPECT_EQ(h.handler().closed[0].flow, *flow);
  EXPECT_FALSE(h.handler().closed[0].connected);
  EXPECT_FALSE(h.layer->flow_alive(*flow));
}

TEST(TcpTransport, SendFromAnotherWorkerIsPostedToTheOwner) {
  auto config = tcp_config();
  config.workers = 2;
  Harness h(config);
  ASSERT_TRUE(h.layer);
  test::TcpServer server(test::loopback4());
  // A connection owned by worker 1 ...
  auto flow = h.on_worker(
      1, [&] { return h.layer->send_to(1, net::Transport::kTcp, server.local(), test::make_request("w1", "TCP")); });
  ASSERT_TRUE(flow.ok());
  EXPECT_EQ(flow->connection_id >> 56, 1u);
  auto accepted = server.accept();
  ASSERT_TRUE(accepted);
  EXPECT_EQ(accepted->receive_until("\r\n\r\n"), test::make_request("w1", "TCP"));
  // ... written to from worker 0's thread.
  EXPECT_TRUE(h.on_worker(0, [&] { return h.layer->send(*flow, test::make_request("from-w0", "TCP")); }));
  EXPECT_EQ(accepted->receive_until("\r\n\r\n"), test::make_request("from-w0", "TCP"));
  // Its answer is delivered to the owner's handler.
  ASSERT_TRUE(accepted->send(test::make_response("from-w0", 200)));
  ASSERT_TRUE(h.handler(1).wait_messages(1));
  std::lock_guard lock(h.handler(1).mu);
  EXPECT_EQ(h.handler(1).messages[0].worker, 1u);
}

TEST(TcpTransport, WriteQueueLimitCutsTheConnection) {
  auto config = tcp_config();
  config.limits.max_write_queue_bytes = 1000;
  Harness h(config);
  ASSERT_TRUE(h.layer);
  Peer client = Peer::tcp_connect(h.bound(0));
  ASSERT_TRUE(client.send(test::make_request("queue", "TCP")));
  ASSERT_TRUE(h.handler().wait_messages(1));
  net::Flow flow = first_flow(h.handler());
  EXPECT_TRUE(h.on_worker(0, [&] { return !h.layer->send(flow, std::string(2000, 'x')); }));
  EXPECT_TRUE(client.wait_closed());
  EXPECT_FALSE(h.layer->flow_alive(flow));
  EXPECT_EQ(h.layer->counters().drops[static_cast<size_t>(DropReason::kWriteQueueFull)], 1u);
}

TEST(TcpTransport, StopClosesConnectionsAndTellsTheHandler) {
  Harness h(tcp_config());
  ASSERT_TRUE(h.layer);
  Peer client = Peer::tcp_connect(h.bound(0));
  ASSERT_TRUE(client.send(test::make_request("stop", "TCP")));
  ASSERT_TRUE(h.handler().wait_messages(1));
  h.layer->stop();
  h.layer->stop();  // idempotent
  EXPECT_TRUE(client.wait_closed());
  std::lock_guard lock(h.handler().mu);
  EXPECT_EQ(h.handler().closed.size(), 1u);
  EXPECT_EQ(h.layer->open_connections(), 0u);
}

}  // namespace
}  // namespace pinhole::transport
