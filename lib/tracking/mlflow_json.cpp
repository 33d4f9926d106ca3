#include "lib/tracking/mlflow_json.hpp"

#include <chrono>
#include <cmath>

#include "lib/util/hash.hpp"
#include "lib/util/time.hpp"

namespace amlrun::tracking {

using nlohmann::json;
using store::RunState;

std::string experiment_id_of(const std::string& experiment) {
  return util::sha256_hex(experiment).substr(0, 16);
}

std::int64_t epoch_ms(const std::string& iso) {
  if (iso.empty()) return 0;
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             util::parse_utc_iso8601(iso).time_since_epoch())
      .count();
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             util::Clock::now().time_since_epoch())
      .count();
}

json json_double(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
  return value;
}

std::string mlflow_status(RunState state) {
  switch (state) {
    case RunState::queued:
    case RunState::preparing:
    case RunState::starting:
      return "SCHEDULED";
    case RunState::running:
    case RunState::finalizing:
      return "RUNNING";
    case RunState::completed:
      return "FINISHED";
    case RunState::failed:
      return "FAILED";
    case RunState::canceled:
      return "KILLED";
  }
  return "RUNNING";
}

json experiment_json(const std::string& name) {
  return {{"experiment_id", experiment_id_of(name)},
          {"name", name},
          {"artifact_location", "mlflow-artifacts:/"},
          {"lifecycle_stage", "active"},
          {"tags", json::array()}};
}

}  // namespace amlrun::tracking
