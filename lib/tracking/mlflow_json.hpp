#pragma once
// MLflow's JSON shapes for what amlrun stores: times in epoch
// milliseconds, doubles as protobuf writes them, run states as MLflow's run
// statuses, experiments.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>

#include "lib/store/run_record.hpp"

namespace amlrun::tracking {

// An ISO-8601 UTC time of the run store in epoch milliseconds (0 for "").
std::int64_t epoch_ms(const std::string& iso);
std::int64_t now_ms();
// protobuf's JSON for a double: NaN and the infinities as strings.
nlohmann::json json_double(double value);
// A run state as MLflow's RunStatus.
std::string mlflow_status(store::RunState state);
// An experiment as experiments/get answers it.
nlohmann::json experiment_json(const std::string& name);
// The id MLflow sees for an amlrun experiment (names are amlrun's ids; MLflow
// wants [A-Za-z0-9][\w-]{0,63}): 16 hex digits of its name's sha256.
std::string experiment_id_of(const std::string& experiment);

}  // namespace amlrun::tracking
