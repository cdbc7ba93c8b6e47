// The UA's SDP offer/answer (media_sdp.h) and the G.711 encoders of its tone (g711.h).
#include "ua/media_sdp.h"

#include <gtest/gtest.h>

#include <string>

#include "sdp/session_description.h"
#include "ua/g711.h"

namespace pinhole::ua {
namespace {

LocalMedia local_at(std::string_view address, uint16_t port) {
  LocalMedia m;
  m.rtp = {*net::Address::parse(address), port};
  m.session_id = 1234;
  return m;
}

std::string offer_with(std::string_view c_address, uint16_t port, std::string_view formats,
                       std::string_view extra = {}) {
  return "v=0\r\no=x 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 " + std::string(c_address) + "\r\nt=0 0\r\nm=audio " +
         std::to_string(port) + " RTP/AVP " + std::string(formats) + "\r\n" + std::string(extra);
}

TEST(MediaSdp, OfferCarriesTheRtpSocketAddressAndOurCodecs) {
  std::string offer = build_offer(local_at("10.0.0.5", 40000));  // the parse keeps views into it
  auto parsed = sdp::parse_sdp(offer);
  ASSERT_TRUE(parsed.ok());
  ASSERT_EQ(parsed->media.size(), 1u);
  const auto& m = parsed->media[0];
  EXPECT_EQ(m.port, 40000);
  ASSERT_TRUE(m.connection.has_value());
  EXPECT_EQ(m.connection->address_text, "10.0.0.5");
  EXPECT_EQ(m.formats, (std::vector<std::string_view>{"0", "8", "101"}));
  EXPECT_EQ(parsed->origin.session_id, "1234");
}

TEST(MediaSdp, OfferOverIpv6SaysIp6) {
  std::string offer = build_offer(local_at("2001:db8::5", 40000));
  auto parsed = sdp::parse_sdp(offer);
  ASSERT_TRUE(parsed.ok());
  ASSERT_TRUE(parsed->media[0].connection.has_value());
  EXPECT_EQ(parsed->media[0].connection->address_text, "2001:db8::5");
}

TEST(MediaSdp, AnswerPicksTheOfferersFirstSupportedCodecAndItsTelephoneEventType) {
  auto answer = answer_offer(
      offer_with("198.51.100.7", 30000, "18 8 0 96", "a=rtpmap:18 G729/8000\r\na=rtpmap:96 telephone-event/8000\r\n"),
      local_at("10.0.0.5", 40002));
  ASSERT_TRUE(answer.ok());
  EXPECT_EQ(answer->remote.payload_type, kPayloadPcma);
  EXPECT_EQ(answer->remote.telephone_event, 96);
  ASSERT_TRUE(answer->remote.rtp.has_value());
  EXPECT_EQ(answer->remote.rtp->to_string(), "198.51.100.7:30000");
  auto parsed = sdp::parse_sdp(answer->sdp);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->media[0].formats, (std::vector<std::string_view>{"8", "96"}));
  EXPECT_EQ(parsed->media[0].port, 40002);
  EXPECT_EQ(parsed->media[0].direction, sdp::Direction::kSendRecv);
}

TEST(MediaSdp, HeldOfferIsAnsweredRecvonlyWithNoTarget) {
  auto answer = answer_offer(offer_with("0.0.0.0", 30000, "0", "a=sendonly\r\n"), local_at("10.0.0.5", 40002));
  ASSERT_TRUE(answer.ok());
  EXPECT_FALSE(answer->remote.rtp.has_value());
  auto parsed = sdp::parse_sdp(answer->sdp);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->media[0].direction, sdp::Direction::kRecvOnly);
}

TEST(MediaSdp, OfferWithoutG711OrAudioOrSdpIsRefused488) {
  auto no_codec = answer_offer(offer_with("198.51.100.7", 30000, "18"), local_at("10.0.0.5", 40002));
  ASSERT_FALSE(no_codec.ok());
  EXPECT_EQ(no_codec.error().status, 488);
  std::string video =
      "v=0\r\no=x 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=video 5000 RTP/AVP 96\r\n";
  EXPECT_FALSE(answer_offer(video, local_at("10.0.0.5", 40002)).ok());
  EXPECT_FALSE(answer_offer("not sdp", local_at("10.0.0.5", 40002)).ok());
  EXPECT_FALSE(read_answer("").ok());
}

TEST(MediaSdp, ReadAnswerTakesAddressPortAndCodec) {
  auto remote = read_answer(offer_with("203.0.113.9", 20000, "0"));
  ASSERT_TRUE(remote.ok());
  EXPECT_EQ(remote->payload_type, kPayloadPcmu);
  ASSERT_TRUE(remote->rtp.has_value());
  EXPECT_EQ(remote->rtp->to_string(), "203.0.113.9:20000");
  EXPECT_FALSE(remote->telephone_event.has_value());
}

// Reference points of ITU-T G.711 (silence and full scale of both laws).
TEST(G711, EncodesTheReferencePoints) {
  EXPECT_EQ(linear_to_ulaw(0), 0xff);
  EXPECT_EQ(linear_to_ulaw(32767), 0x80);
  EXPECT_EQ(linear_to_ulaw(-32768), 0x00);
  EXPECT_EQ(linear_to_ulaw(-1), 0x7f);
  EXPECT_EQ(linear_to_alaw(0), 0xd5);
  EXPECT_EQ(linear_to_alaw(32767), 0xaa);
  EXPECT_EQ(linear_to_alaw(-32768), 0x2a);
}

TEST(G711, IsMonotonicInTheSampleMagnitude) {
  // μ-law codes fall as a positive sample grows (the code is inverted): never back up.
  int previous = 0x100;
  for (int sample = 0; sample <= 32767; sample += 64) {
    int code = linear_to_ulaw(static_cast<int16_t>(sample));
    EXPECT_LE(code, previous) << sample;
    previous = code;
  }
}

}  // namespace
}  // namespace pinhole::ua
