// The config loader (src/app/config.h): a full file lands in the right fields, omitted keys get
// the documented defaults, every refused input names its line, column and key, and the shipped
// examples/*.yaml load.
#include "app/config.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "nat/nat_detect.h"

namespace pinhole::app {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// A fresh directory per test for the files a config names (certificates, secret files).
class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) / (std::string("pinhole_config_") + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, std::string_view content) {
    fs::path path = dir_ / name;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << content;
    return path.string();
  }

  // Parses with relative paths taken from the test's directory.
  Result<Config> parse(std::string_view yaml) {
    ParseOptions options;
    options.base_dir = dir_.string();
    return parse_config(yaml, "test.yaml", options);
  }

  // The error text of a config that must be refused.
  std::string error_of(std::string_view yaml) {
    auto r = parse(yaml);
    if (r.ok()) {
      ADD_FAILURE() << "accepted:\n" << yaml;
      return {};
    }
    EXPECT_EQ(r.error().status, 500);
    return std::string(r.error().what);
  }

  fs::path dir_;
};

// The three required sections, on lines 1-4; error cases append from line 5.
constexpr std::string_view kMinimal = R"(listen:
  - {transport: udp, address: 127.0.0.1}
upstream: {uri: "sip:127.0.0.1:5080"}
flow_tokens: {secret: "hex:000102030405060708090a0b0c0d0e0f"}
)";

std::string minimal_plus(std::string_view more) { return std::string(kMinimal) + std::string(more); }

TEST_F(ConfigTest, FullFileLandsInEveryField) {
  write("tls/cert.pem", "cert");
  write("tls/key.pem", "key");
  write("ca.pem", "ca");
  write("flow.key", "0123456789abcdef0123456789abcdef");  // 32 raw bytes
  std::string path = write("pinhole.yaml", R"(# a comment
workers: 3
listen:
  - transport: udp
    address: 0.0.0.0
    port: 5060
    advertise: 198.51.100.7
  - transport: tcp
    address: 192.0.2.10
    port: 5070
    advertise: "[2001:DB8::7]:5090"
  - transport: tls
    address: 2001:db8::10
    advertise: Sip.Example.com
tls:
  certificate: tls/cert.pem
  private_key: tls/key.pem
  ca: ca.pem
  verify_upstream: false
  require_client_certificate: true
limits:
  max_connections: 1000
  max_connections_per_ip: 10
  idle_timeout: 2m
  connect_timeout: 3s
  max_write_queue_bytes: 65536
  max_message_size: 32768
  max_header_lines: 100
  max_vias: 20
timers: {t1: 250ms, t2: 8s, t4: 10s}
upstream:
  uri: "sip:core.example.com;transport=tcp"
  trusted_sources: [203.0.113.21, "2001:db8::21"]
nat:
  force_rport: nat-detected
  tests: [contact-private, via-source-port]
  alias: trusted
  trusted_peers: [203.0.113.20]
flow_tokens:
  secret_file: flow.key
  previous_secret: "base64:AAECAwQFBgcICQoLDA0ODw=="
domains: [Example.COM, 192.0.2.10]
proxy: {timer_c: 3m, default_registration: 1800s, dialog_flow: 2h, server_name: edge-1}
admin: {enabled: false, listen: "[::1]:9100"}
log: {level: debug, components: {transport: trace, proxy: warn}}
)");
  auto r = load_config_file(path);
  ASSERT_TRUE(r.ok()) << r.error().what;
  const Config& c = *r;

  EXPECT_EQ(c.transport.workers, 3u);
  ASSERT_EQ(c.transport.listeners.size(), 3u);
  const auto& udp = c.transport.listeners[0];
  EXPECT_EQ(udp.transport, net::Transport::kUdp);
  EXPECT_EQ(udp.bind.to_string(), "0.0.0.0:5060");
  EXPECT_EQ(udp.advertised_host, "198.51.100.7");
  EXPECT_EQ(udp.advertised_port, 0);
  const auto& tcp = c.transport.listeners[1];
  EXPECT_EQ(tcp.transport, net::Transport::kTcp);
  EXPECT_EQ(tcp.bind.to_string(), "192.0.2.10:5070");
  EXPECT_EQ(tcp.advertised_host, "[2001:db8::7]");  // canonical form, in brackets for Via
  EXPECT_EQ(tcp.advertised_port, 5090);
  const auto& tls = c.transport.listeners[2];
  EXPECT_EQ(tls.transport, net::Transport::kTls);
  EXPECT_EQ(tls.bind.to_string(), "[2001:db8::10]:5061");  // TLS default port
  EXPECT_EQ(tls.advertised_host, "sip.example.com");
  EXPECT_EQ(tls.advertised_port, 0);

  EXPECT_EQ(c.transport.tls.certificate_file, (dir_ / "tls/cert.pem").string());
  EXPECT_EQ(c.transport.tls.private_key_file, (dir_ / "tls/key.pem").string());
  EXPECT_EQ(c.transport.tls.ca_file, (dir_ / "ca.pem").string());
  EXPECT_FALSE(c.transport.tls.verify_upstream);
  EXPECT_TRUE(c.transport.tls.require_client_certificate);

  EXPECT_EQ(c.transport.limits.max_connections, 1000u);
  EXPECT_EQ(c.transport.limits.max_per_source_ip, 10u);
  EXPECT_EQ(c.transport.limits.idle_timeout, std::chrono::seconds(120));
  EXPECT_EQ(c.transport.limits.connect_timeout, std::chrono::seconds(3));
  EXPECT_EQ(c.transport.limits.max_write_queue_bytes, 65536u);
  EXPECT_EQ(c.transport.parse_limits.max_message_size, 32768u);
  EXPECT_EQ(c.transport.parse_limits.max_headers, 100);
  EXPECT_EQ(c.transport.parse_limits.max_vias, 20);

  EXPECT_EQ(c.timers.t1, txn::Millis(250));
  EXPECT_EQ(c.timers.t2, txn::Millis(8000));
  EXPECT_EQ(c.timers.t4, txn::Millis(10000));

  EXPECT_EQ(c.proxy.upstream.uri, "sip:core.example.com;transport=tcp");
  ASSERT_EQ(c.proxy.upstream.trusted_sources.size(), 2u);
  EXPECT_EQ(c.proxy.upstream.trusted_sources[0].to_string(), "203.0.113.21");
  EXPECT_EQ(c.proxy.upstream.trusted_sources[1].to_string(), "2001:db8::21");
  EXPECT_EQ(c.proxy.force_rport, proxy::ForceRport::kNatDetected);
  EXPECT_EQ(c.proxy.nat_tests, (nat::NatTestSet{nat::NatTest::kContactPrivate, nat::NatTest::kViaSourcePort}));
  EXPECT_EQ(c.proxy.alias, proxy::AliasPolicy::kTrusted);
  ASSERT_EQ(c.proxy.trusted_peers.size(), 1u);
  EXPECT_EQ(c.proxy.trusted_peers[0].to_string(), "203.0.113.20");
  EXPECT_EQ(c.proxy.flow_token_key, "0123456789abcdef0123456789abcdef");
  EXPECT_EQ(c.proxy.flow_token_previous_key,
            std::string("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f", 16));
  EXPECT_EQ(c.proxy.local_domains, (std::vector<std::string>{"example.com", "192.0.2.10"}));
  EXPECT_EQ(c.proxy.timer_c_seconds, 180u);
  EXPECT_EQ(c.proxy.default_registration_seconds, 1800u);
  EXPECT_EQ(c.proxy.dialog_flow_seconds, 7200u);
  EXPECT_EQ(c.proxy.server_name, "edge-1");

  EXPECT_FALSE(c.admin.enabled);
  EXPECT_EQ(c.admin.listen.to_string(), "[::1]:9100");
  EXPECT_EQ(c.log.level, "debug");
  EXPECT_EQ(c.log.components, (std::map<std::string, std::string>{{"transport", "trace"}, {"proxy", "warn"}}));
}

