// EdgeProxy in registrar mode against a fake transport: REGISTER answered here with digest
// authentication, calls between two of our NATed users forked to their flows, in-dialog requests
// routed by the two-flow Record-Route token, no open relay.
#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include <regex>
#include <string>

#include "edge_proxy_fixture.h"
#include "fake_transport.h"
#include "proxy/edge_proxy.h"
#include "registrar/digest.h"

namespace pinhole::proxy {
namespace {

using fakes::FakeTransport;
using fakes::Sent;
using net::Transport;

// Two NATed phones: alice over UDP, bob over TCP.
const net::Flow kAlice{Transport::kUdp, 0, *net::Endpoint::parse("198.51.100.7:40000"), 0};
const net::Flow kBob{Transport::kTcp, 1, *net::Endpoint::parse("198.51.100.8:41000"), 5};
const net::Flow kStranger{Transport::kUdp, 0, *net::Endpoint::parse("192.0.2.99:5060"), 0};

constexpr int64_t kNow = 1'800'000'000;

class RegistrarProxyTest : public fakes::EdgeProxyFixture {
 protected:
  RegistrarProxyTest()
      : registrar_metrics_(registry_),
        store_(std::move(store::open_store("memory:").value())),
        handler_(reg_config(), location_),
        auth_(make_auth(users_)),
        services_{.config = reg_config_,
                  .location = location_,
                  .handler = handler_,
                  .users = users_,
                  .auth = auth_.get(),
                  .auth_register = true,
                  .auth_requests = true,
                  .store = *store_,
                  .node_id = "node-a",
                  .cluster = false,
                  .wall_seconds = [] { return kNow; },
                  .metrics = registrar_metrics_} {
    shared_.registrar = &services_;
    targets_.reset();  // a registrar serving its site alone: no core
    config_.local_domains = {"lab.test"};
    add_user("alice", "alice-pw");
    add_user("bob", "bob-pw");
    add_user("carol", "carol-pw");  // a user who never registers
  }

  const registrar::RegistrarConfig& reg_config() {
    reg_config_.domains = {"lab.test"};
    reg_config_.nat_udp_lease = 60;
    return reg_config_;
  }
  static std::unique_ptr<registrar::DigestAuthenticator> make_auth(const registrar::UserDirectory& users) {
    registrar::DigestConfig c;
    c.secret = "nonce-key-for-tests-0123456789";
    return std::move(registrar::DigestAuthenticator::create(c, users, [] { return kNow; }).value());
  }
  void add_user(const std::string& name, const std::string& password) {
    store::UserRecord u{.username = name,
                        .realm = "lab.test",
                        .ha1_md5 = *registrar::ha1(registrar::DigestAlgorithm::kMd5, name, "lab.test", password),
                        .ha1_sha256 = *registrar::ha1(registrar::DigestAlgorithm::kSha256, name, "lab.test", password)};
    ASSERT_TRUE(users_.put(u).ok());
  }

  // The next message sent, skipping 100 Trying.
  Sent next() {
    Sent s = transport_.take();
    while (!s.bytes.empty() && s.bytes.starts_with("SIP/2.0 100 ")) s = transport_.take();
    return s;
  }

