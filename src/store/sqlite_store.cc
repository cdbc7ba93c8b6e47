// The SQLite store (see sqlite_store.h).
#include "store/sqlite_store.h"

#include <sqlite3.h>

#include <atomic>
#include <bit>
#include <cstdint>
#include <filesystem>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "common/startup_error.h"
#include "net/address.h"
#include "net/transport.h"
#include "store/batch_writer.h"
#include "store/lookup_thread.h"
#include "store/record_codec.h"

namespace pinhole::store {
namespace {

constexpr Error kReadFailed{500, "sqlite read failed"};
constexpr Error kUserWriteFailed{500, "sqlite user write failed"};

struct DbCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
struct StmtFinalizer {
  void operator()(sqlite3_stmt* s) const { sqlite3_finalize(s); }
};
using Db = std::unique_ptr<sqlite3, DbCloser>;
using Stmt = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

constexpr const char* kCreateSchema = R"sql(
CREATE TABLE IF NOT EXISTS bindings (
  aor TEXT NOT NULL,
  binding_id TEXT NOT NULL,
  contact TEXT NOT NULL,
  instance TEXT NOT NULL,
  reg_id INTEGER NOT NULL,
  call_id TEXT NOT NULL,
  cseq INTEGER NOT NULL,
  q_milli INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  registered_at INTEGER NOT NULL,
  transport TEXT NOT NULL,
  local_socket_id INTEGER NOT NULL,
  remote_address TEXT NOT NULL,
  remote_port INTEGER NOT NULL,
  connection_id INTEGER NOT NULL,
  path BLOB NOT NULL,
  user_agent TEXT NOT NULL,
  nat TEXT NOT NULL,
  node TEXT NOT NULL,
  PRIMARY KEY (aor, binding_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS users (
  username TEXT NOT NULL,
  realm TEXT NOT NULL,
  ha1_md5 TEXT NOT NULL,
  ha1_sha256 TEXT NOT NULL,
  PRIMARY KEY (username, realm)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS keepalives (
  node TEXT NOT NULL,
  flow_key TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  value BLOB NOT NULL,
  PRIMARY KEY (node, flow_key)
) WITHOUT ROWID;
)sql";

#define PINHOLE_BINDING_COLUMNS                                                                                \
  "aor, binding_id, contact, instance, reg_id, call_id, cseq, q_milli, expires_at, registered_at, transport, " \
  "local_socket_id, remote_address, remote_port, connection_id, path, user_agent, nat, node"

constexpr const char* kUpsertBinding = "INSERT OR REPLACE INTO bindings (" PINHOLE_BINDING_COLUMNS
                                       ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, "
                                       "?16, ?17, ?18, ?19)";
constexpr const char* kDeleteBinding = "DELETE FROM bindings WHERE aor = ?1 AND binding_id = ?2";
constexpr const char* kDeleteAor = "DELETE FROM bindings WHERE aor = ?1";
constexpr const char* kSelectAll = "SELECT " PINHOLE_BINDING_COLUMNS " FROM bindings ORDER BY aor, binding_id";
constexpr const char* kSelectAor =
    "SELECT " PINHOLE_BINDING_COLUMNS " FROM bindings WHERE aor = ?1 ORDER BY binding_id";
constexpr const char* kPutUser =
    "INSERT OR REPLACE INTO users (username, realm, ha1_md5, ha1_sha256) VALUES (?1, ?2, ?3, ?4)";
constexpr const char* kDeleteUser = "DELETE FROM users WHERE username = ?1 AND realm = ?2";
constexpr const char* kUpsertKeepalive =
    "INSERT OR REPLACE INTO keepalives (node, flow_key, expires_at, value) VALUES (?1, ?2, ?3, ?4)";
constexpr const char* kDeleteKeepalive = "DELETE FROM keepalives WHERE node = ?1 AND flow_key = ?2";
constexpr const char* kSelectKeepalives = "SELECT value FROM keepalives WHERE node = ?1 ORDER BY flow_key";
constexpr const char* kListUsers = "SELECT username, realm, ha1_md5, ha1_sha256 FROM users ORDER BY username, realm";

#undef PINHOLE_BINDING_COLUMNS

Error db_error(const std::string& path, std::string_view what, sqlite3* db) {
  std::string text = "sqlite store " + path + ": " + std::string(what);
  if (db != nullptr) text += ": " + std::string(sqlite3_errmsg(db));
  return startup_error(500, std::move(text));
}

// Runs SQL without results (pragmas that set, DDL, BEGIN/COMMIT).
bool exec(sqlite3* db, const char* sql) { return sqlite3_exec(db, sql, nullptr, nullptr, nullptr) == SQLITE_OK; }

// The single-value result of a pragma, as text.
std::optional<std::string> pragma_text(sqlite3* db, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &raw, nullptr) != SQLITE_OK) return std::nullopt;
  Stmt stmt(raw);
  if (sqlite3_step(stmt.get()) != SQLITE_ROW) return std::nullopt;
  const unsigned char* text = sqlite3_column_text(stmt.get(), 0);
  return text == nullptr ? std::string() : std::string(reinterpret_cast<const char*>(text));
}

Result<Db> open_connection(const std::string& path) {
  sqlite3* raw = nullptr;
  int rc =
      sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  Db db(raw);  // closes even a handle that failed to open
  if (rc != SQLITE_OK) return db_error(path, "cannot open or create the database", db.get());
  sqlite3_extended_result_codes(db.get(), 1);
  sqlite3_busy_timeout(db.get(), kSqliteBusyTimeoutMs);
  // The first statement that reads the file: a file that is not a database fails here.
  std::optional<std::string> mode = pragma_text(db.get(), "PRAGMA journal_mode=WAL");
  if (!mode) return db_error(path, "cannot read the database", db.get());
  if (*mode != "wal")
    return db_error(path, "cannot switch to WAL journal mode (journal_mode is " + *mode + ")", nullptr);
  if (!exec(db.get(), "PRAGMA synchronous=NORMAL")) return db_error(path, "cannot set synchronous=NORMAL", db.get());
  return db;
}

Result<Stmt> prepare(sqlite3* db, const std::string& path, const char* sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr) != SQLITE_OK)
    return db_error(path, "cannot prepare a statement", db);
  return Stmt(raw);
}

