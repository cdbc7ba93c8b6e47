// The relay engine assembled (relay_runtime.h).
#include "media/relay_runtime.h"

#include <algorithm>

namespace pinhole::media {

RelayRuntime::RelayRuntime(const RelayRuntimeConfig& config, const Clock& clock)
    : pool_(config.interface, config.min_port, config.max_port) {
  unsigned count = std::max(1U, config.workers);
  std::vector<RelayWorker*> worker_ptrs;
  for (unsigned i = 0; i < count; ++i) {
    workers_.push_back(std::make_unique<RelayWorker>(config.worker, clock, [this](const SessionKey& key) {
      if (auto* c = controller_ptr_.load(); c != nullptr) c->on_session_timeout(key);
    }));
    worker_ptrs.push_back(workers_.back().get());
  }
  controller_ =
      std::make_unique<MediaController>(MediaControllerConfig{config.advertised, config.session, config.delete_delay},
                                        pool_, std::move(worker_ptrs), clock);
  controller_ptr_.store(controller_.get());
}

RelayRuntime::~RelayRuntime() { shutdown(); }

void RelayRuntime::start() {
  if (started_) return;
  started_ = true;
  for (auto& w : workers_) w->start();
}

void RelayRuntime::shutdown() {
  controller_ptr_.store(nullptr);
  // The controller removes its sessions through the workers, so they must still run; a runtime
  // that never started runs them here for that.
  if (controller_ && !started_ && controller_->call_count() > 0) start();
  controller_.reset();
  for (auto& w : workers_) w->stop();
}

}  // namespace pinhole::media