  // The credentials header answering the SHA-256 challenge in `challenge` (a 401/407 we got).
  static std::string credentials(const std::string& challenge, std::string_view header, const std::string& user,
                                 const std::string& password, std::string_view method, std::string_view uri,
                                 std::string_view nc = "00000001") {
    std::smatch m;
    static const std::regex kNonce(R"re(nonce="([^"]+)")re");
    EXPECT_TRUE(std::regex_search(challenge, m, kNonce)) << challenge;
    std::string nonce = m[1];
    std::string ha1 = *registrar::ha1(registrar::DigestAlgorithm::kSha256, user, "lab.test", password);
    auto response = registrar::digest_response(
        registrar::DigestAlgorithm::kSha256, ha1,
        {.nonce = nonce, .nc = nc, .cnonce = "c0ffee", .qop = "auth", .method = method, .uri = uri});
    return std::string(header) + ": Digest username=\"" + user + "\", realm=\"lab.test\", nonce=\"" + nonce +
           "\", uri=\"" + std::string(uri) + "\", response=\"" + *response +
           "\", algorithm=SHA-256, qop=auth, nc=" + std::string(nc) + ", cnonce=\"c0ffee\"\r\n";
  }

  static std::string register_text(const std::string& user, const std::string& contact_host, int cseq,
                                   const std::string& extra = {}, const std::string& to_user = {}) {
    const std::string& aor_user = to_user.empty() ? user : to_user;
    return "REGISTER sip:lab.test SIP/2.0\r\n"
           "Via: SIP/2.0/UDP " +
           contact_host + ";branch=z9hG4bK-reg" + std::to_string(cseq) + user +
           "\r\n"
           "Max-Forwards: 70\r\nFrom: <sip:" +
           user + "@lab.test>;tag=f" + user + "\r\nTo: <sip:" + aor_user + "@lab.test>\r\nCall-ID: reg-" + user +
           "\r\nCSeq: " + std::to_string(cseq) + " REGISTER\r\nContact: <sip:" + user + "@" + contact_host +
           ">\r\nExpires: 3600\r\n" + extra + "Content-Length: 0\r\n\r\n";
  }

  // Registers `user` on `flow` through the 401 round trip; returns the 200 OK's text.
  std::string register_user(const net::Flow& flow, const std::string& user, const std::string& password,
                            const std::string& contact_host) {
    deliver(flow, register_text(user, contact_host, 1));
    Sent challenge = next();
    EXPECT_EQ(challenge.msg()->status(), 401);
    deliver(flow,
            register_text(user, contact_host, 2,
                          credentials(challenge.bytes, "Authorization", user, password, "REGISTER", "sip:lab.test")));
    return next().bytes;
  }

  static std::string invite_text(const std::string& from, const std::string& to, const std::string& call_id,
                                 const std::string& extra = {}, const std::string& branch = "z9hG4bK-inv1") {
    return "INVITE sip:" + to +
           " SIP/2.0\r\n"
           "Via: SIP/2.0/TCP 10.0.0.8:5060;branch=" +
           branch + "\r\nMax-Forwards: 70\r\nFrom: <sip:" + from + ">;tag=t1\r\nTo: <sip:" + to +
           ">\r\nCall-ID: " + call_id + "\r\nCSeq: 1 INVITE\r\nContact: <sip:bob@10.0.0.8:5060;transport=tcp>\r\n" +
           extra + "Content-Length: 0\r\n\r\n";
  }

  RegistrarMetrics registrar_metrics_;
  registrar::RegistrarConfig reg_config_;
  registrar::Location location_;
  registrar::UserDirectory users_;
  std::unique_ptr<store::Store> store_;
  registrar::RegisterHandler handler_;
  std::unique_ptr<registrar::DigestAuthenticator> auth_;
  RegistrarServices services_;
};

TEST_F(RegistrarProxyTest, RegisterIsChallengedThenStoredWithTheFlowAndAShortLease) {
  deliver(kAlice, register_text("alice", "192.168.1.10:5062", 1));
  Sent challenge = next();
  EXPECT_EQ(challenge.flow, kAlice);
  auto c = challenge.msg();
  EXPECT_EQ(c->status(), 401);
  EXPECT_NE(challenge.bytes.find("algorithm=SHA-256"), std::string::npos);
  EXPECT_NE(challenge.bytes.find("algorithm=MD5"), std::string::npos);
  EXPECT_TRUE(location_.lookup("sip:alice@lab.test", kNow).empty());

  deliver(kAlice, register_text(
                      "alice", "192.168.1.10:5062", 2,
                      credentials(challenge.bytes, "Authorization", "alice", "alice-pw", "REGISTER", "sip:lab.test")));
  Sent ok = next();
  EXPECT_EQ(ok.flow, kAlice);
  EXPECT_EQ(ok.msg()->status(), 200);
  // NATed over UDP: granted the short lease, not the 3600 s asked.
  EXPECT_NE(ok.bytes.find("<sip:alice@192.168.1.10:5062>;expires=60"), std::string::npos) << ok.bytes;
  auto bindings = location_.lookup("sip:alice@lab.test", kNow);
  ASSERT_EQ(bindings.size(), 1u);
  EXPECT_EQ(bindings[0].flow, kAlice);
  EXPECT_EQ(bindings[0].node, "node-a");
  EXPECT_FALSE(bindings[0].nat.empty());
  store_->flush();
  auto stored = store_->load_aor("sip:alice@lab.test");
  ASSERT_TRUE(stored.ok());
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0].flow, kAlice);
}

TEST_F(RegistrarProxyTest, WrongPasswordReplayedNonceCountAndForeignAorAreRefused) {
  deliver(kAlice, register_text("alice", "192.168.1.10:5062", 1));
  std::string challenge = next().bytes;
  deliver(kAlice, register_text("alice", "192.168.1.10:5062", 2,
                                credentials(challenge, "Authorization", "alice", "wrong", "REGISTER", "sip:lab.test")));
  EXPECT_EQ(next().msg()->status(), 401);
  EXPECT_TRUE(location_.lookup("sip:alice@lab.test", kNow).empty());

  std::string good = credentials(challenge, "Authorization", "alice", "alice-pw", "REGISTER", "sip:lab.test");
  deliver(kAlice, register_text("alice", "192.168.1.10:5062", 3, good));
  EXPECT_EQ(next().msg()->status(), 200);
  // The same nonce count again: a replay, challenged anew.
  deliver(kAlice, register_text("alice", "192.168.1.10:5062", 4, good));
  EXPECT_EQ(next().msg()->status(), 401);

  // Authenticated as alice, registering bob's AOR: 403, and bob has no binding.
  deliver(kAlice, register_text("alice", "192.168.1.10:5062", 5,
                                credentials(challenge, "Authorization", "alice", "alice-pw", "REGISTER", "sip:lab.test",
                                            "00000009"),
                                "bob"));
  EXPECT_EQ(next().msg()->status(), 403);
  EXPECT_TRUE(location_.lookup("sip:bob@lab.test", kNow).empty());

  // A REGISTER for a domain we do not serve (and no core to pass it to).
  std::string other = register_text("alice", "192.168.1.10:5062", 6);
  other.replace(other.find("sip:lab.test"), 12, "sip:other.example");
  deliver(kAlice, other);
  EXPECT_EQ(next().msg()->status(), 403);
}

TEST_F(RegistrarProxyTest, CallBetweenTwoNatedUsersAndInDialogRequestsBothWays) {
  ASSERT_NE(register_user(kAlice, "alice", "alice-pw", "192.168.1.10:5062").find("200 OK"), std::string::npos);
  ASSERT_NE(register_user(kBob, "bob", "bob-pw", "10.0.0.8:5060").find("200 OK"), std::string::npos);

  deliver(kBob, invite_text("bob@lab.test", "alice@lab.test", "call-1"));
  Sent challenge = next();
  EXPECT_EQ(challenge.msg()->status(), 407);
  deliver(kBob, invite_text("bob@lab.test", "alice@lab.test", "call-1",
                            credentials(challenge.bytes, "Proxy-Authorization", "bob", "bob-pw", "INVITE",
                                        "sip:alice@lab.test"),
                            "z9hG4bK-inv2"));
  Sent out = next();
  // To alice's flow, never to her private Contact address; Request-URI = her Contact.
  EXPECT_EQ(out.flow, kAlice);
  auto inv = out.msg();
  EXPECT_EQ(inv->request_uri().raw, "sip:alice@192.168.1.10:5062");
  EXPECT_EQ(inv->header(sip::HeaderKind::kProxyAuthorization), nullptr);  // consumed here
  auto rr = inv->record_routes();
  ASSERT_TRUE(rr.ok());
  ASSERT_FALSE(rr->empty());
  std::string token((*rr)[0].uri.user);
  size_t dash = token.find('-');
  ASSERT_NE(dash, std::string::npos) << token;
  EXPECT_EQ(codec_.decode(token.substr(0, dash))->flow, kBob);
  EXPECT_EQ(codec_.decode(token.substr(dash + 1))->flow, kAlice);

  // In-dialog BYE from alice (her NAT may have kept the port): goes to bob's connection...
  std::string bye_from_alice =
      "BYE sip:bob@10.0.0.8:5060;transport=tcp SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 192.168.1.10:5062;branch=z9hG4bK-bye1\r\n"
      "Route: <sip:" +
      token +
      "@203.0.113.10:5060;lr>\r\n"
      "Max-Forwards: 70\r\nFrom: <sip:alice@lab.test>;tag=u1\r\nTo: <sip:bob@lab.test>;tag=t1\r\n"
      "Call-ID: call-1\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n";
  deliver(kAlice, bye_from_alice);
  Sent bye = next();
  EXPECT_EQ(bye.flow, kBob);
  EXPECT_TRUE(bye.msg()->routes()->empty());
  // ...and the same route from bob goes to alice's flow.
  std::string bye_from_bob = bye_from_alice;
  bye_from_bob.replace(bye_from_bob.find("z9hG4bK-bye1"), 12, "z9hG4bK-bye2");
  bye_from_bob.replace(bye_from_bob.find("CSeq: 2"), 7, "CSeq: 3");
  deliver(kBob, bye_from_bob);
  EXPECT_EQ(next().flow, kAlice);
}

TEST_F(RegistrarProxyTest, UnknownUserNoBindingAndOpenRelayAreRefused) {
  ASSERT_NE(register_user(kBob, "bob", "bob-pw", "10.0.0.8:5060").find("200 OK"), std::string::npos);
  std::string auth_for = "";
  auto call = [&](const std::string& target, const std::string& branch) {
    deliver(kBob, invite_text("bob@lab.test", target, "call-" + branch, {}, branch));
    Sent challenge = next();
    EXPECT_EQ(challenge.msg()->status(), 407);
    deliver(kBob,
            invite_text("bob@lab.test", target, "call-" + branch,
                        credentials(challenge.bytes, "Proxy-Authorization", "bob", "bob-pw", "INVITE", "sip:" + target),
                        branch + "x"));
    return next().msg()->status();
  };
  EXPECT_EQ(call("nobody@lab.test", "z9hG4bK-a"), 404);     // no such user
  EXPECT_EQ(call("carol@lab.test", "z9hG4bK-b"), 480);      // a user, not registered
  EXPECT_EQ(call("dave@other.example", "z9hG4bK-c"), 404);  // our user, foreign domain, no core
  // Someone who is not our user asks for a foreign domain: no open relay, no challenge either.
  deliver(kStranger, invite_text("mallory@evil.example", "victim@other.example", "relay-1"));
  EXPECT_EQ(next().msg()->status(), 403);
  EXPECT_EQ(registrar_metrics_.forbidden_relay.value(), 1u);
}

TEST_F(RegistrarProxyTest, CallsFromOutsideReachOurUsersWithoutAChallenge) {
  ASSERT_NE(register_user(kAlice, "alice", "alice-pw", "192.168.1.10:5062").find("200 OK"), std::string::npos);
  deliver(kStranger, invite_text("someone@other.example", "alice@lab.test", "in-1"));
  Sent out = next();
  EXPECT_EQ(out.flow, kAlice);
  EXPECT_EQ(out.msg()->method(), sip::Method::kInvite);
}

TEST_F(RegistrarProxyTest, AckFollowsTheRouteSetPastUsToTheNodeHoldingTheCallee) {
  // A cluster: bob is ours, alice is held by another node (203.0.113.11). bob's ACK for the 200
  // names his own flow in our entry and the other node after it: it must go on to that node.
  std::string own = *codec_.encode(kBob);
  std::string ack =
      "ACK sip:alice@192.168.1.10:5062 SIP/2.0\r\n"
      "Via: SIP/2.0/TCP 10.0.0.8:5060;branch=z9hG4bK-ack1\r\n"
      "Route: <sip:" +
      own +
      "@203.0.113.10:5060;lr>, <sip:tokenofnodeb@203.0.113.11:5060;lr>\r\n"
      "Max-Forwards: 70\r\nFrom: <sip:bob@lab.test>;tag=t1\r\nTo: <sip:alice@lab.test>;tag=u1\r\n"
      "Call-ID: call-x\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n";
  deliver(kBob, ack);
  Sent out = transport_.take();
  EXPECT_EQ(out.flow.remote.to_string(), "203.0.113.11:5060");
  auto msg = out.msg();  // held: the route values point into it
  auto routes = msg->routes();
  ASSERT_TRUE(routes.ok());
  ASSERT_EQ(routes->size(), 1u);  // ours popped, the next node's kept
  EXPECT_EQ((*routes)[0].uri.user, "tokenofnodeb");
}

}  // namespace
}  // namespace pinhole::proxy
