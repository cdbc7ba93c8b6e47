#include "ua/user_agent.h"

#include <utility>

#include "sip/builder.h"
#include "sip/uri.h"
#include "ua/client_flow.h"
#include "ua/outbound_keepalive.h"
#include "ua/random.h"
#include "ua/registration.h"

namespace pinhole::ua {
namespace {

namespace asio = boost::asio;

UaEventKind to_ua_event(RegistrationEventKind kind) {
  switch (kind) {
    case RegistrationEventKind::kRegistered:
      return UaEventKind::kRegistered;
    case RegistrationEventKind::kContactChanged:
      return UaEventKind::kContactChanged;
    case RegistrationEventKind::kAuthFailed:
      return UaEventKind::kAuthFailed;
    case RegistrationEventKind::kFailed:
      return UaEventKind::kRegisterFailed;
    case RegistrationEventKind::kTimeout:
      return UaEventKind::kTimeout;
    case RegistrationEventKind::kUnregistered:
      return UaEventKind::kUnregistered;
    case RegistrationEventKind::kWarning:
      return UaEventKind::kWarning;
  }
  return UaEventKind::kWarning;
}

}  // namespace

std::string_view event_name(UaEventKind kind) {
  switch (kind) {
    case UaEventKind::kFlowUp:
      return "flow_up";
    case UaEventKind::kFlowFailed:
      return "flow_failed";
    case UaEventKind::kRegistered:
      return "registered";
    case UaEventKind::kContactChanged:
      return "contact_changed";
    case UaEventKind::kAuthFailed:
      return "auth_failed";
    case UaEventKind::kRegisterFailed:
      return "register_failed";
    case UaEventKind::kTimeout:
      return "timeout";
    case UaEventKind::kUnregistered:
      return "unregistered";
    case UaEventKind::kWarning:
      return "warning";
    case UaEventKind::kRequest:
      return "request";
  }
  return "?";
}

// Everything that lives on the event-loop thread.
struct UserAgent::Loop {
  Loop(UserAgent& owner_in, std::unique_ptr<Registration> registration_in)
      : owner(owner_in),
        work(asio::make_work_guard(io)),
        registration(std::move(registration_in)),
        registration_timer(io),
        keepalive_timer(io) {}

  UserAgent& owner;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::unique_ptr<Registration> registration;
  std::unique_ptr<OutboundKeepalive> keepalive;
  std::shared_ptr<ClientFlow> flow;
  uint64_t flow_generation = 0;
  asio::steady_timer registration_timer, keepalive_timer;

  static TimePoint now() { return MonoClock::now(); }

  void emit(UaEventKind kind, uint16_t status, std::string text) {
    UaEvent event{kind, status, std::move(text)};
    auto level = spdlog::level::info;
    if (kind == UaEventKind::kWarning || kind == UaEventKind::kFlowFailed || kind == UaEventKind::kTimeout ||
        kind == UaEventKind::kRegisterFailed) {
      level = spdlog::level::warn;
    } else if (kind == UaEventKind::kAuthFailed) {
      level = spdlog::level::err;
    }
    owner.logger_->log(level, "{}: {}{}", event_name(kind), event.text,
                       status != 0 ? " [" + std::to_string(status) + "]" : std::string());
    if (kind == UaEventKind::kUnregistered) {
      std::lock_guard lock(owner.mutex_);
      owner.unregistered_ = true;
      owner.unregistered_cv_.notify_all();
    }
    if (owner.on_event_) owner.on_event_(event);
  }

  void send(std::string bytes) {
    if (!flow) return;
    if (owner.inspector_) owner.inspector_(bytes);
    flow->send(std::move(bytes));
  }

  void drop_flow() {
    if (flow) flow->close();
    flow.reset();
    if (keepalive) keepalive->stop();
    keepalive_timer.cancel();
  }

  void apply(RegistrationOutput out) {
    if (out.flow_failed) {
      drop_flow();
      emit(UaEventKind::kFlowFailed, 0, "REGISTER unanswered on this flow");
    }
    for (auto& bytes : out.send) send(std::move(bytes));
    for (auto& event : out.events) {
      emit(to_ua_event(event.kind), event.status, std::move(event.text));
      if (event.kind == RegistrationEventKind::kRegistered) start_keepalive();
    }
    if (out.want_flow) open_flow();
    arm_registration_timer();
  }

