// bencode: BEP 3 examples and edge cases, decoded and refused (table-driven), byte-exact round
// trips, sorted encoding, limits (size, depth, item count), and the incremental scanner against
// every way of cutting a stream.
#include "media/bencode.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace pinhole::media::bencode {
namespace {

using namespace std::string_literals;

// The test's own rendering of a decoded value, written independently of the encoder:
// integers in decimal, strings quoted with non-printable bytes as \xHH, [a,b], {k:v,...}.
std::string render(const Value& v) {
  switch (v.type()) {
    case Type::kInteger:
      return std::to_string(*v.as_integer());
    case Type::kString: {
      std::string out = "\"";
      std::string_view bytes = v.as_string().value_or(std::string_view());
      for (char c : bytes) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u >= 0x7f || c == '"' || c == '\\') {
          static constexpr char kHex[] = "0123456789abcdef";
          out += "\\x";
          out += kHex[u >> 4];
          out += kHex[u & 15];
        } else {
          out += c;
        }
      }
      return out + "\"";
    }
    case Type::kList: {
      std::string out = "[";
      for (Value item : v.items()) out += (out.size() > 1 ? "," : "") + render(item);
      return out + "]";
    }
    case Type::kDict: {
      std::string out = "{";
      for (const DictEntry& e : v.entries()) {
        if (out.size() > 1) out += ",";
        out += e.key;
        out += ":" + render(e.value);
      }
      return out + "}";
    }
  }
  return "?";
}

struct Valid {
  std::string input;
  std::string rendered;
};

const std::vector<Valid>& valid_vectors() {
  static const std::vector<Valid> kVectors = {
      // BEP 3's own examples.
      {"4:spam", R"("spam")"},
      {"0:", R"("")"},
      {"i3e", "3"},
      {"i-3e", "-3"},
      {"i0e", "0"},
      {"l4:spam4:eggse", R"(["spam","eggs"])"},
      {"le", "[]"},
      {"d3:cow3:moo4:spam4:eggse", R"({cow:"moo",spam:"eggs"})"},
      {"d4:spaml1:a1:bee", R"({spam:["a","b"]})"},
      {"de", "{}"},
      // Integer range ends.
      {"i9223372036854775807e", "9223372036854775807"},
      {"i-9223372036854775808e", "-9223372036854775808"},
      {"i10e", "10"},
      // Binary-safe strings: NUL, high bytes, and bytes that look like bencode syntax.
      {"5:\0\xff\n e"s, R"("\x00\xff\x0a e")"},
      {"3:i1e", R"("i1e")"},
      {"2:::", R"("::")"},
      // Nesting and mixtures.
      {"lli1eeli2eee", "[[1],[2]]"},
      {"d1:ad1:bd1:cleeee", "{a:{b:{c:[]}}}"},
      {"li-1e0:de3:abce", R"([-1,"",{},"abc"])"},
      // Unsorted keys and a repeated key are kept as given (rtpengine accepts both).
      {"d1:bi1e1:ai2ee", "{b:1,a:2}"},
      {"d1:ai1e1:ai2ee", "{a:1,a:2}"},
  };
  return kVectors;
}

TEST(BencodeDecode, ValidVectors) {
  for (const Valid& v : valid_vectors()) {
    SCOPED_TRACE(v.input);
    auto doc = decode(v.input);
    ASSERT_TRUE(doc.ok()) << doc.error().what;
    EXPECT_EQ(render(doc->root()), v.rendered);
    EXPECT_EQ(doc->root().raw(), v.input);
  }
}

TEST(BencodeDecode, StringsAreViewsIntoTheInput) {
  std::string input = "d3:key5:valuee";
  auto doc = decode(input);
  ASSERT_TRUE(doc.ok());
  auto value = doc->root().find("key");
  ASSERT_TRUE(value.has_value());
  std::string_view s = *value->as_string();
  EXPECT_EQ(s, "value");
  EXPECT_GE(s.data(), input.data());
  EXPECT_LE(s.data() + s.size(), input.data() + input.size());
}

struct Invalid {
  std::string input;
  uint16_t status;
};

