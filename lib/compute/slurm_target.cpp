#include "lib/compute/slurm_target.hpp"

#include "lib/store/metric_ingest.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cstdlib>

#include "lib/compute/sbatch_script.hpp"
#include "lib/launch/inputs.hpp"
#include "lib/launch/program.hpp"
#include "lib/launch/supervisor.hpp"
#include "lib/snapshot/snapshot.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/random.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/time.hpp"

namespace amlrun::compute {

namespace fs = std::filesystem;
using store::RunState;

namespace {

// Held while one amlrun updates a Slurm run's record (two followers of one
// run must not both collect it).
constexpr const char* k_refresh_lock_file = "slurm.lock";

bool before(RunState state, RunState other) {
  return static_cast<int>(state) < static_cast<int>(other);
}

// A rename, or a copy and a removal when the workspace and shared_dir are on
// different filesystems.
void move_tree(const fs::path& from, const fs::path& to) {
  std::error_code error;
  fs::rename(from, to, error);
  if (!error) return;
  if (error != std::errc::cross_device_link) {
    throw util::InfraError(
        fmt::format("cannot move {} to {}: {}", from.string(), to.string(), error.message()));
  }
  fs::copy(from, to, fs::copy_options::recursive | fs::copy_options::copy_symlinks, error);
  if (error) {
    throw util::InfraError(
        fmt::format("cannot copy {} to {}: {}", from.string(), to.string(), error.message()));
  }
  fs::remove_all(from, error);
}

void test_exit_point(std::string_view point) {
  const char* wanted = ::getenv(k_test_submit_exit_variable);
  if (wanted && point == wanted) ::_exit(75);
}

fs::path recorded_shared_run_dir(const store::RunRecord& record, const fs::path& fallback) {
  std::string recorded = record.target.value("shared_run_dir", "");
  return recorded.empty() ? fallback : fs::path(recorded);
}

std::uint64_t tree_bytes(const fs::path& path) {
  std::error_code error;
  if (fs::is_regular_file(path, error)) return fs::file_size(path, error);
  std::uint64_t bytes = 0;
  for (auto it = fs::recursive_directory_iterator(path, error); !error && it != fs::end(it);
       it.increment(error)) {
    if (it->is_regular_file(error)) bytes += it->file_size(error);
  }
  return bytes;
}

}  // namespace

SlurmTarget::SlurmTarget(const workspace::Workspace& workspace, SlurmSettings settings,
                         CommandRunner runner)
    : m_workspace(workspace), m_settings(std::move(settings)), m_client(std::move(runner)) {}

fs::path SlurmTarget::shared_run_dir(const std::string& run_id) const {
  return m_settings.shared_dir / "runs" / run_id;
}

std::vector<fs::path> SlurmTarget::log_directories(const store::RunStore& store,
                                                   const store::RunRecord& record) const {
  fs::path shared = recorded_shared_run_dir(record, shared_run_dir(record.id));
  return {shared / "wd" / "logs" / "user_logs", shared / "artifacts" / "logs" / "user_logs",
          store.run_dir(record.id) / "artifacts" / "logs" / "user_logs"};
}

SlurmTargetReport SlurmTarget::report() const {
  SlurmTargetReport report;
  try {
    report.partitions = m_client.partitions();
    report.reachable = true;
  } catch (const util::InfraError& error) {
    report.error = error.what();
  }
  try {
    check_shared_dir();
  } catch (const util::Error& error) {
    report.shared_dir_problem = error.what();
  }
  return report;
}

std::vector<fs::path> SlurmTarget::state_directories(const store::RunStore&,
                                                     const store::RunRecord& record) const {
  return {recorded_shared_run_dir(record, shared_run_dir(record.id))};
}

void SlurmTarget::check_shared_dir() const {
  std::error_code error;
  if (!fs::is_directory(m_settings.shared_dir, error)) {
    throw util::InfraError(fmt::format(
        "shared_dir {} of compute target '{}' does not exist here; create it on a filesystem "
        "that every node of the cluster mounts at the same path (or fix shared_dir in {})",
        m_settings.shared_dir.string(), m_settings.name, m_workspace.config_path().string()));
  }
  if (::access(m_settings.shared_dir.c_str(), W_OK) != 0) {
    throw util::InfraError(
        fmt::format("shared_dir {} of compute target '{}' is not writable by "
                    "this user",
                    m_settings.shared_dir.string(), m_settings.name));
  }
}

int SlurmTarget::gpus_per_node(const spec::JobSpec& spec) const {
  auto use_gpu = spec.environment.use_gpu;
  if (use_gpu && !*use_gpu) return 0;
  if (m_settings.gpus_per_node) return *m_settings.gpus_per_node;
  // An estimator's use_gpu on a target that does not say: a GPU per process.
  return use_gpu ? spec.distribution.process_count_per_instance : 0;
}

// The amlrun binary (and amlrun-worker beside it) copied into shared_dir
// once per build, so the nodes run exactly the submitter's version even
// where amlrun is installed only on the login node.
fs::path SlurmTarget::stage_amlrun() const {
  fs::path self = launch::amlrun_executable();
  if (util::is_within(m_settings.shared_dir, self)) return self;
  struct stat info {};
  if (::stat(self.c_str(), &info) != 0) util::throw_errno("cannot stat " + self.string());
  std::string key = fmt::format("{}-{:x}-{:x}{:09}", AMLRUN_VERSION, info.st_size,
                                info.st_mtim.tv_sec, info.st_mtim.tv_nsec);
  fs::path bin = m_settings.shared_dir / "bin";
  fs::path staged = bin / key;
  if (::access((staged / "amlrun").c_str(), X_OK) == 0) return staged / "amlrun";
  fs::path temporary = bin / (".staging-" + util::random_hex(6));
  fs::create_directories(temporary);
  for (const char* name : {"amlrun", "amlrun-worker"}) {
    fs::path source = std::string(name) == "amlrun" ? self : self.parent_path() / name;
    std::error_code error;
    if (!fs::exists(source, error)) continue;
    fs::create_hard_link(source, temporary / name, error);
    if (error) fs::copy_file(source, temporary / name, error);
    if (error) {
      fs::remove_all(temporary, error);
      throw util::InfraError(fmt::format("cannot copy {} into {}: {}", source.string(),
                                         bin.string(), error.message()));
    }
  }
  std::error_code error;
  fs::rename(temporary, staged, error);
  if (error) fs::remove_all(temporary, error);  // another submitter staged it first
  return staged / "amlrun";
}

std::vector<std::pair<std::string, std::string>> SlurmTarget::prepare_inputs(
    const spec::JobSpec& spec, const fs::path& run_dir) {
  std::vector<std::pair<std::string, std::string>> prepared;
  for (const auto& input : spec.inputs) {
    if (input.kind == spec::InputSpec::Kind::literal) {
      prepared.emplace_back(input.name, input.value);
    } else if (!input.url.empty()) {
      // Downloaded here, once: nodes often have no way out.
      spec::JobSpec one;
      one.inputs = {input};
      auto got = launch::prepare_inputs(one, run_dir, /*private_mounts=*/false,
                                        [this](const std::string& text) { notice(text); });
      prepared.push_back(got.front());
    } else {
      std::error_code error;
      if (!fs::exists(input.path, error)) {
        throw util::InputError(
            fmt::format("input '{}': {} no longer exists", input.name, input.path));
      }
      if (util::is_within(m_settings.shared_dir, input.path)) {
        prepared.emplace_back(input.name, input.path);  // the nodes see it where it is
        continue;
      }
      fs::path source = input.path;
      fs::path target = run_dir / "inputs" / input.name;
      if (input.kind == spec::InputSpec::Kind::file) target /= source.filename();
      fs::create_directories(input.kind == spec::InputSpec::Kind::file ? target.parent_path()
                                                                       : target);
      fs::copy(source, target, fs::copy_options::recursive, error);
      if (error) {
        throw util::InfraError(fmt::format("input '{}': cannot copy {} into {}: {}", input.name,
                                           input.path, run_dir.string(), error.message()));
      }
      notice(
          fmt::format("input '{}': copied {} ({}) into the run directory under shared_dir, "
                      "since the nodes may not see it (inputs under {} are used in place)",
                      input.name, input.path, util::format_bytes(tree_bytes(target)),
                      m_settings.shared_dir.string()));
      prepared.emplace_back(input.name, target.string());
    }
  }
  return prepared;
}

void SlurmTarget::prepare_run_directory(store::RunStore& store, store::RunRecord& record,
                                        const spec::JobSpec& spec, const fs::path& run_dir) {
  fs::create_directories(m_settings.shared_dir / "runs");
  if (::mkdir(run_dir.c_str(), 0755) != 0) util::throw_errno("cannot create " + run_dir.string());
  fs::path working_dir = run_dir / "wd";
  if (!record.snapshot_id.empty()) {
    auto mode = m_workspace.config().materialize == "copy" ? snapshot::MaterializeMode::copy
                                                           : snapshot::MaterializeMode::hardlink;
    snapshot::materialize(m_workspace.snapshots_dir(), record.snapshot_id, working_dir, mode);
  } else {
    fs::create_directories(working_dir);
  }
  fs::path logs = working_dir / "logs";
  for (const fs::path& dir :
       {working_dir / "outputs", logs / "user_logs", logs / "system", logs / "metrics"}) {
    fs::create_directories(dir);
  }
  launch::SlurmLaunchPlan plan;
  for (const auto& output : spec.outputs) {
    fs::path dir = working_dir / "outputs" / output.name;
    fs::create_directories(dir);
    plan.outputs.emplace_back(output.name, dir.string());
  }
  plan.inputs = prepare_inputs(spec, run_dir);
  plan.run_id = record.id;
  plan.experiment = record.experiment;
  plan.workspace_root = store.workspace().root();
  plan.amlrun = stage_amlrun();
  plan.timeout_seconds = spec.timeout_seconds;
  plan.kill_grace_seconds = m_workspace.config().kill_grace_seconds;
  plan.gpus_per_node = gpus_per_node(spec);
  plan.container = m_settings.container;
  plan.shared_dir = m_settings.shared_dir;
  plan.venv = record.environment_mode == "venv" && !m_settings.container;
  plan.venv_python = m_workspace.config().environments.python;
  plan.venv_system_site_packages = m_workspace.config().environments.system_site_packages;
  std::error_code error;
  fs::copy_file(store.run_dir(record.id) / launch::k_slurm_environment_record_file,
                run_dir / launch::k_slurm_environment_record_file, error);
  util::write_file_atomic(run_dir / launch::k_slurm_job_spec_file,
                          spec::to_json(spec).dump(2) + "\n");
  util::write_file_atomic(run_dir / launch::k_slurm_launch_file, launch::to_json_text(plan));
  util::write_file_atomic(run_dir / launch::k_slurm_environment_file,
                          launch::encode_environment_file(spec.environment_variables), 0600);
  util::write_file_atomic(run_dir / launch::k_slurm_script_file, batch_script(plan.amlrun, run_dir),
                          0755);
}

void SlurmTarget::fail_before_submission(store::RunStore& store, store::RunRecord& record,
                                         const std::string& reason) {
  record.failure_reason = reason;
  std::error_code error;
  fs::remove_all(recorded_shared_run_dir(record, shared_run_dir(record.id)), error);
  store.transition(record, RunState::failed);
}

void SlurmTarget::submit(store::RunStore& store, store::RunRecord& record, store::FileLock lock) {
  fs::path run_dir = shared_run_dir(record.id);
  SbatchRequest request;
  try {
    check_shared_dir();
    store.transition(record, RunState::preparing);
    auto spec = spec::job_spec_from_json(
        nlohmann::ordered_json::parse(util::read_file(store.run_dir(record.id) / "job.json")));
    // The target's container, when it has one, is every run's environment;
    // a job's own image needs a runtime the nodes do not have.
    if (m_settings.container) {
      record.environment_mode = "container";
      record.target["container"] = {{"runtime", m_settings.container->runtime},
                                    {"image", m_settings.container->image}};
    } else if (record.environment_mode == "container") {
      throw util::InputError(fmt::format(
          "the job's environment would run in a container (environments.runtime in {}), which "
          "compute target '{}' cannot start on its nodes; give the target a container: "
          "{{runtime: pyxis|apptainer, image: ...}}, or leave out the job's image and build",
          m_workspace.config_path().string(), m_settings.name));
    }
    prepare_run_directory(store, record, spec, run_dir);
    request.job_name = spec.display_name.empty() ? record.experiment : spec.display_name;
    request.comment = slurm_submission_comment(record.id, util::random_hex(8));
    request.nodes = spec.instance_count;
    request.tasks_per_node = spec.distribution.process_count_per_instance;
    request.timeout_seconds = spec.timeout_seconds;
    request.kill_grace_seconds = m_workspace.config().kill_grace_seconds;
    request.gpus_per_node = gpus_per_node(spec);
    request.run_dir = run_dir;
    request.script = run_dir / launch::k_slurm_script_file;
  } catch (const std::exception& error) {
    fail_before_submission(store, record, fmt::format("preparing: {}", error.what()));
    throw;
  }
  auto argv = sbatch_command(request, m_settings);
  // The token is saved before sbatch runs: whatever happens next, the job
  // can be found by it.
  record.target["shared_run_dir"] = run_dir.string();
  record.target["job_name"] = slurm_job_name(request.job_name);
  record.target["comment"] = request.comment;
  record.target["sbatch"] = argv;
  record.target["submission"] = "submitting";
  store.save(record);
  test_exit_point("after-token");

  std::string job_id;
  try {
    job_id = m_client.submit(argv);
  } catch (const SlurmNoAnswer& error) {
    // The job may exist: keep the record as submitting; the next command
    // looks for the token.
    throw SubmissionOutcomeUnknown(
        fmt::format("{}; the job may still have been accepted: 'amlrun show "
                    "{}' finds it by its token once Slurm answers",
                    error.what(), record.id));
  } catch (const std::exception& error) {
    fail_before_submission(store, record, error.what());
    throw;
  }
  test_exit_point("after-sbatch");
  record.target["job_id"] = job_id;
  record.target["submission"] = "submitted";
  store.transition(record, RunState::starting);
  // `amlrun cancel` during sbatch found no job id to give to scancel.
  if (fs::exists(run_dir / launch::k_cancel_request_file)) {
    try {
      m_client.cancel(job_id);
    } catch (const util::Error&) {
      // refresh() sees the cancel request and the job's end.
    }
  }
  (void)lock;  // released here: the record now names the job
}

void SlurmTarget::request_cancel(store::RunStore& store, const store::RunRecord& given) {
  auto lock = store::FileLock::acquire(store.run_dir(given.id) / k_refresh_lock_file);
  auto record = store.load(given.id);
  if (store::is_terminal(record.state)) return;
  fs::path run_dir = recorded_shared_run_dir(record, shared_run_dir(record.id));
  std::error_code error;
  // The driver on the node tells a user's cancel from Slurm's other endings
  // by this file.
  if (fs::is_directory(run_dir, error)) {
    util::write_file_atomic(run_dir / launch::k_cancel_request_file, "canceled by user\n");
  }
  record.cancel_requested = true;
  store.save(record);
  std::string job_id = record.target.value("job_id", "");
  if (!job_id.empty()) m_client.cancel(job_id);
}

void SlurmTarget::recover_submission(store::RunStore& store, store::RunRecord& record) {
  std::string comment = record.target.value("comment", "");
  if (comment.empty()) {
    fail_before_submission(store, record,
                           "the submission was interrupted before it reached Slurm; nothing runs: "
                           "submit the job again");
    return;
  }
  std::vector<SlurmJobInfo> jobs;
  try {
    jobs = m_client.jobs_with_comment(comment);
  } catch (const util::InfraError&) {
    return;  // Slurm cannot be asked now; the next refresh asks again
  }
  std::string job_id = jobs.empty() ? "" : jobs.front().job_id;
  if (job_id.empty()) {
    // It may have run and been forgotten by slurmctld: its status file says.
    try {
      if (auto status = launch::read_slurm_status(recorded_shared_run_dir(record, {}))) {
        job_id = status->job_id;
      }
    } catch (const util::Error&) {
    }
  }
  if (job_id.empty()) {
    fail_before_submission(
        store, record,
        fmt::format("the submission was interrupted before Slurm accepted the job (no Slurm job "
                    "carries its token {}); nothing runs: submit the job again",
                    comment));
    return;
  }
  record.target["job_id"] = job_id;
  record.target["submission"] = "recovered by its token";
  if (before(record.state, RunState::starting)) {
    store.transition(record, RunState::starting);
  } else {
    store.save(record);
  }
  if (record.cancel_requested) {
    try {
      m_client.cancel(job_id);
    } catch (const util::Error&) {
    }
  }
}

store::RunRecord SlurmTarget::refresh(store::RunStore& store, store::RunRecord record) {
  if (store::is_terminal(record.state)) return record;
  auto lock = store::FileLock::acquire(store.run_dir(record.id) / k_refresh_lock_file);
  record = store.load(record.id);
  if (store::is_terminal(record.state)) return record;
  if (record.target.contains("result")) {  // a collection that was interrupted
    finish(store, record);
    return record;
  }
  if (record.target.value("job_id", "").empty()) {
    // The submitter holds the run's lock until the job id is saved.
    if (store::is_locked(store.lock_path(record.id))) return record;
    recover_submission(store, record);
    if (store::is_terminal(record.state) || record.target.value("job_id", "").empty()) {
      return record;
    }
  }
  SlurmObservation seen;
  seen.job_id = record.target.value("job_id", "");
  seen.cancel_requested = record.cancel_requested;
  try {
    seen.status =
        launch::read_slurm_status(recorded_shared_run_dir(record, shared_run_dir(record.id)));
    record.target.erase("status_error");
  } catch (const util::Error& error) {
    record.target["status_error"] = error.what();
  }
  ingest_metrics(
      store, record,
      recorded_shared_run_dir(record, shared_run_dir(record.id)) / "wd" / "logs" / "metrics",
      /*final=*/false);
  std::int64_t now = util::monotonic_ms();
  bool ended = seen.status && seen.status->state == "ended";
  if (!ended && now >= m_next_query_ms) {
    m_next_query_ms = now + m_query_interval.count();
    try {
      seen.job = m_client.job(seen.job_id);
      seen.slurm_asked = true;
      record.target.erase("slurm_error");
    } catch (const util::InfraError& error) {
      // Unreachable for now: the status file still tells progress and end.
      record.target["slurm_error"] = error.what();
      m_next_query_ms = now + 5 * m_query_interval.count();
    }
  }
  apply(store, record, judge_slurm_run(seen), seen);
  return record;
}

void SlurmTarget::apply(store::RunStore& store, store::RunRecord& record,
                        const SlurmVerdict& verdict, const SlurmObservation& seen) {
  nlohmann::json previous = record.target;
  record.target["attempt"] = verdict.attempt;
  if (seen.status && !seen.status->nodes.empty()) record.target["nodes"] = seen.status->nodes;
  if (seen.job) {
    record.target["slurm_state"] = seen.job->state;
    record.target["slurm_reason"] = seen.job->reason;
  }
  if (verdict.finished) {
    // What squeue said about the live job is stale now, unless Slurm's own
    // end (NODE_FAIL, PREEMPTED, ...) is the result.
    if (!seen.job || !is_finished_slurm_state(seen.job->state)) {
      record.target.erase("slurm_state");
      record.target.erase("slurm_reason");
    }
    // A run that ended before a refresh saw it running still ran.
    if (seen.status && seen.status->started && before(record.state, RunState::running)) {
      store.transition(record, RunState::running);
    }
    record.target["result"] = {
        {"state", store::to_string(verdict.final_state)},
        {"exit_code", verdict.exit_code ? nlohmann::json(*verdict.exit_code) : nlohmann::json()},
        {"failure_reason", verdict.failure_reason},
        {"infrastructure", verdict.infrastructure}};
    finish(store, record);
    return;
  }
  if (verdict.progress && before(record.state, *verdict.progress)) {
    if (before(record.state, RunState::running)) store.transition(record, RunState::running);
    if (before(record.state, *verdict.progress)) store.transition(record, *verdict.progress);
    return;
  }
  // run.json is written (with fsync) only when something changed.
  if (record.target != previous) store.save(record);
}

void SlurmTarget::finish(store::RunStore& store, store::RunRecord& record) {
  nlohmann::json result = record.target["result"];
  if (before(record.state, RunState::finalizing)) {
    store.transition(record, RunState::finalizing);
  } else {
    store.save(record);
  }
  collect(store, record);
  ingest_metrics(store, record, store.run_dir(record.id) / "artifacts" / "logs" / "metrics",
                 /*final=*/true);
  record.exit_code = result["exit_code"].is_number_integer()
                         ? std::optional<int>(result["exit_code"].get<int>())
                         : std::nullopt;
  record.failure_reason = result.value("failure_reason", "");
  if (result.value("infrastructure", false)) record.target["failure_kind"] = "infrastructure";
  record.target.erase("result");
  auto state = store::run_state_from_string(result.value("state", "Failed"));
  store.transition(record, state.value_or(RunState::failed));
}

// Metrics the ranks wrote on the shared directory go into the index as they
// appear (refresh runs about once a second while someone follows the run),
// and the rest after collection. Ingestion never fails the run.
void SlurmTarget::ingest_metrics(store::RunStore& store, store::RunRecord& record,
                                 const fs::path& metrics_dir, bool final) {
  try {
    store::MetricIngestor ingestor(store, record.id, metrics_dir);
    ingestor.ingest(final, final ? store::MetricIngestor::k_unlimited : 16 << 20);
  } catch (const std::exception& error) {
    record.target["metrics_error"] = error.what();
  }
}

// The sealed outputs and logs move from shared_dir into the workspace, with
// Slurm's batch output and the batch script; the shared run directory goes.
void SlurmTarget::collect(store::RunStore& store, const store::RunRecord& record) {
  fs::path shared = recorded_shared_run_dir(record, shared_run_dir(record.id));
  fs::path artifacts = store.run_dir(record.id) / "artifacts";
  fs::create_directories(artifacts);
  std::error_code error;
  for (const char* name : {"outputs", "logs"}) {
    fs::path destination = artifacts / name;
    if (fs::exists(destination, error)) continue;  // collected before an interruption
    // A driver that was killed sealed nothing: take them from the working dir.
    for (const fs::path& source : {shared / "artifacts" / name, shared / "wd" / name}) {
      if (fs::is_directory(source, error)) {
        move_tree(source, destination);
        break;
      }
    }
    fs::create_directories(destination);
  }
  fs::path system = artifacts / "logs" / "system";
  fs::create_directories(system);
  for (const auto& entry : fs::directory_iterator(shared, error)) {
    std::string file = entry.path().filename().string();
    bool batch_output = file.starts_with("slurm-") && file.ends_with(".out");
    if (batch_output || file == launch::k_slurm_script_file) {
      fs::copy_file(entry.path(), system / file, fs::copy_options::overwrite_existing, error);
    }
  }
  fs::remove_all(shared, error);
}

}  // namespace amlrun::compute