// Creates the tables on a new file and checks the version of an old one, in one transaction so
// that two processes opening a new file at once do not both create.
Status ensure_schema(sqlite3* db, const std::string& path) {
  if (!exec(db, "BEGIN IMMEDIATE")) return db_error(path, "cannot lock the database", db);
  std::optional<std::string> version_text = pragma_text(db, "PRAGMA user_version");
  int version = version_text ? std::atoi(version_text->c_str()) : -1;
  Status status;
  if (version < 0) {
    status = db_error(path, "cannot read the schema version", db);
  } else if (version > kSqliteSchemaVersion) {
    status = db_error(path,
                      "schema version " + std::to_string(version) + " was written by a newer pinhole (this one knows " +
                          std::to_string(kSqliteSchemaVersion) + ")",
                      nullptr);
  } else if (version < kSqliteSchemaVersion) {
    // A new file (0), or a version 1 file that lacks the keepalives table: every statement of the
    // schema is CREATE ... IF NOT EXISTS, so running it all adds what is missing and keeps the rest.
    std::string set_version = "PRAGMA user_version = " + std::to_string(kSqliteSchemaVersion);
    if (!exec(db, kCreateSchema) || !exec(db, set_version.c_str()))
      status = db_error(path, "cannot create the tables", db);
  }
  if (!status.ok()) {
    exec(db, "ROLLBACK");
    return status;
  }
  if (!exec(db, "COMMIT")) {
    Error error = db_error(path, "cannot commit the schema", db);
    exec(db, "ROLLBACK");
    return error;
  }
  return Status::Ok();
}

// Binds a string without copying: the caller keeps it alive until the statement is reset.
void bind_text(sqlite3_stmt* s, int index, std::string_view text) {
  sqlite3_bind_text(s, index, text.data(), static_cast<int>(text.size()), SQLITE_STATIC);
}

std::string column_text(sqlite3_stmt* s, int index) {
  // sqlite3_column_bytes after sqlite3_column_text: the length of the text form.
  const unsigned char* text = sqlite3_column_text(s, index);
  int size = sqlite3_column_bytes(s, index);
  if (text == nullptr || size <= 0) return {};
  return {reinterpret_cast<const char*>(text), static_cast<size_t>(size)};
}

std::string_view column_blob(sqlite3_stmt* s, int index) {
  const void* blob = sqlite3_column_blob(s, index);
  int size = sqlite3_column_bytes(s, index);
  if (blob == nullptr || size <= 0) return {};
  return {static_cast<const char*>(blob), static_cast<size_t>(size)};
}

