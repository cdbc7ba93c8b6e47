// StreamFramer: RFC 3261 §18.3 framing by Content-Length and RFC 5626 §3.5.1 CRLF keepalives.
#include "sip/stream_framer.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

namespace pinhole::sip {
namespace {

using Kind = StreamFramer::Kind;

constexpr std::string_view kOptions =
    "OPTIONS sip:bob@biloxi.com SIP/2.0\r\n"
    "Via: SIP/2.0/TCP pc33.atlanta.com;branch=z9hG4bK1\r\n"
    "To: <sip:bob@biloxi.com>\r\n"
    "From: <sip:alice@atlanta.com>;tag=1\r\n"
    "Call-ID: c1@atlanta.com\r\n"
    "CSeq: 1 OPTIONS\r\n"
    "Content-Length: 0\r\n"
    "\r\n";

constexpr std::string_view kMessage =
    "MESSAGE sip:bob@biloxi.com SIP/2.0\r\n"
    "Via: SIP/2.0/TCP pc33.atlanta.com;branch=z9hG4bK2\r\n"
    "To: <sip:bob@biloxi.com>\r\n"
    "From: <sip:alice@atlanta.com>;tag=1\r\n"
    "Call-ID: c2@atlanta.com\r\n"
    "CSeq: 2 MESSAGE\r\n"
    "Content-Type: text/plain\r\n"
    "Content-Length: 13\r\n"
    "\r\n"
    "Hello\r\n\r\nBob!";  // the body holds CRLF CRLF: only Content-Length can frame it

// Collects frames until kNeedMore (message bytes copied, as they die on the next append).
struct Collected {
  std::vector<Kind> kinds;
  std::vector<std::string> messages;
  Error error{};
};
Collected drain(StreamFramer& f) {
  Collected c;
  for (int guard = 0; guard < 100; ++guard) {
    auto frame = f.next();
    if (frame.kind == Kind::kNeedMore) break;
    c.kinds.push_back(frame.kind);
    if (frame.kind == Kind::kMessage) c.messages.emplace_back(frame.bytes);
    if (frame.kind == Kind::kError) {
      c.error = frame.error;
      break;
    }
  }
  return c;
}

TEST(StreamFramer, EmptyNeedsMore) {
  StreamFramer f;
  EXPECT_EQ(f.next().kind, Kind::kNeedMore);
  EXPECT_EQ(f.buffered(), 0u);
}

TEST(StreamFramer, OneMessage) {
  StreamFramer f;
  f.append(kOptions);
  EXPECT_EQ(f.buffered(), kOptions.size());
  auto frame = f.next();
  ASSERT_EQ(frame.kind, Kind::kMessage);
  EXPECT_EQ(frame.bytes, kOptions);
  EXPECT_EQ(f.buffered(), 0u);
  EXPECT_EQ(f.next().kind, Kind::kNeedMore);
  auto m = Message::parse(frame.bytes, Framing::kStream);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)->method(), Method::kOptions);
}

TEST(StreamFramer, PipelinedMessagesInOneChunk) {
  StreamFramer f;
  std::string chunk = std::string(kOptions) + std::string(kMessage) + std::string(kOptions);
  f.append(chunk);
  Collected c = drain(f);
  ASSERT_EQ(c.kinds, (std::vector<Kind>{Kind::kMessage, Kind::kMessage, Kind::kMessage}));
  EXPECT_EQ(c.messages[0], kOptions);
  EXPECT_EQ(c.messages[1], kMessage);
  EXPECT_EQ(c.messages[2], kOptions);
  EXPECT_EQ(f.buffered(), 0u);
  auto m = Message::parse(c.messages[1], Framing::kStream);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)->body(), "Hello\r\n\r\nBob!");
}

TEST(StreamFramer, MessageSplitByteByByte) {
  StreamFramer f;
  std::string both = std::string(kMessage) + std::string(kOptions);
  std::vector<std::string> got;
  std::vector<size_t> complete_at;
  for (size_t i = 0; i < both.size(); ++i) {
    f.append(both.substr(i, 1));
    for (;;) {
      auto frame = f.next();
      if (frame.kind == Kind::kNeedMore) break;
      ASSERT_EQ(frame.kind, Kind::kMessage) << "at byte " << i;
      got.emplace_back(frame.bytes);
      complete_at.push_back(i + 1);
    }
  }
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0], kMessage);
  EXPECT_EQ(got[1], kOptions);
  // Each message comes out exactly when its last byte arrives, not before.
  EXPECT_EQ(complete_at[0], kMessage.size());
  EXPECT_EQ(complete_at[1], both.size());
  EXPECT_EQ(f.buffered(), 0u);
}

