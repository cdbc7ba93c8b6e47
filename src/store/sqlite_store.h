// The "sqlite://" store, the default: bindings, users and keepalive endpoints in one SQLite file,
// so that one node's registrations and NAT keepalives survive a restart or a crash.
//
// The file: WAL journal, synchronous=NORMAL (a committed batch survives the process being killed;
// a power cut may lose the last batches), busy_timeout so that a second connection waits rather
// than fails. Tables bindings (PRIMARY KEY (aor, binding_id); the flow as columns, the Path values
// in one BLOB column in the record_codec.h list format), users (PRIMARY KEY (username, realm)) and
// keepalives (PRIMARY KEY (node, flow_key); the record in record_codec.h's keepalive format, the
// latest reason expiry as a column for operators' queries). The schema version is PRAGMA
// user_version (kSqliteSchemaVersion); a file of a newer version is refused rather than guessed at.
// Version 2 added the keepalives table: a version 1 file is migrated at open by creating it.
//
// Connections: the writer thread owns one (batches, each one BEGIN IMMEDIATE ... COMMIT with
// prepared statements); the reads, the user operations and the async lookups share a second one
// under a mutex.
#pragma once

#include <memory>
#include <string>

#include "common/result.h"
#include "store/store.h"

namespace pinhole::store {

inline constexpr int kSqliteSchemaVersion = 2;
// How long a statement waits for another connection's (or process's) write lock.
inline constexpr int kSqliteBusyTimeoutMs = 5000;

// Opens or creates `path` (creating missing parent directories) and the schema. Errors (status 500)
// name the file and say what failed. Start-up only (blocks on file I/O). Threads: see Store.
Result<std::unique_ptr<Store>> open_sqlite_store(const std::string& path, const StoreOptions& options);

}  // namespace pinhole::store
