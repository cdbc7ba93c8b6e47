// The `media:` section of the config (app/config.h) and the media runtime built from it
// (app/media_runtime.h): every key lands in its field, defaults are the documented ones, each
// refused input names its line, column and key, and the runtime picks the built-in relay or the
// remote pool and reports the addresses relays write into SDPs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "app/config.h"
#include "app/media_runtime.h"

namespace pinhole::app {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// The required sections on lines 1-3; the media section starts on line 4.
constexpr std::string_view kMinimal = R"(listen: [{transport: udp, address: 127.0.0.1}]
upstream: {uri: "sip:127.0.0.1:5080"}
flow_tokens: {secret: "hex:000102030405060708090a0b0c0d0e0f"}
)";

Result<Config> parse(std::string_view media) {
  ParseOptions options;
  options.check_files = false;
  return parse_config(std::string(kMinimal) + std::string(media), "test.yaml", options);
}

std::string error_of(std::string_view media) {
  auto r = parse(media);
  if (r.ok()) {
    ADD_FAILURE() << "accepted:\n" << media;
    return {};
  }
  return std::string(r.error().what);
}

TEST(MediaConfig, AbsentMeansOff) {
  auto c = parse("");
  ASSERT_TRUE(c.ok()) << c.error().what;
  EXPECT_FALSE(c->proxy.media.enabled);
  EXPECT_TRUE(c->media.relays.empty());
}

TEST(MediaConfig, BuiltinRelayFields) {
  auto c = parse(R"(media:
  enabled: true
  relay: always
  flags: [SIP-source-address, symmetric]
  continue_without_relay: false
  builtin:
    interface: 203.0.113.20
    advertised: 198.51.100.7
    ports: 31000-31999
    workers: 3
    learning_window: 1500ms
    inactivity_timeout: 90s
    hold_timeout: 2h
    delete_delay: 0s
)");
  ASSERT_TRUE(c.ok()) << c.error().what;
  const auto& p = c->proxy.media;
  EXPECT_TRUE(p.enabled);
  EXPECT_EQ(p.mode, proxy::MediaRelayMode::kAlways);
  EXPECT_FALSE(p.continue_without_relay);
  EXPECT_EQ(p.flags, (std::vector<std::string>{"SIP-source-address", "symmetric"}));
  const auto& b = c->media.builtin;
  EXPECT_EQ(b.interface.to_string(), "203.0.113.20");
  ASSERT_TRUE(b.advertised.has_value());
  EXPECT_EQ(b.advertised->to_string(), "198.51.100.7");
  EXPECT_EQ(b.min_port, 31000);
  EXPECT_EQ(b.max_port, 31999);
  EXPECT_EQ(b.workers, 3U);
  EXPECT_EQ(b.learning_window, std::chrono::milliseconds(1500));
  EXPECT_EQ(b.inactivity_timeout, std::chrono::seconds(90));
  EXPECT_EQ(b.hold_timeout, std::chrono::seconds(7200));
  EXPECT_EQ(b.delete_delay, std::chrono::seconds(0));
  EXPECT_TRUE(c->media.relays.empty());
}

TEST(MediaConfig, Defaults) {
  auto c = parse("media:\n  enabled: true\n  builtin: {interface: 192.0.2.5}\n");
  ASSERT_TRUE(c.ok()) << c.error().what;
  const auto& p = c->proxy.media;
  EXPECT_EQ(p.mode, proxy::MediaRelayMode::kAuto);
  EXPECT_TRUE(p.continue_without_relay);
  EXPECT_TRUE(p.flags.empty());
  const auto& b = c->media.builtin;
  EXPECT_FALSE(b.advertised.has_value());
  EXPECT_EQ(b.min_port, 30000);
  EXPECT_EQ(b.max_port, 39999);
  EXPECT_EQ(b.workers, 1U);
  EXPECT_EQ(b.learning_window, std::chrono::seconds(3));
  EXPECT_EQ(b.inactivity_timeout, std::chrono::seconds(60));
  EXPECT_EQ(b.delete_delay, std::chrono::seconds(30));
  EXPECT_EQ(c->media.ng_timeout, std::chrono::milliseconds(1000));
  EXPECT_EQ(c->media.ng_tries, 2U);
}

