#include "ua/user_agent.h"

#include <algorithm>
#include <deque>
#include <map>
#include <utility>

#include "sip/builder.h"
#include "sip/uri.h"
#include "txn/transaction_table.h"
#include "ua/call.h"
#include "ua/client_flow.h"
#include "ua/outbound_keepalive.h"
#include "ua/random.h"
#include "ua/registration.h"
#include "ua/tls_client.h"

namespace pinhole::ua {
namespace {

namespace asio = boost::asio;

UaEventKind to_ua_event(CallEventKind kind) {
  switch (kind) {
    case CallEventKind::kRinging:
      return UaEventKind::kRinging;
    case CallEventKind::kAnswered:
      return UaEventKind::kAnswered;
    case CallEventKind::kEnded:
      return UaEventKind::kCallEnded;
    case CallEventKind::kFailed:
      return UaEventKind::kCallFailed;
  }
  return UaEventKind::kCallFailed;
}

std::string describe(const RtpStats& stats) {
  std::string text = "sent " + std::to_string(stats.packets_sent) + " packets (" + std::to_string(stats.bytes_sent) +
                     " bytes), received " + std::to_string(stats.packets_received) + " packets (" +
                     std::to_string(stats.bytes_received) + " bytes)";
  if (stats.first_sequence) {
    text += ", seq " + std::to_string(*stats.first_sequence) + ".." + std::to_string(*stats.last_sequence);
  }
  if (stats.latched) text += ", latched to " + stats.latched->to_string();
  if (stats.latch_changes > 0) text += " (moved " + std::to_string(stats.latch_changes) + " times)";
  return text;
}

// The flow's local host as an address for the RTP socket ("[::1]" loses its brackets).
std::optional<net::Address> host_address(const std::string& host) {
  std::string_view h = host;
  if (h.size() > 2 && h.front() == '[' && h.back() == ']') h = h.substr(1, h.size() - 2);
  auto a = net::Address::parse(h);
  if (!a) return std::nullopt;
  return *a;
}

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
    case UaEventKind::kIncomingCall:
      return "incoming_call";
    case UaEventKind::kRinging:
      return "ringing";
    case UaEventKind::kAnswered:
      return "answered";
    case UaEventKind::kCallEnded:
      return "call_ended";
    case UaEventKind::kCallFailed:
      return "call_failed";
    case UaEventKind::kMediaStats:
      return "media_stats";
  }
  return "?";
}

// The table's timers from the UA's: T1 as configured, T2 at least T1 (RFC 3261 Appendix A).
txn::TimerConfig timer_config(const UaConfig& config) {
  txn::TimerConfig timers;
  timers.t1 = config.t1;
  timers.t2 = std::max(timers.t2, config.t1);
  return timers;
}

// Everything that lives on the event-loop thread. It is the transport and the transaction user
// of the UA's one txn::TransactionTable: every REGISTER, INVITE, BYE, CANCEL we send is a client
// transaction of it, every request we receive a server transaction (the ACK for a 2xx aside).
struct UserAgent::Loop : txn::TransactionTransport, txn::TransactionUser {
  Loop(UserAgent& owner_in, std::unique_ptr<Registration> registration_in)
      : owner(owner_in),
        work(asio::make_work_guard(io)),
        registration(std::move(registration_in)),
        txns(timer_config(owner_in.config_), *this, *this),
        registration_timer(io),
        keepalive_timer(io),
        txn_timer(io) {}
  ~Loop() override = default;
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  UserAgent& owner;
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work;
  std::unique_ptr<Registration> registration;
  std::unique_ptr<OutboundKeepalive> keepalive;
  std::shared_ptr<ClientFlow> flow;
  uint64_t flow_generation = 0;
  // TLS flows only: built once in create(); shared with the flows (see ClientFlow::TlsOptions).
  std::shared_ptr<asio::ssl::context> tls_context;
  txn::TransactionTable txns;
  // Who waits for each client transaction's outcome: a call's id, or 0 for the registration;
  // the branch tells the owner which of its requests it was. Erased in on_terminated.
  struct ClientTxn {
    uint64_t call = 0;
    std::string branch;
  };
  std::map<txn::TransactionId, ClientTxn> client_txns;
  asio::steady_timer registration_timer, keepalive_timer, txn_timer;

