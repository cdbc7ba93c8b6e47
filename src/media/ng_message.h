// rtpengine's "ng" control protocol, wire layer only (no sockets, no relay): message framing over
// UDP and TCP, the typed command a relay acts on, and the reply encoders. This is what lets
// Kamailio's and OpenSIPS's `rtpengine` modules drive pinhole-media, and the pinhole edge drive
// rtpengine.
//
// Framing. Every message is `<cookie> <bencoded dictionary>`: the cookie is the bytes up to the
// first space, and the reply carries the request's cookie (so retransmissions can be matched).
// Over UDP one datagram is one message. Over TCP (rtpengine --listen-tcp-ng) rtpengine's docs say
// "everything said for UDP counts for TCP too", and its stream reader (control_ng.c
// chunk_message) takes the cookie up to the first space and then exactly one bencode value, which
// is self-delimiting: there is no length prefix or separator. NgStreamSplitter does the same.
//
// Commands. parse_ng_command() turns the request dictionary into NgCommand, with the keys and
// values Kamailio's rtpengine module (rtpengine.c: rtpp_function_call, parse_flags) sends for
// offer/answer/delete/query: call-id, from-tag, to-tag, via-branch, sdp, received-from ([family,
// address]), flags (list), replace (list), rtcp-mux (list), direction (list), ICE, address family,
// media address, transport-protocol, delete delay, label, from-tags, supports, sip-message-type,
// and rtpp-flags (the raw flag string newer Kamailio leaves for the relay to parse). As rtpengine
// does, key and flag names match with spaces, hyphens and underscores interchangeable and
// letters in any case ("SIP source address" == "SIP-source-address"), list values may also be a
// comma-separated string, and a flag may arrive as a `flags` entry ("replace-origin",
// "rtcp-mux-demux", "from-tags-X") or under its own key ("replace": ["origin"]): both land in the
// same typed set. Keys are applied in input order; a later repeat of a single-valued key wins, as
// in rtpengine, and is listed in `conflicting_keys` when its value differs. Unknown flags, unknown
// keys and unusable values are collected, never fatal, so that the server can answer with a
// `warning` (ng_warning()).
//
// Views. NgFrame and NgCommand hold string_views into the message buffer: they are valid while
// that buffer lives and is unchanged. Plain values and functions; no shared state.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "media/bencode.h"

namespace pinhole::media {

// Largest message accepted, cookie and space included (the same bound as bencode's size limit).
inline constexpr size_t kNgMaxMessage = size_t{64} * 1024;
// Longest cookie. Kamailio's are "<server id>_<random>_<sequence>" (under 34 bytes).
inline constexpr size_t kNgMaxCookie = 128;
// Longest `warning` ng_warning() builds (it may quote attacker-chosen names).
inline constexpr size_t kNgMaxWarning = 400;

struct NgFrame {
  std::string_view cookie;
  std::string_view body;  // the bencoded dictionary; may be empty (answer with an error)
};

// Splits one UDP datagram (or one stream message) at its first space. Fails, and the message is
// to be dropped since there is nothing to answer to, when there is no space, the cookie is empty
// or longer than kNgMaxCookie, or it holds bytes other than visible ASCII. Does not look at the
// body.
Result<NgFrame> split_ng_frame(std::string_view message);

// Splits an ng TCP byte stream into messages. Owned by one connection; not thread-safe.
// Whitespace before a cookie (CR, LF, tab, space) is skipped: no cookie can start with it, and a
// client typing into netcat or ending each message with a newline then still works. Anything
// else that does not frame is an error after which the connection must be closed, because the
// rest of the stream cannot be resynchronised.
class NgStreamSplitter {
 public:
  explicit NgStreamSplitter(size_t max_message = kNgMaxMessage) : max_message_(max_message) {}

  enum class Kind : uint8_t { kNeedMore, kMessage, kError };
  struct Frame {
    Kind kind = Kind::kNeedMore;
    NgFrame message;  // kMessage: valid until the next append() or next()
    Error error{};    // kError: 400 (unframeable) or 413 (message over max_message)
  };

  void append(std::string_view bytes);
  // The next complete message, or kNeedMore. After kError the splitter stays in error.
  Frame next();
  // Bytes received but not yet returned in a message.
  size_t buffered() const { return buffer_.size() - consumed_; }

 private:
  Frame fail(Error error);

