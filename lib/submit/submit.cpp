#include "lib/submit/submit.hpp"

#include <pwd.h>
#include <unistd.h>

#include <fmt/format.h>

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "lib/compute/compute_target.hpp"
#include "lib/compute/sweep/sweep_target.hpp"
#include "lib/env/environment.hpp"
#include "lib/env/runtime.hpp"
#include "lib/snapshot/snapshot.hpp"
#include "lib/spec/loader.hpp"
#include "lib/store/run_layout.hpp"
#include "lib/store/run_store.hpp"
#include "lib/submit/model_source.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/names.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/timing.hpp"

namespace amlrun::submit {

namespace fs = std::filesystem;

namespace {

using Notice = std::function<void(const std::string&)>;

std::string current_user() {
  if (const passwd* entry = ::getpwuid(::geteuid())) return entry->pw_name;
  return std::to_string(::geteuid());
}

std::string host_name() {
  char buffer[256] = {0};
  ::gethostname(buffer, sizeof buffer - 1);
  return buffer;
}

struct ResolvedEnvironment {
  env::Environment environment;
  std::string hash;
  env::Mode mode = env::Mode::host;
};

// Pass 1: the spec, every error at once; --experiment and --compute win.
spec::JobSpec load_spec(const SubmitRequest& request, const Notice& notice) {
  spec::LoadOptions options;
  options.overrides = request.overrides;
  options.resolve_model = workspace_model_resolver(request.workspace);
  spec::LoadedSpec loaded = spec::load_job_spec(request.spec_file, options);
  for (const auto& warning : loaded.warnings) notice(spec::format_diagnostic(warning));
  spec::JobSpec job = std::move(loaded.spec);
  if (request.experiment) {
    util::check_name("experiment", *request.experiment);
    job.experiment_name = *request.experiment;
  }
  if (request.compute) {
    util::check_name("compute target", *request.compute);
    job.compute = *request.compute;
  }
  if (job.experiment_name.empty()) {
    job.experiment_name = default_experiment(job.code_dir.value_or(fs::path()), job.spec_file);
  }
  return job;
}

// Pass 3: the source directory into the content-addressed store.
snapshot::Snapshot take_snapshot(const spec::JobSpec& job, const workspace::Workspace& workspace,
                                 const Notice& notice, const SubmitRequest& request) {
  if (!job.code_dir) return {};
  snapshot::Options options;
  options.store_dir = workspace.snapshots_dir();
  options.limits.max_bytes = workspace.config().snapshot_max_bytes;
  options.limits.max_files = workspace.config().snapshot_max_files;
  options.exclude_paths = {workspace.root()};
  options.warn = [&](const std::string& text) { notice("warning: " + text); };
  options.progress = request.snapshot_progress;
  // Moves the one-second threshold; the tests set 0, so they need no tree
  // large enough to take a second on every machine.
  if (const char* after = std::getenv("AMLRUN_SNAPSHOT_PROGRESS_AFTER_MS")) {
    std::string_view text(after);
    std::int64_t ms = -1;
    auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), ms);
    if (error != std::errc() || end != text.data() + text.size() || ms < 0) {
      throw util::InputError(fmt::format(
          "AMLRUN_SNAPSHOT_PROGRESS_AFTER_MS is '{}': give milliseconds (0 or more), or unset it",
          util::printable(text, 40)));
    }
    options.progress_after_ms = ms;
  }
  return snapshot::take(*job.code_dir, options);
}

// Pass 4: the environment's canonical form and hash, and how the target
// will provide it (host, venv or container).
ResolvedEnvironment resolve_environment(const spec::JobSpec& job,
                                        const workspace::Workspace& workspace,
                                        const Notice& notice) {
  const auto& settings = workspace.config().environments;
  ResolvedEnvironment resolved;
  resolved.environment = env::resolve_environment(job, settings);
  resolved.hash = env::environment_hash(resolved.environment);
  resolved.mode = env::choose_mode(resolved.environment, settings);
  if (resolved.mode == env::Mode::container) {
    env::choose_runtime(settings.runtime);  // refuses now, not in the middle of the run
  } else if (!job.environment.image.empty() || !job.environment.build_context.empty()) {
    notice(
        fmt::format("note: no container runtime is configured (environments.runtime), so the "
                    "run uses the {} environment; the image is not used",
                    env::to_string(resolved.mode)));
  }
  return resolved;
}

