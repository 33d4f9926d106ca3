#include "lib/compute/slurm/ssh/ssh_connection.hpp"

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <fmt/format.h>
#include <cerrno>
#include <cstdlib>
#include <thread>

#include "lib/util/error.hpp"
#include "lib/util/file_lock.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/hash.hpp"
#include "lib/util/shell.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/time.hpp"

namespace amlrun::compute {

namespace fs = std::filesystem;

namespace {

// Long enough for a slow bastion, short enough that an unreachable host is
// an error in seconds; the keep-alives notice a dead link in 15 s. A user's
// `options:` come first on the command line, and ssh keeps the first value
// it reads, so theirs win.
constexpr const char* k_defaults[] = {"ConnectTimeout=10", "ServerAliveInterval=5",
                                      "ServerAliveCountMax=3"};
// How long the master outlives its last session: the next command within
// it starts without a new handshake.
constexpr const char* k_persist = "ControlPersist=600";
constexpr std::chrono::seconds k_master_start_limit{40};

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

// The last non-empty line ssh wrote, for messages that match no known case.
std::string last_line(const std::string& text) {
  auto lines = util::split(text, '\n');
  for (auto it = lines.rbegin(); it != lines.rend(); ++it) {
    auto line = util::trim(*it);
    if (!line.empty()) return std::string(line);
  }
  return "ssh exited with status 255 and said nothing";
}

// A directory only this user can enter: the master's socket in it lets
// anyone who can reach it run commands as this user on the cluster.
fs::path private_directory() {
  fs::path dir;
  if (const char* runtime = std::getenv("XDG_RUNTIME_DIR"); runtime && *runtime) {
    std::error_code error;
    if (fs::is_directory(runtime, error)) dir = fs::path(runtime) / "amlrun-ssh";
  }
  if (dir.empty()) dir = fs::path("/tmp") / fmt::format("amlrun-ssh-{}", ::geteuid());
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    util::throw_errno("cannot create " + dir.string());
  }
  struct stat info {};
  if (::lstat(dir.c_str(), &info) != 0) util::throw_errno("cannot check " + dir.string());
  if (!S_ISDIR(info.st_mode) || info.st_uid != ::geteuid() || (info.st_mode & 077) != 0) {
    throw util::InfraError(fmt::format(
        "{} (where amlrun keeps its ssh connections) is not a private directory of yours "
        "(owner {}, mode {:o}); remove it, and amlrun makes a new one with mode 0700",
        dir.string(), info.st_uid, info.st_mode & 07777));
  }
  return dir;
}

std::string escape_percent(const std::string& path) {
  std::string out;
  for (char c : path) {
    out.push_back(c);
    if (c == '%') out.push_back('%');  // ssh expands %-tokens in ControlPath
  }
  return out;
}

}  // namespace

std::string expand_home(const std::string& path) {
  if (path == "~" || path.starts_with("~/")) {
    const char* home = std::getenv("HOME");
    if (home && *home) return std::string(home) + path.substr(1);
  }
  return path;
}

std::string explain_ssh_failure(const std::string& who, const std::string& text) {
  if (contains(text, "REMOTE HOST IDENTIFICATION HAS CHANGED") ||
      (contains(text, "Host key for") && contains(text, "has changed"))) {
    return fmt::format(
        "{}: the login node's host key has CHANGED since you last connected, which ssh refuses "
        "(it may be a reinstalled host or someone in between); check with your cluster's admins, "
        "then remove the old key with ssh-keygen -R HOST",
        who);
  }
  if (contains(text, "Host key verification failed") ||
      contains(text, "No ED25519 host key is known") || contains(text, "host key is known")) {
    return fmt::format(
        "{}: the login node's host key is not known to ssh, and amlrun never accepts one by "
        "itself; connect once with ssh to check the key and add it to known_hosts",
        who);
  }
  if (contains(text, "Permission denied") || contains(text, "Too many authentication failures")) {
    return fmt::format(
        "{}: authentication was refused ({}); amlrun never asks for a password: load your key "
        "into ssh-agent, or set identity_file (and user) under ssh: in the target",
        who, last_line(text));
  }
  if (contains(text, "Could not resolve hostname")) {
    return fmt::format("{}: the login node's name does not resolve ({}); check ssh: host", who,
                       last_line(text));
  }
  for (const char* unreachable :
       {"Connection refused", "Connection timed out", "No route to host", "Network is unreachable",
        "timed out during banner", "Connection reset"}) {
    if (contains(text, unreachable)) {
      return fmt::format(
          "{}: the login node cannot be reached ({}); check the host and port under ssh:, "
          "and that you can reach it (VPN, bastion: proxy_jump)",
          who, last_line(text));
    }
  }
  if (contains(text, "Timeout, server") || contains(text, "not responding") ||
      contains(text, "Broken pipe") || contains(text, "Connection closed") ||
      contains(text, "closed by remote host") || contains(text, "Control socket connect")) {
    return fmt::format(
        "{}: the connection to the login node was lost ({}); the job itself is not affected: "
        "'amlrun stream' picks up where it stopped once the link is back",
        who, last_line(text));
  }
  return fmt::format("{}: ssh failed: {}", who, last_line(text));
}

SshConnection::SshConnection(std::string target_name, SshSettings settings)
    : m_target(std::move(target_name)),
      m_settings(std::move(settings)),
      m_dir(private_directory()) {
  // One master per way of connecting: the socket is named by everything
  // that decides where and as whom ssh logs in.
  std::string identity = util::join(options_argv(), "\n") + "\n" + m_settings.host;
  m_control_path = m_dir / (util::sha256_hex(identity).substr(0, 20) + ".sock");
}