  void arm_registration_timer() {
    auto deadline = registration->next_deadline();
    registration_timer.cancel();
    if (!deadline) return;
    registration_timer.expires_at(*deadline);
    registration_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      apply(registration->on_timer(now()));
    });
  }

  void start_keepalive() {
    if (!flow || !keepalive) return;
    auto flow_timer = registration->flow_timer();
    bool must_answer = owner.config_.outbound && registration->outbound_required();
    auto wanted = flow_timer ? std::chrono::milliseconds(std::chrono::seconds(*flow_timer)) : keepalive->interval();
    // A refresh with the same Flow-Timer leaves the running schedule alone.
    if (keepalive->running() && wanted == keepalive->interval()) return;
    keepalive->start(now(), flow_timer, must_answer);
    arm_keepalive_timer();
  }

  void arm_keepalive_timer() {
    keepalive_timer.cancel();
    if (!keepalive) return;
    auto deadline = keepalive->next_deadline();
    if (!deadline) return;
    keepalive_timer.expires_at(*deadline);
    keepalive_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec || !keepalive) return;
      auto tick = keepalive->on_timer(now());
      if (tick.action == OutboundKeepalive::Action::kSendPing && flow) {
        flow->send(std::move(tick.bytes));  // keepalives bypass the inspector: they are not SIP
      } else if (tick.action == OutboundKeepalive::Action::kFlowDead) {
        flow_failed(net::is_stream(owner.target_.transport) ? "no CRLF pong within the pong timeout"
                                                            : "no STUN Binding response within the pong timeout");
        return;
      }
      arm_keepalive_timer();
    });
  }

  void flow_failed(std::string_view why) {
    std::string text(why);
    drop_flow();
    emit(UaEventKind::kFlowFailed, 0, text);
    apply(registration->flow_lost(now(), text));
  }

  void open_flow() {
    drop_flow();
    uint64_t generation = ++flow_generation;
    keepalive = std::make_unique<OutboundKeepalive>(owner.target_.transport, owner.config_.keepalive_interval,
                                                    owner.config_.pong_timeout);
    ClientFlow::Callbacks callbacks;
    callbacks.on_connected = [this, generation](const FlowInfo& info) {
      if (generation != flow_generation) return;
      emit(UaEventKind::kFlowUp, 0,
           std::string(net::transport_name(info.transport)) + " " + info.local.to_string() + " -> " +
               owner.target_.endpoint.to_string());
      apply(registration->flow_ready(now(), info));
    };
    callbacks.on_message = [this, generation](sip::MessagePtr message) {
      if (generation != flow_generation) return;
      on_message(*message);
    };
    callbacks.on_pong = [this, generation] {
      if (generation != flow_generation || !keepalive) return;
      keepalive->on_pong(now());
      arm_keepalive_timer();
    };
    callbacks.on_stun = [this, generation](std::string_view datagram) {
      if (generation != flow_generation || !keepalive) return;
      auto verdict = keepalive->on_stun(datagram, now());
      if (verdict == OutboundKeepalive::StunVerdict::kMappedChanged) {
        flow_failed("STUN mapped address changed to " + keepalive->mapped()->to_string());
        return;
      }
      arm_keepalive_timer();
    };
    callbacks.on_warning = [this, generation](std::string_view text) {
      if (generation != flow_generation) return;
      emit(UaEventKind::kWarning, 0, std::string(text));
    };
    callbacks.on_failure = [this, generation](std::string_view why) {
      if (generation != flow_generation) return;
      flow_failed(why);
    };
    flow = ClientFlow::open(io, owner.target_.transport, owner.target_.endpoint, std::move(callbacks),
                            owner.config_.connect_timeout);
  }

  void on_message(const sip::Message& message) {
    if (message.is_response()) {
      apply(registration->on_response(message, now()));
      return;
    }
    auto from = message.from();
    emit(UaEventKind::kRequest, 0,
         std::string(message.method_name()) + " from " + (from ? std::string((*from)->uri.raw) : std::string("?")));
    if (message.method() == sip::Method::kAck) return;
    uint16_t status = 501;
    if (message.method() == sip::Method::kOptions) status = 200;
    // Calls are not in this slice of the UA: an INVITE is refused in a way that makes the
    // caller try elsewhere rather than retry here.
    if (message.method() == sip::Method::kInvite) status = 480;
    if (!message.top_via() || !message.cseq() || !message.call_id() || !message.from() || !message.to()) return;
    sip::ResponseBuilder response(message, status);
    response.to_tag(random_hex(8));
    if (status == 200) response.header("Allow", "OPTIONS, ACK, BYE");
    send(response.build());
  }
};

