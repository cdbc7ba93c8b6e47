// REGISTER processing (RFC 3261 §10.3, RFC 5626 §6, RFC 3327) on real parsed requests, including
// the RFC 4475 REGISTER torture messages restated here (cparam01, cparam02, regescrt, regbadct).
#include "registrar/register_handler.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "sip/message.h"

namespace pinhole::registrar {
namespace {

using store::BindingRecord;

constexpr int64_t kNow = 1'700'000'000;
constexpr std::string_view kInstance = "<urn:uuid:00000000-0000-1000-8000-000A95A0E128>";

struct Req {
  std::string to = "sip:alice@example.com";
  std::string call_id = "call-1@192.0.2.10";
  uint32_t cseq = 1;
  std::string headers;  // extra lines, each ending CRLF
};

std::string text(const Req& r) {
  return "REGISTER sip:example.com SIP/2.0\r\n"
         "Via: SIP/2.0/UDP 192.0.2.10:5060;branch=z9hG4bK-reg-" +
         std::to_string(r.cseq) +
         "\r\n"
         "Max-Forwards: 70\r\n"
         "From: <sip:alice@example.com>;tag=ft1\r\n"
         "To: <" +
         r.to + ">\r\nCall-ID: " + r.call_id + "\r\nCSeq: " + std::to_string(r.cseq) + " REGISTER\r\n" + r.headers +
         "Content-Length: 0\r\n\r\n";
}

sip::MessagePtr parse(std::string_view bytes) {
  auto m = sip::Message::parse(bytes, sip::Framing::kDatagram);
  EXPECT_TRUE(m.ok()) << (m.ok() ? "" : m.error().what) << "\n" << bytes;
  return m.ok() ? std::move(m).value() : nullptr;
}

// The extra headers of an outcome, parsed back as a response: proves they are well-formed SIP.
struct Response {
  sip::MessagePtr message;
  std::vector<sip::Contact> contacts;
  std::string_view header(std::string_view name) const {
    const sip::HeaderField* h = message->header(name);
    return h ? h->value : std::string_view();
  }
};

Response response(const RegisterOutcome& out) {
  Response r;
  r.message = parse("SIP/2.0 200 OK\r\n" + out.headers + "Content-Length: 0\r\n\r\n");
  if (!r.message) return r;
  auto contacts = r.message->contacts();
  EXPECT_TRUE(contacts.ok());
  if (contacts.ok()) r.contacts.assign(contacts->begin(), contacts->end());
  return r;
}

net::Flow flow(net::Transport transport, uint16_t port) {
  net::Flow f;
  f.transport = transport;
  f.local_socket_id = 1;
  f.remote = *net::Endpoint::parse("203.0.113.5", port);
  f.connection_id = transport == net::Transport::kUdp ? 0 : 77;
  return f;
}

class RegisterHandlerTest : public ::testing::Test {
 protected:
  RegisterHandlerTest() {
    config_.domains = {"example.com"};
    ctx_.flow = flow(net::Transport::kUdp, 40000);
    ctx_.node = "node-a";
    ctx_.now = kNow;
  }

  RegisterOutcome run(const Req& r) { return run_text(text(r)); }
  RegisterOutcome run_text(std::string_view bytes) {
    auto m = parse(bytes);
    if (!m) return RegisterOutcome{.status = 0, .reason = {}, .headers = {}, .saved = {}, .removed = {}, .aor = {}};
    RegisterHandler handler(config_, location_);
    return handler.handle(*m, ctx_);
  }
  std::vector<BindingRecord> bindings(std::string_view aor = "sip:alice@example.com") {
    return location_.lookup(aor, ctx_.now);
  }
  // Registers `contact` with a fresh CSeq on the default Call-ID.
  RegisterOutcome add(std::string_view contact_line) {
    Req r;
    r.cseq = ++cseq_;
    r.headers = std::string(contact_line) + "\r\n";
    return run(r);
  }
  // Expect `out` to be a refusal that changed nothing.
  void expect_refused(const RegisterOutcome& out, uint16_t status, const std::vector<BindingRecord>& before) {
    EXPECT_EQ(out.status, status) << out.reason;
    EXPECT_TRUE(out.saved.empty());
    EXPECT_TRUE(out.removed.empty());
    EXPECT_EQ(bindings(), before);
  }

