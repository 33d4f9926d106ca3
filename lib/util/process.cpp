#include "lib/util/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <cstring>
#include <utility>

#include "lib/util/fs.hpp"
#include "lib/util/time.hpp"

extern char** environ;

namespace amlrun::util {

std::optional<std::filesystem::path> find_executable(const std::string& name,
                                                     const char* path_variable) {
  if (name.empty()) return std::nullopt;
  if (name.find('/') != std::string::npos) {
    return std::filesystem::path(name);
  }
  const char* path = path_variable ? path_variable : ::getenv("PATH");
  std::string search = path ? path : "/usr/local/bin:/usr/bin:/bin";
  std::size_t start = 0;
  while (start <= search.size()) {
    std::size_t end = search.find(':', start);
    if (end == std::string::npos) end = search.size();
    std::string directory = search.substr(start, end - start);
    if (directory.empty()) directory = ".";
    std::string candidate = std::move(directory);
    candidate += '/';
    candidate += name;
    if (::access(candidate.c_str(), X_OK) == 0) {
      struct stat st {};
      if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
        return std::filesystem::path(candidate);
      }
    }
    start = end + 1;
  }
  return std::nullopt;
}

int exit_code_of(int wait_status) {
  if (WIFEXITED(wait_status)) return WEXITSTATUS(wait_status);
  if (WIFSIGNALED(wait_status)) return 128 + WTERMSIG(wait_status);
  return -1;
}

int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw_errno(fmt::format("waitpid {}", pid));
  }
  return status;
}

int run_logged(const std::vector<std::string>& argv, const std::filesystem::path& log_path) {
  UniqueFd log(::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644));
  if (!log) throw_errno(fmt::format("cannot open {}", log_path.string()));
  std::string line = "$";
  for (const auto& word : argv) line += " " + word;
  write_all(log.get(), line + "\n", fmt::format("cannot write {}", log_path.string()));
  SpawnOptions options;
  options.argv = argv;
  options.stdout_fd = log.get();
  options.stderr_fd = log.get();
  return exit_code_of(wait_for(spawn(options)));
}

std::vector<std::string> current_environment() {
  std::vector<std::string> out;
  for (char** e = environ; e && *e; ++e) out.emplace_back(*e);
  return out;
}

void set_env(std::vector<std::string>& environment, const std::string& key,
             const std::string& value) {
  std::string prefix = key + "=";
  for (auto& entry : environment) {
    if (entry.compare(0, prefix.size(), prefix) == 0) {
      entry = prefix + value;
      return;
    }
  }
  environment.push_back(prefix + value);
}

std::optional<std::string> get_env(const std::vector<std::string>& environment,
                                   const std::string& key) {
  std::string prefix = key + "=";
  for (const auto& entry : environment) {
    if (entry.compare(0, prefix.size(), prefix) == 0) return entry.substr(prefix.size());
  }
  return std::nullopt;
}

// Everything below `fork()` in the child must be async-signal-safe, so all
// strings and arrays are prepared before forking.
pid_t spawn(const SpawnOptions& options) {
  if (options.argv.empty()) throw SpawnError("spawn: empty argv");
  const char* path_variable = nullptr;
  std::string path_value;
  if (options.environment) {
    if (auto path = get_env(*options.environment, "PATH")) {
      path_value = *path;
      path_variable = path_value.c_str();
    }
  }
  auto executable = find_executable(options.argv[0], path_variable);
  if (!executable) {
    throw SpawnError(fmt::format("cannot run '{}': command not found in PATH", options.argv[0]));
  }
  std::string executable_string = executable->string();
  std::vector<char*> argv;
  for (const auto& a : options.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  if (options.environment) {
    for (const auto& e : *options.environment) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
  }
  std::string cwd = options.cwd ? options.cwd->string() : std::string();

  int error_pipe[2];
  if (::pipe2(error_pipe, O_CLOEXEC) != 0) throw_errno("pipe2");
  pid_t pid = ::fork();
  if (pid < 0) {
    int saved = errno;
    ::close(error_pipe[0]);
    ::close(error_pipe[1]);
    throw SpawnError(errno_message("fork", saved));
  }
  if (pid == 0) {
    // Child. Report a failing step as (step, errno) through the pipe.
    auto fail = [&](int step) {
      int payload[2] = {step, errno};
      ssize_t ignored = ::write(error_pipe[1], payload, sizeof payload);
      (void)ignored;
      ::_exit(127);
    };
    sigset_t empty;
    sigemptyset(&empty);
    ::sigprocmask(SIG_SETMASK, &empty, nullptr);
    for (int sig = 1; sig < NSIG; ++sig) {
      // In the child before exec; SIG_ERR for a signal that cannot be set is fine.
      if (sig != SIGKILL && sig != SIGSTOP) (void)::signal(sig, SIG_DFL);
    }
    if (options.new_session) {
      if (::setsid() < 0) fail(1);
    } else if (options.new_process_group) {
      if (::setpgid(0, 0) < 0) fail(1);
    }
    if (options.kill_with_parent) ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    auto redirect = [&](int source, int target) {
      if (source == k_inherit_fd) return;
      int fd = source;
      if (source == k_null_fd) {
        fd = ::open("/dev/null", target == 0 ? O_RDONLY : O_WRONLY);
        if (fd < 0) fail(2);
      }
      if (fd == target) {
        ::fcntl(fd, F_SETFD, 0);  // keep it across exec
      } else if (::dup2(fd, target) < 0) {
        fail(2);
      }
    };
    for (int fd : options.inherit_fds) ::fcntl(fd, F_SETFD, 0);
    redirect(options.stdin_fd, 0);
    redirect(options.stdout_fd, 1);
    redirect(options.stderr_fd, 2);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) fail(3);
    if (options.environment) {
      ::execve(executable_string.c_str(), argv.data(), envp.data());
    } else {
      ::execve(executable_string.c_str(), argv.data(), environ);
    }
    fail(4);
  }
  ::close(error_pipe[1]);
  int payload[2] = {0, 0};
  ssize_t n;
  do {
    n = ::read(error_pipe[0], payload, sizeof payload);
  } while (n < 0 && errno == EINTR);
  ::close(error_pipe[0]);
  if (n > 0) {
    wait_for(pid);
    const char* step = payload[0] == 1   ? "cannot create a process group for"
                       : payload[0] == 2 ? "cannot redirect output of"
                       : payload[0] == 3 ? "cannot enter the working directory of"
                                         : "cannot run";
    std::string message =
        fmt::format("{} '{}': {}", step, options.argv[0], std::strerror(payload[1]));
    if (payload[0] == 3) message += fmt::format(" ({})", cwd);
    throw SpawnError(message);
  }
  return pid;
}

