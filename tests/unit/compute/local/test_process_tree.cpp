#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <thread>

#include "lib/compute/local/process_tree.hpp"
#include "lib/util/process.hpp"
#include "tests/unit/test_support.hpp"

using namespace amlrun;
namespace fs = std::filesystem;

namespace {

void reap_all() {
  int status = 0;
  while (::waitpid(-1, &status, 0) > 0) {
  }
}

}  // namespace

TEST_CASE("descendants are found and ended, also a setsid grandchild ignoring SIGTERM") {
  REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  util::SpawnOptions options;
  options.argv = {"/bin/bash", "-c",
                  "trap '' TERM; setsid bash -c \"trap '' TERM; sleep 300\" & sleep 300"};
  options.new_process_group = true;
  pid_t child = util::spawn(options);
  // Wait until the grandchild in a session of its own shows up.
  bool found_other_session = false;
  for (int i = 0; i < 200 && !found_other_session; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    for (pid_t pid : compute::list_descendants(::getpid())) {
      pid_t session = ::getsid(pid);
      found_other_session |= session > 0 && session != ::getsid(0) && session != child;
    }
  }
  CHECK(found_other_session);
  CHECK(compute::process_start_time(child) > 0);
  compute::signal_all({child}, SIGKILL);
  reap_all();
  CHECK(compute::list_descendants(::getpid()).empty());
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
}

TEST_CASE("every process of the run is signalled once, not once per way of reaching it") {
  // A program may take a second SIGTERM as "quit now, skip the clean-up".
  // Standard signals sent twice in a row can merge in the kernel, which
  // hides a double delivery; real-time signals queue, so counting SIGRTMIN
  // shows how many each process was sent. The group leader, a member of its
  // group and a grandchild in a session of its own each count theirs.
  REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  unit_test::TempDir dir;
  std::string counter = R"(
import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGRTMIN])
name = sys.argv[1]
if name == "leader":
    import subprocess
    subprocess.Popen([sys.executable, "-c", sys.argv[2], "member", sys.argv[2], sys.argv[3]])
    subprocess.Popen([sys.executable, "-c", sys.argv[2], "other", sys.argv[2], sys.argv[3]],
                     start_new_session=True)
open(os.path.join(sys.argv[3], name + ".ready"), "w").close()
count = 0
while signal.sigtimedwait([signal.SIGRTMIN], 3 if count == 0 else 0.5) is not None:
    count += 1
# Written under another name and renamed, so the test never reads it half-written.
with open(os.path.join(sys.argv[3], name + ".tmp"), "w") as f:
    f.write(str(count))
os.rename(os.path.join(sys.argv[3], name + ".tmp"), os.path.join(sys.argv[3], name))
)";
  util::SpawnOptions options;
  options.argv = {"/usr/bin/python3", "-c", counter, "leader", counter, dir.path.string()};
  options.new_process_group = true;
  pid_t child = util::spawn(options);
  auto ready = [&] {
    for (const char* name : {"leader", "member", "other"}) {
      if (!fs::exists(dir.path / (std::string(name) + ".ready"))) return false;
    }
    return true;
  };
  for (int i = 0; i < 1000 && !ready(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(ready());
  compute::signal_all({child}, SIGRTMIN);
  for (const char* name : {"leader", "member", "other"}) {
    for (int i = 0; i < 500 && !fs::exists(dir.path / name); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    std::ifstream file(dir.path / name);
    std::string count;
    std::getline(file, count);
    INFO(name);
    CHECK(count == "1");
  }
  compute::signal_all({child}, SIGKILL);
  reap_all();
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
}
