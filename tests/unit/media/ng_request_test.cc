// The edge's ng encoding and reply decoding (media/ng_request.h): requests are read back with
// the relay's own parser (parse_ng_body, what pinhole-media runs), so a key the relay would not
// understand fails here; replies are built with the relay's encoder (encode_ng_reply).
#include "media/ng_request.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "media/bencode.h"
#include "media/ng_message.h"

namespace pinhole::media {
namespace {

proxy::MediaRequest offer() {
  proxy::MediaRequest r;
  r.op = proxy::MediaOp::kOffer;
  r.call_id = "c1@host";
  r.from_tag = "ft";
  r.via_branch = "z9hG4bK-1";
  r.sdp = "v=0\r\nc=IN IP4 192.168.1.10\r\nm=audio 4000 RTP/AVP 0\r\n";
  r.received_from = {*net::Address::parse("203.0.113.101"), 52500};
  r.flags = {"SIP-source-address", "symmetric"};
  r.replace = {"origin", "session-connection"};
  return r;
}

// The body (after the cookie) of an encoded request, checking the cookie on the way.
std::string body_of(const std::string& message, std::string_view cookie) {
  auto frame = split_ng_frame(message);
  EXPECT_TRUE(frame.ok());
  if (!frame) return {};
  EXPECT_EQ(frame->cookie, cookie);
  return std::string(frame->body);
}

TEST(NgRequest, OfferCarriesEveryKeyTheRelayReads) {
  proxy::MediaRequest r = offer();
  std::string body = body_of(encode_ng_request("ck_1", r), "ck_1");
  auto command = parse_ng_body(body);
  ASSERT_TRUE(command.ok()) << command.error().what;
  EXPECT_EQ(command->kind, NgCommandKind::kOffer);
  EXPECT_EQ(command->call_id, r.call_id);
  EXPECT_EQ(command->from_tag, r.from_tag);
  EXPECT_FALSE(command->has_to_tag);
  EXPECT_EQ(command->via_branch, r.via_branch);
  EXPECT_EQ(command->sdp, r.sdp);
  ASSERT_TRUE(command->received_from.has_value());
  EXPECT_EQ(command->received_from->family, NgFamily::kIp4);
  EXPECT_EQ(command->received_from->address, "203.0.113.101");
  EXPECT_TRUE(command->flags.has(NgFlag::kSipSourceAddress));
  EXPECT_TRUE(command->flags.has(NgFlag::kSymmetric));
  EXPECT_FALSE(command->flags.has(NgFlag::kTrustAddress));
  EXPECT_TRUE(command->replace.has(NgReplace::kOrigin));
  EXPECT_TRUE(command->replace.has(NgReplace::kSessionConnection));
  EXPECT_TRUE(command->unknown_keys.empty());
  EXPECT_TRUE(command->unknown_flags.empty());
}

TEST(NgRequest, AnswerFromIpv6CarriesToTagAndIp6) {
  proxy::MediaRequest r = offer();
  r.op = proxy::MediaOp::kAnswer;
  r.to_tag = "tt";
  r.via_branch.clear();
  r.flags.clear();
  r.replace.clear();
  r.received_from = {*net::Address::parse("2001:db8::7"), 5060};
  std::string body = body_of(encode_ng_request("a", r), "a");
  auto command = parse_ng_body(body);
  ASSERT_TRUE(command.ok()) << command.error().what;
  EXPECT_EQ(command->kind, NgCommandKind::kAnswer);
  EXPECT_TRUE(command->has_to_tag);
  EXPECT_EQ(command->to_tag, "tt");
  EXPECT_TRUE(command->via_branch.empty());
  ASSERT_TRUE(command->received_from.has_value());
  EXPECT_EQ(command->received_from->family, NgFamily::kIp6);
  EXPECT_EQ(command->received_from->address, "2001:db8::7");
  // Empty lists are left out rather than sent empty.
  auto doc = bencode::decode(body);
  ASSERT_TRUE(doc.ok());
  EXPECT_FALSE(doc->root().find("flags").has_value());
  EXPECT_FALSE(doc->root().find("replace").has_value());
}

TEST(NgRequest, DeleteSendsNoSdpAndNoUnsetReceivedFrom) {
  proxy::MediaRequest r = offer();
  r.op = proxy::MediaOp::kDelete;
  r.received_from = {};
  r.via_branch.clear();
  std::string body = body_of(encode_ng_request("d", r), "d");
  auto doc = bencode::decode(body);
  ASSERT_TRUE(doc.ok());
  EXPECT_FALSE(doc->root().find("sdp").has_value());
  EXPECT_FALSE(doc->root().find("received-from").has_value());
  EXPECT_FALSE(doc->root().find("to-tag").has_value());
  auto command = parse_ng_body(body);
  ASSERT_TRUE(command.ok()) << command.error().what;
  EXPECT_EQ(command->kind, NgCommandKind::kDelete);
  EXPECT_EQ(command->call_id, r.call_id);
  EXPECT_FALSE(command->delete_delay.has_value()) << "unset: the relay's default applies";
}

TEST(NgRequest, DeleteDelayIsSentWhenSet) {
  proxy::MediaRequest r = offer();
  r.op = proxy::MediaOp::kDelete;
  r.delete_delay = 0;
  std::string body = body_of(encode_ng_request("d", r), "d");
  auto command = parse_ng_body(body);
  ASSERT_TRUE(command.ok()) << command.error().what;
  ASSERT_TRUE(command->delete_delay.has_value());
  EXPECT_EQ(*command->delete_delay, 0);
}

TEST(NgRequest, PingIsAPingCommand) {
  std::string body = body_of(encode_ng_ping("p9"), "p9");
  auto command = parse_ng_body(body);
  ASSERT_TRUE(command.ok());
  EXPECT_EQ(command->kind, NgCommandKind::kPing);
}

std::string reply_body(const NgReply& reply) {
  std::string message = encode_ng_reply("x", reply);
  return message.substr(2);
}

TEST(NgReplyDecode, OkGivesSdpAndWarning) {
  NgReply reply;
  reply.sdp = "v=0\r\nrewritten\r\n";
  reply.warning = "Unknown flag: foo";
  auto result = decode_ng_reply(reply_body(reply), proxy::MediaOp::kOffer);
  ASSERT_TRUE(result.ok());
  EXPECT_EQ(result->sdp, "v=0\r\nrewritten\r\n");
  EXPECT_EQ(result->warning, "Unknown flag: foo");
}

TEST(NgReplyDecode, OkWithoutSdpIsAnErrorForOfferAndAnswerButNotDelete) {
  NgReply reply;
  EXPECT_EQ(decode_ng_reply(reply_body(reply), proxy::MediaOp::kOffer).error().status, 500);
  EXPECT_EQ(decode_ng_reply(reply_body(reply), proxy::MediaOp::kAnswer).error().status, 500);
  auto deleted = decode_ng_reply(reply_body(reply), proxy::MediaOp::kDelete);
  ASSERT_TRUE(deleted.ok());
  EXPECT_TRUE(deleted->sdp.empty());
}

TEST(NgReplyDecode, SdpErrorsAre488OthersAre500) {
  NgReply reply;
  reply.result = NgResult::kError;
  reply.error_reason = "Failed to parse SDP";
  std::string reason;
  auto bad_sdp = decode_ng_reply(reply_body(reply), proxy::MediaOp::kOffer, &reason);
  ASSERT_FALSE(bad_sdp.ok());
  EXPECT_EQ(bad_sdp.error().status, 488);
  EXPECT_EQ(reason, "Failed to parse SDP");

  reply.error_reason = "Unknown call-id";
  auto unknown = decode_ng_reply(reply_body(reply), proxy::MediaOp::kAnswer, &reason);
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.error().status, 500);
  EXPECT_EQ(reason, "Unknown call-id");
}

TEST(NgReplyDecode, LoadLimitIs503) {
  NgReply reply;
  reply.result = NgResult::kLoadLimit;
  reply.message = "too busy";
  std::string reason;
  auto result = decode_ng_reply(reply_body(reply), proxy::MediaOp::kOffer, &reason);
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().status, 503);
  EXPECT_EQ(reason, "too busy");
}

TEST(NgReplyDecode, GarbageIs500NeverACrash) {
  for (std::string_view body : {"", "not bencode", "i3e", "d6:result7:unknowne", "d3:sdp3:abce", "d6:resulti1ee"}) {
    auto result = decode_ng_reply(body, proxy::MediaOp::kOffer);
    ASSERT_FALSE(result.ok()) << body;
    EXPECT_EQ(result.error().status, 500) << body;
  }
}

TEST(NgReplyDecode, Pong) {
  NgReply pong;
  pong.result = NgResult::kPong;
  EXPECT_TRUE(is_ng_pong(reply_body(pong)));
  EXPECT_FALSE(is_ng_pong(reply_body(NgReply{})));
  EXPECT_FALSE(is_ng_pong("garbage"));
}

}  // namespace
}  // namespace pinhole::media
