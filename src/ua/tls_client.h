// The TLS side of a client flow (RFC 3261 §26.2.1, RFC 5922 §7): the OpenSSL client context the
// UA builds once from its settings (the system's CA store or one CA file, or no verification for
// labs), the per-connection set-up (SNI and the name or IP address the certificate must carry)
// and a readable reason when a handshake fails, naming OpenSSL's verification error.
//
// Ownership and threads: the context is built on the application's thread (UserAgent::create)
// and then only read; it is shared (shared_ptr) by the UserAgent and every ClientFlow, whose
// streams point into it and may outlive the UA's own reference in pending Asio handlers. The
// per-stream functions run on the UA's event-loop thread.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "transport/asio.h"  // NOLINT(misc-include-cleaner): Asio headers in their one place

namespace pinhole::ua {

using TlsStream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;

struct TlsClientSettings {
  std::string ca_file;    // PEM CA certificates to trust; empty: the system's default store
  bool insecure = false;  // skip certificate verification entirely (labs only)
};

// TLS 1.2 or later. Errors (status 500, the text names the file) when the CA file or the
// system store cannot be loaded.
Result<std::shared_ptr<boost::asio::ssl::context>> make_tls_client_context(const TlsClientSettings& settings);

// Before the handshake: SNI with `server_name` unless it is an IP literal, and unless `verify`
// is false the check that the certificate carries that name (DNS name, RFC 6125) or, for an IP
// literal, that IP address. Errors (status 500) when OpenSSL refuses the name.
Status prepare_tls_client(TlsStream& stream, const std::string& server_name, bool verify);

// After a failed handshake: "certificate verification failed: <OpenSSL's reason>" when the
// peer's certificate was refused (untrusted, expired, wrong name...), else `ec`'s message.
std::string tls_handshake_failure(TlsStream& stream, const boost::system::error_code& ec);

}  // namespace pinhole::ua
