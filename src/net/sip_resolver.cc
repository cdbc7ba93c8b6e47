// RFC 3263 §4 target selection over c-ares, and the upstream refresher.
//
// Lookups run in at most three stages (NAPTR; SRV; A/AAAA), the queries of one stage in
// parallel on one channel, driven by poll() until they are all answered or the stage deadline
// passes. c-ares 1.18 hands back raw answers which dns_message.h parses (for the TTLs).
#include "net/sip_resolver.h"

#include <ares.h>
#include <netdb.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string_view>
#include <utility>

#include "net/dns_message.h"

namespace pinhole::net {
namespace {

using Clock = std::chrono::steady_clock;

constexpr Error kNotSip{400, "not a sip or sips URI"};
constexpr Error kSipsOverUdp{400, "sips URI with transport=udp"};
constexpr Error kBadMaddr{400, "invalid maddr"};
constexpr Error kUnsupportedTransport{503, "transport not supported"};
constexpr Error kTimedOut{503, "DNS lookup timed out"};
constexpr Error kNotFound{503, "DNS name not found"};
constexpr Error kNoAddresses{503, "no addresses for the host"};
constexpr Error kCancelled{503, "DNS lookup cancelled"};
constexpr Error kSetup{503, "DNS resolver setup failed"};

// TTL reported when no DNS record was involved (numeric host, /etc/hosts).
constexpr std::chrono::seconds kNoTtl = std::chrono::hours(24);
constexpr int kClassIn = 1;

bool equals_ignore_case(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i];
    char y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

std::string lower_name(std::string_view name) {
  std::string out(name);
  for (char& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

// NAPTR services of RFC 3263 §4.1 and RFC 7118 §5 (WebSocket), with the transport they mean.
struct NaptrService {
  std::string_view service;
  Transport transport;
  bool secure;  // usable for a sips URI
};
constexpr NaptrService kNaptrServices[] = {
    {"SIP+D2U", Transport::kUdp, false}, {"SIP+D2T", Transport::kTcp, false}, {"SIPS+D2T", Transport::kTls, true},
    {"SIP+D2W", Transport::kWs, false},  {"SIPS+D2W", Transport::kWss, true},
};

// The SRV owner prefix for a transport (RFC 3263 §4.1: TLS is "_sips._tcp"); WebSocket has
// none (RFC 7118 defines no SRV use).
std::optional<std::string_view> srv_prefix(Transport t) {
  switch (t) {
    case Transport::kUdp:
      return "_sip._udp.";
    case Transport::kTcp:
      return "_sip._tcp.";
    case Transport::kTls:
      return "_sips._tcp.";
    case Transport::kWs:
    case Transport::kWss:
      return std::nullopt;
  }
  return std::nullopt;
}

timeval to_timeval(Clock::duration d) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  if (us < 0) us = 0;
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(us / 1000000);
  tv.tv_usec = static_cast<suseconds_t>(us % 1000000);
  return tv;
}

void ensure_library_initialised() {
  // ares_library_init is not thread-safe; a function-local static runs it exactly once.
  static const int status = ares_library_init(ARES_LIB_INIT_ALL);
  (void)status;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// c-ares plumbing

struct SipResolver::Impl {
  // How one query ended, as far as RFC 3263 cares.
  enum class Outcome : uint8_t { kAnswer, kNoData, kNxdomain, kUnreachable, kCancelled };

  struct Query {
    Impl* impl = nullptr;
    std::string name;
    DnsType type = DnsType::kA;
    int status = ARES_ECANCELLED;
    std::vector<uint8_t> answer;
    Outcome outcome = Outcome::kCancelled;
    DnsResponse response;

    static Query make(std::string name, DnsType type) {
      Query q;
      q.name = std::move(name);
      q.type = type;
      return q;
    }
  };

  // A/AAAA results for one name.
  struct Addresses {
    std::vector<Address> v4;
    std::vector<Address> v6;
    bool nxdomain = false;
    bool unreachable = false;
  };

  ResolverOptions options;
  ares_channel channel = nullptr;
  int cancel_fd = -1;
  std::atomic<bool> cancelled{false};
  std::mt19937 random{std::random_device{}()};
  int pending = 0;
  bool deadline_hit = false;

  ~Impl() {
    if (channel != nullptr) ares_destroy(channel);
    if (cancel_fd >= 0) ::close(cancel_fd);
  }

  static void on_answer(void* arg, int status, int /*timeouts*/, unsigned char* abuf, int alen) {
    auto* q = static_cast<Query*>(arg);
    q->status = status;
    if (abuf != nullptr && alen > 0) q->answer.assign(abuf, abuf + alen);
    --q->impl->pending;
  }

  // Sends every query and waits for all of them (or the stage deadline, or cancel()).
  void run_stage(std::vector<Query>& queries) {
    deadline_hit = false;
    for (Query& q : queries) {
      q.impl = this;
      ++pending;
      ares_query(channel, q.name.c_str(), kClassIn, static_cast<int>(q.type), &Impl::on_answer, &q);
    }
    drive(Clock::now() + options.timeout * std::max(options.tries, 1));
    for (Query& q : queries) classify(q);
  }

  void drive(Clock::time_point deadline) {
    while (pending > 0) {
      if (cancelled.load(std::memory_order_acquire)) {
        ares_cancel(channel);  // runs the callbacks with ARES_ECANCELLED
        continue;
      }
      Clock::time_point now = Clock::now();
      if (now >= deadline) {
        deadline_hit = true;
        ares_cancel(channel);
        continue;
      }
      ares_socket_t sockets[ARES_GETSOCK_MAXNUM];
      int mask = ares_getsock(channel, sockets, ARES_GETSOCK_MAXNUM);
      pollfd fds[ARES_GETSOCK_MAXNUM + 1];
      nfds_t n = 0;
      for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
        short events = 0;
        if (ARES_GETSOCK_READABLE(mask, i)) events |= POLLIN;
        if (ARES_GETSOCK_WRITABLE(mask, i)) events |= POLLOUT;
        if (events != 0) fds[n++] = pollfd{sockets[i], events, 0};
      }
      fds[n++] = pollfd{cancel_fd, POLLIN, 0};
      timeval max_wait = to_timeval(deadline - now);
      timeval wait{};
      timeval* t = ares_timeout(channel, &max_wait, &wait);
      // Round up: a sub-millisecond wait rounded down to 0 would spin.
      long ms = t->tv_sec * 1000 + (t->tv_usec + 999) / 1000;
      int ready = ::poll(fds, n, static_cast<int>(std::min(ms, 60000L)));
      if (ready < 0 && errno != EINTR) {
        ares_cancel(channel);
        continue;
      }
      bool processed = false;
      for (nfds_t i = 0; ready > 0 && i + 1 < n; ++i) {
        if (fds[i].revents == 0) continue;
        bool readable = (fds[i].revents & (POLLIN | POLLERR | POLLHUP)) != 0;
        bool writable = (fds[i].revents & POLLOUT) != 0;
        ares_process_fd(channel, readable ? fds[i].fd : ARES_SOCKET_BAD, writable ? fds[i].fd : ARES_SOCKET_BAD);
        processed = true;
      }
      // Nothing readable: let c-ares run its retry timers.
      if (!processed) ares_process_fd(channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    }
  }

  void classify(Query& q) {
    switch (q.status) {
      case ARES_SUCCESS: {
        auto parsed = parse_dns_response(q.answer);
        if (parsed.ok()) {
          q.response = std::move(parsed).value();
          q.outcome = Outcome::kAnswer;
        } else {
          q.outcome = Outcome::kNoData;
        }
        break;
      }
      case ARES_ENOTFOUND:
        q.outcome = Outcome::kNxdomain;
        break;
      case ARES_ETIMEOUT:
      case ARES_ECONNREFUSED:
        q.outcome = Outcome::kUnreachable;
        break;
      case ARES_ECANCELLED:
      case ARES_EDESTRUCTION:
        q.outcome = deadline_hit && !cancelled.load() ? Outcome::kUnreachable : Outcome::kCancelled;
        break;
      default:  // ENODATA, SERVFAIL, REFUSED, FORMERR, NOTIMP, BADRESP...: a negative answer
        q.outcome = Outcome::kNoData;
        break;
    }
  }

  // /etc/hosts, only when the system's resolver configuration is in use.
  bool from_hosts_file(const std::string& name, Addresses& out) {
    if (!options.servers.empty()) return false;
    bool found = false;
    for (int family : {AF_INET, AF_INET6}) {
      if (family == AF_INET6 && !options.ipv6) continue;
      hostent* host = nullptr;
      if (ares_gethostbyname_file(channel, name.c_str(), family, &host) != ARES_SUCCESS || host == nullptr) continue;
      for (char** p = host->h_addr_list; *p != nullptr; ++p) {
        if (host->h_addrtype == AF_INET && host->h_length == 4) {
          std::array<uint8_t, 4> bytes{};
          std::memcpy(bytes.data(), *p, 4);
          out.v4.push_back(Address::v4(bytes));
          found = true;
        } else if (host->h_addrtype == AF_INET6 && host->h_length == 16) {
          std::array<uint8_t, 16> bytes{};
          std::memcpy(bytes.data(), *p, 16);
          out.v6.push_back(Address::v6(bytes));
          found = true;
        }
      }
      ares_free_hostent(host);
    }
    return found;
  }

  // A (and AAAA) for each name, in parallel. Returns false when cancelled.
  bool lookup_addresses(const std::vector<std::string>& names, std::vector<Addresses>& out, uint32_t& min_ttl) {
    out.assign(names.size(), Addresses{});
    std::vector<Query> queries;
    std::vector<size_t> owner;  // index into names per query
    for (size_t i = 0; i < names.size(); ++i) {
      if (from_hosts_file(names[i], out[i])) continue;
      queries.push_back(Query::make(names[i], DnsType::kA));
      owner.push_back(i);
      if (options.ipv6) {
        queries.push_back(Query::make(names[i], DnsType::kAaaa));
        owner.push_back(i);
      }
    }
    if (queries.empty()) return true;
    run_stage(queries);
    for (size_t k = 0; k < queries.size(); ++k) {
      const Query& q = queries[k];
      Addresses& a = out[owner[k]];
      switch (q.outcome) {
        case Outcome::kCancelled:
          return false;
        case Outcome::kUnreachable:
          a.unreachable = true;
          break;
        case Outcome::kNxdomain:
          a.nxdomain = true;
          break;
        case Outcome::kNoData:
          break;
        case Outcome::kAnswer:
          for (const DnsRecord* r : answers_for(q.response, q.name, q.type, min_ttl))
            (q.type == DnsType::kA ? a.v4 : a.v6).push_back(r->address);
          break;
      }
    }
    return true;
  }
};

// ---------------------------------------------------------------------------------------------
// SipResolver

SipResolver::SipResolver(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SipResolver::~SipResolver() = default;

Result<std::unique_ptr<SipResolver>> SipResolver::create(const ResolverOptions& options) {
  ensure_library_initialised();
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->cancel_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (impl->cancel_fd < 0) return kSetup;

  ares_options ares{};
  ares.timeout = static_cast<int>(std::max<int64_t>(options.timeout.count(), 1));
  ares.tries = std::max(options.tries, 1);
  // EDNS0: NAPTR and SRV sets with their targets outgrow 512 bytes (c-ares falls back to TCP
  // on truncation either way).
  ares.flags = ARES_FLAG_EDNS;
  ares.ednspsz = 1232;
  int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_FLAGS | ARES_OPT_EDNSPSZ;
  if (ares_init_options(&impl->channel, &ares, mask) != ARES_SUCCESS) {
    impl->channel = nullptr;
    return kSetup;
  }
  if (!options.servers.empty()) {
    std::string csv;
    for (const Endpoint& s : options.servers) {
      if (!csv.empty()) csv.push_back(',');
      if (s.port != 0) {
        csv += s.to_string();
      } else {
        csv += s.address.is_v6() ? "[" + s.address.to_string() + "]" : s.address.to_string();
      }
    }
    if (ares_set_servers_ports_csv(impl->channel, csv.c_str()) != ARES_SUCCESS) return kSetup;
  }
  return std::unique_ptr<SipResolver>(new SipResolver(std::move(impl)));
}

void SipResolver::cancel() {
  impl_->cancelled.store(true, std::memory_order_release);
  uint64_t one = 1;
  // The counter only wakes poll(); a full counter (never in practice) is already a wake-up.
  [[maybe_unused]] ssize_t n = ::write(impl_->cancel_fd, &one, sizeof one);
}

Result<std::vector<SipTarget>> SipResolver::resolve(const sip::Uri& uri, std::chrono::seconds* ttl) {
  using Outcome = Impl::Outcome;
  last_error_.clear();
  std::string_view host = uri.host;
  auto fail = [&](Error e) -> Result<std::vector<SipTarget>> {
    last_error_ = std::string(host.empty() ? std::string_view("(no host)") : host) + ": " + std::string(e.what);
    return e;
  };
  if (!uri.is_sip()) return fail(kNotSip);
  if (impl_->cancelled.load(std::memory_order_acquire)) return fail(kCancelled);
  const bool sips = uri.scheme == sip::UriScheme::kSips;
  const ResolverOptions& options = impl_->options;
  auto supported = [&](Transport t) {
    return std::find(options.supported.begin(), options.supported.end(), t) != options.supported.end();
  };

  // RFC 3263 §4: maddr, when present, is the target instead of the host.
  sip::HostKind kind = uri.host_kind;
  if (auto maddr = uri.param("maddr"); maddr && maddr->has_value) {
    auto k = sip::classify_host(maddr->value);
    if (!k.ok()) return fail(kBadMaddr);
    host = maddr->value;
    kind = *k;
  }

  // The transport the URI demands, if any (RFC 3263 §4.1). Over sips "tcp" means TLS over TCP.
  std::optional<Transport> demanded;
  if (std::string_view param = uri.transport(); !param.empty()) {
    demanded = parse_transport(param);
    if (!demanded) return fail(kUnsupportedTransport);
    if (sips) {
      if (*demanded == Transport::kUdp) return fail(kSipsOverUdp);
      if (*demanded == Transport::kTcp) demanded = Transport::kTls;
      if (*demanded == Transport::kWs) demanded = Transport::kWss;
    }
    if (!supported(*demanded)) return fail(kUnsupportedTransport);
  }
  // Without one: UDP for sip (TCP when UDP is off), TLS for sips.
  std::optional<Transport> fallback = demanded;
  if (!fallback) {
    if (sips) {
      if (supported(Transport::kTls)) fallback = Transport::kTls;
    } else if (supported(Transport::kUdp)) {
      fallback = Transport::kUdp;
    } else if (supported(Transport::kTcp)) {
      fallback = Transport::kTcp;
    }
  }

  // Numeric host: nothing to look up.
  if (kind != sip::HostKind::kName) {
    if (!fallback) return fail(kUnsupportedTransport);
    auto address = Address::parse(host);
    if (!address.ok()) return fail(kBadMaddr);
    uint16_t port = uri.port != 0 ? uri.port : default_sip_port(*fallback);
    if (ttl != nullptr) *ttl = kNoTtl;
    return std::vector<SipTarget>{SipTarget{*fallback, Endpoint{*address, port}, std::string()}};
  }

  const std::string name = lower_name(host);
  uint32_t min_ttl = std::numeric_limits<uint32_t>::max();
  bool unreachable = false;
  std::vector<SipTarget> targets;
  auto add = [&](Transport t, Endpoint e) {
    SipTarget target{t, e, name};
    if (std::find(targets.begin(), targets.end(), target) == targets.end()) targets.push_back(std::move(target));
  };
  auto succeed = [&]() -> Result<std::vector<SipTarget>> {
    if (ttl != nullptr) *ttl = min_ttl == std::numeric_limits<uint32_t>::max() ? kNoTtl : std::chrono::seconds(min_ttl);
    return std::move(targets);
  };

  // SRV sets (already in RFC 2782 order) expanded to addresses, appended to `targets`.
  struct SrvSet {
    Transport transport;
    std::vector<DnsRecord> records;
  };
  auto expand = [&](const std::vector<SrvSet>& sets) -> bool {
    std::vector<std::string> names;
    for (const SrvSet& set : sets)
      for (const DnsRecord& r : set.records)
        if (std::find(names.begin(), names.end(), r.target) == names.end()) names.push_back(r.target);
    std::vector<Impl::Addresses> addresses;
    if (!impl_->lookup_addresses(names, addresses, min_ttl)) return false;
    for (const SrvSet& set : sets) {
      for (const DnsRecord& r : set.records) {
        auto i = static_cast<size_t>(std::find(names.begin(), names.end(), r.target) - names.begin());
        unreachable = unreachable || addresses[i].unreachable;
        for (const Address& a : addresses[i].v4) add(set.transport, Endpoint{a, r.port});
        for (const Address& a : addresses[i].v6) add(set.transport, Endpoint{a, r.port});
      }
    }
    return true;
  };
  // SRV records usable from one answer ("." means "no such service here", RFC 2782).
  auto srv_records = [&](const Impl::Query& q) {
    std::vector<DnsRecord> records;
    if (q.outcome != Outcome::kAnswer) return records;
    for (const DnsRecord* r : answers_for(q.response, q.name, DnsType::kSrv, min_ttl))
      if (!r->target.empty()) records.push_back(*r);
    order_srv(records, impl_->random);
    return records;
  };

  if (uri.port == 0) {
    std::vector<SrvSet> sets;
    if (!demanded) {
      // §4.1: NAPTR first.
      std::vector<Impl::Query> naptr{Impl::Query::make(name, DnsType::kNaptr)};
      impl_->run_stage(naptr);
      if (naptr[0].outcome == Outcome::kCancelled) return fail(kCancelled);
      if (naptr[0].outcome == Outcome::kUnreachable) return fail(kTimedOut);
      struct Choice {
        const DnsRecord* record;
        Transport transport;
      };
      std::vector<Choice> choices;
      if (naptr[0].outcome == Outcome::kAnswer) {
        for (const DnsRecord* r : answers_for(naptr[0].response, name, DnsType::kNaptr, min_ttl)) {
          if (!equals_ignore_case(r->flags, "s") || r->target.empty()) continue;
          for (const NaptrService& s : kNaptrServices) {
            if (equals_ignore_case(r->service, s.service) && (s.secure || !sips) && supported(s.transport)) {
              choices.push_back(Choice{r, s.transport});
              break;
            }
          }
        }
        std::stable_sort(choices.begin(), choices.end(), [](const Choice& a, const Choice& b) {
          return a.record->order != b.record->order ? a.record->order < b.record->order
                                                    : a.record->preference < b.record->preference;
        });
      }
      if (!choices.empty()) {
        std::vector<Impl::Query> srv;
        srv.reserve(choices.size());
        for (const Choice& c : choices) srv.push_back(Impl::Query::make(c.record->target, DnsType::kSrv));
        impl_->run_stage(srv);
        for (size_t i = 0; i < srv.size(); ++i) {
          if (srv[i].outcome == Outcome::kCancelled) return fail(kCancelled);
          unreachable = unreachable || srv[i].outcome == Outcome::kUnreachable;
          auto records = srv_records(srv[i]);
          if (!records.empty()) sets.push_back(SrvSet{choices[i].transport, std::move(records)});
        }
        if (!sets.empty()) {
          if (!expand(sets)) return fail(kCancelled);
          if (!targets.empty()) return succeed();
          sets.clear();
        }
      }
    }
    // §4.1 without (usable) NAPTR: SRV for the transports we may use, the first that has records
    // in preference order wins; with a transport parameter only that transport's.
    std::vector<Transport> wanted;
    if (demanded) {
      wanted.push_back(*demanded);
    } else if (sips) {
      wanted = {Transport::kTls};
    } else {
      wanted = {Transport::kUdp, Transport::kTcp, Transport::kTls};
    }
    std::vector<Impl::Query> srv;
    std::vector<Transport> srv_transport;
    for (Transport t : wanted) {
      auto prefix = srv_prefix(t);
      if (!prefix || !supported(t)) continue;
      srv.push_back(Impl::Query::make(std::string(*prefix) + name, DnsType::kSrv));
      srv_transport.push_back(t);
    }
    if (!srv.empty()) {
      impl_->run_stage(srv);
      for (size_t i = 0; i < srv.size(); ++i) {
        if (srv[i].outcome == Outcome::kCancelled) return fail(kCancelled);
        unreachable = unreachable || srv[i].outcome == Outcome::kUnreachable;
      }
      for (size_t i = 0; i < srv.size() && sets.empty(); ++i) {
        auto records = srv_records(srv[i]);
        if (!records.empty()) sets.push_back(SrvSet{srv_transport[i], std::move(records)});
      }
      if (!sets.empty()) {
        if (!expand(sets)) return fail(kCancelled);
        if (!targets.empty()) return succeed();
      } else if (unreachable) {
        return fail(kTimedOut);  // every SRV query went unanswered: so would A/AAAA
      }
    }
  }

  // §4.2 with a port or when there is no SRV: the host's own addresses.
  if (!fallback) return fail(kUnsupportedTransport);
  std::vector<Impl::Addresses> addresses;
  if (!impl_->lookup_addresses({name}, addresses, min_ttl)) return fail(kCancelled);
  uint16_t port = uri.port != 0 ? uri.port : default_sip_port(*fallback);
  for (const Address& a : addresses[0].v4) add(*fallback, Endpoint{a, port});
  for (const Address& a : addresses[0].v6) add(*fallback, Endpoint{a, port});
  if (!targets.empty()) return succeed();
  if (addresses[0].unreachable || unreachable) return fail(kTimedOut);
  if (addresses[0].nxdomain) return fail(kNotFound);
  return fail(kNoAddresses);
}

// ---------------------------------------------------------------------------------------------
// ResolvedUpstream

ResolvedUpstream::ResolvedUpstream(std::string uri_text, RefreshOptions refresh)
    : uri_text_(std::move(uri_text)), refresh_(refresh), targets_(std::make_shared<const std::vector<SipTarget>>()) {}

Result<std::unique_ptr<ResolvedUpstream>> ResolvedUpstream::start(std::string uri_text, const ResolverOptions& options,
                                                                  RefreshOptions refresh) {
  // Heap-allocated before parsing: uri_ views into uri_text_, which must not move afterwards.
  std::unique_ptr<ResolvedUpstream> upstream(new ResolvedUpstream(std::move(uri_text), refresh));
  auto uri = sip::parse_uri(upstream->uri_text_);
  if (!uri.ok()) return uri.error();
  if (!uri->is_sip()) return kNotSip;
  upstream->uri_ = *uri;
  auto resolver = SipResolver::create(options);
  if (!resolver.ok()) return resolver.error();
  upstream->resolver_ = std::move(resolver).value();
  std::chrono::milliseconds wait = upstream->refresh_once();
  upstream->thread_ = std::thread([self = upstream.get(), wait] { self->run(wait); });
  return upstream;
}

void ResolvedUpstream::run(std::chrono::milliseconds first_wait) {
  std::chrono::milliseconds next = first_wait;
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      if (wake_.wait_for(lock, next, [this] { return stopping_; })) return;
    }
    next = refresh_once();
  }
}

ResolvedUpstream::~ResolvedUpstream() { stop(); }

std::chrono::milliseconds ResolvedUpstream::refresh_once() {
  std::chrono::seconds ttl{0};
  auto result = resolver_->resolve(uri_, &ttl);
  std::lock_guard lock(mutex_);
  ++refresh_count_;
  if (stopping_) return refresh_.min_interval;
  if (result.ok()) {
    targets_ = std::make_shared<const std::vector<SipTarget>>(std::move(result).value());
    last_error_.clear();
    backoff_ = std::chrono::milliseconds(0);
    return std::clamp<std::chrono::milliseconds>(ttl, refresh_.min_interval, refresh_.max_interval);
  }
  // Keep the last good list: a core that is briefly unresolvable is still where it was.
  last_error_ = resolver_->last_error();
  backoff_ = backoff_.count() == 0 ? refresh_.first_retry : std::min(backoff_ * 2, refresh_.max_retry);
  return backoff_;
}

std::shared_ptr<const std::vector<SipTarget>> ResolvedUpstream::snapshot() const {
  std::lock_guard lock(mutex_);
  return targets_;
}

std::string ResolvedUpstream::last_error() const {
  std::lock_guard lock(mutex_);
  return last_error_;
}

uint64_t ResolvedUpstream::refresh_count() const {
  std::lock_guard lock(mutex_);
  return refresh_count_;
}

void ResolvedUpstream::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (resolver_) resolver_->cancel();
  if (thread_.joinable()) thread_.join();
}

}  // namespace pinhole::net
