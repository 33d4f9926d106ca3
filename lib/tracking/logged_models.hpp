#pragma once
// MLflow 3's logged models (mlflow.<flavor>.log_model, last_logged_model,
// get_logged_model, search_logged_models) for the tracking endpoint.
//
// A model belongs to the run it was logged from: its files are that run's
// artifacts below outputs/models/<model id>/ (its artifact_uri points
// there, so the client uploads them through the ordinary mlflow-artifacts
// routes and their path rules: nothing lands outside the run's outputs).
// Its id and name go into the run record (`amlrun show`); its status, tags
// and params are kept here, for as long as the run's endpoint serves.
//
// Not thread-safe: the tracking service's lock guards it.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace amlrun::tracking {

// How many models one run's endpoint keeps (each is a few hundred bytes);
// past it, creating one is answered with an error.
inline constexpr std::size_t k_max_logged_models = 10000;

struct LoggedModel {
  std::string id;  // "m-" and 32 hex digits, as MLflow makes them
  std::string experiment_id;
  std::string name;
  std::string source_run_id;
  std::string model_type;
  std::string status = "LOGGED_MODEL_PENDING";
  std::string status_message;
  std::int64_t created_ms = 0;
  std::int64_t updated_ms = 0;
  std::map<std::string, std::string> tags;
  std::map<std::string, std::string> params;
};

// Where a model's files go, below its run's outputs: "models/<id>".
std::string logged_model_relative(const std::string& model_id);
// The artifact_uri the client is given for it.
std::string logged_model_artifact_uri(const std::string& run_id, const std::string& model_id);
// LoggedModel as the REST API answers it ({"info": ..., "data": ...}).
nlohmann::json logged_model_json(const LoggedModel& model);

class LoggedModels {
 public:
  // logged-models POST: `experiment_id` and `source_run_id` are resolved
  // and checked by the caller; the rest of `body` is checked here.
  const LoggedModel& create(const nlohmann::json& body, const std::string& experiment_id,
                            const std::string& source_run_id);
  // 404 RESOURCE_DOES_NOT_EXIST for an id this endpoint did not make.
  const LoggedModel& get(const std::string& model_id) const;
  // PATCH logged-models/<id>: {"status": "LOGGED_MODEL_READY" | ...}.
  const LoggedModel& finalize(const std::string& model_id, const nlohmann::json& body);
  void set_tags(const std::string& model_id, const nlohmann::json& body);
  void delete_tag(const std::string& model_id, const std::string& key);
  void log_params(const std::string& model_id, const nlohmann::json& body);
  // logged-models/search: the models of `experiment_ids`, newest first,
  // filtered by "name = '...'", "source_run_id = '...'", "model_type = '...'"
  // and "status = '...'" joined with AND (the filters the client itself
  // sends; anything else is refused, not ignored).
  nlohmann::json search(const nlohmann::json& body) const;

 private:
  LoggedModel& find(const std::string& model_id);
  std::map<std::string, LoggedModel> m_models;
};

}  // namespace amlrun::tracking
