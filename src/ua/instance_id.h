// The RFC 5626 +sip.instance of this UA: a UUID URN that must stay the same across restarts (the
// registrar replaces the old binding of the same instance instead of keeping both), so it is kept
// in a small file.
//
// Threads: start-up code; call from one thread.
#pragma once

#include <string>

#include "common/result.h"

namespace pinhole::ua {

// $XDG_STATE_HOME/pinhole-ua/instance-id, else ~/.local/state/pinhole-ua/instance-id, else
// "pinhole-ua-instance-id" in the working directory (no HOME).
std::string default_instance_file();

// Reads the "urn:uuid:..." stored in `path`; when the file is missing or does not hold one,
// creates a new random one and writes it (creating the directories). Errors (status 500) when
// the file cannot be written: the caller may go on with a fresh id for this run only.
Result<std::string> load_or_create_instance_id(const std::string& path);

}  // namespace pinhole::ua
