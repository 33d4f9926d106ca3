#include <catch2/catch.hpp>

#include "../test_support.hpp"
#include "lib/workspace/workspace.hpp"

using namespace amlrun;
namespace fs = std::filesystem;
using unit_test::message_of;
using unit_test::TempDir;

TEST_CASE("the workspace is found by walking up") {
  TempDir dir;
  workspace::create_workspace(dir.path / ".amlrun");
  fs::create_directories(dir.path / "a" / "b");
  CHECK(workspace::find_workspace(dir.path / "a" / "b") == dir.path / ".amlrun");
  CHECK(workspace::find_workspace(dir.path) == dir.path / ".amlrun");
  workspace::OpenOptions options;
  options.start_dir = dir.path / "a" / "b";
  CHECK(workspace::open_workspace(options).root() == dir.path / ".amlrun");
}

TEST_CASE("without a workspace, commands other than submit stop with advice") {
  TempDir dir;
  workspace::OpenOptions options;
  options.start_dir = dir.path;
  CHECK(message_of([&] { workspace::open_workspace(options); }) ==
        "no amlrun workspace in " + dir.path.string() +
            " or any directory above it; run 'amlrun init' there (or pass --workspace DIR)");
  options.explicit_root = dir.path / "elsewhere";
  CHECK(message_of([&] { workspace::open_workspace(options); }) ==
        "workspace " + (dir.path / "elsewhere" / ".amlrun").string() +
            " does not exist; run 'amlrun init' to create it");
}

TEST_CASE("submit creates the workspace with a notice and the full layout") {
  TempDir dir;
  workspace::OpenOptions options;
  options.start_dir = dir.path;
  options.create_if_missing = true;
  std::string notice;
  options.notice = [&](const std::string& text) { notice = text; };
  auto ws = workspace::open_workspace(options);
  CHECK(ws.root() == dir.path / ".amlrun");
  CHECK(notice == "created workspace " + (dir.path / ".amlrun").string() +
                      " ('amlrun init' does this explicitly)");
  for (const char* name : {"runs", "snapshots", "environments", "models", "cache"}) {
    CHECK(fs::is_directory(ws.root() / name));
  }
  CHECK(unit_test::read(ws.root() / ".gitignore").find("!config.yml") != std::string::npos);
  CHECK(ws.config().snapshot_max_files == 50000);
  CHECK(ws.config().kill_grace_seconds == 10);
  CHECK(ws.config().tracking);
  // --workspace may name the directory holding .amlrun or .amlrun itself.
  options.explicit_root = dir.path;
  CHECK(workspace::open_workspace(options).root() == dir.path / ".amlrun");
  options.explicit_root = dir.path / ".amlrun";
  CHECK(workspace::open_workspace(options).root() == dir.path / ".amlrun");
}

TEST_CASE("run directories only take valid run names") {
  TempDir dir;
  workspace::Workspace ws(dir.path, {});
  CHECK(ws.run_dir("exp_20261122T010600_0a1b2c3d") ==
        dir.path / "runs" / "exp_20261122T010600_0a1b2c3d");
  CHECK(message_of([&] { ws.run_dir("../../etc"); }) ==
        "invalid run name '../../etc': use 1-128 characters from [A-Za-z0-9._-], starting with a "
        "letter or digit");
}

TEST_CASE("config.yml is validated with positions, all errors at once") {
  TempDir dir;
  auto config =
      dir.write("config.yml",
                "snapshot:\n  max_file: 10\n  materialize: symlink\nlocal:\n"
                "  kill_grace_seconds: -1\n  traking: false\ncompute:\n  local: {type: slurm}\n"
                "  gpu: {partition: x}\n  cpu: {type: kubernetes}\n");
  CHECK(message_of([&] { workspace::load_config(config); }) ==
        config.string() +
            ":2:3: snapshot.max_file: unknown key 'max_file' (did you mean 'max_files'?)\n"
            "    2 |   max_file: 10\n      |   ^\n" +
            config.string() +
            ":3:16: snapshot.materialize: 'symlink' is not one of hardlink, copy\n"
            "    3 |   materialize: symlink\n      |                ^\n" +
            config.string() +
            ":5:23: local.kill_grace_seconds: must be between 0 and 3600, got -1\n"
            "    5 |   kill_grace_seconds: -1\n      |                       ^\n" +
            config.string() +
            ":6:3: local.traking: unknown key 'traking' (did you mean 'tracking'?)\n"
            "    6 |   traking: false\n      |   ^\n" +
            config.string() +
            ":8:3: compute.local: 'local' is the built-in target; choose another name\n"
            "    8 |   local: {type: slurm}\n      |   ^\n" +
            config.string() +
            ":9:8: compute.gpu: missing 'type' (slurm)\n"
            "    9 |   gpu: {partition: x}\n      |        ^\n" +
            config.string() +
            ":10:15: compute.cpu.type: 'kubernetes' is not one of slurm\n"
            "   10 |   cpu: {type: kubernetes}\n      |               ^\n"
            "7 errors in " +
            config.string());
}

TEST_CASE("a config written when runs could get hard links still loads") {
  TempDir dir;
  auto config = dir.write("config.yml", "snapshot:\n  materialize: hardlink\n");
  CHECK(workspace::load_config(config).snapshot_max_files == 50000);
}

TEST_CASE("config.yml settings are read") {
  TempDir dir;
  auto config = dir.write("config.yml",
                          "snapshot: {max_bytes: 1000, max_files: 7, materialize: copy}\n"
                          "local: {kill_grace_seconds: 2}\n"
                          "compute:\n  gpu-cluster: {type: slurm, partition: gpu}\n");
  auto loaded = workspace::load_config(config);
  CHECK(loaded.snapshot_max_bytes == 1000);
  CHECK(loaded.snapshot_max_files == 7);
  CHECK(loaded.kill_grace_seconds == 2);
  REQUIRE(loaded.compute.size() == 1);
  CHECK(loaded.compute[0].name == "gpu-cluster");
  CHECK(loaded.compute[0].type == "slurm");
  CHECK(loaded.find_target("gpu-cluster") != nullptr);
  CHECK(loaded.find_target("nope") == nullptr);
}
