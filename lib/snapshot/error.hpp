#pragma once
#include "lib/util/error.hpp"

namespace amlrun::snapshot {

// Something in the user's source tree (or a limit they can raise) stops the
// snapshot: an unreadable file, a file changing while copied, a tree over the
// limits, an unknown snapshot id. Exit code 2; the message names the path and
// says what to do. Failures of the store itself (disk full, I/O errors) are
// util::InfraError instead.
class SnapshotError : public util::InputError {
 public:
  using util::InputError::InputError;
};

}  // namespace amlrun::snapshot
