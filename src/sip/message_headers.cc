// The lazily parsed header values of a Message: each kind is parsed on first access and cached.
#include <algorithm>

#include "sip/message.h"

namespace pinhole::sip {
namespace {

// Parses every value of every field of `kind` (comma-separated lists across several lines) among
// `headers` (Message::fields_spanning(kind): the others in between are skipped here).
template <typename T, size_t N, typename ParseOne>
Status parse_all_values(std::span<const HeaderField> headers, HeaderKind kind, size_t max_items,
                        absl::InlinedVector<T, N>& out, ParseOne&& parse_one) {
  // One value per field is the common case (a registrar's 200 OK lists each binding on its own
  // Contact line): reserving that many up front avoids regrowing and moving ~400-byte values.
  size_t fields = 0;
  for (const auto& h : headers) fields += h.kind == kind ? 1 : 0;
  if (fields > N) out.reserve(std::min(fields, max_items));
  for (const auto& h : headers) {
    if (h.kind != kind) continue;
    Scanner s(h.value);
    for (;;) {
      if (out.size() >= max_items) return Error{413, "too many header values"};
      PINHOLE_TRY(parse_one(s, out.emplace_back()));
      s.skip_lws();
      if (s.at_end()) break;
      if (!s.consume(',')) return bad_request("unexpected text after header value");
    }
  }
  return Status::Ok();
}

template <typename Cache, typename Fill>
auto cached(Cache& cache, Fill&& fill) -> Result<std::span<const typename decltype(cache.items)::value_type>> {
  using Item = typename decltype(cache.items)::value_type;
  if (cache.state == Cache::kUnparsed) {
    Status st = fill();
    if (st.ok()) {
      cache.state = Cache::kParsed;
    } else {
      cache.state = Cache::kFailed;
      cache.error = st.error();
      cache.items.clear();
    }
  }
  if (cache.state == Cache::kFailed) return cache.error;
  return std::span<const Item>(cache.items.data(), cache.items.size());
}

constexpr size_t kMaxListValues = 64;

}  // namespace

Result<std::span<const Via>> Message::vias() const {
  return cached(vias_, [&]() -> Status {
    PINHOLE_TRY(parse_all_values(fields_spanning(HeaderKind::kVia), HeaderKind::kVia, limits_.max_vias, vias_.items,
                                 [](Scanner& s, Via& v) { return detail::parse_via_fresh(s, v); }));
    if (vias_.items.empty()) return bad_request("missing Via");
    return Status::Ok();
  });
}

Result<const Via*> Message::top_via() const {
  auto v = vias();
  if (!v) return v.error();
  return &v->front();
}

Result<std::span<const Contact>> Message::contacts() const {
  return cached(contacts_, [&]() -> Status {
    PINHOLE_TRY(parse_all_values(fields_spanning(HeaderKind::kContact), HeaderKind::kContact, kMaxListValues,
                                 contacts_.items,
                                 [](Scanner& s, Contact& c) { return detail::parse_contact_fresh(s, c); }));
    // `*` stands alone (RFC 3261 §10.2.2).
    if (contacts_.items.size() > 1)
      for (const auto& c : contacts_.items)
        if (c.star) return bad_request("Contact * mixed with other contacts");
    return Status::Ok();
  });
}

Result<std::span<const NameAddr>> Message::route_list(HeaderKind kind, LazyList<NameAddr, 2>& cache) const {
  return cached(cache, [&]() -> Status {
    return parse_all_values(fields_spanning(kind), kind, kMaxListValues, cache.items, [](Scanner& s, NameAddr& na) {
      return detail::parse_name_addr_fresh(s, na, /*require_brackets=*/true);
    });
  });
}

Result<std::span<const NameAddr>> Message::routes() const { return route_list(HeaderKind::kRoute, routes_); }
Result<std::span<const NameAddr>> Message::record_routes() const {
  return route_list(HeaderKind::kRecordRoute, record_routes_);
}
Result<std::span<const NameAddr>> Message::paths() const { return route_list(HeaderKind::kPath, paths_); }

Result<const NameAddr*> Message::single_name_addr(HeaderKind kind, LazyValue<NameAddr>& cache) const {
  if (cache.state == LazyValue<NameAddr>::kUnparsed) {
    const HeaderField* h = header(kind);
    // cache.value is as constructed: it is parsed once.
    Status st =
        h ? detail::parse_single_name_addr_fresh(h->value, cache.value) : Status(bad_request("missing From/To"));
    if (st.ok()) {
      cache.state = LazyValue<NameAddr>::kParsed;
    } else {
      cache.error = st.error();
      cache.state = LazyValue<NameAddr>::kFailed;
    }
  }
  if (cache.state == LazyValue<NameAddr>::kFailed) return cache.error;
  return &cache.value;
}

Result<const NameAddr*> Message::from() const { return single_name_addr(HeaderKind::kFrom, from_); }
Result<const NameAddr*> Message::to() const { return single_name_addr(HeaderKind::kTo, to_); }

Result<std::string_view> Message::call_id() const {
  const HeaderField* h = header(HeaderKind::kCallId);
  if (h == nullptr) return bad_request("missing Call-ID");
  PINHOLE_TRY(validate_call_id(h->value));
  return h->value;
}

Result<CSeq> Message::cseq() const {
  const HeaderField* h = header(HeaderKind::kCSeq);
  if (h == nullptr) return bad_request("missing CSeq");
  return parse_cseq(h->value);
}

Result<std::optional<uint8_t>> Message::max_forwards() const {
  const HeaderField* h = header(HeaderKind::kMaxForwards);
  if (h == nullptr) return std::optional<uint8_t>{};
  auto v = parse_max_forwards(h->value);
  if (!v) return v.error();
  return std::optional<uint8_t>(*v);
}

Result<std::optional<uint32_t>> Message::expires() const {
  const HeaderField* h = header(HeaderKind::kExpires);
  if (h == nullptr) return std::optional<uint32_t>{};
  auto v = parse_delta_header(h->value);
  if (!v) return v.error();
  return std::optional<uint32_t>(*v);
}

Result<std::optional<ContentType>> Message::content_type() const {
  const HeaderField* h = header(HeaderKind::kContentType);
  if (h == nullptr) return std::optional<ContentType>{};
  auto v = parse_content_type(h->value);
  if (!v) return v.error();
  return std::optional<ContentType>(*v);
}

}  // namespace pinhole::sip