std::string SshConnection::who() const {
  std::string destination =
      m_settings.user.empty() ? m_settings.host : m_settings.user + "@" + m_settings.host;
  return fmt::format("compute target '{}' (ssh {})", m_target, destination);
}

std::vector<std::string> SshConnection::options_argv() const {
  std::vector<std::string> argv = {"ssh"};
  if (!m_settings.config_file.empty()) {
    argv.insert(argv.end(), {"-F", expand_home(m_settings.config_file)});
  }
  argv.insert(argv.end(), {"-o", "BatchMode=yes", "-o", "ForwardAgent=no", "-o", "ForwardX11=no",
                           "-o", "RequestTTY=no", "-e", "none"});
  for (const auto& option : m_settings.options) argv.insert(argv.end(), {"-o", option});
  for (const char* option : k_defaults) argv.insert(argv.end(), {"-o", option});
  if (!m_settings.user.empty()) argv.insert(argv.end(), {"-l", m_settings.user});
  if (m_settings.port) argv.insert(argv.end(), {"-p", std::to_string(*m_settings.port)});
  if (!m_settings.identity_file.empty()) {
    argv.insert(argv.end(), {"-i", expand_home(m_settings.identity_file)});
  }
  if (!m_settings.proxy_jump.empty()) argv.insert(argv.end(), {"-J", m_settings.proxy_jump});
  return argv;
}

std::vector<std::string> SshConnection::command_argv(const std::string& script) const {
  auto argv = options_argv();
  argv.insert(argv.end(),
              {"-o", "ControlPath=" + escape_percent(m_control_path.string()), "-o",
               "ControlMaster=no", "--", m_settings.host, util::login_shell_command(script)});
  return argv;
}

void SshConnection::ensure_master() {
  auto control = [&](const char* what) {
    auto argv = options_argv();
    argv.insert(argv.end(), {"-o", "ControlPath=" + escape_percent(m_control_path.string()), "-O",
                             what, "--", m_settings.host});
    util::SpawnOptions options;
    options.argv = argv;
    return util::run_capture(options, {}, std::chrono::seconds(10));
  };
  std::error_code error;
  if (fs::exists(fs::symlink_status(m_control_path, error)) && control("check").exit_code == 0) {
    return;
  }
  // Two amlrun commands starting at once start one master.
  auto lock = util::FileLock::acquire(fs::path(m_control_path.string() + ".lock"));
  if (fs::exists(fs::symlink_status(m_control_path, error))) {
    if (control("check").exit_code == 0) return;
    fs::remove(m_control_path, error);  // a master that died left its socket
  }
  fs::path log = fs::path(m_control_path.string() + ".log");
  util::UniqueFd log_fd(::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (!log_fd) util::throw_errno("cannot create " + log.string());
  auto argv = options_argv();
  argv.insert(argv.end(),
              {"-o", "ControlPath=" + escape_percent(m_control_path.string()), "-o",
               "ControlMaster=yes", "-o", k_persist, "-N", "-f", "--", m_settings.host});
  util::SpawnOptions options;
  options.argv = argv;
  options.stdout_fd = util::k_null_fd;
  options.stderr_fd = log_fd.get();
  options.new_session = true;  // the persisting master must not get the terminal's Ctrl-C
  pid_t pid = util::spawn(options);
  log_fd = util::UniqueFd();
  // -f: ssh returns once authenticated, leaving the master in the
  // background; it is bounded here too, in case a proxy hangs.
  std::int64_t deadline =
      util::monotonic_ms() + std::chrono::milliseconds(k_master_start_limit).count();
  int status = 0;
  for (;;) {
    pid_t done = ::waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) util::throw_errno("cannot wait for ssh");
    if (util::monotonic_ms() > deadline) {
      ::kill(-pid, SIGKILL);
      ::kill(pid, SIGKILL);
      util::wait_for(pid);
      throw util::InfraError(fmt::format(
          "{}: no connection within {} s (ssh did not finish logging in); check the host, "
          "the network and proxy_jump",
          who(), k_master_start_limit.count()));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  if (util::exit_code_of(status) != 0) {
    std::string said;
    try {
      said = util::read_file(log);
    } catch (const util::Error&) {
    }
    throw util::InfraError(explain_ssh_failure(who(), said));
  }
}

void SshConnection::stop_master() const {
  auto argv = options_argv();
  argv.insert(argv.end(), {"-o", "ControlPath=" + escape_percent(m_control_path.string()), "-O",
                           "exit", "--", m_settings.host});
  util::SpawnOptions options;
  options.argv = argv;
  util::run_capture(options, {}, std::chrono::seconds(10));
}

util::CaptureResult SshConnection::run(const std::string& script, const std::string& input,
                                       std::chrono::milliseconds timeout) {
  util::SpawnOptions options;
  options.argv = command_argv(script);
  auto result = util::run_capture(options, input, timeout);
  if (result.timed_out) {
    throw util::InfraError(fmt::format(
        "{}: the login node did not answer within {} s (the link may be down); try again", who(),
        std::chrono::duration_cast<std::chrono::seconds>(timeout).count()));
  }
  if (result.exit_code == 255) throw util::InfraError(explain_ssh_failure(who(), result.err));
  return result;
}

}  // namespace amlrun::compute