  // Calls. Records are erased by a posted task, never inside a callback that uses them.
  struct CallRecord {
    explicit CallRecord(asio::io_context& io) : timer(io), answer_timer(io), stats_timer(io) {}
    uint64_t id = 0;
    std::unique_ptr<Call> call;
    std::shared_ptr<RtpEndpoint> rtp;
    asio::steady_timer timer, answer_timer, stats_timer;
    bool media_started = false;
    bool final_stats_sent = false;
    bool erase_posted = false;
  };
  struct PendingCall {
    uint64_t id = 0;
    std::string target;
    MediaMode media = MediaMode::kNone;
  };
  std::map<uint64_t, std::unique_ptr<CallRecord>> calls;
  std::deque<PendingCall> pending_calls;  // waiting for the flow
  bool flow_up = false;
  FlowInfo flow_info;

  static TimePoint now() { return MonoClock::now(); }

  void emit(UaEventKind kind, uint16_t status, std::string text, uint64_t call = 0,
            std::optional<RtpStats> media = std::nullopt, bool final_stats = false) {
    UaEvent event{kind, status, std::move(text), call, media, final_stats};
    auto level = spdlog::level::info;
    if (kind == UaEventKind::kWarning || kind == UaEventKind::kFlowFailed || kind == UaEventKind::kTimeout ||
        kind == UaEventKind::kRegisterFailed || kind == UaEventKind::kCallFailed) {
      level = spdlog::level::warn;
    } else if (kind == UaEventKind::kAuthFailed) {
      level = spdlog::level::err;
    }
    owner.logger_->log(level, "{}{}: {}{}", event_name(kind),
                       call != 0 ? " call " + std::to_string(call) : std::string(), event.text,
                       status != 0 ? " [" + std::to_string(status) + "]" : std::string());
    if (kind == UaEventKind::kUnregistered) {
      std::lock_guard lock(owner.mutex_);
      owner.unregistered_ = true;
      owner.unregistered_cv_.notify_all();
    }
    if (owner.on_event_) owner.on_event_(event);
  }

  // The start line and CSeq of a message, for the log line of each SIP step.
  static std::string summary(std::string_view bytes) {
    std::string_view line = bytes.substr(0, bytes.find("\r\n"));
    std::string text(line);
    auto at = bytes.find("\r\nCSeq:");
    if (at != std::string_view::npos) {
      auto value = bytes.substr(at + 7);
      text += " (CSeq" + std::string(value.substr(0, value.find("\r\n"))) + ")";
    }
    return text;
  }

  // Writes on the current flow through the inspector. False when there is no flow.
  bool send(std::string bytes) {
    if (!flow) return false;
    if (owner.inspector_) owner.inspector_(bytes);
    owner.logger_->info("sip out: {}", summary(bytes));
    flow->send(std::move(bytes));
    return true;
  }

  // --- the transaction table ----------------------------------------------------------------

  // TransactionTransport: `context` is the flow generation the transaction was made on; a
  // message for a flow that is gone is refused (the transaction fails with 503).
  bool send(txn::TransactionId /*txn*/, uint64_t context, std::string_view bytes) override {
    if (context != flow_generation) return false;
    return send(std::string(bytes));
  }

  txn::Reliability reliability() const {
    return net::is_stream(flow_info.transport) ? txn::Reliability::kReliable : txn::Reliability::kUnreliable;
  }

