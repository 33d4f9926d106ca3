#include "lib/compute/slurm/slurm_state.hpp"

namespace amlrun::compute {

namespace {

// The words run.json has always used.
const char* submission_text(Submission submission) {
  switch (submission) {
    case Submission::none:
      return "";
    case Submission::submitting:
      return "submitting";
    case Submission::submitted:
      return "submitted";
    case Submission::recovered:
      return "recovered by its token";
  }
  return "";
}

Submission submission_from_text(const std::string& text) {
  for (auto submission : {Submission::submitting, Submission::submitted, Submission::recovered}) {
    if (text == submission_text(submission)) return submission;
  }
  return Submission::none;
}

std::string text_of(const nlohmann::json& json, const char* key) {
  return json.contains(key) && json[key].is_string() ? json[key].get<std::string>() : "";
}

}  // namespace

SlurmState slurm_state_from_json(const nlohmann::json& json) {
  SlurmState state;
  if (!json.is_object()) return state;
  state.shared_run_dir = text_of(json, "shared_run_dir");
  state.job_name = text_of(json, "job_name");
  state.comment = text_of(json, "comment");
  if (json.contains("sbatch") && json["sbatch"].is_array()) {
    for (const auto& word : json["sbatch"]) {
      if (word.is_string()) state.sbatch.push_back(word.get<std::string>());
    }
  }
  state.submission = submission_from_text(text_of(json, "submission"));
  state.job_id = text_of(json, "job_id");
  if (json.contains("attempt") && json["attempt"].is_number_integer()) {
    state.attempt = json["attempt"].get<int>();
  }
  if (json.contains("nodes") && json["nodes"].is_array()) {
    for (const auto& node : json["nodes"]) {
      if (node.is_string()) state.nodes.push_back(node.get<std::string>());
    }
  }
  state.slurm_state = text_of(json, "slurm_state");
  state.slurm_reason = text_of(json, "slurm_reason");
  state.status_error = text_of(json, "status_error");
  state.slurm_error = text_of(json, "slurm_error");
  state.metrics_error = text_of(json, "metrics_error");
  state.interrupted_end_seen_at = text_of(json, "interrupted_end_seen_at");
  if (json.contains("result") && json["result"].is_object()) {
    const auto& r = json["result"];
    SlurmResult result;
    result.state =
        store::run_state_from_string(text_of(r, "state")).value_or(store::RunState::failed);
    if (r.contains("exit_code") && r["exit_code"].is_number_integer()) {
      result.exit_code = r["exit_code"].get<int>();
    }
    result.failure_reason = text_of(r, "failure_reason");
    result.infrastructure = r.value("infrastructure", false);
    state.result = result;
  }
  return state;
}

nlohmann::json to_json(const SlurmState& state) {
  nlohmann::json json = nlohmann::json::object();
  auto put = [&](const char* key, const std::string& value) {
    if (!value.empty()) json[key] = value;
  };
  put("shared_run_dir", state.shared_run_dir);
  put("job_name", state.job_name);
  put("comment", state.comment);
  if (!state.sbatch.empty()) json["sbatch"] = state.sbatch;
  put("submission", submission_text(state.submission));
  put("job_id", state.job_id);
  if (!state.job_id.empty()) json["attempt"] = state.attempt;
  if (!state.nodes.empty()) json["nodes"] = state.nodes;
  put("slurm_state", state.slurm_state);
  put("slurm_reason", state.slurm_reason);
  put("status_error", state.status_error);
  put("slurm_error", state.slurm_error);
  put("metrics_error", state.metrics_error);
  put("interrupted_end_seen_at", state.interrupted_end_seen_at);
  if (const auto& result = state.result) {
    json["result"] = {
        {"state", store::to_string(result->state)},
        {"exit_code", result->exit_code ? nlohmann::json(*result->exit_code) : nlohmann::json()},
        {"failure_reason", result->failure_reason},
        {"infrastructure", result->infrastructure}};
  }
  return json;
}

}  // namespace amlrun::compute
