// RegistrarAdmin's handlers against a real Location, a memory Store and a UserDirectory: the JSON
// each route answers, what it changes in all three, and how it refuses bad input. Requests are
// built by hand (AdminRequest) and time is a fixed wall clock; the HTTP side is admin_server_test's
// and ctl_test's.
#include "app/registrar_admin.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "registrar/location.h"
#include "registrar/user_directory.h"
#include "store/store.h"

namespace pinhole::app {
namespace {

using nlohmann::json;

constexpr int64_t kNow = 1'700'000'000;

store::BindingRecord binding(std::string aor, std::string id, std::string contact, int64_t expires_in) {
  store::BindingRecord b;
  b.aor = std::move(aor);
  b.binding_id = std::move(id);
  b.contact = std::move(contact);
  b.call_id = "call-" + b.binding_id;
  b.cseq = 7;
  b.expires_at = kNow + expires_in;
  b.registered_at = kNow - 10;
  b.flow.transport = net::Transport::kUdp;
  b.flow.local_socket_id = 1;
  b.flow.remote = net::Endpoint::parse("203.0.113.101:40000").value();
  b.node = "edge-1";
  return b;
}

AdminRequest get(std::vector<std::string> segments = {}, std::map<std::string, std::string, std::less<>> query = {}) {
  AdminRequest r;
  r.method = HttpMethod::kGet;
  r.segments = std::move(segments);
  r.query = std::move(query);
  return r;
}

AdminRequest post(std::string_view body) {
  AdminRequest r;
  r.method = HttpMethod::kPost;
  r.body = body;
  return r;
}

json body_of(const RegistrarAdmin::Answer& answer) {
  json parsed = json::parse(answer.second, nullptr, false);
  EXPECT_FALSE(parsed.is_discarded()) << answer.second;
  return parsed;
}

class RegistrarAdminTest : public ::testing::Test {
 protected:
  RegistrarAdminTest() {
    RegistrarAdminOptions options;
    options.wall_seconds = [] { return kNow; };
    options.on_removed = [this](const std::vector<store::BindingRecord>& removed) {
      removed_.insert(removed_.end(), removed.begin(), removed.end());
    };
    options.extra_stats = [] { return json{{"register", {{"ok", 5}}}, {"users", "not this"}}; };
    admin_ = std::make_unique<RegistrarAdmin>(location_, users_, *store_, std::move(options));
  }

  // Two AORs: alice with a NATed UDP phone (q=0.5, Path) and an outbound TCP/IPv6 one; bob with
  // a plain binding; plus one lapsed binding of carol the expiry sweep has not removed yet.
  void add_bindings() {
    auto a1 = binding("sip:alice@example.com", "sip:alice@192.168.1.10:5060", "sip:alice@192.168.1.10:5060", 3600);
    a1.q_milli = 500;
    a1.nat = "private_contact,port_differs";
    a1.path = {"<sip:edge1.example.com;lr>", "<sip:core.example.com;lr;ob>"};
    a1.user_agent = "Phone/1.0";
    auto a2 = binding("sip:alice@example.com", "<urn:uuid:00000000-0000-0000-0000-000000000001>;reg-id=1",
                      "sip:alice@[2001:db8::10]:5061;transport=tcp;ob", 120);
    a2.instance = "<urn:uuid:00000000-0000-0000-0000-000000000001>";
    a2.reg_id = 1;
    a2.flow.transport = net::Transport::kTcp;
    a2.flow.local_socket_id = 3;
    a2.flow.remote = net::Endpoint::parse("[2001:db8::10]:50123").value();
    a2.flow.connection_id = 42;
    auto b1 = binding("sip:bob@example.com", "sip:bob@198.51.100.7", "sip:bob@198.51.100.7", 60);
    auto lapsed = binding("sip:carol@example.com", "sip:carol@198.51.100.8", "sip:carol@198.51.100.8", 0);
    for (auto* b : {&a1, &a2, &b1, &lapsed}) {
      location_.upsert(*b);
      store_->save_binding(*b);
    }
    store_->flush();
    alice_natted_ = a1;
    alice_outbound_ = a2;
  }

