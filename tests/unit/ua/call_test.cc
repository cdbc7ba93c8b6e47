// Calls end to end over loopback: the UserAgent against a scripted proxy (fake_proxy.h) that
// plays the far side of the dialog and the far end's RTP. Real sockets on 127.0.0.1, every wait
// bounded, no sleep deciding an outcome and no timing assertion (short timers only shorten the
// waits).
#include <gtest/gtest.h>

#include <future>
#include <set>
#include <string>

#include "fake_proxy.h"
#include "sdp/session_description.h"
#include "sip/auth.h"
#include "sip/builder.h"
#include "ua/user_agent.h"
#include "ua_test_support.h"

namespace pinhole::ua {
namespace {

using std::chrono::milliseconds;
using test::Events;
using test::FakeProxy;
using test::header;
using test::make_ua;
using test::RtpPeer;

UaConfig base_config(const FakeProxy& proxy) {
  UaConfig c;
  c.aor = "sip:alice@example.com";
  c.password = "secret";
  c.proxy.uri = proxy.uri();
  c.tls_ca_file = proxy.ca_file();
  c.instance_id = "urn:uuid:11111111-2222-4333-8444-555555555555";
  return c;
}

// stop() unregisters and waits for the answer: the proxy keeps answering REGISTERs meanwhile.
void stop_registered(UserAgent& ua, FakeProxy& proxy) {
  auto stopped = std::async(std::launch::async, [&ua] { ua.stop(); });
  while (stopped.wait_for(milliseconds(0)) != std::future_status::ready) {
    proxy.next([](const sip::Message& m) { return m.is_request() && m.method() == sip::Method::kRegister; },
               milliseconds(50));
  }
}

std::string far_sdp(uint16_t rtp_port, int version, std::string_view formats = "0 101") {
  return "v=0\r\no=far 42 " + std::to_string(version) +
         " IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio " + std::to_string(rtp_port) +
         " RTP/AVP " + std::string(formats) + "\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n";
}

// A request from the far side to the UA, through the proxy (its Via, our Record-Route).
std::string to_ua(const FakeProxy& proxy, std::string_view method, const std::string& request_uri,
                  const std::string& call_id, uint32_t cseq, const std::string& branch, const std::string& to_tag,
                  const std::string& body = {}) {
  sip::RequestBuilder b(method, request_uri);
  b.header("Via", "SIP/2.0/" + proxy.via_transport() + " " + proxy.sent_by() + ";branch=" + branch)
      .header("Max-Forwards", "69")
      .header("Record-Route", "<sip:" + proxy.sent_by() + ";lr>")
      .header("From", "\"Bob\" <sip:bob@example.com>;tag=bobtag")
      .header("To", "<sip:alice@example.com>" + (to_tag.empty() ? std::string() : ";tag=" + to_tag))
      .header("Call-ID", call_id)
      .header("CSeq", std::to_string(cseq) + " " + std::string(method))
      .header("Contact", "<sip:bob@192.0.2.9:5070>");
  if (!body.empty()) b.body("application/sdp", body);
  return b.build();
}

// A response of the far side to the UA's request, with an SDP body when given.
std::string from_far(const sip::Message& request, uint16_t status, const std::string& headers,
                     const std::string& body = {}) {
  sip::ResponseBuilder b(request, status);
  b.to_tag("bobtag");
  if (!body.empty()) b.body("application/sdp", body);
  std::string text = b.build();
  text.insert(text.find("\r\n\r\n") + 2, headers);
  return text;
}

std::string to_tag_of(const sip::Message& m) {
  auto to = m.to();
  return to.ok() && (*to)->has_tag ? std::string((*to)->tag) : std::string();
}

std::string branch_of(const sip::Message& m) {
  auto via = m.top_via();
  return via.ok() ? std::string((*via)->branch) : std::string();
}

std::string cseq_of(const sip::Message& m) { return std::string(header(m, "CSeq")); }

// The audio port and c= address of an SDP body (parsed by the SDP layer, not the UA's code).
struct SdpAudio {
  uint16_t port = 0;
  std::string address;
  std::vector<std::string> formats;
};
std::optional<SdpAudio> audio_of(std::string_view body) {
  auto sdp = sdp::parse_sdp(body);
  if (!sdp.ok() || sdp->media.empty() || !sdp->media[0].connection) return std::nullopt;
  SdpAudio out;
  out.port = sdp->media[0].port;
  out.address = std::string(sdp->media[0].connection->address_text);
  for (auto f : sdp->media[0].formats) out.formats.emplace_back(f);
  return out;
}

std::vector<std::string> routes_of(const sip::Message& m) {
  std::vector<std::string> out;
  auto routes = m.routes();
  if (routes.ok()) {
    for (const auto& r : *routes) out.emplace_back(r.raw);
  }
  return out;
}

UaEvent last_of(Events& events, UaEventKind kind) {
  UaEvent found;
  for (auto& e : events.all()) {
    if (e.kind == kind) found = e;
  }
  return found;
}

// --- incoming calls: auto-answer, echo, re-INVITE, BYE ------------------------------------------

class IncomingCall : public ::testing::TestWithParam<net::Transport> {};

TEST_P(IncomingCall, AnsweredEchoesRtpSurvivesReInviteAndEndsOnBye) {
  FakeProxy proxy(GetParam());
  Events events;
  auto config = base_config(proxy);
  config.auto_answer = true;
  config.media = MediaMode::kEcho;
  auto ua = make_ua(config, events);
  ASSERT_NE(ua, nullptr);
  ua->set_inspector([](std::string& message) { message.insert(message.find("\r\n") + 2, "X-Inspected: yes\r\n"); });
  ASSERT_TRUE(ua->start().ok());
  ASSERT_TRUE(proxy.wait_registered());
  const std::string contact = proxy.registered_contact();
  ASSERT_FALSE(contact.empty());

  RtpPeer far;
  proxy.send(to_ua(proxy, "INVITE", contact, "call-1", 1, "z9hG4bKinv1", "", far_sdp(far.port(), 1)));
  auto ringing = proxy.response(180, sip::Method::kInvite);
  ASSERT_NE(ringing, nullptr);
  std::string tag = to_tag_of(*ringing);
  EXPECT_FALSE(tag.empty());
  auto ok = proxy.response(200, sip::Method::kInvite);
  ASSERT_NE(ok, nullptr);
  EXPECT_EQ(header(*ok, "X-Inspected"), "yes");  // calls pass through the inspector too
  EXPECT_EQ(to_tag_of(*ok), tag);
  EXPECT_EQ(header(*ok, "Record-Route"), "<sip:" + proxy.sent_by() + ";lr>");
  EXPECT_FALSE(header(*ok, "Contact").empty());
  auto answer = audio_of(ok->body());
  ASSERT_TRUE(answer.has_value());
  EXPECT_EQ(answer->address, "127.0.0.1");  // the RTP socket's own address
  EXPECT_EQ(answer->formats, (std::vector<std::string>{"0", "101"}));
  ASSERT_NE(answer->port, 0);
  ASSERT_TRUE(events.wait(UaEventKind::kIncomingCall));
  ASSERT_TRUE(events.wait(UaEventKind::kAnswered));
  uint64_t call = last_of(events, UaEventKind::kIncomingCall).call;
  EXPECT_NE(call, 0u);

  proxy.send(to_ua(proxy, "ACK", contact, "call-1", 1, "z9hG4bKack1", tag));

  // 20 packets out, 20 echoed back: our payloads under the UA's SSRC and sequence, from the port
  // its SDP advertised (symmetric RTP).
  constexpr uint32_t kFarSsrc = 0x0badcafe;
  std::set<std::string> sent;
  for (uint16_t i = 0; i < 20; ++i) {
    std::string payload = "payload-" + std::to_string(i) + std::string(150, static_cast<char>('a' + i));
    sent.insert(payload);
    far.send_to(answer->port, RtpPeer::packet(0, static_cast<uint16_t>(5000 + i), 160u * i, kFarSsrc, payload));
  }
  std::set<std::string> echoed;
  std::set<uint32_t> ssrcs;
  std::optional<uint16_t> previous_sequence;
  bool consecutive = true;
  while (echoed.size() < sent.size()) {
    auto p = far.receive();
    if (!p) break;
    EXPECT_EQ(p->from_port, answer->port);
    if (!sent.contains(p->payload)) continue;  // the silence sent to open the path
    echoed.insert(p->payload);
    ssrcs.insert(p->ssrc);
    EXPECT_EQ(p->payload_type, 0);
    if (previous_sequence && static_cast<uint16_t>(*previous_sequence + 1) != p->sequence) consecutive = false;
    previous_sequence = p->sequence;
  }
  EXPECT_EQ(echoed.size(), 20u);
  ASSERT_EQ(ssrcs.size(), 1u);
  EXPECT_NE(*ssrcs.begin(), kFarSsrc);
  EXPECT_TRUE(consecutive);

  // A re-INVITE (a relay or a session refresh) is answered 200 with the same SDP.
  proxy.send(to_ua(proxy, "INVITE", contact, "call-1", 2, "z9hG4bKinv2", tag, far_sdp(far.port(), 2)));
  auto reok = proxy.next([](const sip::Message& m) {
    return m.is_response() && m.status() == 200 && m.cseq().ok() && m.cseq()->number == 2;
  });
  ASSERT_NE(reok, nullptr);
  EXPECT_EQ(reok->body(), ok->body());
  proxy.send(to_ua(proxy, "ACK", contact, "call-1", 2, "z9hG4bKack2", tag));

  // A BYE for a dialog the UA does not know: 481.
  proxy.send(to_ua(proxy, "BYE", contact, "no-such-call", 1, "z9hG4bKbye0", "x"));
  auto unknown = proxy.response(481, sip::Method::kBye);
  ASSERT_NE(unknown, nullptr);
  EXPECT_EQ(header(*unknown, "Call-ID"), "no-such-call");

  proxy.send(to_ua(proxy, "BYE", contact, "call-1", 3, "z9hG4bKbye1", tag));
  auto bye_ok = proxy.response(200, sip::Method::kBye);
  ASSERT_NE(bye_ok, nullptr);
  EXPECT_EQ(header(*bye_ok, "Call-ID"), "call-1");
  ASSERT_TRUE(events.wait(UaEventKind::kCallEnded));
  ASSERT_TRUE(events.wait(UaEventKind::kMediaStats));
  auto stats = last_of(events, UaEventKind::kMediaStats);
  EXPECT_EQ(stats.call, call);
  ASSERT_TRUE(stats.media.has_value());
  EXPECT_EQ(stats.media->packets_received, 20u);
  EXPECT_GE(stats.media->packets_sent, 20u);
  EXPECT_EQ(stats.media->first_sequence, 5000);
  EXPECT_EQ(stats.media->last_sequence, 5019);
  ASSERT_TRUE(stats.media->latched.has_value());
  EXPECT_EQ(stats.media->latched->port, far.port());
  stop_registered(*ua, proxy);
}

INSTANTIATE_TEST_SUITE_P(Transports, IncomingCall,
                         ::testing::Values(net::Transport::kUdp, net::Transport::kTcp, net::Transport::kTls),
                         [](const auto& test_info) { return std::string(net::transport_name(test_info.param)); });

TEST(IncomingCallRefused, WithoutAutoAnswerTheInviteGets480) {
  FakeProxy proxy(net::Transport::kUdp);
  Events events;
  auto ua = make_ua(base_config(proxy), events);
  ASSERT_TRUE(ua->start().ok());
  ASSERT_TRUE(proxy.wait_registered());
  RtpPeer far;
  proxy.send(
      to_ua(proxy, "INVITE", proxy.registered_contact(), "call-2", 1, "z9hG4bKinv9", "", far_sdp(far.port(), 1)));
  ASSERT_NE(proxy.response(480, sip::Method::kInvite), nullptr);
  ASSERT_TRUE(events.wait(UaEventKind::kIncomingCall));
  EXPECT_EQ(events.count(UaEventKind::kAnswered), 0u);
  stop_registered(*ua, proxy);
}

// A registered UDP UA that answers incoming calls only after 60 s (they ring until cancelled),
// and the far end's RTP socket for the INVITEs' SDP.
class RingingUa : public ::testing::Test {
 protected:
  void SetUp() override {
    auto config = base_config(proxy);
    config.auto_answer = true;
    config.answer_after = std::chrono::seconds(60);
    ua = make_ua(config, events);
    ASSERT_TRUE(ua->start().ok());
    ASSERT_TRUE(proxy.wait_registered());
    contact = proxy.registered_contact();
  }
  void TearDown() override {
    if (ua) stop_registered(*ua, proxy);
  }

