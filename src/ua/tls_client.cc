#include "ua/tls_client.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <string>

#include "common/startup_error.h"
#include "net/address.h"

namespace pinhole::ua {
namespace {

namespace ssl = boost::asio::ssl;

// "[::1]" as the proxy host: the certificate carries the bare address.
std::string strip_brackets(const std::string& name) {
  if (name.size() > 2 && name.front() == '[' && name.back() == ']') return name.substr(1, name.size() - 2);
  return name;
}

}  // namespace

Result<std::shared_ptr<ssl::context>> make_tls_client_context(const TlsClientSettings& settings) {
  auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
  boost::system::error_code ec;
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                           ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1,
                       ec);
  if (ec) return Error{500, "tls: cannot set the client context's options"};
  if (settings.insecure) {
    context->set_verify_mode(ssl::verify_none, ec);
    return context;
  }
  context->set_verify_mode(ssl::verify_peer, ec);
  if (!settings.ca_file.empty()) {
    context->load_verify_file(settings.ca_file, ec);
    if (ec) return startup_error(500, "tls: cannot load CA file " + settings.ca_file + ": " + ec.message());
  } else {
    context->set_default_verify_paths(ec);
    if (ec) return Error{500, "tls: cannot load the system's default CA store"};
  }
  return context;
}

Status prepare_tls_client(TlsStream& stream, const std::string& server_name, bool verify) {
  const std::string name = strip_brackets(server_name);
  SSL* ssl_handle = stream.native_handle();
  const bool is_ip = net::Address::parse(name).ok();
  if (!is_ip && !name.empty()) {
    // RFC 6066 forbids IP literals in SNI. SSL_set_tlsext_host_name is a macro with a C cast;
    // this is its expansion.
    if (SSL_ctrl(ssl_handle, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
                 const_cast<char*>(name.c_str())) != 1) {
      return Error{500, "tls: the proxy's host name is not usable for SNI"};
    }
  }
  if (!verify) return Status::Ok();
  // OpenSSL's own name check (rather than a verify callback) so that a mismatch is reported as
  // X509_V_ERR_HOSTNAME_MISMATCH / X509_V_ERR_IP_ADDRESS_MISMATCH by tls_handshake_failure().
  if (is_ip) {
    if (X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl_handle), name.c_str()) != 1) {
      return Error{500, "tls: cannot check the proxy's IP address in its certificate"};
    }
  } else {
    // Wildcards only as the whole left-most label (RFC 6125 §6.4.3).
    SSL_set_hostflags(ssl_handle, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
    if (SSL_set1_host(ssl_handle, name.c_str()) != 1) {
      return Error{500, "tls: cannot check the proxy's host name in its certificate"};
    }
  }
  return Status::Ok();
}

std::string tls_handshake_failure(TlsStream& stream, const boost::system::error_code& ec) {
  const long result = SSL_get_verify_result(stream.native_handle());  // NOLINT(google-runtime-int): OpenSSL's type
  if (result != X509_V_OK) {
    return std::string("certificate verification failed: ") + X509_verify_cert_error_string(result);
  }
  return ec.message();
}

}  // namespace pinhole::ua