  registrar::Location location_;
  registrar::UserDirectory users_;
  std::unique_ptr<store::Store> store_ = store::open_store("memory:").value();
  std::unique_ptr<RegistrarAdmin> admin_;
  std::vector<store::BindingRecord> removed_;
  store::BindingRecord alice_natted_, alice_outbound_;
};

TEST_F(RegistrarAdminTest, ListShowsEveryLiveBindingWithItsFlowAndNat) {
  add_bindings();
  auto answer = admin_->list_registrations(get());
  ASSERT_EQ(answer.first, 200) << answer.second;
  json j = body_of(answer);
  EXPECT_EQ(j["aors"], 2);  // carol's only binding has lapsed
  EXPECT_EQ(j["truncated"], false);
  ASSERT_EQ(j["bindings"].size(), 3u);

  const json* natted = nullptr;
  const json* outbound = nullptr;
  for (const auto& b : j["bindings"]) {
    EXPECT_NE(b["aor"], "sip:carol@example.com");
    if (b["binding_id"] == alice_natted_.binding_id) natted = &b;
    if (b["binding_id"] == alice_outbound_.binding_id) outbound = &b;
  }
  ASSERT_TRUE(natted && outbound);
  EXPECT_EQ((*natted)["aor"], "sip:alice@example.com");
  EXPECT_EQ((*natted)["contact"], alice_natted_.contact);
  EXPECT_EQ((*natted)["expires_in"], 3600);
  EXPECT_EQ((*natted)["expires_at"], alice_natted_.expires_at);
  EXPECT_DOUBLE_EQ((*natted)["q"].get<double>(), 0.5);
  EXPECT_EQ((*natted)["transport"], "udp");
  EXPECT_EQ((*natted)["received"], "203.0.113.101:40000");
  EXPECT_EQ((*natted)["local_socket"], 1);
  EXPECT_EQ((*natted)["connection_id"], 0);
  EXPECT_EQ((*natted)["nat"], json::array({"private_contact", "port_differs"}));
  EXPECT_EQ((*natted)["natted"], true);
  EXPECT_EQ((*natted)["node"], "edge-1");
  EXPECT_EQ((*natted)["path"], json(alice_natted_.path));
  EXPECT_EQ((*natted)["user_agent"], "Phone/1.0");
  EXPECT_EQ((*natted)["call_id"], alice_natted_.call_id);
  EXPECT_EQ((*natted)["cseq"], 7);
  EXPECT_EQ((*natted)["instance"], "");
  EXPECT_EQ((*natted)["reg_id"], 0);

  EXPECT_TRUE((*outbound)["q"].is_null());  // no q in the Contact
  EXPECT_EQ((*outbound)["transport"], "tcp");
  EXPECT_EQ((*outbound)["received"], "[2001:db8::10]:50123");
  EXPECT_EQ((*outbound)["local_socket"], 3);
  EXPECT_EQ((*outbound)["connection_id"], 42);
  EXPECT_EQ((*outbound)["nat"], json::array());
  EXPECT_EQ((*outbound)["natted"], false);
  EXPECT_EQ((*outbound)["instance"], alice_outbound_.instance);
  EXPECT_EQ((*outbound)["reg_id"], 1);
  EXPECT_EQ((*outbound)["expires_in"], 120);
}

TEST_F(RegistrarAdminTest, ListFiltersAndLimits) {
  add_bindings();
  json j = body_of(admin_->list_registrations(get({}, {{"search", "bob"}})));
  ASSERT_EQ(j["bindings"].size(), 1u);
  EXPECT_EQ(j["bindings"][0]["aor"], "sip:bob@example.com");
  EXPECT_EQ(j["aors"], 1);

  // The filter also matches Contacts.
  j = body_of(admin_->list_registrations(get({}, {{"search", "2001:db8::10"}})));
  ASSERT_EQ(j["bindings"].size(), 1u);
  EXPECT_EQ(j["bindings"][0]["binding_id"], alice_outbound_.binding_id);

  j = body_of(admin_->list_registrations(get({}, {{"search", "nobody"}})));
  EXPECT_EQ(j["bindings"].size(), 0u);
  EXPECT_EQ(j["aors"], 0);

  j = body_of(admin_->list_registrations(get({}, {{"limit", "2"}})));
  EXPECT_EQ(j["bindings"].size(), 2u);
  EXPECT_EQ(j["truncated"], true);
  j = body_of(admin_->list_registrations(get({}, {{"limit", "3"}})));
  EXPECT_EQ(j["bindings"].size(), 3u);
  EXPECT_EQ(j["truncated"], false);
  // Beyond max_limit is clamped, not refused.
  j = body_of(admin_->list_registrations(get({}, {{"limit", "99999999999999999999"}})));
  EXPECT_EQ(j["bindings"].size(), 3u);

  for (const char* bad : {"0", "-1", "ten", "", "5x", "1.5"}) {
    auto answer = admin_->list_registrations(get({}, {{"limit", bad}}));
    EXPECT_EQ(answer.first, 400) << bad;
    EXPECT_TRUE(body_of(answer).contains("error")) << bad;
  }
}

TEST_F(RegistrarAdminTest, ShowCanonicalisesTheAorAnd404sWhenNone) {
  add_bindings();
  for (const char* typed : {"sip:alice@example.com", "alice@example.com", "SIP:alice@EXAMPLE.com",
                            "sips:alice@example.com", "sip:%61lice@example.com;transport=tcp"}) {
    auto answer = admin_->show_registrations(get({typed}));
    ASSERT_EQ(answer.first, 200) << typed << " " << answer.second;
    json j = body_of(answer);
    EXPECT_EQ(j["aor"], "sip:alice@example.com") << typed;
    ASSERT_EQ(j["bindings"].size(), 2u) << typed;
    // Lookup order: highest q first (no q ranks as 1.0).
    EXPECT_EQ(j["bindings"][0]["binding_id"], alice_outbound_.binding_id);
    EXPECT_EQ(j["bindings"][1]["binding_id"], alice_natted_.binding_id);
  }
  auto answer = admin_->show_registrations(get({"Alice@example.com"}));  // the user part is case-sensitive
  EXPECT_EQ(answer.first, 404);
  EXPECT_NE(body_of(answer)["error"].get<std::string>().find("sip:Alice@example.com"), std::string::npos);
  EXPECT_EQ(admin_->show_registrations(get({"carol@example.com"})).first, 404);  // lapsed only

  for (const std::vector<std::string>& bad :
       std::vector<std::vector<std::string>>{{}, {""}, {"tel:+15551234"}, {"example.com"}, {"a", "b"}, {"sip:@@"}}) {
    auto r = admin_->show_registrations(get(bad));
    EXPECT_EQ(r.first, 400) << (bad.empty() ? "(none)" : bad[0]);
  }
}

TEST_F(RegistrarAdminTest, RemoveOneBindingFromLocationAndStore) {
  add_bindings();
  AdminRequest r = get({"alice@example.com"}, {{"binding", alice_natted_.binding_id}});
  r.method = HttpMethod::kDelete;
  auto answer = admin_->remove_registrations(r);
  ASSERT_EQ(answer.first, 200) << answer.second;
  EXPECT_EQ(body_of(answer)["removed"], 1);
  EXPECT_EQ(body_of(answer)["aor"], "sip:alice@example.com");

  auto left = location_.lookup("sip:alice@example.com", kNow);
  ASSERT_EQ(left.size(), 1u);
  EXPECT_EQ(left[0].binding_id, alice_outbound_.binding_id);
  store_->flush();
  auto stored = store_->load_aor("sip:alice@example.com").value();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].binding_id, alice_outbound_.binding_id);
  ASSERT_EQ(removed_.size(), 1u);
  EXPECT_EQ(removed_[0], alice_natted_);

