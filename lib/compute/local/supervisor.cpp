#include "lib/compute/local/supervisor.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <atomic>
#include <cstring>
#include <optional>
#include <thread>

#include "lib/compute/local/container_run.hpp"
#include "lib/compute/local/local_state.hpp"
#include "lib/compute/local/process_tree.hpp"
#include "lib/env/containers.hpp"
#include "lib/env/environment.hpp"
#include "lib/env/image.hpp"
#include "lib/env/runtime.hpp"
#include "lib/env/venv.hpp"
#include "lib/launch/inputs.hpp"
#include "lib/launch/program.hpp"
#include "lib/launch/rank_environment.hpp"
#include "lib/launch/run_owner.hpp"
#include "lib/launch/seal.hpp"
#include "lib/snapshot/snapshot.hpp"
#include "lib/spec/job_spec.hpp"
#include "lib/store/metric_ingest.hpp"
#include "lib/store/run_layout.hpp"
#include "lib/store/run_store.hpp"
#include "lib/tracking/tracking_endpoint.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/process.hpp"
#include "lib/util/random.hpp"
#include "lib/util/safe_dir.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/time.hpp"
#include "lib/util/timing.hpp"

namespace amlrun::compute {

namespace fs = std::filesystem;
using launch::describe_exit;
using launch::Ending;
using store::RunState;

namespace {

// Space set aside on the workspace's filesystem while the run goes on, and
// given back when recording the run's end fails for lack of space: a job
// that fills the disk must not also take the room its result needs.
constexpr off_t k_reserve_bytes = 1 << 20;
constexpr const char* k_reserve_file = ".space-reserve";

// Preparing (snapshot, inputs, environment) ran on another thread and was
// asked to stop: a cancel, or a signal to the supervisor.
class PreparingStopped : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class Supervisor {
 public:
  Supervisor(const OwnerOptions& options)
      : m_workspace(workspace::open_workspace({options.workspace_root, "/", false, nullptr})),
        m_store(m_workspace),
        m_record(m_store.load(options.run_id)),
        m_layout(m_store.run_dir(options.run_id)),
        m_owner(m_layout.cancel_request(), m_workspace.config().kill_grace_seconds) {
    m_state = local_state_from_json(m_record.target);
  }

  int run() {
    util::timing_mark("supervisor opened the run");
    // Orphaned grandchildren are re-parented to us, so none escapes an ending.
    ::prctl(PR_SET_CHILD_SUBREAPER, 1);
    reserve_space();
    m_state.supervisor_pid = ::getpid();
    m_state.working_dir = m_layout.working_dir().string();
    transition(RunState::preparing);
    if (m_owner.cancel_requested()) {
      return finish_without_start(RunState::canceled, "canceled by user before it started");
    }
    try {
      prepare();
    } catch (const PreparingStopped& stopped) {
      return finish_without_start(
          m_owner.ending() == Ending::canceled ? RunState::canceled : RunState::failed,
          stopped.what());
    } catch (const std::exception& error) {
      m_owner.log(fmt::format("preparing failed: {}", error.what()));
      return finish_without_start(RunState::failed, fmt::format("preparing: {}", error.what()));
    }
    if (m_owner.cancel_requested()) {
      return finish_without_start(RunState::canceled, "canceled by user before it started");
    }
    transition(RunState::starting);
    try {
      start_processes();
    } catch (const std::exception& error) {
      m_owner.log(fmt::format("starting failed: {}", error.what()));
      stop_everything();
      end_run_containers();
      stop_tracking();
      return finish_without_start(RunState::failed, fmt::format("starting: {}", error.what()));
    }
    // Recorded so that the run's processes can be ended even if this
    // supervisor is killed (see LocalTarget::refresh).
    for (pid_t group : m_groups) {
      m_state.process_groups.push_back({group, process_start_time(group)});
    }
    transition(RunState::running);
    wait_for_processes();
    transition(RunState::finalizing);
    end_run_containers();
    stop_everything();
    ingest_metrics(/*final=*/true);
    seal();
    int code = finish();
    // No process of the run is left to call it; stopped after the run's end
    // is recorded, so ending its threads costs the run nothing.
    stop_tracking();
    return code;
  }

