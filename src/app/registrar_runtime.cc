#include "app/registrar_runtime.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/startup_error.h"

namespace pinhole::app {
namespace {

// How often a cluster node re-reads the users from the shared store: a user added with `pinhole
// ctl users add` on one node can register on every node within this. A full list is one Redis
// scan (about 100 ms for 100,000 users), cheap at this period; a change notification would need
// a second connection per node for little gain at ctl rates.
constexpr std::chrono::seconds kUsersResyncPeriod{10};

int64_t unix_seconds() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The nonce key when the config names none: a key derived from the flow-token secret (never the
// secret itself: one key, one purpose), so every node that shares flow tokens shares nonces too.
std::string derive_nonce_key(const std::string& flow_token_key) {
  static constexpr std::string_view kLabel = "pinhole digest nonce key v1";
  std::array<unsigned char, EVP_MAX_MD_SIZE> out{};
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), flow_token_key.data(), static_cast<int>(flow_token_key.size()),
           reinterpret_cast<const unsigned char*>(kLabel.data()), kLabel.size(), out.data(), &len) == nullptr)
    return {};
  return {reinterpret_cast<const char*>(out.data()), len};
}

}  // namespace

struct RegistrarRuntime::Parts {
  std::shared_ptr<spdlog::logger> log;
  std::unique_ptr<store::Store> store;
  registrar::Location location;
  registrar::UserDirectory users;
  std::unique_ptr<registrar::RegisterHandler> handler;
  std::unique_ptr<registrar::DigestAuthenticator> auth;
  std::unique_ptr<proxy::RegistrarMetrics> metrics;
  std::unique_ptr<proxy::RegistrarServices> services;
  Counter* expired = nullptr;
  std::optional<boost::asio::steady_timer> timer;
  bool stopped = false;
  // Cluster only: the thread that resyncs users from the shared store (blocking reads, so not on
  // the main loop, which serves the admin API).
  std::thread users_thread;
  std::mutex users_mutex;
  std::condition_variable users_wake;
  bool users_stop = false;  // guarded by users_mutex
  Counter* users_resync_failures = nullptr;

  void stop_users_thread() {
    if (!users_thread.joinable()) return;
    {
      std::lock_guard lock(users_mutex);
      users_stop = true;
    }
    users_wake.notify_all();
    users_thread.join();
  }

  void resync_users_until_stopped() {
    std::unique_lock lock(users_mutex);
    bool failing = false;
    while (!users_wake.wait_for(lock, kUsersResyncPeriod, [this] { return users_stop; })) {
      lock.unlock();
      uint64_t generation = users.generation();
      auto listed = store->list_users();
      if (listed.ok()) {
        // Skipped when a local change raced the read: the next round picks it up from the store.
        (void)users.replace_all_if(generation, std::move(*listed));
        if (failing) log->info("store: users readable again");
        failing = false;
      } else {
        users_resync_failures->inc();
        if (!failing) log->warn("store: cannot re-read users ({}); keeping the ones known", listed.error().what);
        failing = true;
      }
      lock.lock();
    }
  }

  void schedule() {
    timer->expires_after(std::chrono::seconds(1));
    timer->async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopped) return;
      // Lapsed bindings leave memory and the store; their flows are no longer kept open for
      // them (the connection table's idle timer closes what nothing else uses).
      for (const auto& b : location.expire(unix_seconds())) {
        store->remove_binding(b.aor, b.binding_id);
        expired->inc();
      }
      schedule();
    });
  }
};

