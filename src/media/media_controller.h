// Call state of pinhole-media: what the ng commands (offer, answer, delete, query, list) do to the
// relay. A call is its Call-ID; each offer's from-tag (+ via-branch, one per forked branch) is a
// branch; each enabled m= stream of a branch is one RelaySession, leg A = the offerer, leg B = the
// answerer. The controller rewrites the SDPs to point at the relay (sdp::rewrite_sdp), hands the
// sessions to the relay workers and removes them on delete (after delete-delay) or when a worker
// reports them idle.
//
// Address semantics (rtpengine's, as its ng protocol documentation describes the flags):
// - by default the SDP's c=/m= address is where media for the leg goes (until latching learns
//   the real source), and `received-from` (the SIP message's source) is the address trusted for
//   latching: a first packet from that IP latches at once;
// - `SIP-source-address`: ignore the SDP address and use the received-from address (with the
//   SDP's port) as the expected endpoint;
// - `trust-address`: trust the SDP only: received-from is not used at all;
// - `media-address` overrides both.
//
// Ownership and threads: the controller owns the call table; every method except
// on_session_timeout() must be called from one thread (the ng server's). It does not own the
// workers or the pool (both must outlive it); sessions belong to their worker once added and are
// reached with RelayWorker::call. on_session_timeout() is the workers' TimeoutCallback: any
// thread, it only queues the key; the owning thread acts on it in tick().
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "media/ng_message.h"
#include "media/port_pool.h"
#include "media/relay_session.h"
#include "media/relay_worker.h"
#include "net/address.h"
#include "sdp/sdp_rewriter.h"

namespace pinhole::media {

struct MediaControllerConfig {
  net::Address advertised;  // the relay address written into SDPs (the pool's bind address usually)
  SessionConfig session;
  // A delete without `delete-delay` waits this long (rtpengine's --delete-delay default: 30 s).
  Duration default_delete_delay = std::chrono::seconds(30);
};

struct MediaControllerCounters {
  uint64_t calls_created = 0;
  uint64_t sessions_created = 0;
  uint64_t sessions_deleted = 0;
  uint64_t timeouts = 0;
  uint64_t out_of_ports = 0;
};

class MediaController {
 public:
  // `pool`, `workers` and `clock` must outlive the controller; `workers` must not be empty.
  MediaController(MediaControllerConfig config, PortPool& pool, std::vector<RelayWorker*> workers, const Clock& clock);
  ~MediaController();
  MediaController(const MediaController&) = delete;
  MediaController& operator=(const MediaController&) = delete;

  // Executes one parsed command and returns the encoded reply `<cookie> <dict>`.
  std::string execute(std::string_view cookie, const NgCommand& command);

  // Due delayed deletes and reported timeouts. Call regularly (the ng loop does, every second and
  // before each command).
  void tick();

  // RelayWorker::TimeoutCallback; any thread.
  void on_session_timeout(const SessionKey& key);

  size_t call_count() const { return calls_.size(); }
  size_t session_count() const;
  const MediaControllerCounters& counters() const { return counters_; }

 private:
  struct Stream {
    size_t media_index = 0;  // m= index in the SDP
    SessionKey key;
    size_t worker = 0;
    uint16_t leg_ports[2] = {0, 0};  // RTP port of leg A (0) and leg B (1)
  };
  struct Branch {
    std::string from_tag;
    std::string to_tag;
    std::string via_branch;
    std::vector<Stream> streams;
    std::optional<sdp::PreviousRewrite> previous[2];  // per direction: 0 offer, 1 answer
    int64_t created = 0;
  };
  struct Call {
    std::vector<Branch> branches;
    int64_t created = 0;
    int64_t last_signal = 0;
    std::optional<TimePoint> delete_at;
  };

  // The branch an offer or answer from `from_tag` belongs to, and the side that sent the SDP (0:
  // the branch's offerer, leg A; 1: its answerer, leg B). Null for none (an offer then starts a
  // new branch).
  std::pair<Branch*, size_t> find_branch(Call& call, std::string_view from_tag, std::string_view to_tag,
                                         std::string_view via_branch);
  std::string offer(std::string_view cookie, const NgCommand& command);
  std::string answer(std::string_view cookie, const NgCommand& command);
  static std::string sdp_reply(std::string_view cookie, const NgCommand& command, std::string_view body);
  std::string remove(std::string_view cookie, const NgCommand& command);
  std::string query(std::string_view cookie, const NgCommand& command);
  std::string list(std::string_view cookie, const NgCommand& command);

  void drop_streams(const std::vector<Stream>& streams);
  void erase_call(std::map<std::string, Call, std::less<>>::iterator it);
  int64_t unix_now() const;

  MediaControllerConfig config_;
  PortPool& pool_;
  std::vector<RelayWorker*> workers_;
  const Clock& clock_;
  size_t next_worker_ = 0;
  std::map<std::string, Call, std::less<>> calls_;
  MediaControllerCounters counters_;

  std::mutex timeouts_mutex_;
  std::vector<SessionKey> timeouts_;  // reported by workers, handled in tick()
};

}  // namespace pinhole::media
