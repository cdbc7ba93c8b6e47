// DNS response parsing (RFC 1035 §4, RFC 2782 SRV, RFC 3403 NAPTR) and RFC 2782 SRV ordering.
#include "net/dns_message.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <utility>

namespace pinhole::net {
namespace {

constexpr Error kMalformed{503, "malformed DNS response"};
constexpr size_t kHeaderSize = 12;
constexpr size_t kMaxNameLength = 255;
constexpr int kMaxPointerJumps = 64;
constexpr int kMaxCnameHops = 8;
constexpr uint16_t kClassIn = 1;

class Reader {
 public:
  explicit Reader(std::span<const uint8_t> message) : message_(message) {}

  size_t offset() const { return offset_; }
  bool read_u16(uint16_t& out) {
    if (message_.size() - offset_ < 2) return false;
    out = static_cast<uint16_t>((message_[offset_] << 8) | message_[offset_ + 1]);
    offset_ += 2;
    return true;
  }
  bool read_u32(uint32_t& out) {
    uint16_t high = 0;
    uint16_t low = 0;
    if (!read_u16(high) || !read_u16(low)) return false;
    out = (static_cast<uint32_t>(high) << 16) | low;
    return true;
  }
  bool skip(size_t n) {
    if (message_.size() - offset_ < n) return false;
    offset_ += n;
    return true;
  }
  bool read_bytes(std::span<uint8_t> out) {
    if (message_.size() - offset_ < out.size()) return false;
    std::copy_n(message_.begin() + static_cast<std::ptrdiff_t>(offset_), out.size(), out.begin());
    offset_ += out.size();
    return true;
  }
  // <character-string>: a length byte and that many bytes.
  bool read_character_string(std::string& out) {
    if (offset_ >= message_.size()) return false;
    size_t n = message_[offset_];
    if (message_.size() - offset_ - 1 < n) return false;
    out.assign(reinterpret_cast<const char*>(message_.data() + offset_ + 1), n);
    offset_ += 1 + n;
    return true;
  }
  // A domain name, possibly compressed (RFC 1035 §4.1.4). Pointers must point strictly before
  // the pointer itself, which with the jump limit rules out loops.
  bool read_name(std::string& out) {
    out.clear();
    size_t pos = offset_;
    size_t wire_length = 0;  // bytes the name takes at offset_ (up to the first pointer)
    bool jumped = false;
    int jumps = 0;
    size_t total = 0;
    for (;;) {
      if (pos >= message_.size()) return false;
      uint8_t length = message_[pos];
      if ((length & 0xc0) == 0xc0) {
        if (message_.size() - pos < 2) return false;
        size_t target = (static_cast<size_t>(length & 0x3f) << 8) | message_[pos + 1];
        if (target >= pos || ++jumps > kMaxPointerJumps) return false;
        if (!jumped) wire_length = pos + 2 - offset_;
        jumped = true;
        pos = target;
        continue;
      }
      if ((length & 0xc0) != 0) return false;  // 01 and 10 label types are not in use
      if (length == 0) {
        if (!jumped) wire_length = pos + 1 - offset_;
        break;
      }
      if (message_.size() - pos - 1 < length) return false;
      total += length + 1u;
      if (total > kMaxNameLength) return false;
      if (!out.empty()) out.push_back('.');
      for (size_t i = 0; i < length; ++i) {
        char c = static_cast<char>(message_[pos + 1 + i]);
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        out.push_back(c);
      }
      pos += 1u + length;
    }
    offset_ += wire_length;
    return true;
  }