TEST(BencodeDecode, InvalidVectors) {
  const std::vector<Invalid> kVectors = {
      {"", 400},
      // Integers.
      {"i", 400},
      {"ie", 400},
      {"i-e", 400},
      {"i-0e", 400},  // negative zero
      {"i00e", 400},  // leading zero
      {"i01e", 400},
      {"i-01e", 400},
      {"i+1e", 400},  // strtoll would take it; BEP 3 does not
      {"i 1e", 400},
      {"i1", 400},  // unterminated
      {"i1.5e", 400},
      {"i9223372036854775808e", 400},   // INT64_MAX + 1
      {"i-9223372036854775809e", 400},  // INT64_MIN - 1
      {"i99999999999999999999999e", 400},
      // Strings.
      {"5:spam", 400},   // longer than what remains
      {"4spam", 400},    // no colon
      {"04:spam", 400},  // leading zero in the length
      {"00:", 400},
      {"-1:a", 400},
      {":", 400},
      {"4294967296:x", 413},  // a length no input within the limit could hold
      {"99999999999999999999999999:x", 413},
      // Structure.
      {"4:spam4:eggs", 400},  // two values
      {"i1ee", 400},
      {"e", 400},
      {"x", 400},
      {"l", 400},
      {"l4:spam", 400},
      {"li1e", 400},
      {"d", 400},
      {"d3:cowe", 400},      // key without a value
      {"d3:cow3:moo", 400},  // unterminated
      {"di1ei2ee", 400},     // integer key
      {"dle3:fooe", 400},    // list key
      {"d3:fooi1e", 400},
      {"l4:spam5:eggse", 400},  // inner string runs past the end
  };
  for (const Invalid& v : kVectors) {
    SCOPED_TRACE(v.input);
    auto doc = decode(v.input);
    ASSERT_FALSE(doc.ok());
    EXPECT_EQ(doc.error().status, v.status) << doc.error().what;
    EXPECT_FALSE(doc.error().what.empty());
  }
}

TEST(BencodeDecode, DepthLimit) {
  Limits limits;  // 32
  std::string ok = std::string(32, 'l') + std::string(32, 'e');
  EXPECT_TRUE(decode(ok, limits).ok());
  std::string deep = std::string(33, 'l') + std::string(33, 'e');
  auto r = decode(deep, limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().status, 413);
  // A depth bomb far past the limit is refused early, without recursion or a crash.
  std::string bomb(60000, 'l');
  EXPECT_EQ(decode(bomb, limits).error().status, 413);
  std::string dict_bomb;
  for (int i = 0; i < 10000; ++i) dict_bomb += "d1:a";
  EXPECT_EQ(decode(dict_bomb, limits).error().status, 413);
  // Limits above the scanner's ceiling are capped, not trusted.
  Limits huge;
  huge.max_depth = 1000;
  std::string at_ceiling = std::string(kMaxDepthCeiling, 'l') + std::string(kMaxDepthCeiling, 'e');
  EXPECT_TRUE(decode(at_ceiling, huge).ok());
  std::string past_ceiling = std::string(kMaxDepthCeiling + 1, 'l') + std::string(kMaxDepthCeiling + 1, 'e');
  EXPECT_EQ(decode(past_ceiling, huge).error().status, 413);
}

TEST(BencodeDecode, SizeLimit) {
  // A string that exactly fills 64 KiB passes; one byte more does not.
  std::string payload(64 * 1024 - 6, 'x');
  std::string fits = std::to_string(payload.size()) + ":" + payload;
  ASSERT_EQ(fits.size(), 64u * 1024);
  EXPECT_TRUE(decode(fits).ok());
  payload += 'x';
  std::string over = std::to_string(payload.size()) + ":" + payload;
  EXPECT_EQ(decode(over).error().status, 413);

  Limits small;
  small.max_size = 10;
  EXPECT_EQ(decode("l3:abc2:dee", small).error().status, 413);  // 11 bytes
  EXPECT_TRUE(decode("l3:abc1:de", small).ok());                // 10 bytes
}

TEST(BencodeDecode, ItemLimit) {
  Limits limits;
  limits.max_items = 4;  // the list and three items
  EXPECT_TRUE(decode("li1ei2ei3ee", limits).ok());
  auto r = decode("li1ei2ei3ei4ee", limits);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().status, 413);
  // Keys count as values.
  EXPECT_TRUE(decode("d1:ai1ee", limits).ok());
  EXPECT_FALSE(decode("d1:ai1e1:bi2ee", limits).ok());
}

