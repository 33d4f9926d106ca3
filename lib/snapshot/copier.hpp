#pragma once
// Internal to lib/snapshot: copying the files a walk found changed into the
// store, hashing them on the way (one read of each).
#include <atomic>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <vector>

#include "lib/snapshot/object_store.hpp"
#include "lib/snapshot/walker.hpp"

namespace amlrun::snapshot::detail {

// Threads for the walk and the copy: `requested`, or one per core, at most 4.
unsigned worker_count(unsigned requested);

// Copies each of `work` (files below root_fd, named by source_dir in
// messages) into the store on up to `threads` threads, setting its sha256
// and stat to what was read; adds the bytes read to hashed_bytes. Rethrows
// the error of the earliest failing file in work order.
// `tick`, when set, is called on the calling thread after each file it
// copies and once at the end (true), with the files and bytes done so far.
using CopyTick = std::function<void(std::uint64_t files, std::uint64_t bytes, bool end)>;
void copy_all(const std::filesystem::path& source_dir, int root_fd, const Store& store,
              std::vector<Found*>& work, unsigned threads, std::atomic<std::uint64_t>& hashed_bytes,
              const CopyTick& tick = {});

}  // namespace amlrun::snapshot::detail