TEST(StreamFramer, BodyWaitsForContentLength) {
  StreamFramer f;
  std::string_view head = kMessage.substr(0, kMessage.size() - 13);
  f.append(head);
  EXPECT_EQ(f.next().kind, Kind::kNeedMore);
  f.append("Hello\r\n\r\nBob");
  EXPECT_EQ(f.next().kind, Kind::kNeedMore);  // one octet short
  EXPECT_EQ(f.buffered(), kMessage.size() - 1);
  f.append("!");
  auto frame = f.next();
  ASSERT_EQ(frame.kind, Kind::kMessage);
  EXPECT_EQ(frame.bytes, kMessage);
}

TEST(StreamFramer, CompactContentLength) {
  std::string text(kMessage);
  text.replace(text.find("Content-Length: 13"), 18, "l:13");
  StreamFramer f;
  f.append(text + std::string(kOptions));
  Collected c = drain(f);
  ASSERT_EQ(c.messages.size(), 2u);
  EXPECT_EQ(c.messages[0], text);
  EXPECT_EQ(c.messages[1], kOptions);
}

TEST(StreamFramer, ContentLengthNameCaseAndSpacing) {
  std::string text(kMessage);
  text.replace(text.find("Content-Length: 13"), 18, "content-LENGTH \t:   13  ");
  StreamFramer f;
  f.append(text + "X");
  auto frame = f.next();
  ASSERT_EQ(frame.kind, Kind::kMessage);
  EXPECT_EQ(frame.bytes, text);
  EXPECT_EQ(f.buffered(), 1u);
}

TEST(StreamFramer, FoldedContentLength) {
  // RFC 3261 §7.3.1: any header field value may be folded onto continuation lines.
  std::string text(kMessage);
  text.replace(text.find("Content-Length: 13"), 18, "Content-Length:\r\n 13");
  StreamFramer f;
  f.append(text + std::string(kOptions));
  Collected c = drain(f);
  ASSERT_EQ(c.kinds, (std::vector<Kind>{Kind::kMessage, Kind::kMessage}));
  EXPECT_EQ(c.messages[0], text);
  EXPECT_EQ(c.messages[1], kOptions);
  auto m = Message::parse(c.messages[0], Framing::kStream);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ((*m)->body(), "Hello\r\n\r\nBob!");
}

TEST(StreamFramer, MissingContentLengthMeansNoBody) {
  // RFC 3261 §18.3: on a stream, a message without Content-Length has no body.
  std::string text(kOptions);
  text.replace(text.find("Content-Length: 0\r\n"), 19, "");
  StreamFramer f;
  f.append(text + std::string(kOptions));
  Collected c = drain(f);
  ASSERT_EQ(c.messages.size(), 2u);
  EXPECT_EQ(c.messages[0], text);
  EXPECT_EQ(c.messages[1], kOptions);
}

TEST(StreamFramer, LfOnlyHeaderEnd) {
  std::string text =
      "OPTIONS sip:bob@biloxi.com SIP/2.0\n"
      "Via: SIP/2.0/TCP pc33.atlanta.com;branch=z9hG4bK1\n"
      "l: 3\n"
      "\n"
      "abc";
  StreamFramer f;
  f.append(text + std::string(kOptions));
  Collected c = drain(f);
  ASSERT_EQ(c.messages.size(), 2u);
  EXPECT_EQ(c.messages[0], text);
}

TEST(StreamFramer, PingAndPong) {
  // RFC 5626 §3.5.1: CRLF CRLF is a ping, a single CRLF the pong.
  {
    StreamFramer f;
    f.append("\r\n\r\n");
    Collected c = drain(f);
    EXPECT_EQ(c.kinds, (std::vector<Kind>{Kind::kPing}));
    EXPECT_EQ(f.buffered(), 0u);
  }
  {
    StreamFramer f;
    f.append("\r\n");
    Collected c = drain(f);
    EXPECT_EQ(c.kinds, (std::vector<Kind>{Kind::kPong}));
  }
  {
    StreamFramer f;
    f.append("\r");
    EXPECT_EQ(f.next().kind, Kind::kNeedMore);
    EXPECT_EQ(f.buffered(), 1u);
  }
}

