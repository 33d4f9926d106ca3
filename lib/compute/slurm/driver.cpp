// `amlrun _slurm-run`: the node-side half of a Slurm run. The batch script
// execs it on the first node of the allocation; it starts the ranks with
// srun (or mpirun), enforces the job's timeout and a user's cancel the way
// the local supervisor does (both are launch::RunOwner), seals ./outputs and
// ./logs, and reports each step through the status file, which the
// submitting side reads. Slurm's own endings (time limit, preemption, node
// failure, requeue) are left to Slurm: the driver then records
// "interrupted" and seals nothing, so a requeued job finds its working
// directory as it was.
#include "lib/compute/slurm/driver.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cstdlib>
#include <cstring>
#include <regex>

#include "lib/compute/slurm/rank_launch.hpp"
#include "lib/compute/slurm/run_directory.hpp"
#include "lib/compute/slurm/staging.hpp"
#include "lib/env/environment.hpp"
#include "lib/env/venv.hpp"
#include "lib/launch/program.hpp"
#include "lib/launch/rank_environment.hpp"
#include "lib/launch/run_owner.hpp"
#include "lib/launch/seal.hpp"
#include "lib/store/run_layout.hpp"
#include "lib/tracking/mlflow_json.hpp"
#include "lib/tracking/tracking_endpoint.hpp"
#include "lib/tracking/tracking_journal.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/process.hpp"
#include "lib/util/random.hpp"
#include "lib/util/safe_dir.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/time.hpp"

namespace amlrun::compute {

namespace {

using launch::describe_exit;
using launch::Ending;
using store::RunState;

constexpr std::chrono::milliseconds k_slurm_command_timeout{15000};

std::string required_variable(const char* name) {
  const char* value = ::getenv(name);
  if (!value || !*value) {
    throw util::InfraError(
        fmt::format("{} is not set: amlrun _slurm-run runs inside a Slurm batch job", name));
  }
  return value;
}

std::string now_text() {
  return util::utc_iso8601(util::Clock::now());
}

struct RankFailure {
  std::string reason;
  std::optional<int> exit_code;
};

// srun reports a task's end as "srun: error: n2: task 1: Exited with exit code
// 3"; the first such line names the rank that failed first (the others were
// then ended by --kill-on-bad-exit, and srun's own exit code is theirs).
std::optional<RankFailure> failed_rank_from_srun_log(const std::string& log) {
  static const std::regex k_line(R"(task (\d+): (Exited with exit code (\d+)|[^\n]+))");
  std::smatch match;
  if (!std::regex_search(log, match, k_line)) return std::nullopt;
  if (match[3].matched) {
    return RankFailure{fmt::format("rank {} exited with code {}", match[1].str(), match[3].str()),
                       std::stoi(match[3].str())};
  }
  return RankFailure{fmt::format("rank {}: {}", match[1].str(), match[2].str()), std::nullopt};
}

class SlurmDriver {
 public:
  explicit SlurmDriver(const fs::path& run_dir)
      : m_layout(run_dir),
        m_plan(slurm_launch_plan_from_json(util::read_file(m_layout.launch_plan()))),
        m_owner(m_layout.cancel_request(), m_plan.kill_grace_seconds) {}

  int run() {
    m_spec = spec::job_spec_from_json(
        nlohmann::ordered_json::parse(util::read_file(m_layout.job_spec())));
    m_status.job_id = required_variable("SLURM_JOB_ID");
    const char* restarts = ::getenv("SLURM_RESTART_COUNT");
    m_status.attempt = 1 + (restarts ? std::atoi(restarts) : 0);
    m_status.nodes = allocation_nodes();
    if (auto previous = read_slurm_status(m_layout.root())) {
      m_status.started = previous->started;
      m_status.started_at = previous->started_at;
    }
    m_owner.log(fmt::format("attempt {} of job {} on {}", m_status.attempt, m_status.job_id,
                            util::join(m_status.nodes, ",")));
    if (m_status.attempt > 1) mark_new_attempt();
    if (m_owner.cancel_requested()) {
      return end_without_start(RunState::canceled, "canceled by user before it started");
    }
    try {
      start();
    } catch (const std::exception& error) {
      m_owner.log(fmt::format("starting failed: {}", error.what()));
      return end_without_start(RunState::failed, fmt::format("starting: {}", error.what()));
    }
    wait_for_launcher();
    return finish();
  }

