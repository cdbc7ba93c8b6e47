#include "ua/media_sdp.h"

#include <charconv>
#include <vector>

#include "sdp/session_description.h"
#include "sip/charset.h"

namespace pinhole::ua {
namespace {

constexpr Error kNotSdp{488, "SDP: body does not parse"};
constexpr Error kNoAudio{488, "SDP: no audio stream"};
constexpr Error kNoCodec{488, "SDP: neither PCMU nor PCMA offered"};

std::string address_type(const net::Address& a) { return a.is_v4() ? "IP4" : "IP6"; }

std::optional<uint8_t> parse_payload_type(std::string_view text) {
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 127) return std::nullopt;
  return static_cast<uint8_t>(value);
}

struct AudioStream {
  const sdp::MediaDescription* media = nullptr;
  std::vector<uint8_t> codecs;             // PCMU/PCMA payload types in the peer's order
  std::optional<uint8_t> telephone_event;  // its dynamic payload type
};

// The first audio stream and the payload types of it we understand. Static PCMU/PCMA are known
// by number; a dynamic one only by its rtpmap.
Result<AudioStream> find_audio(const sdp::SessionDescription& description) {
  AudioStream out;
  for (const auto& m : description.media) {
    if (m.media == "audio" && !m.disabled()) {
      out.media = &m;
      break;
    }
  }
  if (out.media == nullptr) return kNoAudio;
  std::vector<std::pair<uint8_t, std::string_view>> rtpmaps;
  for (size_t i = out.media->first_line; i < out.media->end_line && i < description.lines.size(); ++i) {
    const auto& line = description.lines[i];
    if (line.type != 'a') continue;
    auto attribute = sdp::split_attribute(line.value);
    if (attribute.name != "rtpmap") continue;
    std::string_view rest = attribute.value;
    auto pt = parse_payload_type(sdp::next_sdp_token(rest));
    auto encoding = sdp::next_sdp_token(rest);
    if (pt) rtpmaps.emplace_back(*pt, encoding);
  }
  auto encoding_of = [&](uint8_t pt) -> std::string_view {
    for (const auto& [n, e] : rtpmaps) {
      if (n == pt) return e;
    }
    return {};
  };
  for (auto format : out.media->formats) {
    auto pt = parse_payload_type(format);
    if (!pt) continue;
    auto encoding = encoding_of(*pt);
    if (*pt == kPayloadPcmu || *pt == kPayloadPcma) {
      out.codecs.push_back(*pt);
    } else if (constexpr std::string_view kEvents = "telephone-event/8000";  // "/1" channels may follow
               sip::iequals(encoding.substr(0, kEvents.size()), kEvents)) {
      out.telephone_event = *pt;
    }
  }
  return out;
}

std::optional<net::Endpoint> rtp_target(const sdp::MediaDescription& m) {
  if (m.disabled() || !m.connection || !m.connection->address || m.connection->unspecified()) return std::nullopt;
  return net::Endpoint{*m.connection->address, m.port};
}

std::string session_head(const LocalMedia& local) {
  std::string ip = local.rtp.address.to_string();
  std::string type = address_type(local.rtp.address);
  return "v=0\r\no=pinhole-ua " + std::to_string(local.session_id) + " " + std::to_string(local.version) + " IN " +
         type + " " + ip + "\r\ns=pinhole-ua\r\nc=IN " + type + " " + ip + "\r\nt=0 0\r\n";
}

}  // namespace

std::string build_offer(const LocalMedia& local) {
  std::string te = std::to_string(kPayloadTelephoneEvent);
  return session_head(local) + "m=audio " + std::to_string(local.rtp.port) + " RTP/AVP 0 8 " + te +
         "\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:" + te +
         " telephone-event/8000\r\na=fmtp:" + te + " 0-16\r\na=ptime:20\r\na=sendrecv\r\n";
}

Result<Answer> answer_offer(std::string_view offer, const LocalMedia& local) {
  auto description = sdp::parse_sdp(offer);
  if (!description) return kNotSdp;
  auto audio = find_audio(*description);
  if (!audio) return audio.error();
  if (audio->codecs.empty()) return kNoCodec;
  Answer out;
  out.remote.payload_type = audio->codecs.front();
  out.remote.telephone_event = audio->telephone_event;
  out.remote.rtp = rtp_target(*audio->media);
  std::string pt = std::to_string(out.remote.payload_type);
  std::string formats = pt;
  std::string attributes =
      "a=rtpmap:" + pt + (out.remote.payload_type == kPayloadPcmu ? " PCMU/8000\r\n" : " PCMA/8000\r\n");
  if (audio->telephone_event) {
    std::string te = std::to_string(*audio->telephone_event);
    formats += " " + te;
    attributes += "a=rtpmap:" + te + " telephone-event/8000\r\na=fmtp:" + te + " 0-16\r\n";
  }
  // A held offer (sendonly) is answered recvonly, an inactive one inactive (RFC 3264 §6.1).
  std::string_view direction = "sendrecv";
  if (audio->media->direction == sdp::Direction::kSendOnly) direction = "recvonly";
  if (audio->media->direction == sdp::Direction::kRecvOnly) direction = "sendonly";
  if (audio->media->direction == sdp::Direction::kInactive) direction = "inactive";
  out.sdp = session_head(local) + "m=audio " + std::to_string(local.rtp.port) + " RTP/AVP " + formats + "\r\n" +
            attributes + "a=ptime:20\r\na=" + std::string(direction) + "\r\n";
  return out;
}

Result<RemoteMedia> read_answer(std::string_view answer) {
  auto description = sdp::parse_sdp(answer);
  if (!description) return kNotSdp;
  auto audio = find_audio(*description);
  if (!audio) return audio.error();
  if (audio->codecs.empty()) return kNoCodec;
  RemoteMedia out;
  out.payload_type = audio->codecs.front();
  out.telephone_event = audio->telephone_event;
  out.rtp = rtp_target(*audio->media);
  return out;
}

}  // namespace pinhole::ua
