// The kernel rules of one relay session (fast_path.h): which of its four streams (each leg's RTP
// and RTCP socket) the kernel forwards by itself, kept in step with the session's latching, and
// the kernel's counts folded back into the session's statistics so that ng `query`/`delete`,
// the inactivity timeout and the loss figures see every packet.
//
// Ownership and threads: a plain value inside the relay worker's entry for the session, used on
// that worker's thread only. It does not own the FastPath (the relay runtime does, and it
// outlives every worker); the rules it installed must be cleared before the session's sockets
// close, since their ports go back to the pool and may serve another call.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

#include "common/clock.h"
#include "media/fast_path.h"
#include "media/relay_session.h"
#include "net/address.h"

namespace pinhole::media {

// What the worker counts about its rules (for metrics).
struct FastPathTally {
  uint64_t installed = 0;
  uint64_t removed = 0;
  uint64_t errors = 0;  // install refused (map full, family mix): the stream stays in user space
};

class SessionFastPath {
 public:
  // Makes the installed rules match what the session allows now (RelaySession::fast_path_route
  // for each stream; `local` is the relay sockets' address): installs, replaces or removes.
  // Cheap when nothing changed (no syscall): the worker calls it after every batch it relayed.
  void reconcile(FastPath& fast_path, const net::Address& local, RelaySession& session, TimePoint now,
                 FastPathTally& tally);
  // Folds what the kernel counted since the last call into the session's statistics.
  void sync(FastPath& fast_path, RelaySession& session, TimePoint now);
  // Removes every rule, folding their final counts in (the session is going away).
  void clear(FastPath& fast_path, RelaySession& session, TimePoint now, FastPathTally& tally);

  bool active() const;
  // Whether the kernel forwards the stream arriving on leg `leg`'s RTP or RTCP socket.
  bool installed(size_t leg, bool rtcp_socket) const { return streams_[index(leg, rtcp_socket)].has_value(); }

 private:
  struct Installed {
    FastPathRoute route;
    net::Endpoint local;
    FastPathRuleStats seen;  // the kernel's counts at the last fold
  };

  static size_t index(size_t leg, bool rtcp_socket) { return leg * 2 + (rtcp_socket ? 1 : 0); }
  void fold(RelaySession& session, size_t stream, const FastPathRuleStats& now_stats, TimePoint now);
  void uninstall(FastPath& fast_path, RelaySession& session, size_t stream, TimePoint now, FastPathTally& tally);

  std::array<std::optional<Installed>, 4> streams_;
};

}  // namespace pinhole::media