  size_t max_message_;
  std::string buffer_;
  size_t consumed_ = 0;    // bytes of buffer_ already returned or skipped
  size_t cookie_len_ = 0;  // of the pending message, once its space has been seen
  bencode::Scanner scanner_;
  bool failed_ = false;
  Error failure_{};
};

enum class NgCommandKind : uint8_t { kPing, kOffer, kAnswer, kDelete, kQuery, kList, kOther };

// The wire name ("offer"...); "" for kOther (whose name is NgCommand::command).
std::string_view ng_command_name(NgCommandKind kind);

// A small set of enum values (each enum below has fewer than 64 members).
template <typename E>
class NgSet {
 public:
  void add(E e) { bits_ |= bit(e); }
  void remove(E e) { bits_ &= ~bit(e); }
  bool has(E e) const { return (bits_ & bit(e)) != 0; }
  bool empty() const { return bits_ == 0; }
  friend bool operator==(const NgSet&, const NgSet&) = default;

 private:
  static uint64_t bit(E e) { return uint64_t{1} << static_cast<unsigned>(e); }
  uint64_t bits_ = 0;
};

// Boolean options from the `flags` list (and the keys that mirror some of them). The NAT ones
// are what Kamailio scripts use with nathelper-style setups: trust-address / SIP-source-address
// decide whether the SDP or the SIP source gives the endpoint; symmetric / asymmetric and
// strict-source / media-handover decide how the relay latches.
enum class NgFlag : uint8_t {
  kTrustAddress,
  kSipSourceAddress,
  kSymmetric,
  kAsymmetric,
  kStrictSource,
  kMediaHandover,
  kPortLatching,
  kNoPortLatching,
  kNatWait,
  kPierceNat,
  kRecordCall,
  kFatal,  // delete: an unknown call is an error, not a warning
  kLoopProtect,
  kEarlyMedia,
  kReset,
  kRejectIce,
  kTrickleIce,
  kGenerateMid,
  kGenerateRtcp,
  kFullRtcpAttribute,
  kNoRtcpAttribute,
  kOriginalSendrecv,
  kSingleCodec,
  kDirectional,
  kFragment,
  kUnidirectional,
  kDebug,
};
using NgFlags = NgSet<NgFlag>;

// Parts of the SDP to rewrite (`replace` list, or `replace-*` flags).
enum class NgReplace : uint8_t {
  kOrigin,
  kOriginFull,
  kSessionConnection,
  kSessionName,
  kSdpVersion,
  kUsername,
  kZeroAddress,
  kForceIncrementSdpVersion,
};

// RFC 5761 rtcp-mux handling (`rtcp-mux` list, or `rtcp-mux-*` flags).
enum class NgRtcpMux : uint8_t { kOffer, kDemux, kAccept, kReject, kRequire };

enum class NgIce : uint8_t { kUnset, kRemove, kForce, kDefault, kForceRelay, kOptional };
enum class NgFamily : uint8_t { kUnset, kIp4, kIp6 };
enum class NgTransport : uint8_t {
  kUnset,
  kRtpAvp,
  kRtpSavp,
  kRtpAvpf,
  kRtpSavpf,
  kUdpTlsRtpSavp,
  kUdpTlsRtpSavpf,
  kAccept,  // answer: go along with the answerer's protocol
};
enum class NgSipMessageType : uint8_t { kUnset, kRequest, kReply };

// Where the SIP message that caused the command came from (Kamailio: the packet's source).
struct NgReceivedFrom {
  NgFamily family = NgFamily::kUnset;
  std::string_view address;
  friend bool operator==(const NgReceivedFrom&, const NgReceivedFrom&) = default;
};

struct NgCommand {
  NgCommandKind kind = NgCommandKind::kOther;
  std::string_view command;  // as sent ("start recording"... for kOther)

  std::string_view call_id;
  std::string_view from_tag;
  std::string_view to_tag;
  bool has_to_tag = false;  // a delete with a to-tag deletes one branch only
  std::string_view via_branch;
  std::string_view sdp;
  std::string_view label;
  std::string_view media_address;  // overrides the SDP and received-from addresses
  std::optional<NgReceivedFrom> received_from;
  NgFamily address_family = NgFamily::kUnset;
  NgIce ice = NgIce::kUnset;
  NgTransport transport_protocol = NgTransport::kUnset;
  std::vector<std::string_view> direction;  // interface names, at most two (from, to)
  std::vector<std::string_view> from_tags;
  std::optional<int64_t> delete_delay;  // seconds; an integer or a decimal string on the wire
  std::optional<int64_t> limit;         // list: most call-ids to return
  NgFlags flags;
  NgSet<NgReplace> replace;
  NgSet<NgRtcpMux> rtcp_mux;
  bool supports_load_limit = false;  // the client understands `result: load limit`
  NgSipMessageType sip_message_type = NgSipMessageType::kUnset;