  // Gone now: 404, and nothing else touched.
  answer = admin_->remove_registrations(r);
  EXPECT_EQ(answer.first, 404);
  EXPECT_EQ(location_.binding_count(), 3u);  // alice's outbound, bob, lapsed carol
  EXPECT_EQ(removed_.size(), 1u);
}

TEST_F(RegistrarAdminTest, RemoveEveryBindingOfAnAor) {
  add_bindings();
  AdminRequest r = get({"sip:alice@example.com"});
  r.method = HttpMethod::kDelete;
  auto answer = admin_->remove_registrations(r);
  ASSERT_EQ(answer.first, 200) << answer.second;
  EXPECT_EQ(body_of(answer)["removed"], 2);
  EXPECT_TRUE(location_.lookup("sip:alice@example.com", kNow).empty());
  store_->flush();
  EXPECT_TRUE(store_->load_aor("sip:alice@example.com").value().empty());
  EXPECT_EQ(store_->load_aor("sip:bob@example.com").value().size(), 1u);  // other AORs stay
  EXPECT_EQ(location_.lookup("sip:bob@example.com", kNow).size(), 1u);
  EXPECT_EQ(removed_.size(), 2u);

  EXPECT_EQ(admin_->remove_registrations(r).first, 404);
  AdminRequest unknown = get({"sip:dave@example.com"});
  unknown.method = HttpMethod::kDelete;
  EXPECT_EQ(admin_->remove_registrations(unknown).first, 404);
  AdminRequest bad = get({"tel:1"});
  bad.method = HttpMethod::kDelete;
  EXPECT_EQ(admin_->remove_registrations(bad).first, 400);
}

