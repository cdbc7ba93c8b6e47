// RFC 3263 server location: which transport, address and port to send a request for a SIP or
// SIPS URI to, in the order to try them (NAPTR -> SRV -> A/AAAA, RFC 2782 SRV ordering), built
// on c-ares. Used for the edge's upstream (ResolvedUpstream keeps its list fresh) and for any
// URI the proxy forwards to by name.
//
// Lives in its own library, pinhole_resolver (pinhole_net + pinhole_sip + c-ares), so that
// pinhole_net stays free of the SIP layer and of c-ares.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"
#include "net/address.h"
#include "net/transport.h"
#include "sip/uri.h"

namespace pinhole::net {

// One place to send to, in the order resolve() returns them (RFC 3263 §4.4: try the next one
// when a request to this one fails with a transport error or a timeout, or answers 503).
struct SipTarget {
  Transport transport = Transport::kUdp;
  Endpoint endpoint;
  // The name the address was found for, for TLS SNI and the certificate check (RFC 3263 §4.4
  // and RFC 5922: the URI's host, not the SRV target); empty when the URI's host was numeric.
  std::string host;

  friend bool operator==(const SipTarget&, const SipTarget&) = default;
};

struct ResolverOptions {
  // DNS servers to ask; empty: those of /etc/resolv.conf (and then /etc/hosts is read for
  // A/AAAA too).
  std::vector<Endpoint> servers;
  // Per try of one query (c-ares doubles it on later tries); each lookup stage (NAPTR, SRV,
  // A/AAAA, which run their queries in parallel) gives up after timeout × tries in all.
  std::chrono::milliseconds timeout{2000};
  int tries = 2;
  // Also ask for AAAA records (IPv4 addresses of a target come before its IPv6 ones).
  bool ipv6 = true;
  // Transports this element can send over; NAPTR and SRV records for others are ignored, and a
  // URI that demands another one fails with 503.
  std::vector<Transport> supported = {Transport::kUdp, Transport::kTcp, Transport::kTls};
};

// Blocking RFC 3263 resolution. One c-ares channel per object.
//
// Threads: resolve() may be called from one thread at a time (it blocks that thread up to three
// lookup stages, see ResolverOptions::timeout); it belongs off the event loops (start-up, a
// refresher thread such as ResolvedUpstream's, a helper pool). cancel() may be called from any
// thread. Ownership: the object owns its channel and sockets; results are plain values.
class SipResolver {
 public:
  // Fails (503) when c-ares cannot be set up or the servers are refused.
  static Result<std::unique_ptr<SipResolver>> create(const ResolverOptions& options);
  ~SipResolver();
  SipResolver(const SipResolver&) = delete;
  SipResolver& operator=(const SipResolver&) = delete;

  // Targets for `uri` in the order to try them (RFC 3263 §4, duplicates removed). `ttl`, when
  // given, receives the smallest TTL of the records the answer was built from (one day when no
  // DNS record was involved: a numeric host), for the caller's refresh.
  // Errors: 400 when `uri` is not sip/sips or is inconsistent (sips with transport=udp); 503
  // when the name does not exist, has no usable records, the URI asks for an unsupported
  // transport, or the servers did not answer in time. last_error() then names the host.
  Result<std::vector<SipTarget>> resolve(const sip::Uri& uri, std::chrono::seconds* ttl = nullptr);

  // Why the last resolve() failed, naming the host ("core.example.com: no such domain"); empty
  // after a success. Same thread as resolve().
  const std::string& last_error() const { return last_error_; }

  // Makes the running resolve(), if any, and every later one fail at once (503). For shutdown.
  void cancel();

 private:
  struct Impl;  // c-ares state, in the .cc
  explicit SipResolver(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::string last_error_;
};

// How ResolvedUpstream paces itself. The defaults are the product's; tests shorten them.
struct RefreshOptions {
  std::chrono::milliseconds min_interval{std::chrono::seconds(5)};  // floor for a short TTL
  std::chrono::milliseconds max_interval{std::chrono::hours(1)};    // ceiling for a long TTL
  std::chrono::milliseconds first_retry{std::chrono::seconds(1)};   // after a failure, doubling
  std::chrono::milliseconds max_retry{std::chrono::minutes(1)};
};

// Keeps the targets of one URI fresh on its own thread: re-resolves when the TTL expires
// (clamped to RefreshOptions); when a refresh fails it keeps the last good list and retries with
// a doubling backoff.
//
// Threads: start() resolves once on the calling thread (so the first snapshot is ready when it
// returns), then refreshes on a thread the object owns. snapshot() and last_error() may be
// called from any thread. stop() and the destructor from the owner's thread; both return
// promptly (a lookup in progress is cancelled) and join the refresher.
class ResolvedUpstream {
 public:
  // Fails (400) when `uri_text` is not a sip/sips URI, or when the resolver cannot be created.
  // A first lookup that fails does not fail start(): the snapshot is then empty, last_error()
  // says why, and the refresher keeps trying (a proxy answers 503 meanwhile instead of not
  // starting while its DNS is briefly away).
  static Result<std::unique_ptr<ResolvedUpstream>> start(std::string uri_text, const ResolverOptions& options,
                                                         RefreshOptions refresh = {});
  ~ResolvedUpstream();
  ResolvedUpstream(const ResolvedUpstream&) = delete;
  ResolvedUpstream& operator=(const ResolvedUpstream&) = delete;

  // The current list (never null; empty until a lookup has succeeded). shared_ptr: a reader on
  // a worker thread keeps the list it holds alive while the refresher swaps in a new one.
  std::shared_ptr<const std::vector<SipTarget>> snapshot() const;
  // Why the last lookup failed; empty when it succeeded.
  std::string last_error() const;
  // How many lookups have completed (successful or not); lets tests wait for a refresh.
  uint64_t refresh_count() const;

  void stop();

 private:
  ResolvedUpstream(std::string uri_text, RefreshOptions refresh);
  // One lookup; returns how long to wait before the next one.
  std::chrono::milliseconds refresh_once();
  // The refresher thread's body.
  void run(std::chrono::milliseconds first_wait);

  const std::string uri_text_;  // the Uri below views into it
  sip::Uri uri_;
  RefreshOptions refresh_;
  std::unique_ptr<SipResolver> resolver_;  // used by the refresher thread only, after start()
  std::chrono::milliseconds backoff_{0};   // refresher thread only

  mutable std::mutex mutex_;  // guards the members below
  std::condition_variable wake_;
  std::shared_ptr<const std::vector<SipTarget>> targets_;
  std::string last_error_;
  uint64_t refresh_count_ = 0;
  bool stopping_ = false;

  std::thread thread_;
};

}  // namespace pinhole::net
