// libosip2 side of the parser benchmark (bench_parser.cc): parse one message with osip and read
// the same fields the pinhole side reads, so both parsers are measured doing the same job.
//
// Not thread-safe: osip_init() must run once, before any parse (osip's parser_init() fills global
// lookup tables). An OsipMessage is used by one thread.
#pragma once

#include <osipparser2/osip_message.h>
#include <osipparser2/osip_parser.h>

#include <cstddef>
#include <string_view>

namespace pinhole::bench {

// Calls osip's parser_init() once. Returns false if osip refuses to initialise.
bool osip_init();

// One osip_message_t: osip_message_init on construction, osip_message_free on destruction, so a
// benchmark iteration pays for osip's allocation and release just as pinhole pays for its own.
class OsipMessage {
 public:
  OsipMessage();
  ~OsipMessage();
  OsipMessage(const OsipMessage&) = delete;
  OsipMessage& operator=(const OsipMessage&) = delete;

  // osip_message_parse() on `bytes` (osip copies them). False when osip rejects the message.
  bool parse(std::string_view bytes);
  const osip_message_t* get() const { return msg_; }

 private:
  osip_message_t* msg_ = nullptr;
};

namespace osip_detail {

// osip's lookup functions take `char*` names they never write to.
inline osip_generic_param_t* param(const osip_list_t* params, const char* name) {
  osip_generic_param_t* p = nullptr;
  osip_generic_param_get_byname(const_cast<osip_list_t*>(params), const_cast<char*>(name), &p);
  return p;
}

// Walks an osip list with its iterator (osip_list_get(i) would rescan from the head each time,
// which would be unfair to osip on the 8-Contact message).
template <typename T, typename F>
size_t for_each(const osip_list_t* list, F&& f) {
  osip_list_iterator_t it;
  size_t n = 0;
  for (void* e = osip_list_get_first(list, &it); e != nullptr; e = osip_list_get_next(&it)) {
    f(static_cast<const T*>(e));
    ++n;
  }
  return n;
}

}  // namespace osip_detail

// Reads, from a message osip has parsed, the fields a NAT-traversal edge needs (the list is the
// same, in the same order, as pinhole_touch() in bench_parser.cc) and hands each to `sink`.
// osip keeps numbers as text; they are passed as text (sink.num_text) and not converted, which
// spares osip a strtoul that the pinhole side gets for free: the comparison errs in osip's favour.
// Returns false when a mandatory header is missing.
template <typename Sink>
bool osip_touch(const osip_message_t* m, Sink& sink) {
  using osip_detail::for_each;
  using osip_detail::param;
  // Start line (osip parses it eagerly, as pinhole does).
  if (m->status_code == 0) {
    if (m->sip_method == nullptr || m->req_uri == nullptr) return false;
    sink.cstr(m->sip_method);
    sink.cstr(m->req_uri->host);
  } else {
    sink.num(static_cast<uint64_t>(m->status_code));
  }

  // Via: top branch, then every sent-by host and port.
  const auto* top = static_cast<const osip_via_t*>(osip_list_get(&m->vias, 0));
  if (top == nullptr) return false;
  sink.num(static_cast<uint64_t>(osip_list_size(&m->vias)));
  const osip_generic_param_t* branch = param(&top->via_params, "branch");
  if (branch != nullptr) {
    sink.cstr(branch->gvalue);
  } else {
    sink.absent();
  }
  for_each<osip_via_t>(&m->vias, [&](const osip_via_t* v) {
    sink.cstr(v->host);
    sink.num_text(v->port);
  });

  // From tag + URI host, To tag.
  if (m->from == nullptr || m->from->url == nullptr || m->to == nullptr) return false;
  const osip_generic_param_t* from_tag = param(&m->from->gen_params, "tag");
  if (from_tag != nullptr) {
    sink.cstr(from_tag->gvalue);
  } else {
    sink.absent();
  }
  sink.cstr(m->from->url->host);
  const osip_generic_param_t* to_tag = param(&m->to->gen_params, "tag");
  if (to_tag != nullptr) {
    sink.cstr(to_tag->gvalue);
  } else {
    sink.absent();
  }

  // Call-ID (osip splits it at '@'), CSeq.
  if (m->call_id == nullptr || m->cseq == nullptr) return false;
  sink.cstr_joined(m->call_id->number, '@', m->call_id->host);
  sink.num_text(m->cseq->number);
  sink.cstr(m->cseq->method);

  // Every Contact: URI host + expires.
  sink.num(static_cast<uint64_t>(osip_list_size(&m->contacts)));
  for_each<osip_contact_t>(&m->contacts, [&](const osip_contact_t* c) {
    sink.cstr(c->url != nullptr ? c->url->host : nullptr);
    const osip_generic_param_t* expires = param(&c->gen_params, "expires");
    if (expires != nullptr) {
      sink.cstr(expires->gvalue);
    } else {
      sink.absent();
    }
  });

  // Every Record-Route URI.
  sink.num(static_cast<uint64_t>(osip_list_size(&m->record_routes)));
  for_each<osip_record_route_t>(&m->record_routes, [&](const osip_record_route_t* rr) {
    sink.cstr(rr->url != nullptr ? rr->url->host : nullptr);
  });

  // Max-Forwards (an untyped header in osip).
  osip_header_t* mf = nullptr;
  if (osip_message_header_get_byname(m, "max-forwards", 0, &mf) >= 0 && mf != nullptr) {
    sink.num_text(mf->hvalue);
  } else {
    sink.absent();
  }

  // Content-Type.
  if (m->content_type != nullptr) {
    sink.cstr(m->content_type->type);
    sink.cstr(m->content_type->subtype);
  } else {
    sink.absent();
    sink.absent();
  }

  // Body pointer and length.
  const auto* body = static_cast<const osip_body_t*>(osip_list_get(&m->bodies, 0));
  if (body != nullptr) {
    sink.str(std::string_view(body->body, body->length));
  } else {
    sink.str(std::string_view());
  }
  return true;
}

}  // namespace pinhole::bench
