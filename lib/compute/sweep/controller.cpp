#include "lib/compute/sweep/controller.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>
#include <thread>

#include "lib/compute/compute_target.hpp"
#include "lib/compute/sweep/sweep_journal.hpp"
#include "lib/compute/sweep/sweep_state.hpp"
#include "lib/compute/sweep/sweep_summary.hpp"
#include "lib/compute/sweep/trials.hpp"
#include "lib/launch/run_owner.hpp"
#include "lib/spec/job_spec.hpp"
#include "lib/store/metrics.hpp"
#include "lib/store/run_layout.hpp"
#include "lib/store/run_store.hpp"
#include "lib/sweep/gp.hpp"
#include "lib/sweep/policy.hpp"
#include "lib/sweep/sampler.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/safe_dir.hpp"
#include "lib/util/time.hpp"

namespace amlrun::compute {

namespace {

namespace fs = std::filesystem;
using store::RunState;

// How often running trials are looked at when nothing wakes the controller
// earlier (a trial's supervisor ending does, by SIGCHLD).
constexpr std::int64_t k_poll_ms = 1000;

struct Trial {
  JournaledTrial entry;
  std::optional<store::RunRecord> record;  // nullopt until its run exists
  bool terminal = false;
  std::vector<double> values;  // of the primary metric, in the order logged
  std::optional<std::string> stop_reason;
  bool cancel_sent = false;
};

enum class SweepEnd { none, canceled, timeout, interrupted };

class Controller {
 public:
  explicit Controller(const OwnerOptions& options)
      : m_lock_fd(options.lock_fd),
        m_workspace(workspace::open_workspace({options.workspace_root, "/", false, nullptr})),
        m_store(m_workspace),
        m_record(m_store.load(options.run_id)),
        m_layout(m_store.run_dir(options.run_id)),
        m_owner(m_layout.cancel_request(), m_workspace.config().kill_grace_seconds) {}

  int run() {
    // Trials' supervisors must not inherit the sweep's lock: the lock says
    // whether the controller lives, and a resume waits for it.
    if (m_lock_fd >= 0) ::fcntl(m_lock_fd, F_SETFD, FD_CLOEXEC);
    m_state = sweep_state_from_json(m_record.target);
    m_state.controller_pid = ::getpid();
    ++m_state.controller_starts;
    open_user_log();
    try {
      load();
    } catch (const std::exception& error) {
      m_owner.log(fmt::format("cannot run the sweep: {}", error.what()));
      return fail_without_trials(error.what());
    }
    if (m_record.state == RunState::queued) {
      transition(RunState::preparing);
      transition(RunState::running);
    } else {
      save();
      m_owner.log(fmt::format("controller resumed (start {}): {} trials in the journal",
                              m_state.controller_starts, m_trials.size()));
      say(fmt::format("controller resumed: {} trial{} started so far", m_trials.size(),
                      m_trials.size() == 1 ? "" : "s"));
    }
    loop();
    return finish();
  }

 private:
  // --- setting up -------------------------------------------------------

  void load() {
    m_job = spec::job_spec_from_json(
        nlohmann::ordered_json::parse(util::read_file(m_layout.job_spec())));
    if (!m_job.sweep) throw util::InfraError("job.json has no sweep settings");
    m_settings = *m_job.sweep;
    auto journal = read_sweep_journal(m_layout.sweep_journal());
    m_journal.emplace(m_layout.sweep_journal());
    if (journal.seed) {
      m_seed = *journal.seed;
    } else {
      // Recorded before the first trial, so a resumed sweep draws the same.
      m_seed = m_settings.seed ? *m_settings.seed : std::random_device{}();
      m_journal->seed(m_seed);
    }
    m_state.seed = m_seed;
    for (auto& entry : journal.trials) {
      Trial trial;
      trial.entry = std::move(entry);
      m_trials.push_back(std::move(trial));
    }
    for (const auto& stop : journal.stops) {
      for (auto& trial : m_trials) {
        if (trial.entry.id == stop.id) trial.stop_reason = stop.reason;
      }
    }
    if (journal.end_reason) {
      m_end = journal.end_reason->starts_with("timeout") ? SweepEnd::timeout : SweepEnd::canceled;
      m_end_reason = *journal.end_reason;
    }
    m_target = make_target(m_workspace, m_job.compute);
    m_max_concurrent = max_concurrent();
    if (m_settings.algorithm == spec::SamplingAlgorithm::grid) {
      m_grid_size = sweep::grid_size(m_settings.search_space);
    }
    m_environment_record = util::read_file(m_layout.environment_record());
  }