 private:
  std::span<const uint8_t> message_;
  size_t offset_ = 0;
};

// Reads the RDATA of a record whose type is one we keep. False when it is malformed or does not
// fill exactly `rdlength` bytes.
bool read_rdata(Reader& reader, uint16_t rdlength, DnsRecord& record) {
  size_t end = reader.offset() + rdlength;
  switch (record.type) {
    case DnsType::kA: {
      std::array<uint8_t, 4> bytes{};
      if (rdlength != 4 || !reader.read_bytes(bytes)) return false;
      record.address = Address::v4(bytes);
      break;
    }
    case DnsType::kAaaa: {
      std::array<uint8_t, 16> bytes{};
      if (rdlength != 16 || !reader.read_bytes(bytes)) return false;
      record.address = Address::v6(bytes);
      break;
    }
    case DnsType::kCname:
      if (!reader.read_name(record.target)) return false;
      break;
    case DnsType::kSrv:
      if (!reader.read_u16(record.priority) || !reader.read_u16(record.weight) || !reader.read_u16(record.port) ||
          !reader.read_name(record.target))
        return false;
      break;
    case DnsType::kNaptr:
      if (!reader.read_u16(record.order) || !reader.read_u16(record.preference) ||
          !reader.read_character_string(record.flags) || !reader.read_character_string(record.service) ||
          !reader.read_character_string(record.regexp) || !reader.read_name(record.target))
        return false;
      break;
  }
  return reader.offset() == end;
}

bool is_kept_type(uint16_t type) {
  switch (static_cast<DnsType>(type)) {
    case DnsType::kA:
    case DnsType::kCname:
    case DnsType::kAaaa:
    case DnsType::kSrv:
    case DnsType::kNaptr:
      return true;
  }
  return false;
}

}  // namespace

Result<DnsResponse> parse_dns_response(std::span<const uint8_t> message) {
  Reader reader(message);
  uint16_t id = 0;
  uint16_t flags = 0;
  uint16_t qdcount = 0;
  uint16_t ancount = 0;
  if (message.size() < kHeaderSize || !reader.read_u16(id) || !reader.read_u16(flags) || !reader.read_u16(qdcount) ||
      !reader.read_u16(ancount) || !reader.skip(4))
    return kMalformed;
  if ((flags & 0x8000) == 0) return kMalformed;  // QR: not a response
  DnsResponse response;
  response.rcode = flags & 0x000f;

  std::string name;
  for (uint16_t i = 0; i < qdcount; ++i)
    if (!reader.read_name(name) || !reader.skip(4)) return kMalformed;

  for (uint16_t i = 0; i < ancount; ++i) {
    DnsRecord record;
    uint16_t type = 0;
    uint16_t rr_class = 0;
    uint16_t rdlength = 0;
    if (!reader.read_name(record.name) || !reader.read_u16(type) || !reader.read_u16(rr_class) ||
        !reader.read_u32(record.ttl) || !reader.read_u16(rdlength))
      return kMalformed;
    // RFC 2181 §8: a TTL with the top bit set is read as zero.
    if ((record.ttl & 0x80000000u) != 0) record.ttl = 0;
    if (rr_class != kClassIn || !is_kept_type(type)) {
      if (!reader.skip(rdlength)) return kMalformed;
      continue;
    }
    record.type = static_cast<DnsType>(type);
    if (!read_rdata(reader, rdlength, record)) return kMalformed;
    response.answers.push_back(std::move(record));
  }
  return response;
}

std::vector<const DnsRecord*> answers_for(const DnsResponse& response, std::string name, DnsType type,
                                          uint32_t& min_ttl) {
  std::transform(name.begin(), name.end(), name.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
  if (!name.empty() && name.back() == '.') name.pop_back();
  std::vector<const DnsRecord*> found;
  for (int hop = 0; hop <= kMaxCnameHops; ++hop) {
    const DnsRecord* cname = nullptr;
    for (const DnsRecord& r : response.answers) {
      if (r.name != name) continue;
      if (r.type == type) {
        found.push_back(&r);
        min_ttl = std::min(min_ttl, r.ttl);
      } else if (r.type == DnsType::kCname && cname == nullptr) {
        cname = &r;
      }
    }
    if (!found.empty() || cname == nullptr) break;
    min_ttl = std::min(min_ttl, cname->ttl);
    name = cname->target;
  }
  return found;
}

void order_srv(std::vector<DnsRecord>& records, std::mt19937& random) {
  std::stable_sort(records.begin(), records.end(),
                   [](const DnsRecord& a, const DnsRecord& b) { return a.priority < b.priority; });
  for (auto group = records.begin(); group != records.end();) {
    auto group_end =
        std::find_if(group, records.end(), [&](const DnsRecord& r) { return r.priority != group->priority; });
    // Weight-0 records first (RFC 2782), then draw one record at a time into place.
    std::stable_partition(group, group_end, [](const DnsRecord& r) { return r.weight == 0; });
    for (auto next = group; next != group_end; ++next) {
      uint32_t sum = 0;
      for (auto it = next; it != group_end; ++it) sum += it->weight;
      uint32_t pick = std::uniform_int_distribution<uint32_t>(0, sum)(random);
      uint32_t running = 0;
      auto chosen = next;
      for (auto it = next; it != group_end; ++it) {
        running += it->weight;
        if (running >= pick) {
          chosen = it;
          break;
        }
      }
      // Keep the others in their order so weight-0 records stay in front of the rest.
      std::rotate(next, chosen, chosen + 1);
    }
    group = group_end;
  }
}

}  // namespace pinhole::net
