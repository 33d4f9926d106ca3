#pragma once
// Ending a run's processes for real: the supervisor is a child subreaper, so
// every orphaned descendant (a daemon, a grandchild that called setsid) is
// re-parented to it and stays findable in /proc; ending "the run" means
// ending every descendant of the supervisor, not just a process group.
#include <sys/types.h>

#include <vector>

namespace amlrun::compute {

// Pids of all live descendants of `ancestor` (children, their children, ...).
std::vector<pid_t> list_descendants(pid_t ancestor);

// The start time of a process (clock ticks since boot, /proc/<pid>/stat
// field 22), to tell a process from a later one that reused its pid.
unsigned long long process_start_time(pid_t pid);

// Sends `signal` once to every process of the groups in `groups` and of the
// descendants of this process; SIGCONT follows SIGTERM so a stopped process
// can act on it.
void signal_all(const std::vector<pid_t>& groups, int signal);

}  // namespace amlrun::compute