  std::int64_t max_concurrent() const {
    if (m_settings.limits.max_concurrent_trials) return *m_settings.limits.max_concurrent_trials;
    // Unset: a scheduler queues what it cannot run yet; this machine runs
    // as many trials as it has cores for.
    if (m_target->type() != "local") return m_settings.limits.max_total_trials;
    const long cores = std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN));
    return std::max<std::int64_t>(1, cores / std::max(1, m_job.total_processes()));
  }

  void open_user_log() {
    auto root = util::SafeDir::open(m_layout.root());
    m_user_log = root.make_dirs(store::RunTree::relative_user_logs())
                     .open_file(store::RunTree::rank_log_name(0), O_WRONLY | O_CREAT | O_APPEND);
  }

  // A line for whoever follows the sweep (amlrun stream), and the system log.
  void say(const std::string& line) {
    if (m_user_log) {
      try {
        util::write_all(m_user_log.get(), line + "\n", "cannot write the sweep's log");
      } catch (const std::exception& error) {
        m_owner.log(error.what());
      }
    }
    m_owner.log(line);
  }

  void save() {
    m_record.target = to_json(m_state);
    if (m_owner.cancel_requested()) m_record.cancel_requested = true;
    m_store.save(m_record);
  }

  void transition(RunState next) {
    m_record.target = to_json(m_state);
    if (m_owner.cancel_requested()) m_record.cancel_requested = true;
    m_store.transition(m_record, next);
    m_owner.log(fmt::format("state {}", store::to_string(next)));
  }

  int fail_without_trials(const std::string& why) {
    m_record.failure_reason = why;
    m_record.exit_code = 1;
    transition(RunState::failed);
    return 0;
  }

  // --- trials -----------------------------------------------------------

  std::size_t running() const {
    return static_cast<std::size_t>(std::count_if(m_trials.begin(), m_trials.end(),
                                                  [](const Trial& t) { return !t.terminal; }));
  }

  bool can_start_more() const {
    const auto started = static_cast<std::int64_t>(m_trials.size());
    if (started >= m_settings.limits.max_total_trials) return false;
    if (m_grid_size && m_trials.size() >= *m_grid_size) return false;
    return true;
  }

  // The next trial's values: a pure function of (space, seed, k) for
  // random, sobol and grid; Bayesian from the trials so far.
  JournaledTrial propose() {
    JournaledTrial trial;
    trial.k = m_trials.size();
    trial.id = trial_id(m_record.id, trial.k);
    const auto& space = m_settings.search_space;
    switch (m_settings.algorithm) {
      case spec::SamplingAlgorithm::random:
        trial.params = sweep::random_trial(space, m_seed, m_settings.rule, trial.k);
        break;
      case spec::SamplingAlgorithm::grid:
        trial.params = sweep::grid_trial(space, trial.k);
        break;
      case spec::SamplingAlgorithm::bayesian: {
        std::vector<sweep::Observation> done;
        std::vector<std::vector<double>> pending;
        for (const auto& t : m_trials) {
          if (t.entry.point.empty()) continue;
          if (!t.terminal) {
            pending.push_back(t.entry.point);
          } else {
            done.push_back(
                {t.entry.point, sweep::best_of(m_settings.goal, t.values, t.values.size())});
          }
        }
        trial.point =
            sweep::bayesian_propose(space, m_settings.goal, m_seed, trial.k, done, pending);
        m_owner.log(fmt::format("trial {}: proposed from {} ended trials and {} running", trial.k,
                                done.size(), pending.size()));
        trial.params = sweep::assignment_at(space, trial.point);
        break;
      }
    }
    return trial;
  }

  void start_trial() {
    Trial trial;
    trial.entry = propose();
    // Recorded first: a controller killed from here on finds the trial in
    // the journal and creates or follows its run, never a second one.
    m_journal->trial(trial.entry);
    m_trials.push_back(std::move(trial));
    Trial& added = m_trials.back();
    say(fmt::format("trial {} started: {}", added.entry.k, describe_values(added.entry.params)));
    create_run(added);
  }