TEST_F(ConfigTest, OmittedKeysTakeTheDocumentedDefaults) {
  auto r = parse(kMinimal);
  ASSERT_TRUE(r.ok()) << r.error().what;
  const Config& c = *r;
  uint32_t cores = std::thread::hardware_concurrency();
  EXPECT_EQ(c.transport.workers, std::clamp<uint32_t>(cores, 1, 256));
  ASSERT_EQ(c.transport.listeners.size(), 1u);
  EXPECT_EQ(c.transport.listeners[0].bind.to_string(), "127.0.0.1:5060");
  EXPECT_EQ(c.transport.listeners[0].advertised_host, "");
  EXPECT_EQ(c.transport.listeners[0].advertised_port, 0);
  EXPECT_EQ(c.transport.tls.certificate_file, "");
  EXPECT_TRUE(c.transport.tls.verify_upstream);
  EXPECT_FALSE(c.transport.tls.require_client_certificate);
  EXPECT_EQ(c.transport.limits.max_connections, 20000u);
  EXPECT_EQ(c.transport.limits.max_per_source_ip, 100u);
  EXPECT_EQ(c.transport.limits.idle_timeout, std::chrono::seconds(120));
  EXPECT_EQ(c.transport.limits.connect_timeout, std::chrono::seconds(5));
  EXPECT_EQ(c.transport.parse_limits.max_message_size, 65536u);
  EXPECT_EQ(c.transport.parse_limits.max_headers, 256);
  EXPECT_EQ(c.transport.parse_limits.max_vias, 64);
  EXPECT_EQ(c.timers.t1, txn::Millis(500));
  EXPECT_EQ(c.timers.t2, txn::Millis(4000));
  EXPECT_EQ(c.timers.t4, txn::Millis(5000));
  EXPECT_EQ(c.proxy.upstream.uri, "sip:127.0.0.1:5080");
  EXPECT_TRUE(c.proxy.upstream.trusted_sources.empty());
  EXPECT_EQ(c.proxy.force_rport, proxy::ForceRport::kAlways);
  EXPECT_EQ(c.proxy.nat_tests, nat::NatTestSet::all());
  EXPECT_EQ(c.proxy.alias, proxy::AliasPolicy::kTlsAndTrusted);
  EXPECT_EQ(c.proxy.flow_token_key.size(), 16u);
  EXPECT_EQ(c.proxy.flow_token_previous_key, "");
  EXPECT_TRUE(c.proxy.local_domains.empty());
  EXPECT_EQ(c.proxy.timer_c_seconds, 180u);
  EXPECT_EQ(c.proxy.default_registration_seconds, 3600u);
  EXPECT_EQ(c.proxy.dialog_flow_seconds, 7200u);
  EXPECT_EQ(c.proxy.server_name, "pinhole");
  EXPECT_TRUE(c.admin.enabled);
  EXPECT_EQ(c.admin.listen.to_string(), "127.0.0.1:9060");
  EXPECT_EQ(c.log.level, "info");
  EXPECT_TRUE(c.log.components.empty());
}

