// `amlrun _slurm-run`: the node-side half of a Slurm run. The batch script
// execs it on the first node of the allocation; it starts the ranks with
// srun (or mpirun), enforces the job's timeout and a user's cancel the way
// the local supervisor does, seals ./outputs and ./logs, and reports each
// step through status.json, which the submitting side reads. Slurm's own
// endings (time limit, preemption, node failure, requeue) are left to Slurm:
// the driver then records "interrupted" and seals nothing, so a requeued job
// finds its working directory as it was.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cstdlib>
#include <cstring>
#include <regex>

#include "lib/env/environment.hpp"
#include "lib/env/venv.hpp"
#include "lib/launch/program.hpp"
#include "lib/launch/rank_environment.hpp"
#include "lib/launch/seal.hpp"
#include "lib/launch/slurm_job.hpp"
#include "lib/launch/slurm_launch.hpp"
#include "lib/launch/supervisor.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/process.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/time.hpp"

namespace amlrun::launch {

namespace {

constexpr std::chrono::milliseconds k_slurm_command_timeout{15000};

std::string signal_name(int signal) {
  const char* abbreviation = ::sigabbrev_np(signal);
  return abbreviation ? fmt::format("SIG{}", abbreviation) : fmt::format("signal {}", signal);
}

std::string describe_exit(int code) {
  if (code > 128 && code < 128 + 65) {
    return fmt::format("was killed by {} (exit code {})", signal_name(code - 128), code);
  }
  return fmt::format("exited with code {}", code);
}

std::string required_variable(const char* name) {
  const char* value = ::getenv(name);
  if (!value || !*value) {
    throw util::InfraError(
        fmt::format("{} is not set: amlrun _slurm-run runs inside a Slurm batch job", name));
  }
  return value;
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
  explicit SlurmDriver(fs::path run_dir)
      : m_run_dir(std::move(run_dir)),
        m_working_dir(m_run_dir / "wd"),
        m_logs_dir(m_working_dir / "logs") {}

  int run() {
    setup_signals();
    m_plan = slurm_launch_plan_from_json(util::read_file(m_run_dir / k_slurm_launch_file));
    m_spec = spec::job_spec_from_json(
        nlohmann::ordered_json::parse(util::read_file(m_run_dir / k_slurm_job_spec_file)));
    m_status.job_id = required_variable("SLURM_JOB_ID");
    const char* restarts = ::getenv("SLURM_RESTART_COUNT");
    m_status.attempt = 1 + (restarts ? std::atoi(restarts) : 0);
    m_status.nodes = allocation_nodes();
    if (auto previous = read_slurm_status(m_run_dir)) m_status.started = previous->started;
    log(fmt::format("attempt {} of job {} on {}", m_status.attempt, m_status.job_id,
                    util::join(m_status.nodes, ",")));
    if (m_status.attempt > 1) mark_new_attempt();
    if (cancel_requested()) {
      return end_without_start("Canceled", "canceled by user before it started");
    }
    try {
      start();
    } catch (const std::exception& error) {
      log(fmt::format("starting failed: {}", error.what()));
      return end_without_start("Failed", fmt::format("starting: {}", error.what()));
    }
    wait_for_launcher();
    return finish();
  }

 private:
  enum class Ending { none, timeout, canceled, interrupted };

  void log(const std::string& message) {
    std::string line = fmt::format("{} {}\n", util::utc_iso8601(util::Clock::now()), message);
    ssize_t ignored = ::write(2, line.data(), line.size());
    (void)ignored;
  }

  void setup_signals() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&set, s);
    ::sigprocmask(SIG_BLOCK, &set, nullptr);
    m_signal_fd = util::UniqueFd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
    if (!m_signal_fd) util::throw_errno("signalfd");
  }

  bool cancel_requested() const { return fs::exists(m_run_dir / k_cancel_request_file); }

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