  void create_run(Trial& trial) {
    spec::JobSpec job = trial_job(m_job, trial.entry.params);
    store::RunRecord record = trial_record(m_record, job, trial.entry.k, m_target->type());
    util::FileLock lock = m_store.create(record);
    store::RunLayout layout(m_store.run_dir(record.id));
    try {
      util::write_file_replace(layout.job_spec(), spec::to_json(job).dump(2) + "\n");
      util::write_file_replace(layout.environment_record(), m_environment_record);
      m_target->submit(m_store, record, std::move(lock));
    } catch (const SubmissionOutcomeUnknown& unknown) {
      // The target may have it: its refresh settles the record.
      m_owner.log(fmt::format("trial {}: {}", trial.entry.k, unknown.what()));
    } catch (const std::exception& error) {
      if (!store::is_terminal(record.state)) {
        record.failure_reason = fmt::format("submission failed: {}", error.what());
        m_store.transition(record, RunState::failed);
      }
    }
    trial.record = record;
  }

  // A resumed controller: each journaled trial's run is created if the
  // crash came before it, or handed to the target again if the crash came
  // between creating it and handing it over.
  void recover_runs() {
    for (auto& trial : m_trials) {
      if (trial.record) continue;
      fs::path dir = m_store.run_dir(trial.entry.id);
      std::error_code error;
      if (!fs::exists(fs::symlink_status(dir, error))) {
        create_run(trial);
        continue;
      }
      store::RunLayout layout(dir);
      if (!fs::exists(fs::symlink_status(layout.record(), error))) {
        // Made, but killed before its record: nothing of it ever ran.
        if (auto lock = util::FileLock::try_acquire(layout.owner_lock())) {
          fs::remove_all(dir);
          create_run(trial);
        }
        continue;
      }
      auto record = m_store.load(trial.entry.id);
      if (store::is_terminal(record.state)) {
        // Ended while no controller watched: counted, not announced again.
        trial.terminal = true;
        trial.values = primary_metric_values(m_store, record.id, m_settings.primary_metric);
        trial.record = record;
        record_stop_reason(trial);
        note_best(trial);
        continue;
      }
      if (record.state == RunState::queued && record.target.empty() &&
          m_target->type() == "local") {
        if (auto lock = util::FileLock::try_acquire(layout.owner_lock())) {
          record = m_store.load(trial.entry.id);
          if (record.state == RunState::queued && record.target.empty()) {
            m_owner.log(fmt::format("trial {}: handing it to the target again", trial.entry.k));
            spec::JobSpec job = trial_job(m_job, trial.entry.params);
            util::write_file_replace(layout.job_spec(), spec::to_json(job).dump(2) + "\n");
            util::write_file_replace(layout.environment_record(), m_environment_record);
            m_target->submit(m_store, record, std::move(*lock));
          }
        }
      }
      trial.record = record;
    }
  }

  // Brings every unfinished trial up to date and announces the ones that
  // ended; their metrics are read after.
  void refresh_trials() {
    std::vector<store::RunRecord> records;
    for (const auto& trial : m_trials) {
      if (!trial.terminal && trial.record) {
        try {
          records.push_back(m_store.load(trial.entry.id));
        } catch (const util::Error& error) {
          m_owner.log(fmt::format("trial {}: {}", trial.entry.k, error.what()));
        }
      }
    }
    if (!records.empty()) records = m_target->refresh_all(m_store, std::move(records));
    for (auto& record : records) {
      for (auto& trial : m_trials) {
        if (trial.entry.id != record.id) continue;
        trial.record = record;
        trial.values = primary_metric_values(m_store, record.id, m_settings.primary_metric);
        if (store::is_terminal(record.state)) {
          trial.terminal = true;
          m_target->settle(m_store, record);
          trial.values = primary_metric_values(m_store, record.id, m_settings.primary_metric);
          record_stop_reason(trial);
          announce_end(trial);
        }
      }
    }
  }

  // A trial the controller ended ends Canceled; its record then says why
  // (the policy and its numbers), not "canceled by user".
  void record_stop_reason(Trial& trial) {
    if (!trial.stop_reason || trial.record->state != RunState::canceled) return;
    auto record = m_store.load(trial.entry.id);
    record.failure_reason = *trial.stop_reason;
    m_store.save(record);
    trial.record = record;
  }

  double objective(const Trial& trial) const {
    return sweep::best_of(m_settings.goal, trial.values, trial.values.size());
  }