TEST_F(ConfigTest, PortZeroAndTheTlsDefaultPort) {
  write("c.pem", "c");
  write("k.pem", "k");
  auto r = parse(R"(listen:
  - {transport: udp, address: 127.0.0.1, port: 0}
  - {transport: udp, address: 127.0.0.1, port: 0}
  - {transport: tls, address: "::1"}
tls: {certificate: c.pem, private_key: k.pem}
upstream: {uri: "sips:core.example.com"}
flow_tokens: {secret: "hex:000102030405060708090a0b0c0d0e0f"}
)");
  ASSERT_TRUE(r.ok()) << r.error().what;
  EXPECT_EQ(r->transport.listeners[0].bind.port, 0);  // two port-0 listeners are not duplicates
  EXPECT_EQ(r->transport.listeners[2].bind.to_string(), "[::1]:5061");
}

TEST_F(ConfigTest, DurationUnits) {
  auto r = parse(minimal_plus("timers: {t1: 1s, t2: 1m, t4: 1h}\nproxy: {timer_c: 1h}\n"));
  ASSERT_TRUE(r.ok()) << r.error().what;
  EXPECT_EQ(r->timers.t1, txn::Millis(1000));
  EXPECT_EQ(r->timers.t2, txn::Millis(60000));
  EXPECT_EQ(r->timers.t4, txn::Millis(3600000));
  EXPECT_EQ(r->proxy.timer_c_seconds, 3600u);
}

TEST_F(ConfigTest, SecretFileIsTakenAsRawBytes) {
  // A trailing newline is part of the key: binary keys may end in 0x0a.
  write("k", "0123456789abcdef\n");
  auto r = parse(R"(listen: [{transport: udp, address: 127.0.0.1}]
upstream: {uri: "sip:127.0.0.1:5080"}
flow_tokens: {secret_file: k}
)");
  ASSERT_TRUE(r.ok()) << r.error().what;
  EXPECT_EQ(r->proxy.flow_token_key, "0123456789abcdef\n");
}

TEST_F(ConfigTest, HexSecretAcceptsUpperCase) {
  auto r = parse(R"(listen: [{transport: udp, address: 127.0.0.1}]
upstream: {uri: "sip:127.0.0.1:5080"}
flow_tokens: {secret: "hex:FFFEFDFCFBFAF9F8F7F6F5F4F3F2F1F0"}
)");
  ASSERT_TRUE(r.ok()) << r.error().what;
  EXPECT_EQ(static_cast<uint8_t>(r->proxy.flow_token_key[0]), 0xff);
  EXPECT_EQ(static_cast<uint8_t>(r->proxy.flow_token_key[15]), 0xf0);
}

TEST_F(ConfigTest, CheckFilesOffSkipsTheFilesystem) {
  ParseOptions options;
  options.check_files = false;
  auto r = parse_config(R"(listen: [{transport: tls, address: 127.0.0.1}]
tls: {certificate: /nonexistent/c.pem, private_key: /nonexistent/k.pem}
upstream: {uri: "sips:core.example.com"}
flow_tokens: {secret_file: /nonexistent/key}
)",
                        "x.yaml", options);
  ASSERT_TRUE(r.ok()) << r.error().what;
  EXPECT_EQ(r->transport.tls.certificate_file, "/nonexistent/c.pem");
  EXPECT_EQ(r->proxy.flow_token_key, "");  // not read
}

TEST_F(ConfigTest, LoadConfigFileResolvesRelativePathsFromItsDirectory) {
  write("conf/keys/flow.key", "0123456789abcdef");
  std::string path = write("conf/pinhole.yaml", R"(listen: [{transport: udp, address: 127.0.0.1}]
upstream: {uri: "sip:127.0.0.1:5080"}
flow_tokens: {secret_file: keys/flow.key}
)");
  auto r = load_config_file(path);
  ASSERT_TRUE(r.ok()) << r.error().what;
  EXPECT_EQ(r->proxy.flow_token_key, "0123456789abcdef");
}

TEST_F(ConfigTest, LoadConfigFileNamesAMissingFile) {
  auto r = load_config_file((dir_ / "nope.yaml").string());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.error().what), StartsWith((dir_ / "nope.yaml").string() + ": cannot open"));
}

TEST_F(ConfigTest, LoadConfigFileRefusesADirectory) {
  auto r = load_config_file(dir_.string());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.error().what), HasSubstr("is a directory"));
}

TEST_F(ConfigTest, ErrorTextOutlivesTheCall) {
  std::string_view what;
  {
    auto r = parse(minimal_plus("workers: 0\n"));
    ASSERT_FALSE(r.ok());
    what = r.error().what;
  }
  (void)parse(minimal_plus("workers: 1000\n"));
  EXPECT_EQ(what, "test.yaml:5:10: workers: 0 is out of range (1-256)");
}

// --- refused configs: each names file:line:column, the key path, and what is wrong ---

struct BadCase {
  const char* name;
  std::string yaml;
  const char* where;  // "test.yaml:L:C: key.path: "
  const char* what;   // a substring of the message
};

// Test names instead of byte dumps in failure messages.
void PrintTo(const BadCase& c, std::ostream* os) { *os << c.name; }

