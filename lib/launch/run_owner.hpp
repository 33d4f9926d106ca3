#pragma once
// What every process that owns a run shares — the local supervisor, the
// Slurm driver on a node, and (next) a sweep controller: the run's system
// log, its signals, cancel requests, and the ending of a run (why it ends,
// the grace period between SIGTERM and SIGKILL, the exit it reports).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "lib/util/fs.hpp"

namespace amlrun::launch {

// "SIGTERM", or "signal 70" for one without a name.
std::string signal_name(int signal);
// How an exit code reads in a failure reason: "exited with code 3", "was
// killed by SIGKILL (exit code 137)".
std::string describe_exit(int code);

// Why a run is ending. `none` until something ends it; the ranks' own exit
// decides the result then.
enum class Ending { none, rank_failed, timeout, canceled, interrupted };

class RunOwner {
 public:
  // Blocks SIGCHLD, SIGTERM, SIGINT, SIGHUP and SIGUSR1 and reads them from a
  // signalfd (so they arrive in the owner's loop, never in the middle of a
  // write). `cancel_request` is the file whose presence asks for a cancel.
  RunOwner(std::filesystem::path cancel_request, int kill_grace_seconds);

  // A timestamped line on stderr, which the owner's starter points at the
  // run's system log.
  void log(const std::string& message) const;

  bool cancel_requested() const;

  // Starts the ending once (later calls are ignored and return false): logs
  // the message and arms the kill deadline. The caller sends SIGTERM.
  bool begin_ending(Ending why, std::string message);
  Ending ending() const { return m_ending; }
  const std::string& ending_message() const { return m_ending_message; }
  bool kill_due(std::int64_t now_ms) const {
    return m_ending != Ending::none && !m_killed && now_ms >= m_kill_deadline;
  }
  void mark_killed() { m_killed = true; }
  bool killed() const { return m_killed; }

  // Sleeps until `deadline_ms` (monotonic; 0: none), the kill deadline, one
  // second (to see a cancel request whose signal went astray), or a signal;
  // returns the signals that arrived (SIGCHLD included).
  std::vector<int> wait(std::int64_t deadline_ms);
  // The signals that arrived, without waiting.
  std::vector<int> pending_signals();

  int kill_grace_seconds() const { return m_kill_grace_seconds; }

 private:
  std::filesystem::path m_cancel_request;
  int m_kill_grace_seconds;
  util::UniqueFd m_signal_fd;
  Ending m_ending = Ending::none;
  std::string m_ending_message;
  std::int64_t m_kill_deadline = 0;
  bool m_killed = false;
};

// The environment of a run that uses a venv: its bin/ first in PATH,
// VIRTUAL_ENV set, PYTHONHOME removed (it would point Python elsewhere).
void activate_venv(std::vector<std::string>& environment, const std::filesystem::path& venv);

}  // namespace amlrun::launch