  void arm_txn_timer() {
    auto deadline = txns.next_deadline();
    txn_timer.cancel();
    if (!deadline) return;
    txn_timer.expires_at(*deadline);
    txn_timer.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      txns.advance(now());
      arm_txn_timer();
    });
  }

  // A client transaction for `bytes` on the current flow; `call` (0: the registration) hears
  // of its responses and failure.
  void start_request(std::string_view bytes, uint64_t call) {
    auto request = sip::Message::parse(bytes, sip::Framing::kDatagram);
    if (!request) {
      owner.logger_->error("internal: our own request does not parse: {}", request.error().what);
      return;
    }
    auto via = (*request)->top_via();
    std::string branch = via ? std::string((*via)->branch) : std::string();
    auto id = txns.send_request(std::move(request).value(), reliability(), flow_generation, now());
    if (!id) {
      owner.logger_->error("internal: no client transaction: {}", id.error().what);
      return;
    }
    client_txns[*id] = ClientTxn{call, std::move(branch)};
    arm_txn_timer();
  }

  void respond(txn::TransactionId txn, uint16_t status, std::string bytes) {
    if (auto done = txns.respond(txn, status, std::move(bytes), now()); !done.ok()) {
      owner.logger_->debug("{} not sent on transaction {}: {}", status, txn, done.error().what);
    }
    arm_txn_timer();
  }

  // TransactionUser. The table calls these from receive_request/receive_response/advance; what
  // they do in return is TU calls (send_request, respond), which the table allows here.
  void on_request(txn::TransactionId txn, const sip::Message& request, txn::TransactionId cancelled) override {
    auto call_id = request.call_id();
    if (auto* record = find_call(call_id ? *call_id : std::string_view()); record != nullptr) {
      apply_call(*record, record->call->on_request(request, txn, cancelled, now()));
      return;
    }
    auto to = request.to();
    if (request.method() == sip::Method::kInvite && !(*to)->has_tag) {
      incoming_call(request, txn);
      return;
    }
    uint16_t status = 501;
    if (request.method() == sip::Method::kOptions) {
      status = 200;
    } else if ((*to)->has_tag || request.method() == sip::Method::kCancel) {
      status = 481;  // a dialog or transaction we do not know (RFC 3261 §12.2.2, §9.2)
    }
    sip::ResponseBuilder response(request, status);
    if (status != 481) response.to_tag(random_hex(8));
    if (status == 200) response.header("Allow", "INVITE, ACK, BYE, CANCEL, OPTIONS");
    respond(txn, status, response.build());
  }

  void on_ack(txn::TransactionId /*txn*/, sip::MessagePtr& ack) override { ack_for_call(*ack); }

  void on_response(txn::TransactionId txn, sip::MessagePtr& response) override {
    auto it = client_txns.find(txn);
    if (it == client_txns.end()) return;
    if (it->second.call == 0) {
      apply(registration->on_response(*response, now()));
      return;
    }
    auto record = calls.find(it->second.call);
    if (record == calls.end() || record->second->erase_posted) return;
    apply_call(*record->second, record->second->call->on_response(*response, now()));
  }

  void on_failure(txn::TransactionId txn, txn::Failure failure) override {
    auto it = client_txns.find(txn);
    if (it == client_txns.end()) {
      // A server transaction: Timer H (our non-2xx never ACKed) or a send on a dead flow.
      owner.logger_->info("transaction {} gave up ({})", txn, failure.status);
      return;
    }
    std::string branch = it->second.branch;
    if (it->second.call == 0) {
      apply(registration->on_failure(branch, failure.status, now()));
      return;
    }
    auto record = calls.find(it->second.call);
    if (record == calls.end() || record->second->erase_posted) return;
    apply_call(*record->second, record->second->call->on_failure(branch, failure.status, now()));
  }

  void on_terminated(txn::TransactionId txn) override { client_txns.erase(txn); }

  // An ACK outside any transaction (the ACK for our 2xx), or one an INVITE server transaction
  // in Accepted passed on.
  void ack_for_call(const sip::Message& ack) {
    auto call_id = ack.call_id();
    if (auto* record = find_call(call_id ? *call_id : std::string_view()); record != nullptr) {
      apply_call(*record, record->call->on_request(ack, txn::kNoTransaction, txn::kNoTransaction, now()));
    }
  }

  void drop_flow() {
    if (flow) flow->close();
    flow.reset();
    flow_up = false;
    calls_lost("the flow was closed");
    if (keepalive) keepalive->stop();
    keepalive_timer.cancel();
  }

  void apply(RegistrationOutput out) {
    if (out.flow_failed) {
      drop_flow();
      emit(UaEventKind::kFlowFailed, 0, "REGISTER unanswered on this flow");
    }
    for (const auto& bytes : out.send) start_request(bytes, 0);
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
      flow_up = true;
      flow_info = info;
      if (owner.config_.register_binding) apply(registration->flow_ready(now(), info));
      launch_pending_calls();
    };
    callbacks.on_message = [this, generation](sip::MessagePtr message) {
      if (generation != flow_generation) return;
      on_message(std::move(message));
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
    std::optional<ClientFlow::TlsOptions> tls;
    if (owner.target_.transport == net::Transport::kTls) {
      // RFC 5922 §7 / RFC 3263 §4.4: the certificate must name the host of the outbound proxy's
      // URI (not an SRV target); a numeric proxy is checked against its IP address.
      const auto& target = owner.target_;
      tls = ClientFlow::TlsOptions{tls_context, target.host.empty() ? target.endpoint.address.to_string() : target.host,
                                   !owner.config_.tls_insecure};
    }
    flow = ClientFlow::open(io, owner.target_.transport, owner.target_.endpoint, std::move(callbacks),
                            owner.config_.connect_timeout, std::move(tls));
  }

  void on_message(sip::MessagePtr message) {
    owner.logger_->info("sip in: {}", summary(message->bytes()));
    if (message->is_response()) {
      auto got = txns.receive_response(std::move(message), now());
      // A 2xx for our INVITE after its transaction ended (another fork, a late retransmission):
      // the call ACKs it again.
      if (got.disposition == txn::Disposition::kNoMatch && got.message != nullptr) {
        auto call_id = got.message->call_id();
        if (auto* record = find_call(call_id ? *call_id : std::string_view()); record != nullptr) {
          apply_call(*record, record->call->on_response(*got.message, now()));
        }
      }
      arm_txn_timer();
      return;
    }
    auto from = message->from();
    emit(UaEventKind::kRequest, 0,
         std::string(message->method_name()) + " from " + (from ? std::string((*from)->uri.raw) : std::string("?")));
    // Nothing can be answered without these; a request lacking them is dropped.
    if (!message->top_via() || !message->cseq() || !message->call_id() || !message->from() || !message->to()) return;
    auto got = txns.receive_request(std::move(message), reliability(), flow_generation, now());
    if (got.disposition == txn::Disposition::kNoMatch && got.message != nullptr) ack_for_call(*got.message);
    arm_txn_timer();
  }

  // --- calls -----------------------------------------------------------------------------

  CallRecord* find_call(std::string_view call_id) {
    if (call_id.empty()) return nullptr;
    for (auto& [id, record] : calls) {
      if (record->call && record->call->call_id() == call_id) return record.get();
    }
    return nullptr;
  }

  CallSetup call_setup() const {
    const auto& config = owner.config_;
    CallSetup setup;
    setup.aor = config.aor;
    setup.flow = flow_info;
    setup.via_alias = config.via_alias;
    setup.user_agent = config.user_agent;
    setup.password = config.password;
    setup.t1 = config.t1;
    setup.transaction_timeout = config.transaction_timeout;
    auto aor = sip::parse_uri(config.aor);
    std::string user = aor ? std::string(aor->user) : std::string();
    setup.digest_user = config.user.empty() ? sip::unescape(user) : config.user;
    // The Contact of a call is the registered one (the learned public address) when we
    // register, so that in-dialog requests reach us the way the registrar's do.
    HostPort at = config.register_binding ? registration->contact_address() : flow_info.local;
    if (at.host.empty()) at = flow_info.local;
    setup.contact_uri = "sip:" + user + "@" + at.to_string();
    if (flow_info.transport != net::Transport::kUdp) {
      setup.contact_uri += ";transport=" + std::string(net::transport_name(flow_info.transport));
    }
    if (config.outbound) setup.contact_uri += ";ob";
    return setup;
  }

  Result<std::shared_ptr<RtpEndpoint>> open_rtp(MediaMode mode) {
    auto local = host_address(flow_info.local.host);
    if (!local) return Error{500, "rtp: the flow's local address is not an IP address"};
    return RtpEndpoint::open(io, *local, owner.config_.rtp_port_min, owner.config_.rtp_port_max, mode);
  }

  static LocalMedia local_media(const RtpEndpoint& rtp) {
    LocalMedia media;
    media.rtp = rtp.local();
    media.session_id = random_between(1, (uint64_t{1} << 53) - 1);  // fits every SDP parser's integer
    return media;
  }

  CallRecord& new_record(uint64_t id) {
    auto record = std::make_unique<CallRecord>(io);
    record->id = id;
    auto& ref = *record;
    calls[id] = std::move(record);
    return ref;
  }

  void place_call(PendingCall pending) {
    if (!flow_up) {
      pending_calls.push_back(std::move(pending));
      // Without a registration nobody else opens the flow.
      if (!flow && !owner.config_.register_binding) open_flow();
      return;
    }
    auto rtp = open_rtp(pending.media);
    if (!rtp) {
      emit(UaEventKind::kCallFailed, 500, std::string(rtp.error().what), pending.id);
      return;
    }
    CallOutput out;
    auto call = Call::place(call_setup(), pending.target, local_media(**rtp), now(), out);
    if (!call) {
      (*rtp)->close();
      emit(UaEventKind::kCallFailed, call.error().status, std::string(call.error().what), pending.id);
      return;
    }
    auto& record = new_record(pending.id);
    record.call = std::move(call).value();
    record.rtp = std::move(rtp).value();
    owner.logger_->info("call {}: INVITE {} (Call-ID {}, RTP {})", pending.id, pending.target, record.call->call_id(),
                        record.rtp->local().to_string());
    apply_call(record, std::move(out));
  }

  void launch_pending_calls() {
    auto waiting = std::move(pending_calls);
    pending_calls.clear();
    for (auto& p : waiting) place_call(std::move(p));
  }

  void incoming_call(const sip::Message& invite, txn::TransactionId txn) {
    uint64_t id = owner.next_call_id_++;
    const auto* from = *invite.from();
    std::string who(from->uri.raw);
    if (!owner.config_.auto_answer) {
      // Nobody to pick up: refuse in a way that makes the caller try elsewhere.
      emit(UaEventKind::kIncomingCall, 480, "from " + who + " (refused: auto-answer is off)", id);
      sip::ResponseBuilder response(invite, 480);
      response.to_tag(random_hex(8));
      respond(txn, 480, response.build());
      return;
    }
    auto rtp = open_rtp(owner.config_.media);
    if (!rtp) {
      emit(UaEventKind::kIncomingCall, 500, "from " + who + " (" + std::string(rtp.error().what) + ")", id);
      sip::ResponseBuilder response(invite, 500);
      response.to_tag(random_hex(8));
      respond(txn, 500, response.build());
      return;
    }
    emit(UaEventKind::kIncomingCall, 0, "from " + who, id);
    CallOutput out;
    auto& record = new_record(id);
    record.rtp = std::move(rtp).value();
    record.call = Call::receive(call_setup(), invite, txn, local_media(*record.rtp), now(), out);
    apply_call(record, std::move(out));
    if (record.call->finished()) return;
    record.answer_timer.expires_after(owner.config_.answer_after);
    record.answer_timer.async_wait([this, id](const boost::system::error_code& ec) {
      if (ec) return;
      auto it = calls.find(id);
      if (it == calls.end() || !it->second->call) return;
      apply_call(*it->second, it->second->call->answer(now()));
    });
  }

  void apply_call(CallRecord& record, CallOutput out) {
    for (auto& bytes : out.send) send(std::move(bytes));
    for (auto& r : out.responses) respond(r.txn, r.status, std::move(r.bytes));
    for (const auto& bytes : out.requests) start_request(bytes, record.id);
    if (out.media && record.rtp) {
      record.rtp->start(*out.media);
      if (!record.media_started) {
        record.media_started = true;
        std::string to = out.media->rtp ? out.media->rtp->to_string() : std::string("(on hold)");
        owner.logger_->info("call {}: RTP {} -> {}, payload type {}, {}", record.id, record.rtp->local().to_string(),
                            to, out.media->payload_type, media_mode_name(record.rtp->mode()));
        arm_stats_timer(record.id);
      }
    }
    uint64_t id = record.id;
    for (auto& event : out.events) emit(to_ua_event(event.kind), event.status, std::move(event.text), id);
    // The handler may have erased nothing (erasing is posted), so `record` is still valid here.
    if (record.call->finished()) {
      record.answer_timer.cancel();
      record.stats_timer.cancel();
      if (record.rtp && !record.final_stats_sent) {
        record.final_stats_sent = true;
        record.rtp->close();
        emit(UaEventKind::kMediaStats, 0, describe(record.rtp->stats()), id, record.rtp->stats(), true);
      }
    }
    if (record.call->finished()) {
      record.timer.cancel();
      if (!record.erase_posted) {
        record.erase_posted = true;
        asio::post(io, [this, id] { calls.erase(id); });
      }
      return;
    }
    arm_call_timer(record);
  }

  void arm_call_timer(CallRecord& record) {
    record.timer.cancel();
    auto deadline = record.call->next_deadline();
    if (!deadline) return;
    record.timer.expires_at(*deadline);
    uint64_t id = record.id;
    record.timer.async_wait([this, id](const boost::system::error_code& ec) {
      if (ec) return;
      auto it = calls.find(id);
      if (it == calls.end() || it->second->erase_posted) return;
      apply_call(*it->second, it->second->call->on_timer(now()));
    });
  }

  void arm_stats_timer(uint64_t id) {
    auto interval = owner.config_.media_stats_interval;
    auto it = calls.find(id);
    if (interval.count() <= 0 || it == calls.end()) return;
    it->second->stats_timer.expires_after(interval);
    it->second->stats_timer.async_wait([this, id](const boost::system::error_code& ec) {
      if (ec) return;
      auto found = calls.find(id);
      if (found == calls.end() || !found->second->rtp || found->second->call->finished()) return;
      const auto& stats = found->second->rtp->stats();
      emit(UaEventKind::kMediaStats, 0, describe(stats), id, stats, false);
      arm_stats_timer(id);
    });
  }

  void end_call(uint64_t id, bool cancel_only) {
    for (auto it = pending_calls.begin(); it != pending_calls.end(); ++it) {
      if (it->id == id) {
        pending_calls.erase(it);
        emit(UaEventKind::kCallEnded, 0, "cancelled by us before it was sent", id);
        return;
      }
    }
    auto it = calls.find(id);
    if (it == calls.end() || it->second->erase_posted) return;
    auto& call = *it->second->call;
    if (cancel_only && call.state() != CallState::kCalling && call.state() != CallState::kProceeding) return;
    apply_call(*it->second, call.hangup(now()));
  }

  void hangup_all() {
    std::vector<uint64_t> ids;
    for (auto& [id, record] : calls) ids.push_back(id);
    for (auto id : ids) end_call(id, false);
    for (auto& p : pending_calls) emit(UaEventKind::kCallFailed, 0, "the UA stopped before the call was sent", p.id);
    pending_calls.clear();
  }

  void calls_lost(const std::string& why) {
    std::vector<uint64_t> ids;
    for (auto& [id, record] : calls) ids.push_back(id);
    for (auto id : ids) {
      auto it = calls.find(id);
      if (it == calls.end() || it->second->erase_posted) continue;
      apply_call(*it->second, it->second->call->flow_lost(why));
    }
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
  std::shared_ptr<asio::ssl::context> tls_context;
  if (config.proxy.transport == net::Transport::kTls) {
    auto made = make_tls_client_context({config.tls_ca_file, config.tls_insecure});
    if (!made) return made.error();
    tls_context = std::move(made).value();
  }
  std::unique_ptr<UserAgent> ua(new UserAgent(std::move(config), std::move(on_event), std::move(logger)));
  ua->loop_ = std::make_unique<Loop>(*ua, std::move(registration).value());
  ua->loop_->tls_context = std::move(tls_context);
  return ua;
}

