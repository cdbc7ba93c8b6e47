#include "ua/registration.h"

#include <algorithm>
#include <utility>

#include "sip/builder.h"
#include "sip/charset.h"
#include "sip/scalar_headers.h"
#include "sip/uri.h"
#include "ua/random.h"

namespace pinhole::ua {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// A 200 listing this many other bindings is worth a warning (a registrar echoing a crowd).
constexpr size_t kManyForeignBindings = 20;

}  // namespace

std::string_view via_transport_token(net::Transport t) {
  switch (t) {
    case net::Transport::kUdp:
      return "UDP";
    case net::Transport::kTcp:
      return "TCP";
    case net::Transport::kTls:
      return "TLS";
    case net::Transport::kWs:
      return "WS";
    case net::Transport::kWss:
      return "WSS";
  }
  return "UDP";
}

std::string_view state_name(RegistrationState state) {
  switch (state) {
    case RegistrationState::kIdle:
      return "idle";
    case RegistrationState::kWaitingFlow:
      return "waiting-for-flow";
    case RegistrationState::kRegistering:
      return "registering";
    case RegistrationState::kRegistered:
      return "registered";
    case RegistrationState::kBackoff:
      return "backoff";
    case RegistrationState::kUnregistering:
      return "unregistering";
  }
  return "?";
}

milliseconds outbound_backoff_bound(uint32_t failures, bool ever_registered, milliseconds base,
                                    milliseconds base_after_success, milliseconds max) {
  // RFC 5626 §4.5: wait-time = min(max-time, base-time * 2^consecutive-failures).
  milliseconds b = ever_registered ? base_after_success : base;
  uint32_t shift = std::min<uint32_t>(failures, 20);  // 2^20 × 30 s is far past any max-time
  auto bound = b * (int64_t{1} << shift);
  return std::min(bound, max);
}

milliseconds refresh_delay(uint32_t granted) {
  // expires − max(expires/10, 5 s), and at least half the lifetime for very short grants.
  auto granted_ms = milliseconds(seconds(granted));
  auto margin = std::max<milliseconds>(granted_ms / 10, seconds(5));
  auto delay = granted_ms - margin;
  if (delay < granted_ms / 2) delay = granted_ms / 2;
  return std::max<milliseconds>(delay, milliseconds(500));
}

Result<std::unique_ptr<Registration>> Registration::create(const UaConfig& config) {
  auto aor = sip::parse_uri(config.aor);
  if (!aor || !aor->is_sip() || !aor->has_user || aor->user.empty() || aor->host.empty()) {
    return bad_request("AOR must be a sip: URI with a user and a host (sip:alice@example.com)");
  }
  std::string domain = std::string(aor->scheme == sip::UriScheme::kSips ? "sips:" : "sip:") + std::string(aor->host);
  if (aor->has_port()) domain += ":" + std::string(aor->port_text);
  return std::unique_ptr<Registration>(new Registration(config, std::string(aor->user), std::move(domain)));
}

Registration::Registration(const UaConfig& config, std::string aor_user, std::string domain_uri)
    : config_(config),
      aor_user_(std::move(aor_user)),
      domain_uri_(std::move(domain_uri)),
      digest_user_(config.user.empty() ? sip::unescape(aor_user_) : config.user),
      digest_(digest_user_, config.password),
      call_id_(random_hex(16)),
      from_tag_(random_hex(8)),
      requested_expires_(config.expires) {}

std::string Registration::contact_uri_for(const HostPort& address) const {
  std::string uri = "sip:" + aor_user_ + "@" + address.to_string();
  // The same parameters on every REGISTER: a refresh that drops transport=tcp would make the
  // registrar try UDP towards us.
  if (flow_.transport != net::Transport::kUdp) uri += ";transport=" + std::string(net::transport_name(flow_.transport));
  if (config_.outbound) uri += ";ob";
  return uri;
}