template <typename T>
bool column_int(sqlite3_stmt* s, int index, T& out) {
  if (sqlite3_column_type(s, index) != SQLITE_INTEGER) return false;
  int64_t v = sqlite3_column_int64(s, index);
  if constexpr (std::is_same_v<T, uint64_t>) {
    out = std::bit_cast<uint64_t>(v);  // stored as the same 64 bits (SQLite integers are signed)
    return true;
  } else {
    if (!std::in_range<T>(v)) return false;
    out = static_cast<T>(v);
    return true;
  }
}

// The row of kSelectAll/kSelectAor; nullopt when it cannot be read back.
std::optional<BindingRecord> row_to_binding(sqlite3_stmt* s) {
  BindingRecord b;
  b.aor = column_text(s, 0);
  b.binding_id = column_text(s, 1);
  b.contact = column_text(s, 2);
  b.instance = column_text(s, 3);
  b.call_id = column_text(s, 5);
  b.user_agent = column_text(s, 16);
  b.nat = column_text(s, 17);
  b.node = column_text(s, 18);
  bool ok = column_int(s, 4, b.reg_id) && column_int(s, 6, b.cseq) && column_int(s, 7, b.q_milli) &&
            column_int(s, 8, b.expires_at) && column_int(s, 9, b.registered_at) &&
            column_int(s, 11, b.flow.local_socket_id) && column_int(s, 13, b.flow.remote.port) &&
            column_int(s, 14, b.flow.connection_id);
  if (!ok) return std::nullopt;
  std::optional<net::Transport> transport = net::parse_transport(column_text(s, 10));
  Result<net::Address> address = net::Address::parse(column_text(s, 12));
  Result<std::vector<std::string>> path = decode_string_list(column_blob(s, 15));
  if (!transport || !address || !path) return std::nullopt;
  b.flow.transport = *transport;
  b.flow.remote.address = *address;
  b.path = std::move(path).value();
  return b;
}

class SqliteStore;

// The writer thread's side: the writer connection and its statements.
class SqliteSink final : public BatchSink {
 public:
  SqliteSink(Db db, Stmt upsert, Stmt remove, Stmt remove_aor, Stmt upsert_keepalive, Stmt remove_keepalive)
      : db_(std::move(db)),
        upsert_(std::move(upsert)),
        remove_(std::move(remove)),
        remove_aor_(std::move(remove_aor)),
        upsert_keepalive_(std::move(upsert_keepalive)),
        remove_keepalive_(std::move(remove_keepalive)) {}

  BatchResult write(std::span<const WriteOp> ops) override {
    // A batch the database refuses as a whole (disk full, locked past busy_timeout) is lost and
    // counted: unlike a Redis outage, waiting would not make it likely to succeed.
    if (!exec(db_.get(), "BEGIN IMMEDIATE")) return BatchResult{ops.size(), false, {}};
    size_t failed = 0;
    for (const WriteOp& op : ops)
      if (!apply(op)) ++failed;
    if (!exec(db_.get(), "COMMIT")) {
      exec(db_.get(), "ROLLBACK");
      return BatchResult{ops.size(), false, {}};
    }
    return BatchResult{failed, false, {}};
  }

 private:
  bool apply(const WriteOp& op) {
    const BindingRecord& b = op.binding;
    sqlite3_stmt* s = nullptr;
    std::string path;  // bound without a copy: lives until the reset below
    switch (op.kind) {
      case WriteOp::Kind::kSave: {
        s = upsert_.get();
        path = encode_string_list(b.path);
        bind_text(s, 1, b.aor);
        bind_text(s, 2, b.binding_id);
        bind_text(s, 3, b.contact);
        bind_text(s, 4, b.instance);
        sqlite3_bind_int64(s, 5, b.reg_id);
        bind_text(s, 6, b.call_id);
        sqlite3_bind_int64(s, 7, b.cseq);
        sqlite3_bind_int64(s, 8, b.q_milli);
        sqlite3_bind_int64(s, 9, b.expires_at);
        sqlite3_bind_int64(s, 10, b.registered_at);
        bind_text(s, 11, net::transport_name(b.flow.transport));
        sqlite3_bind_int64(s, 12, b.flow.local_socket_id);
        net::AddressText address = b.flow.remote.address.format();
        bind_text(s, 13, address.view());
        sqlite3_bind_int64(s, 14, b.flow.remote.port);
        sqlite3_bind_int64(s, 15, std::bit_cast<int64_t>(b.flow.connection_id));
        sqlite3_bind_blob(s, 16, path.data(), static_cast<int>(path.size()), SQLITE_STATIC);
        bind_text(s, 17, b.user_agent);
        bind_text(s, 18, b.nat);
        bind_text(s, 19, b.node);
        return step_and_reset(s);  // before `address` goes out of scope
      }
      case WriteOp::Kind::kRemove:
        s = remove_.get();
        bind_text(s, 1, b.aor);
        bind_text(s, 2, b.binding_id);
        return step_and_reset(s);
      case WriteOp::Kind::kRemoveAor:
        s = remove_aor_.get();
        bind_text(s, 1, b.aor);
        return step_and_reset(s);
      case WriteOp::Kind::kSaveKeepalive: {
        const KeepaliveRecord& k = op.keepalive;
        s = upsert_keepalive_.get();
        std::string key = keepalive_flow_key(k.flow);
        std::string value = encode_keepalive_value(k);
        bind_text(s, 1, k.node);
        bind_text(s, 2, key);
        sqlite3_bind_int64(s, 3, keepalive_latest_expiry(k));
        sqlite3_bind_blob(s, 4, value.data(), static_cast<int>(value.size()), SQLITE_STATIC);
        return step_and_reset(s);  // before `key` and `value` go out of scope
      }
      case WriteOp::Kind::kRemoveKeepalive: {
        s = remove_keepalive_.get();
        std::string key = keepalive_flow_key(op.keepalive.flow);
        bind_text(s, 1, op.keepalive.node);
        bind_text(s, 2, key);
        return step_and_reset(s);
      }
    }
    return false;
  }

