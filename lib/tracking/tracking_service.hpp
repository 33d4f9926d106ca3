#pragma once
// What the MLflow endpoint does with what a run's processes log, in amlrun's
// terms: metrics are appended to logs/metrics/mlflow_rank_<r>.jsonl (the
// metrics protocol's lines, ingested into the index like the ranks' own
// files), params and tags go into the run record, nested runs become child
// runs of the run, artifacts land below the run's outputs. The record side
// goes through RunRecords: the run store locally, a journal on Slurm. Thread-safe: the
// server's threads call it at once.
//
// Nothing here may slow or fail the run: every write is bounded (one
// append, one record update), and what cannot be stored is answered with
// an error (TrackingError), never waited for.
#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "lib/tracking/artifact_files.hpp"
#include "lib/tracking/logged_models.hpp"
#include "lib/tracking/mlflow_json.hpp"
#include "lib/tracking/run_records.hpp"
#include "lib/util/fs.hpp"
#include "lib/workspace/workspace.hpp"

namespace amlrun::tracking {

namespace fs = std::filesystem;

struct TrackingConfig {
  std::string run_id;      // the run being served (MLFLOW_RUN_ID)
  std::string experiment;  // its experiment
  fs::path run_dir;        // its directory (store::RunTree): logs/metrics is there
  // Where its artifacts go while it runs, below run_dir and reached without
  // following links (the job can plant them): "wd/outputs", sealed later.
  std::string outputs_relative = "wd/outputs";
  int world_size = 1;  // ranks 0 .. world_size - 1 may log
  // Called (outside the service's lock) after metrics of the run were
  // appended: the run's owner ingests them soon.
  std::function<void()> on_metrics;
  // Called with a line for the run's system log (amlrun's azureml shim
  // stepped aside for a real azureml-core); from a server thread.
  std::function<void(const std::string&)> on_notice;
};

class TrackingService {
 public:
  // Writes the record side into the workspace's run store.
  TrackingService(const workspace::Workspace& workspace, TrackingConfig config);
  TrackingService(std::unique_ptr<RunRecords> records, TrackingConfig config);
  ~TrackingService();
  TrackingService(const TrackingService&) = delete;
  TrackingService& operator=(const TrackingService&) = delete;

  // The REST API 2.0 calls: a request body (or the query as an object)
  // in, the response body out; TrackingError for MLflow's error answers.
  nlohmann::json get_experiment(const std::string& experiment_id);
  nlohmann::json get_experiment_by_name(const std::string& name);
  nlohmann::json create_experiment(const nlohmann::json& body);
  nlohmann::json search_experiments(const nlohmann::json& body);
  nlohmann::json create_run(const nlohmann::json& body);
  nlohmann::json get_run(const std::string& run_id);
  nlohmann::json update_run(const nlohmann::json& body);
  nlohmann::json search_runs(const nlohmann::json& body);
  // `rank` is the logging process's rank (from the URI it was given).
  nlohmann::json log_metric(const nlohmann::json& body, int rank);
  nlohmann::json log_param(const nlohmann::json& body);
  nlohmann::json set_tag(const nlohmann::json& body);
  nlohmann::json delete_tag(const nlohmann::json& body);
  nlohmann::json log_batch(const nlohmann::json& body, int rank);

  // MLflow 3's logged models (lib/tracking/logged_models.hpp): a model is
  // made for the run named by source_run_id (the served run when absent),
  // which this endpoint must write, and recorded in its run record.
  nlohmann::json create_logged_model(const nlohmann::json& body);
  // runs/outputs: the run's outputs must be models this endpoint made.
  nlohmann::json log_outputs(const nlohmann::json& body);
  // The other logged-model calls, under the service's lock.
  nlohmann::json with_models(const std::function<nlohmann::json(LoggedModels&)>& call);

  // Artifacts: `path` is "<run id>/outputs/<relative path>" (what the
  // client's mlflow-artifacts:/ URI of the run resolves to). `read_body`
  // streams the upload (as server::Request::read_body).
  void upload_artifact(const std::string& path, const BodyReader& read_body);
  util::UniqueFd open_artifact(const std::string& path);
  nlohmann::json list_artifacts(const std::string& path);

  // Ends child runs the client left open (the run is ending): Failed, saying so.
  void end_open_runs();

  // The artifact URI runs/get reports for a run.
  static std::string artifact_uri(const std::string& run_id);

 private:
  struct State;
  std::unique_ptr<State> m_state;
};

}  // namespace amlrun::tracking