  RegistrarConfig config_;
  Location location_;
  RegisterContext ctx_;
  uint32_t cseq_ = 100;
};

TEST_F(RegisterHandlerTest, NewBindingIsStoredWithEverythingAboutIt) {
  Req r;
  r.headers =
      "Contact: \"Alice\" <sip:alice@192.168.1.10:5060;transport=udp>\r\n"
      "Expires: 1800\r\n"
      "User-Agent: TestPhone/1.0\r\n";
  ctx_.nat = "contact-private";
  ctx_.flow = flow(net::Transport::kTcp, 40000);  // TCP: no short lease
  auto out = run(r);
  ASSERT_EQ(out.status, 200) << out.reason;
  EXPECT_EQ(out.aor, "sip:alice@example.com");
  ASSERT_EQ(out.saved.size(), 1u);
  const BindingRecord& b = out.saved[0];
  EXPECT_EQ(b.aor, "sip:alice@example.com");
  EXPECT_EQ(b.binding_id, "sip:alice@192.168.1.10:5060;transport=udp");
  EXPECT_EQ(b.contact, "sip:alice@192.168.1.10:5060;transport=udp");
  EXPECT_EQ(b.instance, "");
  EXPECT_EQ(b.reg_id, 0u);
  EXPECT_EQ(b.call_id, r.call_id);
  EXPECT_EQ(b.cseq, 1u);
  EXPECT_EQ(b.q_milli, -1);
  EXPECT_EQ(b.expires_at, kNow + 1800);
  EXPECT_EQ(b.registered_at, kNow);
  EXPECT_EQ(b.flow, ctx_.flow);
  EXPECT_TRUE(b.path.empty());
  EXPECT_EQ(b.user_agent, "TestPhone/1.0");
  EXPECT_EQ(b.nat, "contact-private");
  EXPECT_EQ(b.node, "node-a");
  EXPECT_TRUE(out.removed.empty());
  EXPECT_EQ(bindings(), out.saved);

  auto resp = response(out);
  ASSERT_EQ(resp.contacts.size(), 1u);
  EXPECT_EQ(resp.contacts[0].uri.raw, b.contact);
  EXPECT_EQ(resp.contacts[0].expires, "1800");
  EXPECT_EQ(resp.header("Date"), "Tue, 14 Nov 2023 22:13:20 GMT");
  EXPECT_EQ(resp.header("Require"), "");
}

TEST_F(RegisterHandlerTest, QueryListsCurrentBindingsWithRemainingTime) {
  add("Contact: <sip:alice@192.0.2.1>;expires=600");
  add("Contact: <sip:alice@192.0.2.2>;expires=3600;q=0.5");
  ctx_.now = kNow + 100;
  Req q;
  q.cseq = 500;
  auto out = run(q);
  ASSERT_EQ(out.status, 200);
  EXPECT_TRUE(out.saved.empty());
  EXPECT_TRUE(out.removed.empty());
  auto resp = response(out);
  ASSERT_EQ(resp.contacts.size(), 2u);
  // q=1.0 (none given) before q=0.5; remaining time, not the original grant.
  EXPECT_EQ(resp.contacts[0].uri.raw, "sip:alice@192.0.2.1");
  EXPECT_EQ(resp.contacts[0].expires, "500");
  EXPECT_EQ(resp.contacts[1].uri.raw, "sip:alice@192.0.2.2");
  EXPECT_EQ(resp.contacts[1].expires, "3500");
  EXPECT_EQ(resp.contacts[1].q, "0.5");
}

TEST_F(RegisterHandlerTest, The200ListsEveryBindingOfTheAor) {
  add("Contact: <sip:alice@192.0.2.1>");
  auto out = add("Contact: <sip:alice@192.0.2.2>;q=0.25");
  ASSERT_EQ(out.status, 200);
  EXPECT_EQ(out.saved.size(), 1u);  // only the one this request changed is written
  auto resp = response(out);
  ASSERT_EQ(resp.contacts.size(), 2u);
  EXPECT_EQ(resp.contacts[0].uri.raw, "sip:alice@192.0.2.1");
  EXPECT_EQ(resp.contacts[1].q, "0.25");
}

TEST_F(RegisterHandlerTest, RefreshUpdatesTheSameBinding) {
  add("Contact: <sip:alice@192.0.2.1>");
  ctx_.now = kNow + 50;
  auto out = add("Contact: <sip:alice@192.0.2.1>;expires=120");
  ASSERT_EQ(out.status, 200);
  auto all = bindings();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].expires_at, kNow + 50 + 120);
  EXPECT_EQ(all[0].registered_at, kNow + 50);
  EXPECT_EQ(all[0].cseq, cseq_);
}

TEST_F(RegisterHandlerTest, EqualUrisWrittenDifferentlyAreOneBinding) {
  add("Contact: <sip:alice@Host.Example.NET:5060;transport=UDP>");
  auto out = add("Contact: <sip:alice@host.example.net:5060;transport=udp;foo=bar>");
  ASSERT_EQ(out.status, 200);
  auto all = bindings();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].binding_id, "sip:alice@Host.Example.NET:5060;transport=UDP");       // the key it was made with
  EXPECT_EQ(all[0].contact, "sip:alice@host.example.net:5060;transport=udp;foo=bar");  // the latest text
  // The user part is case-sensitive, a port is significant: these are other bindings.
  add("Contact: <sip:ALICE@host.example.net:5060;transport=udp>");
  add("Contact: <sip:alice@host.example.net;transport=udp>");
  EXPECT_EQ(bindings().size(), 3u);
}

