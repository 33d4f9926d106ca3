#pragma once
// A rank's captured log read in pieces (a large log is never loaded whole):
// from the first of the run's log roots (the target's log_roots(): where it
// is written, then where it is collected) that has it, reached without
// following a link the job planted.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "lib/util/fs.hpp"

namespace amlrun::ui {

// The rank's log file, opened without following links; an invalid
// descriptor when no root has it (yet).
util::UniqueFd open_rank_log(const std::vector<std::filesystem::path>& roots, int rank);

struct LogPiece {
  bool found = false;        // the rank's log exists (yet)
  std::uint64_t size = 0;    // the file's size when read
  std::uint64_t offset = 0;  // where `bytes` start
  std::string bytes;         // up to the asked length, cut after the last whole UTF-8 sequence
};

// Up to `max_bytes` from `offset`. `offset` past the end gives no bytes.
LogPiece read_rank_log(const std::vector<std::filesystem::path>& roots, int rank,
                       std::uint64_t offset, std::size_t max_bytes);

// The offset where the last `max_bytes` of a `size`-byte log start, moved
// forward to a line start when one is near (the page shows whole lines).
std::uint64_t tail_offset(const std::vector<std::filesystem::path>& roots, int rank,
                          std::uint64_t size, std::size_t max_bytes);

}  // namespace amlrun::ui
