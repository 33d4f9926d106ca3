#include "lib/compute/local_target.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>

#include "lib/launch/process_tree.hpp"
#include "lib/launch/program.hpp"
#include "lib/launch/supervisor.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/process.hpp"

namespace amlrun::compute {

namespace fs = std::filesystem;

void LocalTarget::submit(store::RunStore& store, store::RunRecord& record, store::FileLock lock) {
  fs::path run_dir = store.run_dir(record.id);
  util::UniqueFd log(::open((run_dir / launch::k_supervisor_log_file).c_str(),
                            O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!log) util::throw_errno("cannot create the supervisor log");
  util::SpawnOptions options;
  options.argv = {launch::amlrun_executable().string(),
                  "_supervise",
                  "--root",
                  store.workspace().root().string(),
                  "--run",
                  record.id,
                  "--lock-fd",
                  std::to_string(lock.fd())};
  options.stdout_fd = log.get();
  options.stderr_fd = log.get();
  // Its own session: the submitter's Ctrl-C, hang-up or death never reaches it.
  options.new_session = true;
  options.inherit_fds = {lock.fd()};
  util::spawn(options);
  // The supervisor now holds the lock through the inherited descriptor;
  // ours closes when `lock` goes out of scope.
}

void LocalTarget::request_cancel(store::RunStore& store, const store::RunRecord& record) {
  fs::path run_dir = store.run_dir(record.id);
  util::write_file_atomic(run_dir / launch::k_cancel_request_file, "canceled by user\n");
  // Only signal a supervisor that provably still lives: it holds the lock.
  if (store::is_locked(store.lock_path(record.id)) && record.target.contains("supervisor_pid")) {
    ::kill(record.target["supervisor_pid"].get<pid_t>(), SIGUSR1);
  }
}

store::RunRecord LocalTarget::refresh(store::RunStore& store, store::RunRecord record) {
  if (store::is_terminal(record.state) || store::is_locked(store.lock_path(record.id))) {
    return record;
  }
  auto lock = store::FileLock::try_acquire(store.lock_path(record.id));
  if (!lock) return record;  // it is alive after all
  // With the lock in hand nothing else writes the record: reread it, since
  // the supervisor may have recorded the end just before it exited.
  record = store.load(record.id);
  if (store::is_terminal(record.state)) return record;
  // A supervisor killed outright leaves its ranks running: end them, but
  // only processes that are provably the same (start time matches).
  for (const auto& group : record.target.value("process_groups", nlohmann::json::array())) {
    pid_t pgid = group.value("pgid", 0);
    if (pgid > 1 && launch::process_start_time(pgid) == group.value("start_time", 0ULL)) {
      ::kill(-pgid, SIGKILL);
    }
  }
  bool started = record.target.contains("supervisor_pid");
  bool canceled = fs::exists(store.run_dir(record.id) / launch::k_cancel_request_file);
  record.failure_reason =
      !started   ? "the submission was interrupted before the supervisor started"
      : canceled ? "canceled by user (amlrun cancel); the supervisor was gone"
                 : fmt::format(
                       "the supervisor ended without recording a result (killed, or the machine "
                       "restarted); see {}",
                       (store.run_dir(record.id) / launch::k_supervisor_log_file).string());
  store.transition(record,
                   canceled && started ? store::RunState::canceled : store::RunState::failed);
  return record;
}

}  // namespace amlrun::compute
