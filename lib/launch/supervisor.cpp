#include "lib/launch/supervisor.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cstring>
#include <map>
#include <optional>

#include "lib/env/environment.hpp"
#include "lib/env/image.hpp"
#include "lib/env/runtime.hpp"
#include "lib/env/venv.hpp"
#include "lib/launch/inputs.hpp"
#include "lib/launch/process_tree.hpp"
#include "lib/launch/program.hpp"
#include "lib/launch/rank_environment.hpp"
#include "lib/launch/seal.hpp"
#include "lib/snapshot/snapshot.hpp"
#include "lib/spec/job_spec.hpp"
#include "lib/store/metric_ingest.hpp"
#include "lib/store/run_store.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/process.hpp"
#include "lib/util/time.hpp"
#include "lib/util/timing.hpp"

namespace amlrun::launch {

namespace fs = std::filesystem;
using store::RunState;

namespace {

std::string signal_name(int signal) {
  const char* abbreviation = ::sigabbrev_np(signal);
  return abbreviation ? fmt::format("SIG{}", abbreviation) : fmt::format("signal {}", signal);
}

// How a wait status reads in a failure reason.
std::string describe_exit(int code) {
  if (code > 128 && code < 128 + 65) {
    return fmt::format("was killed by {} (exit code {})", signal_name(code - 128), code);
  }
  return fmt::format("exited with code {}", code);
}

class Supervisor {
 public:
  Supervisor(const SupervisorOptions& options)
      : m_workspace(workspace::open_workspace({options.workspace_root, "/", false, nullptr})),
        m_store(m_workspace),
        m_record(m_store.load(options.run_id)),
        m_run_dir(m_store.run_dir(options.run_id)),
        m_working_dir(m_run_dir / "wd"),
        m_logs_dir(m_working_dir / "logs"),
        m_outputs_dir(m_working_dir / "outputs") {}

  int run() {
    util::timing_mark("supervisor opened the run");
    setup_signals();
    // Orphaned grandchildren are re-parented to us, so none escapes an ending.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    m_record.target["supervisor_pid"] = ::getpid();
    m_record.target["working_dir"] = m_working_dir.string();
    transition(RunState::preparing);
    if (cancel_requested())
      return finish_without_start(RunState::canceled, "canceled by user before it started");
    try {
      prepare();
    } catch (const std::exception& error) {
      log(fmt::format("preparing failed: {}", error.what()));
      return finish_without_start(RunState::failed, fmt::format("preparing: {}", error.what()));
    }
    if (cancel_requested())
      return finish_without_start(RunState::canceled, "canceled by user before it started");
    transition(RunState::starting);
    try {
      start_processes();
    } catch (const std::exception& error) {
      log(fmt::format("starting failed: {}", error.what()));
      stop_everything();
      return finish_without_start(RunState::failed, fmt::format("starting: {}", error.what()));
    }
    nlohmann::json groups = nlohmann::json::array();
    for (pid_t group : m_groups) {
      groups.push_back({{"pgid", group}, {"start_time", process_start_time(group)}});
    }
    // Recorded so that the run's processes can be ended even if this
    // supervisor is killed (see LocalTarget::refresh).
    m_record.target["process_groups"] = groups;
    transition(RunState::running);
    wait_for_processes();
    transition(RunState::finalizing);
    stop_everything();
    ingest_metrics(/*final=*/true);
    seal();
    return finish();
  }

 private:
  void log(const std::string& message) {
    std::string line = fmt::format("{} {}\n", util::utc_iso8601(util::Clock::now()), message);
    ssize_t ignored = ::write(2, line.data(), line.size());
    (void)ignored;
  }