class ConfigErrorTest : public ConfigTest, public ::testing::WithParamInterface<BadCase> {};

TEST_P(ConfigErrorTest, NamesLineColumnAndKey) {
  const BadCase& c = GetParam();
  std::string error = error_of(c.yaml);
  EXPECT_THAT(error, StartsWith(c.where));
  EXPECT_THAT(error, HasSubstr(c.what));
}

const BadCase kBadCases[] = {
    // YAML itself
    {"Syntax", minimal_plus("timers: {t1: 1s\n"), "test.yaml:6:1: ", "YAML syntax"},
    {"Empty", "", "test.yaml:1:1: ", "the config is empty"},
    {"NotAMapping", "- a\n- b\n", "test.yaml:1:1: ", "must be a mapping"},
    {"TwoDocuments", minimal_plus("---\nworkers: 2\n"), "test.yaml:", "more than one YAML document"},
    {"UnknownTopKey", minimal_plus("listne: []\n"), "test.yaml:5:1: listne: ", "did you mean 'listen'?"},
    {"UnknownNestedKey", minimal_plus("timers: {t1: 1s, t3: 2s}\n"), "test.yaml:5:18: timers.t3: ", "unknown key"},
    {"RepeatedKey", minimal_plus("workers: 2\nworkers: 3\n"),
     "test.yaml:6:1: workers: ", "repeated key (first at line 5)"},
    {"EmptyValue", minimal_plus("workers:\n"), "test.yaml:5:1: workers: ", "has no value"},
    {"ListForScalar", minimal_plus("workers: [1]\n"), "test.yaml:5:10: workers: ", "found a list"},
    // workers
    {"WorkersZero", minimal_plus("workers: 0\n"), "test.yaml:5:10: workers: ", "0 is out of range (1-256)"},
    {"WorkersTooMany", minimal_plus("workers: 1000\n"), "test.yaml:5:10: workers: ", "out of range (1-256)"},
    {"WorkersNotNumber", minimal_plus("workers: two\n"), "test.yaml:5:10: workers: ", "not a whole decimal number"},
    // listen
    {"ListenMissing", "upstream: {uri: \"sip:127.0.0.1\"}\n", "test.yaml:1:1: listen: ", "required key missing"},
    {"ListenEmpty", "listen: []\n", "test.yaml:1:9: listen: ", "at least one listener"},
    {"PortRange", "listen:\n  - transport: udp\n    address: 127.0.0.1\n    port: 70000\n",
     "test.yaml:4:11: listen[0].port: ", "'70000' is not a port (0-65535)"},
    {"PortNegative", "listen:\n  - {transport: udp, address: 127.0.0.1, port: -1}\n",
     "test.yaml:2:48: listen[0].port: ", "not a port"},
    {"TransportUnknown", "listen:\n  - {transport: sctp, address: 127.0.0.1}\n",
     "test.yaml:2:17: listen[0].transport: ", "'sctp' is not one of: udp, tcp, tls"},
    {"TransportWs", "listen:\n  - {transport: wss, address: 127.0.0.1}\n",
     "test.yaml:2:17: listen[0].transport: ", "not supported yet"},
    {"TransportMissing", "listen:\n  - {address: 127.0.0.1}\n",
     "test.yaml:2:5: listen[0].transport: ", "required key missing"},
    {"AddressBad", "listen:\n  - {transport: udp, address: 127.0.0.300}\n",
     "test.yaml:2:31: listen[0].address: ", "not an IPv4 or IPv6 address"},
    {"AddressName", "listen:\n  - {transport: udp, address: localhost}\n",
     "test.yaml:2:31: listen[0].address: ", "not an IPv4 or IPv6 address"},
    {"WildcardWithoutAdvertise", "listen:\n  - {transport: udp, address: 0.0.0.0}\n",
     "test.yaml:2:31: listen[0].address: ", "set advertise"},
    {"AdvertiseBad", "listen:\n  - {transport: udp, address: 127.0.0.1, advertise: \"bad host!\"}\n",
     "test.yaml:2:53: listen[0].advertise: ", "not a host or host:port"},
    {"AdvertisePortZero", "listen:\n  - {transport: udp, address: 127.0.0.1, advertise: \"192.0.2.1:0\"}\n",
     "test.yaml:2:53: listen[0].advertise: ", "1-65535"},
    {"DuplicateListener",
     "listen:\n  - {transport: udp, address: 127.0.0.1}\n  - {transport: udp, address: 127.0.0.1, port: 5060}\n",
     "test.yaml:3:5: listen[1]: ", "duplicate listener: udp 127.0.0.1:5060 is also listen[0]"},
    {"TcpAndTlsSamePort",
     "listen:\n  - {transport: tcp, address: 127.0.0.1, port: 5061}\n  - {transport: tls, address: 127.0.0.1}\n",
     "test.yaml:3:5: listen[1]: ", "tls 127.0.0.1:5061 conflicts with listen[0] (tcp on the same address and port"},
    {"ListenerUnknownKey", "listen:\n  - {transport: udp, adress: 127.0.0.1}\n",
     "test.yaml:2:22: listen[0].adress: ", "did you mean 'address'?"},
    // tls
    {"TlsListenerWithoutTls",
     "listen:\n  - {transport: udp, address: 127.0.0.1}\n  - {transport: tls, address: 127.0.0.1}\n",
     "test.yaml:3:5: tls: ", "listen[1] is a tls listener"},
    {"TlsCertificateMissingKey", "listen: [{transport: tls, address: 127.0.0.1}]\ntls:\n  private_key: k.pem\n",
     "test.yaml:2:1: tls.certificate: ", "required key missing"},
    {"TlsFileMissing",
     "listen: [{transport: tls, address: 127.0.0.1}]\ntls:\n  certificate: nope.pem\n  private_key: nope.pem\n",
     "test.yaml:3:16: tls.certificate: ", "nope.pem: no such file"},
    {"TlsClientCertWithoutCa", minimal_plus("tls: {require_client_certificate: true}\n"),
     "test.yaml:5:35: tls.require_client_certificate: ", "needs tls.ca"},
    {"TlsBoolYes", minimal_plus("tls: {verify_upstream: yes}\n"),
     "test.yaml:5:24: tls.verify_upstream: ", "'yes' is not a boolean (true or false)"},
    // limits, timers
    {"LimitZero", minimal_plus("limits: {max_connections: 0}\n"),
     "test.yaml:5:27: limits.max_connections: ", "out of range"},
    {"LimitViasTooMany", minimal_plus("limits: {max_vias: 70000}\n"),
     "test.yaml:5:20: limits.max_vias: ", "out of range (1-65535)"},
    {"IdleTimeoutNotSeconds", minimal_plus("limits: {idle_timeout: 1500ms}\n"),
     "test.yaml:5:24: limits.idle_timeout: ", "whole number of seconds"},
    {"DurationWithoutUnit", minimal_plus("timers: {t1: 500}\n"),
     "test.yaml:5:14: timers.t1: ", "'500' has no unit: write 500ms or 500s"},
    {"DurationUnknownUnit", minimal_plus("timers: {t1: 5sec}\n"), "test.yaml:5:14: timers.t1: ", "unknown unit 'sec'"},
    {"DurationFraction", minimal_plus("timers: {t1: 1.5s}\n"),
     "test.yaml:5:14: timers.t1: ", "whole numbers only; use a smaller unit"},
    {"T1Zero", minimal_plus("timers: {t1: 0ms}\n"), "test.yaml:5:14: timers.t1: ", "must be greater than 0"},
    {"T2BelowT1", minimal_plus("timers: {t1: 500ms, t2: 100ms}\n"),
     "test.yaml:5:25: timers.t2: ", "t2 (100ms) must be at least t1 (500ms)"},
    {"T1AboveDefaultT2", minimal_plus("timers: {t1: 5s}\n"), "test.yaml:5:14: timers.t1: ", "must be at least t1"},
    // upstream
    {"UpstreamMissing", "listen: [{transport: udp, address: 127.0.0.1}]\n",
     "test.yaml:1:1: upstream: ", "required key missing"},
    {"UpstreamNotSip", "listen: [{transport: udp, address: 127.0.0.1}]\nupstream: {uri: \"tel:+15551234\"}\n",
     "test.yaml:2:17: upstream.uri: ", "must be a sip: or sips: URI"},
    {"UpstreamInvalid", "listen: [{transport: udp, address: 127.0.0.1}]\nupstream: {uri: \"sip:\"}\n",
     "test.yaml:2:17: upstream.uri: ", "not a valid URI"},
    {"UpstreamTransportSctp",
     "listen: [{transport: udp, address: 127.0.0.1}]\nupstream: {uri: \"sip:core.example.com;transport=sctp\"}\n",
     "test.yaml:2:17: upstream.uri: ", "transport 'sctp' is not one of udp, tcp, tls"},
    {"UpstreamSipsUdp",
     "listen: [{transport: udp, address: 127.0.0.1}]\nupstream: {uri: \"sips:core.example.com;transport=udp\"}\n",
     "test.yaml:2:17: upstream.uri: ", "sips needs TLS"},
    {"UpstreamTransportWithoutListener",
     "listen: [{transport: udp, address: 127.0.0.1}]\nupstream: {uri: \"sip:core.example.com;transport=tcp\"}\n",
     "test.yaml:2:17: upstream.uri: ", "no tcp listener"},
    {"UpstreamUriMissing", "listen: [{transport: udp, address: 127.0.0.1}]\nupstream:\n  trusted_sources: []\n",
     "test.yaml:2:1: upstream.uri: ", "required key missing"},
    {"TrustedSourceName",
     "listen: [{transport: udp, address: 127.0.0.1}]\nupstream:\n  uri: sip:127.0.0.1\n"
     "  trusted_sources: [203.0.113.1, core.example.com]\n",
     "test.yaml:4:34: upstream.trusted_sources[1]: ", "not an IPv4 or IPv6 address"},
    // nat
    {"ForceRportBad", minimal_plus("nat:\n  force_rport: sometimes\n"),
     "test.yaml:6:16: nat.force_rport: ", "'sometimes' is not one of: always, nat-detected, never"},
    {"NatTestUnknown", minimal_plus("nat:\n  tests: [contact-private, via-privat]\n"),
     "test.yaml:6:28: nat.tests[1]: ", "'via-privat': unknown NAT test; valid names:"},
    {"AliasBad", minimal_plus("nat: {alias: tls}\n"), "test.yaml:5:14: nat.alias: ", "is not one of: never"},
    {"NatNotMap", minimal_plus("nat: always\n"), "test.yaml:5:6: nat: ", "expected a mapping"},
    // flow tokens
    {"FlowTokensMissing", "listen: [{transport: udp, address: 127.0.0.1}]\nupstream: {uri: \"sip:127.0.0.1\"}\n",
     "test.yaml:1:1: flow_tokens: ", "required key missing"},
    {"SecretMissing",
     "listen: [{transport: udp, address: 127.0.0.1}]\nupstream: {uri: \"sip:127.0.0.1\"}\nflow_tokens: {}\n",
     "test.yaml:3:1: flow_tokens.secret: ", "openssl rand -hex 32"},
    {"SecretShort",
     "listen: [{transport: udp, address: 127.0.0.1}]\nupstream: {uri: \"sip:127.0.0.1\"}\n"
     "flow_tokens: {secret: \"hex:0011\"}\n",
     "test.yaml:3:23: flow_tokens.secret: ", "the key is 2 bytes; at least 16"},
    {"SecretNoPrefix",
     "listen: [{transport: udp, address: 127.0.0.1}]\nupstream: {uri: \"sip:127.0.0.1\"}\n"
     "flow_tokens: {secret: \"correct horse battery staple\"}\n",
     "test.yaml:3:23: flow_tokens.secret: ", "must start with hex: or base64:"},
    {"SecretBadHex",
     "listen: [{transport: udp, address: 127.0.0.1}]\nupstream: {uri: \"sip:127.0.0.1\"}\n"
     "flow_tokens: {secret: \"hex:000102030405060708090a0b0c0d0e0g\"}\n",
     "test.yaml:3:23: flow_tokens.secret: ", "hex digits only"},
    {"SecretOddHex",
     "listen: [{transport: udp, address: 127.0.0.1}]\nupstream: {uri: \"sip:127.0.0.1\"}\n"
     "flow_tokens: {secret: \"hex:000\"}\n",
     "test.yaml:3:23: flow_tokens.secret: ", "even number"},
    {"SecretBadBase64",
     "listen: [{transport: udp, address: 127.0.0.1}]\nupstream: {uri: \"sip:127.0.0.1\"}\n"
     "flow_tokens: {secret: \"base64:!!!!\"}\n",
     "test.yaml:3:23: flow_tokens.secret: ", "not valid base64"},
    {"SecretAndFile",
     "listen: [{transport: udp, address: 127.0.0.1}]\nupstream: {uri: \"sip:127.0.0.1\"}\n"
     "flow_tokens: {secret: \"hex:000102030405060708090a0b0c0d0e0f\", secret_file: k}\n",
     "test.yaml:3:63: flow_tokens.secret_file: ", "not both"},
    {"SecretFileMissing",
     "listen: [{transport: udp, address: 127.0.0.1}]\nupstream: {uri: \"sip:127.0.0.1\"}\n"
     "flow_tokens: {secret_file: missing.key}\n",
     "test.yaml:3:28: flow_tokens.secret_file: ", "missing.key: no such file"},
    {"PreviousSecretShort",
     "listen: [{transport: udp, address: 127.0.0.1}]\nupstream: {uri: \"sip:127.0.0.1\"}\n"
     "flow_tokens:\n  secret: \"hex:000102030405060708090a0b0c0d0e0f\"\n  previous_secret: \"base64:AAEC\"\n",
     "test.yaml:5:20: flow_tokens.previous_secret: ", "the key is 3 bytes"},
    // domains, proxy, admin, log
    {"DomainBad", minimal_plus("domains: [example.com, \"exa mple.com\"]\n"),
     "test.yaml:5:24: domains[1]: ", "not a host name or IP address"},
    {"DomainsNotList", minimal_plus("domains: example.com\n"), "test.yaml:5:10: domains: ", "expected a list"},
    {"TimerCZero", minimal_plus("proxy: {timer_c: 0s}\n"), "test.yaml:5:18: proxy.timer_c: ", "at least 1s"},
    {"ServerNameControl", minimal_plus("proxy: {server_name: \"a\\r\\nX: y\"}\n"),
     "test.yaml:5:22: proxy.server_name: ", "control characters"},
    {"AdminListenBad", minimal_plus("admin: {listen: localhost:9060}\n"),
     "test.yaml:5:17: admin.listen: ", "not an address:port"},
    {"AdminListenWithoutPort", minimal_plus("admin: {listen: 127.0.0.1}\n"),
     "test.yaml:5:17: admin.listen: ", "not an address:port"},
    {"AdminClashesWithSip",
     "listen: [{transport: tcp, address: 127.0.0.1, port: 9060}]\nupstream: {uri: \"sip:127.0.0.1;transport=tcp\"}\n"
     "flow_tokens: {secret: \"hex:000102030405060708090a0b0c0d0e0f\"}\nadmin: {listen: \"127.0.0.1:9060\"}\n",
     "test.yaml:4:17: admin.listen: ", "is also listen[0]"},
    {"LogLevelBad", minimal_plus("log: {level: verbose}\n"),
     "test.yaml:5:14: log.level: ", "'verbose' is not a log level (trace, debug, info, warn, error, critical, off)"},
    {"LogComponentBad", minimal_plus("log:\n  components: {media: debug}\n"),
     "test.yaml:6:16: log.components.media: ", "unknown key"},
    {"LogComponentLevelBad", minimal_plus("log:\n  components: {nat: loud}\n"),
     "test.yaml:6:21: log.components.nat: ", "not a log level"},
};

