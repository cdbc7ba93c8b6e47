// The daemon's media relay, built from the `media:` config (docs/config.md): the built-in relay
// (media/builtin_relay.h) when no remote relays are listed, else the pool of remote ng relays
// (media/ng_relay_pool.h). Hands the daemon what proxy::MediaServices needs: the relay and the
// addresses relays write into SDPs.
//
// Ownership and threads: the daemon owns the MediaRuntime (built on the main thread before the
// workers start, stopped after they have stopped) and the relay inside it; relay() stays valid
// for the runtime's life. start() and stop() on the main thread; relay().request() from any.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "app/config.h"
#include "common/metrics.h"
#include "common/result.h"
#include "net/address.h"
#include "proxy/media_services.h"

namespace pinhole::app {

class MediaRuntime {
 public:
  // Builds the relay `config.media` describes; `metrics` must outlive the runtime (the remote
  // pool registers its counters). Error{500} with the reason when it cannot be built (a socket
  // or thread that cannot be created). Do not call when config.proxy.media.enabled is false: the
  // proxy then has no media services at all.
  static Result<std::unique_ptr<MediaRuntime>> create(const Config& config, MetricsRegistry& metrics);
  virtual ~MediaRuntime() = default;

  // Starts the relay's threads. Once, before the first request.
  virtual void start() = 0;
  // Stops the threads; requests still in flight are answered 503 and later ones too.
  // Idempotent; the destructor stops as well.
  virtual void stop() = 0;

  virtual proxy::MediaRelay& relay() = 0;
  // For MediaServices::relay_addresses: the built-in relay's advertised address, or the remote
  // relays' IPs (pinhole-media and rtpengine write their own address, usually the ng one).
  const std::vector<net::Address>& relay_addresses() const { return relay_addresses_; }
  // "built-in relay on 203.0.113.20 ports 30000-39999" / "2 remote ng relays": for the start-up log.
  const std::string& description() const { return description_; }

 protected:
  MediaRuntime() = default;
  std::vector<net::Address> relay_addresses_;
  std::string description_;
};

}  // namespace pinhole::app