 private:
  void transition(RunState next) {
    util::timing_mark(fmt::format("before {}", store::to_string(next)));
    m_record.target = to_json(m_state);
    if (m_owner.cancel_requested()) m_record.cancel_requested = true;
    try {
      m_store.transition(m_record, next);
    } catch (const std::exception& error) {
      // A job that filled the disk must not take the run's result with it:
      // give back the reserved space and try once more, saying why.
      if (!give_back_reserve()) throw;
      m_owner.log(fmt::format("recording {} failed ({}); retrying with the reserved space",
                              store::to_string(next), error.what()));
      m_out_of_space = true;
      if (store::is_terminal(next)) add_out_of_space_reason();
      // The record already holds the new state; only writing it failed.
      m_store.save(m_record);
    }
    util::timing_mark(fmt::format("recorded {}", store::to_string(next)));
    m_owner.log(fmt::format("state {}", store::to_string(next)));
  }

  void reserve_space() {
    util::UniqueFd fd(::open((m_layout.root() / k_reserve_file).c_str(),
                             O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (fd && ::posix_fallocate(fd.get(), 0, k_reserve_bytes) == 0) m_reserved = true;
  }

  // True when there was reserved space to give back, and it is given back.
  bool give_back_reserve() {
    if (!m_reserved) return false;
    m_reserved = false;
    return ::unlink((m_layout.root() / k_reserve_file).c_str()) == 0;
  }

  void add_out_of_space_reason() {
    constexpr const char* k_reason =
        "no space left on device: the workspace's filesystem filled up during the run";
    if (m_record.failure_reason.find("no space left") != std::string::npos) return;
    m_record.failure_reason =
        m_record.failure_reason.empty() ? k_reason : m_record.failure_reason + "; " + k_reason;
  }

  // The filesystem of the workspace is (nearly) full: what a rank's failure
  // most likely came from.
  bool workspace_is_full() const {
    return util::available_bytes(m_layout.root()) < std::uint64_t{64} * 1024;
  }

  // Reads the spec and decides on a mount namespace here, on the main
  // thread (a namespace entered on another thread would not be the ranks');
  // the slow part (snapshot, inputs, environment) runs on a helper thread
  // while this one watches for a cancel or a signal and stops it.
  void prepare() {
    m_spec = spec::job_spec_from_json(
        nlohmann::ordered_json::parse(util::read_file(m_layout.job_spec())));
    // A private mount namespace only when there is something to mount
    // (unshare copies the mount table, which is not free).
    bool local_inputs = false;
    for (const auto& input : m_spec.inputs) {
      bool local = input.kind != spec::InputSpec::Kind::literal && input.url.empty();
      local_inputs |= local;
      if (local) m_container.read_only.push_back(input.path);
    }
    // The container engine does not see this process's mounts: in container
    // mode inputs are links, and their originals are mounted read-only.
    m_environment_mode =
        env::mode_from_string(nlohmann::json::parse(util::read_file(m_layout.environment_record()))
                                  .value("mode", "host"));
    bool in_container = m_environment_mode == env::Mode::container;
    m_private_mounts = local_inputs && !in_container && launch::enter_private_mount_namespace();

    std::atomic<bool> done = false;
    std::exception_ptr failure;
    std::thread worker([&] {
      try {
        prepare_files();
        prepare_environment();
      } catch (...) {
        failure = std::current_exception();
      }
      done = true;
      ::kill(::getpid(), SIGCHLD);  // wake the owner's wait
    });
    while (!done) {
      for (int signal : m_owner.wait(0)) {
        if (signal == SIGTERM || signal == SIGINT || signal == SIGHUP) {
          m_owner.begin_ending(
              Ending::interrupted,
              fmt::format("interrupted while Preparing: the supervisor received {}",
                          launch::signal_name(signal)));
        }
      }
      // SIGUSR1 says a cancel was asked for; the file says it too.
      if (m_owner.ending() == Ending::none && m_owner.cancel_requested()) {
        m_owner.begin_ending(Ending::canceled, "canceled by user (amlrun cancel) while Preparing");
      }
      if (m_owner.ending() != Ending::none && !m_stop_preparing) {
        // Downloads poll the flag; builds (pip, docker) are our children.
        m_stop_preparing = true;
        signal_all({}, SIGTERM);
      }
      if (m_owner.kill_due(util::monotonic_ms())) {
        signal_all({}, SIGKILL);
        m_owner.mark_killed();
      }
    }
    worker.join();
    if (m_owner.ending() != Ending::none) throw PreparingStopped(m_owner.ending_message());
    if (failure) std::rethrow_exception(failure);
  }

  void prepare_files() {
    if (!m_record.snapshot_id.empty()) {
      auto start = util::monotonic_ms();
      snapshot::materialize(m_workspace.snapshots_dir(), m_record.snapshot_id,
                            m_layout.working_dir());
      m_owner.log(fmt::format("snapshot {} materialized (copied) in {} ms",
                              m_record.snapshot_id.substr(0, 12), util::monotonic_ms() - start));
    }
    // The snapshot may hold anything, links included: ./outputs and ./logs
    // are made without following any.
    auto root = util::SafeDir::open(m_layout.root());
    auto working_dir = root.make_dirs(store::k_working_dir);
    for (const char* reserved : {store::k_job_outputs_dir, store::k_job_logs_dir}) {
      if (working_dir.type_of(reserved) != 0) {
        m_owner.log(
            fmt::format("note: the source directory has a top-level {}/ folder; its files become "
                        "part of the run's {}",
                        reserved, reserved));
      }
      working_dir.make_dirs(reserved);
    }
    for (const auto& output : m_spec.outputs) {
      working_dir.make_dirs(fmt::format("{}/{}", store::k_job_outputs_dir, output.name));
      m_outputs.emplace_back(output.name, (m_layout.job_outputs() / output.name).string());
    }
    launch::InputOptions options;
    options.private_mounts = m_private_mounts;
    options.log = [this](const std::string& message) { m_owner.log(message); };
    options.should_stop = [this] { return m_stop_preparing.load(); };
    m_inputs = launch::prepare_inputs(m_spec, m_layout.root(), options);
  }

  // host: nothing to do; venv: build or reuse it; container: build or reuse
  // the image. The run record says which, and whether the cache was hit.
  void prepare_environment() {
    auto record = nlohmann::json::parse(util::read_file(m_layout.environment_record()));
    m_environment_mode = env::mode_from_string(record.value("mode", "host"));
    std::string hash = record.value("hash", "");
    const auto& settings = m_workspace.config().environments;
    env::Environment environment = env::environment_from_canonical(record["canonical"]);
    environment.build_context = record.value("build_context", "");
    store::PreparedEnvironment prepared;
    fs::path build_log = m_layout.system_logs() / "env_build.txt";
    if (m_environment_mode == env::Mode::venv) {
      env::VenvRequest request{environment, hash, m_workspace.environments_dir(), settings,
                               build_log};
      auto venv = env::ensure_venv(request);
      m_venv = venv.directory;
      prepared = {venv.cache_hit, venv.seconds, venv.directory.string(), venv.python};
      m_owner.log(
          fmt::format("environment {}: venv {} ({})", hash.substr(0, 12), venv.directory.string(),
                      venv.cache_hit ? "cached" : fmt::format("built in {:.1f} s", venv.seconds)));
    } else if (m_environment_mode == env::Mode::container) {
      m_container.base.runtime = settings.runtime;
      m_container.base.gpu = environment.gpu && host_has_gpus();
      if (environment.gpu && !m_container.base.gpu) {
        m_owner.log("container: the job asks for GPUs but this machine has none; no --gpus");
      }
      m_container.base.shm_size = environment.shm_size;
      m_container.run_id = m_record.id;
      m_container.workspace_root = m_workspace.root().string();
      m_state.container_runtime = settings.runtime;
      auto image =
          env::ensure_image(settings.runtime, environment, hash, m_layout.environment_context(),
                            m_workspace.environments_dir(), build_log);
      m_container.base.image = image.image;
      prepared = {image.cache_hit, image.seconds, image.image, ""};
      m_owner.log(fmt::format(
          "environment {}: image {} ({})", hash.substr(0, 12), image.image,
          image.cache_hit ? "cached" : fmt::format("built in {:.1f} s", image.seconds)));
    } else {
      return;
    }
    m_record.prepared_environment = prepared;
  }

  // The run's environment with the venv first in PATH.
  std::vector<std::string> environment_for_runs(const launch::RunContext& context) const {
    auto environment = run_environment(context, util::current_environment());
    if (!m_venv.empty()) launch::activate_venv(environment, m_venv);
    return environment;
  }

  // In container mode every rank's program runs inside the image, with the
  // working directory, the metrics files and inputs mounted where they are
  // on the host (container_run.hpp).
  ContainerPlan container_plan() const {
    ContainerPlan plan = m_container;
    plan.working_dir = m_layout.working_dir();
    plan.metrics_dir = m_layout.metrics();
    if (fs::exists(m_layout.inputs())) plan.inputs_dir = m_layout.inputs();
    // The azureml shim, where PYTHONPATH names it.
    if (!m_python_shim.empty()) plan.read_only.push_back(m_python_shim);
    // mpirun's ranks write their own logs in there; other ranks' logs are
    // written by the supervisor, out of the job's reach.
    if (m_shared_container && m_spec.distribution.type == spec::DistributionType::mpi) {
      plan.user_logs_dir = m_layout.user_logs();
    }
    return plan;
  }

  std::vector<std::string> wrap_for_container(const std::vector<std::string>& program,
                                              const std::vector<std::string>& environment) const {
    if (m_environment_mode != env::Mode::container) return program;
    if (m_shared_container) return shared_exec_command(container_plan(), program, environment);
    return container_command(container_plan(), program, environment);
  }

  // distribution mpi in a container: mpirun of the image, inside it.
  pid_t start_mpi_in_container(const launch::RunContext& c,
                               const std::vector<std::string>& environment, int log_fd) {
    util::SpawnOptions options;
    options.argv = wrap_for_container(
        mpirun_in_container(mpi_ranks(c, environment, m_layout), m_program), environment);
    options.cwd = m_layout.working_dir();
    options.environment = environment;
    options.stdout_fd = log_fd;
    options.stderr_fd = log_fd;
    options.new_process_group = true;
    m_owner.log(fmt::format("starting {} MPI rank{} with mpirun in the container", c.world_size(),
                            c.world_size() == 1 ? "" : "s"));
    return util::spawn(options);
  }

  // Ends the ranks' process groups; in container mode a SIGTERM reaches the
  // container through the runtime's client (it forwards signals; a shared
  // container's exec clients do not, so it is sent inside), a SIGKILL would
  // stop only the clients, so the containers are killed and removed.
  void signal_ranks(int signal) {
    signal_all(m_groups, signal);
    bool terminated =
        signal == SIGTERM && m_shared_container && terminate_shared_container(container_plan());
    if (signal == SIGKILL || (m_shared_container && !terminated)) end_run_containers();
  }

  void end_run_containers() {
    if (m_environment_mode != env::Mode::container || m_container.base.image.empty()) return;
    std::string line = end_containers(m_container);
    if (!line.empty()) m_owner.log(line);
  }

  launch::RunContext context() const {
    launch::RunContext c;
    c.run_id = m_record.id;
    c.experiment = m_record.experiment;
    c.workspace_root = m_workspace.root();
    c.run_dir = m_layout.root();
    c.working_dir = m_layout.working_dir();
    c.outputs_dir = m_layout.job_outputs();
    c.logs_dir = m_layout.job_logs();
    c.inputs = m_inputs;
    c.outputs = m_outputs;
    c.user_variables = m_spec.environment_variables;
    c.distribution = m_spec.distribution.type;
    c.backend = m_spec.distribution.backend;
    c.instance_count = m_spec.instance_count;
    c.processes_per_instance = m_spec.distribution.process_count_per_instance;
    c.master_port = launch::derive_master_port(m_record.id);
    if (c.distribution == spec::DistributionType::tensorflow) {
      // Every process of a local run is on this machine: one free port each.
      std::vector<std::string> addresses;
      for (int port : launch::derive_process_ports(c.master_port, c.world_size())) {
        addresses.push_back(fmt::format("{}:{}", c.master_address, port));
      }
      c.tensorflow = launch::tensorflow_cluster(addresses, m_spec.distribution.worker_count);
    }
    if (m_tracking) {
      c.tracking_uri = m_tracking->base_uri();
      c.tracking_token = m_tracking_token;
      c.tracking_experiment_id = tracking::experiment_id_of(m_record.experiment);
    }
    c.python_shim = m_python_shim;
    return c;
  }

  // The run's MLflow endpoint on loopback, before any rank starts. A run
  // that cannot have one still runs (its MLflow calls then fail on their
  // own, as without amlrun); the system log says why.
  void start_tracking() {
    try {
      m_tracking_token = util::random_hex(32);
      tracking::TrackingConfig config;
      config.run_id = m_record.id;
      config.experiment = m_record.experiment;
      config.run_dir = m_layout.root();
      config.outputs_relative =
          fmt::format("{}/{}", store::k_working_dir, store::k_job_outputs_dir);
      config.world_size = m_spec.instance_count * m_spec.distribution.process_count_per_instance;
      config.on_notice = [this](const std::string& line) { m_owner.log(line); };
      config.on_metrics = [this] {
        // Wakes the owner's loop (a signal it reads from its signalfd) to
        // ingest soon; once per batch of notifications.
        if (!m_tracking_metrics_waiting.exchange(true)) ::kill(::getpid(), SIGCHLD);
      };
      tracking::EndpointOptions options;
      options.token = m_tracking_token;
      m_tracking = std::make_unique<tracking::TrackingEndpoint>(m_workspace, config, options);
      m_tracking->start();
      util::timing_mark("tracking endpoint started");
      m_owner.log(fmt::format("tracking: MLflow endpoint at {}", m_tracking->base_uri()));
    } catch (const std::exception& error) {
      m_tracking.reset();
      m_owner.log(fmt::format("tracking: no MLflow endpoint for this run: {}", error.what()));
    }
  }

  void stop_tracking() {
    if (!m_tracking) return;
    m_tracking->stop();
    m_tracking.reset();
  }

  // Opens a file of the run's system logs for appending, never through a link.
  util::UniqueFd open_system_log(const std::string& name) const {
    return util::SafeDir::open(m_layout.root())
        .make_dirs(store::RunTree::relative_system_logs())
        .open_file(name, O_WRONLY | O_CREAT | O_APPEND);
  }

  void start_processes() {
    m_python_shim = launch::python_shim_dir(launch::amlrun_executable());
    if (m_python_shim.empty()) {
      m_owner.log(
          "azureml: amlrun's azureml shim is not installed beside amlrun; "
          "`import azureml` works only where the environment has azureml-core");
    }
    if (m_workspace.config().tracking) {
      start_tracking();
    } else {
      m_owner.log("tracking: no MLflow endpoint (local.tracking is false in config.yml)");
    }
    launch::RunContext c = context();
    auto environment = environment_for_runs(c);
    bool in_container = m_environment_mode == env::Mode::container;
    m_program = launch::user_program(m_spec, m_inputs, environment, !in_container);
    m_state.master_port = c.master_port;
    bool mpi = m_spec.distribution.type == spec::DistributionType::mpi;
    m_shared_container = in_container && (mpi || c.world_size() > 1);
    if (m_shared_container) {
      start_shared_container(container_plan());
      m_owner.log(fmt::format("container {} started for {} processes",
                              env::container_name(m_record.id), c.world_size()));
    }
    if (mpi && in_container) {
      if (c.distribution != spec::DistributionType::none) {
        util::set_env(environment, "MASTER_ADDR", c.master_address);
        util::set_env(environment, "MASTER_PORT", std::to_string(c.master_port));
      }
      util::UniqueFd launcher_log = open_system_log("mpirun.txt");
      pid_t pid = start_mpi_in_container(c, environment, launcher_log.get());
      m_ranks.push_back({-1, pid});
      m_groups.push_back(pid);
      return;
    }
    if (mpi) {
      launch::MpiLaunch launch;
      launch.processes = c.world_size();
      launch.rank_command = {launch::amlrun_executable().string(),
                             "_rank-exec",
                             "--run-dir",
                             m_layout.root().string(),
                             "--processes-per-node",
                             std::to_string(c.processes_per_instance),
                             "--"};
      auto wrapped = m_program;
      launch.rank_command.insert(launch.rank_command.end(), wrapped.begin(), wrapped.end());
      if (c.distribution != spec::DistributionType::none) {
        util::set_env(environment, "MASTER_ADDR", c.master_address);
        util::set_env(environment, "MASTER_PORT", std::to_string(c.master_port));
      }
      util::UniqueFd launcher_log = open_system_log("mpirun.txt");
      util::SpawnOptions options;
      options.argv = launch::mpirun_command(launch);
      options.cwd = m_layout.working_dir();
      options.environment = environment;
      options.stdout_fd = launcher_log.get();
      options.stderr_fd = launcher_log.get();
      options.new_process_group = true;
      m_owner.log(fmt::format("starting {} MPI rank{} with {}", launch.processes,
                              launch.processes == 1 ? "" : "s", options.argv[0]));
      pid_t pid = util::spawn(options);
      m_ranks.push_back({-1, pid});
      m_groups.push_back(pid);
      return;
    }
    auto user_logs =
        util::SafeDir::open(m_layout.root()).make_dirs(store::RunTree::relative_user_logs());
    for (int rank = 0; rank < c.world_size(); ++rank) {
      auto rank_environment = environment;
      launch::add_rank_environment(rank_environment, c, rank);
      util::UniqueFd log_fd =
          user_logs.open_file(store::RunTree::rank_log_name(rank), O_WRONLY | O_CREAT | O_APPEND);
      util::SpawnOptions options;
      options.argv = wrap_for_container(m_program, rank_environment);
      options.cwd = m_layout.working_dir();
      options.environment = rank_environment;
      options.stdout_fd = log_fd.get();
      options.stderr_fd = log_fd.get();
      options.new_process_group = true;
      pid_t pid = util::spawn(options);
      m_ranks.push_back({rank, pid});
      m_groups.push_back(pid);
    }
    m_owner.log(fmt::format("started {} process{}: {}", m_ranks.size(),
                            m_ranks.size() == 1 ? "" : "es", m_program[0]));
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
        m_owner.log(fmt::format("{} (pid {}) {}", who, pid, describe_exit(rank.exit_code)));
        if (rank.exit_code != 0 && m_owner.ending() == Ending::none) {
          m_first_failure = &rank - &m_ranks[0];
          if (!all_done()) {
            end_run(Ending::rank_failed, fmt::format("{} {}; stopping the other ranks", who,
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

  void end_run(Ending why, const std::string& message) {
    if (m_owner.begin_ending(why, message)) signal_ranks(SIGTERM);
  }

  void handle_signal(int signal) {
    if (signal == SIGUSR1 && m_owner.cancel_requested()) {
      if (m_owner.begin_ending(Ending::canceled, "canceled by user (amlrun cancel)")) {
        signal_ranks(SIGTERM);
      }
    } else if (signal == SIGTERM || signal == SIGINT || signal == SIGHUP) {
      if (m_owner.begin_ending(Ending::interrupted,
                               fmt::format("interrupted: the supervisor received {}",
                                           launch::signal_name(signal)))) {
        signal_ranks(SIGTERM);
      }
    }
  }

  void wait_for_processes() {
    std::int64_t timeout_deadline =
        m_spec.timeout_seconds ? util::monotonic_ms() + *m_spec.timeout_seconds * 1000 : 0;
    while (!all_done()) {
      std::int64_t now = util::monotonic_ms();
      if (timeout_deadline && now >= timeout_deadline) {
        end_run(Ending::timeout, fmt::format("timeout: the run exceeded its time limit of {} s",
                                             *m_spec.timeout_seconds));
      }
      if (m_owner.kill_due(now)) {
        m_owner.log(fmt::format("processes still running {} s after SIGTERM; sending SIGKILL",
                                m_owner.kill_grace_seconds()));
        signal_ranks(SIGKILL);
        m_owner.mark_killed();
      }
      if (m_owner.ending() == Ending::none && m_owner.cancel_requested()) {
        end_run(Ending::canceled, "canceled by user (amlrun cancel)");
      }
      bool timing = timeout_deadline && m_owner.ending() == Ending::none;
      std::int64_t wake = timing ? timeout_deadline : 0;
      // Metrics that came through the tracking endpoint are stored within
      // k_tracking_ingest_delay_ms, not the next regular pass.
      std::int64_t tracking_due = m_last_metrics_ms + k_tracking_ingest_delay_ms;
      if (m_tracking_metrics_waiting) wake = wake ? std::min(wake, tracking_due) : tracking_due;
      for (int signal : m_owner.wait(wake)) handle_signal(signal);
      reap();
      std::int64_t after = util::monotonic_ms();
      if (after >= m_next_metrics_ms ||
          (m_tracking_metrics_waiting && after >= m_last_metrics_ms + k_tracking_ingest_delay_ms)) {
        ingest_metrics(/*final=*/false);
      }
    }
  }

  // Stores what the ranks appended to their metrics files. Never fatal: a
  // failure is logged and the next pass (or the final one) tries again.
  void ingest_metrics(bool final) {
    m_last_metrics_ms = util::monotonic_ms();
    m_next_metrics_ms = m_last_metrics_ms + k_metrics_interval_ms;
    m_tracking_metrics_waiting = false;
    try {
      if (!m_metrics) {
        m_metrics.emplace(m_store, m_record.id, m_layout.metrics());
      }
      auto pass = m_metrics->ingest(final, k_metrics_bytes_per_pass);
      if (final && (pass.points > 0 || pass.skipped > 0)) {
        m_owner.log(fmt::format("metrics: {} points stored in the last pass, {} lines skipped",
                                pass.points, pass.skipped));
      }
    } catch (const std::exception& error) {
      m_owner.log(fmt::format("metrics: ingestion failed (the run goes on): {}", error.what()));
    }
  }

  // Ends whatever is left: daemons and grandchildren that outlived the ranks.
  void stop_everything() {
    reap();
    if (list_descendants(::getpid()).empty()) return;
    m_owner.log("ending processes the run left behind");
    signal_all(m_groups, SIGTERM);
    std::int64_t deadline = util::monotonic_ms() + m_owner.kill_grace_seconds() * 1000LL;
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
  // working directory goes. What the job did to them is a warning.
  void seal() {
    auto sealed = launch::seal_working_directory(
        m_layout, [this](const std::string& message) { m_owner.log(message); });
    for (auto& warning : sealed.warnings) m_record.warnings.push_back(std::move(warning));
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
    switch (m_owner.ending()) {
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
        m_record.failure_reason = m_owner.ending_message();
        break;
      case Ending::canceled:
        final_state = RunState::canceled;
        m_record.failure_reason = m_owner.ending_message();
        break;
    }
    if (m_owner.ending() == Ending::timeout) {
      m_record.failure_reason = "timeout";
      m_state.timeout_seconds = *m_spec.timeout_seconds;
    }
    if (final_state == RunState::failed && (m_out_of_space || workspace_is_full())) {
      add_out_of_space_reason();
    }
    transition(final_state);
    give_back_reserve();
    return 0;
  }

  int finish_without_start(RunState state, const std::string& reason) {
    m_record.failure_reason = reason;
    if (m_record.state == RunState::preparing || m_record.state == RunState::starting) {
      if (launch::has_unsealed_working_directory(m_layout)) {
        transition(RunState::finalizing);
        seal();
      }
    }
    transition(state);
    give_back_reserve();
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
  store::RunLayout m_layout;
  launch::RunOwner m_owner;
  LocalState m_state;
  spec::JobSpec m_spec;
  bool m_private_mounts = false;
  std::atomic<bool> m_stop_preparing = false;
  std::vector<std::pair<std::string, std::string>> m_inputs;
  std::vector<std::pair<std::string, std::string>> m_outputs;
  std::vector<std::string> m_program;
  env::Mode m_environment_mode = env::Mode::host;
  fs::path m_venv;
  ContainerPlan m_container;
  bool m_shared_container = false;  // several processes in the run's one container
  std::vector<Rank> m_ranks;
  std::vector<pid_t> m_groups;
  long m_first_failure = -1;
  bool m_reserved = false;
  bool m_out_of_space = false;
  // Created on the first pass; it resumes from the index if it ever has to be.
  std::optional<store::MetricIngestor> m_metrics;
  std::int64_t m_next_metrics_ms = 0;
  std::int64_t m_last_metrics_ms = 0;
  std::unique_ptr<tracking::TrackingEndpoint> m_tracking;
  std::string m_tracking_token;
  fs::path m_python_shim;  // amlrun's azureml shim; empty when not installed
  std::atomic<bool> m_tracking_metrics_waiting = false;
  static constexpr std::int64_t k_tracking_ingest_delay_ms = 50;
  // Metrics show up in `amlrun show` within about this long.
  static constexpr std::int64_t k_metrics_interval_ms = 1000;
  // About a quarter of a second of work; a flood waits for later passes.
  static constexpr std::int64_t k_metrics_bytes_per_pass = 16 << 20;
};

}  // namespace

int supervise_run(const OwnerOptions& options) {
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

}  // namespace amlrun::compute