  // Logs are appended per attempt; a line in each says where one begins.
  void mark_new_attempt() {
    std::string marker =
        fmt::format("--- amlrun: attempt {} of Slurm job {} (the job was requeued) ---\n",
                    m_status.attempt, m_status.job_id);
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(m_logs_dir / "user_logs", error)) {
      util::UniqueFd fd(::open(entry.path().c_str(), O_WRONLY | O_APPEND | O_CLOEXEC));
      if (fd) util::write_all(fd.get(), marker, "cannot mark the attempt");
    }
  }

  RunContext context() const {
    RunContext c;
    c.run_id = m_plan.run_id;
    c.experiment = m_plan.experiment;
    c.workspace_root = m_plan.workspace_root;
    c.run_dir = m_run_dir;
    c.working_dir = m_working_dir;
    c.outputs_dir = m_working_dir / "outputs";
    c.logs_dir = m_logs_dir;
    c.inputs = m_plan.inputs;
    c.outputs = m_plan.outputs;
    c.user_variables = decode_environment_file(
        util::read_file(m_run_dir / k_slurm_environment_file), k_slurm_environment_file);
    c.distribution = m_spec.distribution.type;
    c.backend = m_spec.distribution.backend;
    c.instance_count = m_spec.instance_count;
    c.processes_per_instance = m_spec.distribution.process_count_per_instance;
    c.master_address = m_status.nodes.front();
    c.master_port = slurm_master_port(m_status.job_id);
    return c;
  }

  // venv mode: the environment's venv under shared_dir, built here on the
  // first node (so with the nodes' own python) once, then first in PATH on
  // every node.
  void use_venv(std::vector<std::string>& environment) {
    auto record =
        nlohmann::json::parse(util::read_file(m_run_dir / k_slurm_environment_record_file));
    env::Environment wanted = env::environment_from_canonical(record["canonical"]);
    wanted.build_context = record.value("build_context", "");
    workspace::EnvironmentSettings settings;
    settings.python = m_plan.venv_python;
    settings.system_site_packages = m_plan.venv_system_site_packages;
    env::VenvRequest request{wanted, record.value("hash", ""), m_plan.shared_dir / "environments",
                             settings, m_logs_dir / "system" / "env_build.txt"};
    auto venv = env::ensure_venv(request);
    log(fmt::format("environment {}: venv {} ({})", request.hash.substr(0, 12),
                    venv.directory.string(),
                    venv.cache_hit ? "cached" : fmt::format("built in {:.1f} s", venv.seconds)));
    auto path = util::get_env(environment, "PATH").value_or("/usr/bin:/bin");
    util::set_env(environment, "PATH", (venv.directory / "bin").string() + ":" + path);
    util::set_env(environment, "VIRTUAL_ENV", venv.directory.string());
    std::erase_if(environment, [](const std::string& e) { return e.rfind("PYTHONHOME=", 0) == 0; });
  }

  void start() {
    RunContext c = context();
    auto environment = run_environment(c, util::current_environment());
    if (m_plan.venv && !m_plan.container) use_venv(environment);
    if (c.distribution != spec::DistributionType::none) {
      util::set_env(environment, "MASTER_ADDR", c.master_address);
      util::set_env(environment, "MASTER_PORT", std::to_string(c.master_port));
    }
    SlurmRankLaunch launch;
    launch.distribution = c.distribution;
    launch.nodes = c.instance_count;
    launch.tasks_per_node = c.processes_per_instance;
    launch.amlrun = amlrun_executable();
    launch.logs_dir = m_logs_dir;
    launch.working_dir = m_working_dir;
    launch.shared_dir = m_plan.shared_dir;
    // In a container, program names are looked up in the image's PATH.
    launch.program = user_program(m_spec, c.inputs, environment, !m_plan.container);
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
        launch.hostfile = m_run_dir / "hostfile";
        util::write_file_atomic(launch.hostfile,
                                mpirun_hostfile(m_status.nodes, c.processes_per_instance));
        log("srun offers no PMIx; starting the ranks with mpirun and a hostfile");
      }
    }
    m_launcher_name =
        launch.distribution == spec::DistributionType::mpi && !launch.pmix ? "mpirun" : "srun";
    m_launcher_log = m_logs_dir / "system" / (m_launcher_name + ".txt");
    util::UniqueFd launcher_log(
        ::open(m_launcher_log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
    if (!launcher_log) util::throw_errno(fmt::format("cannot open {}", m_launcher_log.string()));
    util::SpawnOptions options;
    options.argv = slurm_rank_command(launch);
    options.cwd = m_working_dir;
    options.environment = environment;
    options.stdout_fd = launcher_log.get();
    options.stderr_fd = launcher_log.get();
    options.new_process_group = true;
    m_status.state = "running";
    m_status.started = true;
    write_slurm_status(m_run_dir, m_status);
    m_launcher = util::spawn(options);
    log(fmt::format("started {} rank{} with {}", c.world_size(), c.world_size() == 1 ? "" : "s",
                    m_launcher_name));
  }

  // Asks every rank to end: SIGTERM to the job's steps (not to this batch
  // step), which the ranks receive directly from slurmstepd; srun itself
  // would answer SIGTERM by killing the step without a grace period.
  // `from_slurm`: Slurm signalled this batch step (scancel, time limit,
  // preemption, requeue) and signals the steps itself.
  void begin_ending(Ending why, const std::string& message, bool from_slurm = false) {
    if (m_ending != Ending::none) return;
    m_ending = why;
    m_ending_message = message;
    log(message);
    if (!from_slurm) {
      auto result = slurm_command({"scancel", "--quiet", "--signal=TERM", m_status.job_id});
      if (result.exit_code != 0) {
        log(fmt::format("scancel --signal=TERM failed ({}); signalling {} instead",
                        util::trim(result.err), m_launcher_name));
        ::kill(-m_launcher, SIGTERM);
      }
    }
    m_kill_deadline = util::monotonic_ms() + m_plan.kill_grace_seconds * 1000LL;
  }

  void handle_signals() {
    signalfd_siginfo info;
    while (::read(m_signal_fd.get(), &info, sizeof info) == sizeof info) {
      int signal = static_cast<int>(info.ssi_signo);
      if (signal == SIGCHLD) continue;
      // Slurm signals the batch step for scancel, its time limit,
      // preemption and requeue; only a cancel request tells them apart.
      if (cancel_requested()) {
        begin_ending(Ending::canceled, "canceled by user (amlrun cancel)", /*from_slurm=*/true);
      } else {
        begin_ending(Ending::interrupted,
                     fmt::format("Slurm ended this attempt ({}); the job's state in Slurm says why",
                                 signal_name(signal)),
                     /*from_slurm=*/true);
      }
    }
  }

  void kill_steps() {
    log(fmt::format("ranks still running {} s after SIGTERM; sending SIGKILL",
                    m_plan.kill_grace_seconds));
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
    std::int64_t next_cancel_check = 0;
    while (!m_launcher_done) {
      std::int64_t now = util::monotonic_ms();
      if (timeout_deadline && now >= timeout_deadline && m_ending == Ending::none) {
        begin_ending(Ending::timeout,
                     fmt::format("timeout: the run exceeded its time limit of {} s",
                                 *m_plan.timeout_seconds));
      }
      if (m_ending != Ending::none && !m_killed && now >= m_kill_deadline) {
        kill_steps();
        m_killed = true;
      }
      if (m_ending == Ending::none && now >= next_cancel_check) {
        if (cancel_requested()) begin_ending(Ending::canceled, "canceled by user (amlrun cancel)");
        next_cancel_check = now + 1000;
      }
      std::int64_t wake = now + 1000;
      if (timeout_deadline && m_ending == Ending::none) wake = std::min(wake, timeout_deadline);
      if (m_ending != Ending::none && !m_killed) wake = std::min(wake, m_kill_deadline);
      struct pollfd fd = {m_signal_fd.get(), POLLIN, 0};
      ::poll(&fd, 1, static_cast<int>(std::max<std::int64_t>(0, wake - now)));
      handle_signals();
      int status = 0;
      pid_t pid = ::waitpid(m_launcher, &status, WNOHANG);
      if (pid == m_launcher) {
        m_launcher_done = true;
        m_exit_code = util::exit_code_of(status);
        log(fmt::format("{} {}", m_launcher_name, describe_exit(m_exit_code)));
      }
    }
  }

  // outputs/ and logs/ move from the working directory into artifacts/,
  // which the submitting side collects; the working directory goes.
  void seal() {
    fs::path artifacts = m_run_dir / "artifacts";
    std::error_code error;
    fs::create_directories(artifacts, error);
    seal_working_directory(m_working_dir, artifacts,
                           [this](const std::string& message) { log(message); });
  }

  // The ranks can end before this batch step hears of Slurm's own reason
  // (a requeue, preemption, node failure, time limit or scancel kills the
  // steps first): a failure is the code's only while the job still runs.
  void check_for_slurm_ending() {
    if (m_ending != Ending::none || m_exit_code == 0) return;
    handle_signals();
    if (m_ending != Ending::none) return;
    auto result = slurm_command(
        {"squeue", "--noheader", "--states=all", "--jobs=" + m_status.job_id, "--format=%T"});
    std::string state(util::trim(result.out));
    if (result.exit_code != 0 || state.empty() || state == "RUNNING") return;
    if (cancel_requested()) {
      begin_ending(Ending::canceled, "canceled by user (amlrun cancel)", /*from_slurm=*/true);
    } else {
      begin_ending(
          Ending::interrupted,
          fmt::format("Slurm ended this attempt (job state {}) while the ranks ran", state),
          /*from_slurm=*/true);
    }
  }

  int finish() {
    check_for_slurm_ending();
    if (m_ending == Ending::interrupted) {
      m_status.state = "interrupted";
      m_status.exit_code = m_exit_code;
      m_status.failure_reason = m_ending_message;
      write_slurm_status(m_run_dir, m_status);
      return m_exit_code == 0 ? 1 : m_exit_code;
    }
    m_status.state = "finalizing";
    write_slurm_status(m_run_dir, m_status);
    seal();
    m_status.exit_code = m_exit_code;
    if (m_ending == Ending::timeout) {
      m_status.result = "Failed";
      m_status.failure_reason = "timeout";
    } else if (m_ending == Ending::canceled) {
      m_status.result = "Canceled";
      m_status.failure_reason = m_ending_message;
    } else if (m_exit_code != 0) {
      m_status.result = "Failed";
      m_status.failure_reason = fmt::format("{} {}", m_launcher_name, describe_exit(m_exit_code));
      if (auto rank = failed_rank_from_srun_log(read_launcher_log())) {
        m_status.failure_reason = rank->reason;
        if (rank->exit_code) m_status.exit_code = rank->exit_code;
      }
    } else {
      m_status.result = "Completed";
    }
    m_status.state = "ended";
    write_slurm_status(m_run_dir, m_status);
    log(fmt::format("ended: {}{}", m_status.result,
                    m_status.failure_reason.empty() ? "" : " (" + m_status.failure_reason + ")"));
    int code = m_status.exit_code.value_or(m_exit_code);
    return code == 0 && m_status.result != "Completed" ? 1 : code;
  }

  std::string read_launcher_log() {
    try {
      return util::read_file(m_run_dir / "artifacts" / "logs" / "system" /
                             m_launcher_log.filename());
    } catch (const std::exception&) {
      return "";
    }
  }

  int end_without_start(const std::string& result, const std::string& reason) {
    m_status.state = "finalizing";
    write_slurm_status(m_run_dir, m_status);
    seal();
    m_status.state = "ended";
    m_status.result = result;
    m_status.failure_reason = reason;
    write_slurm_status(m_run_dir, m_status);
    log(fmt::format("ended: {} ({})", result, reason));
    return 1;
  }

  fs::path m_run_dir;
  fs::path m_working_dir;
  fs::path m_logs_dir;
  SlurmLaunchPlan m_plan;
  spec::JobSpec m_spec;
  SlurmJobStatus m_status;
  util::UniqueFd m_signal_fd;
  pid_t m_launcher = -1;
  std::string m_launcher_name = "srun";
  fs::path m_launcher_log;
  bool m_launcher_done = false;
  int m_exit_code = 0;
  Ending m_ending = Ending::none;
  std::string m_ending_message;
  std::int64_t m_kill_deadline = 0;
  bool m_killed = false;
};

}  // namespace

int run_slurm_job(const fs::path& run_dir) {
  try {
    SlurmDriver driver(run_dir);
    return driver.run();
  } catch (const std::exception& error) {
    std::string line = fmt::format("{} amlrun _slurm-run failed: {}\n",
                                   util::utc_iso8601(util::Clock::now()), error.what());
    ssize_t ignored = ::write(2, line.data(), line.size());
    (void)ignored;
    // Leave a result the submitting side can report, if the directory works.
    try {
      SlurmJobStatus status;
      if (const char* job = ::getenv("SLURM_JOB_ID")) status.job_id = job;
      status.state = "ended";
      status.result = "Failed";
      status.failure_reason = fmt::format("amlrun on the node: {}", error.what());
      write_slurm_status(run_dir, status);
    } catch (const std::exception&) {
    }
    return 1;
  }
}

}  // namespace amlrun::launch
