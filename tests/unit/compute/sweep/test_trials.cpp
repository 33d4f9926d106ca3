// A trial as a run: its id, its job and its record.
#include <catch2/catch.hpp>

#include "lib/compute/sweep/trials.hpp"
#include "lib/launch/command_script.hpp"
#include "lib/launch/program.hpp"

using namespace amlrun;

namespace {

spec::JobSpec sweep_job() {
  spec::JobSpec job;
  job.command = "python train.py --lr ${{search_space.lr}} --name '${{search_space.name}}'";
  job.timeout_seconds = 600;
  spec::SweepSettings settings;
  settings.limits.trial_timeout = 30.5;
  job.sweep = settings;
  return job;
}

const sweep::Assignment k_values = {{"lr", sweep::Value::of_real(0.01)},
                                    {"name", sweep::Value::of_text("a b'c")},
                                    {"model.depth", sweep::Value::of_integer(3)}};

}  // namespace

TEST_CASE("a trial's job carries its values as AZUREML_SWEEP_ variables", "[sweep]") {
  auto trial = compute::trial_job(sweep_job(), k_values);
  CHECK_FALSE(trial.sweep.has_value());
  CHECK(trial.environment_variables ==
        std::vector<std::pair<std::string, std::string>>{{"AZUREML_SWEEP_lr", "0.01"},
                                                         {"AZUREML_SWEEP_name", "a b'c"},
                                                         {"AZUREML_SWEEP_model_depth", "3"}});
  // The shorter of the job's timeout and the trial timeout, whole seconds.
  CHECK(trial.timeout_seconds == 31);
  // The command refers to the variables; values never enter the script.
  CHECK(launch::render_command_script(trial.command) ==
        "python train.py --lr \"${AZUREML_SWEEP_lr}\" --name ''\"${AZUREML_SWEEP_name}\"''");
}

TEST_CASE("a trainer trial's arguments get the values themselves", "[sweep]") {
  auto job = sweep_job();
  job.dialect = spec::Dialect::trainer;
  job.command.clear();
  job.argv = {"amlrun-worker",   "train",
              "--learning-rate", "${{search_space.lr}}",
              "--model",         "${{search_space.model.name}}",
              "--data",          "${{inputs.d}}"};
  auto trial = compute::trial_job(job, k_values);
  CHECK(trial.argv == std::vector<std::string>{"amlrun-worker", "train", "--learning-rate", "0.01",
                                               "--model", "", "--data", "${{inputs.d}}"});
}

TEST_CASE("trials are child runs named after the sweep", "[sweep]") {
  store::RunRecord sweep;
  sweep.id = "tune_20261203T150000_0a1b2c3d";
  sweep.experiment = "tune";
  sweep.snapshot_id = "abc";
  sweep.compute = "cluster";
  auto record = compute::trial_record(sweep, compute::trial_job(sweep_job(), k_values), 7, "slurm");
  CHECK(record.id == "tune_20261203T150000_0a1b2c3d_7");
  CHECK(record.parent_id == sweep.id);
  CHECK(record.display_name == "trial 7");
  CHECK(record.snapshot_id == "abc");
  CHECK(record.compute == "cluster");
  CHECK(record.compute_type == "slurm");
  CHECK(compute::describe_values(k_values) == "lr=0.01 name=a b'c model.depth=3");
}
