// The UserAgent over TLS end to end on loopback: a scripted registrar behind a TLS listener with
// a self-signed certificate made in the test. Covers the certificate check (trusted through
// tls_ca_file, refused by the system store with OpenSSL's reason, name and IP address
// mismatches, `tls_insecure`), SNI, Via/Contact on a TLS flow, CRLF keepalives both ways and a
// dead flow replaced by a new TLS connection. Every wait bounded, no sleep deciding an outcome.
#include <gtest/gtest.h>

#include <future>
#include <string>

#include "ua/user_agent.h"
#include "ua_test_support.h"

namespace pinhole::ua {
namespace {

using std::chrono::milliseconds;
using test::Events;
using test::header;
using test::make_ua;
using test::reply;

UaConfig tls_config(const std::string& proxy) {
  UaConfig c;
  c.aor = "sip:alice@example.com";
  c.password = "secret";
  c.proxy.uri = proxy;
  c.instance_id = "urn:uuid:11111111-2222-4333-8444-555555555555";
  c.expires = 600;
  return c;
}

std::string contact_line(const sip::Message& request) {
  std::string out;
  auto contacts = request.contacts();
  for (const auto& c : *contacts) {
    if (c.expires != "0") out += "Contact: " + std::string(c.raw) + "\r\n";
  }
  return out;
}

std::string last_text(Events& events, UaEventKind kind) {
  std::string text;
  for (const auto& e : events.all()) {
    if (e.kind == kind) text = e.text;
  }
  return text;
}

// Answers the unregister stop() sends, on `conn`.
void stop_registered(UserAgent& ua, test::TcpPeer& conn, const HostPort& seen) {
  auto stopped = std::async(std::launch::async, [&ua] { ua.stop(); });
  auto m = conn.message();
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(header(*m, "Expires"), "0");
  conn.send(reply(*m, 200, seen));
  stopped.get();
}

// The UA's verification failure: a kFlowFailed naming OpenSSL's reason, the server's handshake
// refused, no registration.
std::string expect_refused(test::TcpServer& server, UserAgent& ua, Events& events) {
  EXPECT_TRUE(ua.start().ok());
  EXPECT_EQ(server.accept(), nullptr);
  EXPECT_TRUE(server.tls_failed());
  EXPECT_TRUE(events.wait(UaEventKind::kFlowFailed));
  EXPECT_EQ(events.count(UaEventKind::kRegistered), 0u);
  EXPECT_EQ(events.count(UaEventKind::kFlowUp), 0u);
  ua.stop(milliseconds(0));
  return last_text(events, UaEventKind::kFlowFailed);
}

TEST(UserAgentTls, RegistersWithCaFileAnswersPingsAndKeepsOneConnection) {
  test::TestCertificate cert;
  test::TcpServer server(cert.server_context());
  Events events;
  auto config = tls_config("tls:127.0.0.1:" + std::to_string(server.port()));
  config.tls_ca_file = cert.cert_file();
  auto ua = make_ua(config, events);
  ASSERT_NE(ua, nullptr);
  ASSERT_TRUE(ua->start().ok());
  EXPECT_EQ(ua->pinned_target().transport, net::Transport::kTls);

  auto conn = server.accept();
  ASSERT_NE(conn, nullptr);
  EXPECT_EQ(conn->server_name(), "");  // RFC 6066: no IP literal in SNI
  HostPort seen = conn->remote();
  auto m1 = conn->message();
  ASSERT_NE(m1, nullptr);
  auto via = *m1->top_via();
  EXPECT_EQ(via->transport, "TLS");
  EXPECT_TRUE(via->alias);
  EXPECT_TRUE(via->has_rport);
  EXPECT_EQ(via->port, seen.port);  // the connection's own port
  auto c1 = (*m1->contacts())[0];
  EXPECT_EQ(c1.uri.transport(), "tls");
  EXPECT_EQ(c1.uri.port, seen.port);
  EXPECT_EQ(header(*m1, "Supported"), "path, outbound");
  conn->send(reply(*m1, 200, seen, contact_line(*m1) + "Require: outbound\r\n"));
  ASSERT_TRUE(events.wait(UaEventKind::kRegistered));
  EXPECT_EQ(last_text(events, UaEventKind::kFlowUp).rfind("tls ", 0), 0u) << last_text(events, UaEventKind::kFlowUp);

  // The server's CRLF CRLF ping is answered with a CRLF pong through TLS.
  conn->send("\r\n\r\n");
  EXPECT_EQ(conn->next().kind, sip::StreamFramer::Kind::kPong);

  ua->refresh();
  auto m2 = conn->message();  // the same TLS connection
  ASSERT_NE(m2, nullptr);
  EXPECT_EQ((*m2->contacts())[0].uri.raw, c1.uri.raw);  // transport=tls kept
  EXPECT_EQ((*m2->top_via())->transport, "TLS");
  conn->send(reply(*m2, 200, seen, contact_line(*m2)));
  ASSERT_TRUE(events.wait(UaEventKind::kRegistered, 2));

  stop_registered(*ua, *conn, seen);
  EXPECT_EQ(events.count(UaEventKind::kUnregistered), 1u);
  EXPECT_EQ(events.count(UaEventKind::kFlowFailed), 0u);
}

TEST(UserAgentTls, PingAnsweredThenPongTimeoutReplacesTheTlsConnection) {
  test::TestCertificate cert;
  test::TcpServer server(cert.server_context());
  Events events;
  auto config = tls_config("tls:127.0.0.1:" + std::to_string(server.port()));
  config.tls_ca_file = cert.cert_file();
  config.keepalive_interval = milliseconds(50);
  config.pong_timeout = milliseconds(300);
  auto ua = make_ua(config, events);
  ASSERT_NE(ua, nullptr);
  ASSERT_TRUE(ua->start().ok());

  auto conn = server.accept();
  ASSERT_NE(conn, nullptr);
  HostPort seen = conn->remote();
  auto m1 = conn->message();
  ASSERT_NE(m1, nullptr);
  conn->send(reply(*m1, 200, seen, contact_line(*m1) + "Require: outbound\r\n"));
  ASSERT_TRUE(events.wait(UaEventKind::kRegistered));

  // The UA's ping, answered: the next one follows on the same connection.
  ASSERT_EQ(conn->next().kind, sip::StreamFramer::Kind::kPing);
  conn->send("\r\n");
  ASSERT_EQ(conn->next().kind, sip::StreamFramer::Kind::kPing);
  EXPECT_EQ(events.count(UaEventKind::kFlowFailed), 0u);
  // Not answered: the flow is dead, the connection closed and a new TLS one re-registers.
  ASSERT_TRUE(events.wait(UaEventKind::kFlowFailed));
  EXPECT_NE(last_text(events, UaEventKind::kFlowFailed).find("pong"), std::string::npos);
  EXPECT_EQ(conn->next().kind, sip::StreamFramer::Kind::kError);
  auto conn2 = server.accept();
  ASSERT_NE(conn2, nullptr);
  HostPort seen2 = conn2->remote();
  auto m2 = conn2->message();
  ASSERT_NE(m2, nullptr);
  EXPECT_EQ(*m2->call_id(), *m1->call_id());
  auto contacts = *m2->contacts();
  ASSERT_EQ(contacts.size(), 2u);  // the dead connection's binding removed
  EXPECT_EQ(contacts[0].uri.port, seen.port);
  EXPECT_EQ(contacts[0].expires, "0");
  EXPECT_EQ(contacts[1].uri.port, seen2.port);
  EXPECT_EQ(contacts[1].uri.transport(), "tls");
  conn2->send(reply(*m2, 200, seen2, contact_line(*m2)));
  ASSERT_TRUE(events.wait(UaEventKind::kRegistered, 2));
  stop_registered(*ua, *conn2, seen2);
}

TEST(UserAgentTls, ProxyNameIsSentAsSniAndChecked) {
  test::TestCertificate cert("DNS:localhost");
  test::TcpServer server(cert.server_context());
  Events events;
  auto config = tls_config("sip:localhost:" + std::to_string(server.port()) + ";transport=tls");
  config.tls_ca_file = cert.cert_file();
  auto ua = make_ua(config, events);
  ASSERT_NE(ua, nullptr);
  net::ResolverOptions resolver;
  resolver.ipv6 = false;  // the listener is on 127.0.0.1 only
  ua->set_resolver_options(resolver);
  ASSERT_TRUE(ua->start().ok());
  EXPECT_EQ(ua->pinned_target().transport, net::Transport::kTls);
  auto conn = server.accept();
  ASSERT_NE(conn, nullptr);
  EXPECT_EQ(conn->server_name(), "localhost");
  HostPort seen = conn->remote();
  auto m1 = conn->message();
  ASSERT_NE(m1, nullptr);
  conn->send(reply(*m1, 200, seen, contact_line(*m1)));
  ASSERT_TRUE(events.wait(UaEventKind::kRegistered));
  stop_registered(*ua, *conn, seen);
}

TEST(UserAgentTls, UntrustedCertificateFailsTheFlowNamingTheReason) {
  test::TestCertificate cert;  // self-signed: not in the system's CA store
  test::TcpServer server(cert.server_context());
  Events events;
  auto ua = make_ua(tls_config("tls:127.0.0.1:" + std::to_string(server.port())), events);
  ASSERT_NE(ua, nullptr);
  std::string why = expect_refused(server, *ua, events);
  EXPECT_NE(why.find("certificate verification failed"), std::string::npos) << why;
  EXPECT_NE(why.find("self-signed certificate"), std::string::npos) << why;
}

TEST(UserAgentTls, CertificateForAnotherAddressIsRefused) {
  test::TestCertificate cert("DNS:proxy.example.net,IP:192.0.2.1");
  test::TcpServer server(cert.server_context());
  Events events;
  auto config = tls_config("tls:127.0.0.1:" + std::to_string(server.port()));
  config.tls_ca_file = cert.cert_file();  // trusted, but not for 127.0.0.1
  auto ua = make_ua(config, events);
  ASSERT_NE(ua, nullptr);
  std::string why = expect_refused(server, *ua, events);
  EXPECT_NE(why.find("IP address mismatch"), std::string::npos) << why;
}

TEST(UserAgentTls, CertificateForAnotherNameIsRefused) {
  test::TestCertificate cert("DNS:proxy.example.net,IP:127.0.0.1");
  test::TcpServer server(cert.server_context());
  Events events;
  auto config = tls_config("sips:localhost:" + std::to_string(server.port()));
  config.tls_ca_file = cert.cert_file();  // trusted, and for this IP, but not for "localhost"
  auto ua = make_ua(config, events);
  ASSERT_NE(ua, nullptr);
  net::ResolverOptions resolver;
  resolver.ipv6 = false;
  ua->set_resolver_options(resolver);
  std::string why = expect_refused(server, *ua, events);
  EXPECT_NE(why.find("hostname mismatch"), std::string::npos) << why;
  EXPECT_NE(why.find("localhost"), std::string::npos) << why;
}

TEST(UserAgentTls, InsecureSkipsTheCertificateCheck) {
  test::TestCertificate cert("DNS:proxy.example.net");  // untrusted and for another name
  test::TcpServer server(cert.server_context());
  Events events;
  auto config = tls_config("tls:127.0.0.1:" + std::to_string(server.port()));
  config.tls_insecure = true;
  auto ua = make_ua(config, events);
  ASSERT_NE(ua, nullptr);
  ASSERT_TRUE(ua->start().ok());
  auto conn = server.accept();
  ASSERT_NE(conn, nullptr);
  HostPort seen = conn->remote();
  auto m1 = conn->message();
  ASSERT_NE(m1, nullptr);
  EXPECT_EQ((*m1->top_via())->transport, "TLS");
  conn->send(reply(*m1, 200, seen, contact_line(*m1)));
  ASSERT_TRUE(events.wait(UaEventKind::kRegistered));
  stop_registered(*ua, *conn, seen);
}

TEST(UserAgentTls, UnreadableCaFileIsRefusedAtCreate) {
  auto config = tls_config("tls:127.0.0.1:5061");
  config.tls_ca_file = "/nonexistent/pinhole-ua-ca.pem";
  Events events;
  auto ua = UserAgent::create(config, events.handler());
  ASSERT_FALSE(ua.ok());
  EXPECT_NE(ua.error().what.find("/nonexistent/pinhole-ua-ca.pem"), std::string_view::npos) << ua.error().what;
}

TEST(OutboundProxySpec, TlsForms) {
  struct Case {
    const char* spec;
    net::Transport transport;
  };
  for (const auto& c :
       {Case{"tls:proxy.example.com", net::Transport::kTls}, Case{"TLS:[2001:db8::1]:5071", net::Transport::kTls},
        Case{"sips:proxy.example.com", net::Transport::kTls},
        Case{"sips:proxy.example.com;transport=tcp", net::Transport::kTls},
        Case{"sip:proxy.example.com:5071;transport=tls", net::Transport::kTls},
        Case{"sip:proxy.example.com;transport=tcp", net::Transport::kTcp}}) {
    auto parsed = parse_outbound_proxy(c.spec);
    ASSERT_TRUE(parsed.ok()) << c.spec;
    EXPECT_EQ(parsed->transport, c.transport) << c.spec;
    auto uri = sip::parse_uri(parsed->uri);
    ASSERT_TRUE(uri.ok()) << parsed->uri;
  }
  EXPECT_EQ(parse_outbound_proxy("tls:proxy.example.com")->uri, "sip:proxy.example.com;transport=tls");
  EXPECT_FALSE(parse_outbound_proxy("sips:proxy.example.com;transport=udp").ok());
  EXPECT_FALSE(parse_outbound_proxy("tls:").ok());
  EXPECT_FALSE(parse_outbound_proxy("sip:proxy.example.com;transport=sctp").ok());
}

}  // namespace
}  // namespace pinhole::ua