 private:
  util::CaptureResult slurm_command(std::vector<std::string> argv) {
    util::SpawnOptions options;
    options.argv = std::move(argv);
    return util::run_capture(options, {}, k_slurm_command_timeout);
  }

  std::vector<std::string> allocation_nodes() {
    std::string nodelist = required_variable("SLURM_JOB_NODELIST");
    auto result = slurm_command({"scontrol", "show", "hostnames", nodelist});
    std::vector<std::string> nodes;
    for (const auto& line : util::split(result.out, '\n')) {
      auto name = util::trim(line);
      if (!name.empty()) nodes.emplace_back(name);
    }
    if (result.exit_code != 0 || nodes.empty()) {
      throw util::InfraError(
          fmt::format("scontrol show hostnames {} failed: {}", nodelist, util::trim(result.err)));
    }
    return nodes;
  }

  util::SafeDir user_logs() const {
    return util::SafeDir::open(m_layout.root()).make_dirs(store::RunTree::relative_user_logs());
  }

  // Logs are appended per attempt; a line in each says where one begins.
  void mark_new_attempt() {
    std::string marker =
        fmt::format("--- amlrun: attempt {} of Slurm job {} (the job was requeued) ---\n",
                    m_status.attempt, m_status.job_id);
    try {
      auto logs = user_logs();
      for (const auto& entry : logs.list()) {
        if (!S_ISREG(entry.type)) continue;  // never through a link
        util::UniqueFd fd = logs.try_open_file(entry.name, O_WRONLY | O_APPEND);
        if (fd) util::write_all(fd.get(), marker, "cannot mark the attempt");
      }
    } catch (const std::exception& error) {
      m_owner.log(fmt::format("cannot mark the new attempt in the logs: {}", error.what()));
    }
  }

  launch::RunContext context() const {
    launch::RunContext c;
    c.run_id = m_plan.run_id;
    c.experiment = m_plan.experiment;
    c.workspace_root = m_plan.workspace_root;
    c.run_dir = m_layout.root();
    c.working_dir = m_layout.working_dir();
    c.outputs_dir = m_layout.job_outputs();
    c.logs_dir = m_layout.job_logs();
    c.inputs = m_plan.inputs;
    c.outputs = m_plan.outputs;
    c.user_variables =
        decode_environment_file(util::read_file(m_layout.environment_file()), "job.env");
    c.distribution = m_spec.distribution.type;
    c.backend = m_spec.distribution.backend;
    c.instance_count = m_spec.instance_count;
    c.processes_per_instance = m_spec.distribution.process_count_per_instance;
    c.master_address = m_status.nodes.front();
    c.master_port = slurm_master_port(m_status.job_id);
    if (c.distribution == spec::DistributionType::tensorflow) {
      c.tensorflow = slurm_tensorflow_cluster(m_status.nodes, c.processes_per_instance,
                                              c.master_port, m_spec.distribution.worker_count);
    }
    if (m_tracking) {
      c.tracking_uri = m_tracking->base_uri();
      c.tracking_token = m_tracking_token;
      c.tracking_experiment_id = tracking::experiment_id_of(m_plan.experiment);
    }
    // The driver is the staged amlrun: the shim was staged beside it.
    c.python_shim = launch::python_shim_dir(launch::amlrun_executable());
    return c;
  }

