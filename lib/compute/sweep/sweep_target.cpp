#include "lib/compute/sweep/sweep_target.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>

#include "lib/compute/sweep/sweep_state.hpp"
#include "lib/launch/program.hpp"
#include "lib/store/run_layout.hpp"
#include "lib/util/process.hpp"
#include "lib/util/safe_dir.hpp"
#include "lib/util/time.hpp"

namespace amlrun::compute {

namespace {

constexpr const char* k_controller_log_name = "sweep_controller.txt";

}  // namespace

void SweepTarget::start_controller(store::RunStore& store, const store::RunRecord& record,
                                   util::FileLock lock) {
  store::RunLayout layout(store.run_dir(record.id));
  auto root = util::SafeDir::open(layout.root());
  for (const auto& dir : {store::RunTree::relative_user_logs(), store::RunTree::relative_metrics(),
                          store::RunTree::relative_system_logs()}) {
    root.make_dirs(dir);
  }
  util::UniqueFd log = root.dir(store::RunTree::relative_system_logs())
                           .open_file(k_controller_log_name, O_WRONLY | O_CREAT | O_APPEND);
  util::SpawnOptions options;
  options.argv = {launch::amlrun_executable().string(),
                  "_sweep",
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
}

void SweepTarget::submit(store::RunStore& store, store::RunRecord& record, util::FileLock lock) {
  start_controller(store, record, std::move(lock));
}

void SweepTarget::request_cancel(store::RunStore& store, const store::RunRecord& record) {
  store::RunLayout layout(store.run_dir(record.id));
  util::SafeDir::open(layout.root()).write_file(store::k_cancel_request_file, "canceled by user\n");
  auto state = sweep_state_from_json(record.target);
  if (util::is_locked(layout.owner_lock()) && state.controller_pid) {
    ::kill(*state.controller_pid, SIGUSR1);
  }
}

void SweepTarget::settle(const store::RunStore& store, const store::RunRecord& record) const {
  store::RunLayout layout(store.run_dir(record.id));
  std::int64_t deadline = util::monotonic_ms() + 10000;
  while (util::is_locked(layout.owner_lock()) && util::monotonic_ms() < deadline) {
    ::usleep(1000);
  }
}

store::RunRecord SweepTarget::refresh(store::RunStore& store, store::RunRecord record) {
  store::RunLayout layout(store.run_dir(record.id));
  if (store::is_terminal(record.state) || util::is_locked(layout.owner_lock())) return record;
  auto lock = util::FileLock::try_acquire(layout.owner_lock());
  if (!lock) return record;  // a controller is alive after all
  record = store.load(record.id);
  if (store::is_terminal(record.state)) return record;
  auto state = sweep_state_from_json(record.target);
  if (state.controller_starts >= k_max_controller_starts) {
    record.failure_reason = fmt::format(
        "the sweep controller died {} times without ending the sweep; see {}",
        state.controller_starts, (layout.system_logs() / k_controller_log_name).string());
    record.infrastructure_failure = true;
    store.transition(record, store::RunState::failed);
    return record;
  }
  // The decisions are in the journal: a new controller goes on from there.
  start_controller(store, record, std::move(*lock));
  return record;
}

std::vector<std::pair<std::string, std::string>> SweepTarget::describe(
    const store::RunRecord& record) const {
  auto state = sweep_state_from_json(record.target);
  std::vector<std::pair<std::string, std::string>> out;
  if (state.controller_starts > 1) {
    out.emplace_back("controller", fmt::format("resumed {} time{}", state.controller_starts - 1,
                                               state.controller_starts == 2 ? "" : "s"));
  }
  return out;
}

}  // namespace amlrun::compute