TEST_F(RegisterHandlerTest, SameCallIdWithoutHigherCSeqFailsWholeRequest) {
  Req first;
  first.cseq = 10;
  first.headers = "Contact: <sip:alice@192.0.2.1>\r\n";
  ASSERT_EQ(run(first).status, 200);
  auto before = bindings();
  for (uint32_t cseq : {10u, 9u}) {
    Req again = first;
    again.cseq = cseq;
    again.headers = "Contact: <sip:alice@192.0.2.2>, <sip:alice@192.0.2.1>;expires=0\r\n";
    auto out = run(again);
    expect_refused(out, 500, before);
    EXPECT_EQ(out.reason, "out of order");
  }
  // Another Call-ID (a rebooted phone) may change it whatever its CSeq.
  Req other = first;
  other.call_id = "call-2@192.0.2.10";
  other.cseq = 1;
  other.headers = "Contact: <sip:alice@192.0.2.1>;expires=0\r\n";
  auto out = run(other);
  ASSERT_EQ(out.status, 200);
  EXPECT_TRUE(bindings().empty());
}

TEST_F(RegisterHandlerTest, ExpiresZeroRemovesOneBinding) {
  add("Contact: <sip:alice@192.0.2.1>");
  add("Contact: <sip:alice@192.0.2.2>");
  auto out = add("Contact: <sip:alice@192.0.2.1>;expires=0");
  ASSERT_EQ(out.status, 200);
  ASSERT_EQ(out.removed.size(), 1u);
  EXPECT_EQ(out.removed[0], std::make_pair(std::string("sip:alice@example.com"), std::string("sip:alice@192.0.2.1")));
  EXPECT_TRUE(out.saved.empty());
  auto all = bindings();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].contact, "sip:alice@192.0.2.2");
  EXPECT_EQ(response(out).contacts.size(), 1u);
  // Removing a binding that does not exist is fine and changes nothing.
  out = add("Contact: <sip:alice@192.0.2.9>;expires=0");
  EXPECT_EQ(out.status, 200);
  EXPECT_TRUE(out.removed.empty());
  EXPECT_EQ(bindings().size(), 1u);
}

TEST_F(RegisterHandlerTest, StarWithExpiresZeroRemovesAll) {
  add("Contact: <sip:alice@192.0.2.1>");
  add("Contact: <sip:alice@192.0.2.2>");
  add("Contact: <urn:x>;expires=0");  // refused below (not SIP), changes nothing
  auto before = bindings();
  ASSERT_EQ(before.size(), 2u);
  expect_refused(add("Contact: *"), 400, before);                 // no Expires
  expect_refused(add("Contact: *\r\nExpires: 60"), 400, before);  // Expires not 0
  expect_refused(add("Contact: *, <sip:alice@192.0.2.3>\r\nExpires: 0"), 400, before);
  auto out = add("Contact: *\r\nExpires: 0");
  ASSERT_EQ(out.status, 200);
  EXPECT_EQ(out.removed.size(), 2u);
  EXPECT_TRUE(bindings().empty());
  EXPECT_EQ(location_.aor_count(), 0u);
  EXPECT_TRUE(response(out).contacts.empty());
}

TEST_F(RegisterHandlerTest, StarObeysTheCallIdCSeqRule) {
  add("Contact: <sip:alice@192.0.2.1>");
  auto before = bindings();
  Req star;
  star.cseq = cseq_;  // same Call-ID, same CSeq
  star.headers = "Contact: *\r\nExpires: 0\r\n";
  expect_refused(run(star), 500, before);
}

TEST_F(RegisterHandlerTest, ExpiryComesFromParamThenHeaderThenDefault) {
  Req r;
  r.headers =
      "Contact: <sip:alice@192.0.2.1>;expires=300, <sip:alice@192.0.2.2>\r\n"
      "Expires: 900\r\n";
  ASSERT_EQ(run(r).status, 200);
  r.cseq = 2;
  r.headers = "Contact: <sip:alice@192.0.2.3>\r\n";
  ASSERT_EQ(run(r).status, 200);
  std::vector<int64_t> expiries;
  for (const auto& b : bindings()) expiries.push_back(b.expires_at - kNow);
  std::sort(expiries.begin(), expiries.end());
  EXPECT_EQ(expiries, (std::vector<int64_t>{300, 900, config_.default_expires}));
}

TEST_F(RegisterHandlerTest, TooBriefIs423WithMinExpires) {
  add("Contact: <sip:alice@192.0.2.1>");
  auto before = bindings();
  auto out = add("Contact: <sip:alice@192.0.2.1>;expires=0, <sip:alice@192.0.2.2>;expires=59");
  expect_refused(out, 423, before);
  EXPECT_EQ(response(out).header("Min-Expires"), "60");
  // Exactly the minimum is fine; 0 is never too brief.
  EXPECT_EQ(add("Contact: <sip:alice@192.0.2.2>;expires=60").status, 200);
  EXPECT_EQ(add("Contact: <sip:alice@192.0.2.2>;expires=0").status, 200);
}

