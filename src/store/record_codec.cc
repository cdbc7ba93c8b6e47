// Length-prefixed record encoding (see record_codec.h).
#include "store/record_codec.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "net/address.h"
#include "net/transport.h"

namespace pinhole::store {
namespace {

constexpr std::string_view kVersion1 = "1;";
// Path values per binding: RFC 3327 puts no bound on it, but a stored count past this is corruption
// (and must not make the decoder reserve gigabytes).
constexpr uint64_t kMaxPathEntries = 4096;

constexpr Error kCorrupt{500, "corrupt stored binding"};
constexpr Error kUnknownVersion{500, "stored binding of an unknown format version"};
constexpr Error kCorruptList{500, "corrupt stored string list"};
constexpr Error kCorruptKeepalive{500, "corrupt stored keepalive endpoint"};
constexpr Error kUnknownKeepaliveVersion{500, "stored keepalive endpoint of an unknown format version"};
// Reasons per endpoint: a registration or two, a few subscriptions and dialogs. A stored count past
// this is corruption.
constexpr uint64_t kMaxKeepaliveReasons = 4096;

void put_field(std::string& out, std::string_view bytes) {
  out += std::to_string(bytes.size());
  out += ':';
  out += bytes;
}

template <typename T>
void put_int(std::string& out, T v) {
  put_field(out, std::to_string(v));
}

// Reads fields off the front of a buffer; every failure leaves ok() false for good.
class FieldReader {
 public:
  explicit FieldReader(std::string_view in) : in_(in) {}

  bool ok() const { return ok_; }
  bool at_end() const { return in_.empty(); }

  std::string_view field() {
    if (!ok_) return {};
    size_t colon = in_.find(':');
    // A length of more than 10 digits cannot fit any buffer we wrote.
    if (colon == std::string_view::npos || colon == 0 || colon > 10) return fail();
    uint64_t len = 0;
    auto [end, ec] = std::from_chars(in_.data(), in_.data() + colon, len);
    if (ec != std::errc() || end != in_.data() + colon) return fail();
    std::string_view rest = in_.substr(colon + 1);
    if (len > rest.size()) return fail();
    std::string_view out = rest.substr(0, len);
    in_ = rest.substr(len);
    return out;
  }

  template <typename T>
  T integer() {
    std::string_view text = field();
    if (!ok_) return T{};
    T v{};
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size()) {
      fail();
      return T{};
    }
    return v;
  }

 private:
  std::string_view fail() {
    ok_ = false;
    return {};
  }
  std::string_view in_;
  bool ok_ = true;
};

// A value that does not start with `version`: "<digits>;" is a version we do not know.
bool other_version(std::string_view value) {
  size_t semi = value.find(';');
  return semi != std::string_view::npos && semi > 0 &&
         value.substr(0, semi).find_first_not_of("0123456789") == std::string_view::npos;
}

}  // namespace

std::string encode_binding_value(const BindingRecord& b) {
  std::string out;
  out.reserve(128 + b.contact.size() + b.call_id.size() + b.user_agent.size());
  out += kVersion1;
  put_int(out, b.expires_at);
  put_int(out, b.registered_at);
  put_field(out, b.contact);
  put_field(out, b.instance);
  put_int(out, b.reg_id);
  put_field(out, b.call_id);
  put_int(out, b.cseq);
  put_int(out, b.q_milli);
  put_field(out, net::transport_name(b.flow.transport));
  put_int(out, b.flow.local_socket_id);
  put_field(out, b.flow.remote.address.format().view());
  put_int(out, b.flow.remote.port);
  put_int(out, b.flow.connection_id);
  put_field(out, b.user_agent);
  put_field(out, b.nat);
  put_field(out, b.node);
  put_int(out, b.path.size());
  for (const std::string& p : b.path) put_field(out, p);
  return out;
}

