// Keeps one session's kernel rules in step with its latching (session_fast_path.h).
#include "media/session_fast_path.h"

#include <algorithm>

namespace pinhole::media {

bool SessionFastPath::active() const {
  return std::any_of(streams_.begin(), streams_.end(), [](const auto& s) { return s.has_value(); });
}

void SessionFastPath::fold(RelaySession& session, size_t stream, const FastPathRuleStats& now_stats, TimePoint now) {
  Installed& inst = *streams_[stream];
  // A replaced rule starts again from zero; remove() hands back the final count of the old one
  // first, so the kernel's numbers only grow between two folds of the same rule.
  if (now_stats.packets < inst.seen.packets) return;
  session.add_fast_path_traffic(stream / 2, (stream % 2) == 1, now_stats.packets - inst.seen.packets,
                                now_stats.bytes - inst.seen.bytes, now_stats.last_seq, inst.seen.seq, now_stats.seq,
                                now);
  inst.seen = now_stats;
}

void SessionFastPath::uninstall(FastPath& fast_path, RelaySession& session, size_t stream, TimePoint now,
                                FastPathTally& tally) {
  Installed& inst = *streams_[stream];
  if (auto last = fast_path.remove(inst.local, inst.route.source)) fold(session, stream, *last, now);
  streams_[stream].reset();
  ++tally.removed;
}

void SessionFastPath::reconcile(FastPath& fast_path, const net::Address& local, RelaySession& session, TimePoint now,
                                FastPathTally& tally) {
  for (size_t leg = 0; leg < 2; ++leg) {
    for (bool rtcp_socket : {false, true}) {
      size_t i = index(leg, rtcp_socket);
      std::optional<FastPathRoute> wanted = session.fast_path_route(leg, rtcp_socket);
      if (streams_[i] && wanted && streams_[i]->route == *wanted) continue;
      if (streams_[i]) uninstall(fast_path, session, i, now, tally);
      if (!wanted) continue;
      const PortLease& ports = session.leg(leg).ports();
      net::Endpoint in_local{local, rtcp_socket ? ports.rtcp_port() : ports.rtp_port()};
      FastPathRule rule{in_local,    wanted->source,   net::Endpoint{local, wanted->out_port},  wanted->destination,
                        wanted->rtp, wanted->rtcp_mux, session.leg(leg).stats().rtp_seq.state()};
      if (!fast_path.install(rule)) {
        ++tally.errors;  // user space keeps relaying this stream
        continue;
      }
      streams_[i] = Installed{*wanted, in_local, FastPathRuleStats{0, 0, 0, rule.seq}};
      ++tally.installed;
    }
  }
}

void SessionFastPath::sync(FastPath& fast_path, RelaySession& session, TimePoint now) {
  for (size_t i = 0; i < streams_.size(); ++i) {
    if (!streams_[i]) continue;
    if (auto stats = fast_path.read(streams_[i]->local, streams_[i]->route.source)) fold(session, i, *stats, now);
  }
}

void SessionFastPath::clear(FastPath& fast_path, RelaySession& session, TimePoint now, FastPathTally& tally) {
  for (size_t i = 0; i < streams_.size(); ++i) {
    if (streams_[i]) uninstall(fast_path, session, i, now, tally);
  }
}

}  // namespace pinhole::media
