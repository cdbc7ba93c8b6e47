// The UserAgent end to end over loopback against a scripted registrar: real sockets on
// 127.0.0.1, every wait bounded, no sleep deciding an outcome.
#include "ua/user_agent.h"

#include <gtest/gtest.h>

#include <future>
#include <string>

#include "nat/stun.h"
#include "sip/auth.h"
#include "ua_test_support.h"

namespace pinhole::ua {
namespace {

using test::make_ua;

using std::chrono::milliseconds;
using test::Events;
using test::header;
using test::reply;

constexpr std::string_view kInstance = "urn:uuid:11111111-2222-4333-8444-555555555555";

UaConfig config_for(std::string proxy) {
  UaConfig c;
  c.aor = "sip:alice@example.com";
  c.password = "secret";
  c.proxy.uri = std::move(proxy);
  c.instance_id = std::string(kInstance);
  c.expires = 600;
  return c;
}

std::string challenge() {
  return "WWW-Authenticate: Digest realm=\"example.com\", nonce=\"n0nce\", qop=\"auth\", algorithm=MD5\r\n";
}

std::string contact_line(const sip::Message& request) {
  std::string out;
  auto contacts = request.contacts();  // the Result must outlive the loop over its span
  for (const auto& c : *contacts) {
    if (c.expires != "0") out += "Contact: " + std::string(c.raw) + "\r\n";
  }
  return out;
}

// Checks the REGISTER's digest against the password as the registrar would.
void expect_valid_digest(const sip::Message& request) {
  auto auth = sip::parse_auth(header(request, "Authorization"));
  ASSERT_TRUE(auth.ok());
  std::string ha1 = test::md5_hex("alice:example.com:secret");
  std::string ha2 = test::md5_hex("REGISTER:" + std::string(auth->uri));
  EXPECT_EQ(auth->uri, "sip:example.com");
  EXPECT_EQ(auth->response,
            test::md5_hex(ha1 + ":n0nce:" + std::string(auth->nc) + ":" + std::string(auth->cnonce) + ":auth:" + ha2));
}

TEST(UserAgentUdp, AuthenticatesLearnsAddressRemovesStaleBindingAndUnregisters) {
  test::UdpServer server;
  Events events;
  auto ua = make_ua(config_for("udp:127.0.0.1:" + std::to_string(server.port())), events);
  ASSERT_NE(ua, nullptr);
  ua->set_inspector([](std::string& message) { message.insert(message.find("\r\n") + 2, "X-Inspected: yes\r\n"); });
  ASSERT_TRUE(ua->start().ok());

  // 1: unauthenticated; Via and Contact carry the socket's real address; the 401 tells the UA
  // the registrar saw it at 192.0.2.77:40000.
  auto r1 = server.request();
  ASSERT_TRUE(r1.has_value());
  auto& [d1, m1] = *r1;
  EXPECT_EQ(header(*m1, "X-Inspected"), "yes");
  auto via1 = *m1->top_via();
  EXPECT_EQ(via1->host, "127.0.0.1");
  EXPECT_EQ(via1->port, d1.from_port());
  EXPECT_TRUE(via1->has_rport);
  EXPECT_EQ((*m1->contacts())[0].uri.port, d1.from_port());
  HostPort seen1{"192.0.2.77", 40000};
  server.send(reply(*m1, 401, seen1, challenge()), d1.from);

  // 2: authenticated, from the same socket, Contact = learned address, one binding.
  auto r2 = server.request();
  ASSERT_TRUE(r2.has_value());
  auto& [d2, m2] = *r2;
  EXPECT_EQ(d2.from_port(), d1.from_port());
  expect_valid_digest(*m2);
  ASSERT_EQ(m2->contacts()->size(), 1u);
  EXPECT_EQ((*m2->contacts())[0].uri.host, "192.0.2.77");
  EXPECT_EQ((*m2->contacts())[0].uri.port, 40000);
  server.send(reply(*m2, 200, seen1, contact_line(*m2)), d2.from);
  ASSERT_TRUE(events.wait(UaEventKind::kRegistered));

  // 3: a refresh; the NAT moved us: the 200 says 192.0.2.78:40001.
  ua->refresh();
  auto r3 = server.request();
  ASSERT_TRUE(r3.has_value());
  auto& [d3, m3] = *r3;
  EXPECT_EQ((*m3->contacts())[0].uri.raw, (*m2->contacts())[0].uri.raw);
  HostPort seen2{"192.0.2.78", 40001};
  server.send(reply(*m3, 200, seen2, contact_line(*m3)), d3.from);

  // 4: at once, the stale binding removed and the new one added in one REGISTER.
  auto r4 = server.request();
  ASSERT_TRUE(r4.has_value());
  auto& [d4, m4] = *r4;
  auto contacts = *m4->contacts();
  ASSERT_EQ(contacts.size(), 2u);
  EXPECT_EQ(contacts[0].uri.host, "192.0.2.77");
  EXPECT_EQ(contacts[0].expires, "0");
  EXPECT_EQ(contacts[1].uri.host, "192.0.2.78");
  EXPECT_EQ(contacts[1].uri.port, 40001);
  expect_valid_digest(*m4);
  server.send(reply(*m4, 200, seen2, contact_line(*m4)), d4.from);
  ASSERT_TRUE(events.wait(UaEventKind::kRegistered, 3));
  EXPECT_GE(events.count(UaEventKind::kContactChanged), 2u);

  // Shutdown unregisters: answered by the server on this thread while stop() waits.
  auto stopped = std::async(std::launch::async, [&] { ua->stop(); });
  auto r5 = server.request();
  ASSERT_TRUE(r5.has_value());
  auto& [d5, m5] = *r5;
  EXPECT_EQ(header(*m5, "Expires"), "0");
  ASSERT_EQ(m5->contacts()->size(), 1u);
  EXPECT_EQ((*m5->contacts())[0].expires, "0");
  EXPECT_EQ((*m5->contacts())[0].uri.host, "192.0.2.78");
  server.send(reply(*m5, 200, seen2), d5.from);
  stopped.get();
  EXPECT_EQ(events.count(UaEventKind::kUnregistered), 1u);
}

TEST(UserAgentUdp, FiftyForeignContactsAreLoggedAndIgnored) {
  test::UdpServer server;
  Events events;
  auto ua = make_ua(config_for("udp:127.0.0.1:" + std::to_string(server.port())), events);
  ASSERT_TRUE(ua->start().ok());
  auto r1 = server.request();
  ASSERT_TRUE(r1.has_value());
  auto& [d1, m1] = *r1;
  HostPort seen{"127.0.0.1", d1.from_port()};
  std::string crowd;
  for (int i = 0; i < 50; ++i) crowd += "Contact: <sip:alice@198.51.100." + std::to_string(i) + ":5060>;expires=60\r\n";
  server.send(reply(*m1, 200, seen, crowd + contact_line(*m1)), d1.from);
  ASSERT_TRUE(events.wait(UaEventKind::kRegistered));
  EXPECT_GE(events.count(UaEventKind::kWarning), 1u);
  // No re-REGISTER follows: our binding is in place; a refresh still carries our own Contact.
  ua->refresh();
  auto r2 = server.request();
  ASSERT_TRUE(r2.has_value());
  ASSERT_EQ(r2->second->contacts()->size(), 1u);
  EXPECT_EQ((*r2->second->contacts())[0].uri.raw, (*m1->contacts())[0].uri.raw);
  server.send(reply(*r2->second, 200, seen, contact_line(*r2->second)), r2->first.from);
  ASSERT_TRUE(events.wait(UaEventKind::kRegistered, 2));
  auto stopped = std::async(std::launch::async, [&] { ua->stop(); });
  if (auto r3 = server.request()) server.send(reply(*r3->second, 200, seen), r3->first.from);
  stopped.get();
}

TEST(UserAgentUdp, UnansweredRegisterFailsTheFlowAndRetriesOnANewOne) {
  test::UdpServer server;
  Events events;
  auto config = config_for("udp:127.0.0.1:" + std::to_string(server.port()));
  config.t1 = milliseconds(10);  // the table's Timer F: 64*T1 = 640 ms
  config.backoff_base = milliseconds(100);
  auto ua = make_ua(config, events);
  ASSERT_TRUE(ua->start().ok());
  auto first = server.request();
  ASSERT_TRUE(first.has_value());
  uint16_t first_port = first->first.from_port();
  // Unanswered over UDP: the non-INVITE client transaction retransmits the same bytes.
  auto second = server.request();
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(second->first.from_port(), first_port);
  EXPECT_EQ(second->second->bytes(), first->second->bytes());
  ASSERT_TRUE(events.wait(UaEventKind::kTimeout));
  for (const auto& e : events.all()) {
    if (e.kind == UaEventKind::kTimeout) {
      EXPECT_EQ(e.status, 408);  // Timer F
    }
  }
  EXPECT_GE(events.count(UaEventKind::kFlowFailed), 1u);
  // Retransmissions come from the old socket; wait for a REGISTER from a new one.
  std::optional<std::pair<test::UdpServer::Datagram, sip::MessagePtr>> next;
  for (int i = 0; i < 50; ++i) {
    next = server.request();
    ASSERT_TRUE(next.has_value());
    if (next->first.from_port() != first_port) break;
  }
  ASSERT_NE(next->first.from_port(), first_port);
  EXPECT_EQ(*next->second->call_id(), *first->second->call_id());
  ua->stop(milliseconds(0));
}

TEST(UserAgentUdp, StunKeepaliveSeesMappedAddressChangeAsFlowFailure) {
  test::UdpServer server;
  Events events;
  auto config = config_for("udp:127.0.0.1:" + std::to_string(server.port()));
  config.keepalive_interval = milliseconds(50);
  auto ua = make_ua(config, events);
  ASSERT_TRUE(ua->start().ok());
  auto r1 = server.request();
  ASSERT_TRUE(r1.has_value());
  HostPort seen{"127.0.0.1", r1->first.from_port()};
  server.send(reply(*r1->second, 200, seen, contact_line(*r1->second) + "Require: outbound\r\n"), r1->first.from);
  ASSERT_TRUE(events.wait(UaEventKind::kRegistered));

  // Answer two Binding Requests with different mapped addresses.
  int answered = 0;
  for (int i = 0; i < 100 && answered < 2; ++i) {
    auto d = server.receive();
    ASSERT_TRUE(d.has_value());
    if (!nat::looks_like_stun(d->bytes)) continue;
    auto request = nat::decode_stun(d->bytes);
    ASSERT_TRUE(request.ok());
    EXPECT_EQ(request->type, nat::kStunBindingRequest);
    std::string response;
    auto mapped = net::Endpoint::parse(answered == 0 ? "192.0.2.1:1000" : "192.0.2.1:2000");
    nat::append_binding_success(response, request->transaction_id, *mapped);
    server.send(response, d->from);
    ++answered;
  }
  ASSERT_TRUE(events.wait(UaEventKind::kFlowFailed));
  // A new flow re-registers at once.
  auto r2 = server.request();
  ASSERT_TRUE(r2.has_value());
  EXPECT_NE(r2->first.from_port(), r1->first.from_port());
  ua->stop(milliseconds(0));
}

TEST(UserAgentTcp, OneConnectionAliasPingPongAndPongTimeoutReRegisters) {
  test::TcpServer server;
  Events events;
  auto config = config_for("tcp:127.0.0.1:" + std::to_string(server.port()));
  config.keepalive_interval = milliseconds(50);
  config.pong_timeout = milliseconds(300);
  auto ua = make_ua(config, events);
  ASSERT_TRUE(ua->start().ok());

  auto conn = server.accept();
  ASSERT_NE(conn, nullptr);
  HostPort seen = conn->remote();
  auto m1 = conn->message();
  ASSERT_NE(m1, nullptr);
  auto via = *m1->top_via();
  EXPECT_EQ(via->transport, "TCP");
  EXPECT_TRUE(via->alias);
  EXPECT_TRUE(via->has_rport);
  EXPECT_EQ(via->port, seen.port);  // the connection's port, not a listener's
  auto c1 = (*m1->contacts())[0];
  EXPECT_EQ(c1.uri.transport(), "tcp");
  EXPECT_EQ(c1.uri.port, seen.port);
  EXPECT_EQ(header(*m1, "Supported"), "path, outbound");
  conn->send(reply(*m1, 401, seen, challenge()));

  auto m2 = conn->message();  // same connection
  ASSERT_NE(m2, nullptr);
  expect_valid_digest(*m2);
  conn->send(reply(*m2, 200, seen, contact_line(*m2) + "Require: outbound\r\n"));
  ASSERT_TRUE(events.wait(UaEventKind::kRegistered));

  ua->refresh();
  auto m3 = conn->message();  // still the same connection
  ASSERT_NE(m3, nullptr);
  EXPECT_EQ((*m3->contacts())[0].uri.raw, c1.uri.raw);
  EXPECT_TRUE((*m3->top_via())->alias);
  conn->send(reply(*m3, 200, seen, contact_line(*m3) + "Require: outbound\r\n"));
  ASSERT_TRUE(events.wait(UaEventKind::kRegistered, 2));

  // A ping, answered: the UA sends the next ping on the same connection.
  auto ping1 = conn->next();
  ASSERT_EQ(ping1.kind, sip::StreamFramer::Kind::kPing);
  conn->send("\r\n");
  auto ping2 = conn->next();
  ASSERT_EQ(ping2.kind, sip::StreamFramer::Kind::kPing);
  EXPECT_EQ(events.count(UaEventKind::kFlowFailed), 0u);
  // Not answered: the flow is declared dead, closed, and a new connection re-registers.
  ASSERT_TRUE(events.wait(UaEventKind::kFlowFailed));
  EXPECT_EQ(conn->next().kind, sip::StreamFramer::Kind::kError);  // closed by the UA
  auto conn2 = server.accept();
  ASSERT_NE(conn2, nullptr);
  auto m4 = conn2->message();
  ASSERT_NE(m4, nullptr);
  EXPECT_EQ(*m4->call_id(), *m1->call_id());
  expect_valid_digest(*m4);  // the nonce is still answered with a counted nc
  HostPort seen2 = conn2->remote();
  auto contacts = *m4->contacts();
  ASSERT_EQ(contacts.size(), 2u);  // the old connection's binding removed
  EXPECT_EQ(contacts[0].uri.port, seen.port);
  EXPECT_EQ(contacts[0].expires, "0");
  EXPECT_EQ(contacts[1].uri.port, seen2.port);
  conn2->send(reply(*m4, 200, seen2, contact_line(*m4)));
  ASSERT_TRUE(events.wait(UaEventKind::kRegistered, 3));

  auto stopped = std::async(std::launch::async, [&] { ua->stop(); });
  auto m5 = conn2->message();
  ASSERT_NE(m5, nullptr);
  EXPECT_EQ(header(*m5, "Expires"), "0");
  conn2->send(reply(*m5, 200, seen2));
  stopped.get();
  EXPECT_EQ(events.count(UaEventKind::kUnregistered), 1u);
}

TEST(UserAgentTcp, GarbageIsSurvivedAndUnframeableBytesReplaceTheConnection) {
  test::TcpServer server;
  Events events;
  auto ua = make_ua(config_for("tcp:127.0.0.1:" + std::to_string(server.port())), events);
  ASSERT_TRUE(ua->start().ok());
  auto conn = server.accept();
  ASSERT_NE(conn, nullptr);
  HostPort seen = conn->remote();
  auto m1 = conn->message();
  ASSERT_NE(m1, nullptr);
  conn->send(reply(*m1, 200, seen, contact_line(*m1)));
  ASSERT_TRUE(events.wait(UaEventKind::kRegistered));

  // A framed but meaningless message: dropped with a warning, the connection stays.
  conn->send("THIS IS NOT SIP\r\n\r\n");
  ASSERT_TRUE(events.wait(UaEventKind::kWarning));
  ua->refresh();
  auto m2 = conn->message();
  ASSERT_NE(m2, nullptr);
  conn->send(reply(*m2, 200, seen, contact_line(*m2)));
  ASSERT_TRUE(events.wait(UaEventKind::kRegistered, 2));

  // 70 kB without an empty line cannot be framed: the flow fails and is replaced.
  conn->send(std::string(70000, 'x'));
  ASSERT_TRUE(events.wait(UaEventKind::kFlowFailed));
  auto conn2 = server.accept();
  ASSERT_NE(conn2, nullptr);
  auto m3 = conn2->message();
  ASSERT_NE(m3, nullptr);
  EXPECT_EQ(m3->method(), sip::Method::kRegister);
  ua->stop(milliseconds(0));
}

TEST(UserAgentCreate, RefusesBadProxySpecs) {
  Events events;
  EXPECT_FALSE(UserAgent::create(config_for("ftp:1.2.3.4"), events.handler()).ok());
  EXPECT_FALSE(UserAgent::create(config_for("sip:1.2.3.4;transport=ws"), events.handler()).ok());  // TLS: tls_flow_test
  EXPECT_FALSE(UserAgent::create(config_for("sip:1.2.3.4;transport=sctp"), events.handler()).ok());
  auto ok = parse_outbound_proxy("tcp:[2001:db8::1]:5070");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->transport, net::Transport::kTcp);
  auto uri = parse_outbound_proxy("sip:proxy.example.com;transport=TCP");
  ASSERT_TRUE(uri.ok());
  EXPECT_EQ(uri->transport, net::Transport::kTcp);
  EXPECT_EQ(parse_outbound_proxy("udp:10.0.0.1")->transport, net::Transport::kUdp);
}

}  // namespace
}  // namespace pinhole::ua
