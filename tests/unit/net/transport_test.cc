// Transport names, parsing and default ports (RFC 3261 §18.2.1, §19.1.2; RFC 7118).
#include "net/transport.h"

#include <gtest/gtest.h>

#include <string_view>

namespace pinhole::net {
namespace {

TEST(Transport, Names) {
  EXPECT_EQ(transport_name(Transport::kUdp), "udp");
  EXPECT_EQ(transport_name(Transport::kTcp), "tcp");
  EXPECT_EQ(transport_name(Transport::kTls), "tls");
  EXPECT_EQ(transport_name(Transport::kWs), "ws");
  EXPECT_EQ(transport_name(Transport::kWss), "wss");
}

TEST(Transport, ParseIsCaseInsensitive) {
  EXPECT_EQ(parse_transport("UDP"), Transport::kUdp);
  EXPECT_EQ(parse_transport("udp"), Transport::kUdp);
  EXPECT_EQ(parse_transport("Tcp"), Transport::kTcp);
  EXPECT_EQ(parse_transport("TLS"), Transport::kTls);
  EXPECT_EQ(parse_transport("WS"), Transport::kWs);
  EXPECT_EQ(parse_transport("wSs"), Transport::kWss);
  for (std::string_view other : {"", "SCTP", "TLS-SCTP", "DTLS", "udp ", "u", "wsss", "tl"})
    EXPECT_FALSE(parse_transport(other).has_value()) << other;
}

TEST(Transport, DefaultPorts) {
  EXPECT_EQ(default_sip_port(Transport::kUdp), 5060);
  EXPECT_EQ(default_sip_port(Transport::kTcp), 5060);
  EXPECT_EQ(default_sip_port(Transport::kTls), 5061);
  EXPECT_EQ(default_sip_port(Transport::kWs), 5060);
  EXPECT_EQ(default_sip_port(Transport::kWss), 5061);
}

TEST(Transport, Kinds) {
  EXPECT_FALSE(is_stream(Transport::kUdp));
  EXPECT_TRUE(is_stream(Transport::kTcp));
  EXPECT_TRUE(is_stream(Transport::kWss));
  EXPECT_TRUE(is_websocket(Transport::kWs));
  EXPECT_TRUE(is_websocket(Transport::kWss));
  EXPECT_FALSE(is_websocket(Transport::kTls));
  EXPECT_TRUE(is_secure(Transport::kTls));
  EXPECT_TRUE(is_secure(Transport::kWss));
  EXPECT_FALSE(is_secure(Transport::kWs));
}

}  // namespace
}  // namespace pinhole::net
