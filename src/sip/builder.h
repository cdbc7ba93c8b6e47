// Builders for messages pinhole originates: responses to a received request (RFC 3261 §8.2.6)
// and requests from scratch (keepalive OPTIONS/NOTIFY, the UA library). Output is wire bytes;
// parse them with Message::parse when a parsed form is needed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sip/message.h"

namespace pinhole::sip {

// RFC 3261 §21 reason phrase for a status code ("" for codes it does not name).
std::string_view default_reason(uint16_t status);

class ResponseBuilder {
 public:
  // Copies every Via (in order), From, To, Call-ID, CSeq from `request` (which must have passed
  // the mandatory-header checks, or at least have them) and the Timestamp for 100 Trying.
  ResponseBuilder(const Message& request, uint16_t status, std::string_view reason = {});

  // To tag to add when the request's To has none (ignored for 100 Trying, RFC 3261 §8.2.6.2).
  ResponseBuilder& to_tag(std::string_view tag);
  // RFC 3581 §4: received (and rport value, when the request asked for it) on the top Via.
  ResponseBuilder& via_received(std::string_view source_ip, uint16_t source_port);
  ResponseBuilder& header(std::string_view name, std::string_view value);
  ResponseBuilder& body(std::string_view content_type, std::string_view body);
  std::string build() const;

 private:
  const Message& request_;
  uint16_t status_;
  std::string reason_;
  std::string to_tag_;
  std::string received_ip_;
  uint16_t received_port_ = 0;
  std::string extra_headers_;
  std::string content_type_, body_;
};

class RequestBuilder {
 public:
  RequestBuilder(std::string_view method, std::string_view request_uri);
  // Header fields come out in the order given; Content-Length is added by build().
  RequestBuilder& header(std::string_view name, std::string_view value);
  RequestBuilder& body(std::string_view content_type, std::string_view body);
  std::string build() const;

 private:
  std::string head_;
  std::string content_type_, body_;
};

}  // namespace pinhole::sip
