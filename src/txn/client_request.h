// The request a client transaction keeps: sent and retransmitted from its bytes, parsed only
// when the transaction or its TU needs the parsed form.
#pragma once

#include <string>
#include <string_view>
#include <utility>

#include "sip/message.h"

namespace pinhole::txn {

// The request a client transaction sends. Either parsed already (the TU gave a Message), or only
// the bytes the TU serialized: a proxy forwarding a request knows its method and branch, so it
// need not parse its own output, and the transaction parses it only when it needs the parsed form
// (the ACK for a non-2xx, TransactionTable::request()), which most transactions never do.
// Ownership: owns the bytes and the parsed message; one thread, like the machine holding it.
class ClientRequest {
 public:
  ClientRequest() = default;
  explicit ClientRequest(sip::MessagePtr parsed) : parsed_(std::move(parsed)) {}
  explicit ClientRequest(std::string bytes) : bytes_(std::move(bytes)), given_as_bytes_(true) {}
  ClientRequest(ClientRequest&& other) noexcept { *this = std::move(other); }
  ClientRequest& operator=(ClientRequest&& other) noexcept {
    bytes_ = std::exchange(other.bytes_, {});
    parsed_ = std::exchange(other.parsed_, nullptr);
    given_as_bytes_ = std::exchange(other.given_as_bytes_, false);
    parse_failed_ = std::exchange(other.parse_failed_, false);
    return *this;
  }
  ClientRequest(const ClientRequest&) = delete;
  ClientRequest& operator=(const ClientRequest&) = delete;
  ~ClientRequest() = default;

  // False once moved from (released).
  explicit operator bool() const { return given_as_bytes_ || parsed_ != nullptr; }
  // What goes on the wire. Given as bytes, they stay where they are when parsed (the message
  // copies them), so views of them taken earlier stay valid.
  std::string_view bytes() const { return given_as_bytes_ ? std::string_view(bytes_) : parsed_->bytes(); }
  // The parsed request; parsed on the first call when given as bytes. nullptr when those do not
  // parse (then never tried again; parse_failed() says so): never for bytes a TU serialized
  // itself, but our own output is no reason to assert on.
  const sip::Message* parsed() const;
  bool parse_failed() const { return parse_failed_; }

 private:
  std::string bytes_;
  // Lazily filled by parsed(), which is logically const (TransactionTable::request() is).
  mutable sip::MessagePtr parsed_;
  bool given_as_bytes_ = false;
  mutable bool parse_failed_ = false;
};

}  // namespace pinhole::txn