CaptureResult run_capture(SpawnOptions options, const std::string& stdin_data,
                          std::optional<std::chrono::milliseconds> timeout) {
  int out_pipe[2], err_pipe[2], in_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0 ||
      ::pipe2(in_pipe, O_CLOEXEC) != 0) {
    throw_errno("pipe2");
  }
  UniqueFd out_read(out_pipe[0]), out_write(out_pipe[1]);
  UniqueFd err_read(err_pipe[0]), err_write(err_pipe[1]);
  UniqueFd in_read(in_pipe[0]), in_write(in_pipe[1]);
  options.stdout_fd = out_write.get();
  options.stderr_fd = err_write.get();
  options.stdin_fd = in_read.get();
  options.new_process_group = true;  // so a timeout can kill helpers it started
  pid_t pid = spawn(options);
  out_write = UniqueFd();
  err_write = UniqueFd();
  in_read = UniqueFd();

  // Feed stdin without blocking forever on a child that doesn't read it.
  ::fcntl(in_write.get(), F_SETFL, O_NONBLOCK);
  std::size_t written = 0;
  if (stdin_data.empty()) in_write = UniqueFd();

  CaptureResult result;
  std::int64_t deadline = timeout ? monotonic_ms() + timeout->count() : 0;
  char buffer[65536];
  while (out_read || err_read) {
    struct pollfd fds[3];
    int count = 0;
    if (out_read) fds[count++] = {out_read.get(), POLLIN, 0};
    if (err_read) fds[count++] = {err_read.get(), POLLIN, 0};
    if (in_write) fds[count++] = {in_write.get(), POLLOUT, 0};
    int wait_ms = -1;
    if (timeout) {
      std::int64_t left = deadline - monotonic_ms();
      if (left <= 0) {
        ::kill(-pid, SIGKILL);
        result.timed_out = true;
        break;
      }
      wait_ms = static_cast<int>(left);
    }
    int ready = ::poll(fds, static_cast<nfds_t>(count), wait_ms);
    if (ready < 0) {
      if (errno == EINTR) continue;
      throw_errno("poll");
    }
    for (int i = 0; i < count; ++i) {
      if (fds[i].revents == 0) continue;
      if (in_write && fds[i].fd == in_write.get()) {
        ssize_t n =
            ::write(in_write.get(), stdin_data.data() + written, stdin_data.size() - written);
        if (n > 0) written += static_cast<std::size_t>(n);
        if (n < 0 && errno != EAGAIN && errno != EINTR) in_write = UniqueFd();
        if (written >= stdin_data.size()) in_write = UniqueFd();
        continue;
      }
      UniqueFd& source = (out_read && fds[i].fd == out_read.get()) ? out_read : err_read;
      std::string& sink = (&source == &out_read) ? result.out : result.err;
      ssize_t n = ::read(source.get(), buffer, sizeof buffer);
      if (n > 0) {
        sink.append(buffer, static_cast<std::size_t>(n));
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        source = UniqueFd();
      }
    }
  }
  result.exit_code = exit_code_of(wait_for(pid));
  return result;
}

}  // namespace amlrun::util
