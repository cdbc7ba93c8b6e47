// record_codec: byte-exact round trips of bindings and string lists, and refusal of anything
// truncated, corrupt or of another version (the stored bytes are not trusted).
#include "store/record_codec.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

// Its PrintTo for BindingRecord: every test TU that compares records must see the same printer.
#include "store_test_support.h"

namespace pinhole::store {
namespace {

using namespace std::string_literals;

BindingRecord awkward_binding() {
  BindingRecord b;
  b.aor = "sip:alice@example.com";
  b.binding_id = "<urn:uuid:00000000-0000-1000-8000-000a95a0e128>;reg-id=1";
  // Separators of the format itself, digits, a NUL and bytes that are not UTF-8.
  b.contact = "<sip:alice@10.0.0.1:5060;transport=tcp>;expires=3600;q=0.5;x=\"1;2:3\""s;
  b.instance = "12:34;\0\xff"s;
  b.reg_id = std::numeric_limits<uint32_t>::max();
  b.call_id = "3:abc"s;
  b.cseq = 4'000'000'000U;
  b.q_milli = -1;
  b.expires_at = std::numeric_limits<int64_t>::min();
  b.registered_at = std::numeric_limits<int64_t>::max();
  b.flow.transport = net::Transport::kWss;
  b.flow.local_socket_id = 7;
  b.flow.remote = {*net::Address::parse("::ffff:192.0.2.1"), 65535};
  b.flow.connection_id = std::numeric_limits<uint64_t>::max();
  b.path = {"<sip:edge1.example.com;lr>", "", "1:x", "<sip:\xc3\x28;lr>"s};
  b.user_agent = "\xff\xfe UA/1.0\n"s;
  b.nat = "via_received,contact_private";
  b.node = "node-a";
  return b;
}

TEST(RecordCodec, BindingRoundTripsEveryByte) {
  BindingRecord b = awkward_binding();
  std::string value = encode_binding_value(b);
  auto back = decode_binding_value(b.aor, b.binding_id, value);
  ASSERT_TRUE(back.ok()) << back.error().what;
  EXPECT_EQ(*back, b);
}

TEST(RecordCodec, DefaultBindingRoundTrips) {
  BindingRecord b;
  auto back = decode_binding_value("", "", encode_binding_value(b));
  ASSERT_TRUE(back.ok()) << back.error().what;
  EXPECT_EQ(*back, b);
}

TEST(RecordCodec, AorAndBindingIdComeFromTheCaller) {
  BindingRecord b = awkward_binding();
  auto back = decode_binding_value("sip:other@example.com", "other-id", encode_binding_value(b));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->aor, "sip:other@example.com");
  EXPECT_EQ(back->binding_id, "other-id");
}

// The Redis scripts read expires_at as the first field: "1;<len>:<digits>".
TEST(RecordCodec, ExpiresAtLeadsTheValue) {
  BindingRecord b;
  b.expires_at = -5;
  EXPECT_TRUE(encode_binding_value(b).starts_with("1;2:-5"));
  b.expires_at = 1'700'000'123;
  EXPECT_TRUE(encode_binding_value(b).starts_with("1;10:1700000123"));
}

TEST(RecordCodec, EveryTruncationIsRefused) {
  std::string value = encode_binding_value(awkward_binding());
  for (size_t n = 0; n < value.size(); ++n) {
    auto r = decode_binding_value("a", "b", value.substr(0, n));
    EXPECT_FALSE(r.ok()) << "prefix of " << n << " bytes decoded";
    if (!r.ok()) {
      EXPECT_EQ(r.error().status, 500);
    }
  }
}

TEST(RecordCodec, TrailingFieldsOfALaterWriterAreIgnored) {
  BindingRecord b = awkward_binding();
  auto back = decode_binding_value(b.aor, b.binding_id, encode_binding_value(b) + "3:new");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, b);
}

TEST(RecordCodec, OtherVersionsAndGarbageAreRefused) {
  std::string v1 = encode_binding_value(awkward_binding());
  auto v2 = decode_binding_value("a", "b", "2;" + v1.substr(2));
  ASSERT_FALSE(v2.ok());
  EXPECT_EQ(v2.error().what, "stored binding of an unknown format version");
  for (const std::string& bad : {""s, "{\"v\":1}"s, "1"s, "1;"s, ";1:x"s, "x1;"s}) {
    auto r = decode_binding_value("a", "b", bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().what, "corrupt stored binding") << bad;
  }
}

// Replaces the field at `index` (0-based, after "1;") of an encoded value.
std::string replace_field(const std::string& value, size_t index, const std::string& text) {
  size_t pos = 2;
  for (size_t i = 0;; ++i) {
    size_t colon = value.find(':', pos);
    size_t len = std::stoul(value.substr(pos, colon - pos));
    if (i == index)
      return value.substr(0, pos) + std::to_string(text.size()) + ":" + text + value.substr(colon + 1 + len);
    pos = colon + 1 + len;
  }
}

TEST(RecordCodec, FieldsOutOfRangeAreRefused) {
  std::string v = encode_binding_value(awkward_binding());
  ASSERT_TRUE(decode_binding_value("a", "b", replace_field(v, 4, "4294967295")).ok());
  EXPECT_FALSE(decode_binding_value("a", "b", replace_field(v, 4, "4294967296")).ok());  // reg_id
  EXPECT_FALSE(decode_binding_value("a", "b", replace_field(v, 4, "-1")).ok());
  EXPECT_FALSE(decode_binding_value("a", "b", replace_field(v, 4, "")).ok());
  EXPECT_FALSE(decode_binding_value("a", "b", replace_field(v, 4, "+1")).ok());
  EXPECT_FALSE(decode_binding_value("a", "b", replace_field(v, 8, "sctp")).ok());        // transport
  EXPECT_FALSE(decode_binding_value("a", "b", replace_field(v, 10, "300.1.1.1")).ok());  // address
  EXPECT_FALSE(decode_binding_value("a", "b", replace_field(v, 11, "65536")).ok());      // port
  EXPECT_FALSE(decode_binding_value("a", "b", replace_field(v, 16, "4097")).ok());       // path count
  EXPECT_FALSE(decode_binding_value("a", "b", replace_field(v, 16, "9")).ok());          // more than stored
  // A length that runs past the end.
  EXPECT_FALSE(decode_binding_value("a", "b", "1;99999999999:1").ok());
}

TEST(RecordCodec, StringListsRoundTrip) {
  for (const std::vector<std::string>& list : std::vector<std::vector<std::string>>{
           {}, {""}, {"", ""}, {"<sip:a;lr>", "<sip:b;lr>", "<sip:c;lr>"}, {"1:2", "\0:"s, "\xff"s}}) {
    std::string text = encode_string_list(list);
    auto back = decode_string_list(text);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, list);
  }
  EXPECT_EQ(encode_string_list({}), "");
  EXPECT_EQ(encode_string_list({"ab", ""}), "2:ab0:");
}

TEST(RecordCodec, CorruptStringListsAreRefused) {
  for (const std::string& bad : {"2:a"s, "x"s, ":"s, "1"s, "1:a2"s, "-1:"s}) {
    auto r = decode_string_list(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().status, 500);
  }
}

}  // namespace
}  // namespace pinhole::store
