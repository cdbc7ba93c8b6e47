// The Redis store (see redis_store.h).
#include "store/redis_store.h"

#include <hiredis/hiredis.h>
#include <pthread.h>
#include <sys/time.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <ctime>
#include <initializer_list>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "store/batch_writer.h"
#include "store/lookup_thread.h"
#include "store/record_codec.h"

namespace pinhole::store {
namespace {

constexpr Error kUnreachable{503, "redis unreachable"};
constexpr Error kRefused{500, "redis refused the command"};
constexpr Error kBadReply{500, "unexpected redis reply"};

constexpr std::string_view kAorPrefix = "pinhole:aor:";
constexpr std::string_view kUserPrefix = "pinhole:user:";
constexpr std::string_view kKeepalivePrefix = "pinhole:keepalive:";
constexpr std::string_view kKeepaliveSetPrefix = "pinhole:keepalives:";
constexpr size_t kReadChunk = 512;  // HGETALLs per pipeline in the loads
constexpr std::chrono::milliseconds kShutdownGrace{2000};

// Scripts. KEYS[1] the AOR hash, KEYS[2] the AOR set; ARGV[1] the AOR, ARGV[2] the binding id,
// ARGV[3] the value. `retime` gives the hash the TTL of its latest binding: record_codec.h puts
// expires_at first, as "1;<len>:<digits>" (the next field follows without a separator). Values it cannot read (a newer
// format) leave the TTL as that writer set it. A time past 1e11 (year 5138, or a clamp of garbage) keeps the hash
// forever rather than hand EXPIREAT a number Lua would print in exponent form.
std::string retime_function() {
  return "local function retime(key)\n"
         "  local latest = nil\n"
         "  for _, v in ipairs(redis.call('HVALS', key)) do\n"
         "    local n, at = string.match(v, '^1;(%d+):()')\n"
         "    local e = n and tonumber(string.sub(v, at, at + tonumber(n) - 1))\n"
         "    if e ~= nil and (latest == nil or e > latest) then latest = e end\n"
         "  end\n"
         "  if latest == nil then return end\n"
         "  local at = latest + " +
         std::to_string(kRedisTtlGrace.count()) +
         "\n"
         "  if at >= 1e11 then redis.call('PERSIST', key) return end\n"
         "  if at < 1 then at = 1 end\n"
         "  redis.call('EXPIREAT', key, string.format('%d', at))\n"
         "end\n";
}

// An EXPIREAT in the past deletes the hash: the set must then lose the AOR too.
constexpr std::string_view kForgetIfGone =
    "if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SREM', KEYS[2], ARGV[1]) end\n"
    "return 1\n";

std::string save_script() {
  return retime_function() +
         "redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])\n"
         "redis.call('SADD', KEYS[2], ARGV[1])\n"
         "retime(KEYS[1])\n" +
         std::string(kForgetIfGone);
}

std::string remove_script() {
  return retime_function() +
         "redis.call('HDEL', KEYS[1], ARGV[2])\n"
         "if redis.call('EXISTS', KEYS[1]) == 1 then retime(KEYS[1]) end\n" +
         std::string(kForgetIfGone);
}

constexpr std::string_view kRemoveAorScript =
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('SREM', KEYS[2], ARGV[1])\n"
    "return 1\n";

// Keepalive endpoints. KEYS[1] the endpoint's key, KEYS[2] its node's set; ARGV[1] the flow key
// (the set member), ARGV[2] the value, ARGV[3] the EXPIREAT time ("" keeps the key forever). SET
// clears any earlier TTL, so a later save with a shorter expiry shortens it.
std::string save_keepalive_script() {
  return "redis.call('SET', KEYS[1], ARGV[2])\n"
         "redis.call('SADD', KEYS[2], ARGV[1])\n"
         "if ARGV[3] ~= '' then redis.call('EXPIREAT', KEYS[1], ARGV[3]) end\n" +
         std::string(kForgetIfGone);
}

constexpr std::string_view kRemoveKeepaliveScript =
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('SREM', KEYS[2], ARGV[1])\n"
    "return 1\n";

// The EXPIREAT argument of a keepalive save: its latest reason + the grace, as the binding hashes
// get. From 1e11 on (year 5138: garbage) "" (forever), as the binding script does; at least 1.
std::string keepalive_expire_at(const KeepaliveRecord& k) {
  int64_t latest = keepalive_latest_expiry(k);
  constexpr int64_t kForever = 100'000'000'000;
  if (latest >= kForever - kRedisTtlGrace.count()) return {};
  return std::to_string(std::max<int64_t>(1, latest + kRedisTtlGrace.count()));
}

// ':' and '%' in a key part written %3A and %25, so that the parts that follow stay unambiguous.
void append_escaped(std::string& key, std::string_view part) {
  for (char c : part) {
    if (c == ':')
      key += "%3A";
    else if (c == '%')
      key += "%25";
    else
      key += c;
  }
}

struct ContextFree {
  void operator()(redisContext* c) const { redisFree(c); }
};
struct ReplyFree {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Context = std::unique_ptr<redisContext, ContextFree>;
using Reply = std::unique_ptr<redisReply, ReplyFree>;

// Blocks SIGPIPE on this thread while alive; a SIGPIPE raised meanwhile (hiredis writing to a
// socket Redis closed) is taken off the thread's pending set before the old mask comes back.
class SigpipeGuard {
 public:
  SigpipeGuard() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    sigset_t pending;
    sigemptyset(&pending);
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  ~SigpipeGuard() {
    if (!was_pending_) {
      sigset_t pending;
      sigemptyset(&pending);
      sigpending(&pending);
      if (sigismember(&pending, SIGPIPE) == 1) {
        timespec zero{};
        while (sigtimedwait(&pipe_, nullptr, &zero) == -1 && errno == EINTR) {
        }
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeGuard(const SigpipeGuard&) = delete;
  SigpipeGuard& operator=(const SigpipeGuard&) = delete;

 private:
  sigset_t pipe_{};
  sigset_t old_{};
  bool was_pending_ = false;
};

timeval to_timeval(std::chrono::milliseconds d) {
  return timeval{static_cast<time_t>(d.count() / 1000), static_cast<suseconds_t>((d.count() % 1000) * 1000)};
}

// Queues one command in the context's output buffer (hiredis copies the arguments).
bool append(redisContext* c, std::span<const std::string_view> args) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (std::string_view a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  return redisAppendCommandArgv(c, static_cast<int>(argv.size()), argv.data(), lengths.data()) == REDIS_OK;
}

bool append(redisContext* c, std::initializer_list<std::string_view> args) {
  return append(c, std::span<const std::string_view>(args.begin(), args.size()));
}

// Sends what is buffered and reads one reply; null when the connection failed (the context is
// then unusable).
Reply get_reply(redisContext* c) {
  void* raw = nullptr;
  if (redisGetReply(c, &raw) != REDIS_OK) return nullptr;
  return Reply(static_cast<redisReply*>(raw));
}

Reply command(redisContext* c, std::initializer_list<std::string_view> args) {
  if (!append(c, args)) return nullptr;
  return get_reply(c);
}

std::string_view text(const redisReply* r) { return {r->str, r->len}; }

bool is_error(const Reply& r) { return r && r->type == REDIS_REPLY_ERROR; }

// Connects with the I/O timeout and selects the database; null when any of it fails.
Context connect(const RedisTarget& target) {
  SigpipeGuard guard;
  Context c(redisConnectWithTimeout(target.host.c_str(), target.port, to_timeval(kRedisIoTimeout)));
  if (!c || c->err != 0) return nullptr;
  if (redisSetTimeout(c.get(), to_timeval(kRedisIoTimeout)) != REDIS_OK) return nullptr;
  if (target.db != 0) {
    std::string db = std::to_string(target.db);
    Reply r = command(c.get(), {"SELECT", db});
    if (!r || r->type != REDIS_REPLY_STATUS) return nullptr;
  }
  return c;
}

// The writer thread's side: its connection, the scripts loaded on it, the backoff and the
// connection counters (atomics: stats() reads them from any thread).
class RedisSink final : public BatchSink {
 public:
  RedisSink(RedisTarget target, const StoreOptions& options)
      : target_(std::move(target)),
        backoff_min_(std::max(options.reconnect_min, std::chrono::milliseconds(1))),
        backoff_max_(std::max(options.reconnect_max, backoff_min_)),
        backoff_(backoff_min_) {}

  BatchResult write(std::span<const WriteOp> ops) override {
    if (!ensure_connected()) return BatchResult{0, true, next_delay()};
    SigpipeGuard guard;
    std::string key;
    std::string value;
    for (const WriteOp& op : ops) {
      const BindingRecord& b = op.binding;
      key = redis_aor_key(b.aor);
      bool appended = false;
      switch (op.kind) {
        case WriteOp::Kind::kSave:
          value = encode_binding_value(b);
          appended = append(ctx_.get(), {"EVALSHA", sha_save_, "2", key, kRedisAorsKey, b.aor, b.binding_id, value});
          break;
        case WriteOp::Kind::kRemove:
          appended = append(ctx_.get(), {"EVALSHA", sha_remove_, "2", key, kRedisAorsKey, b.aor, b.binding_id});
          break;
        case WriteOp::Kind::kRemoveAor:
          appended = append(ctx_.get(), {"EVALSHA", sha_remove_aor_, "2", key, kRedisAorsKey, b.aor});
          break;
        case WriteOp::Kind::kSaveKeepalive: {
          const KeepaliveRecord& k = op.keepalive;
          key = redis_keepalive_key(k.node, k.flow);
          value = encode_keepalive_value(k);
          std::string set = redis_keepalive_set_key(k.node);
          std::string flow_key = keepalive_flow_key(k.flow);
          std::string at = keepalive_expire_at(k);
          appended = append(ctx_.get(), {"EVALSHA", sha_save_keepalive_, "2", key, set, flow_key, value, at});
          break;
        }
        case WriteOp::Kind::kRemoveKeepalive: {
          const KeepaliveRecord& k = op.keepalive;
          key = redis_keepalive_key(k.node, k.flow);
          std::string set = redis_keepalive_set_key(k.node);
          std::string flow_key = keepalive_flow_key(k.flow);
          appended = append(ctx_.get(), {"EVALSHA", sha_remove_keepalive_, "2", key, set, flow_key});
          break;
        }
      }
      if (!appended) return lost();
    }
    size_t failed = 0;
    for (size_t i = 0; i < ops.size(); ++i) {
      Reply r = get_reply(ctx_.get());
      if (!r) return lost();
      if (r->type == REDIS_REPLY_ERROR) {
        // Someone ran SCRIPT FLUSH (or a failover lost the scripts): reconnecting loads them again.
        if (text(r.get()).starts_with("NOSCRIPT")) return lost();
        ++failed;
      }
    }
    return BatchResult{failed, false, {}};
  }

  std::optional<std::chrono::milliseconds> idle() override {
    if (!ctx_) return ensure_connected() ? kRedisPingInterval : next_delay();
    SigpipeGuard guard;
    Reply r = command(ctx_.get(), {"PING"});
    if (!r || r->type == REDIS_REPLY_ERROR) return lost().retry_after;
    return kRedisPingInterval;
  }

  bool connected() const { return connected_.load(std::memory_order_relaxed); }
  uint64_t reconnects() const { return reconnects_.load(std::memory_order_relaxed); }
  uint64_t connection_failures() const { return failures_.load(std::memory_order_relaxed); }

 private:
  bool ensure_connected() {
    if (ctx_) return true;
    Context c = connect(target_);
    if (c && !(load_script(c.get(), save_script(), sha_save_) && load_script(c.get(), remove_script(), sha_remove_) &&
               load_script(c.get(), std::string(kRemoveAorScript), sha_remove_aor_) &&
               load_script(c.get(), save_keepalive_script(), sha_save_keepalive_) &&
               load_script(c.get(), std::string(kRemoveKeepaliveScript), sha_remove_keepalive_)))
      c.reset();
    if (!c) {
      failures_.fetch_add(1, std::memory_order_relaxed);
      connected_.store(false, std::memory_order_relaxed);
      had_failure_ = true;
      return false;
    }
    ctx_ = std::move(c);
    if (had_failure_) reconnects_.fetch_add(1, std::memory_order_relaxed);
    had_failure_ = false;
    backoff_ = backoff_min_;
    connected_.store(true, std::memory_order_relaxed);
    return true;
  }

  static bool load_script(redisContext* c, const std::string& script, std::string& sha) {
    SigpipeGuard guard;
    Reply r = command(c, {"SCRIPT", "LOAD", script});
    if (!r || r->type != REDIS_REPLY_STRING) return false;
    sha = std::string(text(r.get()));
    return true;
  }

  // The connection broke mid-use: count it, drop it, and have the batch offered again.
  BatchResult lost() {
    ctx_.reset();
    failures_.fetch_add(1, std::memory_order_relaxed);
    connected_.store(false, std::memory_order_relaxed);
    had_failure_ = true;
    return BatchResult{0, true, next_delay()};
  }

  std::chrono::milliseconds next_delay() {
    std::chrono::milliseconds d = backoff_;
    backoff_ = std::min(backoff_ * 2, backoff_max_);
    return d;
  }

  const RedisTarget target_;
  const std::chrono::milliseconds backoff_min_;
  const std::chrono::milliseconds backoff_max_;
  std::chrono::milliseconds backoff_;
  Context ctx_;
  std::string sha_save_;
  std::string sha_remove_;
  std::string sha_remove_aor_;
  std::string sha_save_keepalive_;
  std::string sha_remove_keepalive_;
  bool had_failure_ = false;
  std::atomic<bool> connected_{false};
  std::atomic<uint64_t> reconnects_{0};
  std::atomic<uint64_t> failures_{0};
};

// The read connection: every command of a call goes as one pipeline under the mutex. A connection
// that fails on an established link (Redis restarted since) is replaced once and the pipeline
// sent again; reads are repeatable.
class RedisReader {
 public:
  using Command = std::vector<std::string>;

  explicit RedisReader(RedisTarget target) : target_(std::move(target)) {}

  // One reply per command, error replies included (the caller judges them); Error 503 when Redis
  // cannot be reached.
  Result<std::vector<Reply>> run(const std::vector<Command>& commands) {
    std::lock_guard lock(mutex_);
    for (int attempt = 0; attempt < 2; ++attempt) {
      bool fresh = false;
      if (!ctx_) {
        ctx_ = connect(target_);
        if (!ctx_) return kUnreachable;
        fresh = true;
      }
      std::optional<std::vector<Reply>> replies = send(commands);
      if (replies) return std::move(*replies);
      ctx_.reset();
      if (fresh) break;
    }
    return kUnreachable;
  }

 private:
  std::optional<std::vector<Reply>> send(const std::vector<Command>& commands) {
    SigpipeGuard guard;
    std::vector<std::string_view> args;
    for (const Command& c : commands) {
      args.assign(c.begin(), c.end());
      if (!append(ctx_.get(), std::span<const std::string_view>(args))) return std::nullopt;
    }
    std::vector<Reply> replies;
    replies.reserve(commands.size());
    for (size_t i = 0; i < commands.size(); ++i) {
      Reply r = get_reply(ctx_.get());
      if (!r) return std::nullopt;
      replies.push_back(std::move(r));
    }
    return replies;
  }

  const RedisTarget target_;
  std::mutex mutex_;
  Context ctx_;
};

class RedisStore final : public Store {
 public:
  RedisStore(const RedisTarget& target, const StoreOptions& options)
      : sink_(target, options),
        writer_(sink_, options.max_batch, options.batch_window),
        reader_(target),
        lookups_([this](std::string_view aor) { return load_aor(aor); }) {
    writer_.start();
  }

  ~RedisStore() override {
    writer_.shutdown(kShutdownGrace);
    lookups_.shutdown();
  }
  RedisStore(const RedisStore&) = delete;
  RedisStore& operator=(const RedisStore&) = delete;

  Result<std::vector<BindingRecord>> load_bindings() override {
    Result<std::vector<Reply>> members = reader_.run({{"SMEMBERS", std::string(kRedisAorsKey)}});
    if (!members) return members.error();
    const Reply& set = members->front();
    if (is_error(set)) return kRefused;
    if (set->type != REDIS_REPLY_ARRAY) return kBadReply;
    std::vector<std::string> aors;
    for (size_t i = 0; i < set->elements; ++i)
      if (set->element[i]->type == REDIS_REPLY_STRING) aors.emplace_back(text(set->element[i]));

    std::vector<BindingRecord> out;
    std::vector<std::string> gone;  // in the set, but their hash expired
    for (size_t start = 0; start < aors.size(); start += kReadChunk) {
      size_t end = std::min(aors.size(), start + kReadChunk);
      std::vector<RedisReader::Command> commands;
      for (size_t i = start; i < end; ++i) commands.push_back({"HGETALL", redis_aor_key(aors[i])});
      Result<std::vector<Reply>> hashes = reader_.run(commands);
      if (!hashes) return hashes.error();
      for (size_t i = start; i < end; ++i) {
        const Reply& h = (*hashes)[i - start];
        PINHOLE_TRY(decode_hash(aors[i], h, out));
        if (h->elements == 0) gone.push_back(aors[i]);
      }
    }
    prune(gone);
    sort_bindings(out);
    return out;
  }

  Result<std::vector<BindingRecord>> load_aor(std::string_view aor) override {
    Result<std::vector<Reply>> replies = reader_.run({{"HGETALL", redis_aor_key(aor)}});
    if (!replies) return replies.error();
    std::vector<BindingRecord> out;
    PINHOLE_TRY(decode_hash(aor, replies->front(), out));
    sort_bindings(out);
    return out;
  }

  void load_aor_async(std::string aor, std::function<void(Result<std::vector<BindingRecord>>)> done) override {
    lookups_.post(std::move(aor), std::move(done));
  }

  void save_binding(const BindingRecord& b) override { writer_.push(WriteOp::save(b)); }
  void remove_binding(std::string_view aor, std::string_view binding_id) override {
    writer_.push(WriteOp::remove(aor, binding_id));
  }
  void remove_aor(std::string_view aor) override { writer_.push(WriteOp::remove_aor(aor)); }

  void save_keepalive(const KeepaliveRecord& k) override {
    if (k.reasons.empty())
      writer_.push(WriteOp::remove_keepalive(k.node, k.flow));
    else
      writer_.push(WriteOp::save_keepalive(k));
  }
  void remove_keepalive(std::string_view node, const net::Flow& flow) override {
    writer_.push(WriteOp::remove_keepalive(node, flow));
  }

  Result<std::vector<KeepaliveRecord>> load_keepalives(std::string_view node) override {
    std::string set_key = redis_keepalive_set_key(node);
    Result<std::vector<Reply>> members = reader_.run({{"SMEMBERS", set_key}});
    if (!members) return members.error();
    const Reply& set = members->front();
    if (is_error(set)) return kRefused;
    if (set->type != REDIS_REPLY_ARRAY) return kBadReply;
    std::vector<std::string> flow_keys;
    for (size_t i = 0; i < set->elements; ++i)
      if (set->element[i]->type == REDIS_REPLY_STRING) flow_keys.emplace_back(text(set->element[i]));

    std::string prefix = keepalive_key_prefix(node);
    std::vector<KeepaliveRecord> out;
    std::vector<std::string> gone;  // in the set, but their key expired
    for (size_t start = 0; start < flow_keys.size(); start += kReadChunk) {
      size_t end = std::min(flow_keys.size(), start + kReadChunk);
      std::vector<RedisReader::Command> commands;
      for (size_t i = start; i < end; ++i) commands.push_back({"GET", prefix + flow_keys[i]});
      Result<std::vector<Reply>> values = reader_.run(commands);
      if (!values) return values.error();
      for (size_t i = start; i < end; ++i) {
        const Reply& v = (*values)[i - start];
        // An error reply here is about that one key (WRONGTYPE: something else wrote it): skip it
        // like an undecodable value rather than lose every other endpoint.
        if (v->type == REDIS_REPLY_NIL) {
          gone.push_back(flow_keys[i]);
          continue;
        }
        Result<KeepaliveRecord> k = v->type == REDIS_REPLY_STRING ? decode_keepalive_value(node, text(v.get()))
                                                                  : Result<KeepaliveRecord>(kBadReply);
        if (k)
          out.push_back(std::move(k).value());
        else
          decode_errors_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    if (!gone.empty()) {
      // Best effort, as for the AORs: only if the key is still gone when the script runs.
      std::string script = std::string(kForgetIfGone);
      std::vector<RedisReader::Command> commands;
      commands.reserve(gone.size());
      for (const std::string& flow_key : gone)
        commands.push_back({"EVAL", script, "2", prefix + flow_key, set_key, flow_key});
      (void)reader_.run(commands);
    }
    sort_keepalives(out);
    return out;
  }

  Status put_user(const UserRecord& u) override {
    PINHOLE_TRY(validate_user(u));
    Result<std::vector<Reply>> replies =
        reader_.run({{"HSET", redis_user_key(u.realm, u.username), "username", u.username, "realm", u.realm, "ha1_md5",
                      u.ha1_md5, "ha1_sha256", u.ha1_sha256}});
    if (!replies) return replies.error();
    if (is_error(replies->front())) return kRefused;
    return Status::Ok();
  }

  Result<bool> delete_user(std::string_view username, std::string_view realm) override {
    Result<std::vector<Reply>> replies = reader_.run({{"DEL", redis_user_key(realm, username)}});
    if (!replies) return replies.error();
    const Reply& r = replies->front();
    if (is_error(r)) return kRefused;
    if (r->type != REDIS_REPLY_INTEGER) return kBadReply;
    return r->integer > 0;
  }

  Result<std::vector<UserRecord>> list_users() override {
    std::vector<std::string> keys;
    std::string cursor = "0";
    std::string pattern = std::string(kUserPrefix) + "*";
    do {
      Result<std::vector<Reply>> replies = reader_.run({{"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"}});
      if (!replies) return replies.error();
      const Reply& r = replies->front();
      if (is_error(r)) return kRefused;
      if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
          r->element[1]->type != REDIS_REPLY_ARRAY)
        return kBadReply;
      cursor = std::string(text(r->element[0]));
      const redisReply* batch = r->element[1];
      for (size_t i = 0; i < batch->elements; ++i)
        if (batch->element[i]->type == REDIS_REPLY_STRING) keys.emplace_back(text(batch->element[i]));
    } while (cursor != "0");
    // SCAN may return a key twice (rehashing).
    std::sort(keys.begin(), keys.end());
    keys.erase(std::unique(keys.begin(), keys.end()), keys.end());

    std::vector<UserRecord> out;
    for (size_t start = 0; start < keys.size(); start += kReadChunk) {
      size_t end = std::min(keys.size(), start + kReadChunk);
      std::vector<RedisReader::Command> commands;
      for (size_t i = start; i < end; ++i) commands.push_back({"HGETALL", keys[i]});
      Result<std::vector<Reply>> hashes = reader_.run(commands);
      if (!hashes) return hashes.error();
      for (const Reply& h : *hashes) {
        if (is_error(h)) return kRefused;
        if (h->type != REDIS_REPLY_ARRAY) return kBadReply;
        if (h->elements == 0) continue;  // deleted since the SCAN
        std::optional<UserRecord> u = decode_user(h.get());
        if (u)
          out.push_back(std::move(*u));
        else
          decode_errors_.fetch_add(1, std::memory_order_relaxed);
      }
    }
    sort_users(out);
    return out;
  }

  void flush() override { writer_.flush(); }

  StoreStats stats() const override {
    StoreStats s = writer_.stats();
    s.reconnects = sink_.reconnects();
    s.connection_failures = sink_.connection_failures();
    s.connected = sink_.connected();
    s.decode_errors = decode_errors_.load(std::memory_order_relaxed);
    return s;
  }

  std::string_view kind() const override { return "redis"; }

 private:
  // Appends the bindings of one HGETALL reply; undecodable values are skipped and counted.
  Status decode_hash(std::string_view aor, const Reply& h, std::vector<BindingRecord>& out) {
    if (is_error(h)) return kRefused;
    if (h->type != REDIS_REPLY_ARRAY || h->elements % 2 != 0) return kBadReply;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
      const redisReply* field = h->element[i];
      const redisReply* value = h->element[i + 1];
      Result<BindingRecord> b = field->type == REDIS_REPLY_STRING && value->type == REDIS_REPLY_STRING
                                    ? decode_binding_value(aor, text(field), text(value))
                                    : Result<BindingRecord>(kBadReply);
      if (b)
        out.push_back(std::move(b).value());
      else
        decode_errors_.fetch_add(1, std::memory_order_relaxed);
    }
    return Status::Ok();
  }

  static std::optional<UserRecord> decode_user(const redisReply* h) {
    UserRecord u;
    bool has_username = false;
    bool has_realm = false;
    for (size_t i = 0; i + 1 < h->elements; i += 2) {
      const redisReply* field = h->element[i];
      const redisReply* value = h->element[i + 1];
      if (field->type != REDIS_REPLY_STRING || value->type != REDIS_REPLY_STRING) return std::nullopt;
      std::string_view name = text(field);
      std::string v(text(value));
      if (name == "username") {
        u.username = std::move(v);
        has_username = true;
      } else if (name == "realm") {
        u.realm = std::move(v);
        has_realm = true;
      } else if (name == "ha1_md5") {
        u.ha1_md5 = std::move(v);
      } else if (name == "ha1_sha256") {
        u.ha1_sha256 = std::move(v);
      }
    }
    if (!has_username || !has_realm) return std::nullopt;
    return u;
  }

  // Takes AORs whose hash expired out of the set (only if the hash is still gone when the script
  // runs: a writer may have saved a binding since). Best effort: the next load tries again.
  void prune(const std::vector<std::string>& aors) {
    if (aors.empty()) return;
    std::string script = std::string(kForgetIfGone);
    std::vector<RedisReader::Command> commands;
    commands.reserve(aors.size());
    for (const std::string& aor : aors)
      commands.push_back({"EVAL", script, "2", redis_aor_key(aor), std::string(kRedisAorsKey), aor});
    (void)reader_.run(commands);
  }

  RedisSink sink_;
  BatchWriter writer_;
  RedisReader reader_;
  std::atomic<uint64_t> decode_errors_{0};
  // Last: its thread reads through reader_, so it must start after and stop before it.
  LookupThread lookups_;
};

}  // namespace

std::string redis_aor_key(std::string_view aor) {
  std::string key(kAorPrefix);
  key += aor;
  return key;
}

std::string redis_user_key(std::string_view realm, std::string_view username) {
  std::string key(kUserPrefix);
  append_escaped(key, realm);
  key += ':';
  key += username;
  return key;
}

std::string keepalive_key_prefix(std::string_view node) {
  std::string key(kKeepalivePrefix);
  append_escaped(key, node);
  key += ':';
  return key;
}

std::string redis_keepalive_key(std::string_view node, const net::Flow& flow) {
  return keepalive_key_prefix(node) + keepalive_flow_key(flow);
}

std::string redis_keepalive_set_key(std::string_view node) {
  std::string key(kKeepaliveSetPrefix);
  append_escaped(key, node);
  return key;
}

Result<std::unique_ptr<Store>> open_redis_store(const RedisTarget& target, const StoreOptions& options) {
  return std::unique_ptr<Store>(std::make_unique<RedisStore>(target, options));
}

}  // namespace pinhole::store
