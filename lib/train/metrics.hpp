#pragma once
// The metrics protocol of DESIGN.md: one JSON object per line,
// {"name": "train_loss", "value": 0.31, "step": 3}, appended to
// $AMLRUN_METRICS_FILE (set by amlrun for a run), else logs/metrics.jsonl.
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "lib/util/fs.hpp"

namespace amlrun::train {

// One line without the newline. NaN and infinities, which JSON cannot hold,
// are written as the strings "NaN", "Infinity" and "-Infinity".
std::string metric_json_line(std::string_view name, double value, std::int64_t step);

// $AMLRUN_METRICS_FILE when set and not empty, else logs/metrics.jsonl.
std::filesystem::path default_metrics_path();

class MetricsWriter {
 public:
  // Creates the file's folder; opens for appending (a continued run adds to
  // the metrics of the run it continues).
  explicit MetricsWriter(const std::filesystem::path& path);
  // One write() per line, so a reader tailing the file never sees half a line.
  void write(std::string_view name, double value, std::int64_t step);
  const std::filesystem::path& path() const { return m_path; }

 private:
  std::filesystem::path m_path;
  util::UniqueFd m_fd;
};

}  // namespace amlrun::train