UserAgent::UserAgent(UaConfig config, EventHandler on_event, std::shared_ptr<spdlog::logger> logger)
    : config_(std::move(config)), on_event_(std::move(on_event)), logger_(std::move(logger)) {
  resolver_options_.supported = {net::Transport::kUdp, net::Transport::kTcp, net::Transport::kTls};
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
  if (target_.transport == net::Transport::kTls && !loop_->tls_context) {
    // NAPTR chose TLS for a URI that did not ask for it: the context create() builds for an
    // explicit TLS proxy is made here instead.
    auto made = make_tls_client_context({config_.tls_ca_file, config_.tls_insecure});
    if (!made) return made.error();
    loop_->tls_context = std::move(made).value();
  }
  {
    std::lock_guard lock(mutex_);
    unregistered_ = false;
  }
  running_ = true;
  asio::post(loop_->io, [loop = loop_.get(), register_binding = config_.register_binding] {
    if (register_binding) {
      loop->apply(loop->registration->start(Loop::now()));
    } else {
      loop->open_flow();  // calls only: the flow without a registration
    }
  });
  thread_ = std::thread([loop = loop_.get()] { loop->io.run(); });
  return Status::Ok();
}

void UserAgent::refresh() {
  if (!running_) return;
  asio::post(loop_->io, [loop = loop_.get()] { loop->apply(loop->registration->refresh_now(Loop::now())); });
}

