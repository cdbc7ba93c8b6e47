#include "transport/tls_context.h"

#include <openssl/ssl.h>

#include <string>

#include "common/startup_error.h"
#include "net/address.h"
#include "transport/asio.h"

namespace pinhole::transport {
namespace {

namespace ssl = boost::asio::ssl;

Error file_error(std::string_view what, const std::string& file, const boost::system::error_code& ec) {
  return startup_error(500, std::string(what) + " " + file + ": " + ec.message());
}

}  // namespace

Result<std::unique_ptr<TlsContexts>> TlsContexts::create(const TlsSettings& settings, bool need_server) {
  auto out = std::make_unique<TlsContexts>();
  out->verify_upstream_ = settings.verify_upstream;
  boost::system::error_code ec;
  const auto options = ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                       ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::single_dh_use;

  if (need_server) {
    if (settings.certificate_file.empty() || settings.private_key_file.empty()) {
      return Error{500, "a TLS listener needs tls.certificate_file and tls.private_key_file"};
    }
    out->server_ = std::make_unique<ssl::context>(ssl::context::tls_server);
    out->server_->set_options(options, ec);
    out->server_->use_certificate_chain_file(settings.certificate_file, ec);
    if (ec) return file_error("cannot use TLS certificate file", settings.certificate_file, ec);
    out->server_->use_private_key_file(settings.private_key_file, ssl::context::pem, ec);
    if (ec) return file_error("cannot use TLS private key file", settings.private_key_file, ec);
    if (SSL_CTX_check_private_key(out->server_->native_handle()) != 1) {
      return startup_error(500, "TLS private key " + settings.private_key_file + " does not match certificate " +
                                    settings.certificate_file);
    }
    if (settings.require_client_certificate) {
      out->server_->set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert, ec);
      if (!settings.ca_file.empty()) {
        out->server_->load_verify_file(settings.ca_file, ec);
        if (ec) return file_error("cannot load TLS CA file", settings.ca_file, ec);
      } else {
        out->server_->set_default_verify_paths(ec);
      }
    }
  }

  out->client_ = std::make_unique<ssl::context>(ssl::context::tls_client);
  out->client_->set_options(options, ec);
  // Our certificate, when configured, doubles as the client certificate (mutual TLS upstream).
  if (!settings.certificate_file.empty() && !settings.private_key_file.empty()) {
    out->client_->use_certificate_chain_file(settings.certificate_file, ec);
    if (ec) return file_error("cannot use TLS certificate file", settings.certificate_file, ec);
    out->client_->use_private_key_file(settings.private_key_file, ssl::context::pem, ec);
    if (ec) return file_error("cannot use TLS private key file", settings.private_key_file, ec);
  }
  if (settings.verify_upstream) {
    out->client_->set_verify_mode(ssl::verify_peer, ec);
    if (!settings.ca_file.empty()) {
      out->client_->load_verify_file(settings.ca_file, ec);
      if (ec) return file_error("cannot load TLS CA file", settings.ca_file, ec);
    } else {
      out->client_->set_default_verify_paths(ec);
      if (ec) return Error{500, "cannot load the system's default TLS CA paths"};
    }
  } else {
    out->client_->set_verify_mode(ssl::verify_none, ec);
  }
  return out;
}

void TlsContexts::prepare_client(ssl::stream<boost::asio::ip::tcp::socket>& stream, const std::string& name) const {
  boost::system::error_code ec;
  bool is_ip = net::Address::parse(name).ok();
  if (!is_ip && !name.empty()) {
    // SSL_set_tlsext_host_name is a macro with a C cast; this is its expansion.
    SSL_ctrl(stream.native_handle(), SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             const_cast<char*>(name.c_str()));
  }
  if (verify_upstream_) {
    stream.set_verify_mode(ssl::verify_peer, ec);
    stream.set_verify_callback(ssl::host_name_verification(name), ec);
  }
}

}  // namespace pinhole::transport