TEST_F(RegisterHandlerTest, LongAndOverlargeExpiriesAreClampedToMax) {
  for (std::string_view line :
       {"Contact: <sip:alice@192.0.2.1>\r\nExpires: 100000", "Contact: <sip:alice@192.0.2.1>\r\nExpires: 4294967295",
        "Contact: <sip:alice@192.0.2.1>\r\nExpires: 99999999999",
        "Contact: <sip:alice@192.0.2.1>;expires=99999999999999999999999999999999"}) {
    auto out = add(line);
    ASSERT_EQ(out.status, 200) << line;
    ASSERT_EQ(out.saved.size(), 1u);
    EXPECT_EQ(out.saved[0].expires_at, kNow + config_.max_expires) << line;
    EXPECT_EQ(response(out).contacts[0].expires, std::to_string(config_.max_expires));
  }
}

TEST_F(RegisterHandlerTest, MalformedExpiresOrQIs400) {
  add("Contact: <sip:alice@192.0.2.1>");
  auto before = bindings();
  for (std::string_view line : {
           "Contact: <sip:alice@192.0.2.2>\r\nExpires: soon",
           "Contact: <sip:alice@192.0.2.2>\r\nExpires: -1",
           "Contact: <sip:alice@192.0.2.2>;expires=1h",
           "Contact: <sip:alice@192.0.2.2>;expires",
           "Contact: <sip:alice@192.0.2.2>;q=2",
           "Contact: <sip:alice@192.0.2.2>;q=1.5",
           "Contact: <sip:alice@192.0.2.2>;q=0.1234",
           "Contact: <sip:alice@192.0.2.2>;q=.5",
           "Contact: <sip:alice@192.0.2.2>;q",
           "Contact: <sip:alice@192.0.2.2>;q=-0",
           // A good Contact before a bad one does not get through either.
           "Contact: <sip:alice@192.0.2.3>, <sip:alice@192.0.2.2>;q=x",
       }) {
    expect_refused(add(line), 400, before);
  }
}

TEST_F(RegisterHandlerTest, QValuesAreParsedToThousandths) {
  const std::vector<std::pair<std::string, int32_t>> cases = {
      {"0", 0}, {"0.", 0}, {"0.5", 500}, {"0.05", 50}, {"0.123", 123}, {"1", 1000}, {"1.000", 1000}, {"0.999", 999}};
  for (size_t i = 0; i < cases.size(); ++i) {
    std::string uri = "sip:alice@192.0.2." + std::to_string(i + 1);
    auto out = add("Contact: <" + uri + ">;q=" + cases[i].first);
    ASSERT_EQ(out.status, 200) << cases[i].first;
    ASSERT_EQ(out.saved.size(), 1u);
    EXPECT_EQ(out.saved[0].q_milli, cases[i].second) << cases[i].first;
    // Written back so that it reads as the same value.
    auto resp = response(out);
    for (const auto& c : resp.contacts) {
      if (c.uri.raw == uri) {
        EXPECT_NEAR(std::stod(std::string(c.q)) * 1000, cases[i].second, 1e-6);
      }
    }
  }
  auto order = bindings();
  EXPECT_EQ(order.front().q_milli, 1000);
  EXPECT_EQ(order.back().q_milli, 0);
}

TEST_F(RegisterHandlerTest, ShortLeaseForNatedUdpClients) {
  const std::string line = "Contact: <sip:alice@192.168.1.10:5060>\r\nExpires: 3600";
  ctx_.nat = "contact-private,via-source-port";
  EXPECT_EQ(add(line).saved.at(0).expires_at, kNow + 60);
  // A shorter request is granted as asked.
  EXPECT_EQ(add("Contact: <sip:alice@192.168.1.10:5060>\r\nExpires: 60").saved.at(0).expires_at, kNow + 60);
  ctx_.flow = flow(net::Transport::kTcp, 40000);  // a connection keeps its own mapping
  EXPECT_EQ(add(line).saved.at(0).expires_at, kNow + 3600);
  ctx_.flow = flow(net::Transport::kUdp, 40000);
  ctx_.nat.clear();  // not NATed
  EXPECT_EQ(add(line).saved.at(0).expires_at, kNow + 3600);
  ctx_.nat = "contact-private";
  config_.nat_udp_lease = 0;  // disabled
  EXPECT_EQ(add(line).saved.at(0).expires_at, kNow + 3600);
  config_.nat_udp_lease = 30;  // never below min_expires
  config_.min_expires = 45;
  EXPECT_EQ(add(line).saved.at(0).expires_at, kNow + 45);
}

