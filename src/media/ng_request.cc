// MediaRequest -> ng dictionary, ng reply -> MediaReply (ng_request.h).
#include "media/ng_request.h"

#include <algorithm>
#include <cctype>

#include "media/bencode.h"

namespace pinhole::media {
namespace {

std::string_view command_name(proxy::MediaOp op) {
  switch (op) {
    case proxy::MediaOp::kOffer:
      return "offer";
    case proxy::MediaOp::kAnswer:
      return "answer";
    case proxy::MediaOp::kDelete:
      return "delete";
  }
  return "delete";
}

void write_list(bencode::Writer& w, std::string_view key, const std::vector<std::string>& items) {
  if (items.empty()) return;
  w.key(key).begin_list();
  for (const auto& item : items) w.string(item);
  w.end();
}

// rtpengine's error texts for an SDP it cannot use ("Failed to parse SDP", "Incomplete SDP
// specification"...) all name it; pinhole-media's do too.
bool mentions_sdp(std::string_view text) {
  for (size_t i = 0; i + 3 <= text.size(); ++i) {
    if (std::toupper(static_cast<unsigned char>(text[i])) == 'S' &&
        std::toupper(static_cast<unsigned char>(text[i + 1])) == 'D' &&
        std::toupper(static_cast<unsigned char>(text[i + 2])) == 'P')
      return true;
  }
  return false;
}

std::string_view string_of(const bencode::Value& dict, std::string_view key) {
  auto v = dict.find(key);
  if (!v) return {};
  auto s = v->as_string();
  return s ? *s : std::string_view{};
}

}  // namespace

std::string encode_ng_request(std::string_view cookie, const proxy::MediaRequest& request) {
  std::string out;
  out.reserve(cookie.size() + request.sdp.size() + 256);
  out.append(cookie);
  out.push_back(' ');
  bencode::Writer w(out);
  w.begin_dict();
  if (request.op != proxy::MediaOp::kDelete && !request.sdp.empty()) w.entry("sdp", request.sdp);
  write_list(w, "flags", request.flags);
  write_list(w, "replace", request.replace);
  w.entry("call-id", request.call_id);
  if (request.received_from.address != net::Address() || request.received_from.port != 0) {
    const auto& address = request.received_from.address;
    w.key("received-from").begin_list();
    w.string(address.is_v4() ? "IP4" : "IP6");
    w.string(address.format().view());
    w.end();
  }
  if (!request.via_branch.empty()) w.entry("via-branch", request.via_branch);
  if (request.op == proxy::MediaOp::kDelete && request.delete_delay >= 0)
    w.entry("delete-delay", int64_t{request.delete_delay});
  w.entry("from-tag", request.from_tag);
  if (!request.to_tag.empty()) w.entry("to-tag", request.to_tag);
  w.entry("command", command_name(request.op));
  w.end();
  return out;
}

std::string encode_ng_ping(std::string_view cookie) {
  std::string out(cookie);
  out.push_back(' ');
  bencode::Writer w(out);
  w.begin_dict().entry("command", "ping").end();
  return out;
}

Result<proxy::MediaReply> decode_ng_reply(std::string_view body, proxy::MediaOp op, std::string* error_reason) {
  auto doc = bencode::decode(body);
  if (!doc) return Error{500, "media relay reply is not bencode"};
  bencode::Value root = doc->root();
  if (!root.is_dict()) return Error{500, "media relay reply is not a dictionary"};
  std::string_view result = string_of(root, "result");
  if (result == "ok") {
    proxy::MediaReply reply;
    reply.warning = std::string(string_of(root, "warning"));
    if (op != proxy::MediaOp::kDelete) {
      reply.sdp = std::string(string_of(root, "sdp"));
      if (reply.sdp.empty()) return Error{500, "media relay reply has no SDP"};
    }
    return reply;
  }
  if (result == "error") {
    std::string_view reason = string_of(root, "error-reason");
    if (error_reason != nullptr) *error_reason = std::string(reason);
    if (op != proxy::MediaOp::kDelete && mentions_sdp(reason)) return Error{488, "media relay refused the SDP"};
    return Error{500, "media relay answered an error"};
  }
  if (result == "load limit") {
    if (error_reason != nullptr) *error_reason = std::string(string_of(root, "message"));
    return Error{503, "media relay is at its load limit"};
  }
  return Error{500, "media relay reply has no usable result"};
}

bool is_ng_pong(std::string_view body) {
  auto doc = bencode::decode(body);
  return doc && doc->root().is_dict() && string_of(doc->root(), "result") == "pong";
}

}  // namespace pinhole::media
