#include "lib/compute/submit.hpp"

#include <pwd.h>
#include <unistd.h>

#include <fmt/format.h>

#include "lib/compute/compute_target.hpp"
#include "lib/env/environment.hpp"
#include "lib/env/runtime.hpp"
#include "lib/snapshot/snapshot.hpp"
#include "lib/spec/loader.hpp"
#include "lib/store/run_store.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/hash.hpp"
#include "lib/util/names.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/time.hpp"
#include "lib/util/timing.hpp"

namespace amlrun::compute {

namespace fs = std::filesystem;

namespace {

std::string current_user() {
  if (const passwd* entry = ::getpwuid(::geteuid())) return entry->pw_name;
  return std::to_string(::geteuid());
}

std::string host_name() {
  char buffer[256] = {0};
  ::gethostname(buffer, sizeof buffer - 1);
  return buffer;
}

// The job's experiment_name, else the source directory's name, else the job
// file's directory name.
std::string default_experiment(const spec::JobSpec& spec) {
  for (const fs::path& dir : {spec.code_dir.value_or(fs::path()), spec.spec_file.parent_path()}) {
    if (dir.empty()) continue;
    std::string name = util::sanitize_name(fs::path(dir).lexically_normal().filename().string());
    if (!name.empty()) return name;
  }
  return "default";
}

}  // namespace

SubmitResult submit_job(const SubmitRequest& request) {
  auto notice = [&](const std::string& text) {
    if (request.notice) request.notice(text);
  };

  util::timing_mark("start");
  // 1. load + validate the spec (all errors at once).
  spec::LoadOptions load_options;
  load_options.overrides = request.overrides;
  spec::LoadedSpec loaded = spec::load_job_spec(request.spec_file, load_options);
  for (const auto& warning : loaded.warnings) notice(spec::format_diagnostic(warning));
  spec::JobSpec& job = loaded.spec;
  if (request.experiment) {
    util::check_name("experiment", *request.experiment);
    job.experiment_name = *request.experiment;
  }
  if (request.compute) {
    util::check_name("compute target", *request.compute);
    job.compute = *request.compute;
  }
  if (job.experiment_name.empty()) job.experiment_name = default_experiment(job);

  util::timing_mark("spec loaded");
  // 2. resolve the workspace and the compute target (before any copying).
  workspace::Workspace workspace = workspace::open_workspace(request.workspace);
  auto target = make_target(workspace, job.compute);
  target->set_notice(notice);

  util::timing_mark("workspace and target");
  // 3. snapshot the source directory into the content-addressed store.
  snapshot::Snapshot snap;
  if (job.code_dir) {
    snapshot::Options options;
    options.store_dir = workspace.snapshots_dir();
    options.limits.max_bytes = workspace.config().snapshot_max_bytes;
    options.limits.max_files = workspace.config().snapshot_max_files;
    options.exclude_paths = {workspace.root()};
    options.warn = [&](const std::string& text) { notice("warning: " + text); };
    snap = snapshot::take(*job.code_dir, options);
  }

  util::timing_mark("snapshot");
  // 4. resolve the environment: its canonical form and hash, and how this
  // target will provide it (host, venv or container).
  const auto& settings = workspace.config().environments;
  env::Environment environment = env::resolve_environment(job, settings);
  std::string hash = env::environment_hash(environment);
  env::Mode mode = env::choose_mode(environment, settings);
  if (mode == env::Mode::container) {
    env::choose_runtime(settings.runtime);  // refuses now, not in the middle of the run
  } else if (!job.environment.image.empty() || !job.environment.build_context.empty()) {
    notice(
        fmt::format("note: no container runtime is configured (environments.runtime), so the "
                    "run uses the {} environment; the image is not used",
                    env::to_string(mode)));
  }

  util::timing_mark("environment");
  // 5. create the run record (Queued) and its directory.
  auto store = std::make_unique<store::RunStore>(workspace);
  store::RunRecord record;
  record.id = store::RunStore::new_run_id(job.experiment_name);
  record.experiment = job.experiment_name;
  record.display_name = job.display_name;
  record.description = job.description;
  record.tags = job.tags;
  record.compute = job.compute;
  record.compute_type = target->type();
  record.snapshot_id = snap.id;
  record.snapshot_files = snap.files;
  record.snapshot_bytes = snap.bytes;
  record.environment_hash = hash;
  record.environment_mode = env::to_string(mode);
  record.instance_count = job.instance_count;
  record.process_count = job.total_processes();
  record.distribution = spec::to_string(job.distribution.type);
  record.spec_file = job.spec_file.string();
  record.submitted_by = current_user();
  record.submit_host = host_name();
  record.amlrun_version = AMLRUN_VERSION;
  store::FileLock lock = store->create(record);
  fs::path run_dir = store->run_dir(record.id);
  try {
    // Not fsynced: the run has not started, and a crash before the
    // supervisor's first durable transition leaves a run that refresh()
    // records as failed — nothing is lost that a resubmit does not restore.
    util::write_file_replace(run_dir / "job.json", spec::to_json(job).dump(2) + "\n");
    nlohmann::json environment_record = {{"hash", hash},
                                         {"mode", env::to_string(mode)},
                                         {"runtime", settings.runtime},
                                         {"build_context", environment.build_context},
                                         {"canonical", env::canonical_form(environment)}};
    util::write_file_replace(run_dir / "environment.json", environment_record.dump(2) + "\n");
    util::timing_mark("run record");

    // 6. hand the run to the compute target.
    target->submit(*store, record, std::move(lock));
  } catch (const SubmissionOutcomeUnknown&) {
    // The target may have accepted the run: its refresh() settles it.
    throw;
  } catch (const std::exception& error) {
    // The record exists: it must not stay Queued forever (a target may
    // have recorded the failure with its own reason already).
    if (!store::is_terminal(record.state)) {
      record.failure_reason = fmt::format("submission failed: {}", error.what());
      store->transition(record, store::RunState::failed);
    }
    throw;
  }
  util::timing_mark("handed to the target");
  return SubmitResult{record, run_dir, std::move(store)};
}

}  // namespace amlrun::compute
