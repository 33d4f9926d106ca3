#pragma once
// MLflow's rules for names and values (mlflow/utils/validation.py), plus
// amlrun's where it stores the thing: metric names follow the metrics
// protocol's rule (store::is_valid_metric_name), tags the tag rule
// (util/tags.hpp). Each check throws TrackingError (400
// INVALID_PARAMETER_VALUE) with a message naming the field and the rule.
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace amlrun::tracking {

inline constexpr std::size_t k_max_key_length = 250;           // MLflow's entity key limit
inline constexpr std::size_t k_max_param_value_length = 6000;  // MLflow's
inline constexpr std::size_t k_max_metrics_per_batch = 1000;   // MLflow's log-batch limits
inline constexpr std::size_t k_max_params_tags_per_batch = 100;
inline constexpr std::size_t k_max_entities_per_batch = 1000;

// MLflow's key rule: [/\w.\- :]*, not empty, and a name that stays itself
// when read as a path ("a/../b", "./a", "/a" and ".." are refused).
void check_key(std::string_view field, std::string_view key);
void check_metric_name(std::string_view field, std::string_view name);
void check_param(std::string_view field, const std::string& key, const std::string& value);
void check_tag(std::string_view field, const std::string& key, const std::string& value);

// A field of a request body: a string, required.
std::string required_string(const nlohmann::json& body, const char* field);
// An int64 field (protobuf's JSON writes int64 as a string: "12" and 12
// are both accepted); `fallback` when absent.
std::int64_t int64_field(const nlohmann::json& body, const char* field, std::int64_t fallback);
// A metric value: a number, or "NaN", "Infinity", "-Infinity" (protobuf's
// JSON for doubles that JSON cannot write).
double metric_value(const nlohmann::json& body, const std::string& field);

// One artifact path below a run's outputs: relative, every component a
// real name (not "", "." or ".."), no NUL or control characters. Returns
// it without a trailing slash; throws TrackingError otherwise.
std::string check_artifact_path(std::string_view path, bool allow_empty);

// The run id of a request: "run_id", or the older "run_uuid".
std::string run_id_field(const nlohmann::json& body);

// One metric of log-metric or log-batch; `field` names it in messages
// ("" for log-metric's top-level fields, "metrics[3]" in a batch).
struct Metric {
  std::string key;
  double value;
  std::int64_t timestamp;
  std::int64_t step;
};
Metric parse_metric(const nlohmann::json& body, const std::string& field);
// log-batch's and runs/create's "params" or "tags" list, each checked by
// MLflow's rules for params (`params`) or tags.
std::vector<std::pair<std::string, std::string>> parse_pairs(const nlohmann::json& body,
                                                             const char* field, bool params);

}  // namespace amlrun::tracking