  // The run's MLflow endpoint, before any rank starts. It listens on every
  // address of this node, so ranks on the other nodes reach it at the name
  // Slurm gives this node (as they reach MASTER_ADDR); the per-run token
  // keeps everyone else out. There is no run store here: the record side is
  // a journal in the shared run directory, merged when the run is collected.
  // A run that cannot have an endpoint still runs; the system log says why.
  void start_tracking() {
    try {
      m_tracking_token = util::random_hex(32);
      store::RunRecord served;
      served.id = m_plan.run_id;
      served.experiment = m_plan.experiment;
      served.state = RunState::running;
      served.created_at = served.started_at = now_text();
      served.compute_type = "slurm";
      if (const char* user = ::getenv("USER")) served.submitted_by = user;
      tracking::TrackingConfig config;
      config.run_id = m_plan.run_id;
      config.experiment = m_plan.experiment;
      config.run_dir = m_layout.root();
      config.outputs_relative =
          fmt::format("{}/{}", store::k_working_dir, store::k_job_outputs_dir);
      config.world_size = m_spec.instance_count * m_spec.distribution.process_count_per_instance;
      tracking::EndpointOptions options;
      options.bind_address = "0.0.0.0";
      options.public_host = m_status.nodes.front();
      options.token = m_tracking_token;
      m_tracking = std::make_unique<tracking::TrackingEndpoint>(
          tracking::journal_run_records(m_layout.root(), std::move(served)), config, options);
      m_tracking->start();
      m_owner.log(fmt::format("tracking: MLflow endpoint at {}", m_tracking->base_uri()));
    } catch (const std::exception& error) {
      m_tracking.reset();
      m_owner.log(fmt::format("tracking: no MLflow endpoint for this run: {}", error.what()));
    }
  }

  // Before sealing: requests in flight are answered, nested runs left open end.
  void stop_tracking() {
    if (!m_tracking) return;
    try {
      m_tracking->stop();
    } catch (const std::exception& error) {
      m_owner.log(fmt::format("tracking: stopping the MLflow endpoint: {}", error.what()));
    }
    m_tracking.reset();
  }

  // venv mode: the environment's venv under shared_dir, built here on the
  // first node (so with the nodes' own python) once, then first in PATH on
  // every node. Like the staged binary, it runs as the user: it must be
  // the user's own and writable by nobody else.
  void use_venv(std::vector<std::string>& environment) {
    auto record = nlohmann::json::parse(util::read_file(m_layout.environment_record()));
    env::Environment wanted = env::environment_from_canonical(record["canonical"]);
    wanted.build_context = record.value("build_context", "");
    workspace::EnvironmentSettings settings;
    settings.python = m_plan.venv_python;
    settings.system_site_packages = m_plan.venv_system_site_packages;
    fs::path environments = m_plan.shared_dir / "environments";
    fs::create_directories(environments);
    check_private_to_user(environments, "the shared environments folder");
    env::VenvRequest request{wanted, record.value("hash", ""), environments, settings,
                             m_layout.system_logs() / "env_build.txt"};
    auto venv = env::ensure_venv(request);
    check_private_to_user(venv.directory, "the environment's venv");
    check_private_to_user(venv.directory / "bin", "the environment's venv");
    m_status.environment = store::PreparedEnvironment{venv.cache_hit, venv.seconds,
                                                      venv.directory.string(), venv.python};
    m_owner.log(fmt::format(
        "environment {}: venv {} ({})", request.hash.substr(0, 12), venv.directory.string(),
        venv.cache_hit ? "cached" : fmt::format("built in {:.1f} s", venv.seconds)));
    launch::activate_venv(environment, venv.directory);
  }

