#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "../test_support.hpp"
#include "lib/artifacts/tree_copy.hpp"
#include "lib/util/hash.hpp"

using namespace amlrun;
using unit_test::message_of;
using unit_test::read;
using unit_test::TempDir;
namespace fs = std::filesystem;

TEST_CASE("planning takes files and inside links, and skips what would leave the root") {
  TempDir dir;
  fs::path root = dir.path / "run";
  dir.write("run/outputs/model/w.bin", "weights");
  dir.write("run/outputs/a.txt", "a");
  dir.write("secret.txt", "secret");
  fs::create_directories(root / "outputs" / "empty");
  fs::create_symlink("a.txt", root / "outputs" / "inside");
  fs::create_symlink(dir.path / "secret.txt", root / "outputs" / "outside");
  fs::create_symlink("../../secret.txt", root / "outputs" / "relative_out");
  fs::create_symlink("model", root / "outputs" / "dir_link");
  fs::create_symlink("nowhere", root / "outputs" / "dangling");
  REQUIRE(::mkfifo((root / "outputs" / "fifo").c_str(), 0644) == 0);
  artifacts::CopyPlan plan;
  artifacts::plan_tree(plan, root, root / "outputs", "artifacts/outputs", "the run");
  std::vector<std::string> files;
  for (const auto& file : plan.files) files.push_back(file.relative);
  CHECK(files == std::vector<std::string>{"artifacts/outputs/a.txt", "artifacts/outputs/inside",
                                          "artifacts/outputs/model/w.bin"});
  CHECK(plan.total_bytes == 9);
  std::vector<std::string> skipped;
  for (const auto& s : plan.skipped) skipped.push_back(s.relative + ": " + s.reason);
  CHECK(
      skipped ==
      std::vector<std::string>{
          "artifacts/outputs/dangling: a dangling symbolic link to nowhere",
          "artifacts/outputs/dir_link: a symbolic link to model, which is a directory (not "
          "followed)",
          "artifacts/outputs/fifo: a FIFO",
          "artifacts/outputs/outside: a symbolic link to " + (dir.path / "secret.txt").string() +
              ", outside the run",
          "artifacts/outputs/relative_out: a symbolic link to ../../secret.txt, outside the run"});
  CHECK(plan.directories == std::vector<std::string>{"artifacts/outputs", "artifacts/outputs/empty",
                                                     "artifacts/outputs/model"});
  // A source reached through a link out of the root is refused outright.
  fs::create_directories(dir.path / "elsewhere");
  fs::create_symlink(dir.path / "elsewhere", root / "outputs" / "escape");
  artifacts::CopyPlan escape;
  CHECK(message_of([&] {
          artifacts::plan_tree(escape, root, root / "outputs" / "escape" / "x", "x", "the run");
        }) == (root / "outputs" / "escape" / "x").string() +
                  ": a symbolic link on the way leads out of the run");
}

TEST_CASE("copying creates the tree, keeps modes and hashes on request") {
  TempDir dir;
  dir.write("src/a/b.txt", "bee");
  dir.write("src/run.sh", "#!/bin/sh\n");
  fs::permissions(dir.path / "src" / "run.sh", fs::perms::owner_exec, fs::perm_options::add);
  fs::create_directories(dir.path / "src" / "empty");
  artifacts::CopyPlan plan;
  artifacts::plan_tree(plan, dir.path / "src", dir.path / "src", "", "src");
  std::vector<artifacts::CopyProgress> seen;
  artifacts::CopyOptions options;
  options.hash = true;
  options.progress = [&](const artifacts::CopyProgress& p) { seen.push_back(p); };
  auto copied = artifacts::copy_tree(plan, dir.path / "out" / "deep", options);
  REQUIRE(copied.size() == 2);
  CHECK(read(dir.path / "out" / "deep" / "a" / "b.txt") == "bee");
  CHECK(copied[0].sha256 == util::sha256_hex("bee"));
  CHECK(fs::is_directory(dir.path / "out" / "deep" / "empty"));
  CHECK((fs::status(dir.path / "out" / "deep" / "run.sh").permissions() & fs::perms::owner_exec) !=
        fs::perms::none);
  REQUIRE_FALSE(seen.empty());
  CHECK(seen.back().bytes_done == 13);
  CHECK(seen.back().files_done == 2);
}

TEST_CASE("links planted in the destination are never written through") {
  TempDir dir;
  dir.write("src/sub/file.txt", "new");
  dir.write("src/top.txt", "new");
  dir.write("victim/file.txt", "precious");
  dir.write("victim2.txt", "precious");
  artifacts::CopyPlan plan;
  artifacts::plan_tree(plan, dir.path / "src", dir.path / "src", "", "src");
  // A directory component that is a link: refused.
  fs::create_directories(dir.path / "dest");
  fs::create_symlink(dir.path / "victim", dir.path / "dest" / "sub");
  CHECK(message_of([&] { artifacts::copy_tree(plan, dir.path / "dest"); }) ==
        "cannot write into " + (dir.path / "dest" / "sub").string() +
            ": it is a file or a symbolic link, not a directory; move it away or choose another "
            "destination");
  CHECK(read(dir.path / "victim" / "file.txt") == "precious");
  // A file name that is a link: the link is replaced, its target untouched.
  fs::remove(dir.path / "dest" / "sub");
  fs::create_symlink(dir.path / "victim2.txt", dir.path / "dest" / "top.txt");
  artifacts::copy_tree(plan, dir.path / "dest");
  CHECK(read(dir.path / "victim2.txt") == "precious");
  CHECK_FALSE(fs::is_symlink(dir.path / "dest" / "top.txt"));
  CHECK(read(dir.path / "dest" / "top.txt") == "new");
  // An existing file is replaced whole.
  dir.write("dest/sub/file.txt", "older and longer");
  artifacts::copy_tree(plan, dir.path / "dest");
  CHECK(read(dir.path / "dest" / "sub" / "file.txt") == "new");
}

TEST_CASE("a check that throws stops the copy and removes the file it judged") {
  TempDir dir;
  dir.write("src/a.txt", "a");
  dir.write("src/b.txt", "b");
  artifacts::CopyPlan plan;
  artifacts::plan_tree(plan, dir.path / "src", dir.path / "src", "", "src");
  artifacts::CopyOptions options;
  options.hash = true;
  options.check = [](const artifacts::PlannedFile& file, const std::string&) {
    if (file.relative == "b.txt") throw std::runtime_error("b is damaged");
  };
  CHECK(message_of([&] { artifacts::copy_tree(plan, dir.path / "out", options); }) ==
        "b is damaged");
  CHECK(fs::exists(dir.path / "out" / "a.txt"));
  CHECK_FALSE(fs::exists(dir.path / "out" / "b.txt"));
  CHECK(std::distance(fs::directory_iterator(dir.path / "out"), fs::directory_iterator()) == 1);
}
