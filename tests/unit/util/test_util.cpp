#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <optional>

#include "../test_support.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/hash.hpp"
#include "lib/util/names.hpp"
#include "lib/util/process.hpp"
#include "lib/util/shell.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/time.hpp"

using namespace amlrun;
namespace fs = std::filesystem;

using unit_test::message_of;
using unit_test::TempDir;

TEST_CASE("shell_quote keeps plain words and single-quotes everything else") {
  CHECK(util::shell_quote("abc/def-1.2") == "abc/def-1.2");
  CHECK(util::shell_quote("") == "''");
  CHECK(util::shell_quote("a b") == "'a b'");
  CHECK(util::shell_quote("it's") == "'it'\\''s'");
  CHECK(util::shell_quote("$(rm -rf /)") == "'$(rm -rf /)'");
  CHECK(util::shell_join({"echo", "a b", "`x`"}) == "echo 'a b' '`x`'");
}

TEST_CASE("shell_quote round-trips hostile strings through a real shell") {
  const std::vector<std::string> values = {"a b",    "it's",    "$(id)",     "`id`", "line1\nline2",
                                           "\"dq\"", "émoji 🚀", "--x=$HOME", "*",    "a\\b"};
  for (const auto& value : values) {
    util::SpawnOptions options;
    options.argv = {"/bin/sh", "-c", "printf %s " + util::shell_quote(value)};
    auto result = util::run_capture(options);
    CHECK(result.exit_code == 0);
    CHECK(result.out == value);
  }
}

TEST_CASE("safe_join refuses paths that leave the root") {
  fs::path root = "/ws/run";
  CHECK(util::safe_join(root, "outputs/model", "output") == fs::path("/ws/run/outputs/model"));
  CHECK(util::safe_join(root, "a/../b", "output") == fs::path("/ws/run/b"));
  CHECK(message_of([&] { util::safe_join(root, "../x", "--prefix"); }) ==
        "--prefix: '../x' leaves /ws/run; give a path inside it");
  CHECK(message_of([&] { util::safe_join(root, "/etc/passwd", "--prefix"); }) ==
        "--prefix: '/etc/passwd' is an absolute path; give a path relative to /ws/run");
  CHECK(message_of([&] { util::safe_join(root, std::string("a\0b", 3), "x"); }) ==
        "x: path contains a NUL byte");
  CHECK(util::is_within("/a/b", "/a/b/c"));
  CHECK(util::is_within("/a/b", "/a/b"));
  CHECK_FALSE(util::is_within("/a/b", "/a/bc"));
  CHECK_FALSE(util::is_within("/a/b", "/a/b/../c"));
}

TEST_CASE("read_user_file refuses FIFOs, directories and oversized files without blocking") {
  TempDir dir;
  fs::path fifo = dir.path / "job.yml";
  REQUIRE(::mkfifo(fifo.c_str(), 0644) == 0);
  CHECK(message_of([&] { util::read_user_file(fifo, 100); }) ==
        fifo.string() + " is a FIFO; give a regular file");
  CHECK(message_of([&] { util::read_user_file(dir.path, 100); }) ==
        dir.path.string() + " is a directory; give a regular file");
  CHECK(message_of([&] { util::read_user_file("/dev/zero", 100); }) ==
        "/dev/zero is a character device; give a regular file");
  fs::path big = dir.path / "big.yml";
  std::ofstream(big) << std::string(200, 'x');
  CHECK(message_of([&] { util::read_user_file(big, 100); }) ==
        big.string() + " is 200 B, more than the 100 B this file may have");
  CHECK(util::read_user_file(big, 200).size() == 200);
}

TEST_CASE("AtomicFile replaces the target only on commit") {
  TempDir dir;
  fs::path target = dir.path / "run.json";
  util::write_file_atomic(target, "old");
  {
    util::AtomicFile file(target);
    file.write("new");
    // not committed: the destructor removes the temp file
  }
  CHECK(util::read_file(target) == "old");
  CHECK(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 1);
  util::write_file_atomic(target, "new");
  CHECK(util::read_file(target) == "new");
}