std::string Registration::build_register(uint32_t expires) {
  branch_ = std::string(sip::kBranchMagicCookie) + random_hex(12);
  std::string via = "SIP/2.0/" + std::string(via_transport_token(flow_.transport)) + " " + flow_.local.to_string() +
                    ";branch=" + branch_ + ";rport";
  if (config_.via_alias && net::is_stream(flow_.transport)) via += ";alias";

  std::string contact;
  if (sent_stale_) contact = "<" + contact_uri_for(*sent_stale_) + ">;expires=0, ";
  contact += "<" + contact_uri_for(sent_contact_) + ">";
  if (config_.outbound) {
    contact += ";+sip.instance=\"<" + config_.instance_id + ">\";reg-id=" + std::to_string(config_.reg_id);
  }
  contact += ";expires=" + std::to_string(expires);

  ++cseq_;
  transaction_cseq_ = cseq_;
  sip::RequestBuilder b("REGISTER", domain_uri_);
  b.header("Via", via)
      .header("Max-Forwards", "70")
      .header("From", "<" + config_.aor + ">;tag=" + from_tag_)
      .header("To", "<" + config_.aor + ">")
      .header("Call-ID", call_id_)
      .header("CSeq", std::to_string(cseq_) + " REGISTER")
      .header("Contact", contact)
      .header("Expires", std::to_string(expires));
  if (config_.outbound) b.header("Supported", "path, outbound");
  if (digest_.has_challenge()) {
    auto credentials = digest_.credentials("REGISTER", domain_uri_);
    if (credentials) b.header(digest_.header_name(), *credentials);
  }
  if (!config_.user_agent.empty()) b.header("User-Agent", config_.user_agent);
  return b.build();
}

void Registration::send_register(RegistrationOutput& out, TimePoint /*now*/, uint32_t expires) {
  sent_contact_ = contact_;
  sent_stale_ = stale_;
  in_transaction_ = true;
  out.send.push_back(build_register(expires));
}

void Registration::fail(RegistrationOutput& out, TimePoint now, RegistrationEventKind kind, uint16_t status,
                        std::string text) {
  in_transaction_ = false;
  ++failures_;
  state_ = RegistrationState::kBackoff;
  auto bound = outbound_backoff_bound(failures_, ever_registered_, config_.backoff_base,
                                      config_.backoff_base_after_success, config_.backoff_max);
  auto wait = milliseconds(static_cast<int64_t>(
      random_between(static_cast<uint64_t>(bound.count()) / 2, static_cast<uint64_t>(bound.count()))));
  retry_at_ = now + wait;
  text += "; retrying in " + std::to_string(wait.count() / 1000) + " s";
  out.events.push_back({kind, status, std::move(text)});
}

RegistrationOutput Registration::start(TimePoint /*now*/) {
  RegistrationOutput out;
  if (state_ != RegistrationState::kIdle) return out;
  unregistering_ = false;
  requested_expires_ = config_.expires;
  state_ = RegistrationState::kWaitingFlow;
  out.want_flow = true;
  return out;
}

RegistrationOutput Registration::flow_ready(TimePoint now, const FlowInfo& flow) {
  RegistrationOutput out;
  flow_up_ = true;
  flow_ = flow;
  registered_on_this_flow_ = false;
  // A new flow starts from its own local address; the first response teaches the public one.
  contact_ = flow.local;
  if (registered_at_ && *registered_at_ != contact_) stale_ = registered_at_;
  if (state_ != RegistrationState::kWaitingFlow) return out;
  state_ = RegistrationState::kRegistering;
  challenges_answered_ = 0;
  send_register(out, now, requested_expires_);
  return out;
}

RegistrationOutput Registration::flow_lost(TimePoint now, std::string_view why) {
  RegistrationOutput out;
  flow_up_ = false;
  if (unregistering_) {
    in_transaction_ = false;
    unregistering_ = false;
    state_ = RegistrationState::kIdle;
    out.events.push_back({RegistrationEventKind::kUnregistered, 0, "flow lost before the unregister completed"});
    return out;
  }
  if (state_ == RegistrationState::kIdle || state_ == RegistrationState::kBackoff) return out;
  in_transaction_ = false;
  if (registered_on_this_flow_) {
    // RFC 5626 §4.5: replace a flow that worked at once; the backoff is for failures to form one.
    registered_on_this_flow_ = false;
    state_ = RegistrationState::kWaitingFlow;
    out.want_flow = true;
    out.events.push_back({RegistrationEventKind::kFailed, 0,
                          "flow failed (" + std::string(why) + "); re-registering on a new flow now"});
    return out;
  }
  fail(out, now, RegistrationEventKind::kFailed, 0, "flow failed (" + std::string(why) + ")");
  return out;
}