  // True when the trial is the best so far (recorded in the sweep's state).
  bool note_best(const Trial& trial) {
    const double value = objective(trial);
    if (std::isnan(value)) return false;
    if (m_state.best_value && !sweep::better(m_settings.goal, value, *m_state.best_value) &&
        m_state.best_trial != trial.entry.id) {
      return false;
    }
    m_state.best_value = value;
    m_state.best_trial = trial.entry.id;
    save();
    return true;
  }

  void announce_end(const Trial& trial) {
    const auto& record = *trial.record;
    std::string line = fmt::format("trial {} {}", trial.entry.k, store::to_string(record.state));
    if (record.state != RunState::completed && !record.failure_reason.empty()) {
      line += fmt::format(" ({})", record.failure_reason);
    }
    const double value = objective(trial);
    if (std::isnan(value)) {
      line += fmt::format(": no {}", m_settings.primary_metric);
    } else {
      line += fmt::format(": {} {}", m_settings.primary_metric, store::format_metric_value(value));
      if (note_best(trial)) {
        line += " (best so far)";
      } else {
        line += fmt::format(" (best so far: {} {})", m_state.best_trial,
                            store::format_metric_value(*m_state.best_value));
      }
    }
    say(line);
  }

  // --- decisions --------------------------------------------------------

  void apply_policy() {
    if (!m_settings.early_termination || m_end != SweepEnd::none) return;
    std::vector<sweep::TrialReports> reports;
    for (const auto& trial : m_trials) {
      if (trial.values.empty()) continue;
      reports.push_back({trial.entry.id, trial.values, !trial.terminal && !trial.stop_reason});
    }
    for (const auto& decision : sweep::trials_to_end(*m_settings.early_termination, m_settings.goal,
                                                     m_settings.primary_metric, reports)) {
      for (auto& trial : m_trials) {
        if (trial.entry.id != decision.trial || trial.stop_reason) continue;
        std::string reason = "early termination: " + decision.reason;
        m_journal->stop({trial.entry.id, reason});
        trial.stop_reason = reason;
        say(fmt::format("trial {} ended by early termination: {}", trial.entry.k, decision.reason));
        cancel(trial);
      }
    }
  }

  void cancel(Trial& trial) {
    if (trial.cancel_sent || trial.terminal || !trial.record) return;
    trial.cancel_sent = true;
    try {
      m_target->request_cancel(m_store, m_store.load(trial.entry.id));
    } catch (const std::exception& error) {
      m_owner.log(fmt::format("trial {}: cannot cancel: {}", trial.entry.k, error.what()));
      trial.cancel_sent = false;
    }
  }

  void check_ending(const std::vector<int>& signals) {
    if (m_end != SweepEnd::none) return;
    for (int signal : signals) {
      if (signal == SIGTERM || signal == SIGINT || signal == SIGHUP) {
        begin_end(SweepEnd::interrupted, fmt::format("the sweep controller was stopped by {}",
                                                     launch::signal_name(signal)));
        return;
      }
    }
    if (m_owner.cancel_requested()) {
      begin_end(SweepEnd::canceled, "canceled by user (amlrun cancel)");
      return;
    }
    if (m_settings.limits.timeout && !m_record.started_at.empty()) {
      const auto started = util::parse_utc_iso8601(m_record.started_at);
      const double elapsed = std::chrono::duration<double>(util::Clock::now() - started).count();
      if (elapsed >= *m_settings.limits.timeout) {
        begin_end(SweepEnd::timeout, fmt::format("timeout: the sweep's limit of {} s was reached",
                                                 *m_settings.limits.timeout));
      }
    }
  }

  void begin_end(SweepEnd why, const std::string& reason) {
    m_journal->end(reason);
    m_end = why;
    m_end_reason = reason;
    say(fmt::format("sweep ending: {}", reason));
    // Trials the timeout ends say so; a user's cancel says it itself.
    if (why != SweepEnd::timeout) return;
    for (auto& trial : m_trials) {
      if (!trial.terminal && !trial.stop_reason) trial.stop_reason = reason;
    }
  }

