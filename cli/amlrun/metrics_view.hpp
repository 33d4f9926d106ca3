#pragma once
// How metrics read in amlrun's output (show, submit --output json, metrics).
#include <nlohmann/json.hpp>
#include <string>

#include "lib/store/metrics.hpp"

namespace amlrun::cli {

// A metric value in JSON: a number, or the protocol's "NaN", "Infinity",
// "-Infinity" strings (JSON has no spelling for them).
nlohmann::ordered_json metric_value_json(double value);

// Six significant digits for tables people read ("0.105023"); JSON and CSV
// keep every digit.
std::string short_metric_value(double value);

// {"loss": {"last": .., "last_step": .., "min": .., "max": .., "count": ..,
// "non_finite": ..}, ...}
nlohmann::ordered_json metrics_summary_json(const std::vector<store::MetricSummary>& summaries);

// {"malformed": .., "bad_name": .., "backwards": .., "non_finite": ..,
// "first_problem": ".."}
nlohmann::ordered_json ingest_report_json(const store::IngestReport& report);

// "3 lines (1 malformed, 1 bad name, 1 step going backwards); first: rank_0.jsonl:12: ..."
std::string skipped_text(const store::IngestReport& report);

}  // namespace amlrun::cli
