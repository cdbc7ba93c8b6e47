// BorderBindings: what an edge in front of an upstream registrar (border mode, docs/config.md
// `border:`) knows about the registrations it relays, learned from the upstream's 2xx answers.
//
// Why it exists (the idea behind OpenSIPS's mid-registrar, done on the edge):
// - Short leases. A NATed UDP phone is told to refresh every `lease` seconds (default 60) so that
//   a lost NAT mapping (router reboot, conntrack flush) is repaired within that time, while the
//   upstream registrar keeps the expiry the phone originally asked for. The refreshes in between
//   are answered here; only one per upstream interval goes upstream.
// - Rebinding absorbed. The upstream stores our Path, whose flow token names the flow of the
//   upstream registration ("path flow"). When the phone's refresh arrives from a new public port,
//   the binding's current flow moves and requests routed by the old token follow it, so the
//   upstream needs no new REGISTER.
// - Which flows to keep, and how long: the granted expiry of every binding.
//
// Keys: a binding is (AOR, contact key); the contact key is `+sip.instance` + reg-id when the
// phone sent them (RFC 5626), else the Contact URI as sent.
//
// Threads: shared by all workers (a REGISTER and the requests for its binding may land on
// different workers); every member locks one mutex. Lookups are a hash probe under it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "common/clock.h"
#include "net/flow.h"

namespace pinhole::registrar {

struct BorderConfig {
  // The lease a NATed UDP client is granted (never more than the upstream granted). 0: leases
  // off, every REGISTER goes upstream (the table still tracks expiry and flows).
  std::chrono::seconds lease{60};
  // A refresh is answered here only while the upstream binding outlives the next client refresh
  // by this much; later ones go upstream (time for its transaction and a retry).
  std::chrono::seconds refresh_margin{30};
  // Whether a refresh from a new source port (same address) moves the binding to the new flow
  // without asking upstream. A new address always goes upstream: the upstream authenticates it,
  // so nobody can take a binding over from another network without credentials.
  bool absorb_rebinding = true;
  // Bindings kept at most (a REGISTER for a new one beyond it is simply not tracked).
  size_t max_bindings = 1'000'000;
};

// One Contact of a REGISTER as the table needs it.
struct BorderContact {
  std::string key;                  // instance + reg-id, or the Contact URI as sent
  std::optional<uint32_t> expires;  // the Contact's expires, else the request's Expires header
};

// A REGISTER from a client, reduced to what decides its fate.
struct BorderRegister {
  std::string aor;  // canonical To AOR
  std::string call_id;
  uint32_t cseq = 0;
  bool star = false;  // Contact: *
  std::vector<BorderContact> contacts;
  net::Flow source;
  bool nat_udp = false;  // NATed client over UDP: gets the short lease
};

// What the client is told for one of its contacts in a locally answered refresh.
struct LocalGrant {
  std::string key;
  uint32_t expires = 0;
};

struct BorderDecision {
  enum class Kind : uint8_t {
    kForward,        // send upstream (rewrite the expires asked to `upstream_expires` when set)
    kAnswerLocally,  // a refresh within the upstream's interval: 200 here with `grants`
  };
  Kind kind = Kind::kForward;
  std::optional<uint32_t> upstream_expires;  // the interval the client originally asked for
  std::vector<LocalGrant> grants;
  bool rebinding = false;  // answered locally from a new source port: the binding moved
};

// One binding as the admin API and the tests see it.
struct BorderBindingView {
  std::string aor;
  std::string key;
  net::Flow flow;       // where requests for it go now
  net::Flow path_flow;  // the flow named by the Path the upstream stored
  uint32_t asked_expires = 0;
  std::chrono::seconds upstream_remaining{0};
  std::chrono::seconds lease{0};  // 0: not leased
  uint64_t rebindings = 0;
};

class BorderBindings {
 public:
  explicit BorderBindings(BorderConfig config) : config_(config) {}

  const BorderConfig& config() const { return config_; }

  // A REGISTER from a client: answer it here or send it upstream. Answering here also records the
  // refresh (CSeq, flow, lease) as done.
  BorderDecision decide(const BorderRegister& reg, TimePoint now);

  // The upstream's 2xx to a REGISTER we forwarded: `granted` holds, for each of the request's
  // contacts the 2xx lists, the expires it granted; contacts it does not list (or lists with 0)
  // are gone. `path_flow` is the flow our Path token named. Returns what to tell the client for
  // each contact (the lease for NATed UDP, the granted expires otherwise).
  std::vector<LocalGrant> learn(const BorderRegister& reg, const net::Flow& path_flow,
                                const std::vector<LocalGrant>& granted, TimePoint now);

  // The flow a request routed to `named` (a token's flow) must go out on: the binding's current
  // flow when `named` is one of its path or earlier flows; none when no binding knows it.
  std::optional<net::Flow> current_flow(const net::Flow& named) const;

  // Drops bindings whose upstream registration expired; returns how many.
  size_t expire(TimePoint now);

  size_t size() const;
  std::vector<BorderBindingView> list(TimePoint now) const;

 private:
  struct Binding {
    std::string aor;
    std::string key;
    std::string call_id;
    uint32_t cseq = 0;
    net::Flow flow;
    net::Flow path_flow;
    std::vector<net::Flow> earlier_flows;  // flows it moved away from (bounded)
    uint32_t asked_expires = 0;
    TimePoint upstream_expiry{};
    std::chrono::seconds lease{0};
    uint64_t rebindings = 0;
    TimePoint refreshed{};  // last REGISTER, here or upstream
  };
  using BindingKey = std::pair<std::string, std::string>;  // (aor, contact key)

  // Whether `reg`'s contact `c` may be refreshed here; sets `moved` when from a new port.
  bool absorbable(const Binding& b, const BorderRegister& reg, const BorderContact& c, TimePoint now,
                  bool& moved) const;
  void index_flow(const net::Flow& flow, const BindingKey& key);
  void unindex_flow(const net::Flow& flow, const BindingKey& key);
  void unindex(const Binding& b);
  void erase(absl::flat_hash_map<BindingKey, Binding>::iterator it);

  const BorderConfig config_;
  mutable std::mutex mu_;
  absl::flat_hash_map<BindingKey, Binding> bindings_;
  // Path, current and earlier flows -> the bindings that use them (several lines of one phone
  // share its flow; a token names the flow, so the most recently refreshed binding decides).
  absl::flat_hash_map<net::Flow, std::vector<BindingKey>> by_flow_;
};

}  // namespace pinhole::registrar