  void start() {
    start_tracking();
    launch::RunContext c = context();
    auto environment = run_environment(c, util::current_environment());
    if (m_plan.venv && !m_plan.container) use_venv(environment);
    if (c.distribution != spec::DistributionType::none) {
      util::set_env(environment, "MASTER_ADDR", c.master_address);
      util::set_env(environment, "MASTER_PORT", std::to_string(c.master_port));
    }
    if (c.distribution == spec::DistributionType::tensorflow) {
      util::set_env(environment, launch::k_tensorflow_cluster_variable,
                    launch::tensorflow_cluster_json(c.tensorflow));
    }
    // For ranks in a pyxis container, which name their metrics files from it.
    util::set_env(environment, "AMLRUN_METRICS_DIR", m_layout.metrics().string());
    SlurmRankLaunch launch;
    launch.distribution = c.distribution;
    launch.nodes = c.instance_count;
    launch.tasks_per_node = c.processes_per_instance;
    launch.tensorflow_workers = m_spec.distribution.worker_count;
    launch.amlrun = launch::amlrun_executable();
    launch.run_dir = m_layout.root();
    launch.working_dir = m_layout.working_dir();
    launch.shared_dir = m_plan.shared_dir;
    // In a container, program names are looked up in the image's PATH.
    launch.program = launch::user_program(m_spec, c.inputs, environment, !m_plan.container);
    launch.container = m_plan.container;
    launch.gpus = m_plan.gpus_per_node > 0;
    launch.as_root = ::geteuid() == 0;
    if (c.distribution == spec::DistributionType::mpi) {
      auto list = slurm_command({"srun", "--mpi=list"});
      launch.pmix = srun_offers_pmix(list.out + list.err);
      if (!launch.pmix) {
        auto mpirun = util::find_executable("mpirun");
        if (!mpirun) {
          throw util::InfraError(
              "this Slurm offers no PMIx (srun --mpi=list) and mpirun is not "
              "in PATH on the node; an mpi job needs one of them");
        }
        launch.mpirun = *mpirun;
        launch.hostfile = m_layout.hostfile();
        util::write_file_atomic(launch.hostfile,
                                mpirun_hostfile(m_status.nodes, c.processes_per_instance));
        m_owner.log("srun offers no PMIx; starting the ranks with mpirun and a hostfile");
      }
    }
    m_launcher_name =
        launch.distribution == spec::DistributionType::mpi && !launch.pmix ? "mpirun" : "srun";
    m_launcher_log_name = m_launcher_name + ".txt";
    util::UniqueFd launcher_log =
        util::SafeDir::open(m_layout.root())
            .make_dirs(store::RunTree::relative_system_logs())
            .open_file(m_launcher_log_name, O_WRONLY | O_CREAT | O_APPEND);
    util::SpawnOptions options;
    options.argv = slurm_rank_command(launch);
    options.cwd = m_layout.working_dir();
    options.environment = environment;
    options.stdout_fd = launcher_log.get();
    options.stderr_fd = launcher_log.get();
    options.new_process_group = true;
    m_status.state = DriverState::running;
    m_status.started = true;
    if (m_status.started_at.empty()) m_status.started_at = now_text();
    write_slurm_status(m_layout.root(), m_status);
    m_launcher = util::spawn(options);
    m_owner.log(fmt::format("started {} rank{} with {}", c.world_size(),
                            c.world_size() == 1 ? "" : "s", m_launcher_name));
  }

  // Asks every rank to end: SIGTERM to the job's steps (not to this batch
  // step), which the ranks receive directly from slurmstepd; srun itself
  // would answer SIGTERM by killing the step without a grace period.
  // `from_slurm`: Slurm signalled this batch step (scancel, time limit,
  // preemption, requeue) and signals the steps itself.
  void end_run(Ending why, const std::string& message, bool from_slurm = false) {
    if (!m_owner.begin_ending(why, message) || from_slurm) return;
    auto result = slurm_command({"scancel", "--quiet", "--signal=TERM", m_status.job_id});
    if (result.exit_code != 0) {
      m_owner.log(fmt::format("scancel --signal=TERM failed ({}); signalling {} instead",
                              util::trim(result.err), m_launcher_name));
      ::kill(-m_launcher, SIGTERM);
    }
  }

