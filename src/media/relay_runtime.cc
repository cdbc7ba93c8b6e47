// The relay engine assembled (relay_runtime.h).
#include "media/relay_runtime.h"

#include <algorithm>

namespace pinhole::media {
namespace {

Status open_fast_path(const RelayRuntimeConfig& config, std::unique_ptr<FastPath>& out) {
  if (!config.fast_path) return Error{404, "turned off in the configuration"};
  // A wildcard address leaves the source address to routing per packet; the kernel rule needs it.
  net::Address address = config.interface.unmapped();
  auto bytes = address.bytes();
  if (std::all_of(bytes.begin(), bytes.end(), [](uint8_t b) { return b == 0; }))
    return Error{400, "the relay interface is a wildcard address"};
  auto opened = FastPath::open(config.fast_path_config);
  if (!opened) return opened.error();
  out = std::move(*opened);
  return {};
}

}  // namespace

RelayRuntime::RelayRuntime(const RelayRuntimeConfig& config, const Clock& clock)
    : pool_(config.interface, config.min_port, config.max_port), fast_path_status_(open_fast_path(config, fast_path_)) {
  unsigned count = std::max(1U, config.workers);
  std::vector<RelayWorker*> worker_ptrs;
  for (unsigned i = 0; i < count; ++i) {
    workers_.push_back(std::make_unique<RelayWorker>(config.worker, clock, [this](const SessionKey& key) {
      if (auto* c = controller_ptr_.load(); c != nullptr) c->on_session_timeout(key);
    }));
    if (fast_path_) workers_.back()->enable_fast_path(*fast_path_, config.interface);
    worker_ptrs.push_back(workers_.back().get());
  }
  controller_ =
      std::make_unique<MediaController>(MediaControllerConfig{config.advertised, config.session, config.delete_delay},
                                        pool_, std::move(worker_ptrs), clock);
  controller_ptr_.store(controller_.get());
}

RelayRuntime::~RelayRuntime() { shutdown(); }

std::string RelayRuntime::fast_path_description() const {
  if (!fast_path_) return "off (" + std::string(fast_path_status_.error().what) + ")";
  std::string names;
  for (const auto& name : fast_path_->attached()) names += (names.empty() ? "" : ", ") + name;
  return "on (" + names + "; bpf program " + std::to_string(fast_path_->program_id()) + ")";
}

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
