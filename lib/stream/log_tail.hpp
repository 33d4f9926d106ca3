#pragma once
// One log file of a run read as it grows, a complete line at a time: the
// environment build's log (logs/system/env_build.txt) while the run is
// Preparing. Opened below the run's directories without following links,
// like the rank logs (the job could plant one once it runs).
#include <filesystem>
#include <string>
#include <vector>

#include "lib/util/fs.hpp"

namespace amlrun::stream {

class LogTail {
 public:
  // `relative_dir` below each root ("artifacts/logs/system"), the file's name.
  LogTail(std::vector<std::filesystem::path> roots, std::string relative_dir, std::string name);
  // The lines completed since the last call (without '\n'); none while the
  // file is not there.
  std::vector<std::string> new_lines();

 private:
  std::vector<std::filesystem::path> m_roots;
  std::string m_relative_dir;
  std::string m_name;
  util::UniqueFd m_fd;
  std::string m_partial;
};

// The one-line status drawn on a terminal while the environment is built:
// "amlrun: ID building the environment (12s): <last step>", cut to `width`.
std::string preparing_status(const std::string& run_id, double seconds,
                             const std::string& last_line, std::size_t width);

}  // namespace amlrun::stream