  static bool step_and_reset(sqlite3_stmt* s) {
    bool ok = sqlite3_step(s) == SQLITE_DONE;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    return ok;
  }

  // Statements before the connection in destruction order: declared after it.
  Db db_;
  Stmt upsert_;
  Stmt remove_;
  Stmt remove_aor_;
  Stmt upsert_keepalive_;
  Stmt remove_keepalive_;
};

// The reader connection and its statements; every member is called under SqliteStore::read_mutex_.
struct ReadSide {
  Db db;
  Stmt select_all;
  Stmt select_aor;
  Stmt select_keepalives;
  Stmt put_user;
  Stmt delete_user;
  Stmt list_users;
};

class SqliteStore final : public Store {
 public:
  SqliteStore(std::unique_ptr<SqliteSink> sink, ReadSide read, const StoreOptions& options)
      : sink_(std::move(sink)),
        writer_(*sink_, options.max_batch, options.batch_window),
        read_(std::move(read)),
        lookups_([this](std::string_view aor) { return load_aor(aor); }) {
    writer_.start();
  }

  ~SqliteStore() override {
    writer_.shutdown(kShutdownGrace);
    lookups_.shutdown();
  }
  SqliteStore(const SqliteStore&) = delete;
  SqliteStore& operator=(const SqliteStore&) = delete;

  Result<std::vector<BindingRecord>> load_bindings() override {
    std::lock_guard lock(read_mutex_);
    return read_bindings(read_.select_all.get());
  }

