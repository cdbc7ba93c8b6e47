// RFC 4475 conformance: every torture message in the shared corpus meets its verdict.
//
// The expectation for each message comes from verdicts.tsv, not from this file:
//  - valid: parses (datagram rules) and passes the element's sanity checks;
//  - invalid: refused, by the parser or by sanity, with the status the verdict names (400 when
//    it names none); a response is dropped (any error);
//  - app: the torture sits above the parser. Where the verdict names a reaction of the element
//    in front (a proxy: 416, 420, 483, or a plain "reject 400"), sanity gives that status; where
//    it names a UAS's or a registrar's reaction, the message must pass this layer untouched.
// On top of the verdict, the valid messages get field checks: the parsed values below were read
// off the RFC 4475 text of each message.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "sip/message.h"
#include "sip/sanity.h"
#include "sip/transaction_key.h"
#include "sip/uri.h"

namespace pinhole::sip {
namespace {

namespace fs = std::filesystem;

const fs::path kCorpus = PINHOLE_RFC4475_DIR;

struct Verdict {
  std::string name, section, cls, text;
};

std::vector<Verdict> load_verdicts() {
  std::vector<Verdict> out;
  std::ifstream in(kCorpus / "verdicts.tsv");
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::stringstream ss(line);
    Verdict v;
    std::getline(ss, v.name, '\t');
    std::getline(ss, v.section, '\t');
    std::getline(ss, v.cls, '\t');
    std::getline(ss, v.text);
    out.push_back(v);
  }
  return out;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// What this layer must do with a message, derived from its verdict line.
struct Expectation {
  bool accept = true;
  int status = 0;  // for requests that are refused
};

Expectation expectation_for(const Verdict& v, bool is_response) {
  std::smatch m;
  // The status an element answers with follows the verb naming the reaction ("reject 505",
  // "a proxy answers 483", "discard or 400"); "200 OK" in a description is not one.
  static const std::regex kStatus(R"((?:reject|rejects|answers|challenges|or) ([1-6][0-9][0-9])\b)");
  bool names_status = std::regex_search(v.text, m, kStatus);
  if (v.cls == "valid") return {true, 0};
  if (v.cls == "invalid") {
    if (is_response) return {false, 0};
    return {false, names_status ? std::stoi(m[1]) : 400};
  }
  // app: reactions of a UAS or registrar belong to layers above the element's sanity checks, and
  // a response has no one to answer.
  if (is_response) return {true, 0};
  bool upper_layer = v.text.find("UAS") != std::string::npos || v.text.find("registrar") != std::string::npos;
  if (upper_layer || !names_status) return {true, 0};
  return {false, std::stoi(m[1])};
}

struct Outcome {
  bool parsed = false;
  bool accepted = false;
  int status = 0;
  std::string what;
  MessagePtr msg;
};

Outcome run(const std::string& bytes) {
  Outcome o;
  auto r = Message::parse(bytes, Framing::kDatagram);
  if (!r) {
    o.status = r.error().status;
    o.what = std::string(r.error().what);
    return o;
  }
  o.parsed = true;
  o.msg = std::move(r.value());
  SanityPolicy policy;  // a forwarding element that supports no Proxy-Require option
  Status st = o.msg->is_request() ? check_request(*o.msg, policy) : check_response(*o.msg);
  o.accepted = st.ok();
  if (!st.ok()) {
    o.status = st.error().status;
    o.what = std::string(st.error().what);
  }
  return o;
}

Uri must_parse_uri(std::string_view s) {
  auto u = parse_uri(s);
  EXPECT_TRUE(u.ok()) << s;
  return u.ok() ? *u : Uri{};
}

using FieldCheck = std::function<void(const Message&, const std::string& file_bytes)>;

const std::map<std::string, FieldCheck>& field_checks() {
  static const std::map<std::string, FieldCheck> checks = {
      {"wsinv",
       [](const Message& m, const std::string&) {
         EXPECT_EQ(m.method(), Method::kInvite);
         EXPECT_EQ(m.request_uri().user, "vivekg");
         EXPECT_EQ(m.request_uri().host, "chair-dnrc.example.com");
         EXPECT_TRUE(m.request_uri().has_param("unknownparam"));
         EXPECT_EQ((*m.to())->tag, "1918181833n");
         EXPECT_EQ((*m.from())->display_name, R"(J Rosenberg \\\")");
         EXPECT_TRUE((*m.from())->display_quoted);
         EXPECT_EQ((*m.from())->tag, "98asjd8");
         EXPECT_EQ(**m.max_forwards(), 68);
         EXPECT_EQ(m.cseq()->number, 9u);
         EXPECT_EQ(m.cseq()->method, Method::kInvite);
         auto vias = *m.vias();
         ASSERT_EQ(vias.size(), 3u);
         EXPECT_EQ(vias[0].transport, "UDP");
         EXPECT_EQ(vias[0].host, "192.0.2.2");
         EXPECT_EQ(vias[0].branch, "390skdjuw");
         EXPECT_FALSE(vias[0].rfc3261_branch());
         EXPECT_EQ(vias[1].transport, "TCP");
         EXPECT_EQ(vias[1].host, "spindle.example.com");
         EXPECT_EQ(vias[1].branch, "z9hG4bK9ikj8");
         EXPECT_EQ(vias[2].host, "192.168.255.111");
         EXPECT_EQ(vias[2].branch, "z9hG4bK30239");
         auto contacts = *m.contacts();
         ASSERT_EQ(contacts.size(), 1u);
         EXPECT_EQ(contacts[0].display_name, R"(Quoted string \"\")");
         EXPECT_EQ(contacts[0].q, "0.33");
         EXPECT_EQ(contacts[0].param("newparam")->value, "newvalue");
         EXPECT_TRUE(contacts[0].param("secondparam").has_value());
         const HeaderField* subject = m.header("Subject");
         ASSERT_NE(subject, nullptr);
         EXPECT_EQ(subject->value, "");
         const HeaderField* nf = m.header("newfangledheader");
         ASSERT_NE(nf, nullptr);
         EXPECT_TRUE(nf->value.starts_with("newfangled value"));
         EXPECT_TRUE(nf->value.ends_with("continued newfangled value"));
         auto routes = *m.routes();
         ASSERT_EQ(routes.size(), 1u);
         EXPECT_EQ(routes[0].uri.host, "services.example.com");
         EXPECT_TRUE(routes[0].uri.loose_route());
         EXPECT_EQ(m.body().size(), 150u);
         EXPECT_TRUE(m.body().starts_with("v=0"));
       }},
      {"esc01",
       [](const Message& m, const std::string&) {
         EXPECT_EQ(m.request_uri().user, "sips%3Auser%40example.com");
         EXPECT_EQ(unescape(m.request_uri().user), "sips:user@example.com");
         EXPECT_EQ(m.request_uri().host, "example.net");
         EXPECT_TRUE(uri_equal((*m.to())->uri, must_parse_uri("sip:user@example.com")));
         EXPECT_EQ(unescape((*m.from())->uri.user), "I have spaces");
         auto contacts = *m.contacts();
         ASSERT_EQ(contacts.size(), 1u);
         // §3.1.1.3: the Contact's escaped parameter name is "lr" and n%61me=v%61lue%25%34%31 is
         // name=value%41 once unescaped; comparison must unescape.
         EXPECT_TRUE(uri_equal(contacts[0].uri, must_parse_uri("sip:caller@host5.example.net;lr;name=value%2541")));
         EXPECT_FALSE(uri_equal(contacts[0].uri, must_parse_uri("sip:caller@host5.example.net;lr;name=valueA")));
       }},
      {"escnull",
       [](const Message& m, const std::string&) {
         std::string user = unescape((*m.to())->uri.user);
         ASSERT_EQ(user.size(), 11u);
         EXPECT_EQ(user[5], '\0');
         EXPECT_EQ(user.substr(6), "-null");
         auto contacts = *m.contacts();
         ASSERT_EQ(contacts.size(), 2u);
         EXPECT_EQ(unescape(contacts[0].uri.user), std::string(1, '\0'));
         EXPECT_EQ(unescape(contacts[1].uri.user), std::string(2, '\0'));
       }},
      {"longreq",
       [](const Message& m, const std::string&) {
         auto vias = *m.vias();
         ASSERT_EQ(vias.size(), 34u);
         EXPECT_EQ(vias[0].host, "sip33.example.com");
         EXPECT_EQ(vias[32].host, "sip1.example.com");
         EXPECT_EQ(vias[33].host, "host.example.com");
         EXPECT_EQ(vias[33].received, "192.0.2.5");
         EXPECT_GT(vias[33].branch.size(), 100u);
         EXPECT_EQ((*m.to())->uri.port, 6000);
         EXPECT_NE((*m.to())->display_name.find("extremeextremeextreme"), std::string_view::npos);
         EXPECT_GT((*m.to())->uri.params.size(), 100u);
         EXPECT_GT((*m.from())->tag.size(), 100u);
         EXPECT_TRUE(m.call_id()->starts_with("longreq.onereallyreally"));
         EXPECT_EQ(m.body().size(), 150u);
       }},
      {"mpart01",
       [](const Message& m, const std::string&) {
         EXPECT_EQ(m.method(), Method::kMessage);
         auto ct = *m.content_type();
         ASSERT_TRUE(ct.has_value());
         EXPECT_TRUE(ct->is("multipart", "mixed"));
         EXPECT_EQ(m.body().size(), 553u);
         EXPECT_NE(m.body().find('\0'), std::string_view::npos);
         EXPECT_TRUE(m.body().ends_with("--7a9cbec02ceef655--\r\n"));
         EXPECT_TRUE((*m.top_via())->has_rport);
       }},
      {"transports",
       [](const Message& m, const std::string&) {
         auto vias = *m.vias();
         ASSERT_EQ(vias.size(), 5u);
         const char* transports[] = {"UDP", "SCTP", "TLS", "UNKNOWN", "TCP"};
         for (size_t i = 0; i < 5; ++i) {
           EXPECT_EQ(vias[i].transport, transports[i]);
           EXPECT_EQ(vias[i].host, "t" + std::to_string(i + 1) + ".example.com");
         }
         EXPECT_EQ(*m.call_id(), "transports.kijh4akdnaqjkwendsasfdj");
       }},
      {"dblreq",
       [](const Message& m, const std::string& file) {
         EXPECT_EQ(m.method(), Method::kRegister);
         EXPECT_LT(m.bytes().size(), file.size());
         EXPECT_EQ(m.body().size(), 0u);
         EXPECT_EQ(*m.call_id(), "dblreq.0ha0isndaksdj99sdfafnl3lk233412");
         EXPECT_EQ(m.bytes().find("INVITE"), std::string_view::npos);
       }},
      {"semiuri",
       [](const Message& m, const std::string&) {
         EXPECT_EQ(m.request_uri().user, "user;par=u%40example.net");
         EXPECT_EQ(m.request_uri().host, "example.com");
         EXPECT_TRUE(m.request_uri().params.empty());
         const HeaderField* accept = m.header("Accept");
         ASSERT_NE(accept, nullptr);
         EXPECT_TRUE(accept->value.ends_with("message/sipfrag"));
       }},
      {"intmeth",
       [](const Message& m, const std::string&) {
         EXPECT_EQ(m.method(), Method::kOther);
         EXPECT_EQ(m.method_name(), "!interesting-Method0123456789_*+`.%indeed'~");
         EXPECT_EQ(m.cseq()->method_name, m.method_name());
         EXPECT_EQ(m.request_uri().user, "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
         EXPECT_EQ(m.request_uri().password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
         EXPECT_EQ(m.request_uri().host, "example.com");
         EXPECT_EQ((*m.from())->display_name, "token1~` token2'+_ token3*%!.-");
         EXPECT_EQ((*m.from())->tag, "_token~1'+`*%!-.");
         EXPECT_NE(m.header("extensionHeader-!.%*+_`'~"), nullptr);
       }},
      {"esc02",
       [](const Message& m, const std::string&) {
         EXPECT_EQ(m.method(), Method::kOther);  // RE%47IST%45R is not REGISTER
         EXPECT_EQ(m.contacts()->size(), 2u);    // C%6Fntact is an unknown header
         EXPECT_EQ((*m.top_via())->branch, "z9hG4bK209%fzsnel234");
         EXPECT_EQ((*m.to())->display_name, "%Z%45");
       }},
      {"lwsdisp",
       [](const Message& m, const std::string&) {
         EXPECT_EQ((*m.from())->display_name, "caller");
         EXPECT_FALSE((*m.from())->display_quoted);
         EXPECT_EQ((*m.from())->tag, "323");
       }},
      {"unreason",
       [](const Message& m, const std::string&) {
         EXPECT_EQ(m.status(), 200);
         EXPECT_TRUE(m.reason().starts_with("= 2**3 * 5**2 "));
       }},
      {"noreason",
       [](const Message& m, const std::string&) {
         EXPECT_EQ(m.status(), 100);
         EXPECT_EQ(m.reason(), "");
       }},
      {"cparam01",
       [](const Message& m, const std::string&) {
         auto c = (*m.contacts())[0];
         EXPECT_TRUE(c.uri.params.empty());  // bare addr-spec: the parameter binds to the header
         EXPECT_TRUE(c.param("unknownparam").has_value());
       }},
      {"cparam02",
       [](const Message& m, const std::string&) {
         auto c = (*m.contacts())[0];
         EXPECT_TRUE(c.uri.has_param("unknownparam"));
         EXPECT_TRUE(c.params.empty());
       }},
      {"regescrt",
       [](const Message& m, const std::string&) {
         EXPECT_EQ((*m.contacts())[0].uri.headers, "Route=%3Csip:sip.example.com%3E");
       }},
      {"unksm2",
       [](const Message& m, const std::string&) {
         EXPECT_EQ((*m.to())->uri.scheme, UriScheme::kOther);
         EXPECT_EQ((*m.to())->uri.scheme_text, "isbn");
         EXPECT_EQ((*m.from())->uri.raw, "http://www.example.com");
         EXPECT_EQ((*m.contacts())[0].uri.scheme_text, "name");
       }},
      {"bcast", [](const Message& m, const std::string&) { EXPECT_EQ((*m.vias())[1].host, "255.255.255.255"); }},
      {"badbranch",
       [](const Message& m, const std::string&) {
         EXPECT_EQ((*m.top_via())->branch, "z9hG4bK");
         EXPECT_FALSE((*m.top_via())->rfc3261_branch());  // the cookie alone is not an RFC 3261 branch
         EXPECT_TRUE(server_transaction_key(m).ok());
       }},
      {"inv2543",
       [](const Message& m, const std::string&) {
         EXPECT_FALSE((*m.top_via())->has_branch);
         EXPECT_FALSE(m.max_forwards()->has_value());
         EXPECT_TRUE(server_transaction_key(m).ok());
       }},
      {"zeromf", [](const Message& m, const std::string&) { EXPECT_EQ(**m.max_forwards(), 0); }},
  };
  return checks;
}

TEST(Rfc4475, CorpusIsPresent) {
  ASSERT_TRUE(fs::exists(kCorpus / "verdicts.tsv")) << "missing RFC 4475 corpus at " << kCorpus;
  EXPECT_EQ(load_verdicts().size(), 49u);
}

TEST(Rfc4475, EveryMessageMeetsItsVerdict) {
  auto verdicts = load_verdicts();
  ASSERT_FALSE(verdicts.empty()) << "no verdicts read from " << kCorpus;
  size_t field_checked = 0;
  for (const auto& v : verdicts) {
    SCOPED_TRACE(v.name + " (" + v.cls + "): " + v.text);
    fs::path file = kCorpus / (v.name + ".dat");
    ASSERT_TRUE(fs::exists(file)) << file;
    std::string bytes = read_file(file);
    bool is_response = bytes.starts_with("SIP/");
    Expectation want = expectation_for(v, is_response);
    Outcome got = run(bytes);
    if (want.accept) {
      ASSERT_TRUE(got.parsed) << "parse refused: " << got.status << " " << got.what;
      EXPECT_TRUE(got.accepted) << "sanity refused: " << got.status << " " << got.what;
    } else {
      EXPECT_FALSE(got.parsed && got.accepted) << "accepted, expected refusal";
      if (want.status != 0) {
        EXPECT_EQ(got.status, want.status) << got.what;
      }
    }
    auto check = field_checks().find(v.name);
    if (check != field_checks().end() && got.msg) {
      check->second(*got.msg, bytes);
      ++field_checked;
    }
  }
  EXPECT_GE(field_checked, 8u);
}

}  // namespace
}  // namespace pinhole::sip
