#pragma once
// A run's record: its lifecycle state and everything `amlrun show` reports.
// Stored as runs/<id>/run.json (the truth) and indexed in SQLite.
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace amlrun::store {

// DESIGN.md: Queued → Preparing → Starting → Running → Finalizing →
// Completed | Failed | Canceled.
enum class RunState {
  queued,
  preparing,
  starting,
  running,
  finalizing,
  completed,
  failed,
  canceled
};

std::string to_string(RunState state);  // "Queued", "Running", ...
std::optional<RunState> run_state_from_string(const std::string& text);
bool is_terminal(RunState state);
// Legal transitions; a terminal state is final. Anything may fail or be
// canceled before it is terminal; Running may go back to Starting (a Slurm
// job requeued, waiting to run again).
bool can_transition(RunState from, RunState to);

// A run executes a job; a sweep runs trials (its child runs) and owns no
// process of the job itself.
enum class RunKind { job, sweep };

struct StateChange {
  RunState state;
  std::string at;  // ISO 8601 UTC
};

// How the run's environment was made ready (Preparing), when it was.
struct PreparedEnvironment {
  bool cache_hit = false;
  double seconds = 0;    // building it (0 on a cache hit)
  std::string location;  // the venv's directory or the image's name
  std::string python;    // the venv's python
};

struct RunRecord {
  int format_version = 1;
  std::string id;
  RunKind kind = RunKind::job;
  std::string experiment;
  std::string display_name;
  std::string description;
  std::vector<std::pair<std::string, std::string>> tags;
  // Parameters a job logged (MLflow's log_param): set once, never changed.
  std::vector<std::pair<std::string, std::string>> params;
  // Models the job logged through MLflow (log_model): id -> name, in the
  // order logged; the files are below outputs/models/<id>/.
  std::vector<std::pair<std::string, std::string>> models;
  // Counts changes of tags and params made beside the run's owner
  // (`amlrun runs tag`, the tracking endpoint), so a writer holding an older
  // copy of the record keeps the newer ones (RunStore::save).
  int tags_revision = 0;
  // The run this one is a child of (a nested MLflow run); "" for none.
  std::string parent_id;
  RunState state = RunState::queued;
  std::vector<StateChange> history;
  std::string created_at;
  std::string started_at;  // entered Running
  std::string ended_at;    // entered a terminal state
  std::optional<int> exit_code;
  std::string failure_reason;  // "timeout", "canceled by user", "rank 1 exited with code 3", ...
  // Failed for a reason outside the user's code (preemption, a failed node,
  // a job the cluster lost): `amlrun submit/stream` exit with 3, not 1.
  bool infrastructure_failure = false;
  // What the user should know although the run went on: the job deleted or
  // replaced ./outputs or ./logs, a link it planted was not followed, ...
  std::vector<std::string> warnings;
  std::string compute = "local";
  std::string compute_type = "local";
  std::string snapshot_id;
  std::uint64_t snapshot_files = 0;
  std::uint64_t snapshot_bytes = 0;
  std::string environment_hash;
  std::string environment_mode = "host";
  std::optional<PreparedEnvironment> prepared_environment;
  int instance_count = 1;
  int process_count = 1;
  std::string distribution = "none";
  std::string spec_file;
  std::string submitted_by;
  std::string submit_host;
  std::string amlrun_version;
  // The compute target's own state (supervisor pid, Slurm job id, attempt,
  // ...): stored as it is here; each target reads and writes it as its
  // typed struct (lib/compute/<target>/).
  nlohmann::json target = nlohmann::json::object();
  bool cancel_requested = false;

  double duration_seconds() const;  // created → ended (or now)
};

nlohmann::ordered_json to_json(const RunRecord& record);
// Throws util::InfraError naming what is wrong when the JSON is not a record.
RunRecord run_record_from_json(const nlohmann::json& json);

}  // namespace amlrun::store
