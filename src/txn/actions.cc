#include "txn/actions.h"

namespace pinhole::txn {

std::string_view non_invite_state_name(NonInviteState s) {
  switch (s) {
    case NonInviteState::kTrying:
      return "Trying";
    case NonInviteState::kProceeding:
      return "Proceeding";
    case NonInviteState::kCompleted:
      return "Completed";
    case NonInviteState::kTerminated:
      return "Terminated";
  }
  return "?";
}

}  // namespace pinhole::txn