INSTANTIATE_TEST_SUITE_P(Refused, ConfigErrorTest, ::testing::ValuesIn(kBadCases),
                         [](const ::testing::TestParamInfo<BadCase>& test) { return std::string(test.param.name); });

TEST_F(ConfigTest, TlsFilesThatAreDirectoriesAreRefused) {
  fs::create_directories(dir_ / "cert.pem");
  write("key.pem", "k");
  std::string error = error_of(R"(listen: [{transport: tls, address: 127.0.0.1}]
tls: {certificate: cert.pem, private_key: key.pem}
upstream: {uri: "sips:127.0.0.1"}
flow_tokens: {secret: "hex:000102030405060708090a0b0c0d0e0f"}
)");
  EXPECT_THAT(error, StartsWith("test.yaml:2:20: tls.certificate: "));
  EXPECT_THAT(error, HasSubstr("not a regular file"));
}

TEST_F(ConfigTest, ShortSecretFileIsRefused) {
  write("k", "short");
  std::string error = error_of(R"(listen: [{transport: udp, address: 127.0.0.1}]
upstream: {uri: "sip:127.0.0.1"}
flow_tokens: {secret_file: k}
)");
  EXPECT_EQ(error,
            "test.yaml:3:28: flow_tokens.secret_file: the key is 5 bytes; at least 16 are required (32 recommended)");
}