TEST_CASE("AtomicFile in an open directory replaces a planted link, never writes through it") {
  TempDir dir;
  std::ofstream(dir.path / "victim.txt") << "precious";
  fs::create_directories(dir.path / "out");
  fs::create_symlink(dir.path / "victim.txt", dir.path / "out" / "result.txt");
  util::UniqueFd out(::open((dir.path / "out").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(out);
  util::AtomicFile file(out.get(), "result.txt", dir.path / "out" / "result.txt", 0600);
  file.write("new");
  file.commit(/*durable=*/true);
  CHECK(util::read_file(dir.path / "victim.txt") == "precious");
  CHECK_FALSE(fs::is_symlink(dir.path / "out" / "result.txt"));
  CHECK(util::read_file(dir.path / "out" / "result.txt") == "new");
  CHECK((fs::status(dir.path / "out" / "result.txt").permissions() & fs::perms::all) ==
        (fs::perms::owner_read | fs::perms::owner_write));
}

TEST_CASE("AtomicFile named after writing: kept or replaced, never half there") {
  TempDir dir;
  fs::create_directories(dir.path / "store" / "ab");
  fs::create_directories(dir.path / "tmp");
  util::UniqueFd store(::open((dir.path / "store").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  util::UniqueFd tmp(::open((dir.path / "tmp").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  auto make = [&](bool unnamed, const std::string& text) {
    std::optional<util::AtomicFile> file =
        unnamed && util::AtomicFile::can_name_unnamed()
            ? util::AtomicFile::try_unnamed(store.get(), dir.path / "store")
            : std::nullopt;
    if (!file) file.emplace(util::AtomicFile::named_in(tmp.get(), dir.path / "tmp"));
    file->write(text);
    return std::move(*file);
  };
  for (bool unnamed : {true, false}) {
    INFO(unnamed);
    fs::remove_all(dir.path / "store" / "ab");
    fs::create_directories(dir.path / "store" / "ab");
    fs::path shown = dir.path / "store" / "ab" / "x";
    {
      auto first = make(unnamed, "one");
      CHECK(first.commit_as(store.get(), "ab/x", shown, /*replace=*/false));
    }
    {
      auto second = make(unnamed, "two");
      CHECK_FALSE(second.commit_as(store.get(), "ab/x", shown, /*replace=*/false));
      CHECK(errno == EEXIST);
    }
    CHECK(util::read_file(shown) == "one");
    {
      auto third = make(unnamed, "three");
      CHECK(third.commit_as(store.get(), "ab/x", shown, /*replace=*/true));
    }
    CHECK(util::read_file(shown) == "three");
    {
      auto missing = make(unnamed, "four");
      CHECK_FALSE(missing.commit_as(store.get(), "cd/x", dir.path / "store/cd/x", false));
      CHECK(errno == ENOENT);
    }
    // Nothing left behind: not in tmp/, not beside the target.
    CHECK(fs::is_empty(dir.path / "tmp"));
    CHECK(std::distance(fs::directory_iterator(dir.path / "store" / "ab"),
                        fs::directory_iterator()) == 1);
  }
}

TEST_CASE("sha256 matches the known digest") {
  CHECK(util::sha256_hex("abc") ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  TempDir dir;
  std::ofstream(dir.path / "f") << "abc";
  CHECK(util::sha256_file(dir.path / "f") == util::sha256_hex("abc"));
}

TEST_CASE("closest_match suggests plausible typos only") {
  std::vector<std::string> keys = {"process_count_per_instance", "type", "instance_count"};
  CHECK(util::closest_match("proces_count", keys) == "process_count_per_instance");
  CHECK(util::closest_match("typ", keys) == "type");
  CHECK(util::closest_match("instance_cont", keys) == "instance_count");
  CHECK_FALSE(util::closest_match("zzzzzz", keys).has_value());
  CHECK(util::did_you_mean_suffix("tpye", keys) == " (did you mean 'type'?)");
}

TEST_CASE("names follow [A-Za-z0-9][A-Za-z0-9._-]{0,127}") {
  CHECK(util::is_valid_name("exp-1.a_b"));
  CHECK_FALSE(util::is_valid_name(""));
  CHECK_FALSE(util::is_valid_name(".hidden"));
  CHECK_FALSE(util::is_valid_name("a/b"));
  CHECK_FALSE(util::is_valid_name(std::string(129, 'a')));
  CHECK(util::is_valid_name(std::string(128, 'a')));
  CHECK(message_of([] { util::check_name("experiment", "../x"); }) ==
        "invalid experiment name '../x': use 1-128 characters from [A-Za-z0-9._-], starting with "
        "a letter or digit");
  CHECK(util::sanitize_name("My Project (v2)") == "My_Project_v2_");
}

TEST_CASE("spawn reports a missing program and a bad working directory") {
  util::SpawnOptions options;
  options.argv = {"no-such-program-amlrun"};
  CHECK(message_of([&] { util::spawn(options); }) ==
        "cannot run 'no-such-program-amlrun': command not found in PATH");
  options.argv = {"/bin/true"};
  options.cwd = "/nonexistent-dir";
  CHECK(message_of([&] { util::spawn(options); }) ==
        "cannot enter the working directory of '/bin/true': No such file or directory "
        "(/nonexistent-dir)");
}

TEST_CASE("run_capture collects output, exit codes and times out") {
  util::SpawnOptions options;
  options.argv = {"/bin/sh", "-c", "cat; echo err >&2; exit 3"};
  auto result = util::run_capture(options, "input");
  CHECK(result.out == "input");
  CHECK(result.err == "err\n");
  CHECK(result.exit_code == 3);
  options.argv = {"/bin/sleep", "10"};
  auto start = util::monotonic_ms();
  auto slow = util::run_capture(options, "", std::chrono::milliseconds(200));
  CHECK(slow.timed_out);
  CHECK(slow.exit_code == 128 + 9);
  CHECK(util::monotonic_ms() - start < 5000);
}

TEST_CASE("time formats are stable") {
  auto when = util::Clock::from_time_t(1795309560) + std::chrono::milliseconds(42);
  CHECK(util::utc_compact(when) == "20261122T010600");
  CHECK(util::utc_iso8601(when) == "2026-11-22T01:06:00.042Z");
  CHECK(util::parse_utc_iso8601("2026-11-22T01:06:00.042Z") == when);
  CHECK(util::format_duration(0.035) == "35ms");
  CHECK(util::format_duration(3723) == "1h 02m 03s");
}

TEST_CASE("check_directory_path refuses a file where a directory must be") {
  TempDir dir;
  std::ofstream(dir.path / "file") << "x";
  ::mkfifo((dir.path / "fifo").c_str(), 0644);
  util::check_directory_path(dir.path, "the destination");
  util::check_directory_path(dir.path / "new" / "deeper", "the destination");
  CHECK(message_of([&] { util::check_directory_path(dir.path / "file", "the destination"); }) ==
        "the destination " + (dir.path / "file").string() +
            " is a file, not a directory; give a directory");
  CHECK(message_of([&] { util::check_directory_path(dir.path / "file/x/y", "the workspace"); }) ==
        "the workspace " + (dir.path / "file/x/y").string() +
            " cannot be created: " + (dir.path / "file").string() + " is a file, not a directory");
  CHECK(message_of([&] { util::check_directory_path(dir.path / "fifo", "the destination"); }) ==
        "the destination " + (dir.path / "fifo").string() +
            " is a FIFO, not a directory; give a directory");
}