TEST(StreamFramer, KeepalivesBetweenMessages) {
  StreamFramer f;
  f.append(std::string(kOptions) + "\r\n\r\n" + std::string(kMessage) + "\r\n" + std::string(kOptions) + "\r\n\r\n");
  Collected c = drain(f);
  EXPECT_EQ(c.kinds,
            (std::vector<Kind>{Kind::kMessage, Kind::kPing, Kind::kMessage, Kind::kPong, Kind::kMessage, Kind::kPing}));
  ASSERT_EQ(c.messages.size(), 3u);
  EXPECT_EQ(c.messages[1], kMessage);
  EXPECT_EQ(f.buffered(), 0u);
}

TEST(StreamFramer, HeaderSectionOverLimitIs413AndStaysFailed) {
  ParseLimits limits;
  limits.max_message_size = 200;
  StreamFramer f(limits);
  std::string head = "OPTIONS sip:bob@biloxi.com SIP/2.0\r\n";
  f.append(head);
  EXPECT_EQ(f.next().kind, Kind::kNeedMore);
  while (f.buffered() <= 200) f.append("X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
  auto frame = f.next();
  ASSERT_EQ(frame.kind, Kind::kError);
  EXPECT_EQ(frame.error.status, 413);
  // The rest of the stream cannot be framed: the framer stays failed whatever arrives next.
  f.append("\r\n");
  f.append(kOptions);
  for (int i = 0; i < 3; ++i) {
    auto again = f.next();
    EXPECT_EQ(again.kind, Kind::kError);
    EXPECT_EQ(again.error.status, 413);
  }
}

TEST(StreamFramer, DeclaredBodyOverLimitIs413) {
  ParseLimits limits;  // 64 KiB
  StreamFramer f(limits);
  std::string text(kOptions);
  text.replace(text.find("Content-Length: 0"), 17, "Content-Length: 100000");
  f.append(text);
  auto frame = f.next();
  ASSERT_EQ(frame.kind, Kind::kError);
  EXPECT_EQ(frame.error.status, 413);
  EXPECT_EQ(f.next().kind, Kind::kError);
}

TEST(StreamFramer, HeaderPlusBodyOverLimitIs413) {
  ParseLimits limits;
  limits.max_message_size = static_cast<uint32_t>(kMessage.size());
  {
    StreamFramer f(limits);
    f.append(kMessage);
    auto frame = f.next();
    ASSERT_EQ(frame.kind, Kind::kMessage);  // exactly at the limit
  }
  limits.max_message_size = static_cast<uint32_t>(kMessage.size() - 1);
  {
    StreamFramer f(limits);
    f.append(kMessage.substr(0, kMessage.size() - 13));  // header section only
    auto frame = f.next();
    ASSERT_EQ(frame.kind, Kind::kError);  // refused before the body arrives
    EXPECT_EQ(frame.error.status, 413);
  }
}

TEST(StreamFramer, MalformedContentLengthIs400) {
  std::string text(kOptions);
  text.replace(text.find("Content-Length: 0"), 17, "Content-Length: -1");
  StreamFramer f;
  f.append(text);
  auto frame = f.next();
  ASSERT_EQ(frame.kind, Kind::kError);
  EXPECT_EQ(frame.error.status, 400);
  EXPECT_EQ(f.next().kind, Kind::kError);
}

TEST(StreamFramer, LongLivedStreamKeepsFraming) {
  // Many messages through one framer, in chunks that straddle message boundaries.
  StreamFramer f;
  std::string stream;
  for (int i = 0; i < 50; ++i) stream.append(i % 2 ? kMessage : kOptions);
  size_t count = 0;
  for (size_t pos = 0; pos < stream.size(); pos += 97) {
    f.append(std::string_view(stream).substr(pos, 97));
    for (;;) {
      auto frame = f.next();
      if (frame.kind == Kind::kNeedMore) break;
      ASSERT_EQ(frame.kind, Kind::kMessage);
      EXPECT_EQ(frame.bytes, count % 2 ? kMessage : kOptions) << "message " << count;
      ++count;
    }
  }
  EXPECT_EQ(count, 50u);
  EXPECT_EQ(f.buffered(), 0u);
}

}  // namespace
}  // namespace pinhole::sip