  FakeProxy proxy{net::Transport::kUdp};
  Events events;
  std::unique_ptr<UserAgent> ua;
  RtpPeer far;
  std::string contact;
};

// CANCELs a ringing incoming call: expects the CANCEL's 200 and the INVITE's 487, which it ACKs.
void cancel_ringing(FakeProxy& proxy, const std::string& contact, const std::string& call_id,
                    const std::string& branch) {
  proxy.send(to_ua(proxy, "CANCEL", contact, call_id, 1, branch, ""));
  ASSERT_NE(proxy.response(200, sip::Method::kCancel), nullptr);
  auto terminated = proxy.response(487, sip::Method::kInvite);
  ASSERT_NE(terminated, nullptr);
  proxy.send(to_ua(proxy, "ACK", contact, call_id, 1, branch, to_tag_of(*terminated)));
}

TEST_F(RingingUa, CancelBeforeAnswerGives200And487) {
  proxy.send(to_ua(proxy, "INVITE", contact, "call-3", 1, "z9hG4bKinv3", "", far_sdp(far.port(), 1)));
  ASSERT_NE(proxy.response(180, sip::Method::kInvite), nullptr);
  cancel_ringing(proxy, contact, "call-3", "z9hG4bKinv3");
  ASSERT_TRUE(events.wait(UaEventKind::kCallEnded));
  EXPECT_EQ(last_of(events, UaEventKind::kCallEnded).status, 487);
  EXPECT_EQ(events.count(UaEventKind::kAnswered), 0u);
}

TEST_F(RingingUa, RetransmittedInviteGetsTheLastResponseAndNoSecondCall) {
  std::string invite = to_ua(proxy, "INVITE", contact, "call-4", 1, "z9hG4bKinv4", "", far_sdp(far.port(), 1));
  proxy.send(invite);
  auto ringing = proxy.response(180, sip::Method::kInvite);
  ASSERT_NE(ringing, nullptr);
  // The proxy did not see our 180 arrive (say): it sends the INVITE again, twice.
  proxy.send(invite);
  auto again = proxy.response(180, sip::Method::kInvite);
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->bytes(), ringing->bytes());  // the INVITE server transaction's last response
  proxy.send(invite);
  ASSERT_NE(proxy.response(180, sip::Method::kInvite), nullptr);
  // Still the one call: the CANCEL ends it, with its one 487.
  cancel_ringing(proxy, contact, "call-4", "z9hG4bKinv4");
  ASSERT_TRUE(events.wait(UaEventKind::kCallEnded));
  EXPECT_EQ(events.count(UaEventKind::kIncomingCall), 1u);
  EXPECT_EQ(events.count(UaEventKind::kCallEnded), 1u);
  // The INVITE once more after the ACK: absorbed (Confirmed), no new call and no 100/180. The
  // OPTIONS behind it on the same socket shows when the UA has seen it.
  proxy.send(invite);
  proxy.send(to_ua(proxy, "OPTIONS", contact, "call-5", 1, "z9hG4bKopt5", ""));
  auto next = proxy.next([](const sip::Message& m) {
    if (!m.is_response()) return false;
    auto cseq = m.cseq();
    // 487 retransmissions (Timer G) sent before our ACK arrived may still be on their way.
    return cseq.ok() &&
           (cseq->method == sip::Method::kOptions || (cseq->method == sip::Method::kInvite && m.status() != 487));
  });
  ASSERT_NE(next, nullptr);
  EXPECT_EQ(next->cseq()->method, sip::Method::kOptions);
  EXPECT_EQ(next->status(), 200);
  EXPECT_EQ(events.count(UaEventKind::kIncomingCall), 1u);
}

// --- outgoing calls --------------------------------------------------------------------------

UaConfig caller_config(const FakeProxy& proxy) {
  auto c = base_config(proxy);
  c.register_binding = false;  // `pinhole-ua call` without --register
  return c;
}

void expect_invite_digest(const sip::Message& invite) {
  auto auth = sip::parse_auth(header(invite, "Authorization"));
  ASSERT_TRUE(auth.ok());
  EXPECT_EQ(auth->uri, "sip:bob@example.com");
  std::string ha1 = test::md5_hex("alice:example.com:secret");
  std::string ha2 = test::md5_hex("INVITE:sip:bob@example.com");
  EXPECT_EQ(auth->response,
            test::md5_hex(ha1 + ":n0nce:" + std::string(auth->nc) + ":" + std::string(auth->cnonce) + ":auth:" + ha2));
}

TEST(OutgoingCall, ChallengeThenAnswerAckRouteSetAndBye) {
  FakeProxy proxy(net::Transport::kUdp);
  Events events;
  auto ua = make_ua(caller_config(proxy), events);
  ASSERT_TRUE(ua->start().ok());
  auto id = ua->call("sip:bob@example.com");
  ASSERT_TRUE(id.ok());

  auto inv1 = proxy.request(sip::Method::kInvite);
  ASSERT_NE(inv1, nullptr);
  EXPECT_EQ(inv1->request_uri().raw, "sip:bob@example.com");
  EXPECT_EQ(cseq_of(*inv1), "1 INVITE");
  EXPECT_TRUE(to_tag_of(*inv1).empty());
  EXPECT_EQ(proxy.registers(), 0u);
  auto offer = audio_of(inv1->body());
  ASSERT_TRUE(offer.has_value());
  EXPECT_EQ(offer->address, "127.0.0.1");
  EXPECT_EQ(offer->formats, (std::vector<std::string>{"0", "8", "101"}));

  proxy.send(from_far(
      *inv1, 401, "WWW-Authenticate: Digest realm=\"example.com\", nonce=\"n0nce\", qop=\"auth\", algorithm=MD5\r\n"));
  auto ack1 = proxy.request(sip::Method::kAck);
  ASSERT_NE(ack1, nullptr);
  EXPECT_EQ(branch_of(*ack1), branch_of(*inv1));  // non-2xx ACK: the INVITE's transaction
  EXPECT_EQ(cseq_of(*ack1), "1 ACK");
  EXPECT_EQ(to_tag_of(*ack1), "bobtag");

  auto inv2 = proxy.request(sip::Method::kInvite);
  ASSERT_NE(inv2, nullptr);
  EXPECT_EQ(cseq_of(*inv2), "2 INVITE");
  EXPECT_EQ(header(*inv2, "Call-ID"), header(*inv1, "Call-ID"));
  EXPECT_NE(branch_of(*inv2), branch_of(*inv1));
  expect_invite_digest(*inv2);

  proxy.send(from_far(*inv2, 180, ""));
  ASSERT_TRUE(events.wait(UaEventKind::kRinging));
  RtpPeer far;
  std::string answer_headers =
      "Record-Route: <sip:p1.example.net;lr>\r\nRecord-Route: <sip:p2.example.net;lr>\r\n"
      "Contact: <sip:bob@192.0.2.9:5070>\r\n";
  std::string ok = from_far(*inv2, 200, answer_headers, far_sdp(far.port(), 1, "8 101"));
  proxy.send(ok);
  auto ack2 = proxy.request(sip::Method::kAck);
  ASSERT_NE(ack2, nullptr);
  EXPECT_NE(branch_of(*ack2), branch_of(*inv2));  // 2xx ACK: a transaction of its own
  EXPECT_EQ(ack2->request_uri().raw, "sip:bob@192.0.2.9:5070");
  EXPECT_EQ(routes_of(*ack2), (std::vector<std::string>{"<sip:p2.example.net;lr>", "<sip:p1.example.net;lr>"}));
  EXPECT_EQ(cseq_of(*ack2), "2 ACK");
  EXPECT_EQ(to_tag_of(*ack2), "bobtag");
  ASSERT_TRUE(events.wait(UaEventKind::kAnswered));
  EXPECT_EQ(last_of(events, UaEventKind::kAnswered).call, *id);

  // The 2xx again (our ACK was lost): ACKed again.
  proxy.send(ok);
  auto ack3 = proxy.request(sip::Method::kAck);
  ASSERT_NE(ack3, nullptr);
  EXPECT_EQ(ack3->bytes(), ack2->bytes());  // the same ACK, built once by the call

  ua->hangup(*id);
  auto bye = proxy.request(sip::Method::kBye);
  ASSERT_NE(bye, nullptr);
  EXPECT_EQ(bye->request_uri().raw, "sip:bob@192.0.2.9:5070");
  EXPECT_EQ(routes_of(*bye), routes_of(*ack2));
  EXPECT_EQ(cseq_of(*bye), "3 BYE");
  EXPECT_EQ(to_tag_of(*bye), "bobtag");
  proxy.send(from_far(*bye, 200, ""));
  ASSERT_TRUE(events.wait(UaEventKind::kCallEnded));
  EXPECT_EQ(last_of(events, UaEventKind::kCallEnded).call, *id);
  ua->stop();
}

TEST(OutgoingCall, CancelAfterRingingAcksThe487) {
  FakeProxy proxy(net::Transport::kUdp);
  Events events;
  auto ua = make_ua(caller_config(proxy), events);
  ASSERT_TRUE(ua->start().ok());
  auto id = ua->call("sip:bob@example.com");
  ASSERT_TRUE(id.ok());
  auto inv = proxy.request(sip::Method::kInvite);
  ASSERT_NE(inv, nullptr);
  proxy.send(from_far(*inv, 180, ""));
  ASSERT_TRUE(events.wait(UaEventKind::kRinging));
  ua->cancel(*id);
  auto cancel = proxy.request(sip::Method::kCancel);
  ASSERT_NE(cancel, nullptr);
  EXPECT_EQ(branch_of(*cancel), branch_of(*inv));
  EXPECT_EQ(cseq_of(*cancel), "1 CANCEL");
  EXPECT_EQ(cancel->request_uri().raw, inv->request_uri().raw);
  EXPECT_TRUE(to_tag_of(*cancel).empty());
  proxy.send(from_far(*cancel, 200, ""));
  proxy.send(from_far(*inv, 487, ""));
  auto ack = proxy.request(sip::Method::kAck);
  ASSERT_NE(ack, nullptr);
  EXPECT_EQ(branch_of(*ack), branch_of(*inv));
  EXPECT_EQ(cseq_of(*ack), "1 ACK");
  ASSERT_TRUE(events.wait(UaEventKind::kCallEnded));
  EXPECT_EQ(last_of(events, UaEventKind::kCallEnded).status, 487);
  EXPECT_EQ(events.count(UaEventKind::kAnswered), 0u);
  ua->stop();
}

TEST(OutgoingCall, CancelBeforeAnyProvisionalWaitsForOne) {
  FakeProxy proxy(net::Transport::kUdp);
  Events events;
  auto ua = make_ua(caller_config(proxy), events);
  ASSERT_TRUE(ua->start().ok());
  auto id = ua->call("sip:bob@example.com");
  ASSERT_TRUE(id.ok());
  auto inv = proxy.request(sip::Method::kInvite);
  ASSERT_NE(inv, nullptr);
  ua->cancel(*id);
  // RFC 3261 §9.1: no CANCEL before a provisional response; it goes once the 100 arrives.
  proxy.send(from_far(*inv, 100, ""));
  auto cancel = proxy.request(sip::Method::kCancel);
  ASSERT_NE(cancel, nullptr);
  EXPECT_EQ(branch_of(*cancel), branch_of(*inv));
  proxy.send(from_far(*inv, 487, ""));
  ASSERT_NE(proxy.request(sip::Method::kAck), nullptr);
  ASSERT_TRUE(events.wait(UaEventKind::kCallEnded));
  ua->stop();
}

TEST(OutgoingCall, UnansweredInviteIsRetransmittedOverUdpThenRejected) {
  FakeProxy proxy(net::Transport::kUdp);
  Events events;
  auto config = caller_config(proxy);
  config.t1 = milliseconds(20);  // short Timer A so that the test waits little
  auto ua = make_ua(config, events);
  ASSERT_TRUE(ua->start().ok());
  ASSERT_TRUE(ua->call("sip:bob@example.com").ok());
  auto first = proxy.request(sip::Method::kInvite);
  ASSERT_NE(first, nullptr);
  auto again = proxy.request(sip::Method::kInvite);  // the first one is not answered
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->bytes(), first->bytes());
  proxy.send(from_far(*again, 486, ""));
  auto ack = proxy.request(sip::Method::kAck);
  ASSERT_NE(ack, nullptr);
  EXPECT_EQ(branch_of(*ack), branch_of(*first));
  ASSERT_TRUE(events.wait(UaEventKind::kCallFailed));
  EXPECT_EQ(last_of(events, UaEventKind::kCallFailed).status, 486);
  ua->stop();
}

