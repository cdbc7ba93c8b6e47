// The REGISTER state machine driven by hand: a fake `now`, responses built from the requests it
// produced, so every step (challenge, learning, stale removal, refresh, backoff) is checked
// without sockets or waiting.
#include "ua/registration.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

#include <array>
#include <string>
#include <utility>
#include <vector>

#include "sip/auth.h"
#include "sip/builder.h"
#include "sip/message.h"

namespace pinhole::ua {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

constexpr std::string_view kInstance = "urn:uuid:00000000-0000-4000-8000-000000000001";

UaConfig make_config() {
  UaConfig c;
  c.aor = "sip:alice@example.com";
  c.password = "secret";
  c.instance_id = std::string(kInstance);
  c.expires = 600;
  return c;
}

// MD5 written out here, independently of the client's hashing.
std::string md5_hex(const std::string& text) {
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int n = 0;
  EVP_Digest(text.data(), text.size(), out.data(), &n, EVP_md5(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < n; ++i) {
    static constexpr char kDigits[] = "0123456789abcdef";
    hex.push_back(kDigits[out[i] >> 4]);
    hex.push_back(kDigits[out[i] & 0xf]);
  }
  return hex;
}

sip::MessagePtr parse(const std::string& bytes) {
  auto m = sip::Message::parse(bytes, sip::Framing::kDatagram);
  EXPECT_TRUE(m.ok()) << bytes;
  return std::move(m).value();
}

// A view into `m`: valid while the message lives.
std::string_view header(const sip::Message& m, std::string_view name) {
  const auto* f = m.header(name);
  return f != nullptr ? f->value : std::string_view();
}

class RegistrationTest : public ::testing::Test {
 protected:
  void SetUp() override { make(make_config()); }
  void make(const UaConfig& config) {
    auto r = Registration::create(config);
    ASSERT_TRUE(r.ok());
    reg_ = std::move(r).value();
  }
  // Starts and brings up a flow; returns the first REGISTER.
  sip::MessagePtr begin(net::Transport transport = net::Transport::kUdp, HostPort local = {"10.0.0.5", 5062}) {
    auto out = reg_->start(now_);
    EXPECT_TRUE(out.want_flow);
    out = reg_->flow_ready(now_, FlowInfo{transport, std::move(local)});
    EXPECT_EQ(out.send.size(), 1u);
    return parse(out.send.at(0));
  }
  // A response to `request` as a server at `seen` (received/rport) would send it.
  std::string respond(const sip::Message& request, uint16_t status, const std::string& headers = {},
                      std::optional<HostPort> seen = std::nullopt) {
    sip::ResponseBuilder b(request, status);
    b.to_tag("srv");
    if (seen) b.via_received(seen->host, seen->port);
    std::string text = b.build();
    // Extra header lines go before the blank line.
    size_t end = text.find("\r\n\r\n");
    text.insert(end + 2, headers);
    return text;
  }
  RegistrationOutput feed(const std::string& response) { return reg_->on_response(*parse(response), now_); }

  static bool has_event(const RegistrationOutput& out, RegistrationEventKind kind) {
    for (const auto& e : out.events)
      if (e.kind == kind) return true;
    return false;
  }
  std::string challenge_headers() {
    return "WWW-Authenticate: Digest realm=\"example.com\", nonce=\"abc\", qop=\"auth\"\r\n";
  }

  std::unique_ptr<Registration> reg_;
  TimePoint now_{seconds(1000)};
};

TEST_F(RegistrationTest, FirstRegisterCarriesFlowAddressAndOutboundParameters) {
  auto r = begin();
  EXPECT_EQ(r->method(), sip::Method::kRegister);
  EXPECT_EQ(r->request_uri().raw, "sip:example.com");
  auto via = r->top_via();
  ASSERT_TRUE(via.ok());
  EXPECT_EQ((*via)->transport, "UDP");
  EXPECT_EQ((*via)->host, "10.0.0.5");
  EXPECT_EQ((*via)->port, 5062);
  EXPECT_TRUE((*via)->has_rport);
  EXPECT_FALSE((*via)->alias);  // UDP: no alias
  auto contacts = r->contacts();
  ASSERT_TRUE(contacts.ok());
  ASSERT_EQ(contacts->size(), 1u);
  const auto& c = contacts->front();
  EXPECT_EQ(c.uri.host, "10.0.0.5");
  EXPECT_EQ(c.uri.port, 5062);
  EXPECT_TRUE(c.uri.has_param("ob"));
  EXPECT_FALSE(c.uri.has_param("transport"));
  EXPECT_EQ(c.instance, "<" + std::string(kInstance) + ">");
  EXPECT_EQ(c.reg_id, "1");
  EXPECT_EQ(header(*r, "Supported"), "path, outbound");
  EXPECT_EQ(r->header("Authorization"), nullptr);
}

TEST_F(RegistrationTest, ChallengeTeachesPublicAddressAndAuthenticatedRegisterCarriesIt) {
  auto first = begin();
  auto out = feed(respond(*first, 401, challenge_headers(), HostPort{"203.0.113.102", 61000}));
  EXPECT_TRUE(has_event(out, RegistrationEventKind::kContactChanged));
  ASSERT_EQ(out.send.size(), 1u);
  auto second = parse(out.send[0]);
  EXPECT_EQ(*second->call_id(), *first->call_id());
  EXPECT_EQ(second->cseq()->number, first->cseq()->number + 1);
  // Contact: the learned address, one binding only (nothing was registered before).
  auto contacts = second->contacts();
  ASSERT_EQ(contacts->size(), 1u);
  EXPECT_EQ((*contacts)[0].uri.host, "203.0.113.102");
  EXPECT_EQ((*contacts)[0].uri.port, 61000);
  // Via still shows the socket's own address.
  EXPECT_EQ((*second->top_via())->host, "10.0.0.5");
  // The digest answers the challenge (RFC 7616 §3.4.1 computed here on its own).
  auto auth = sip::parse_auth(header(*second, "Authorization"));
  ASSERT_TRUE(auth.ok());
  EXPECT_EQ(auth->username, "alice");
  EXPECT_EQ(auth->uri, "sip:example.com");
  EXPECT_EQ(auth->nc, "00000001");
  std::string ha1 = md5_hex("alice:example.com:secret");
  std::string ha2 = md5_hex("REGISTER:sip:example.com");
  EXPECT_EQ(auth->response, md5_hex(ha1 + ":abc:00000001:" + std::string(auth->cnonce) + ":auth:" + ha2));

  auto done = feed(
      respond(*second, 200, "Contact: " + std::string((*contacts)[0].raw) + "\r\n", HostPort{"203.0.113.102", 61000}));
  EXPECT_TRUE(has_event(done, RegistrationEventKind::kRegistered));
  EXPECT_TRUE(done.send.empty());  // nothing stale to remove
  EXPECT_EQ(reg_->state(), RegistrationState::kRegistered);
  EXPECT_EQ(reg_->granted_expires(), 600u);
  ASSERT_TRUE(reg_->next_deadline().has_value());
  EXPECT_EQ(*reg_->next_deadline(), now_ + refresh_delay(600));
}

TEST_F(RegistrationTest, AddressChangeAfterOkReRegistersAndRemovesStaleBinding) {
  auto first = begin();
  auto contact = std::string((*first->contacts())[0].raw);
  auto out = feed(respond(*first, 200, "Contact: " + contact + "\r\n", HostPort{"198.51.100.9", 40000}));
  EXPECT_TRUE(has_event(out, RegistrationEventKind::kRegistered));
  EXPECT_TRUE(has_event(out, RegistrationEventKind::kContactChanged));
  ASSERT_EQ(out.send.size(), 1u);  // at once, not at refresh time
  auto again = parse(out.send[0]);
  auto contacts = again->contacts();
  ASSERT_EQ(contacts->size(), 2u);
  EXPECT_EQ((*contacts)[0].uri.host, "10.0.0.5");
  EXPECT_EQ((*contacts)[0].expires, "0");
  EXPECT_TRUE((*contacts)[0].instance.empty());  // removal by URI, not by instance
  EXPECT_EQ((*contacts)[1].uri.host, "198.51.100.9");
  EXPECT_EQ((*contacts)[1].uri.port, 40000);
  EXPECT_EQ((*contacts)[1].expires, "600");

  auto ok = feed(
      respond(*again, 200, "Contact: " + std::string((*contacts)[1].raw) + "\r\n", HostPort{"198.51.100.9", 40000}));
  EXPECT_TRUE(ok.send.empty());
  // The next refresh carries only the current binding.
  now_ += refresh_delay(600);
  auto refresh = reg_->on_timer(now_);
  ASSERT_EQ(refresh.send.size(), 1u);
  EXPECT_EQ(parse(refresh.send[0])->contacts()->size(), 1u);
}

TEST_F(RegistrationTest, RefreshKeepsContactParametersOverTcp) {
  auto first = begin(net::Transport::kTcp, {"10.0.0.5", 45000});
  auto via = *first->top_via();
  EXPECT_EQ(via->transport, "TCP");
  EXPECT_TRUE(via->alias);
  auto c1 = (*first->contacts())[0];
  EXPECT_EQ(c1.uri.transport(), "tcp");
  feed(respond(*first, 200, "Contact: " + std::string(c1.raw) + ";expires=120\r\n", HostPort{"10.0.0.5", 45000}));
  EXPECT_EQ(reg_->granted_expires(), 120u);
  now_ += refresh_delay(120);
  auto out = reg_->on_timer(now_);
  ASSERT_EQ(out.send.size(), 1u);
  auto refresh = parse(out.send[0]);
  auto c2 = (*refresh->contacts())[0];
  EXPECT_EQ(c2.uri.raw, c1.uri.raw);
  EXPECT_EQ(c2.uri.transport(), "tcp");
  EXPECT_TRUE(c2.uri.has_param("ob"));
  EXPECT_TRUE((*refresh->top_via())->alias);
  EXPECT_EQ(refresh->cseq()->number, first->cseq()->number + 1);
}

TEST_F(RegistrationTest, ForeignContactsNeverReplaceOurs) {
  auto first = begin();
  std::string ours(((*first->contacts())[0]).raw);
  std::string many;
  for (int i = 0; i < 50; ++i) {
    many += "Contact: <sip:alice@192.0.2." + std::to_string(i) +
            ":5060>;expires=3600;+sip.instance=\"<urn:uuid:" + "00000000-0000-4000-8000-0000000001" +
            (i < 10 ? "0" : "") + std::to_string(i) + ">\";reg-id=1\r\n";
  }
  // The registrar wrote ours with its own expires, in the middle of the crowd.
  auto out = feed(respond(*first, 200,
                          many + "Contact: <" + std::string((*first->contacts())[0].uri.raw) +
                              ">;expires=300;+sip.instance=\"<" + std::string(kInstance) + ">\";reg-id=1\r\n"));
  EXPECT_TRUE(has_event(out, RegistrationEventKind::kRegistered));
  EXPECT_TRUE(has_event(out, RegistrationEventKind::kWarning));
  EXPECT_TRUE(out.send.empty());
  EXPECT_EQ(reg_->granted_expires(), 300u);
  EXPECT_EQ(reg_->contact_address(), (HostPort{"10.0.0.5", 5062}));
}

TEST_F(RegistrationTest, OkWithoutOurBindingFallsBackToExpiresHeader) {
  auto first = begin();
  auto out = feed(respond(*first, 200, "Contact: <sip:alice@192.0.2.1>;expires=999\r\nExpires: 77\r\n"));
  EXPECT_TRUE(has_event(out, RegistrationEventKind::kWarning));
  EXPECT_EQ(reg_->granted_expires(), 77u);
}

TEST_F(RegistrationTest, SecondChallengeIsAWrongPasswordAndBacksOff) {
  auto first = begin();
  auto out = feed(respond(*first, 401, challenge_headers()));
  ASSERT_EQ(out.send.size(), 1u);
  auto second = parse(out.send[0]);
  out = feed(respond(*second, 401, challenge_headers()));
  EXPECT_TRUE(has_event(out, RegistrationEventKind::kAuthFailed));
  EXPECT_TRUE(out.send.empty());
  EXPECT_EQ(reg_->state(), RegistrationState::kBackoff);
  // RFC 5626 §4.5: 50–100 % of min(max, 30 s × 2^1).
  auto wait = *reg_->next_deadline() - now_;
  EXPECT_GE(wait, seconds(30));
  EXPECT_LE(wait, seconds(60));
  now_ += wait;
  out = reg_->on_timer(now_);
  ASSERT_EQ(out.send.size(), 1u);  // same flow, tries again
}

TEST_F(RegistrationTest, StaleNonceIsAnsweredAgain) {
  auto first = begin();
  auto out = feed(respond(*first, 401, challenge_headers()));
  auto second = parse(out.send.at(0));
  out = feed(respond(*second, 401,
                     "WWW-Authenticate: Digest realm=\"example.com\", nonce=\"def\", qop=\"auth\", stale=true\r\n"));
  ASSERT_EQ(out.send.size(), 1u);
  auto third_request = parse(out.send[0]);
  auto third = sip::parse_auth(header(*third_request, "Authorization"));
  EXPECT_EQ(third->nonce, "def");
}

std::string branch_of(const sip::Message& m) { return std::string((*m.top_via())->branch); }

TEST_F(RegistrationTest, TransactionTimeoutIsAFlowFailureAndBacksOff) {
  auto first = begin();
  // Retransmissions and Timer F are the transaction table's: nothing to wake up for meanwhile.
  EXPECT_FALSE(reg_->next_deadline().has_value());
  EXPECT_TRUE(reg_->on_timer(now_ + seconds(100)).send.empty());
  // A failure of another (superseded) transaction changes nothing.
  auto out = reg_->on_failure(branch_of(*first) + "X", 408, now_);
  EXPECT_FALSE(out.flow_failed);
  EXPECT_EQ(reg_->state(), RegistrationState::kRegistering);

  out = reg_->on_failure(branch_of(*first), 408, now_);
  EXPECT_TRUE(out.flow_failed);
  ASSERT_TRUE(has_event(out, RegistrationEventKind::kTimeout));
  EXPECT_EQ(out.events.front().status, 408);
  EXPECT_EQ(reg_->state(), RegistrationState::kBackoff);
  ASSERT_TRUE(reg_->next_deadline().has_value());
  EXPECT_GT(*reg_->next_deadline(), now_);
  // A late response to the failed transaction is not ours any more.
  EXPECT_TRUE(feed(respond(*first, 200)).events.empty());
  // After the backoff a new flow is asked for (the old one is dead).
  EXPECT_TRUE(reg_->on_timer(*reg_->next_deadline()).want_flow);
}

TEST_F(RegistrationTest, UnansweredUnregisterEndsTheRegistration) {
  auto first = begin();
  feed(respond(*first, 200, "Contact: " + std::string((*first->contacts())[0].raw) + "\r\n"));
  auto out = reg_->stop(now_);
  ASSERT_EQ(out.send.size(), 1u);
  auto unregister = parse(out.send[0]);
  out = reg_->on_failure(branch_of(*unregister), 503, now_);
  EXPECT_FALSE(out.flow_failed);
  ASSERT_TRUE(has_event(out, RegistrationEventKind::kUnregistered));
  EXPECT_EQ(reg_->state(), RegistrationState::kIdle);
}

TEST_F(RegistrationTest, LostFlowAfterSuccessIsReplacedAtOnceElseAfterBackoff) {
  auto first = begin();
  feed(respond(*first, 200, "Contact: " + std::string((*first->contacts())[0].raw) + "\r\n"));
  auto out = reg_->flow_lost(now_, "test");
  EXPECT_TRUE(out.want_flow);
  EXPECT_EQ(reg_->state(), RegistrationState::kWaitingFlow);
  // The new flow fails too: now the backoff applies (base 90 s after a success).
  out = reg_->flow_lost(now_, "connect refused");
  EXPECT_FALSE(out.want_flow);
  EXPECT_EQ(reg_->state(), RegistrationState::kBackoff);
  auto wait = *reg_->next_deadline() - now_;
  EXPECT_GE(wait, seconds(90));
  EXPECT_LE(wait, seconds(180));
  now_ += wait;
  out = reg_->on_timer(now_);
  EXPECT_TRUE(out.want_flow);
  // The new flow has another local port: the old binding is removed with the new REGISTER.
  out = reg_->flow_ready(now_, FlowInfo{net::Transport::kUdp, {"10.0.0.5", 6000}});
  ASSERT_EQ(out.send.size(), 1u);
  auto replacement = parse(out.send[0]);
  auto contacts = replacement->contacts();
  ASSERT_EQ(contacts->size(), 2u);
  EXPECT_EQ((*contacts)[0].uri.port, 5062);
  EXPECT_EQ((*contacts)[0].expires, "0");
  EXPECT_EQ((*contacts)[1].uri.port, 6000);
}

TEST_F(RegistrationTest, StopUnregistersWithExpiresZero) {
  auto first = begin();
  feed(respond(*first, 200, "Contact: " + std::string((*first->contacts())[0].raw) + "\r\n"));
  auto out = reg_->stop(now_);
  ASSERT_EQ(out.send.size(), 1u);
  auto un = parse(out.send[0]);
  EXPECT_EQ(header(*un, "Expires"), "0");
  EXPECT_EQ((*un->contacts())[0].expires, "0");
  EXPECT_EQ(reg_->state(), RegistrationState::kUnregistering);
  auto done = feed(respond(*un, 200));
  EXPECT_TRUE(has_event(done, RegistrationEventKind::kUnregistered));
  EXPECT_EQ(reg_->state(), RegistrationState::kIdle);
}

TEST_F(RegistrationTest, FlowTimerAndRequireOutboundAreRead) {
  auto first = begin();
  std::string contact = "Contact: " + std::string((*first->contacts())[0].raw) + "\r\n";
  feed(respond(*first, 200, contact + "Require: outbound\r\nFlow-Timer: 25\r\n"));
  EXPECT_EQ(reg_->flow_timer(), std::optional<uint32_t>(25));
  EXPECT_TRUE(reg_->outbound_required());
  auto out = reg_->refresh_now(now_);
  auto again = parse(out.send.at(0));
  auto ok = feed(respond(*again, 200, contact + "Flow-Timer: 0\r\n"));
  EXPECT_TRUE(has_event(ok, RegistrationEventKind::kWarning));
  EXPECT_FALSE(reg_->flow_timer().has_value());
  EXPECT_FALSE(reg_->outbound_required());
}

TEST_F(RegistrationTest, IntervalTooBriefRetriesWithMinExpires) {
  auto first = begin();
  auto out = feed(respond(*first, 423, "Min-Expires: 1800\r\n"));
  ASSERT_EQ(out.send.size(), 1u);
  EXPECT_EQ(header(*parse(out.send[0]), "Expires"), "1800");
}

TEST_F(RegistrationTest, ResponsesForOtherTransactionsAreIgnored) {
  auto first = begin();
  std::string text = respond(*first, 200);
  // Same message with another branch.
  size_t at = text.find("branch=z9hG4bK");
  text.insert(at + 14, "X");
  auto out = feed(text);
  EXPECT_TRUE(out.events.empty());
  EXPECT_EQ(reg_->state(), RegistrationState::kRegistering);
}

TEST(RegistrationTiming, RefreshAndBackoffFollowTheRfcFormulas) {
  EXPECT_EQ(refresh_delay(3600), seconds(3240));
  EXPECT_EQ(refresh_delay(60), seconds(54));  // 60 − max(6, 5)
  EXPECT_EQ(refresh_delay(30), seconds(25));  // 30 − max(3, 5)
  EXPECT_EQ(refresh_delay(8), seconds(4));    // never later than half a short lifetime
  EXPECT_EQ(outbound_backoff_bound(1, false, seconds(30), seconds(90), seconds(1800)), seconds(60));
  EXPECT_EQ(outbound_backoff_bound(2, true, seconds(30), seconds(90), seconds(1800)), seconds(360));
  EXPECT_EQ(outbound_backoff_bound(40, false, seconds(30), seconds(90), seconds(1800)), seconds(1800));
}

TEST(RegistrationCreate, RefusesAnAorWithoutUser) {
  UaConfig c = make_config();
  c.aor = "sip:example.com";
  EXPECT_FALSE(Registration::create(c).ok());
}

}  // namespace
}  // namespace pinhole::ua
