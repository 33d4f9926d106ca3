#include "lib/compute/sweep/sweep_target.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <fmt/format.h>

#include "lib/compute/detached_owner.hpp"
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
  start_detached_owner(store, record, lock, "_sweep", k_controller_log_name);
}

void SweepTarget::submit(store::RunStore& store, store::RunRecord& record, util::FileLock lock) {
  start_controller(store, record, std::move(lock));
}

void SweepTarget::request_cancel(store::RunStore& store, const store::RunRecord& record) {
  request_owner_cancel(store, record, sweep_state_from_json(record.target).controller_pid);
}

void SweepTarget::settle(const store::RunStore& store, const store::RunRecord& record) const {
  wait_for_owner_exit(store, record);
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