// Pass 5, the record: what `amlrun show` reports from the start.
store::RunRecord new_record(const spec::JobSpec& job, const compute::ComputeTarget& target,
                            const snapshot::Snapshot& snap, const ResolvedEnvironment& resolved) {
  store::RunRecord record;
  record.id = store::RunStore::new_run_id(job.experiment_name);
  record.experiment = job.experiment_name;
  record.display_name = job.display_name;
  record.description = job.description;
  record.tags = job.tags;
  record.compute = job.compute;
  record.compute_type = target.type();
  record.snapshot_id = snap.id;
  record.snapshot_files = snap.files;
  record.snapshot_bytes = snap.bytes;
  record.environment_hash = resolved.hash;
  record.environment_mode = env::to_string(resolved.mode);
  record.instance_count = job.instance_count;
  record.process_count = job.total_processes();
  record.distribution = spec::to_string(job.distribution.type);
  record.spec_file = job.spec_file.string();
  record.submitted_by = current_user();
  record.submit_host = host_name();
  record.amlrun_version = AMLRUN_VERSION;
  return record;
}

// Pass 5, the files the run's owner reads: the normalised spec and the
// environment. Not fsynced: the run has not started, and a crash before the
// owner's first durable transition leaves a run that refresh() records as
// failed — nothing is lost that a resubmit does not restore.
void write_run_files(const store::RunLayout& layout, const spec::JobSpec& job,
                     const ResolvedEnvironment& resolved, const std::string& runtime) {
  util::write_file_replace(layout.job_spec(), spec::to_json(job).dump(2) + "\n");
  nlohmann::json environment_record = {{"hash", resolved.hash},
                                       {"mode", env::to_string(resolved.mode)},
                                       {"runtime", runtime},
                                       {"build_context", resolved.environment.build_context},
                                       {"canonical", env::canonical_form(resolved.environment)}};
  util::write_file_replace(layout.environment_record(), environment_record.dump(2) + "\n");
}

}  // namespace

std::string default_experiment(const fs::path& code_dir, const fs::path& spec_file) {
  for (const fs::path& dir : {code_dir, spec_file.parent_path()}) {
    if (dir.empty()) continue;
    // "src/" names the experiment "src" too.
    fs::path normal = dir.lexically_normal();
    if (!normal.has_filename()) normal = normal.parent_path();
    std::string name = util::sanitize_name(normal.filename().string());
    if (!name.empty()) return name;
  }
  return "default";
}

SubmitResult submit_job(const SubmitRequest& request) {
  Notice notice = [&](const std::string& text) {
    if (request.notice) request.notice(text);
  };
  util::timing_mark("start");

  // 1. Load and validate the spec, all errors at once.
  spec::JobSpec job = load_spec(request, notice);
  util::timing_mark("spec loaded");

  // 2. Resolve the workspace and the compute target, before any copying.
  workspace::Workspace workspace = workspace::open_workspace(request.workspace);
  // A sweep is owned by its controller; its trials' target is checked now,
  // before anything is copied, as for any job.
  auto target = compute::make_target(workspace, job.compute);
  if (job.sweep) target = std::make_unique<compute::SweepTarget>(workspace);
  target->set_notice(notice);
  util::timing_mark("workspace and target");

  // 3. Snapshot the source directory.
  snapshot::Snapshot snap = take_snapshot(job, workspace, notice, request);
  util::timing_mark("snapshot");

  // 4. Resolve the environment.
  ResolvedEnvironment resolved = resolve_environment(job, workspace, notice);
  util::timing_mark("environment");

  // 5. Create the run record (Queued) and its directory; its owner's lock
  // is held from here on.
  auto store = std::make_unique<store::RunStore>(workspace);
  store::RunRecord record = new_record(job, *target, snap, resolved);
  if (job.sweep) record.kind = store::RunKind::sweep;
  util::FileLock lock = store->create(record);
  store::RunLayout layout(store->run_dir(record.id));
  try {
    write_run_files(layout, job, resolved, workspace.config().environments.runtime);
    util::timing_mark("run record");

    // 6. Hand the run to the compute target.
    target->submit(*store, record, std::move(lock));
  } catch (const compute::SubmissionOutcomeUnknown&) {
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
  return SubmitResult{record, layout.root(), std::move(store), std::move(target)};
}

}  // namespace amlrun::submit