TEST_F(RegisterHandlerTest, TooManyContactsIs400) {
  config_.max_bindings_per_aor = 100;
  add("Contact: <sip:alice@192.0.2.1>");
  auto before = bindings();
  auto many = [](int n) {
    std::string line = "Contact: ";
    for (int i = 0; i < n; ++i) line += (i ? ", " : "") + std::string("<sip:u") + std::to_string(i) + "@192.0.2.7>";
    return line;
  };
  auto out = add(many(static_cast<int>(config_.max_contacts) + 1));
  expect_refused(out, 400, before);
  EXPECT_EQ(out.reason, "Too Many Contacts");
  out = add(many(1000));  // past the parser's own cap as well
  expect_refused(out, 400, before);
  EXPECT_EQ(out.reason, "Too Many Contacts");
  EXPECT_EQ(add(many(static_cast<int>(config_.max_contacts))).status, 200);
}

TEST_F(RegisterHandlerTest, TooManyBindingsPerAorIs403) {
  config_.max_bindings_per_aor = 2;
  add("Contact: <sip:alice@192.0.2.1>");
  add("Contact: <sip:alice@192.0.2.2>");
  auto before = bindings();
  auto out = add("Contact: <sip:alice@192.0.2.3>");
  expect_refused(out, 403, before);
  EXPECT_EQ(out.reason, "Too Many Registered Contacts");
  // Refreshing, or swapping one for another, stays within the limit.
  EXPECT_EQ(add("Contact: <sip:alice@192.0.2.2>").status, 200);
  EXPECT_EQ(add("Contact: <sip:alice@192.0.2.1>;expires=0, <sip:alice@192.0.2.3>").status, 200);
  // Above the limit already (it was lowered): refreshes still pass, growth does not.
  config_.max_bindings_per_aor = 1;
  EXPECT_EQ(add("Contact: <sip:alice@192.0.2.2>").status, 200);
  EXPECT_EQ(add("Contact: <sip:alice@192.0.2.4>").status, 403);
}

TEST_F(RegisterHandlerTest, LapsedBindingsDoNotCountAndAreRemoved) {
  config_.max_bindings_per_aor = 1;
  add("Contact: <sip:alice@192.0.2.1>;expires=60");
  ctx_.now = kNow + 60;  // lapsed, not swept yet
  Req r;
  r.call_id = "call-9";
  r.headers = "Contact: <sip:alice@192.0.2.2>\r\n";
  auto out = run(r);
  ASSERT_EQ(out.status, 200);
  ASSERT_EQ(out.removed.size(), 1u);
  EXPECT_EQ(out.removed[0].second, "sip:alice@192.0.2.1");
  EXPECT_EQ(location_.binding_count(), 1u);
  EXPECT_EQ(response(out).contacts.size(), 1u);
}

TEST_F(RegisterHandlerTest, OutboundBindingPerInstanceAndRegId) {
  config_.outbound_flow_timer = 25;
  ctx_.flow = flow(net::Transport::kTcp, 40000);
  Req r;
  r.headers = "Supported: path, outbound\r\nContact: <sip:alice@192.168.1.10:5060;transport=tcp;ob>;+sip.instance=\"" +
              std::string(kInstance) + "\";reg-id=1\r\n";
  auto out = run(r);
  ASSERT_EQ(out.status, 200) << out.reason;
  ASSERT_EQ(out.saved.size(), 1u);
  EXPECT_EQ(out.saved[0].binding_id, std::string(kInstance) + ";reg-id=1");
  EXPECT_EQ(out.saved[0].instance, kInstance);
  EXPECT_EQ(out.saved[0].reg_id, 1u);
  auto resp = response(out);
  EXPECT_EQ(resp.header("Require"), "outbound");
  EXPECT_EQ(resp.header("Flow-Timer"), "25");
  ASSERT_EQ(resp.contacts.size(), 1u);
  EXPECT_EQ(resp.contacts[0].instance, kInstance);
  EXPECT_EQ(resp.contacts[0].reg_id, "1");

  // A second flow (reg-id 2) is a second binding of the same instance.
  r.cseq = 2;
  r.headers = "Supported: outbound\r\nContact: <sip:alice@192.168.1.10:5062;transport=tcp;ob>;+sip.instance=\"" +
              std::string(kInstance) + "\";reg-id=2\r\n";
  ctx_.flow = flow(net::Transport::kTcp, 40002);
  ASSERT_EQ(run(r).status, 200);
  EXPECT_EQ(bindings().size(), 2u);

  // The phone reboots onto a new flow and a new Contact: reg-id 1 is replaced, not added.
  Req again;
  again.call_id = "after-reboot";
  again.headers = "Supported: outbound\r\nContact: <sip:alice@192.168.1.77:6000;transport=tcp;ob>;+sip.instance=\"" +
                  std::string(kInstance) + "\";reg-id=1\r\n";
  ctx_.flow = flow(net::Transport::kTcp, 41000);
  out = run(again);
  ASSERT_EQ(out.status, 200);
  auto all = bindings();
  ASSERT_EQ(all.size(), 2u);
  auto one = std::find_if(all.begin(), all.end(), [](const BindingRecord& b) { return b.reg_id == 1; });
  ASSERT_NE(one, all.end());
  EXPECT_EQ(one->contact, "sip:alice@192.168.1.77:6000;transport=tcp;ob");
  EXPECT_EQ(one->flow, ctx_.flow);
  EXPECT_EQ(one->call_id, "after-reboot");
}

