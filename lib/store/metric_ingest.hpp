#pragma once
// Metric ingestion: each rank appends one JSON object per line to its own
// logs/metrics/rank_<r>.jsonl (DESIGN.md protocol:
// {"name": "loss", "value": 0.31, "step": 120}); an ingestor reads what was
// appended since its last pass and stores it in the index. The supervisor
// runs a pass while the run goes and a final one at Finalizing.
//
// Nothing a rank writes can fail the run: malformed lines, bad names and
// steps going backwards are skipped and counted (store::IngestReport); NaN
// and ±Infinity ("NaN", "Infinity", "-Infinity") are kept and counted. A
// pass commits its points together with the file offsets they came from, so
// a kill at any moment neither loses nor repeats a point.
#include <climits>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "lib/store/run_store.hpp"

namespace amlrun::store {

// Each metrics file is a source with its own offset in the index: a rank's
// rank_<r>.jsonl is source r, the tracking endpoint's mlflow_rank_<r>.jsonl
// is source k_tracking_source_base + r (its points still count as rank r's).
inline constexpr int k_tracking_source_base = 1000000;
// The source a file of the metrics folder is, or -1 for any other name.
int metric_source_of_file(std::string_view name);
inline int rank_of_source(int source) {
  return source % k_tracking_source_base;
}

struct IngestPass {
  std::int64_t points = 0;   // kept
  std::int64_t skipped = 0;  // malformed, bad names, steps going backwards
};

class MetricIngestor {
 public:
  // `metrics_dir` holds the rank_<r>.jsonl files (it may not exist yet).
  // Resumes where an earlier ingestor of the same run stopped.
  MetricIngestor(const RunStore& store, std::string run_id, std::filesystem::path metrics_dir);
  ~MetricIngestor();
  MetricIngestor(const MetricIngestor&) = delete;
  MetricIngestor& operator=(const MetricIngestor&) = delete;

  // Reads the complete lines appended since the last pass, about
  // `max_bytes` of them at most (the rest waits for the next pass, so a
  // flood of metrics cannot stall the caller). With `final` the ranks have
  // ended: everything is read, and a last line without a newline counts too.
  IngestPass ingest(bool final, std::int64_t max_bytes = k_unlimited);
  static constexpr std::int64_t k_unlimited = INT64_MAX;

  // Lines longer than this are malformed (a runaway writer must not make
  // the supervisor hold gigabytes).
  static constexpr std::size_t k_max_line_bytes = std::size_t{64} * 1024;

 private:
  struct State;
  std::unique_ptr<State> m_state;
};

}  // namespace amlrun::store
