#pragma once
// The one place that starts processes. Programs are always started from an
// argv vector with execve; nothing here goes through a shell.
#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "lib/util/error.hpp"

namespace amlrun::util {

constexpr int k_inherit_fd = -2;  // the child gets the parent's descriptor
constexpr int k_null_fd = -1;     // the child gets /dev/null

struct SpawnOptions {
  std::vector<std::string> argv;  // argv[0] is looked up in PATH unless it has a '/'
  std::optional<std::filesystem::path> cwd;
  // The whole environment as "KEY=value"; nullopt inherits the parent's.
  std::optional<std::vector<std::string>> environment;
  int stdin_fd = k_null_fd;
  int stdout_fd = k_inherit_fd;
  int stderr_fd = k_inherit_fd;
  bool new_process_group = false;  // setpgid(0, 0): signals can reach the whole group
  bool new_session = false;        // setsid(): detached from the terminal and its Ctrl-C
  bool kill_with_parent = false;   // PR_SET_PDEATHSIG(SIGKILL)
  // Descriptors the child keeps (everything else is close-on-exec).
  std::vector<int> inherit_fds;
};

// A program could not be started at all (not found, not executable, bad cwd).
class SpawnError : public InfraError {
 public:
  using InfraError::InfraError;
};

// Starts the process and returns its pid once execve has succeeded; throws
// SpawnError naming the program and the reason if it could not.
pid_t spawn(const SpawnOptions& options);

// PATH lookup as execvp would do it; nullopt when not found.
std::optional<std::filesystem::path> find_executable(const std::string& name,
                                                     const char* path_variable = nullptr);

// Exit code of a wait status: the exit status, or 128 + signal number.
int exit_code_of(int wait_status);

struct CaptureResult {
  int exit_code = -1;  // as exit_code_of
  std::string out;
  std::string err;
  bool timed_out = false;
};

// Runs a short helper program (sbatch, squeue, tar...) to completion, feeding
// stdin_data and collecting stdout/stderr. On timeout the process group is
// killed and timed_out is set. stdout_fd/stderr_fd of `options` are ignored.
CaptureResult run_capture(SpawnOptions options, const std::string& stdin_data = {},
                          std::optional<std::chrono::milliseconds> timeout = std::nullopt);

// waitpid that retries on EINTR; returns the wait status.
int wait_for(pid_t pid);

// The current environment as a vector of "KEY=value".
std::vector<std::string> current_environment();

// Sets or replaces KEY in an environment vector.
void set_env(std::vector<std::string>& environment, const std::string& key,
             const std::string& value);
std::optional<std::string> get_env(const std::vector<std::string>& environment,
                                   const std::string& key);

}  // namespace amlrun::util