TEST_F(RegisterHandlerTest, RegIdWithoutSupportedOutboundIsKeyedByInstance) {
  Req r;
  r.headers = "Contact: <sip:alice@192.168.1.10>;+sip.instance=\"" + std::string(kInstance) + "\";reg-id=1\r\n";
  auto out = run(r);
  ASSERT_EQ(out.status, 200);
  EXPECT_EQ(out.saved.at(0).binding_id, kInstance);
  EXPECT_EQ(out.saved.at(0).reg_id, 0u);
  EXPECT_EQ(response(out).header("Require"), "");
  // Instance without reg-id (RFC 5627 style): a new Contact for the instance replaces the old one.
  r.cseq = 2;
  r.headers = "Contact: <sip:alice@192.168.1.99>;+sip.instance=\"" + std::string(kInstance) + "\"\r\n";
  ASSERT_EQ(run(r).status, 200);
  auto all = bindings();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].contact, "sip:alice@192.168.1.99");
}

TEST_F(RegisterHandlerTest, OutboundThroughAProxyWithoutObIs439) {
  add("Contact: <sip:alice@192.0.2.1>");
  auto before = bindings();
  ctx_.first_hop = false;
  Req r;
  r.cseq = 500;
  r.headers =
      "Supported: outbound\r\nPath: <sip:edge.example.org;lr>\r\n"
      "Contact: <sip:alice@192.168.1.10;ob>;+sip.instance=\"" +
      std::string(kInstance) + "\";reg-id=1\r\n";
  expect_refused(run(r), 439, before);
  // Without outbound the same proxy is fine.
  r.headers = "Path: <sip:edge.example.org;lr>\r\nContact: <sip:alice@192.168.1.10>\r\n";
  EXPECT_EQ(run(r).status, 200);
}

TEST_F(RegisterHandlerTest, MalformedRegIdIs400) {
  auto before = bindings();
  for (std::string_view reg_id : {"0", "x", "2147483648", "99999999999"}) {
    Req r;
    r.headers = "Supported: outbound\r\nContact: <sip:alice@192.168.1.10>;+sip.instance=\"" + std::string(kInstance) +
                "\";reg-id=" + std::string(reg_id) + "\r\n";
    expect_refused(run(r), 400, before);
  }
}

TEST_F(RegisterHandlerTest, PathIsStoredAndReturnedWhenSupported) {
  Req r;
  r.headers =
      "Path: <sip:p2.example.org;lr>, <sip:p1.example.org;lr;ob>\r\n"
      "Contact: <sip:alice@192.0.2.1>\r\n";
  auto out = run(r);
  ASSERT_EQ(out.status, 200);
  EXPECT_EQ(out.saved.at(0).path, (std::vector<std::string>{"<sip:p2.example.org;lr>", "<sip:p1.example.org;lr;ob>"}));
  EXPECT_EQ(response(out).header("Path"), "");  // the UA did not say Supported: path
  r.cseq = 2;
  r.headers = "Supported: path\r\n" + r.headers;
  out = run(r);
  auto resp = response(out);
  auto path = resp.message->paths();
  ASSERT_TRUE(path.ok());
  ASSERT_EQ(path->size(), 2u);
  EXPECT_EQ((*path)[0].uri.host, "p2.example.org");
  EXPECT_EQ((*path)[1].uri.host, "p1.example.org");
}

TEST_F(RegisterHandlerTest, UnknownRequiredExtensionIs420) {
  auto before = bindings();
  Req r;
  r.headers = "Require: path, 100rel, foo\r\nContact: <sip:alice@192.0.2.1>\r\n";
  auto out = run(r);
  expect_refused(out, 420, before);
  EXPECT_EQ(response(out).header("Unsupported"), "100rel, foo");
}

TEST_F(RegisterHandlerTest, ForeignOrUnusableToIs404) {
  Req r;
  r.headers = "Contact: <sip:alice@192.0.2.1>\r\n";
  r.to = "sip:alice@example.org";
  EXPECT_EQ(run(r).status, 404);
  r.to = "tel:+15551234567";
  EXPECT_EQ(run(r).status, 404);
  r.to = "sip:example.com";
  EXPECT_EQ(run(r).status, 404);
  EXPECT_EQ(location_.binding_count(), 0u);
  // The To host compares case-insensitively.
  r.to = "sip:alice@EXAMPLE.COM";
  auto out = run(r);
  EXPECT_EQ(out.status, 200);
  EXPECT_EQ(out.aor, "sip:alice@example.com");
}