TEST_F(RegistrarAdminTest, AddUserStoresBothHa1sInStoreAndDirectory) {
  auto answer = admin_->add_user(post(R"({"username":"alice","realm":"Example.COM","password":"s3cret"})"));
  ASSERT_EQ(answer.first, 201) << answer.second;
  json j = body_of(answer);
  EXPECT_EQ(j["created"], true);
  EXPECT_EQ(j["realm"], "example.com");  // realms are lower-cased like the configured domains

  // HA1 = H("alice:example.com:s3cret"), computed independently (Python hashlib).
  const std::string md5 = "d2d0c8958e1b1c2b989afda0efb9663e";
  const std::string sha256 = "5297838bf1a4f1fc5d284fa2f0df90bdf2046b6bf4c022e85118af37bb6dbf75";
  auto user = users_.find("alice", "example.com");
  ASSERT_TRUE(user);
  EXPECT_EQ(user->ha1_md5, md5);
  EXPECT_EQ(user->ha1_sha256, sha256);
  auto stored = store_->list_users().value();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0], (store::UserRecord{"alice", "example.com", md5, sha256}));

  // Again: the password changes, 200 and created=false.
  answer = admin_->add_user(post(R"({"username":"alice","realm":"example.com","password":"n3w-pass"})"));
  ASSERT_EQ(answer.first, 200) << answer.second;
  EXPECT_EQ(body_of(answer)["created"], false);
  EXPECT_EQ(users_.find("alice", "example.com")->ha1_md5, "50c8d8d77df634f2a61de8dc8b500e35");
  EXPECT_EQ(store_->list_users().value().at(0).ha1_sha256,
            "4da227fa2071ff05d2e0327cf0f701b3cff50e379d878420fd5e30a0f13f84e6");
  EXPECT_EQ(users_.size(), 1u);
}

