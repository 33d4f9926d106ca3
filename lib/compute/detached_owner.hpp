#pragma once
// Starting the process that owns a run on this machine (the local
// supervisor, a sweep's controller): `amlrun <command> --root W --run ID
// --lock-fd N`, in its own session so the submitter's Ctrl-C, hang-up or
// death never reaches it, holding the run's owner lock through the
// inherited descriptor, its output appended to the run's system log
// `log_name`. The caller's copy of the lock closes when `lock` goes.
#include <string>

#include "lib/store/run_store.hpp"
#include "lib/util/file_lock.hpp"

namespace amlrun::compute {

void start_detached_owner(const store::RunStore& store, const store::RunRecord& record,
                          const util::FileLock& lock, const std::string& command,
                          const std::string& log_name);

}  // namespace amlrun::compute
