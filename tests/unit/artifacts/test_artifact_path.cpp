#include <catch2/catch.hpp>

#include "../test_support.hpp"
#include "lib/artifacts/artifact_path.hpp"

using namespace amlrun;
using unit_test::message_of;
using unit_test::TempDir;
namespace fs = std::filesystem;

TEST_CASE("one resolver for paths into a run's artifacts") {
  TempDir dir;
  fs::path root = dir.path / "run" / "artifacts";
  dir.write("run/artifacts/outputs/model/w.bin", "w");
  dir.write("run/artifacts/logs/user_logs/std_log_rank_0.txt", "hi");
  fs::path outside = dir.path / "elsewhere";
  fs::create_directories(outside);
  fs::create_symlink(outside, root / "outputs" / "out_link");
  fs::create_symlink(root / "outputs" / "model", root / "outputs" / "in_link");
  fs::create_symlink(dir.path / "nowhere", root / "outputs" / "dangling");
  auto resolve = [&](const std::string& text) {
    return artifacts::resolve_artifact_path(root, text, "--prefix", "r1");
  };
  auto model = resolve("outputs/model/");
  CHECK(model.relative == "outputs/model");
  CHECK(model.source == root / "outputs" / "model");
  CHECK(resolve("./logs/user_logs/../user_logs").relative == "logs/user_logs");
  CHECK(resolve("outputs/in_link/w.bin").relative == "outputs/in_link/w.bin");  // stays inside
  CHECK(message_of([&] { resolve("model"); }) ==
        "--prefix model: start with outputs/ or logs/ (a run's artifacts are its outputs and "
        "logs)");
  CHECK(message_of([&] { resolve("outputs/modle"); }) ==
        "--prefix outputs/modle: run r1 has no such file or folder (did you mean "
        "'outputs/model'?)");
  CHECK(message_of([&] { resolve("outputs/out_link"); }) ==
        "--prefix outputs/out_link: the path goes through outputs/out_link, a symbolic link to " +
            outside.string() + ", out of run r1 (amlrun never follows links out of a run)");
  CHECK(message_of([&] { resolve("outputs/out_link/x"); }) ==
        "--prefix outputs/out_link/x: the path goes through outputs/out_link, a symbolic link to " +
            outside.string() + ", out of run r1 (amlrun never follows links out of a run)");
  CHECK(message_of([&] { resolve("outputs/dangling"); }) ==
        "--prefix outputs/dangling: outputs/dangling is a symbolic link to " +
            (dir.path / "nowhere").string() + ", which does not exist");
  // Written inside outputs/, climbing out by its '..' (after a link, where
  // following the link would have gone elsewhere): told as such.
  CHECK(message_of([&] { resolve("outputs/out_link/../../run.json"); }) ==
        "--prefix outputs/out_link/../../run.json: its '..' leads to run.json, outside outputs/ "
        "and logs/ ('..' goes up in the path as written, never through a link)");
  CHECK(message_of([&] { resolve("logs/.."); }) ==
        "--prefix logs/..: its '..' leads to the top of the run, outside outputs/ and logs/ ('..' "
        "goes up in the path as written, never through a link)");
  CHECK(message_of([&] { resolve("../run.json"); }) ==
        "--prefix: '../run.json' leaves " + root.string() + "; give a path inside it");
}
