// A run's build log read a complete line at a time as it grows.
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "lib/stream/log_tail.hpp"
#include "lib/util/fs.hpp"
#include "tests/unit/test_support.hpp"

using namespace amlrun;
namespace fs = std::filesystem;

namespace {

void append(const fs::path& file, const std::string& text) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  REQUIRE(fd >= 0);
  util::write_all(fd, text, "append");
  ::close(fd);
}

}  // namespace

TEST_CASE("a log tail gives complete lines as the file grows, found under any root") {
  unit_test::TempDir dir;
  fs::path first = dir.path / "a", second = dir.path / "b";
  stream::LogTail tail({first, second}, "logs/system", "env_build.txt");
  CHECK(tail.new_lines().empty());  // not there yet
  fs::create_directories(second / "logs/system");
  append(second / "logs/system/env_build.txt", "$ python3 -m venv x\nCollecting tiny");
  CHECK(tail.new_lines() == std::vector<std::string>{"$ python3 -m venv x"});
  CHECK(tail.new_lines().empty());
  append(second / "logs/system/env_build.txt", "pkg\n\nDone\n");
  CHECK(tail.new_lines() == std::vector<std::string>{"Collecting tinypkg", "", "Done"});
}

TEST_CASE("a log tail does not follow a link planted where the log directory was") {
  unit_test::TempDir dir;
  fs::create_directories(dir.path / "elsewhere");
  append(dir.path / "elsewhere/env_build.txt", "secret\n");
  fs::create_directories(dir.path / "run/logs");
  fs::create_directory_symlink(dir.path / "elsewhere", dir.path / "run/logs/system");
  stream::LogTail tail({dir.path / "run"}, "logs/system", "env_build.txt");
  CHECK(tail.new_lines().empty());
}

TEST_CASE("the preparing status names the run, the time and the last step, cut to the width") {
  CHECK(stream::preparing_status("exp_1", 12, "Collecting tinypkg", 200) ==
        "amlrun: exp_1 building the environment (12.0s): Collecting tinypkg");
  CHECK(stream::preparing_status("exp_1", 3, "", 200) ==
        "amlrun: exp_1 building the environment (3.0s)");
  CHECK(stream::preparing_status("exp_1", 3, "a\x1b[2Jb", 200) ==
        "amlrun: exp_1 building the environment (3.0s): a\\x1b[2Jb");
  // 21 columns: 20 used, the last left for the cursor so the line never wraps.
  CHECK(stream::preparing_status("exp_1", 3, "Collecting", 21) == "amlrun: exp_1 buildi");
}