  // For the reply's `warning` (views into the message).
  std::vector<std::string_view> unknown_flags;
  std::vector<std::string_view> unknown_keys;
  std::vector<std::string_view> invalid_keys;      // known key, value of the wrong type or unknown
  std::vector<std::string_view> conflicting_keys;  // repeated with a different value; the last won
};

// Decodes a request dictionary and checks what its command requires, with rtpengine's error texts
// where it has one ("No call-id in message"...): offer needs sdp, call-id and from-tag; answer
// also to-tag; delete and query need call-id. The error's `what` is meant for the reply's
// `error-reason`. `body` must outlive the command.
Result<NgCommand> parse_ng_body(std::string_view body);
Result<NgCommand> parse_ng_command(const bencode::Value& dict);

// A one-line summary of unknown_flags, unknown_keys, invalid_keys and conflicting_keys for the
// reply's `warning` ("" when all are empty). At most kNgMaxWarning bytes; bytes outside visible
// ASCII are replaced by '?', since the names come from the client.
std::string ng_warning(const NgCommand& command);

// Statistics in the shape of rtpengine's `query` reply (and of the extra keys of a `delete`
// reply). The relay fills them; encode_ng_reply writes them. Absent optionals are left out.
struct NgPacketCounts {
  uint64_t packets = 0;
  uint64_t bytes = 0;
  uint64_t errors = 0;
};
struct NgEndpoint {
  NgFamily family = NgFamily::kIp4;  // written as "IPv4" / "IPv6"
  std::string_view address;
  uint16_t port = 0;
};
// pinhole's own keys in a stream's query entry (written as its `relay` dictionary; rtpengine has
// no such keys and its clients ignore unknown ones): the relay's side of latching and forwarding,
// which the no-clipping and RTP Bleed checks read. RTP only.
struct NgRelayStats {
  std::optional<uint16_t> first_seq;            // first sequence number received from the endpoint
  std::optional<uint16_t> first_forwarded_seq;  // first of those sent on to the other side
  std::optional<uint16_t> last_forwarded_seq;
  uint64_t forwarded = 0;            // packets sent on (to the latched peer or the SDP address)
  uint64_t forwarded_unlatched = 0;  // of those, sent before the other side latched (SDP address)
  uint64_t dropped_foreign = 0;      // refused by latching: a source other than the latched one
  uint64_t dropped_no_peer = 0;      // the other side had nowhere to send yet
  uint64_t dropped_malformed = 0;    // not RTP/RTCP
  uint64_t send_errors = 0;          // forwarded, but the kernel refused the send (no route...)
};
struct NgStreamStats {
  std::optional<uint16_t> local_port;
  std::optional<NgEndpoint> endpoint;             // where packets are sent (latched)
  std::optional<NgEndpoint> advertised_endpoint;  // what the SDP said
  std::optional<int64_t> last_packet;             // UNIX time
  std::vector<std::string_view> flags;            // "RTP", "RTCP", "confirmed", ...
  NgPacketCounts stats;
  std::optional<NgRelayStats> relay;
};
struct NgMediaStats {
  int64_t index = 0;  // 1-based
  std::string_view type;
  std::string_view protocol;
  std::vector<std::string_view> flags;
  std::vector<NgStreamStats> streams;
};
struct NgTagStats {
  std::string_view tag;
  int64_t created = 0;
  std::string_view label;             // left out when empty
  std::string_view in_dialogue_with;  // left out when empty
  std::vector<NgMediaStats> medias;
};
struct NgCallStats {
  int64_t created = 0;
  int64_t last_signal = 0;
  std::vector<NgTagStats> tags;
  NgPacketCounts rtp_totals;
  NgPacketCounts rtcp_totals;
};

enum class NgResult : uint8_t { kOk, kPong, kError, kLoadLimit };

// What to answer. Fields that do not apply to `result` are ignored: an error reply carries only
// `result` and `error-reason`, as the protocol asks; a load-limit reply `result` and `message`.
struct NgReply {
  NgResult result = NgResult::kOk;
  std::string_view error_reason;                            // kError
  std::string_view message;                                 // kLoadLimit, optional
  std::string_view warning;                                 // kOk/kPong, left out when empty
  std::string_view sdp;                                     // offer/answer: the rewritten SDP, left out when empty
  const NgCallStats* stats = nullptr;                       // query/delete, optional
  const std::vector<std::string_view>* call_ids = nullptr;  // list: written as `calls`
};

// Appends `<cookie> <bencoded reply>` to `out`.
void encode_ng_reply(std::string& out, std::string_view cookie, const NgReply& reply);
std::string encode_ng_reply(std::string_view cookie, const NgReply& reply);

// Writes the query-reply keys (created, last signal, tags, totals) into the dictionary `w` has
// open; for callers that compose their own reply.
void write_ng_call_stats(bencode::Writer& w, const NgCallStats& stats);

}  // namespace pinhole::media
