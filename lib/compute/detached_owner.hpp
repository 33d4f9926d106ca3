#pragma once
// Starting the process that owns a run on this machine (the local
// supervisor, a sweep's controller): `amlrun <command> --root W --run ID
// --lock-fd N`, in its own session so the submitter's Ctrl-C, hang-up or
// death never reaches it, holding the run's owner lock through the
// inherited descriptor, its output appended to the run's system log
// `log_name`. The caller's copy of the lock closes when `lock` goes.
#include <sys/types.h>
#include <filesystem>
#include <optional>
#include <string>

#include "lib/store/run_store.hpp"
#include "lib/util/file_lock.hpp"

namespace amlrun::compute {

// What a started owner is told (its command line): the parsing side of
// start_detached_owner.
struct OwnerOptions {
  std::filesystem::path workspace_root;  // the .amlrun directory
  std::string run_id;
  int lock_fd = -1;  // the run's owner lock, locked by the starter and inherited
};

void start_detached_owner(const store::RunStore& store, const store::RunRecord& record,
                          const util::FileLock& lock, const std::string& command,
                          const std::string& log_name);

// Asks the owner to cancel: the cancel request file, then SIGUSR1 to `pid`
// only when the owner provably still lives (it holds the lock).
void request_owner_cancel(const store::RunStore& store, const store::RunRecord& record,
                          std::optional<pid_t> pid);

// Waits (up to 10 s) until the owner of an ended run has exited: it exits
// right after recording the end, so this takes milliseconds.
void wait_for_owner_exit(const store::RunStore& store, const store::RunRecord& record);

}  // namespace amlrun::compute