// --- the shipped examples ---

#ifndef PINHOLE_SOURCE_DIR
#error "PINHOLE_SOURCE_DIR must be defined (tests/unit/CMakeLists.txt)"
#endif

TEST_F(ConfigTest, EveryExampleParses) {
  fs::path examples = fs::path(PINHOLE_SOURCE_DIR) / "examples";
  size_t count = 0;
  for (const auto& entry : fs::directory_iterator(examples)) {
    if (entry.path().extension() != ".yaml") continue;
    ++count;
    // Their certificates and keys live on the machines they are for, not here.
    ParseOptions options;
    options.check_files = false;
    auto r = load_config_file(entry.path().string(), options);
    EXPECT_TRUE(r.ok()) << entry.path() << ": " << r.error().what;
  }
  EXPECT_GE(count, 2u);
}

TEST_F(ConfigTest, MakeRunConfigFindsItsGeneratedCertificate) {
  // examples/pinhole.yaml names ../build/run/tls/{cert,key}.pem relative to itself: lay the same
  // tree out here, with the example's text, and check the files are found where make run puts them.
  std::ifstream in(fs::path(PINHOLE_SOURCE_DIR) / "examples" / "pinhole.yaml");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_FALSE(text.empty());
  write("build/run/tls/cert.pem", "c");
  write("build/run/tls/key.pem", "k");
  std::string path = write("examples/pinhole.yaml", text);
  auto r = load_config_file(path);
  ASSERT_TRUE(r.ok()) << r.error().what;
  EXPECT_EQ(r->transport.tls.certificate_file, (dir_ / "build/run/tls/cert.pem").string());
  ASSERT_EQ(r->transport.listeners.size(), 3u);
  EXPECT_EQ(r->transport.listeners[2].bind.to_string(), "127.0.0.1:5061");
  EXPECT_TRUE(r->proxy.upstream.uri.empty());  // a registrar serving its site alone
  EXPECT_TRUE(r->registrar.enabled);
  EXPECT_TRUE(r->auth.enabled);
  EXPECT_EQ(r->store, "sqlite://" + (dir_ / "build/run/pinhole.db").lexically_normal().string());
  EXPECT_EQ(r->admin.listen.to_string(), "127.0.0.1:9060");
  EXPECT_EQ(r->proxy.flow_token_key.size(), 32u);
}

