#pragma once
// How metrics read in amlrun's output (show, submit --output json, metrics).
#include <nlohmann/json.hpp>
#include <string>

#include "lib/store/metrics.hpp"

namespace amlrun::cli {

// A metric value in JSON: a number, or the protocol's "NaN", "Infinity",
// "-Infinity" strings (JSON has no spelling for them).
nlohmann::ordered_json metric_value_json(double value);

// {"loss": {"last": .., "last_step": .., "min": .., "max": .., "count": ..,
// "non_finite": ..}, ...}
nlohmann::ordered_json metrics_summary_json(const std::vector<store::MetricSummary>& summaries);

// {"malformed": .., "bad_name": .., "backwards": .., "non_finite": ..,
// "first_problem": ".."}
nlohmann::ordered_json ingest_report_json(const store::IngestReport& report);

// "3 lines (1 malformed, 1 bad name, 1 step going backwards); first: rank_0.jsonl:12: ..."
std::string skipped_text(const store::IngestReport& report);

}  // namespace amlrun::cli