  std::int64_t next_wake_ms() const {
    std::int64_t wait = k_poll_ms;
    if (m_settings.limits.timeout && !m_record.started_at.empty() && m_end == SweepEnd::none) {
      const auto started = util::parse_utc_iso8601(m_record.started_at);
      const double left = *m_settings.limits.timeout -
                          std::chrono::duration<double>(util::Clock::now() - started).count();
      wait = std::clamp<std::int64_t>(static_cast<std::int64_t>(left * 1000) + 1, 0, wait);
    }
    return util::monotonic_ms() + wait;
  }

  void loop() {
    recover_runs();
    std::vector<int> signals;
    while (true) {
      while (::waitpid(-1, nullptr, WNOHANG) > 0) {
        // Trials' supervisors we started; their records say how they ended.
      }
      check_ending(signals);
      refresh_trials();
      apply_policy();
      if (m_end != SweepEnd::none) {
        for (auto& trial : m_trials) cancel(trial);
      } else {
        while (static_cast<std::int64_t>(running()) < m_max_concurrent && can_start_more()) {
          start_trial();
        }
      }
      if (running() == 0 && (m_end != SweepEnd::none || !can_start_more())) break;
      signals = m_owner.wait(next_wake_ms());
    }
  }

  // --- the end ----------------------------------------------------------

  int finish() {
    transition(RunState::finalizing);
    std::optional<std::size_t> best;
    std::map<std::string, int> counts;
    for (std::size_t i = 0; i < m_trials.size(); ++i) {
      const auto& trial = m_trials[i];
      ++counts[trial.record ? store::to_string(trial.record->state) : "never started"];
      const double value = objective(trial);
      if (std::isnan(value)) continue;
      if (!best || sweep::better(m_settings.goal, value, objective(m_trials[*best]))) best = i;
    }
    std::string tally;
    for (const auto& [state, count] : counts) {
      tally += fmt::format("{}{} {}", tally.empty() ? "" : ", ", count, state);
    }
    if (best) {
      m_state.best_trial = m_trials[*best].entry.id;
      m_state.best_value = objective(m_trials[*best]);
    }
    RunState final_state = RunState::completed;
    if (m_end == SweepEnd::canceled || m_end == SweepEnd::interrupted) {
      final_state = RunState::canceled;
      m_record.failure_reason = m_end_reason;
    } else if (!best) {
      final_state = RunState::failed;
      m_record.exit_code = 1;
      m_record.failure_reason =
          fmt::format("no trial logged the primary metric '{}' ({} trial{}: {}){}",
                      m_settings.primary_metric, m_trials.size(), m_trials.size() == 1 ? "" : "s",
                      tally, m_end == SweepEnd::timeout ? "; " + m_end_reason : "");
    } else {
      m_record.exit_code = 0;
      if (m_end == SweepEnd::timeout) m_record.warnings.push_back(m_end_reason);
    }
    if (best) {
      const Trial& winner = m_trials[*best];
      say(fmt::format("best trial {} ({}): {} {} with {}", winner.entry.k, winner.entry.id,
                      m_settings.primary_metric, store::format_metric_value(objective(winner)),
                      describe_values(winner.entry.params)));
    }
    say(fmt::format("sweep {}: {} trial{} ({})", store::to_string(final_state), m_trials.size(),
                    m_trials.size() == 1 ? "" : "s", tally.empty() ? "none" : tally));
    transition(final_state);
    return 0;
  }

  int m_lock_fd;
  workspace::Workspace m_workspace;
  store::RunStore m_store;
  store::RunRecord m_record;
  store::RunLayout m_layout;
  launch::RunOwner m_owner;
  SweepState m_state;
  spec::JobSpec m_job;
  spec::SweepSettings m_settings;
  std::optional<SweepJournal> m_journal;
  std::uint64_t m_seed = 0;
  std::unique_ptr<ComputeTarget> m_target;
  std::int64_t m_max_concurrent = 1;
  std::optional<std::uint64_t> m_grid_size;
  std::string m_environment_record;
  std::vector<Trial> m_trials;
  SweepEnd m_end = SweepEnd::none;
  std::string m_end_reason;
  util::UniqueFd m_user_log;
};

}  // namespace

int control_sweep(const OwnerOptions& options) {
  try {
    Controller controller(options);
    return controller.run();
  } catch (const std::exception& error) {
    // The next amlrun command that looks at the sweep starts a new
    // controller, which goes on from the journal.
    (void)std::fprintf(stderr, "sweep controller failed: %s\n", error.what());
    return 1;
  }
}

}  // namespace amlrun::compute
