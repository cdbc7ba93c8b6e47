// Border mode's daemon parts (see border_runtime.h).
#include "app/border_runtime.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <nlohmann/json.hpp>

#include "net/transport.h"

namespace pinhole::app {

namespace {
// Upstream expiries are minutes to hours: a few seconds late in dropping one costs nothing.
constexpr std::chrono::seconds kExpiryPeriod{5};

nlohmann::json flow_json(const net::Flow& f) {
  return {{"transport", std::string(net::transport_name(f.transport))},
          {"remote", f.remote.to_string()},
          {"connection", f.connection_id}};
}
}  // namespace

struct BorderRuntime::Timer {
  boost::asio::steady_timer timer;
  registrar::BorderBindings& bindings;
  Counter& expired;
  bool stopped = false;

  void schedule() {
    timer.expires_after(kExpiryPeriod);
    timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || stopped) return;
      expired.inc(bindings.expire(MonoClock::now()));
      schedule();
    });
  }
};

BorderRuntime::BorderRuntime(const BorderSettings& settings, MetricsRegistry& metrics)
    : bindings_(settings.config),
      metrics_(metrics),
      services_{bindings_, metrics_},
      expired_(metrics.counter("pinhole_border_expired_total",
                               "Border bindings dropped because the upstream registration expired")) {
  registrar::BorderBindings* b = &bindings_;
  metrics.gauge_function("pinhole_border_bindings", "Bindings relayed to the upstream registrar and tracked here", {},
                         [b] { return static_cast<double>(b->size()); });
}

// The daemon calls stop() first; otherwise destroying the timer cancels its wait, and the handler
// returns on operation_aborted before touching anything.
BorderRuntime::~BorderRuntime() = default;

void BorderRuntime::start(boost::asio::io_context& io) {
  timer_ = std::make_unique<Timer>(Timer{boost::asio::steady_timer(io), bindings_, expired_});
  timer_->schedule();
}

void BorderRuntime::stop() {
  if (!timer_) return;
  timer_->stopped = true;
  timer_->timer.cancel();
  timer_.reset();
}

void BorderRuntime::add_routes(AdminServer& admin) {
  registrar::BorderBindings* b = &bindings_;
  admin.add_route("/border", [b] {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& v : b->list(MonoClock::now())) {
      list.push_back({{"aor", v.aor},
                      {"contact", v.key},
                      {"flow", flow_json(v.flow)},
                      {"path_flow", flow_json(v.path_flow)},
                      {"asked_expires", v.asked_expires},
                      {"upstream_remaining", v.upstream_remaining.count()},
                      {"lease", v.lease.count()},
                      {"rebindings", v.rebindings}});
    }
    return std::pair<int, std::string>(200, nlohmann::json{{"bindings", list}}.dump());
  });
}

}  // namespace pinhole::app