  void handle_signals(const std::vector<int>& signals) {
    for (int signal : signals) {
      if (signal == SIGCHLD) continue;
      // Slurm signals the batch step for scancel, its time limit,
      // preemption and requeue; only a cancel request tells them apart.
      if (m_owner.cancel_requested()) {
        end_run(Ending::canceled, "canceled by user (amlrun cancel)", /*from_slurm=*/true);
      } else {
        end_run(Ending::interrupted,
                fmt::format("Slurm ended this attempt ({}); the job's state in Slurm says why",
                            launch::signal_name(signal)),
                /*from_slurm=*/true);
      }
    }
  }

  void kill_steps() {
    m_owner.log(fmt::format("ranks still running {} s after SIGTERM; sending SIGKILL",
                            m_owner.kill_grace_seconds()));
    auto steps = slurm_command(
        {"squeue", "--noheader", "--steps", "--jobs=" + m_status.job_id, "--format=%i"});
    for (const auto& line : util::split(steps.out, '\n')) {
      std::string step(util::trim(line));
      if (step.empty() || step.ends_with(".batch") || step.ends_with(".extern")) continue;
      slurm_command({"scancel", "--quiet", "--signal=KILL", step});
    }
    ::kill(-m_launcher, SIGKILL);
  }

  void wait_for_launcher() {
    std::int64_t timeout_deadline =
        m_plan.timeout_seconds ? util::monotonic_ms() + *m_plan.timeout_seconds * 1000 : 0;
    while (!m_launcher_done) {
      std::int64_t now = util::monotonic_ms();
      if (timeout_deadline && now >= timeout_deadline) {
        end_run(Ending::timeout, fmt::format("timeout: the run exceeded its time limit of {} s",
                                             *m_plan.timeout_seconds));
      }
      if (m_owner.kill_due(now)) {
        kill_steps();
        m_owner.mark_killed();
      }
      if (m_owner.ending() == Ending::none && m_owner.cancel_requested()) {
        end_run(Ending::canceled, "canceled by user (amlrun cancel)");
      }
      bool timing = timeout_deadline && m_owner.ending() == Ending::none;
      handle_signals(m_owner.wait(timing ? timeout_deadline : 0));
      int status = 0;
      pid_t pid = ::waitpid(m_launcher, &status, WNOHANG);
      if (pid == m_launcher) {
        m_launcher_done = true;
        m_exit_code = util::exit_code_of(status);
        m_owner.log(fmt::format("{} {}", m_launcher_name, describe_exit(m_exit_code)));
      }
    }
  }

  // outputs/ and logs/ move from the working directory into artifacts/,
  // which the submitting side collects; the working directory goes.
  void seal() {
    auto sealed = launch::seal_working_directory(
        m_layout, [this](const std::string& message) { m_owner.log(message); });
    m_status.warnings = sealed.warnings;
  }

  // The ranks can end before this batch step hears of Slurm's own reason
  // (a requeue, preemption, node failure, time limit or scancel kills the
  // steps first): a failure is the code's only while the job still runs.
  void check_for_slurm_ending() {
    if (m_owner.ending() != Ending::none || m_exit_code == 0) return;
    handle_signals(m_owner.pending_signals());
    if (m_owner.ending() != Ending::none) return;
    auto result = slurm_command(
        {"squeue", "--noheader", "--states=all", "--jobs=" + m_status.job_id, "--format=%T"});
    std::string state(util::trim(result.out));
    if (result.exit_code != 0 || state.empty() || state == "RUNNING") return;
    if (m_owner.cancel_requested()) {
      end_run(Ending::canceled, "canceled by user (amlrun cancel)", /*from_slurm=*/true);
    } else {
      end_run(Ending::interrupted,
              fmt::format("Slurm ended this attempt (job state {}) while the ranks ran", state),
              /*from_slurm=*/true);
    }
  }