TEST_F(RegisterHandlerTest, NonSipContactOrHugeContactIs400) {
  add("Contact: <sip:alice@192.0.2.1>");
  auto before = bindings();
  expect_refused(add("Contact: <mailto:alice@example.com>"), 400, before);
  expect_refused(add("Contact: <tel:+15551234567>"), 400, before);
  std::string huge = "Contact: <sip:" + std::string(10'000, 'a') + "@192.0.2.1>";
  auto out = add(huge);
  expect_refused(out, 400, before);
  EXPECT_EQ(out.reason, "Contact URI too long");
  std::string long_instance =
      "Supported: outbound\r\nContact: <sip:alice@192.0.2.5>;+sip.instance=\"<urn:uuid:" + std::string(5000, 'b') +
      ">\";reg-id=1";
  expect_refused(add(long_instance), 400, before);
  // The longest URI allowed passes.
  std::string user(kMaxContactUriLength - std::string_view("sip:@192.0.2.1").size(), 'u');
  EXPECT_EQ(add("Contact: <sip:" + user + "@192.0.2.1>").status, 200);
}

TEST_F(RegisterHandlerTest, SameContactTwiceInOneRequestIsOneBinding) {
  auto out = add("Contact: <sip:alice@192.0.2.1>;expires=100, <sip:alice@192.0.2.1>;expires=200");
  ASSERT_EQ(out.status, 200) << out.reason;
  auto all = bindings();
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].expires_at, kNow + 200);  // the later one wins
  // Removed and made again in one request: saved, not deleted (the caller saves, then deletes).
  out = add("Contact: <sip:alice@192.0.2.1>;expires=0, <sip:alice@192.0.2.1>;expires=300");
  ASSERT_EQ(out.status, 200);
  EXPECT_TRUE(out.removed.empty());
  ASSERT_EQ(out.saved.size(), 1u);
  EXPECT_EQ(bindings().at(0).expires_at, kNow + 300);
}

TEST_F(RegisterHandlerTest, UserAgentIsCut) {
  auto out = add("Contact: <sip:alice@192.0.2.1>\r\nUser-Agent: " + std::string(1000, 'x'));
  ASSERT_EQ(out.status, 200);
  EXPECT_EQ(out.saved.at(0).user_agent, std::string(kMaxUserAgentLength, 'x'));
}

// RFC 4475 §3.3.12 (cparam01): without <>, ";unknownparam" is a Contact header parameter. The
// REGISTER succeeds and the parameter never becomes a URI parameter of the binding.
constexpr std::string_view kCparam01 =
    "REGISTER sip:example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw\r\n"
    "Max-Forwards: 70\r\n"
    "From: sip:watson@example.com;tag=DkfVgjkrtMwaerKKpe\r\n"
    "To: sip:watson@example.com\r\n"
    "Call-ID: cparam01.70710@saturn.example.com\r\n"
    "CSeq: 2 REGISTER\r\n"
    "Contact: sip:+19725552222@gw1.example.net;unknownparam\r\n"
    "l: 0\r\n"
    "\r\n";

// RFC 4475 §3.3.13 (cparam02): inside <>, ";unknownparam" is a URI parameter and stays one.
constexpr std::string_view kCparam02 =
    "REGISTER sip:example.com SIP/2.0\r\n"
    "Via: SIP/2.0/UDP saturn.example.com:5060;branch=z9hG4bKkdjuw\r\n"
    "Max-Forwards: 70\r\n"
    "From: sip:watson@example.com;tag=838293\r\n"
    "To: sip:watson@example.com\r\n"
    "Call-ID: cparam02.70710@saturn.example.com\r\n"
    "CSeq: 3 REGISTER\r\n"
    "Contact: <sip:+19725552222@gw1.example.net;unknownparam>\r\n"
    "l: 0\r\n"
    "\r\n";

// RFC 4475 §3.3.14 (regescrt): a Contact URI with an escaped header; stored and returned as sent.
constexpr std::string_view kRegescrt =
    "REGISTER sip:example.com SIP/2.0\r\n"
    "To: sip:user@example.com\r\n"
    "From: sip:user@example.com;tag=8\r\n"
    "Max-Forwards: 70\r\n"
    "Call-ID: regescrt.k345asrl3fdbv@192.0.2.1\r\n"
    "CSeq: 14398234 REGISTER\r\n"
    "Via: SIP/2.0/UDP host5.example.com;branch=z9hG4bKkdjuw\r\n"
    "M: <sip:user@example.com?Route=%3Csip:sip.example.com%3E>\r\n"
    "L:0\r\n"
    "\r\n";

