#pragma once
// The system OpenSSH client as amlrun's way to a login node. The user's
// ~/.ssh/config, agent and keys apply as they do for their own `ssh`; amlrun
// adds a multiplexed master connection per target (ControlMaster, its socket
// in a private 0700 directory), BatchMode (an authentication that would need
// a prompt fails instead), a connect timeout and keep-alives. The master's
// standard streams are /dev/null and a log file, never a pipe: a reader
// waiting for end-of-file on a pipe the persisting master holds would wait
// forever.
//
// Every remote command is a POSIX sh script handed to the user's login shell
// through util::login_shell_command, so nothing of it is parsed by that
// shell (bash, tcsh, ...), and ssh's own failure (255) is told apart from
// the script's exit status.
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "lib/compute/slurm/ssh/ssh_settings.hpp"
#include "lib/util/process.hpp"

namespace amlrun::compute {

// ssh's own failure, explained: what failed (unreachable, authentication,
// host key, ...) and what to do. `who` names the target.
std::string explain_ssh_failure(const std::string& who, const std::string& stderr_text);

class SshConnection {
 public:
  SshConnection(std::string target_name, SshSettings settings);

  // "compute target 'cluster' (ssh alice@login)"
  std::string who() const;
  const SshSettings& settings() const { return m_settings; }

  // Starts the master connection unless one answers; bounded by the connect
  // timeout. Throws util::InfraError (exit 3) explaining the failure.
  void ensure_master();
  // Ends the master connection (tests, and a link found dead).
  void stop_master() const;

  // The argv that runs `script` on the login node through the master.
  std::vector<std::string> command_argv(const std::string& script) const;

  // Runs `script` to completion with `input` as its standard input. ssh's
  // own failure throws util::InfraError; otherwise the script's result (its
  // exit status as it left it, 255 reported as 254).
  util::CaptureResult run(const std::string& script, const std::string& input = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(120));

  // Where the master's socket and the sessions' error logs live.
  const std::filesystem::path& private_dir() const { return m_dir; }

 private:
  std::vector<std::string> options_argv() const;

  std::string m_target;
  SshSettings m_settings;
  std::filesystem::path m_dir;
  std::filesystem::path m_control_path;
};

// ~/ at the start of a path is the user's home (ssh's own rule for its
// options); other paths are used as written.
std::string expand_home(const std::string& path);

}  // namespace amlrun::compute
