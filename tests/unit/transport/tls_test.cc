// TLS: the listener's server handshake with a certificate made at test time, and connections we
// open with the upstream certificate verified (refused when untrusted, accepted with ca_file).
#include <gtest/gtest.h>

#include <thread>

#include "transport/asio.h"
#include "transport/socket_util.h"
#include "transport/transport_layer.h"
#include "transport_test_support.h"

namespace pinhole::transport {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using test::Harness;

TransportConfig tls_config(const test::TestCertificate& cert) {
  TransportConfig c;
  c.listeners.push_back(test::listener(net::Transport::kTls, test::loopback4()));
  c.tls.certificate_file = cert.cert_file();
  c.tls.private_key_file = cert.key_file();
  return c;
}

// A TLS server on loopback run by its own thread: accepts one connection, handshakes, reads
// until an empty line. Bounded by run_for, so a test that fails cannot hang on it.
class TlsTestServer {
 public:
  explicit TlsTestServer(const test::TestCertificate& cert) : context_(ssl::context::tls_server), acceptor_(io_) {
    context_.use_certificate_chain_file(cert.cert_file());
    context_.use_private_key_file(cert.key_file(), ssl::context::pem);
    acceptor_.open(asio::ip::tcp::v4());
    acceptor_.bind(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    acceptor_.listen();
    acceptor_.async_accept([this](const boost::system::error_code& ec, asio::ip::tcp::socket s) {
      if (ec) return;
      stream_.emplace(std::move(s), context_);
      stream_->async_handshake(ssl::stream_base::server, [this](const boost::system::error_code& hec) {
        if (hec) {
          finish(false);
          return;
        }
        asio::async_read_until(*stream_, asio::dynamic_buffer(received_), "\r\n\r\n",
                               [this](const boost::system::error_code&, size_t) { finish(true); });
      });
    });
    thread_ = std::thread([this] { io_.run_for(test::kDeadline); });
  }
  ~TlsTestServer() {
    io_.stop();
    thread_.join();
  }
  net::Endpoint local() const { return *from_asio(acceptor_.local_endpoint()); }
  // Waits for the outcome: whether the handshake succeeded, and what was read.
  bool wait(bool& handshake_ok, std::string& received) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, test::kDeadline, [&] { return done_; })) return false;
    handshake_ok = handshake_ok_;
    received = received_;
    return true;
  }

 private:
  void finish(bool ok) {
    std::lock_guard lock(mu_);
    done_ = true;
    handshake_ok_ = ok;
    cv_.notify_all();
  }

  asio::io_context io_;
  ssl::context context_;
  asio::ip::tcp::acceptor acceptor_;
  std::optional<ssl::stream<asio::ip::tcp::socket>> stream_;
  std::string received_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false, handshake_ok_ = false;
  std::thread thread_;
};

TEST(TlsTransport, ListenerReceivesMessageFromAsioClient) {
  test::TestCertificate cert;
  Harness h(tls_config(cert));
  ASSERT_TRUE(h.layer) << h.error->what;
  asio::io_context io;
  ssl::context client_context(ssl::context::tls_client);
  client_context.load_verify_file(cert.cert_file());
  ssl::stream<asio::ip::tcp::socket> client(io, client_context);
  client.set_verify_mode(ssl::verify_peer);
  client.set_verify_callback(ssl::host_name_verification("localhost"));
  client.next_layer().connect(to_asio<asio::ip::tcp::endpoint>(h.bound(0)));
  client.handshake(ssl::stream_base::client);
  std::string request = test::make_request("tls-in", "TLS");
  asio::write(client, asio::buffer(request));
  ASSERT_TRUE(h.handler().wait_messages(1));
  net::Flow flow;
  {
    std::lock_guard lock(h.handler().mu);
    EXPECT_EQ(h.handler().messages[0].bytes, request);
    flow = h.handler().messages[0].flow;
  }
  EXPECT_EQ(flow.transport, net::Transport::kTls);
  ASSERT_TRUE(h.layer->send(flow, test::make_response("tls-in", 200)));
  std::string reply;
  asio::read_until(client, asio::dynamic_buffer(reply), "\r\n\r\n");
  EXPECT_EQ(reply, test::make_response("tls-in", 200));
}

TEST(TlsTransport, SendToUntrustedServerFailsAndTrustedCaFileSucceeds) {
  test::TestCertificate ours;
  test::TestCertificate upstream;
  {
    // Verification against the system's CAs: the self-signed upstream is refused.
    auto config = tls_config(ours);
    config.tls.verify_upstream = true;
    Harness h(config);
    ASSERT_TRUE(h.layer) << h.error->what;
    TlsTestServer server(upstream);
    auto flow =
        h.layer->send_to(0, net::Transport::kTls, server.local(), test::make_request("untrusted", "TLS"), "localhost");
    ASSERT_TRUE(flow.ok());
    ASSERT_TRUE(h.handler().wait([&] { return h.handler().closed.size() == 1; }));
    {
      std::lock_guard lock(h.handler().mu);
      EXPECT_EQ(h.handler().closed[0].flow, *flow);
      EXPECT_FALSE(h.handler().closed[0].connected);
    }
    bool ok = true;
    std::string received;
    ASSERT_TRUE(server.wait(ok, received));
    EXPECT_FALSE(ok);
    EXPECT_EQ(h.layer->counters().drops[static_cast<size_t>(DropReason::kTlsHandshake)], 1u);
  }
  {
    // ca_file names the upstream's certificate: trusted, and the name matches.
    auto config = tls_config(ours);
    config.tls.verify_upstream = true;
    config.tls.ca_file = upstream.cert_file();
    Harness h(config);
    ASSERT_TRUE(h.layer) << h.error->what;
    TlsTestServer server(upstream);
    auto flow =
        h.layer->send_to(0, net::Transport::kTls, server.local(), test::make_request("trusted", "TLS"), "localhost");
    ASSERT_TRUE(flow.ok());
    bool ok = false;
    std::string received;
    ASSERT_TRUE(server.wait(ok, received));
    EXPECT_TRUE(ok);
    EXPECT_EQ(received, test::make_request("trusted", "TLS"));
    EXPECT_TRUE(h.layer->flow_alive(*flow));
  }
}

TEST(TlsTransport, WrongServerNameIsRefused) {
  test::TestCertificate ours;
  test::TestCertificate upstream;
  auto config = tls_config(ours);
  config.tls.ca_file = upstream.cert_file();
  Harness h(config);
  ASSERT_TRUE(h.layer);
  TlsTestServer server(upstream);
  auto flow =
      h.layer->send_to(0, net::Transport::kTls, server.local(), test::make_request("name", "TLS"), "sip.example.com");
  ASSERT_TRUE(flow.ok());
  ASSERT_TRUE(h.handler().wait([&] { return h.handler().closed.size() == 1; }));
  std::lock_guard lock(h.handler().mu);
  EXPECT_FALSE(h.handler().closed[0].connected);
}

TEST(TlsTransport, MissingCertificateFileIsNamedInTheError) {
  TransportConfig c;
  c.listeners.push_back(test::listener(net::Transport::kTls, test::loopback4()));
  c.tls.certificate_file = "/nonexistent/pinhole-cert.pem";
  c.tls.private_key_file = "/nonexistent/pinhole-key.pem";
  auto r = TransportLayer::create(c);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().what.find("/nonexistent/pinhole-cert.pem"), std::string_view::npos) << r.error().what;
}

}  // namespace
}  // namespace pinhole::transport