Result<std::unique_ptr<UserAgent>> UserAgent::create(UaConfig config, EventHandler on_event,
                                                     std::shared_ptr<spdlog::logger> logger) {
  if (config.outbound && config.instance_id.empty()) config.instance_id = random_uuid_urn();
  auto registration = Registration::create(config);
  if (!registration) return registration.error();
  auto proxy = parse_outbound_proxy(config.proxy.uri);
  if (!proxy) return proxy.error();
  config.proxy = *proxy;
  if (!logger) logger = std::make_shared<spdlog::logger>("ua");  // no sink: silent
  std::unique_ptr<UserAgent> ua(new UserAgent(std::move(config), std::move(on_event), std::move(logger)));
  ua->loop_ = std::make_unique<Loop>(*ua, std::move(registration).value());
  return ua;
}

UserAgent::UserAgent(UaConfig config, EventHandler on_event, std::shared_ptr<spdlog::logger> logger)
    : config_(std::move(config)), on_event_(std::move(on_event)), logger_(std::move(logger)) {
  resolver_options_.supported = {net::Transport::kUdp, net::Transport::kTcp};
}

UserAgent::~UserAgent() { stop(); }

Status UserAgent::start() {
  if (running_) return Status::Ok();
  auto resolver = net::SipResolver::create(resolver_options_);
  if (!resolver) return resolver.error();
  auto uri = sip::parse_uri(config_.proxy.uri);
  if (!uri) return uri.error();
  auto targets = (*resolver)->resolve(*uri);
  if (!targets || targets->empty()) {
    logger_->error("outbound proxy {} does not resolve: {}", config_.proxy.uri, (*resolver)->last_error());
    return Error{503, "outbound proxy does not resolve"};
  }
  // Pinned for the registration's life: refreshes and new flows go to this address only.
  target_ = targets->front();
  logger_->info("outbound proxy {} pinned to {} over {}", config_.proxy.uri, target_.endpoint.to_string(),
                net::transport_name(target_.transport));
  {
    std::lock_guard lock(mutex_);
    unregistered_ = false;
  }
  running_ = true;
  asio::post(loop_->io, [loop = loop_.get()] { loop->apply(loop->registration->start(Loop::now())); });
  thread_ = std::thread([loop = loop_.get()] { loop->io.run(); });
  return Status::Ok();
}

void UserAgent::refresh() {
  if (!running_) return;
  asio::post(loop_->io, [loop = loop_.get()] { loop->apply(loop->registration->refresh_now(Loop::now())); });
}

void UserAgent::stop(std::chrono::milliseconds timeout) {
  if (!running_) return;
  running_ = false;
  asio::post(loop_->io, [loop = loop_.get()] { loop->apply(loop->registration->stop(Loop::now())); });
  {
    std::unique_lock lock(mutex_);
    if (!unregistered_cv_.wait_for(lock, timeout, [this] { return unregistered_; })) {
      logger_->warn("unregister not answered within {} ms; closing anyway", timeout.count());
    }
  }
  asio::post(loop_->io, [loop = loop_.get()] {
    loop->drop_flow();
    loop->registration_timer.cancel();
    loop->work.reset();
    loop->io.stop();
  });
  if (thread_.joinable()) thread_.join();
}

}  // namespace pinhole::ua
