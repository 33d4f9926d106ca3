#include "lib/launch/run_owner.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>
#include <cstring>

#include "lib/util/error.hpp"
#include "lib/util/process.hpp"
#include "lib/util/time.hpp"

namespace amlrun::launch {

std::string signal_name(int signal) {
  const char* abbreviation = ::sigabbrev_np(signal);
  return abbreviation ? fmt::format("SIG{}", abbreviation) : fmt::format("signal {}", signal);
}

std::string describe_exit(int code) {
  if (code > 128 && code < 128 + 65) {
    return fmt::format("was killed by {} (exit code {})", signal_name(code - 128), code);
  }
  return fmt::format("exited with code {}", code);
}

RunOwner::RunOwner(std::filesystem::path cancel_request, int kill_grace_seconds)
    : m_cancel_request(std::move(cancel_request)), m_kill_grace_seconds(kill_grace_seconds) {
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGHUP, SIGUSR1}) sigaddset(&set, s);
  ::sigprocmask(SIG_BLOCK, &set, nullptr);
  m_signal_fd = util::UniqueFd(::signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK));
  if (!m_signal_fd) util::throw_errno("signalfd");
}

void RunOwner::log(const std::string& message) const {
  std::string line = fmt::format("{} {}\n", util::utc_iso8601(util::Clock::now()), message);
  ssize_t ignored = ::write(2, line.data(), line.size());
  (void)ignored;
}

bool RunOwner::cancel_requested() const {
  std::error_code error;
  return std::filesystem::exists(std::filesystem::symlink_status(m_cancel_request, error));
}

bool RunOwner::begin_ending(Ending why, std::string message) {
  if (m_ending != Ending::none) return false;
  m_ending = why;
  m_ending_message = std::move(message);
  log(m_ending_message);
  m_kill_deadline = util::monotonic_ms() + m_kill_grace_seconds * 1000LL;
  return true;
}

std::vector<int> RunOwner::pending_signals() {
  std::vector<int> signals;
  signalfd_siginfo info;
  while (::read(m_signal_fd.get(), &info, sizeof info) == sizeof info) {
    signals.push_back(static_cast<int>(info.ssi_signo));
  }
  return signals;
}

std::vector<int> RunOwner::wait(std::int64_t deadline_ms) {
  std::int64_t now = util::monotonic_ms();
  std::int64_t wake = now + 1000;
  if (deadline_ms > 0) wake = std::min(wake, deadline_ms);
  if (m_ending != Ending::none && !m_killed) wake = std::min(wake, m_kill_deadline);
  // After SIGKILL the ranks go within milliseconds: look often.
  if (m_killed) wake = std::min(wake, now + 50);
  struct pollfd fd = {m_signal_fd.get(), POLLIN, 0};
  ::poll(&fd, 1, static_cast<int>(std::max<std::int64_t>(0, wake - now)));
  return pending_signals();
}

void activate_venv(std::vector<std::string>& environment, const std::filesystem::path& venv) {
  auto path = util::get_env(environment, "PATH").value_or("/usr/bin:/bin");
  util::set_env(environment, "PATH", (venv / "bin").string() + ":" + path);
  util::set_env(environment, "VIRTUAL_ENV", venv.string());
  std::erase_if(environment, [](const std::string& e) { return e.rfind("PYTHONHOME=", 0) == 0; });
}

}  // namespace amlrun::launch