// --- registrar, auth, store --------------------------------------------------------------------

constexpr std::string_view kRegistrarOnly = R"(listen:
  - {transport: udp, address: 127.0.0.1}
flow_tokens: {secret: "hex:000102030405060708090a0b0c0d0e0f"}
registrar:
  domains: [Example.COM]
)";

TEST_F(ConfigTest, RegistrarNeedsNoUpstreamAndGetsItsDefaults) {
  auto r = parse(kRegistrarOnly);
  ASSERT_TRUE(r.ok()) << r.error().what;
  EXPECT_TRUE(r->registrar.enabled);
  EXPECT_TRUE(r->proxy.upstream.uri.empty());
  EXPECT_EQ(r->registrar.config.domains, std::vector<std::string>{"example.com"});
  // A registrar domain is also one of "us".
  EXPECT_THAT(r->proxy.local_domains, ::testing::Contains("example.com"));
  EXPECT_EQ(r->registrar.config.min_expires, 60u);
  EXPECT_EQ(r->registrar.config.nat_udp_lease, 60u);
  EXPECT_TRUE(r->auth.enabled);  // on by default with the registrar
  EXPECT_TRUE(r->auth.register_requests);
  EXPECT_EQ(r->auth.nonce_lifetime, std::chrono::seconds(300));
  EXPECT_EQ(r->store, "sqlite:///var/lib/pinhole/pinhole.db");
  EXPECT_FALSE(r->node_id.empty());
}