  int finish() {
    stop_tracking();
    check_for_slurm_ending();
    if (m_owner.ending() == Ending::interrupted) {
      m_status.state = DriverState::interrupted;
      m_status.exit_code = m_exit_code;
      m_status.failure_reason = m_owner.ending_message();
      write_slurm_status(m_layout.root(), m_status);
      return m_exit_code == 0 ? 1 : m_exit_code;
    }
    m_status.state = DriverState::finalizing;
    write_slurm_status(m_layout.root(), m_status);
    seal();
    m_status.exit_code = m_exit_code;
    if (m_owner.ending() == Ending::timeout) {
      m_status.result = RunState::failed;
      m_status.failure_reason = "timeout";
    } else if (m_owner.ending() == Ending::canceled) {
      m_status.result = RunState::canceled;
      m_status.failure_reason = m_owner.ending_message();
    } else if (m_exit_code != 0) {
      m_status.result = RunState::failed;
      m_status.failure_reason = fmt::format("{} {}", m_launcher_name, describe_exit(m_exit_code));
      if (auto rank = failed_rank_from_srun_log(read_launcher_log())) {
        m_status.failure_reason = rank->reason;
        if (rank->exit_code) m_status.exit_code = rank->exit_code;
      }
    } else {
      m_status.result = RunState::completed;
    }
    m_status.state = DriverState::ended;
    m_status.ended_at = now_text();
    write_slurm_status(m_layout.root(), m_status);
    m_owner.log(
        fmt::format("ended: {}{}", store::to_string(*m_status.result),
                    m_status.failure_reason.empty() ? "" : " (" + m_status.failure_reason + ")"));
    int code = m_status.exit_code.value_or(m_exit_code);
    return code == 0 && m_status.result != RunState::completed ? 1 : code;
  }

  std::string read_launcher_log() {
    try {
      auto system =
          util::SafeDir::open(m_layout.root()).dir(store::RunTree::relative_system_logs());
      util::UniqueFd fd = system.open_file(m_launcher_log_name, O_RDONLY);
      return util::read_fd(fd.get(), system.path() / m_launcher_log_name);
    } catch (const std::exception&) {
      return "";
    }
  }

  int end_without_start(RunState result, const std::string& reason) {
    stop_tracking();
    m_status.state = DriverState::finalizing;
    write_slurm_status(m_layout.root(), m_status);
    seal();
    m_status.state = DriverState::ended;
    m_status.result = result;
    m_status.failure_reason = reason;
    m_status.ended_at = now_text();
    write_slurm_status(m_layout.root(), m_status);
    m_owner.log(fmt::format("ended: {} ({})", store::to_string(result), reason));
    return 1;
  }

  store::SlurmRunLayout m_layout;
  SlurmLaunchPlan m_plan;
  launch::RunOwner m_owner;
  spec::JobSpec m_spec;
  SlurmJobStatus m_status;
  pid_t m_launcher = -1;
  std::string m_launcher_name = "srun";
  std::string m_launcher_log_name = "srun.txt";
  bool m_launcher_done = false;
  int m_exit_code = 0;
  std::unique_ptr<tracking::TrackingEndpoint> m_tracking;
  std::string m_tracking_token;
};

}  // namespace

int run_slurm_job(const fs::path& run_dir) {
  try {
    SlurmDriver driver(run_dir);
    return driver.run();
  } catch (const std::exception& error) {
    std::string line = fmt::format("{} amlrun _slurm-run failed: {}\n", now_text(), error.what());
    ssize_t ignored = ::write(2, line.data(), line.size());
    (void)ignored;
    // Leave a result the submitting side can report, if the directory works.
    try {
      SlurmJobStatus status;
      if (const char* job = ::getenv("SLURM_JOB_ID")) status.job_id = job;
      status.state = DriverState::ended;
      status.result = RunState::failed;
      status.failure_reason = fmt::format("amlrun on the node: {}", error.what());
      status.ended_at = now_text();
      write_slurm_status(run_dir, status);
    } catch (const std::exception&) {
    }
    return 1;
  }
}

}  // namespace amlrun::compute