Result<std::unique_ptr<RegistrarRuntime>> RegistrarRuntime::create(const Config& config, MetricsRegistry& metrics,
                                                                   std::shared_ptr<spdlog::logger> log) {
  auto parts = std::make_unique<Parts>();
  Parts& p = *parts;
  p.log = std::move(log);
  auto opened = store::open_store(config.store);
  if (!opened.ok()) return startup_error(500, "store: " + std::string(opened.error().what));
  p.store = std::move(*opened);

  auto bindings = p.store->load_bindings();
  if (!bindings.ok()) return startup_error(500, "store: loading bindings: " + std::string(bindings.error().what));
  size_t loaded = bindings->size();
  p.location.load(std::move(*bindings), unix_seconds());
  auto users = p.store->list_users();
  if (!users.ok()) return startup_error(500, "store: loading users: " + std::string(users.error().what));
  size_t skipped = p.users.replace_all(std::move(*users));
  if (skipped > 0) p.log->warn("store: {} user records were unusable and skipped", skipped);
  p.log->info("registrar: store {} ({}), {} bindings live of {} loaded, {} users", config.store, p.store->kind(),
              p.location.binding_count(), loaded, p.users.size());

  p.handler = std::make_unique<registrar::RegisterHandler>(config.registrar.config, p.location);
  if (config.auth.enabled) {
    registrar::DigestConfig digest;
    digest.secret = config.auth.secret.empty() ? derive_nonce_key(config.proxy.flow_token_key) : config.auth.secret;
    if (digest.secret.empty()) return startup_error(500, "auth: could not derive the nonce key");
    digest.nonce_lifetime = config.auth.nonce_lifetime;
    digest.offer_md5 = config.auth.md5;
    digest.offer_sha256 = config.auth.sha256;
    auto auth = registrar::DigestAuthenticator::create(digest, p.users, unix_seconds);
    if (!auth.ok()) return startup_error(500, "auth: " + std::string(auth.error().what));
    p.auth = std::move(*auth);
  }
  p.metrics = std::make_unique<proxy::RegistrarMetrics>(metrics);
  p.expired = &metrics.counter("pinhole_registrar_bindings_expired_total", "Bindings removed because they lapsed");
  p.users_resync_failures = &metrics.counter("pinhole_registrar_user_resync_failures_total",
                                             "Cluster: periodic re-reads of the users from the store that failed");
  p.services = std::make_unique<proxy::RegistrarServices>(proxy::RegistrarServices{
      .config = config.registrar.config,
      .location = p.location,
      .handler = *p.handler,
      .users = p.users,
      .auth = p.auth.get(),
      .auth_register = config.auth.register_requests,
      .auth_requests = config.auth.other_requests,
      .store = *p.store,
      .node_id = config.node_id,
      .cluster = p.store->kind() == "redis",
      .wall_seconds = unix_seconds,
      .metrics = *p.metrics,
  });
  registrar::Location* location = &p.location;
  metrics.gauge_function("pinhole_registrar_aors", "AORs with at least one binding", {},
                         [location] { return static_cast<double>(location->aor_count()); });
  metrics.gauge_function("pinhole_registrar_bindings", "Registered contacts (bindings)", {},
                         [location] { return static_cast<double>(location->binding_count()); });
  registrar::UserDirectory* directory = &p.users;
  metrics.gauge_function("pinhole_registrar_users", "Digest users", {},
                         [directory] { return static_cast<double>(directory->size()); });
  store::Store* st = p.store.get();
  metrics.gauge_function("pinhole_store_write_errors", "Store writes that failed or were dropped", {},
                         [st] { return static_cast<double>(st->stats().write_errors); });
  metrics.gauge_function("pinhole_store_reconnects", "Store reconnections (Redis)", {},
                         [st] { return static_cast<double>(st->stats().reconnects); });
  metrics.gauge_function("pinhole_store_queued_writes", "Store writes waiting for the writer thread", {},
                         [st] { return static_cast<double>(st->stats().queued); });
  return std::unique_ptr<RegistrarRuntime>(new RegistrarRuntime(std::move(parts)));
}

RegistrarRuntime::RegistrarRuntime(std::unique_ptr<Parts> parts) : parts_(std::move(parts)) {}

RegistrarRuntime::~RegistrarRuntime() { parts_->stop_users_thread(); }

proxy::RegistrarServices& RegistrarRuntime::services() { return *parts_->services; }
registrar::Location& RegistrarRuntime::location() { return parts_->location; }
registrar::UserDirectory& RegistrarRuntime::users() { return parts_->users; }
store::Store& RegistrarRuntime::store() { return *parts_->store; }

void RegistrarRuntime::start(boost::asio::io_context& io) {
  parts_->timer.emplace(io);
  parts_->schedule();
  if (parts_->services->cluster)
    parts_->users_thread = std::thread([p = parts_.get()] { p->resync_users_until_stopped(); });
}

void RegistrarRuntime::stop() {
  parts_->stop_users_thread();
  parts_->stopped = true;
  // Destroyed here, while its io_context still exists (the daemon destroys the context first).
  parts_->timer.reset();
  parts_->store->flush();
}

}  // namespace pinhole::app