TEST(BencodeValue, AccessorsNeverAssumeTheType) {
  auto doc = decode("li7e3:abcleded1:ki1eee");
  ASSERT_TRUE(doc.ok());
  std::vector<Value> items;
  for (Value v : doc->root().items()) items.push_back(v);
  ASSERT_EQ(items.size(), 5u);
  EXPECT_EQ(doc->root().size(), 5u);
  EXPECT_EQ(items[0].as_integer(), 7);
  EXPECT_FALSE(items[0].as_string().has_value());
  EXPECT_EQ(items[1].as_string(), "abc");
  EXPECT_FALSE(items[1].as_integer().has_value());
  EXPECT_EQ(items[1].size(), 0u);
  EXPECT_TRUE(items[2].is_list());
  EXPECT_EQ(items[2].items().begin(), items[2].items().end());
  EXPECT_TRUE(items[3].is_dict());
  EXPECT_EQ(items[3].entries().begin(), items[3].entries().end());
  EXPECT_FALSE(items[3].find("k").has_value());
  EXPECT_EQ(items[4].find("k")->as_integer(), 1);
  // A list has no entries, a dictionary no items, a scalar neither.
  EXPECT_EQ(doc->root().entries().begin(), doc->root().entries().end());
  EXPECT_FALSE(doc->root().find("k").has_value());
  EXPECT_EQ(items[4].items().begin(), items[4].items().end());
  EXPECT_EQ(items[0].items().begin(), items[0].items().end());
}

TEST(BencodeValue, FindReturnsTheFirstOfRepeatedKeys) {
  auto doc = decode("d3:ICE5:force3:ICE6:removee");
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(doc->root().find("ICE")->as_string(), "force");
  EXPECT_EQ(doc->root().size(), 2u);
  EXPECT_FALSE(doc->root().find("ice").has_value());  // keys are exact bytes
}

TEST(BencodeValue, DocumentSurvivesAMove) {
  std::string input = "d1:al1:b1:cee";
  auto doc = decode(input);
  ASSERT_TRUE(doc.ok());
  Document moved = std::move(doc).value();
  EXPECT_EQ(render(moved.root()), R"({a:["b","c"]})");
  EXPECT_EQ(moved.node_count(), 5u);
}

TEST(BencodeEncode, RoundTripIsByteExact) {
  for (const Valid& v : valid_vectors()) {
    SCOPED_TRACE(v.input);
    auto doc = decode(v.input);
    ASSERT_TRUE(doc.ok());
    EXPECT_EQ(encode(doc->root()), v.input);
    // Every sub-value re-encodes to its own raw bytes as well.
    for (Value item : doc->root().items()) EXPECT_EQ(encode(item), item.raw());
    for (const DictEntry& e : doc->root().entries()) EXPECT_EQ(encode(e.value), e.value.raw());
  }
}

TEST(BencodeEncode, SortedKeys) {
  struct Case {
    std::string input;
    std::string sorted;
  };
  const std::vector<Case> kCases = {
      {"d1:bi1e1:ai2ee", "d1:ai2e1:bi1ee"},
      // Raw byte order: 'B' (0x42) < 'a' (0x61) < "aa" < 0xff.
      {"d1:\xff"
       "i1e2:aai2e1:ai3e1:Bi4ee",
       "d1:Bi4e1:ai3e2:aai2e1:\xff"
       "i1ee"},
      // Nested dictionaries sort too, and lists keep their order.
      {"d1:zd1:yi1e1:xi2ee1:ali3ei1eee", "d1:ali3ei1ee1:zd1:xi2e1:yi1eee"},
      // Repeated keys stay in their relative order.
      {"d1:bi1e1:ai2e1:bi3ee", "d1:ai2e1:bi1e1:bi3ee"},
      // A dictionary inside a list inside a dictionary.
      {"d1:qld1:ni1e1:mi2eeee", "d1:qld1:mi2e1:ni1eeee"},
  };
  for (const Case& c : kCases) {
    SCOPED_TRACE(c.input);
    auto doc = decode(c.input);
    ASSERT_TRUE(doc.ok());
    std::string sorted = encode(doc->root(), WriteOptions{true});
    EXPECT_EQ(sorted, c.sorted);
    // Already sorted: unchanged.
    auto again = decode(sorted);
    ASSERT_TRUE(again.ok());
    EXPECT_EQ(encode(again->root(), WriteOptions{true}), sorted);
  }
}

TEST(BencodeEncode, WriterBuildsValues) {
  std::string out = "prefix ";
  Writer w(out);
  w.begin_dict();
  w.entry("result", "ok");
  w.entry("n", int64_t{-12});
  w.key("list").begin_list().integer(INT64_MIN).integer(INT64_MAX).string(std::string_view("\0\1", 2)).end();
  w.key("empty").begin_dict().end();
  EXPECT_FALSE(w.closed());
  w.end();
  EXPECT_TRUE(w.closed());
  EXPECT_EQ(out, "prefix d6:result2:ok1:ni-12e4:listli-9223372036854775808ei9223372036854775807e2:"s +
                     std::string("\0\1", 2) + "e5:emptydee");
  auto doc = decode(std::string_view(out).substr(7));
  ASSERT_TRUE(doc.ok());
  EXPECT_EQ(render(doc->root()),
            R"({result:"ok",n:-12,list:[-9223372036854775808,9223372036854775807,"\x00\x01"],empty:{}})");
}