TEST(OutgoingCall, TimerBFailsACallNobodyAnswers) {
  FakeProxy proxy(net::Transport::kUdp);
  Events events;
  auto config = caller_config(proxy);
  config.t1 = milliseconds(10);
  config.transaction_timeout = milliseconds(200);
  auto ua = make_ua(config, events);
  ASSERT_TRUE(ua->start().ok());
  ASSERT_TRUE(ua->call("sip:bob@example.com").ok());
  ASSERT_TRUE(events.wait(UaEventKind::kCallFailed));
  EXPECT_EQ(last_of(events, UaEventKind::kCallFailed).status, 408);
  ua->stop();
}

TEST(OutgoingCall, ToneModeSends20MsPcmuFramesFromTheAdvertisedPort) {
  FakeProxy proxy(net::Transport::kTcp);
  Events events;
  auto ua = make_ua(caller_config(proxy), events);
  ASSERT_TRUE(ua->start().ok());
  auto id = ua->call("sip:bob@example.com", CallOptions{MediaMode::kTone});
  ASSERT_TRUE(id.ok());
  auto inv = proxy.request(sip::Method::kInvite);
  ASSERT_NE(inv, nullptr);
  auto offer = audio_of(inv->body());
  ASSERT_TRUE(offer.has_value());
  RtpPeer far;
  proxy.send(from_far(*inv, 200, "Contact: <sip:bob@192.0.2.9:5070;transport=tcp>\r\n", far_sdp(far.port(), 1)));
  ASSERT_NE(proxy.request(sip::Method::kAck), nullptr);
  std::vector<test::RtpPacket> packets;
  while (packets.size() < 5) {
    auto p = far.receive();
    if (!p) break;
    packets.push_back(*p);
  }
  ASSERT_EQ(packets.size(), 5u);
  EXPECT_TRUE(packets[0].marker);
  for (size_t i = 0; i < packets.size(); ++i) {
    EXPECT_EQ(packets[i].payload_type, 0);
    EXPECT_EQ(packets[i].payload.size(), 160u);
    EXPECT_EQ(packets[i].from_port, offer->port);
    EXPECT_NE(packets[i].payload.find_first_not_of(packets[i].payload[0]), std::string::npos);  // not silence
    if (i > 0) {
      EXPECT_EQ(static_cast<uint16_t>(packets[i - 1].sequence + 1), packets[i].sequence);
      EXPECT_EQ(packets[i - 1].timestamp + 160, packets[i].timestamp);
      EXPECT_EQ(packets[i - 1].ssrc, packets[i].ssrc);
    }
  }
  ua->hangup(*id);
  auto bye = proxy.request(sip::Method::kBye);
  ASSERT_NE(bye, nullptr);
  proxy.send(from_far(*bye, 200, ""));
  ASSERT_TRUE(events.wait(UaEventKind::kMediaStats));
  auto stats = last_of(events, UaEventKind::kMediaStats);
  ASSERT_TRUE(stats.media.has_value());
  EXPECT_GE(stats.media->packets_sent, 5u);
  EXPECT_EQ(stats.media->packets_received, 0u);
  ua->stop();
}

TEST(OutgoingCall, BadTargetIsRefusedAtOnce) {
  FakeProxy proxy(net::Transport::kUdp);
  Events events;
  auto ua = make_ua(caller_config(proxy), events);
  ASSERT_TRUE(ua->start().ok());
  auto id = ua->call("mailto:bob@example.com");
  ASSERT_FALSE(id.ok());
  EXPECT_EQ(id.error().status, 400);
  ua->stop();
}

}  // namespace
}  // namespace pinhole::ua
