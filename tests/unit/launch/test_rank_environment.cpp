#include <catch2/catch.hpp>

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
