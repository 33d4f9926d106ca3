#pragma once
// Metrics of runs, as ingested into the index from the ranks' metrics files
// (metric_ingest.hpp): summaries for `amlrun show`, points for
// `amlrun metrics`, and what ingestion had to skip.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/store/run_store.hpp"

namespace amlrun::store {

// Metric names: 1-128 characters from [A-Za-z0-9_.:/-], starting with a
// letter, digit or underscore ("loss", "val/acc", "train.loss_0").
bool is_valid_metric_name(std::string_view name);

struct MetricSummary {
  std::string name;
  std::int64_t count = 0;       // points kept
  std::int64_t non_finite = 0;  // of which NaN or ±Infinity
  std::int64_t last_step = 0;
  double last_value = 0;  // may be NaN or ±Infinity
  // Over the finite values; nullopt when there is none.
  std::optional<double> min;
  std::optional<double> max;
};

struct MetricPoint {
  std::string name;
  int rank = 0;
  std::int64_t step = 0;
  double value = 0;  // may be NaN or ±Infinity
};

// What ingestion skipped (and why) over all ranks of a run. NaN and Infinity
// values are kept and only counted.
struct IngestReport {
  std::int64_t malformed = 0;  // not a JSON object with a name and a numeric value
  std::int64_t bad_name = 0;   // the name breaks is_valid_metric_name
  std::int64_t backwards = 0;  // a step lower than the rank's previous one for that name
  std::int64_t non_finite = 0;
  std::string first_problem;  // "rank_0.jsonl:12: ..." of the first skipped line
  std::int64_t skipped() const { return malformed + bad_name + backwards; }
};

// Summaries of every metric of the run, by name.
std::vector<MetricSummary> metric_summaries(const RunStore& store, const std::string& run_id);

// Points of one metric (or all, when `name` is empty), by name and then in
// the order they were written.
std::vector<MetricPoint> metric_points(const RunStore& store, const std::string& run_id,
                                       const std::string& name = "");

IngestReport ingest_report(const RunStore& store, const std::string& run_id);

// Whether any metrics file of the run was ever ingested.
bool has_ingested_metrics(const RunStore& store, const std::string& run_id);

// Bytes of each metrics file already ingested, by source (metric_source_of_file).
std::map<int, std::int64_t> ingested_offsets(const RunStore& store, const std::string& run_id);

// Every run id that has metric rows (doctor: rows of runs that are gone).
std::vector<std::string> runs_with_metrics(const RunStore& store);

void delete_run_metrics(const RunStore& store, const std::string& run_id);

// "NaN", "Infinity", "-Infinity" or the shortest text that reads back as the
// same double: the metrics protocol's spelling, used by every output.
std::string format_metric_value(double value);

}  // namespace amlrun::store