Result<BindingRecord> decode_binding_value(std::string_view aor, std::string_view binding_id, std::string_view value) {
  if (!value.starts_with(kVersion1)) {
    // "<digits>;" is a version we do not know; anything else is not ours at all.
    return other_version(value) ? kUnknownVersion : kCorrupt;
  }
  FieldReader r(value.substr(kVersion1.size()));
  BindingRecord b;
  b.aor = std::string(aor);
  b.binding_id = std::string(binding_id);
  b.expires_at = r.integer<int64_t>();
  b.registered_at = r.integer<int64_t>();
  b.contact = std::string(r.field());
  b.instance = std::string(r.field());
  b.reg_id = r.integer<uint32_t>();
  b.call_id = std::string(r.field());
  b.cseq = r.integer<uint32_t>();
  b.q_milli = r.integer<int32_t>();
  std::optional<net::Transport> transport = net::parse_transport(r.field());
  b.flow.local_socket_id = r.integer<uint32_t>();
  std::string_view address_text = r.field();
  b.flow.remote.port = r.integer<uint16_t>();
  b.flow.connection_id = r.integer<uint64_t>();
  b.user_agent = std::string(r.field());
  b.nat = std::string(r.field());
  b.node = std::string(r.field());
  auto path_count = r.integer<uint64_t>();
  if (!r.ok() || !transport || path_count > kMaxPathEntries) return kCorrupt;
  b.flow.transport = *transport;
  auto address = net::Address::parse(address_text);
  if (!address) return kCorrupt;
  b.flow.remote.address = *address;
  b.path.reserve(path_count);
  for (uint64_t i = 0; i < path_count; ++i) b.path.emplace_back(r.field());
  if (!r.ok()) return kCorrupt;
  return b;
}

std::string encode_keepalive_value(const KeepaliveRecord& k) {
  std::string out;
  out.reserve(64 + 40 * k.reasons.size());
  out += kVersion1;
  put_int(out, k.interval_s);
  put_field(out, net::transport_name(k.flow.transport));
  put_int(out, k.flow.local_socket_id);
  put_field(out, k.flow.remote.address.format().view());
  put_int(out, k.flow.remote.port);
  put_int(out, k.flow.connection_id);
  put_int(out, k.reasons.size());
  for (const KeepaliveReasonRecord& r : k.reasons) {
    put_int(out, static_cast<unsigned>(r.kind));
    put_int(out, r.key_hash);
    put_int(out, r.expires_at);
  }
  return out;
}

Result<KeepaliveRecord> decode_keepalive_value(std::string_view node, std::string_view value) {
  if (!value.starts_with(kVersion1)) return other_version(value) ? kUnknownKeepaliveVersion : kCorruptKeepalive;
  FieldReader r(value.substr(kVersion1.size()));
  KeepaliveRecord k;
  k.node = std::string(node);
  k.interval_s = r.integer<uint32_t>();
  std::optional<net::Transport> transport = net::parse_transport(r.field());
  k.flow.local_socket_id = r.integer<uint32_t>();
  std::string_view address_text = r.field();
  k.flow.remote.port = r.integer<uint16_t>();
  k.flow.connection_id = r.integer<uint64_t>();
  auto count = r.integer<uint64_t>();
  if (!r.ok() || !transport || count > kMaxKeepaliveReasons) return kCorruptKeepalive;
  k.flow.transport = *transport;
  auto address = net::Address::parse(address_text);
  if (!address) return kCorruptKeepalive;
  k.flow.remote.address = *address;
  k.reasons.reserve(count);
  for (uint64_t i = 0; i < count; ++i) {
    KeepaliveReasonRecord reason;
    reason.kind = r.integer<uint8_t>();
    reason.key_hash = r.integer<uint64_t>();
    reason.expires_at = r.integer<int64_t>();
    if (!r.ok()) return kCorruptKeepalive;
    k.reasons.push_back(reason);
  }
  return k;
}

std::string keepalive_flow_key(const net::Flow& flow) {
  std::string key(net::transport_name(flow.transport));
  key += '/';
  key += std::to_string(flow.local_socket_id);
  key += '/';
  key += flow.remote.format().view();
  key += '/';
  key += std::to_string(flow.connection_id);
  return key;
}

int64_t keepalive_latest_expiry(const KeepaliveRecord& k) {
  int64_t latest = 0;
  for (const KeepaliveReasonRecord& r : k.reasons) latest = std::max(latest, r.expires_at);
  return latest;
}

std::string encode_string_list(const std::vector<std::string>& list) {
  std::string out;
  for (const std::string& s : list) put_field(out, s);
  return out;
}

Result<std::vector<std::string>> decode_string_list(std::string_view text) {
  std::vector<std::string> out;
  FieldReader r(text);
  while (!r.at_end()) {
    std::string_view f = r.field();
    if (!r.ok()) return kCorruptList;
    out.emplace_back(f);
  }
  return out;
}

}  // namespace pinhole::store
