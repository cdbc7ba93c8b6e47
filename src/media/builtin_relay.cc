// The built-in media relay (builtin_relay.h).
#include "media/builtin_relay.h"

#include <string>
#include <utility>

#include "media/ng_message.h"
#include "media/ng_request.h"

namespace pinhole::media {
namespace {

constexpr std::chrono::seconds kTickInterval{1};

}  // namespace

BuiltinRelay::BuiltinRelay(const RelayRuntimeConfig& config)
    : advertised_(config.advertised), runtime_(config, clock_) {}

BuiltinRelay::~BuiltinRelay() { stop(); }

void BuiltinRelay::start() {
  std::lock_guard lock(mutex_);
  if (running_ || stopped_) return;
  runtime_.start();
  running_ = true;
  ticker_ = std::thread([this] { tick_loop(); });
}

void BuiltinRelay::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    stopped_ = true;
    running_ = false;
  }
  wake_.notify_all();
  if (ticker_.joinable()) ticker_.join();
  std::lock_guard lock(mutex_);
  runtime_.shutdown();
}

void BuiltinRelay::tick_loop() {
  std::unique_lock lock(mutex_);
  while (running_) {
    wake_.wait_for(lock, kTickInterval, [this] { return !running_; });
    if (running_) runtime_.controller().tick();
  }
}

size_t BuiltinRelay::call_count() {
  std::lock_guard lock(mutex_);
  return running_ ? runtime_.controller().call_count() : 0;
}

void BuiltinRelay::request(proxy::MediaRequest request, Done done) {
  // `done` runs after the lock is released: it may well call request() again.
  Result<std::string> reply = execute(request);
  if (!reply) {
    done(reply.error());
    return;
  }
  auto frame = split_ng_frame(*reply);
  if (!frame) {
    done(Error{500, "built-in media relay reply does not frame"});
    return;
  }
  done(decode_ng_reply(frame->body, request.op));
}

Result<std::string> BuiltinRelay::execute(const proxy::MediaRequest& request) {
  std::lock_guard lock(mutex_);
  if (!running_) return Error{503, "built-in media relay is not running"};
  std::string cookie = "builtin_" + std::to_string(++cookie_);
  std::string message = encode_ng_request(cookie, request);
  auto frame = split_ng_frame(message);
  if (!frame) return Error{500, "media request does not frame"};  // a bug: our own encoding
  auto command = parse_ng_body(frame->body);
  // What the proxy gave cannot be an ng command (no Call-ID, no tag): nothing to relay.
  if (!command) return Error{500, "media request is incomplete"};
  MediaController& controller = runtime_.controller();
  controller.tick();  // due deletes and timeouts first, as the ng server does
  return controller.execute(frame->cookie, *command);
}

}  // namespace pinhole::media
