#include "lib/compute/local/process_tree.hpp"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

namespace amlrun::compute {

static std::string read_stat(pid_t pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/stat";
  FILE* file = std::fopen(path.c_str(), "re");
  if (!file) return "";
  char buffer[1024];
  size_t n = std::fread(buffer, 1, sizeof buffer - 1, file);
  (void)std::fclose(file);  // read-only: nothing to lose on close
  return std::string(buffer, n);
}

unsigned long long process_start_time(pid_t pid) {
  std::string text = read_stat(pid);
  auto close = text.rfind(')');
  if (close == std::string::npos) return 0;
  // Fields after "(comm)": state is field 3; starttime is field 22.
  const char* cursor = text.c_str() + close + 2;
  for (int field = 3; field < 22 && *cursor; ++field) {
    cursor = std::strchr(cursor, ' ');
    if (!cursor) return 0;
    ++cursor;
  }
  return std::strtoull(cursor, nullptr, 10);
}

static pid_t parent_of(pid_t pid) {
  // "pid (comm) state ppid ...": comm may hold spaces and ')', so parse
  // after the last ')'.
  std::string text = read_stat(pid);
  auto close = text.rfind(')');
  if (close == std::string::npos || close + 4 >= text.size()) return -1;
  char state = 0;
  int ppid = -1;
  if (std::sscanf(text.c_str() + close + 1, " %c %d", &state, &ppid) != 2) return -1;
  if (state == 'Z') return -1;  // already dead; only needs reaping
  return ppid;
}

std::vector<pid_t> list_descendants(pid_t ancestor) {
  std::multimap<pid_t, pid_t> children;
  if (DIR* proc = ::opendir("/proc")) {
    while (dirent* entry = ::readdir(proc)) {
      char* end = nullptr;
      long pid = std::strtol(entry->d_name, &end, 10);
      if (*end != '\0' || pid <= 0) continue;
      pid_t parent = parent_of(static_cast<pid_t>(pid));
      if (parent > 0) children.emplace(parent, static_cast<pid_t>(pid));
    }
    ::closedir(proc);
  }
  std::vector<pid_t> out;
  std::vector<pid_t> frontier{ancestor};
  while (!frontier.empty()) {
    pid_t current = frontier.back();
    frontier.pop_back();
    auto [begin, end] = children.equal_range(current);
    for (auto it = begin; it != end; ++it) {
      out.push_back(it->second);
      frontier.push_back(it->second);
    }
  }
  return out;
}

void signal_all(const std::vector<pid_t>& groups, int signal) {
  auto in_groups = [&](pid_t pgid) {
    return std::find(groups.begin(), groups.end(), pgid) != groups.end();
  };
  for (pid_t group : groups) {
    if (group > 0) ::kill(-group, signal);
  }
  // Each process once: a process already reached through its group is not
  // signalled again (a program may take a second SIGTERM as "quit now").
  auto descendants = list_descendants(::getpid());
  for (pid_t pid : descendants) {
    if (!in_groups(::getpgid(pid))) ::kill(pid, signal);
  }
  if (signal == SIGTERM) {
    // A stopped process acts on SIGTERM only once continued.
    for (pid_t group : groups) {
      if (group > 0) ::kill(-group, SIGCONT);
    }
    for (pid_t pid : descendants) {
      if (!in_groups(::getpgid(pid))) ::kill(pid, SIGCONT);
    }
  }
}

}  // namespace amlrun::compute