TEST_F(ConfigTest, RegistrarKeysLand) {
  auto r = parse(std::string(kRegistrarOnly) + R"(  min_expires: 30s
  max_expires: 2h
  default_expires: 10m
  nat_udp_lease: 45s
  max_contacts: 8
  max_bindings_per_aor: 4
  outbound_flow_timer: 25s
auth: {nonce_lifetime: 2m, algorithms: [MD5], requests: false, secret: "hex:00112233445566778899aabbccddeeff"}
store: sqlite://data/reg.db
node_id: edge-a
)");
  ASSERT_TRUE(r.ok()) << r.error().what;
  const auto& c = r->registrar.config;
  EXPECT_EQ(c.min_expires, 30u);
  EXPECT_EQ(c.max_expires, 7200u);
  EXPECT_EQ(c.default_expires, 600u);
  EXPECT_EQ(c.nat_udp_lease, 45u);
  EXPECT_EQ(c.max_contacts, 8u);
  EXPECT_EQ(c.max_bindings_per_aor, 4u);
  EXPECT_EQ(c.outbound_flow_timer, 25u);
  EXPECT_EQ(r->auth.nonce_lifetime, std::chrono::seconds(120));
  EXPECT_TRUE(r->auth.md5);
  EXPECT_FALSE(r->auth.sha256);
  EXPECT_FALSE(r->auth.other_requests);
  EXPECT_EQ(r->auth.secret.size(), 16u);
  // Relative store paths are taken from the config's directory and made absolute.
  EXPECT_EQ(r->store, "sqlite://" + (dir_ / "data/reg.db").lexically_normal().string());
  EXPECT_EQ(r->node_id, "edge-a");
}

TEST_F(ConfigTest, RegistrarErrorsNameTheKey) {
  EXPECT_THAT(error_of(std::string(kRegistrarOnly) + "  min_expires: 2h\n  max_expires: 1h\n"),
              HasSubstr("registrar.min_expires: is above max_expires (3600s)"));
  EXPECT_THAT(error_of(std::string(kRegistrarOnly) + "  nat_udp_lease: 30s\n"),
              HasSubstr("registrar.nat_udp_lease: is below min_expires (60s)"));
  EXPECT_THAT(error_of(std::string(kRegistrarOnly) + "  max_contacts: 0\n"), HasSubstr("registrar.max_contacts"));
  EXPECT_THAT(error_of(std::string(kRegistrarOnly) + "store: postgres://x\n"), HasSubstr("is not a store URL"));
  EXPECT_THAT(error_of(std::string(kRegistrarOnly) + "node_id: \"a b\"\n"), HasSubstr("node_id: must be"));
  EXPECT_THAT(error_of(minimal_plus("auth: {enabled: true}\n")), HasSubstr("needs the registrar"));
  EXPECT_THAT(error_of(std::string(kRegistrarOnly) + "auth: {algorithms: [MD5, MD5]}\n"), HasSubstr("listed twice"));
  EXPECT_THAT(error_of(std::string(kRegistrarOnly) + "auth: {algorithms: [SHA-512]}\n"),
              HasSubstr("is not one of: SHA-256, MD5"));
  EXPECT_THAT(error_of(std::string(kRegistrarOnly) + "auth: {algorithms: []}\n"), HasSubstr("must list"));
  EXPECT_THAT(error_of(R"(listen:
  - {transport: udp, address: 127.0.0.1}
flow_tokens: {secret: "hex:000102030405060708090a0b0c0d0e0f"}
registrar: {domains: []}
)"),
              HasSubstr("registrar.domains: must name at least one domain"));
}

TEST_F(ConfigTest, BorderModeDefaultsAndKeys) {
  auto r = parse(minimal_plus("border: {}\n"));
  ASSERT_TRUE(r.ok()) << r.error().what;
  EXPECT_TRUE(r->border.enabled);
  EXPECT_EQ(r->border.config.lease, std::chrono::seconds(60));
  EXPECT_EQ(r->border.config.refresh_margin, std::chrono::seconds(30));
  EXPECT_TRUE(r->border.config.absorb_rebinding);
  r =
      parse(minimal_plus("border: {nat_udp_lease: 25s, refresh_margin: 10s, absorb_rebinding: false, "
                         "max_bindings: 500}\n"));
  ASSERT_TRUE(r.ok()) << r.error().what;
  EXPECT_EQ(r->border.config.lease, std::chrono::seconds(25));
  EXPECT_EQ(r->border.config.refresh_margin, std::chrono::seconds(10));
  EXPECT_FALSE(r->border.config.absorb_rebinding);
  EXPECT_EQ(r->border.config.max_bindings, 500u);
  EXPECT_FALSE(parse(kMinimal)->border.enabled);
}

TEST_F(ConfigTest, BorderModeErrors) {
  EXPECT_THAT(error_of(std::string(kRegistrarOnly) + "border: {}\n"),
              HasSubstr("cannot be combined with `registrar:`"));
  EXPECT_THAT(error_of(minimal_plus("border: {lease: 5s}\n")), HasSubstr("border.lease"));
  EXPECT_THAT(error_of(minimal_plus("border: {refresh_margin: 0s}\n")), HasSubstr("border.refresh_margin"));
}

TEST_F(ConfigTest, WithoutRegistrarStoreIsMemoryAndUpstreamRequired) {
  auto r = parse(kMinimal);
  ASSERT_TRUE(r.ok()) << r.error().what;
  EXPECT_FALSE(r->registrar.enabled);
  EXPECT_FALSE(r->auth.enabled);
  EXPECT_EQ(r->store, "memory:");
  EXPECT_THAT(error_of(R"(listen:
  - {transport: udp, address: 127.0.0.1}
flow_tokens: {secret: "hex:000102030405060708090a0b0c0d0e0f"}
)"),
              HasSubstr("upstream"));
}

}  // namespace
}  // namespace pinhole::app