TEST(BencodeEncode, WriterSortsWhatItBuilds) {
  std::string out;
  Writer w(out, WriteOptions{true});
  w.begin_dict().entry("sdp", "v=0").entry("result", "ok").entry("call-id", "x").end();
  EXPECT_EQ(out, "d7:call-id1:x6:result2:ok3:sdp3:v=0e");
}

// ---------------------------------------------------------------------------------------------
// Scanner

// Feeds `text` as a growing buffer, `step` bytes at a time; returns the first non-kNeedMore
// result (or the last kNeedMore) and the buffer length at which it came.
std::pair<Scanner::Progress, size_t> scan_in_steps(std::string_view text, size_t step, const Limits& limits = {}) {
  Scanner scanner(limits);
  Scanner::Progress p;
  size_t have = 0;
  while (have < text.size()) {
    have = std::min(text.size(), have + step);
    p = scanner.scan(text.substr(0, have));
    if (p.status != Scanner::Status::kNeedMore) return {p, have};
  }
  return {p, have};
}

TEST(BencodeScanner, CompleteOnlyAtTheLastByte) {
  for (const Valid& v : valid_vectors()) {
    SCOPED_TRACE(v.input);
    for (size_t step = 1; step <= v.input.size(); ++step) {
      auto [p, at] = scan_in_steps(v.input, step);
      ASSERT_EQ(p.status, Scanner::Status::kComplete) << "step " << step;
      EXPECT_EQ(p.length, v.input.size());
      EXPECT_EQ(at, v.input.size());  // never earlier
    }
    // Every proper prefix needs more.
    for (size_t n = 0; n < v.input.size(); ++n) {
      Scanner s;
      EXPECT_EQ(s.scan(std::string_view(v.input).substr(0, n)).status, Scanner::Status::kNeedMore) << n;
    }
  }
}

TEST(BencodeScanner, StopsAtTheEndOfTheValue) {
  std::string stream = "d7:command4:pinge42 d7:command4:pinge";
  Scanner s;
  auto p = s.scan(stream);
  ASSERT_EQ(p.status, Scanner::Status::kComplete);
  EXPECT_EQ(p.length, std::string_view("d7:command4:pinge").size());
  // Once complete it says so again without rescanning; reset() starts a new value.
  EXPECT_EQ(s.scan(stream).length, p.length);
  s.reset();
  EXPECT_EQ(s.scan("i5e").status, Scanner::Status::kComplete);
}

TEST(BencodeScanner, RefusesWhatDecodeRefuses) {
  // Malformed inputs are refused by the scanner as soon as the bad byte arrives; truncated ones
  // just need more.
  for (std::string bad :
       {"i-0e", "i01e", "04:spam", "di1ei2ee", "e", "x", "i1.5e", "d3:cowe", "i9223372036854775808e"}) {
    SCOPED_TRACE(bad);
    for (size_t step : {size_t{1}, size_t{3}, bad.size()}) {
      auto [p, at] = scan_in_steps(bad, step);
      EXPECT_EQ(p.status, Scanner::Status::kError) << "step " << step;
      EXPECT_EQ(p.error.status, 400);
    }
    EXPECT_FALSE(decode(bad).ok());
  }
  Scanner s;
  EXPECT_EQ(s.scan("5:spam").status, Scanner::Status::kNeedMore);
  // After an error it stays failed.
  Scanner f;
  EXPECT_EQ(f.scan("x").status, Scanner::Status::kError);
  EXPECT_EQ(f.scan("xi1e").status, Scanner::Status::kError);
}

TEST(BencodeScanner, LimitsApplyWhileStreaming) {
  Limits limits;
  limits.max_size = 100;
  // A string whose declared length passes the limit fails at its colon, before its bytes arrive.
  Scanner s(limits);
  auto p = s.scan("200:");
  ASSERT_EQ(p.status, Scanner::Status::kError);
  EXPECT_EQ(p.error.status, 413);
  // An endless list of small items fails once it passes the size limit.
  std::string endless = "l";
  for (int i = 0; i < 100; ++i) endless += "i1e";
  auto [q, at] = scan_in_steps(endless, 7, limits);
  ASSERT_EQ(q.status, Scanner::Status::kError);
  EXPECT_EQ(q.error.status, 413);
  EXPECT_LE(at, 107u);
  // Depth.
  auto [d, at2] = scan_in_steps(std::string(40, 'l'), 1);
  ASSERT_EQ(d.status, Scanner::Status::kError);
  EXPECT_EQ(d.error.status, 413);
  EXPECT_EQ(at2, 33u);
}

}  // namespace
}  // namespace pinhole::media::bencode