Result<uint64_t> UserAgent::call(std::string target_uri, CallOptions options) {
  if (!running_) return Error{503, "call: the UA is not started"};
  auto uri = sip::parse_uri(target_uri);
  if (!uri || !uri->is_sip() || uri->host.empty()) return bad_request("call: target must be a sip: or sips: URI");
  uint64_t id = next_call_id_++;
  MediaMode media = options.media.value_or(config_.media);
  asio::post(loop_->io, [loop = loop_.get(), id, target = std::move(target_uri), media]() mutable {
    loop->place_call({id, std::move(target), media});
  });
  return id;
}

void UserAgent::hangup(uint64_t call) {
  if (!running_) return;
  asio::post(loop_->io, [loop = loop_.get(), call] { loop->end_call(call, false); });
}

void UserAgent::cancel(uint64_t call) {
  if (!running_) return;
  asio::post(loop_->io, [loop = loop_.get(), call] { loop->end_call(call, true); });
}

void UserAgent::stop(std::chrono::milliseconds timeout) {
  if (!running_) return;
  running_ = false;
  // BYE/CANCEL first, on the flow that is still up; they are not waited for.
  asio::post(loop_->io, [loop = loop_.get()] { loop->hangup_all(); });
  if (config_.register_binding) {
    asio::post(loop_->io, [loop = loop_.get()] { loop->apply(loop->registration->stop(Loop::now())); });
  } else {
    std::lock_guard lock(mutex_);
    unregistered_ = true;  // nothing was registered: nothing to wait for
  }
  {
    std::unique_lock lock(mutex_);
    if (!unregistered_cv_.wait_for(lock, timeout, [this] { return unregistered_; })) {
      logger_->warn("unregister not answered within {} ms; closing anyway", timeout.count());
    }
  }
  asio::post(loop_->io, [loop = loop_.get()] {
    loop->drop_flow();
    loop->calls.clear();
    loop->registration_timer.cancel();
    loop->txn_timer.cancel();
    loop->work.reset();
    loop->io.stop();
  });
  if (thread_.joinable()) thread_.join();
}

}  // namespace pinhole::ua