// RFC 4475 §3.1.2.13 (regbadct): the same URI with a header but without <>: invalid.
constexpr std::string_view kRegbadct =
    "REGISTER sip:example.com SIP/2.0\r\n"
    "To: sip:user@example.com\r\n"
    "From: sip:user@example.com;tag=998332\r\n"
    "Max-Forwards: 70\r\n"
    "Call-ID: regbadct.k345asrl3fdbv@10.0.0.1\r\n"
    "CSeq: 1 REGISTER\r\n"
    "Via: SIP/2.0/UDP 135.180.130.133:5060;branch=z9hG4bKkdjuw\r\n"
    "Contact: sip:user@example.com?Route=%3Csip:sip.example.com%3E\r\n"
    "l: 0\r\n"
    "\r\n";

TEST_F(RegisterHandlerTest, Rfc4475Cparam01) {
  auto out = run_text(kCparam01);
  ASSERT_EQ(out.status, 200) << out.reason;
  EXPECT_EQ(out.aor, "sip:watson@example.com");
  ASSERT_EQ(out.saved.size(), 1u);
  EXPECT_EQ(out.saved[0].contact, "sip:+19725552222@gw1.example.net");
  auto resp = response(out);
  ASSERT_EQ(resp.contacts.size(), 1u);
  EXPECT_EQ(resp.contacts[0].uri.raw, "sip:+19725552222@gw1.example.net");
  EXPECT_FALSE(resp.contacts[0].uri.has_param("unknownparam"));
  // A later fetch shows the same.
  Req q;
  q.to = "sip:watson@example.com";
  q.cseq = 50;
  resp = response(run(q));
  ASSERT_EQ(resp.contacts.size(), 1u);
  EXPECT_FALSE(resp.contacts[0].uri.has_param("unknownparam"));
}

TEST_F(RegisterHandlerTest, Rfc4475Cparam02) {
  auto out = run_text(kCparam02);
  ASSERT_EQ(out.status, 200) << out.reason;
  ASSERT_EQ(out.saved.size(), 1u);
  EXPECT_EQ(out.saved[0].contact, "sip:+19725552222@gw1.example.net;unknownparam");
  auto resp = response(out);
  ASSERT_EQ(resp.contacts.size(), 1u);
  EXPECT_TRUE(resp.contacts[0].uri.has_param("unknownparam"));
  EXPECT_EQ(resp.contacts[0].expires, "3600");
  // cparam01's Contact names the same binding: a URI parameter present in one URI only does not
  // matter for equality (RFC 3261 §19.1.4).
  ASSERT_EQ(run_text(kCparam01).status, 200);
  EXPECT_EQ(bindings("sip:watson@example.com").size(), 1u);
}

TEST_F(RegisterHandlerTest, Rfc4475Regescrt) {
  auto out = run_text(kRegescrt);
  ASSERT_EQ(out.status, 200) << out.reason;
  ASSERT_EQ(out.saved.size(), 1u);
  EXPECT_EQ(out.saved[0].contact, "sip:user@example.com?Route=%3Csip:sip.example.com%3E");
  auto resp = response(out);
  ASSERT_EQ(resp.contacts.size(), 1u);
  EXPECT_TRUE(resp.contacts[0].bracketed);
  EXPECT_EQ(resp.contacts[0].uri.headers, "Route=%3Csip:sip.example.com%3E");
  EXPECT_EQ(resp.contacts[0].expires, "3600");
}

TEST_F(RegisterHandlerTest, Rfc4475RegbadctIs400) {
  // sip::Message parses lazily: the message itself parses, and its Contact is refused (400) the
  // first time it is read, which the handler does before changing anything.
  auto m = parse(kRegbadct);
  ASSERT_NE(m, nullptr);
  ASSERT_FALSE(m->contacts().ok());
  EXPECT_EQ(m->contacts().error().status, 400);
  auto out = run_text(kRegbadct);
  EXPECT_EQ(out.status, 400);
  EXPECT_EQ(location_.binding_count(), 0u);
}

TEST_F(RegisterHandlerTest, ConcurrentRegistersToOneAorLoseNothing) {
  config_.max_bindings_per_aor = 1000;
  config_.max_contacts = 1;
  RegisterHandler handler(config_, location_);
  constexpr int kPerThread = 100;
  auto work = [&](int thread) {
    for (int i = 0; i < kPerThread; ++i) {
      Req r;
      r.call_id = "thread-" + std::to_string(thread);
      r.cseq = static_cast<uint32_t>(i + 1);
      r.headers = "Contact: <sip:t" + std::to_string(thread) + "-" + std::to_string(i) + "@192.0.2.1>\r\n";
      auto m = parse(text(r));
      ASSERT_NE(m, nullptr);
      auto out = handler.handle(*m, ctx_);
      ASSERT_EQ(out.status, 200) << out.reason;
    }
  };
  std::thread t1(work, 1), t2(work, 2);
  t1.join();
  t2.join();
  EXPECT_EQ(bindings().size(), 2u * kPerThread);
}

}  // namespace
}  // namespace pinhole::registrar
