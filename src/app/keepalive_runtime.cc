#include "app/keepalive_runtime.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "app/keepalive_admin.h"

namespace pinhole::app {
namespace {

// How long the admin thread waits for one worker's endpoints before answering without them (a
// worker stuck that long has bigger problems; the admin port must not hang with it).
constexpr auto kSnapshotWait = std::chrono::seconds(2);

// The engines' views, gathered from every worker on its own thread.
std::vector<nat::KeepaliveEngine::EndpointView> collect(const std::vector<proxy::EdgeProxy*>& workers,
                                                        transport::TransportLayer& transport) {
  struct Pending {
    std::mutex mutex;
    std::condition_variable done;
    size_t left = 0;
    std::vector<nat::KeepaliveEngine::EndpointView> views;
  };
  auto pending = std::make_shared<Pending>();
  pending->left = workers.size();
  for (uint32_t w = 0; w < workers.size(); ++w) {
    proxy::EdgeProxy* proxy = workers[w];
    transport.post(w, [proxy, pending] {
      std::vector<nat::KeepaliveEngine::EndpointView> mine;
      if (const auto* engine = proxy->keepalive_engine()) mine = engine->list();
      std::lock_guard lock(pending->mutex);
      for (auto& v : mine) pending->views.push_back(std::move(v));
      --pending->left;
      pending->done.notify_all();
    });
  }
  std::unique_lock lock(pending->mutex);
  pending->done.wait_for(lock, kSnapshotWait, [&] { return pending->left == 0; });
  return std::move(pending->views);
}

}  // namespace

KeepaliveRuntime::KeepaliveRuntime(MetricsRegistry& registry, store::Store* store, std::string node,
                                   std::shared_ptr<spdlog::logger> log)
    : metrics_(registry),
      services_{.metrics = metrics_, .persist = {}},
      store_(store),
      node_(std::move(node)),
      log_(std::move(log)) {
  if (store_ != nullptr) {
    services_.persist = [this](const net::Flow& flow, const std::optional<nat::KeepaliveEngine::EndpointView>& view) {
      persist(flow, view);
    };
  }
}

void KeepaliveRuntime::persist(const net::Flow& flow, const std::optional<nat::KeepaliveEngine::EndpointView>& view) {
  if (!view) {
    store_->remove_keepalive(node_, flow);
    return;
  }
  store_->save_keepalive(
      to_keepalive_record(*view, node_, std::chrono::steady_clock::now(), std::chrono::system_clock::now()));
}

void KeepaliveRuntime::restore(const std::vector<proxy::EdgeProxy*>& workers,
                               const transport::TransportLayer& transport) {
  if (store_ == nullptr || workers.empty()) return;
  auto records = store_->load_keepalives(node_);
  if (!records.ok()) {
    log_->warn("keepalive: cannot reload endpoints from the {} store: {}", store_->kind(), records.error().what);
    return;
  }
  const auto& sockets = transport.local_sockets();
  auto now = std::chrono::system_clock::now();
  size_t endpoints = 0;
  size_t stale = 0;
  for (const auto& record : *records) {
    const net::Flow& flow = record.flow;
    bool usable = flow.transport == net::Transport::kUdp && flow.local_socket_id < sockets.size() &&
                  sockets[flow.local_socket_id].transport == net::Transport::kUdp;
    auto reasons = usable ? reasons_to_restore(record, now) : std::vector<RestoredReason>{};
    if (reasons.empty()) {
      // Expired, a stream flow, or a listener that is no longer configured: forget it.
      store_->remove_keepalive(node_, flow);
      ++stale;
      continue;
    }
    proxy::EdgeProxy* owner = workers[proxy::EdgeProxy::keepalive_owner(flow, workers.size())];
    for (const auto& r : reasons) owner->restore_keepalive(r.flow, r.kind, r.key_hash, r.remaining);
    ++endpoints;
  }
  log_->info("keepalive: {} endpoints reloaded from the {} store ({} stale records dropped)", endpoints, store_->kind(),
             stale);
}

void KeepaliveRuntime::add_routes(AdminServer& server, std::vector<proxy::EdgeProxy*> workers,
                                  transport::TransportLayer& transport) {
  add_keepalive_routes(server, [workers = std::move(workers), &transport] { return collect(workers, transport); });
}

}  // namespace pinhole::app
