#include "helpers.hpp"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <thread>

#include "lib/snapshot/stat_cache.hpp"

namespace snapshot_test {

void wait_until_settled(const fs::path& root) {
  std::int64_t newest = 0;
  std::vector<fs::path> paths = {root};
  if (fs::is_directory(root)) {
    for (const auto& item : fs::recursive_directory_iterator(root)) paths.push_back(item.path());
  }
  for (const auto& path : paths) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
      newest =
          std::max<std::int64_t>({newest, st.st_mtim.tv_sec * 1'000'000'000ll + st.st_mtim.tv_nsec,
                                  st.st_ctim.tv_sec * 1'000'000'000ll + st.st_ctim.tv_nsec});
    }
  }
  while (amlrun::snapshot::filesystem_clock_ns() <= newest) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

std::string message_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const std::exception& error) {
    return error.what();
  }
  return "<no error>";
}

std::string without_dac_override(const std::function<std::string()>& action) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return "<pipe failed>";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipe_fds[0]);
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2]{};
    std::string result;
    if (::syscall(SYS_capget, &header, data) != 0) {
      result = "<capget failed>";
    } else {
      for (int capability : {CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH}) {
        data[capability / 32].effective &= ~(1u << (capability % 32));
      }
      if (::syscall(SYS_capset, &header, data) != 0) {
        result = "<capset failed>";
      } else {
        try {
          result = action();
        } catch (const std::exception& error) {
          result = error.what();
        }
      }
    }
    std::size_t written = 0;
    while (written < result.size()) {
      ssize_t n = ::write(pipe_fds[1], result.data() + written, result.size() - written);
      if (n <= 0) break;
      written += static_cast<std::size_t>(n);
    }
    ::_exit(0);
  }
  ::close(pipe_fds[1]);
  std::string out;
  char buffer[4096];
  for (;;) {
    ssize_t n = ::read(pipe_fds[0], buffer, sizeof buffer);
    if (n <= 0) break;
    out.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return out;
}

}  // namespace snapshot_test