TEST(MediaConfig, RemoteRelays) {
  auto c = parse(R"(media:
  enabled: true
  relays:
    - { address: "udp:127.0.0.1:2223", weight: 2 }
    - { address: "udp:[2001:db8::9]:2223" }
  ng_timeout: 250ms
  ng_tries: 3
  relay_down_time: 5s
  call_idle_timeout: 1h
  max_outstanding: 500
)");
  ASSERT_TRUE(c.ok()) << c.error().what;
  const auto& m = c->media;
  ASSERT_EQ(m.relays.size(), 2U);
  EXPECT_EQ(m.relays[0].address, "udp:127.0.0.1:2223");
  EXPECT_EQ(m.relays[0].endpoint.to_string(), "127.0.0.1:2223");
  EXPECT_EQ(m.relays[0].weight, 2U);
  EXPECT_EQ(m.relays[1].endpoint.to_string(), "[2001:db8::9]:2223");
  EXPECT_EQ(m.relays[1].weight, 1U);
  EXPECT_EQ(m.ng_timeout, std::chrono::milliseconds(250));
  EXPECT_EQ(m.ng_tries, 3U);
  EXPECT_EQ(m.relay_down_time, std::chrono::seconds(5));
  EXPECT_EQ(m.call_idle_timeout, std::chrono::seconds(3600));
  EXPECT_EQ(m.max_outstanding, 500U);
}

TEST(MediaConfig, ErrorsNameLineColumnAndKey) {
  EXPECT_THAT(error_of("media:\n  enabled: yes\n"), HasSubstr("test.yaml:5:12: media.enabled: 'yes' is not a boolean"));
  EXPECT_THAT(error_of("media:\n  relay: sometimes\n"),
              HasSubstr("test.yaml:5:10: media.relay: 'sometimes' is not one of: auto, always, never"));
  EXPECT_THAT(error_of("media:\n  enabled: true\n"),
              HasSubstr("test.yaml:5:3: media: media is enabled but names no relay"));
  EXPECT_THAT(error_of("media:\n  enabld: true\n"), HasSubstr("media.enabld: unknown key; did you mean 'enabled'?"));
  EXPECT_THAT(error_of("media:\n  builtin: {ports: 30000-30001}\n"),
              HasSubstr("test.yaml:5:3: media.builtin.interface: required key missing"));
  EXPECT_THAT(error_of("media:\n  builtin: {interface: 0.0.0.0}\n"),
              HasSubstr("media.builtin.interface: 0.0.0.0 binds every interface"));
  EXPECT_THAT(error_of("media:\n  builtin: {interface: 192.0.2.1, ports: 40000-30000}\n"),
              HasSubstr("test.yaml:5:42: media.builtin.ports: '40000-30000': MIN is above MAX"));
  EXPECT_THAT(error_of("media:\n  builtin: {interface: 192.0.2.1, ports: 30001-30001}\n"),
              HasSubstr("holds no RTP/RTCP pair"));
  EXPECT_THAT(error_of("media:\n  builtin: {interface: 192.0.2.1, ports: 80-90}\n"), HasSubstr("1024-65535"));
  EXPECT_THAT(error_of("media:\n  builtin: {interface: 192.0.2.1, workers: 0}\n"),
              HasSubstr("media.builtin.workers: 0 is out of range (1-64)"));
  EXPECT_THAT(error_of("media:\n  relays:\n    - {address: \"tcp:127.0.0.1:2223\"}\n"),
              HasSubstr("test.yaml:6:17: media.relays[0].address: 'tcp:127.0.0.1:2223': ng over TCP is not supported"));
  EXPECT_THAT(error_of("media:\n  relays:\n    - {address: \"udp:relay.example.com:2223\"}\n"),
              HasSubstr("media.relays[0].address: 'udp:relay.example.com:2223' is not udp:IP:PORT"));
  EXPECT_THAT(error_of("media:\n  relays:\n    - {address: \"udp:127.0.0.1:2223\"}\n    - {address: "
                       "\"udp:127.0.0.1:2223\"}\n"),
              HasSubstr("test.yaml:7:17: media.relays[1].address: 'udp:127.0.0.1:2223' is also media.relays[0]"));
  EXPECT_THAT(error_of("media:\n  relays:\n    - {address: \"udp:127.0.0.1:2223\", weight: 0}\n"),
              HasSubstr("every relay has weight 0"));
  EXPECT_THAT(error_of("media:\n  relays: []\n"), HasSubstr("media.relays: lists no relay"));
  EXPECT_THAT(error_of("media:\n  relays: [{address: \"udp:127.0.0.1:2223\"}]\n  builtin: {interface: 192.0.2.1}\n"),
              HasSubstr("test.yaml:6:3: media.builtin: the built-in relay is used only when `relays` is empty"));
  EXPECT_THAT(error_of("media:\n  builtin: {interface: 192.0.2.1}\n  ng_tries: 2\n"),
              HasSubstr("test.yaml:6:3: media.ng_tries: applies to remote `relays:` only"));
  EXPECT_THAT(error_of("media:\n  relays: [{address: \"udp:127.0.0.1:2223\"}]\n  ng_timeout: 5ms\n"),
              HasSubstr("media.ng_timeout: must lie within 10ms-60s"));
  EXPECT_THAT(error_of("media:\n  relays: [{address: \"udp:127.0.0.1:2223\"}]\n  ng_timeout: 100\n"),
              HasSubstr("has no unit"));
}

