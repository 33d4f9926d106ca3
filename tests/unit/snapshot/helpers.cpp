#include "helpers.hpp"

#include <linux/capability.h>
#include <sched.h>
#include <sys/mount.h>
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

namespace {

// Runs `action` in a forked child after `prepare` (which returns "" when
// ready, else the text to return instead); returns the child's result.
std::string in_child(const std::function<std::string()>& prepare,
                     const std::function<std::string()>& action) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return "<pipe failed>";
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipe_fds[0]);
    std::string result = prepare();
    if (result.empty()) {
      try {
        result = action();
      } catch (const std::exception& error) {
        result = error.what();
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

bool is_hex(std::string_view text) {
  return std::all_of(text.begin(), text.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

}  // namespace

std::string without_dac_override(const std::function<std::string()>& action) {
  return in_child(
      [] {
        __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
        __user_cap_data_struct data[2]{};
        if (::syscall(SYS_capget, &header, data) != 0) return std::string("<capget failed>");
        for (int capability : {CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH}) {
          data[capability / 32].effective &= ~(1u << (capability % 32));
        }
        if (::syscall(SYS_capset, &header, data) != 0) return std::string("<capset failed>");
        return std::string();
      },
      action);
}

std::string in_mount_namespace(const std::function<std::string()>& mount,
                               const std::function<std::string()>& action) {
  return in_child(
      [&] {
        if (::unshare(CLONE_NEWNS) != 0 ||
            ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
          return k_no_namespace;
        }
        return mount();
      },
      action);
}

std::string without_proc(const std::function<std::string()>& action) {
  return in_child(
      [] {
        if (::unshare(CLONE_NEWNS) != 0 ||
            ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
            ::mount("tmpfs", "/proc", "tmpfs", 0, nullptr) != 0) {
          return k_no_namespace;
        }
        return std::string();
      },
      action);
}

std::vector<std::string> stray_files(const fs::path& store) {
  std::vector<std::string> stray;
  for (const auto& item : fs::recursive_directory_iterator(store)) {
    if (item.is_directory()) continue;
    fs::path relative = item.path().lexically_relative(store);
    std::vector<std::string> parts;
    for (const auto& part : relative) parts.push_back(part.string());
    bool expected = false;
    if (parts.size() == 3 && parts[0] == "objects") {
      std::string name = parts[2];
      if (name.ends_with(".p")) name.resize(name.size() - 2);  // owner-only
      if (name.ends_with(".x")) name.resize(name.size() - 2);  // executable
      expected = name.size() == 64 && is_hex(name) && name.starts_with(parts[1]);
    } else if (parts.size() == 2 && parts[0] == "manifests") {
      expected = parts[1].size() == 64 && is_hex(parts[1]);
    } else if (parts.size() == 2 && parts[0] == "cache") {
      expected = parts[1].size() == 64 + 5 && parts[1].ends_with(".stat");
    }
    if (!expected) stray.push_back(relative.string());
  }
  return stray;
}

std::vector<std::string> identities(const fs::path& root) {
  std::vector<std::string> lines;
  for (const auto& item : fs::recursive_directory_iterator(root)) {
    struct stat st {};
    if (::lstat(item.path().c_str(), &st) != 0) continue;
    lines.push_back(item.path().lexically_relative(root).string() + " " +
                    std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino) + " mtime " +
                    std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) +
                    " ctime " + std::to_string(st.st_ctim.tv_sec) + "." +
                    std::to_string(st.st_ctim.tv_nsec));
  }
  std::sort(lines.begin(), lines.end());
  return lines;
}

}  // namespace snapshot_test