TEST_F(RegistrarAdminTest, AddUserRefusesBadInputAndChangesNothing) {
  const std::string long_name(129, 'a');
  const std::vector<std::string> bad = {
      "",
      "not json",
      "[]",
      R"({"username":"alice","realm":"example.com"})",
      R"({"username":"alice","realm":"example.com","password":7})",
      R"({"username":"alice","realm":"example.com","password":""})",
      R"({"username":"al@ice","realm":"example.com","password":"x"})",
      R"({"username":"al:ice","realm":"example.com","password":"x"})",
      R"({"username":"al%40ice","realm":"example.com","password":"x"})",
      R"({"username":"al ice","realm":"example.com","password":"x"})",
      R"({"username":"","realm":"example.com","password":"x"})",
      R"({"username":")" + long_name + R"(","realm":"example.com","password":"x"})",
      R"({"username":"alice","realm":"","password":"x"})",
      R"({"username":"alice","realm":"exa mple.com","password":"x"})",
      R"({"username":"alice","realm":"example.com/x","password":"x"})",
      R"({"username":"alice","realm":"example.com","password":")" + std::string(1025, 'p') + R"("})",
  };
  for (const auto& body : bad) {
    auto answer = admin_->add_user(post(body));
    EXPECT_EQ(answer.first, 400) << body;
    EXPECT_TRUE(body_of(answer)["error"].is_string()) << body;
  }
  EXPECT_EQ(users_.size(), 0u);
  EXPECT_TRUE(store_->list_users().value().empty());

  // The characters RFC 3261 allows in a user part are accepted, and so is an IPv6 realm.
  auto answer =
      admin_->add_user(post(R"({"username":"a-b_c.d!~*'()&=+$,;?/1","realm":"[2001:DB8::1]","password":"x"})"));
  EXPECT_EQ(answer.first, 201) << answer.second;
  EXPECT_TRUE(users_.find("a-b_c.d!~*'()&=+$,;?/1", "[2001:db8::1]"));
}

TEST_F(RegistrarAdminTest, ListUsersNeverShowsCredentials) {
  ASSERT_EQ(admin_->add_user(post(R"({"username":"bob","realm":"example.org","password":"pw"})")).first, 201);
  ASSERT_EQ(admin_->add_user(post(R"({"username":"alice","realm":"example.com","password":"pw"})")).first, 201);
  auto answer = admin_->list_users(get());
  ASSERT_EQ(answer.first, 200);
  json j = body_of(answer);
  ASSERT_EQ(j["users"].size(), 2u);
  EXPECT_EQ(j["users"][0], (json{{"username", "alice"}, {"realm", "example.com"}}));
  EXPECT_EQ(j["users"][1], (json{{"username", "bob"}, {"realm", "example.org"}}));
  EXPECT_EQ(answer.second.find("ha1"), std::string::npos);
  EXPECT_EQ(answer.second.find(users_.find("bob", "example.org")->ha1_md5), std::string::npos);
}

TEST_F(RegistrarAdminTest, DeleteUser) {
  ASSERT_EQ(admin_->add_user(post(R"({"username":"alice","realm":"example.com","password":"pw"})")).first, 201);
  ASSERT_EQ(admin_->add_user(post(R"({"username":"bob","realm":"example.com","password":"pw"})")).first, 201);
  AdminRequest r = get({"EXAMPLE.com", "alice"});
  r.method = HttpMethod::kDelete;
  auto answer = admin_->delete_user(r);
  ASSERT_EQ(answer.first, 200) << answer.second;
  EXPECT_EQ(body_of(answer)["deleted"], true);
  EXPECT_FALSE(users_.find("alice", "example.com"));
  EXPECT_TRUE(users_.find("bob", "example.com"));
  auto stored = store_->list_users().value();
  ASSERT_EQ(stored.size(), 1u);
  EXPECT_EQ(stored[0].username, "bob");

  answer = admin_->delete_user(r);
  EXPECT_EQ(answer.first, 404);
  EXPECT_NE(body_of(answer)["error"].get<std::string>().find("alice@example.com"), std::string::npos);

  AdminRequest wrong_realm = get({"example.org", "bob"});
  wrong_realm.method = HttpMethod::kDelete;
  EXPECT_EQ(admin_->delete_user(wrong_realm).first, 404);
  for (const auto& segments : std::vector<std::vector<std::string>>{
           {}, {"example.com"}, {"example.com", ""}, {"", "bob"}, {"example.com", "bob", "x"}}) {
    AdminRequest bad = get(segments);
    bad.method = HttpMethod::kDelete;
    EXPECT_EQ(admin_->delete_user(bad).first, 400);
  }
  EXPECT_TRUE(users_.find("bob", "example.com"));
}

TEST_F(RegistrarAdminTest, StatsCountRegistrationsUsersStoreAndExtras) {
  add_bindings();
  ASSERT_EQ(admin_->add_user(post(R"({"username":"alice","realm":"example.com","password":"pw"})")).first, 201);
  auto answer = admin_->stats(get());
  ASSERT_EQ(answer.first, 200);
  json j = body_of(answer);
  // The Location's own counts (the lapsed binding is still held until the expiry sweep).
  EXPECT_EQ(j["registrations"]["aors"], location_.aor_count());
  EXPECT_EQ(j["registrations"]["bindings"], location_.binding_count());
  EXPECT_EQ(j["registrations"]["bindings"], 4);
  EXPECT_EQ(j["registrations"]["natted_bindings"], 1);
  EXPECT_EQ(j["users"], 1);  // the extra "users" did not replace it
  EXPECT_EQ(j["store"]["kind"], "memory");
  EXPECT_EQ(j["store"]["writes"], store_->stats().writes);
  EXPECT_EQ(j["store"]["connected"], true);
  EXPECT_EQ(j["register"]["ok"], 5);
}

TEST(RegistrarAdminHelpers, UsernamesAndAors) {
  EXPECT_TRUE(valid_username("alice"));
  EXPECT_TRUE(valid_username("+15551234"));
  EXPECT_FALSE(valid_username("a@b"));
  EXPECT_FALSE(valid_username("a:b"));
  EXPECT_FALSE(valid_username("a%20b"));
  EXPECT_FALSE(valid_username("a\"b"));
  EXPECT_FALSE(valid_username(std::string(1, '\0')));
  EXPECT_TRUE(valid_username(std::string(128, 'a')));
  EXPECT_FALSE(valid_username(std::string(129, 'a')));

  EXPECT_EQ(admin_canonical_aor("alice@example.com:5070").value(), "sip:alice@example.com:5070");
  EXPECT_EQ(admin_canonical_aor("sip:alice:pw@Example.com").value(), "sip:alice@example.com");
  EXPECT_FALSE(admin_canonical_aor("sip:example.com").ok());  // no user part
  EXPECT_FALSE(admin_canonical_aor("mailto:alice@example.com").ok());
}

}  // namespace
}  // namespace pinhole::app
