// The OpenSSL contexts of the layer: one server context for the TLS listeners (certificate chain
// and key from TlsSettings) and one client context for the connections we open (peer verified
// against the CA file, or the system's default paths, when verify_upstream). Built once by
// create(); read-only afterwards and shared by every worker (an SSL_CTX is safe to use from
// several threads once configured).
#pragma once

#include <memory>
#include <string_view>

#include "common/result.h"
#include "transport/asio.h"
#include "transport/transport_layer.h"

namespace pinhole::transport {

class TlsContexts {
 public:
  // `need_server`: a TLS listener exists, so the certificate and key are required. Errors name
  // the file that could not be used (status 500).
  static Result<std::unique_ptr<TlsContexts>> create(const TlsSettings& settings, bool need_server);

  boost::asio::ssl::context* server() { return server_.get(); }  // null without TLS listeners
  boost::asio::ssl::context& client() { return *client_; }
  bool verify_upstream() const { return verify_upstream_; }

  // Sets SNI (unless `name` is an IP literal) and, when verifying, the RFC 6125 name check on a
  // client stream before its handshake. `name` is the server name or the peer's address text.
  void prepare_client(boost::asio::ssl::stream<boost::asio::ip::tcp::socket>& stream, const std::string& name) const;

 private:
  std::unique_ptr<boost::asio::ssl::context> server_;
  std::unique_ptr<boost::asio::ssl::context> client_;
  bool verify_upstream_ = true;
};

}  // namespace pinhole::transport
