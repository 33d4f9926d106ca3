#include <catch2/catch.hpp>

#include "../test_support.hpp"
#include "lib/launch/program.hpp"
#include "lib/launch/rank_environment.hpp"
#include "lib/util/process.hpp"

using namespace amlrun;
using util::get_env;

namespace {

launch::RunContext context(spec::DistributionType type, int instances, int per_instance) {
  launch::RunContext c;
  c.run_id = "exp_20261122T010600_0a1b2c3d";
  c.experiment = "exp";
  c.workspace_root = "/ws/.amlrun";
  c.run_dir = "/ws/.amlrun/runs/x";
  c.logs_dir = "/ws/.amlrun/runs/x/wd/logs";
  c.outputs_dir = "/ws/.amlrun/runs/x/wd/outputs";
  c.distribution = type;
  c.instance_count = instances;
  c.processes_per_instance = per_instance;
  c.master_port = 29501;
  c.inputs = {{"data", "/ws/.amlrun/runs/x/inputs/data"}};
  c.user_variables = {{"MY_VAR", "1"}, {"PYTHONUNBUFFERED", "0"}};
  return c;
}

}  // namespace

TEST_CASE("the run environment carries amlrun's variables, the inputs and the user's") {
  auto env = launch::run_environment(context(spec::DistributionType::none, 1, 1),
                                     {"PATH=/usr/bin", "AMLRUN_RUN_ID=stale"});
  CHECK(get_env(env, "AMLRUN_RUN_ID") == "exp_20261122T010600_0a1b2c3d");
  CHECK(get_env(env, "AMLRUN_INPUT_data") == "/ws/.amlrun/runs/x/inputs/data");
  CHECK(get_env(env, "AZURE_ML_INPUT_data") == "/ws/.amlrun/runs/x/inputs/data");
  CHECK(get_env(env, "MY_VAR") == "1");
  CHECK(get_env(env, "PYTHONUNBUFFERED") == "0");  // the job's choice wins
  CHECK(get_env(env, "PATH") == "/usr/bin");
  launch::add_rank_environment(env, context(spec::DistributionType::none, 1, 1), 0);
  // Captured out of the working directory (store/run_layout.hpp): a job that
  // deletes ./logs keeps its metrics.
  CHECK(get_env(env, "AMLRUN_METRICS_FILE") ==
        "/ws/.amlrun/runs/x/artifacts/logs/metrics/rank_0.jsonl");
  CHECK_FALSE(get_env(env, "RANK").has_value());  // single process: no torch contract
}

TEST_CASE("the torch contract for 2 nodes x 2 processes") {
  auto c = context(spec::DistributionType::pytorch, 2, 2);
  auto env = launch::run_environment(c, {});
  launch::add_rank_environment(env, c, 3);
  CHECK(get_env(env, "RANK") == "3");
  CHECK(get_env(env, "WORLD_SIZE") == "4");
  CHECK(get_env(env, "LOCAL_RANK") == "1");
  CHECK(get_env(env, "LOCAL_WORLD_SIZE") == "2");
  CHECK(get_env(env, "NODE_RANK") == "1");
  CHECK(get_env(env, "MASTER_ADDR") == "127.0.0.1");
  CHECK(get_env(env, "MASTER_PORT") == "29501");
}

TEST_CASE("the master port is derived from the run id and stays in range") {
  int port = launch::derive_master_port("exp_20261122T010600_0a1b2c3d", /*probe_free=*/false);
  CHECK(port == launch::derive_master_port("exp_20261122T010600_0a1b2c3d", false));
  CHECK(port >= 20000);
  CHECK(port < 60000);
  CHECK(port != launch::derive_master_port("exp_20261122T010600_ffffffff", false));
}

TEST_CASE("the azureml shim goes first on PYTHONPATH and the job's entries stay") {
  auto c = context(spec::DistributionType::none, 1, 1);
  c.python_shim = "/opt/amlrun/share/amlrun/python";
  auto env = launch::run_environment(c, {"PYTHONPATH=/home/me/lib"});
  CHECK(get_env(env, "PYTHONPATH") == "/opt/amlrun/share/amlrun/python:/home/me/lib");
  c.user_variables.emplace_back("PYTHONPATH", "./fake");
  env = launch::run_environment(c, {"PYTHONPATH=/home/me/lib"});
  CHECK(get_env(env, "PYTHONPATH") == "/opt/amlrun/share/amlrun/python:./fake");
  env = launch::run_environment(c = context(spec::DistributionType::none, 1, 1), {});
  CHECK(!get_env(env, "PYTHONPATH"));  // no shim installed: nothing added
  c.python_shim = "/shim";
  CHECK(get_env(launch::run_environment(c, {"PYTHONPATH="}), "PYTHONPATH") == "/shim");
}

TEST_CASE("the shim is found beside a staged amlrun or in share/ beside its bin/") {
  unit_test::TempDir dir;
  CHECK(launch::python_shim_dir(dir.path / "bin" / "amlrun").empty());
  dir.write("share/amlrun/python/azureml/__init__.py", "");
  CHECK(launch::python_shim_dir(dir.path / "bin" / "amlrun") ==
        dir.path / "share" / "amlrun" / "python");
  dir.write("bin/python/azureml/__init__.py", "");
  CHECK(launch::python_shim_dir(dir.path / "bin" / "amlrun") == dir.path / "bin" / "python");
}
