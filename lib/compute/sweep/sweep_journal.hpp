#pragma once
// The sweep controller's decisions, each appended (one write, fsynced)
// before it is acted on, in the sweep's run directory (sweep_journal.jsonl):
//   {"op": "seed", "seed": 42}
//   {"op": "trial", "k": 3, "id": "<sweep>_3", "params": {"lr": 0.01}, "point": [...]}
//   {"op": "stop", "id": "<sweep>_3", "reason": "bandit: ..."}
//   {"op": "end", "reason": "timeout: ..."}
// A controller that is killed and started again reads it and goes on:
// a trial in the journal is never proposed again (its run is created if the
// crash came first, else followed), so none runs twice, none is lost, and
// the count stays within max_total_trials. A last line cut short by the
// crash is dropped; a damaged line elsewhere stops the sweep (it cannot
// know what it decided).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "lib/sweep/search_space.hpp"
#include "lib/util/fs.hpp"

namespace amlrun::compute {

struct JournaledTrial {
  std::uint64_t k = 0;
  std::string id;
  sweep::Assignment params;
  std::vector<double> point;  // unit-cube coordinates (bayesian); empty otherwise
};

struct JournaledStop {
  std::string id;
  std::string reason;
};

struct SweepJournalContents {
  std::optional<std::uint64_t> seed;
  std::vector<JournaledTrial> trials;  // in the order started (k = 0, 1, ...)
  std::vector<JournaledStop> stops;
  std::optional<std::string> end_reason;
};

// Reads the journal (none yet: empty contents). util::InfraError naming
// the file and line for a damaged entry.
SweepJournalContents read_sweep_journal(const std::filesystem::path& file);

class SweepJournal {
 public:
  // Opens for appending; a last line without its newline (a write cut short
  // by a crash) is cut off first. Only the controller, holding the sweep's
  // owner lock, writes.
  explicit SweepJournal(const std::filesystem::path& file);

  void seed(std::uint64_t seed);
  void trial(const JournaledTrial& trial);
  void stop(const JournaledStop& stop);
  void end(const std::string& reason);

 private:
  void append(const std::string& line);
  std::filesystem::path m_file;
  util::UniqueFd m_fd;
};

}  // namespace amlrun::compute
