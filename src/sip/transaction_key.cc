#include "sip/transaction_key.h"

namespace pinhole::sip {
namespace {

void append_lower(std::string& out, std::string_view s) {
  for (char c : s) out.push_back(ascii_lower(c));
}

Result<std::string> request_key(const Message& req, std::string_view method) {
  auto via = req.top_via();
  if (!via) return via.error();
  const Via& v = **via;
  std::string key;
  if (v.rfc3261_branch()) {
    key.reserve(v.branch.size() + v.host.size() + 16);
    key.append(v.branch).push_back('|');
    append_lower(key, v.host);
    key.push_back(':');
    key.append(v.port_text).push_back('|');
    key.append(method);
    return key;
  }
  // RFC 2543 matching. The To tag is left out for INVITE/ACK: the ACK carries the tag of the
  // response while the INVITE had none.
  auto from = req.from();
  auto to = req.to();
  auto call_id = req.call_id();
  auto cseq = req.cseq();
  if (!from) return from.error();
  if (!to) return to.error();
  if (!call_id) return call_id.error();
  if (!cseq) return cseq.error();
  key.append("2543|").append(req.request_uri().raw).push_back('|');
  if (method != "INVITE") key.append((*to)->tag);
  key.push_back('|');
  key.append((*from)->tag).push_back('|');
  key.append(*call_id).push_back('|');
  key.append(std::to_string(cseq->number)).push_back('|');
  key.append(v.raw).push_back('|');
  key.append(method);
  return key;
}

}  // namespace

Result<std::string> server_transaction_key(const Message& request) {
  std::string_view method = request.method() == Method::kAck ? "INVITE" : request.method_name();
  return request_key(request, method);
}

Result<std::string> cancelled_invite_key(const Message& cancel) { return request_key(cancel, "INVITE"); }

std::string client_transaction_key_of(std::string_view branch, std::string_view method) {
  std::string key;
  key.reserve(branch.size() + 1 + method.size());
  key.append(branch).push_back('|');
  key.append(method);
  return key;
}

Result<std::string> client_transaction_key(const Message& response) {
  auto via = response.top_via();
  if (!via) return via.error();
  auto cseq = response.cseq();
  if (!cseq) return cseq.error();
  return client_transaction_key_of((*via)->branch, cseq->method_name);
}

Result<std::string> client_transaction_key_of_request(const Message& request) {
  auto via = request.top_via();
  if (!via) return Error{500, "request without Via"};
  auto cseq = request.cseq();
  if (!cseq) return Error{500, "request without CSeq"};
  if (!(*via)->rfc3261_branch()) return Error{500, "client transaction needs an RFC 3261 branch"};
  return client_transaction_key_of((*via)->branch, cseq->method_name);
}

}  // namespace pinhole::sip
