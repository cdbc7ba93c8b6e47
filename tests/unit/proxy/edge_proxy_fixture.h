// The edge-mode EdgeProxy under test, shared by the proxy tests: a fake transport (two
// listeners), a manual clock, two upstream targets, a flow token codec; deliver() hands the proxy
// a message as the transport would, answer() builds the next hop's response.
#pragma once

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <string_view>

#include "fake_transport.h"
#include "proxy/edge_proxy.h"

namespace pinhole::proxy::fakes {

using net::Transport;

inline const net::Flow kClientUdp{Transport::kUdp, 0, *net::Endpoint::parse("198.51.100.7:40000"), 0};
inline const net::Flow kClientTcp{Transport::kTcp, 1, *net::Endpoint::parse("198.51.100.8:41000"), 5};
inline const net::Flow kUpstream{Transport::kUdp, 0, *net::Endpoint::parse("203.0.113.20:5060"), 0};

class EdgeProxyFixture : public ::testing::Test {
 protected:
  EdgeProxyFixture()
      : codec_(make_codec()),
        identity_(transport_.local_sockets()),
        metrics_(registry_),
        shared_{.config = config_,
                .transport = transport_,
                .identity = identity_,
                .tokens = codec_,
                .aliases = aliases_,
                .upstream = [this] { return targets_; },
                .metrics = metrics_,
                .log = std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>()),
                .workers = {}},
        proxy_(shared_, 0, txn::TimerConfig{}, clock_) {
    shared_.workers.push_back(&proxy_);
    auto t = std::make_shared<UpstreamTargets>();
    t->push_back({Transport::kUdp, *net::Endpoint::parse("203.0.113.20:5060"), ""});
    t->push_back({Transport::kUdp, *net::Endpoint::parse("203.0.113.21:5060"), ""});
    targets_ = t;
  }

  static nat::FlowTokenCodec make_codec() {
    auto c = nat::FlowTokenCodec::create("0123456789abcdef0123456789abcdef");
    return std::move(c.value());
  }
  void deliver(const net::Flow& flow, std::string_view text) {
    auto m =
        sip::Message::parse(text, net::is_stream(flow.transport) ? sip::Framing::kStream : sip::Framing::kDatagram);
    ASSERT_TRUE(m.ok()) << m.error().what << "\n" << text;
    proxy_.on_message(transport::Inbound{std::move(m.value()), flow, 0});
  }
  // A response to `request` (as the next hop got it) with `status`.
  static std::string answer(const sip::Message& request, int status, std::string_view extra = "") {
    std::string out = "SIP/2.0 " + std::to_string(status) + " X\r\n";
    for (const auto& h : request.headers()) {
      if (h.kind == sip::HeaderKind::kVia || h.kind == sip::HeaderKind::kFrom || h.kind == sip::HeaderKind::kCallId ||
          h.kind == sip::HeaderKind::kCSeq || h.kind == sip::HeaderKind::kRecordRoute) {
        out.append(h.name).append(": ").append(h.value).append("\r\n");
      }
      if (h.kind == sip::HeaderKind::kTo)
        out.append("To: ").append(h.value).append(status > 100 ? ";tag=u1" : "").append("\r\n");
    }
    out.append(extra).append("Content-Length: 0\r\n\r\n");
    return out;
  }

  ProxyConfig config_;
  FakeTransport transport_;
  nat::FlowTokenCodec codec_;
  LocalIdentity identity_;
  AliasTable aliases_;
  MetricsRegistry registry_;
  ProxyMetrics metrics_;
  std::shared_ptr<const UpstreamTargets> targets_;
  ManualClock clock_{TimePoint{} + std::chrono::hours(1)};
  ProxyShared shared_;
  EdgeProxy proxy_;
};

}  // namespace pinhole::proxy::fakes
