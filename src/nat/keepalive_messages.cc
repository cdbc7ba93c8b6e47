// Keepalive wire formats and the stateless token match.
#include "nat/keepalive_messages.h"

#include <bit>
#include <charconv>

namespace pinhole::nat {

namespace {

constexpr std::string_view kHex = "0123456789abcdef";
constexpr std::string_view kBranchPrefix = "z9hG4bK";

void sip_round(uint64_t& v0, uint64_t& v1, uint64_t& v2, uint64_t& v3) {
  v0 += v1;
  v1 = std::rotl(v1, 13);
  v1 ^= v0;
  v0 = std::rotl(v0, 32);
  v2 += v3;
  v3 = std::rotl(v3, 16);
  v3 ^= v2;
  v0 += v3;
  v3 = std::rotl(v3, 21);
  v3 ^= v0;
  v2 += v1;
  v1 = std::rotl(v1, 17);
  v1 ^= v2;
  v2 = std::rotl(v2, 32);
}

bool has_crlf(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

void append_hex(std::string& out, uint64_t v, int digits) {
  for (int i = digits - 1; i >= 0; --i) out.push_back(kHex[(v >> (4 * i)) & 0xF]);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

uint64_t siphash24(const std::array<uint64_t, 2>& key, std::string_view data) {
  uint64_t v0 = key[0] ^ 0x736f6d6570736575ULL;
  uint64_t v1 = key[1] ^ 0x646f72616e646f6dULL;
  uint64_t v2 = key[0] ^ 0x6c7967656e657261ULL;
  uint64_t v3 = key[1] ^ 0x7465646279746573ULL;
  size_t full = data.size() / 8 * 8;
  for (size_t i = 0; i < full; i += 8) {
    uint64_t m = 0;
    for (size_t b = 0; b < 8; ++b) m |= static_cast<uint64_t>(static_cast<uint8_t>(data[i + b])) << (8 * b);
    v3 ^= m;
    sip_round(v0, v1, v2, v3);
    sip_round(v0, v1, v2, v3);
    v0 ^= m;
  }
  uint64_t last = static_cast<uint64_t>(data.size() & 0xff) << 56;
  for (size_t b = 0; full + b < data.size(); ++b) {
    last |= static_cast<uint64_t>(static_cast<uint8_t>(data[full + b])) << (8 * b);
  }
  v3 ^= last;
  sip_round(v0, v1, v2, v3);
  sip_round(v0, v1, v2, v3);
  v0 ^= last;
  v2 ^= 0xff;
  for (int r = 0; r < 4; ++r) sip_round(v0, v1, v2, v3);
  return v0 ^ v1 ^ v2 ^ v3;
}

uint64_t KeepaliveSigner::tag(uint32_t index, uint32_t generation) const {
  std::array<char, 8> b{};
  for (size_t i = 0; i < 4; ++i) {
    b[i] = static_cast<char>(index >> (8 * i));
    b[4 + i] = static_cast<char>(generation >> (8 * i));
  }
  return siphash24(key_, std::string_view(b.data(), b.size()));
}

void append_token_hex(std::string& out, const KeepaliveToken& t) {
  append_hex(out, t.index, 8);
  append_hex(out, t.tag, 16);
}

std::optional<KeepaliveToken> parse_token_hex(std::string_view hex) {
  if (hex.size() != kTokenHexSize) return std::nullopt;
  uint64_t index = 0;
  uint64_t tag = 0;
  for (size_t i = 0; i < kTokenHexSize; ++i) {
    int v = hex_value(hex[i]);
    if (v < 0) return std::nullopt;
    if (i < 8) {
      index = (index << 4) | static_cast<uint64_t>(v);
    } else {
      tag = (tag << 4) | static_cast<uint64_t>(v);
    }
  }
  return KeepaliveToken{static_cast<uint32_t>(index), tag};
}

SipKeepaliveBuilder::SipKeepaliveBuilder(bool notify, std::string_view from_uri, std::string_view from_tag,
                                         const std::vector<std::string>& extra_headers)
    : notify_(notify) {
  middle_ = "Max-Forwards: 70\r\nFrom: <";
  middle_ += has_crlf(from_uri) ? std::string_view("sip:keepalive@pinhole.invalid") : from_uri;
  middle_ += ">;tag=";
  middle_ += from_tag;
  middle_ += "\r\nTo: <sip:";
  if (notify_) tail_ = "Event: keep-alive\r\n";
  for (const auto& h : extra_headers) {
    if (has_crlf(h) || h.find(':') == std::string::npos) continue;
    tail_ += h;
    tail_ += "\r\n";
  }
  tail_ += "Content-Length: 0\r\n\r\n";
}

void SipKeepaliveBuilder::build(std::string& out, const net::Endpoint& remote, std::string_view sent_by,
                                const KeepaliveToken& token, uint32_t cseq) const {
  std::string_view method = notify_ ? "NOTIFY" : "OPTIONS";
  net::EndpointText target = remote.format();
  std::array<char, 10> cseq_text{};
  auto [end, ec] = std::to_chars(cseq_text.data(), cseq_text.data() + cseq_text.size(), cseq);
  (void)ec;  // 10 digits always fit a uint32_t
  std::string_view cseq_view(cseq_text.data(), static_cast<size_t>(end - cseq_text.data()));
  out.reserve(out.size() + 2 * target.view().size() + sent_by.size() + middle_.size() + tail_.size() +
              2 * kTokenHexSize + 120);
  out += method;
  out += " sip:";
  out += target.view();
  out += " SIP/2.0\r\nVia: SIP/2.0/UDP ";
  out += sent_by;
  out += ";branch=";
  out += kBranchPrefix;
  out += kTokenPrefix;
  append_token_hex(out, token);
  out += ";rport\r\n";
  out += middle_;
  out += target.view();
  out += ">\r\nCall-ID: ";
  out += kTokenPrefix;
  append_token_hex(out, token);
  out += "\r\nCSeq: ";
  out += cseq_view;
  out += ' ';
  out += method;
  out += "\r\n";
  out += tail_;
}

std::optional<KeepaliveToken> sip_response_token(const sip::Message& response) {
  if (!response.is_response()) return std::nullopt;
  auto via = response.top_via();
  if (!via) return std::nullopt;
  std::string_view branch = (*via)->branch;
  if (!branch.starts_with(kBranchPrefix)) return std::nullopt;
  branch.remove_prefix(kBranchPrefix.size());
  if (!branch.starts_with(kTokenPrefix)) return std::nullopt;
  branch.remove_prefix(kTokenPrefix.size());
  auto token = parse_token_hex(branch);
  if (!token) return std::nullopt;
  auto call_id = response.call_id();
  if (!call_id) return std::nullopt;
  std::string_view cid = *call_id;
  if (!cid.starts_with(kTokenPrefix)) return std::nullopt;
  auto cid_token = parse_token_hex(cid.substr(kTokenPrefix.size()));
  if (!cid_token || !(*cid_token == *token)) return std::nullopt;
  auto cseq = response.cseq();
  if (!cseq) return std::nullopt;
  if (cseq->method != sip::Method::kOptions && cseq->method != sip::Method::kNotify) return std::nullopt;
  return token;
}

StunTransactionId stun_transaction_id(const KeepaliveToken& token) {
  StunTransactionId id{};
  for (size_t i = 0; i < 4; ++i) id[i] = static_cast<uint8_t>(token.index >> (24 - 8 * i));
  for (size_t i = 0; i < 8; ++i) id[4 + i] = static_cast<uint8_t>(token.tag >> (56 - 8 * i));
  return id;
}

KeepaliveToken token_from_stun_id(const StunTransactionId& id) {
  KeepaliveToken t;
  for (size_t i = 0; i < 4; ++i) t.index = (t.index << 8) | id[i];
  for (size_t i = 0; i < 8; ++i) t.tag = (t.tag << 8) | id[4 + i];
  return t;
}

void append_stun_keepalive(std::string& out, const KeepaliveToken& token, bool fingerprint) {
  append_binding_request(out, stun_transaction_id(token), fingerprint);
}

}  // namespace pinhole::nat