TEST(MediaRuntime, RemoteRelaysGiveThePoolAndTheirAddresses) {
  auto c = parse(R"(media:
  enabled: true
  relays:
    - { address: "udp:127.0.0.1:2223", weight: 2 }
    - { address: "udp:127.0.0.1:2224" }
    - { address: "udp:127.0.0.2:2223" }
)");
  ASSERT_TRUE(c.ok()) << c.error().what;
  MetricsRegistry metrics;
  auto runtime = MediaRuntime::create(*c, metrics);
  ASSERT_TRUE(runtime.ok()) << runtime.error().what;
  auto& r = **runtime;
  ASSERT_EQ(r.relay_addresses().size(), 2U);  // one per IP
  EXPECT_EQ(r.relay_addresses()[0].to_string(), "127.0.0.1");
  EXPECT_EQ(r.relay_addresses()[1].to_string(), "127.0.0.2");
  r.start();
  r.stop();
  // The pool registered its counters.
  EXPECT_THAT(metrics.render_prometheus(), HasSubstr("pinhole_media_ng_requests_total"));
}

TEST(MediaRuntime, BuiltinRelayAdvertisesItsAddress) {
  auto c = parse(R"(media:
  enabled: true
  builtin: {interface: 127.0.0.1, advertised: 198.51.100.7, ports: 50000-50009}
)");
  ASSERT_TRUE(c.ok()) << c.error().what;
  MetricsRegistry metrics;
  auto runtime = MediaRuntime::create(*c, metrics);
  ASSERT_TRUE(runtime.ok()) << runtime.error().what;
  auto& r = **runtime;
  ASSERT_EQ(r.relay_addresses().size(), 1U);
  EXPECT_EQ(r.relay_addresses()[0].to_string(), "198.51.100.7");
  r.start();
  // A request that cannot be an ng command (no Call-ID) is refused, answered inline.
  std::optional<uint16_t> status;
  r.relay().request(proxy::MediaRequest{}, [&](Result<proxy::MediaReply> reply) {
    status = reply.ok() ? uint16_t{200} : reply.error().status;
  });
  EXPECT_EQ(status, 500);
  r.stop();
  // The relay engine's counters are on /metrics; the kernel fast path's too when it could load
  // (as root, which CI is).
  std::string text = metrics.render_prometheus();
  EXPECT_THAT(text, HasSubstr("pinhole_relay_packets_forwarded{path=\"user\"} 0"));
  EXPECT_THAT(text, HasSubstr("pinhole_relay_packets_dropped 0"));
  if (::geteuid() == 0) {
    EXPECT_THAT(text, HasSubstr("pinhole_relay_packets_forwarded{path=\"kernel\"} 0"));
    EXPECT_THAT(text, HasSubstr("pinhole_relay_kernel_streams 0"));
  } else {
    EXPECT_THAT(text, Not(HasSubstr("pinhole_relay_kernel_streams")));
  }
}

}  // namespace
}  // namespace pinhole::app
