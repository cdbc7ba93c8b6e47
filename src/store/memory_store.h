// The "memory:" store: bindings and users in maps under a mutex, gone when the process exits. For
// tests and single-process runs that need no persistence, and the behaviour reference the SQLite
// and Redis stores are tested against (tests/unit/store/store_contract_test.cc).
#pragma once

#include <memory>

#include "store/store.h"

namespace pinhole::store {

// Writes apply at once (flush() has nothing to wait for); each counts as one write in one batch.
// Threads: see Store.
std::unique_ptr<Store> make_memory_store();

}  // namespace pinhole::store