  Result<std::vector<BindingRecord>> load_aor(std::string_view aor) override {
    std::lock_guard lock(read_mutex_);
    sqlite3_stmt* s = read_.select_aor.get();
    bind_text(s, 1, aor);
    return read_bindings(s);
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
    std::lock_guard lock(read_mutex_);
    sqlite3_stmt* s = read_.select_keepalives.get();
    bind_text(s, 1, node);
    std::vector<KeepaliveRecord> out;
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      Result<KeepaliveRecord> k = decode_keepalive_value(node, column_blob(s, 0));
      if (k)
        out.push_back(std::move(k).value());
      else
        decode_errors_.fetch_add(1, std::memory_order_relaxed);
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_DONE) return kReadFailed;
    return out;  // ORDER BY flow_key: SQLite compares TEXT bytewise (BINARY), the promised order
  }

  Status put_user(const UserRecord& u) override {
    PINHOLE_TRY(validate_user(u));
    std::lock_guard lock(read_mutex_);
    sqlite3_stmt* s = read_.put_user.get();
    bind_text(s, 1, u.username);
    bind_text(s, 2, u.realm);
    bind_text(s, 3, u.ha1_md5);
    bind_text(s, 4, u.ha1_sha256);
    bool ok = sqlite3_step(s) == SQLITE_DONE;
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (!ok) return kUserWriteFailed;
    return Status::Ok();
  }

  Result<bool> delete_user(std::string_view username, std::string_view realm) override {
    std::lock_guard lock(read_mutex_);
    sqlite3_stmt* s = read_.delete_user.get();
    bind_text(s, 1, username);
    bind_text(s, 2, realm);
    bool ok = sqlite3_step(s) == SQLITE_DONE;
    int changes = sqlite3_changes(read_.db.get());
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (!ok) return kUserWriteFailed;
    return changes > 0;
  }

  Result<std::vector<UserRecord>> list_users() override {
    std::lock_guard lock(read_mutex_);
    sqlite3_stmt* s = read_.list_users.get();
    std::vector<UserRecord> out;
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW)
      out.push_back(UserRecord{column_text(s, 0), column_text(s, 1), column_text(s, 2), column_text(s, 3)});
    sqlite3_reset(s);
    if (rc != SQLITE_DONE) return kReadFailed;
    return out;
  }

  void flush() override { writer_.flush(); }

  StoreStats stats() const override {
    StoreStats s = writer_.stats();
    s.decode_errors = decode_errors_.load(std::memory_order_relaxed);
    return s;
  }

  std::string_view kind() const override { return "sqlite"; }

 private:
  static constexpr std::chrono::milliseconds kShutdownGrace{2000};

  // Steps a bound select to the end; the caller holds read_mutex_.
  Result<std::vector<BindingRecord>> read_bindings(sqlite3_stmt* s) {
    std::vector<BindingRecord> out;
    int rc = SQLITE_ROW;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
      std::optional<BindingRecord> b = row_to_binding(s);
      if (b)
        out.push_back(std::move(*b));
      else
        decode_errors_.fetch_add(1, std::memory_order_relaxed);
    }
    sqlite3_reset(s);
    sqlite3_clear_bindings(s);
    if (rc != SQLITE_DONE) return kReadFailed;
    return out;
  }

  std::unique_ptr<SqliteSink> sink_;
  BatchWriter writer_;
  std::mutex read_mutex_;
  ReadSide read_;
  std::atomic<uint64_t> decode_errors_{0};
  // Last: its thread reads through read_, so it must start after and stop before it.
  LookupThread lookups_;
};

}  // namespace

Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path, const StoreOptions& options) {
  std::filesystem::path parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec)
      return startup_error(
          500, "sqlite store " + path + ": cannot create directory " + parent.string() + ": " + ec.message());
  }
  Result<Db> writer_db = open_connection(path);
  if (!writer_db) return writer_db.error();
  PINHOLE_TRY(ensure_schema(writer_db->get(), path));
  Result<Stmt> upsert = prepare(writer_db->get(), path, kUpsertBinding);
  Result<Stmt> remove = prepare(writer_db->get(), path, kDeleteBinding);
  Result<Stmt> remove_aor = prepare(writer_db->get(), path, kDeleteAor);
  Result<Stmt> upsert_keepalive = prepare(writer_db->get(), path, kUpsertKeepalive);
  Result<Stmt> remove_keepalive = prepare(writer_db->get(), path, kDeleteKeepalive);
  for (const Result<Stmt>* r : {&upsert, &remove, &remove_aor, &upsert_keepalive, &remove_keepalive})
    if (!r->ok()) return r->error();

  Result<Db> reader_db = open_connection(path);
  if (!reader_db) return reader_db.error();
  ReadSide read;
  Result<Stmt> select_all = prepare(reader_db->get(), path, kSelectAll);
  Result<Stmt> select_aor = prepare(reader_db->get(), path, kSelectAor);
  Result<Stmt> select_keepalives = prepare(reader_db->get(), path, kSelectKeepalives);
  Result<Stmt> put_user = prepare(reader_db->get(), path, kPutUser);
  Result<Stmt> delete_user = prepare(reader_db->get(), path, kDeleteUser);
  Result<Stmt> list_users = prepare(reader_db->get(), path, kListUsers);
  for (const Result<Stmt>* r : {&select_all, &select_aor, &select_keepalives, &put_user, &delete_user, &list_users})
    if (!r->ok()) return r->error();
  read.db = std::move(reader_db).value();
  read.select_all = std::move(select_all).value();
  read.select_aor = std::move(select_aor).value();
  read.select_keepalives = std::move(select_keepalives).value();
  read.put_user = std::move(put_user).value();
  read.delete_user = std::move(delete_user).value();
  read.list_users = std::move(list_users).value();

  auto sink = std::make_unique<SqliteSink>(std::move(writer_db).value(), std::move(upsert).value(),
                                           std::move(remove).value(), std::move(remove_aor).value(),
                                           std::move(upsert_keepalive).value(), std::move(remove_keepalive).value());
  return std::unique_ptr<Store>(std::make_unique<SqliteStore>(std::move(sink), std::move(read), options));
}

}  // namespace pinhole::store
