#include "lib/compute/slurm/target.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cstdlib>
#include <map>

#include "lib/compute/slurm/batch_script.hpp"
#include "lib/compute/slurm/collection.hpp"
#include "lib/compute/slurm/run_directory.hpp"
#include "lib/compute/slurm/staging.hpp"
#include "lib/launch/inputs.hpp"
#include "lib/snapshot/snapshot.hpp"
#include "lib/store/metric_ingest.hpp"
#include "lib/tracking/tracking_journal.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/random.hpp"
#include "lib/util/safe_dir.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/time.hpp"

namespace amlrun::compute {

namespace fs = std::filesystem;
using store::RunState;

namespace {

bool before(RunState state, RunState other) {
  return static_cast<int>(state) < static_cast<int>(other);
}

void test_exit_point(std::string_view point) {
  const char* wanted = ::getenv(k_test_submit_exit_variable);
  if (wanted && point == wanted) ::_exit(75);
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

std::optional<util::TimePoint> parse_time(const std::string& text) {
  if (text.empty()) return std::nullopt;
  try {
    return util::parse_utc_iso8601(text);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

SlurmTarget::SlurmTarget(const workspace::Workspace& workspace, SlurmSettings settings,
                         CommandRunner runner)
    : m_workspace(workspace), m_settings(std::move(settings)), m_client(std::move(runner)) {}

fs::path SlurmTarget::shared_run_dir(const std::string& run_id) const {
  return m_settings.shared_dir / "runs" / run_id;
}

store::SlurmRunLayout SlurmTarget::shared_layout(const store::RunRecord& record,
                                                 const SlurmState& state) const {
  return store::SlurmRunLayout(state.shared_run_dir.empty() ? shared_run_dir(record.id)
                                                            : fs::path(state.shared_run_dir));
}

std::vector<fs::path> SlurmTarget::log_roots(const store::RunStore& store,
                                             const store::RunRecord& record) const {
  return {shared_layout(record, slurm_state_from_json(record.target)).root(),
          store.run_dir(record.id)};
}

std::vector<fs::path> SlurmTarget::state_directories(const store::RunStore&,
                                                     const store::RunRecord& record) const {
  return {shared_layout(record, slurm_state_from_json(record.target)).root()};
}

std::vector<std::pair<std::string, std::string>> SlurmTarget::describe(
    const store::RunRecord& record) const {
  auto state = slurm_state_from_json(record.target);
  if (state.job_id.empty()) return {};
  // Where to look in squeue, and what Slurm last said.
  std::string slurm = "job " + state.job_id;
  if (!state.slurm_state.empty()) {
    slurm += ", " + state.slurm_state;
    if (!state.slurm_reason.empty() && state.slurm_reason != "None") {
      slurm += " (" + state.slurm_reason + ")";
    }
  }
  if (state.attempt > 1) slurm += fmt::format(", attempt {}", state.attempt);
  if (!state.nodes.empty()) slurm += " on " + util::join(state.nodes, ",");
  return {{"slurm", slurm}};
}

std::string SlurmTarget::progress_note(const store::RunRecord& record) const {
  auto state = slurm_state_from_json(record.target);
  if (state.job_id.empty() || store::is_terminal(record.state)) return "";
  if (state.slurm_state == "PENDING") {
    std::string note = describe_pending(state.job_id, state.slurm_reason);
    if (state.attempt > 1) note += fmt::format(" (attempt {}, after a requeue)", state.attempt);
    return note;
  }
  if (record.state == RunState::starting) return "Starting: Slurm job " + state.job_id;
  return "";
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
  if (report.reachable && !m_settings.partition.empty()) {
    std::vector<std::string> names;
    for (const auto& partition : report.partitions) names.push_back(partition.name);
    if (std::find(names.begin(), names.end(), m_settings.partition) == names.end()) {
      report.partition_problem = fmt::format(
          "partition '{}' of compute target '{}' does not exist on this cluster "
          "(it has: {}){}; fix partition in {}",
          m_settings.partition, m_settings.name, util::join(names, ", "),
          util::did_you_mean_suffix(m_settings.partition, names),
          m_workspace.config_path().string());
    }
  }
  return report;
}

void SlurmTarget::check_shared_dir() const {
  std::error_code error;
  auto status = fs::status(m_settings.shared_dir, error);
  if (fs::exists(status) && !fs::is_directory(status)) {
    throw util::InfraError(fmt::format(
        "shared_dir {} of compute target '{}' is a file, not a directory; give "
        "shared_dir a directory that every node of the cluster mounts at the same "
        "path (in {})",
        m_settings.shared_dir.string(), m_settings.name, m_workspace.config_path().string()));
  }
  if (!fs::is_directory(status)) {
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

std::vector<std::pair<std::string, std::string>> SlurmTarget::prepare_inputs(
    const spec::JobSpec& spec, const store::SlurmRunLayout& layout) {
  std::vector<std::pair<std::string, std::string>> prepared;
  for (const auto& input : spec.inputs) {
    if (input.kind == spec::InputSpec::Kind::literal) {
      prepared.emplace_back(input.name, input.value);
    } else if (!input.url.empty()) {
      // Downloaded here, once: nodes often have no way out.
      spec::JobSpec one;
      one.inputs = {input};
      launch::InputOptions options;
      options.log = [this](const std::string& text) { notice(text); };
      auto got = launch::prepare_inputs(one, layout.root(), options);
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
      fs::path target = layout.inputs() / input.name;
      if (input.kind == spec::InputSpec::Kind::file) target /= source.filename();
      fs::create_directories(input.kind == spec::InputSpec::Kind::file ? target.parent_path()
                                                                       : target);
      fs::copy(source, target, fs::copy_options::recursive, error);
      if (error) {
        throw util::InfraError(fmt::format("input '{}': cannot copy {} into {}: {}", input.name,
                                           input.path, layout.root().string(), error.message()));
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
                                        const spec::JobSpec& spec,
                                        const store::SlurmRunLayout& layout) {
  fs::create_directories(layout.root().parent_path());
  // Private to the user: the run's files, its job.env and the outputs are
  // nobody else's business on a shared filesystem.
  if (::mkdir(layout.root().c_str(), 0700) != 0) {
    util::throw_errno("cannot create " + layout.root().string());
  }
  if (!record.snapshot_id.empty()) {
    snapshot::materialize(m_workspace.snapshots_dir(), record.snapshot_id, layout.working_dir());
  }
  auto root = util::SafeDir::open(layout.root());
  auto working_dir = root.make_dirs(store::k_working_dir);
  working_dir.make_dirs(store::k_job_outputs_dir);
  working_dir.make_dirs(store::k_job_logs_dir);
  for (const auto& dir : {store::RunTree::relative_user_logs(), store::RunTree::relative_metrics(),
                          store::RunTree::relative_system_logs()}) {
    root.make_dirs(dir);
  }
  SlurmLaunchPlan plan;
  for (const auto& output : spec.outputs) {
    working_dir.make_dirs(fmt::format("{}/{}", store::k_job_outputs_dir, output.name));
    plan.outputs.emplace_back(output.name, (layout.job_outputs() / output.name).string());
  }
  plan.inputs = prepare_inputs(spec, layout);
  plan.run_id = record.id;
  plan.experiment = record.experiment;
  plan.workspace_root = store.workspace().root();
  plan.amlrun = stage_amlrun(m_settings.shared_dir);
  plan.timeout_seconds = spec.timeout_seconds;
  plan.kill_grace_seconds = m_workspace.config().kill_grace_seconds;
  plan.gpus_per_node = gpus_per_node(spec);
  plan.container = m_settings.container;
  plan.shared_dir = m_settings.shared_dir;
  plan.venv = record.environment_mode == "venv" && !m_settings.container;
  plan.venv_python = m_workspace.config().environments.python;
  plan.venv_system_site_packages = m_workspace.config().environments.system_site_packages;
  store::RunLayout local(store.run_dir(record.id));
  auto name_of = [](const fs::path& path) { return path.filename().string(); };
  // The environment record (what the node builds a venv from), when the
  // submission wrote one.
  if (fs::exists(local.environment_record())) {
    root.write_file(name_of(layout.environment_record()),
                    util::read_file(local.environment_record()));
  }
  root.write_file(name_of(layout.job_spec()), spec::to_json(spec).dump(2) + "\n");
  root.write_file(name_of(layout.launch_plan()), to_json_text(plan));
  root.write_file(name_of(layout.environment_file()),
                  encode_environment_file(spec.environment_variables), 0600);
  root.write_file(name_of(layout.batch_script()), batch_script(plan.amlrun, layout.root()), 0755,
                  /*durable=*/true);
}

void SlurmTarget::fail_before_submission(store::RunStore& store, store::RunRecord& record,
                                         SlurmState& state, const std::string& reason) {
  record.failure_reason = reason;
  std::error_code error;
  fs::remove_all(shared_layout(record, state).root(), error);
  record.target = to_json(state);
  store.transition(record, RunState::failed);
}

void SlurmTarget::submit(store::RunStore& store, store::RunRecord& record, util::FileLock lock) {
  SlurmState state;
  store::SlurmRunLayout layout(shared_run_dir(record.id));
  SbatchRequest request;
  try {
    check_shared_dir();
    store.transition(record, RunState::preparing);
    auto spec = spec::job_spec_from_json(nlohmann::ordered_json::parse(
        util::read_file(store::RunLayout(store.run_dir(record.id)).job_spec())));
    // The target's container, when it has one, is every run's environment;
    // a job's own image needs a runtime the nodes do not have.
    if (m_settings.container) {
      record.environment_mode = "container";
    } else if (record.environment_mode == "container") {
      throw util::InputError(fmt::format(
          "the job's environment would run in a container (environments.runtime in {}), which "
          "compute target '{}' cannot start on its nodes; give the target a container: "
          "{{runtime: pyxis|apptainer, image: ...}}, or leave out the job's image and build",
          m_workspace.config_path().string(), m_settings.name));
    }
    prepare_run_directory(store, record, spec, layout);
    request.job_name = spec.display_name.empty() ? record.experiment : spec.display_name;
    request.comment = slurm_submission_comment(record.id, util::random_hex(8));
    request.nodes = spec.instance_count;
    request.tasks_per_node = spec.distribution.process_count_per_instance;
    request.timeout_seconds = spec.timeout_seconds;
    request.kill_grace_seconds = m_workspace.config().kill_grace_seconds;
    request.gpus_per_node = gpus_per_node(spec);
    request.run_dir = layout.root();
    request.script = layout.batch_script();
  } catch (const std::exception& error) {
    fail_before_submission(store, record, state, fmt::format("preparing: {}", error.what()));
    throw;
  }
  auto argv = sbatch_command(request, m_settings);
  // The token is saved before sbatch runs: whatever happens next, the job
  // can be found by it.
  state.shared_run_dir = layout.root().string();
  state.job_name = slurm_job_name(request.job_name);
  state.comment = request.comment;
  state.sbatch = argv;
  state.submission = Submission::submitting;
  record.target = to_json(state);
  store.save(record);
  test_exit_point("after-token");

  try {
    state.job_id = m_client.submit(argv);
  } catch (const SlurmNoAnswer& error) {
    // The job may exist: keep the record as submitting; the next command
    // looks for the token.
    throw SubmissionOutcomeUnknown(
        fmt::format("{}; the job may still have been accepted: 'amlrun show "
                    "{}' finds it by its token once Slurm answers",
                    error.what(), record.id));
  } catch (const std::exception& error) {
    fail_before_submission(store, record, state, error.what());
    throw;
  }
  test_exit_point("after-sbatch");
  state.submission = Submission::submitted;
  record.target = to_json(state);
  store.transition(record, RunState::starting);
  // `amlrun cancel` during sbatch found no job id to give to scancel.
  if (fs::exists(fs::symlink_status(layout.cancel_request()))) {
    try {
      cancel_job(state);
    } catch (const util::Error&) {
      // refresh() sees the cancel request and the job's end.
    }
  }
  (void)lock;  // released here: the record now names the job
}

std::optional<SlurmJobInfo> SlurmTarget::own_job(const SlurmState& state,
                                                 std::optional<SlurmJobInfo> job) const {
  if (job && !state.comment.empty() && job->comment != state.comment) return std::nullopt;
  return job;
}

void SlurmTarget::cancel_job(const SlurmState& state) const {
  // The job with this id must be this run's: ids start again when slurmctld
  // loses its state, and scancel would end someone else's job.
  if (!own_job(state, m_client.job(state.job_id))) return;
  m_client.cancel(state.job_id);
}

void SlurmTarget::request_cancel(store::RunStore& store, const store::RunRecord& given) {
  store::RunLayout local(store.run_dir(given.id));
  auto lock = util::FileLock::acquire(local.slurm_refresh_lock());
  auto record = store.load(given.id);
  if (store::is_terminal(record.state)) return;
  auto state = slurm_state_from_json(record.target);
  auto shared = shared_layout(record, state);
  // The driver on the node tells a user's cancel from Slurm's other endings
  // by this file.
  std::error_code error;
  if (fs::is_directory(fs::symlink_status(shared.root(), error))) {
    util::SafeDir::open(shared.root())
        .write_file(store::k_cancel_request_file, "canceled by user\n");
  }
  record.cancel_requested = true;
  store.save(record);
  if (!state.job_id.empty()) cancel_job(state);
}

void SlurmTarget::recover_submission(store::RunStore& store, store::RunRecord& record,
                                     SlurmState& state) {
  if (state.comment.empty()) {
    fail_before_submission(store, record, state,
                           "the submission was interrupted before it reached Slurm; nothing runs: "
                           "submit the job again");
    return;
  }
  std::vector<SlurmJobInfo> jobs;
  try {
    jobs = m_client.jobs_with_comment(state.comment);
  } catch (const util::InfraError&) {
    return;  // Slurm cannot be asked now; the next refresh asks again
  }
  std::string job_id = jobs.empty() ? "" : jobs.front().job_id;
  if (job_id.empty()) {
    // It may have run and been forgotten by slurmctld: its status file says.
    try {
      if (auto status = read_slurm_status(shared_layout(record, state).root())) {
        job_id = status->job_id;
      }
    } catch (const util::Error&) {
    }
  }
  if (job_id.empty()) {
    fail_before_submission(
        store, record, state,
        fmt::format("the submission was interrupted before Slurm accepted the job (no Slurm job "
                    "carries its token {}); nothing runs: submit the job again",
                    state.comment));
    return;
  }
  state.job_id = job_id;
  state.submission = Submission::recovered;
  record.target = to_json(state);
  if (before(record.state, RunState::starting)) {
    store.transition(record, RunState::starting);
  } else {
    store.save(record);
  }
  if (record.cancel_requested) {
    try {
      cancel_job(state);
    } catch (const util::Error&) {
    }
  }
}

store::RunRecord SlurmTarget::refresh(store::RunStore& store, store::RunRecord record) {
  if (store::is_terminal(record.state)) return record;
  auto lock =
      util::FileLock::acquire(store::RunLayout(store.run_dir(record.id)).slurm_refresh_lock());
  return refresh_locked(store, store.load(record.id), std::nullopt);
}

std::vector<store::RunRecord> SlurmTarget::refresh_all(store::RunStore& store,
                                                       std::vector<store::RunRecord> records) {
  // One squeue for every unfinished run with a job id: `runs list` stays
  // fast however many runs are on the cluster.
  std::vector<std::string> ids;
  for (const auto& record : records) {
    auto state = slurm_state_from_json(record.target);
    if (!store::is_terminal(record.state) && !state.job_id.empty()) ids.push_back(state.job_id);
  }
  std::optional<std::map<std::string, SlurmJobInfo>> known;
  if (!ids.empty()) {
    try {
      known.emplace();
      for (auto& job : m_client.jobs(ids)) (*known)[job.job_id] = std::move(job);
    } catch (const util::InfraError&) {
      known.reset();  // each refresh reads the status files alone
    }
  }
  for (auto& record : records) {
    if (store::is_terminal(record.state)) continue;
    auto lock =
        util::FileLock::acquire(store::RunLayout(store.run_dir(record.id)).slurm_refresh_lock());
    auto fresh = store.load(record.id);
    auto state = slurm_state_from_json(fresh.target);
    std::optional<std::optional<SlurmJobInfo>> asked;
    if (known && !state.job_id.empty()) {
      auto it = known->find(state.job_id);
      asked = it == known->end() ? std::nullopt : std::optional<SlurmJobInfo>(it->second);
    }
    record = refresh_locked(store, std::move(fresh), asked);
  }
  return records;
}

store::RunRecord SlurmTarget::refresh_locked(store::RunStore& store, store::RunRecord record,
                                             std::optional<std::optional<SlurmJobInfo>> asked) {
  if (store::is_terminal(record.state)) return record;
  auto state = slurm_state_from_json(record.target);
  if (state.result) {  // a collection that was interrupted
    finish(store, record, state);
    return record;
  }
  if (state.job_id.empty()) {
    // The submitter holds the run's lock until the job id is saved.
    if (util::is_locked(store.lock_path(record.id))) return record;
    recover_submission(store, record, state);
    if (store::is_terminal(record.state) || state.job_id.empty()) return record;
  }
  auto shared = shared_layout(record, state);
  SlurmObservation seen;
  seen.job_id = state.job_id;
  seen.cancel_requested = record.cancel_requested;
  auto read_status = [&] {
    try {
      seen.status = read_slurm_status(shared.root());
      state.status_error.clear();
    } catch (const util::Error& error) {
      state.status_error = error.what();
    }
  };
  // The driver's own result, when it is there, says it all. Otherwise
  // Slurm is asked first and the status file read again after (status.hpp).
  read_status();
  bool ended = seen.status && seen.status->state == DriverState::ended;
  std::int64_t now = util::monotonic_ms();
  if (!ended && asked) {
    seen.job = own_job(state, *asked);
    seen.slurm_asked = true;
    state.slurm_error.clear();
  } else if (!ended && now >= m_next_query_ms) {
    m_next_query_ms = now + m_query_interval.count();
    try {
      seen.job = own_job(state, m_client.job(seen.job_id));
      seen.slurm_asked = true;
      state.slurm_error.clear();
    } catch (const util::InfraError& error) {
      // Unreachable for now: the status file still tells progress and end.
      state.slurm_error = error.what();
      m_next_query_ms = now + 5 * m_query_interval.count();
    }
  }
  if (seen.slurm_asked) read_status();
  if (seen.slurm_asked && seen.job && is_finished_slurm_state(seen.job->state) && seen.status &&
      seen.status->state == DriverState::interrupted) {
    auto first = parse_time(state.interrupted_end_seen_at);
    if (!first) {
      state.interrupted_end_seen_at = util::utc_iso8601(util::Clock::now());
      first = util::Clock::now();
    }
    seen.interrupted_end_seconds =
        std::chrono::duration<double>(util::Clock::now() - *first).count();
  } else {
    state.interrupted_end_seen_at.clear();
  }
  ingest_metrics(store, record, state, shared.metrics(), /*final=*/false);
  apply(store, record, state, judge_slurm_run(seen), seen);
  return record;
}

void SlurmTarget::apply(store::RunStore& store, store::RunRecord& record, SlurmState& state,
                        const SlurmVerdict& verdict, const SlurmObservation& seen) {
  nlohmann::json previous = record.target;
  state.attempt = verdict.attempt;
  if (seen.status && !seen.status->nodes.empty()) state.nodes = seen.status->nodes;
  if (seen.job) {
    state.slurm_state = seen.job->state;
    state.slurm_reason = seen.job->reason;
  }
  auto started_at = seen.status ? parse_time(seen.status->started_at) : std::nullopt;
  if (seen.status && seen.status->environment) {
    record.prepared_environment = seen.status->environment;
  }
  if (verdict.finished) {
    if (verdict.cancel_job) {
      try {
        cancel_job(state);
      } catch (const util::Error&) {
        // It cannot start anyway; Slurm keeps it pending until someone cancels.
      }
    }
    // What squeue said about the live job is stale now, unless Slurm's own
    // end (NODE_FAIL, PREEMPTED, ...) is the result.
    if (!seen.job || !is_finished_slurm_state(seen.job->state)) {
      state.slurm_state.clear();
      state.slurm_reason.clear();
    }
    // A run that ended before a refresh saw it running still ran.
    if (seen.status && seen.status->started && before(record.state, RunState::running)) {
      record.target = to_json(state);
      store.transition(record, RunState::running, started_at);
    }
    if (seen.status) {
      for (const auto& warning : seen.status->warnings) record.warnings.push_back(warning);
    }
    state.result = SlurmResult{verdict.final_state, verdict.exit_code, verdict.failure_reason,
                               verdict.infrastructure};
    finish(store, record, state);
    return;
  }
  record.target = to_json(state);
  if (verdict.progress == RunState::starting && record.state == RunState::running) {
    store.transition(record, RunState::starting);  // requeued: waits to run again
    return;
  }
  if (verdict.progress && before(record.state, *verdict.progress)) {
    if (before(record.state, RunState::running)) {
      store.transition(record, RunState::running, started_at);
    }
    if (before(record.state, *verdict.progress)) store.transition(record, *verdict.progress);
    return;
  }
  // run.json is written (with fsync) only when something changed.
  if (record.target != previous) store.save(record);
}

void SlurmTarget::finish(store::RunStore& store, store::RunRecord& record, SlurmState& state) {
  SlurmResult result = *state.result;
  record.target = to_json(state);
  if (before(record.state, RunState::finalizing)) {
    store.transition(record, RunState::finalizing);
  } else {
    store.save(record);
  }
  auto shared = shared_layout(record, state);
  store::RunLayout local(store.run_dir(record.id));
  // The driver's end time, read before collection removes the shared copy.
  std::optional<util::TimePoint> ended_at;
  try {
    if (auto status = read_slurm_status(shared.root())) ended_at = parse_time(status->ended_at);
  } catch (const util::Error&) {
  }
  auto collected = collect_run(shared, local, [](const std::string&) {});
  for (auto& warning : collected.warnings) record.warnings.push_back(std::move(warning));
  // What the run's MLflow endpoint wrote on the node: params, tags, nested runs.
  for (auto& problem : tracking::merge_tracking_journal(store, record, local.root())) {
    record.warnings.push_back(std::move(problem));
  }
  ingest_metrics(store, record, state, local.metrics(), /*final=*/true);
  record.exit_code = result.exit_code;
  record.failure_reason = result.failure_reason;
  record.infrastructure_failure = result.infrastructure;
  state.result.reset();
  record.target = to_json(state);
  store.transition(record, result.state, ended_at);
}

// Metrics the ranks wrote on the shared directory go into the index as they
// appear (refresh runs about once a second while someone follows the run),
// and the rest after collection. Ingestion never fails the run.
void SlurmTarget::ingest_metrics(store::RunStore& store, const store::RunRecord& record,
                                 SlurmState& state, const fs::path& metrics_dir, bool final) {
  try {
    store::MetricIngestor ingestor(store, record.id, metrics_dir);
    ingestor.ingest(final, final ? store::MetricIngestor::k_unlimited : 16 << 20);
  } catch (const std::exception& error) {
    state.metrics_error = error.what();
  }
}

}  // namespace amlrun::compute
