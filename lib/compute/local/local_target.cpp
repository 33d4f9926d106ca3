#include "lib/compute/local/local_target.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>

#include "lib/compute/detached_owner.hpp"
#include "lib/compute/local/local_state.hpp"
#include "lib/compute/local/process_tree.hpp"
#include "lib/env/containers.hpp"
#include "lib/launch/program.hpp"
#include "lib/launch/seal.hpp"
#include "lib/store/metric_ingest.hpp"
#include "lib/store/run_layout.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/process.hpp"
#include "lib/util/safe_dir.hpp"
#include "lib/util/time.hpp"

namespace amlrun::compute {

namespace fs = std::filesystem;

namespace {

constexpr const char* k_supervisor_log_name = "supervisor.txt";

// The newest modification time of the files amlrun captured for the run:
// the last moment it was seen alive.
std::optional<util::TimePoint> last_sign_of_life(const store::RunLayout& layout) {
  std::optional<fs::file_time_type> newest;
  std::error_code error;
  for (auto it = fs::recursive_directory_iterator(layout.logs(), error);
       !error && it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (!it->is_regular_file(error) || it->is_symlink(error)) continue;
    auto when = it->last_write_time(error);
    if (!error && (!newest || when > *newest)) newest = when;
  }
  if (!newest) return std::nullopt;
  return std::chrono::file_clock::to_sys(*newest);
}

}  // namespace

void LocalTarget::submit(store::RunStore& store, store::RunRecord& record, util::FileLock lock) {
  start_detached_owner(store, record, lock, "_supervise", k_supervisor_log_name);
}

void LocalTarget::request_cancel(store::RunStore& store, const store::RunRecord& record) {
  request_owner_cancel(store, record, local_state_from_json(record.target).supervisor_pid);
}

void LocalTarget::settle(const store::RunStore& store, const store::RunRecord& record) const {
  wait_for_owner_exit(store, record);
}

store::RunRecord LocalTarget::refresh(store::RunStore& store, store::RunRecord record) {
  store::RunLayout layout(store.run_dir(record.id));
  if (store::is_terminal(record.state) || util::is_locked(layout.owner_lock())) {
    return record;
  }
  auto lock = util::FileLock::try_acquire(layout.owner_lock());
  if (!lock) return record;  // it is alive after all
  // With the lock in hand nothing else writes the record: reread it, since
  // the supervisor may have recorded the end just before it exited.
  record = store.load(record.id);
  if (store::is_terminal(record.state)) return record;
  auto state = local_state_from_json(record.target);
  // A supervisor killed outright leaves its ranks running: end them, but
  // only processes that are provably the same (start time matches).
  bool ended_now = false;
  for (const auto& group : state.process_groups) {
    if (group.pgid > 1 && process_start_time(group.pgid) == group.start_time) {
      ended_now |= ::kill(-group.pgid, SIGKILL) == 0;
    }
  }
  // Its containers, which killing their clients does not end.
  if (!state.container_runtime.empty()) {
    try {
      ended_now |= env::end_run_containers(state.container_runtime,
                                           store.workspace().root().string(), record.id) > 0;
    } catch (const std::exception&) {
      // The runtime does not answer: `amlrun doctor` removes them later.
    }
  }
  // What the run left is sealed here, as the supervisor would have: the
  // outputs are then where `show`, `download` and `model register` look.
  std::string sealing_log;
  if (launch::has_unsealed_working_directory(layout)) {
    auto sealed = launch::seal_working_directory(
        layout, [&](const std::string& line) { sealing_log += line + "\n"; });
    for (auto& warning : sealed.warnings) record.warnings.push_back(std::move(warning));
  }
  try {
    store::MetricIngestor(store, record.id, layout.metrics()).ingest(/*final=*/true);
  } catch (const std::exception&) {
    // Metrics that cannot be read stay in the sealed logs.
  }
  bool started = state.supervisor_pid.has_value();
  bool canceled = fs::exists(fs::symlink_status(layout.cancel_request()));
  if (canceled) record.cancel_requested = true;
  fs::path supervisor_log = layout.system_logs() / k_supervisor_log_name;
  record.failure_reason =
      !started   ? "the submission was interrupted before the supervisor started"
      : canceled ? "canceled by user (amlrun cancel); the supervisor was gone"
                 : fmt::format(
                       "the supervisor ended without recording a result (killed, or the machine "
                       "restarted); see {}",
                       supervisor_log.string());
  // The run ended when its processes did: now, if they were still running,
  // else when it was last seen alive.
  std::optional<util::TimePoint> ended_at;
  if (!ended_now) ended_at = last_sign_of_life(layout);
  store.transition(
      record, canceled && started ? store::RunState::canceled : store::RunState::failed, ended_at);
  return record;
}

}  // namespace amlrun::compute