RegistrationOutput Registration::on_response(const sip::Message& response, TimePoint now) {
  RegistrationOutput out;
  if (!in_transaction_ || !response.is_response()) return out;
  auto via = response.top_via();
  auto cseq = response.cseq();
  auto call_id = response.call_id();
  if (!via || !cseq || !call_id || (*via)->branch != branch_ || cseq->number != transaction_cseq_ ||
      cseq->method != sip::Method::kRegister || *call_id != call_id_) {
    return out;
  }
  uint16_t status = response.status();
  if (status < 200) return out;  // the transaction (Proceeding) handles its retransmissions
  in_transaction_ = false;

  // Any final response (401 included) tells us where the registrar sees us.
  if (auto learned = learned_address(**via); learned && *learned != contact_) {
    out.events.push_back(
        {RegistrationEventKind::kContactChanged, status,
         "registrar sees us at " + learned->to_string() + " (Contact had " + contact_.to_string() + ")"});
    contact_ = *learned;
    if (registered_at_ && *registered_at_ != contact_) stale_ = registered_at_;
  }

  if (unregistering_) {
    if ((status == 401 || status == 407) && challenges_answered_ == 0) {
      if (auto stale = digest_.take_challenge(response)) {
        ++challenges_answered_;
        send_register(out, now, 0);
        return out;
      }
    }
    unregistering_ = false;
    state_ = RegistrationState::kIdle;
    registered_at_.reset();
    out.events.push_back({RegistrationEventKind::kUnregistered, status,
                          "unregister answered " + std::to_string(status) + " " + std::string(response.reason())});
    return out;
  }

  if (status == 401 || status == 407) {
    auto stale = digest_.take_challenge(response);
    if (!stale) {
      fail(out, now, RegistrationEventKind::kFailed, status, std::string(stale.error().what));
      return out;
    }
    if (challenges_answered_ > 0 && !*stale) {
      challenges_answered_ = 0;
      fail(out, now, RegistrationEventKind::kAuthFailed, status,
           "credentials refused (" + std::to_string(status) + " again) for user " + digest_user_);
      return out;
    }
    ++challenges_answered_;
    send_register(out, now, requested_expires_);
    return out;
  }
  if (status == 423) {
    const auto* field = response.header(sip::HeaderKind::kMinExpires);
    auto min = field != nullptr ? sip::parse_delta_header(field->value) : Result<uint32_t>(bad_request("absent"));
    if (min && *min > requested_expires_) {
      requested_expires_ = *min;
      send_register(out, now, requested_expires_);
      return out;
    }
    fail(out, now, RegistrationEventKind::kFailed, status, "423 without a usable Min-Expires");
    return out;
  }
  if (status >= 200 && status < 300) {
    challenges_answered_ = 0;
    on_success(response, out, now);
    return out;
  }
  fail(out, now, status == 403 ? RegistrationEventKind::kAuthFailed : RegistrationEventKind::kFailed, status,
       "REGISTER answered " + std::to_string(status) + " " + std::string(response.reason()));
  return out;
}

void Registration::on_success(const sip::Message& response, RegistrationOutput& out, TimePoint now) {
  std::string sent_uri = contact_uri_for(sent_contact_);
  std::string instance = "<" + config_.instance_id + ">";
  OurBinding ours{config_.outbound ? std::string_view(instance) : std::string_view(),
                  config_.outbound ? config_.reg_id : 0, sent_uri};

  std::optional<uint32_t> granted;
  size_t foreign = 0;
  auto contacts = response.contacts();
  if (!contacts) {
    out.events.push_back(
        {RegistrationEventKind::kWarning, response.status(),
         "200 OK with an unparseable Contact (" + std::string(contacts.error().what) + "); trusting Expires"});
  } else {
    auto match = find_our_binding(*contacts, ours);
    foreign = match.foreign;
    if (match.found) {
      granted = match.expires;
    } else if (!contacts->empty()) {
      out.events.push_back({RegistrationEventKind::kWarning, response.status(),
                            "200 OK does not list our Contact among " + std::to_string(contacts->size()) +
                                " bindings; trusting Expires"});
    }
    if (foreign >= kManyForeignBindings) {
      out.events.push_back(
          {RegistrationEventKind::kWarning, response.status(),
           "200 OK lists " + std::to_string(foreign) + " bindings of other devices for this AOR; ignored, ours kept"});
    }
  }
  if (!granted) {
    auto expires = response.expires();
    if (expires && expires->has_value()) granted = **expires;
  }
  uint32_t lifetime = granted.value_or(requested_expires_);
  if (lifetime == 0) {
    fail(out, now, RegistrationEventKind::kFailed, response.status(), "registrar granted 0 s for our binding");
    return;
  }

  flow_timer_.reset();
  if (const auto* field = response.header(sip::HeaderKind::kFlowTimer)) {
    auto value = sip::parse_delta_header(field->value);
    if (!value) {
      out.events.push_back({RegistrationEventKind::kWarning, response.status(),
                            "malformed Flow-Timer ignored; using the configured keepalive interval"});
    } else if (*value == 0) {
      out.events.push_back({RegistrationEventKind::kWarning, response.status(),
                            "Flow-Timer: 0 is meaningless; using the configured keepalive interval"});
    } else {
      flow_timer_ = *value;
    }
  }
  outbound_required_ = false;
  for (const auto& field : response.headers()) {
    if (field.kind != sip::HeaderKind::kRequire) continue;
    (void)sip::for_each_option_tag(field.value, [&](std::string_view tag) {
      if (sip::iequals(tag, "outbound")) outbound_required_ = true;
    });
  }

  if (sent_stale_ && stale_ == sent_stale_) stale_.reset();
  registered_at_ = sent_contact_;
  granted_ = lifetime;
  failures_ = 0;
  ever_registered_ = true;
  registered_on_this_flow_ = true;
  state_ = RegistrationState::kRegistered;
  std::string text = "registered " + sent_uri + " for " + std::to_string(lifetime) + " s";
  if (foreign > 0) text += " (" + std::to_string(foreign) + " other bindings)";
  out.events.push_back({RegistrationEventKind::kRegistered, response.status(), std::move(text)});

  if (contact_ != sent_contact_) {
    // The 200 itself taught a new address: re-register at once, removing the binding just made.
    stale_ = sent_contact_;
    send_register(out, now, requested_expires_);
    return;
  }
  refresh_at_ = now + refresh_delay(lifetime);
}

