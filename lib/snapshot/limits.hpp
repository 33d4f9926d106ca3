#pragma once
// Internal to lib/snapshot: the snapshot limits, checked on the walk's sizes
// before anything is read or stored.
#include <filesystem>
#include <vector>

#include "lib/snapshot/snapshot.hpp"
#include "lib/snapshot/walker.hpp"

namespace amlrun::snapshot::detail {

// Throws SnapshotError when `found` is over a limit, naming the largest
// files (for bytes) and the directories where most of it is. `stopped`: the
// walk gave up past twice a limit, so `found` is only part of the tree and
// the figures say so.
void check_limits(const std::filesystem::path& source_dir, const std::vector<Found>& found,
                  const Limits& limits, bool stopped);

}  // namespace amlrun::snapshot::detail