  void transition(RunState next) {
    util::timing_mark(fmt::format("before {}", store::to_string(next)));
    m_store.transition(m_record, next);
    util::timing_mark(fmt::format("recorded {}", store::to_string(next)));
    log(fmt::format("state {}", store::to_string(next)));
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

  void prepare() {
    m_spec = spec::job_spec_from_json(
        nlohmann::ordered_json::parse(util::read_file(m_run_dir / "job.json")));
    if (!m_record.snapshot_id.empty()) {
      auto mode = m_workspace.config().materialize == "copy" ? snapshot::MaterializeMode::copy
                                                             : snapshot::MaterializeMode::hardlink;
      auto start = util::monotonic_ms();
      snapshot::materialize(m_workspace.snapshots_dir(), m_record.snapshot_id, m_working_dir, mode);
      log(fmt::format("snapshot {} materialized ({}) in {} ms", m_record.snapshot_id.substr(0, 12),
                      m_workspace.config().materialize, util::monotonic_ms() - start));
    } else {
      fs::create_directories(m_working_dir);
    }
    for (const char* reserved : {"outputs", "logs"}) {
      if (fs::exists(m_working_dir / reserved)) {
        log(
            fmt::format("note: the source directory has a top-level {}/ folder; its files become "
                        "part of the run's {}",
                        reserved, reserved));
      }
    }
    for (const auto& dir :
         {m_outputs_dir, m_logs_dir / "user_logs", m_logs_dir / "system", m_logs_dir / "metrics"}) {
      fs::create_directories(dir);
    }
    for (const auto& output : m_spec.outputs) {
      fs::create_directories(m_outputs_dir / output.name);
      m_outputs.emplace_back(output.name, (m_outputs_dir / output.name).string());
    }
    // A private mount namespace only when there is something to mount
    // (unshare copies the mount table, which is not free).
    bool local_inputs = false;
    for (const auto& input : m_spec.inputs) {
      local_inputs |= input.kind != spec::InputSpec::Kind::literal && input.url.empty();
    }
    bool private_mounts = local_inputs && enter_private_mount_namespace();
    m_inputs = prepare_inputs(m_spec, m_run_dir, private_mounts,
                              [this](const std::string& message) { log(message); });
    prepare_environment();
  }

  // host: nothing to do; venv: build or reuse it; container: build or reuse
  // the image. The run record says which, and whether the cache was hit.
  void prepare_environment() {
    auto record = nlohmann::json::parse(util::read_file(m_run_dir / "environment.json"));
    m_environment_mode = record.value("mode", "host");
    std::string hash = record.value("hash", "");
    const auto& settings = m_workspace.config().environments;
    env::Environment environment = env::environment_from_canonical(record["canonical"]);
    environment.build_context = record.value("build_context", "");
    nlohmann::json facts = {{"mode", m_environment_mode}, {"hash", hash}};
    if (m_environment_mode == "venv") {
      env::VenvRequest request{environment, hash, m_workspace.environments_dir(), settings,
                               m_logs_dir / "system" / "env_build.txt"};
      auto venv = env::ensure_venv(request);
      m_venv = venv.directory;
      facts["cache_hit"] = venv.cache_hit;
      facts["seconds"] = venv.seconds;
      facts["venv"] = venv.directory.string();
      facts["python"] = venv.python;
      log(fmt::format("environment {}: venv {} ({})", hash.substr(0, 12), venv.directory.string(),
                      venv.cache_hit ? "cached" : fmt::format("built in {:.1f} s", venv.seconds)));
    } else if (m_environment_mode == "container") {
      m_container.runtime = settings.runtime;
      m_container.gpu = environment.gpu;
      m_container.shm_size = environment.shm_size;
      auto image = env::ensure_image(
          settings.runtime, environment, hash, m_run_dir / "environment-context",
          m_workspace.environments_dir(), m_logs_dir / "system" / "env_build.txt");
      m_container.image = image.image;
      facts["cache_hit"] = image.cache_hit;
      facts["seconds"] = image.seconds;
      facts["image"] = image.image;
      log(fmt::format(
          "environment {}: image {} ({})", hash.substr(0, 12), image.image,
          image.cache_hit ? "cached" : fmt::format("built in {:.1f} s", image.seconds)));
    }
    m_record.target["environment"] = facts;
  }

  // The run's environment with the venv first in PATH.
  std::vector<std::string> environment_for_runs(const RunContext& context) const {
    auto environment = run_environment(context, util::current_environment());
    if (!m_venv.empty()) {
      auto path = util::get_env(environment, "PATH").value_or("/usr/bin:/bin");
      util::set_env(environment, "PATH", (m_venv / "bin").string() + ":" + path);
      util::set_env(environment, "VIRTUAL_ENV", m_venv.string());
      std::erase_if(environment,
                    [](const std::string& e) { return e.rfind("PYTHONHOME=", 0) == 0; });
    }
    return environment;
  }

  // In container mode every rank's program runs inside the image, with the
  // working directory and inputs mounted where they are on the host.
  std::vector<std::string> wrap_for_container(const std::vector<std::string>& program,
                                              const std::vector<std::string>& environment) const {
    if (m_environment_mode != "container") return program;
    env::ContainerRun run = m_container;
    run.working_dir = m_working_dir;
    run.mounts = {{m_working_dir, false}};
    if (fs::exists(m_run_dir / "inputs")) run.mounts.emplace_back(m_run_dir / "inputs", true);
    static const std::vector<std::string> host_only = {"PATH",  "HOME",   "HOSTNAME", "PWD",
                                                       "SHLVL", "OLDPWD", "TERM",     "_"};
    auto base = util::current_environment();
    for (const auto& entry : environment) {
      std::string name = entry.substr(0, entry.find('='));
      bool inherited = std::find(base.begin(), base.end(), entry) != base.end();
      if (!inherited && std::find(host_only.begin(), host_only.end(), name) == host_only.end()) {
        run.variables.push_back(name);
      }
    }
    run.program = program;
    return env::run_command(run);
  }

  RunContext context() const {
    RunContext c;
    c.run_id = m_record.id;
    c.experiment = m_record.experiment;
    c.workspace_root = m_workspace.root();
    c.run_dir = m_run_dir;
    c.working_dir = m_working_dir;
    c.outputs_dir = m_outputs_dir;
    c.logs_dir = m_logs_dir;
    c.inputs = m_inputs;
    c.outputs = m_outputs;
    c.user_variables = m_spec.environment_variables;
    c.distribution = m_spec.distribution.type;
    c.backend = m_spec.distribution.backend;
    c.instance_count = m_spec.instance_count;
    c.processes_per_instance = m_spec.distribution.process_count_per_instance;
    c.master_port = derive_master_port(m_record.id);
    return c;
  }

  void start_processes() {
    RunContext c = context();
    auto environment = environment_for_runs(c);
    m_program = user_program(m_spec, m_inputs, environment, m_environment_mode != "container");
    m_record.target["master_port"] = c.master_port;
    if (m_spec.distribution.type == spec::DistributionType::mpi) {
      MpiLaunch launch;
      launch.processes = c.world_size();
      launch.rank_command = {amlrun_executable().string(),
                             "_rank-exec",
                             "--logs",
                             m_logs_dir.string(),
                             "--processes-per-node",
                             std::to_string(c.processes_per_instance),
                             "--"};
      auto wrapped = wrap_for_container(m_program, environment);
      launch.rank_command.insert(launch.rank_command.end(), wrapped.begin(), wrapped.end());
      if (c.distribution != spec::DistributionType::none) {
        util::set_env(environment, "MASTER_ADDR", c.master_address);
        util::set_env(environment, "MASTER_PORT", std::to_string(c.master_port));
      }
      util::UniqueFd launcher_log(::open((m_logs_dir / "system" / "mpirun.txt").c_str(),
                                         O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
      util::SpawnOptions options;
      options.argv = mpirun_command(launch);
      options.cwd = m_working_dir;
      options.environment = environment;
      options.stdout_fd = launcher_log.get();
      options.stderr_fd = launcher_log.get();
      options.new_process_group = true;
      log(fmt::format("starting {} MPI rank{} with {}", launch.processes,
                      launch.processes == 1 ? "" : "s", options.argv[0]));
      pid_t pid = util::spawn(options);
      m_ranks.push_back({-1, pid});
      m_groups.push_back(pid);
      return;
    }
    for (int rank = 0; rank < c.world_size(); ++rank) {
      auto rank_environment = environment;
      add_rank_environment(rank_environment, c, rank);
      util::UniqueFd log_fd(::open(rank_log_path(m_logs_dir, rank).c_str(),
                                   O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
      if (!log_fd) util::throw_errno("cannot open the rank log");
      util::SpawnOptions options;
      options.argv = wrap_for_container(m_program, rank_environment);
      options.cwd = m_working_dir;
      options.environment = rank_environment;
      options.stdout_fd = log_fd.get();
      options.stderr_fd = log_fd.get();
      options.new_process_group = true;
      pid_t pid = util::spawn(options);
      m_ranks.push_back({rank, pid});
      m_groups.push_back(pid);
    }
    log(fmt::format("started {} process{}: {}", m_ranks.size(), m_ranks.size() == 1 ? "" : "es",
                    m_program[0]));
  }

  // Reaps every exited child (ranks and re-parented orphans).
  void reap() {
    for (;;) {
      int status = 0;
      pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid <= 0) return;
      for (auto& rank : m_ranks) {
        if (rank.pid != pid || rank.done) continue;
        rank.done = true;
        rank.exit_code = util::exit_code_of(status);
        std::string who = rank.rank < 0 ? "mpirun" : fmt::format("rank {}", rank.rank);
        log(fmt::format("{} (pid {}) {}", who, pid, describe_exit(rank.exit_code)));
        if (rank.exit_code != 0 && m_ending == Ending::none) {
          m_first_failure = &rank - &m_ranks[0];
          if (!all_done()) {
            begin_ending(Ending::rank_failed, fmt::format("{} {}; stopping the other ranks", who,
                                                          describe_exit(rank.exit_code)));
          }
        }
      }
    }
  }

  bool all_done() const {
    for (const auto& rank : m_ranks) {
      if (!rank.done) return false;
    }
    return true;
  }

  enum class Ending { none, rank_failed, timeout, canceled, interrupted };

  void begin_ending(Ending why, const std::string& message) {
    if (m_ending != Ending::none) return;
    m_ending = why;
    m_ending_message = message;
    log(message);
    signal_all(m_groups, SIGTERM);
    m_kill_deadline = util::monotonic_ms() + m_workspace.config().kill_grace_seconds * 1000LL;
  }

  void wait_for_processes() {
    std::int64_t timeout_deadline =
        m_spec.timeout_seconds ? util::monotonic_ms() + *m_spec.timeout_seconds * 1000 : 0;
    while (!all_done()) {
      std::int64_t now = util::monotonic_ms();
      if (timeout_deadline && now >= timeout_deadline && m_ending == Ending::none) {
        begin_ending(Ending::timeout,
                     fmt::format("timeout: the run exceeded its time limit of {} s",
                                 *m_spec.timeout_seconds));
      }
      if (m_ending != Ending::none && !m_killed && now >= m_kill_deadline) {
        log(fmt::format("processes still running {} s after SIGTERM; sending SIGKILL",
                        m_workspace.config().kill_grace_seconds));
        signal_all(m_groups, SIGKILL);
        m_killed = true;
      }
      if (m_ending == Ending::none && cancel_requested()) {
        begin_ending(Ending::canceled, "canceled by user (amlrun cancel)");
      }
      // Wake for the next deadline, or at least once a second to see a
      // cancel request whose signal went astray.
      std::int64_t wake = now + 1000;
      if (timeout_deadline && m_ending == Ending::none) wake = std::min(wake, timeout_deadline);
      if (m_ending != Ending::none && !m_killed) wake = std::min(wake, m_kill_deadline);
      if (m_killed) wake = std::min(wake, now + 50);
      struct pollfd fd = {m_signal_fd.get(), POLLIN, 0};
      ::poll(&fd, 1, static_cast<int>(std::max<std::int64_t>(0, wake - now)));
      signalfd_siginfo info;
      while (::read(m_signal_fd.get(), &info, sizeof info) == sizeof info) {
        int signal = static_cast<int>(info.ssi_signo);
        if (signal == SIGUSR1 && cancel_requested()) {
          begin_ending(Ending::canceled, "canceled by user (amlrun cancel)");
        } else if (signal == SIGTERM || signal == SIGINT || signal == SIGHUP) {
          begin_ending(Ending::interrupted,
                       fmt::format("interrupted: the supervisor received {}", signal_name(signal)));
        }
      }
      reap();
      if (util::monotonic_ms() >= m_next_metrics_ms) ingest_metrics(/*final=*/false);
    }
  }

  // Stores what the ranks appended to their metrics files. Never fatal: a
  // failure is logged and the next pass (or the final one) tries again.
  void ingest_metrics(bool final) {
    m_next_metrics_ms = util::monotonic_ms() + k_metrics_interval_ms;
    try {
      if (!m_metrics) {
        m_metrics.emplace(m_store, m_record.id, m_logs_dir / "metrics");
      }
      auto pass = m_metrics->ingest(final, k_metrics_bytes_per_pass);
      if (final && (pass.points > 0 || pass.skipped > 0)) {
        log(fmt::format("metrics: {} points stored in the last pass, {} lines skipped", pass.points,
                        pass.skipped));
      }
    } catch (const std::exception& error) {
      log(fmt::format("metrics: ingestion failed (the run goes on): {}", error.what()));
    }
  }

  // Ends whatever is left: daemons and grandchildren that outlived the ranks.
  void stop_everything() {
    reap();
    if (list_descendants(::getpid()).empty()) return;
    log("ending processes the run left behind");
    signal_all(m_groups, SIGTERM);
    std::int64_t deadline = util::monotonic_ms() + m_workspace.config().kill_grace_seconds * 1000LL;
    while (!list_descendants(::getpid()).empty() && util::monotonic_ms() < deadline) {
      reap();
      ::usleep(10000);
    }
    for (int attempt = 0; attempt < 500 && !list_descendants(::getpid()).empty(); ++attempt) {
      signal_all(m_groups, SIGKILL);
      reap();
      ::usleep(10000);
    }
    reap();
  }

  // outputs/ and logs/ leave the working directory for artifacts/; the
  // working directory (hard links of the snapshot) goes.
  void seal() {
    fs::path artifacts = m_run_dir / "artifacts";
    fs::create_directories(artifacts);
    std::error_code error;
    fs::copy_file(m_run_dir / k_supervisor_log_file, m_logs_dir / "system" / "supervisor.txt",
                  fs::copy_options::overwrite_existing, error);
    seal_working_directory(m_working_dir, artifacts,
                           [this](const std::string& message) { log(message); });
  }

  int finish() {
    int exit_code = 0;
    if (m_first_failure >= 0) {
      exit_code = m_ranks[static_cast<std::size_t>(m_first_failure)].exit_code;
    } else if (!m_ranks.empty()) {
      exit_code = m_ranks[0].exit_code;
      for (const auto& rank : m_ranks) {
        if (rank.exit_code != 0) exit_code = rank.exit_code;
      }
    }
    m_record.exit_code = exit_code;
    RunState final_state = RunState::completed;
    switch (m_ending) {
      case Ending::none:
        if (exit_code != 0) {
          final_state = RunState::failed;
          const auto& failed = m_ranks[static_cast<std::size_t>(std::max(0L, m_first_failure))];
          m_record.failure_reason =
              fmt::format("{} {}", failed.rank < 0 ? "mpirun" : fmt::format("rank {}", failed.rank),
                          describe_exit(exit_code));
        }
        break;
      case Ending::rank_failed:
      case Ending::timeout:
      case Ending::interrupted:
        final_state = RunState::failed;
        m_record.failure_reason = m_ending_message;
        break;
      case Ending::canceled:
        final_state = RunState::canceled;
        m_record.failure_reason = m_ending_message;
        break;
    }
    if (m_ending == Ending::timeout) m_record.failure_reason = "timeout";
    if (m_ending == Ending::timeout) m_record.target["timeout_seconds"] = *m_spec.timeout_seconds;
    transition(final_state);
    return 0;
  }

  int finish_without_start(RunState state, const std::string& reason) {
    m_record.failure_reason = reason;
    if (m_record.state == RunState::preparing || m_record.state == RunState::starting) {
      std::error_code error;
      if (fs::exists(m_working_dir, error)) {
        transition(RunState::finalizing);
        seal();
      }
    }
    transition(state);
    return 0;
  }

  struct Rank {
    int rank;  // -1 for the mpirun process
    pid_t pid;
    bool done = false;
    int exit_code = 0;
  };

  workspace::Workspace m_workspace;
  store::RunStore m_store;
  store::RunRecord m_record;
  spec::JobSpec m_spec;
  fs::path m_run_dir;
  fs::path m_working_dir;
  fs::path m_logs_dir;
  fs::path m_outputs_dir;
  std::vector<std::pair<std::string, std::string>> m_inputs;
  std::vector<std::pair<std::string, std::string>> m_outputs;
  std::vector<std::string> m_program;
  std::string m_environment_mode = "host";
  fs::path m_venv;
  env::ContainerRun m_container;
  std::vector<Rank> m_ranks;
  std::vector<pid_t> m_groups;
  util::UniqueFd m_signal_fd;
  Ending m_ending = Ending::none;
  std::string m_ending_message;
  std::int64_t m_kill_deadline = 0;
  bool m_killed = false;
  long m_first_failure = -1;
  // Created on the first pass; it resumes from the index if it ever has to be.
  std::optional<store::MetricIngestor> m_metrics;
  std::int64_t m_next_metrics_ms = 0;
  // Metrics show up in `amlrun show` within about this long.
  static constexpr std::int64_t k_metrics_interval_ms = 1000;
  // About a quarter of a second of work; a flood waits for later passes.
  static constexpr std::int64_t k_metrics_bytes_per_pass = 16 << 20;
};

}  // namespace

int supervise_run(const SupervisorOptions& options) {
  // The lock stays held for as long as this process lives; readers take its
  // absence as "the supervisor is gone". The run's processes must not
  // inherit it, or they would keep a dead supervisor looking alive.
  if (options.lock_fd >= 0) ::fcntl(options.lock_fd, F_SETFD, FD_CLOEXEC);
  try {
    Supervisor supervisor(options);
    return supervisor.run();
  } catch (const std::exception& error) {
    std::string line = fmt::format("{} supervisor failed: {}\n",
                                   util::utc_iso8601(util::Clock::now()), error.what());
    ssize_t ignored = ::write(2, line.data(), line.size());
    (void)ignored;
    // Record the failure if the store still works; `amlrun show` reconciles otherwise.
    try {
      auto workspace = workspace::open_workspace({options.workspace_root, "/", false, nullptr});
      store::RunStore store(workspace);
      auto record = store.load(options.run_id);
      if (!store::is_terminal(record.state)) {
        record.failure_reason = fmt::format("supervisor error: {}", error.what());
        store.transition(record, RunState::failed);
      }
    } catch (const std::exception&) {
    }
    return 1;
  }
}

}  // namespace amlrun::launch