RegistrationOutput Registration::on_failure(std::string_view branch, uint16_t status, TimePoint now) {
  RegistrationOutput out;
  if (!in_transaction_ || branch != branch_) return out;  // a transaction we no longer wait for
  in_transaction_ = false;
  if (unregistering_) {
    unregistering_ = false;
    state_ = RegistrationState::kIdle;
    out.events.push_back({RegistrationEventKind::kUnregistered, status, "unregister unanswered"});
    return out;
  }
  // RFC 5626 §4.4: an unanswered REGISTER means the flow is dead.
  out.flow_failed = true;
  flow_up_ = false;
  registered_on_this_flow_ = false;
  fail(out, now, RegistrationEventKind::kTimeout, status,
       status == 408 ? "REGISTER unanswered; flow treated as failed"
                     : "REGISTER could not be sent; flow treated as failed");
  return out;
}

RegistrationOutput Registration::on_timer(TimePoint now) {
  RegistrationOutput out;
  if (in_transaction_) return out;  // the transaction's timers are the table's
  if (state_ == RegistrationState::kRegistered && now >= refresh_at_) {
    send_register(out, now, requested_expires_);
    return out;
  }
  if (state_ == RegistrationState::kBackoff && now >= retry_at_) {
    challenges_answered_ = 0;
    if (flow_up_) {
      state_ = RegistrationState::kRegistering;
      send_register(out, now, requested_expires_);
    } else {
      state_ = RegistrationState::kWaitingFlow;
      out.want_flow = true;
    }
  }
  return out;
}

RegistrationOutput Registration::refresh_now(TimePoint now) {
  RegistrationOutput out;
  if (state_ == RegistrationState::kRegistered && !in_transaction_ && flow_up_) {
    send_register(out, now, requested_expires_);
  }
  return out;
}

RegistrationOutput Registration::stop(TimePoint now) {
  RegistrationOutput out;
  if (unregistering_) return out;
  // An authenticated REGISTER still in flight may have made a binding; an unanswered first one
  // (no registrar there) has not, and waiting for its unregister would only delay the exit.
  bool may_have_binding = registered_at_.has_value() || (in_transaction_ && challenges_answered_ > 0);
  if (flow_up_ && may_have_binding) {
    unregistering_ = true;
    state_ = RegistrationState::kUnregistering;
    challenges_answered_ = 0;
    send_register(out, now, 0);
    return out;
  }
  in_transaction_ = false;
  state_ = RegistrationState::kIdle;
  out.events.push_back(
      {RegistrationEventKind::kUnregistered, 0, flow_up_ ? "nothing to unregister" : "no flow to unregister on"});
  return out;
}

std::optional<TimePoint> Registration::next_deadline() const {
  if (in_transaction_) return std::nullopt;  // the table's Timer F answers through on_failure
  if (state_ == RegistrationState::kRegistered) return refresh_at_;
  if (state_ == RegistrationState::kBackoff) return retry_at_;
  return std::nullopt;
}

}  // namespace pinhole::ua
