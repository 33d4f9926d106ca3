// Sweep jobs through the loader: the trial (inline, a file, a trainer), the
// placeholders it may use, and the stored form a controller reads back.
#include <catch2/catch.hpp>

#include "lib/spec/job_spec.hpp"
#include "spec_test_support.hpp"

using namespace amlrun;
using namespace spec_test;

namespace {

const std::string k_search =
    "sampling_algorithm: random\n"
    "search_space:\n"
    "  lr: {type: loguniform, min_value: -9, max_value: -2}\n"
    "  optimizer: {type: choice, values: [sgd, adam]}\n"
    "objective: {goal: minimize, primary_metric: val_loss}\n"
    "limits: {max_total_trials: 4, max_concurrent_trials: 2}\n";

// The error lines of a SpecError's text (without the source excerpts and
// the count), joined by newlines.
std::string error_lines(const std::string& text) {
  std::string out;
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = std::min(text.find('\n', start), text.size());
    std::string line = text.substr(start, end - start);
    const bool excerpt = line.starts_with(" ");
    const bool count = line.find(" error in ") != std::string::npos ||
                       line.find(" errors in ") != std::string::npos;
    if (!excerpt && !count && !line.empty()) out += (out.empty() ? "" : "\n") + line;
    start = end + 1;
  }
  return out;
}

std::string compat(const std::string& name) {
  return std::string(AMLRUN_SOURCE_DIR) + "/../shared/compat/azureml-sweep-jobs/" + name;
}

}  // namespace

TEST_CASE("an inline command trial becomes the sweep's job", "[sweep]") {
  JobDir dir;
  auto loaded = load(dir,
                     "type: sweep\n"
                     "experiment_name: tune\n"
                     "compute: local\n"
                     "inputs: {epochs: 3}\n"
                     "trial:\n"
                     "  code: src\n"
                     "  command: python train.py --lr ${{search_space.lr}} --opt "
                     "${{search_space.optimizer}} --epochs ${{inputs.epochs}}\n"
                     "  environment_variables: {A: b}\n" +
                         k_search);
  const auto& job = loaded.spec;
  REQUIRE(job.sweep);
  CHECK(job.dialect == spec::Dialect::command);
  CHECK(job.experiment_name == "tune");
  CHECK(job.code_dir == dir.path / "src");
  CHECK(job.inputs.size() == 1);
  CHECK(job.environment_variables == std::vector<std::pair<std::string, std::string>>{{"A", "b"}});
  CHECK(job.sweep->limits.max_concurrent_trials == 2);

  // What job.json holds reads back the same.
  auto stored = spec::to_json(job);
  auto again = spec::job_spec_from_json(stored);
  REQUIRE(again.sweep);
  CHECK(spec::to_json(again) == stored);
  CHECK(stored["sweep"]["search_space"]["lr"].dump() ==
        R"({"type":"loguniform","min_value":-9.0,"max_value":-2.0})");
}

TEST_CASE("Azure's sweep files load, refused only on their Azure-only lines", "[sweep]") {
  auto grid = spec::load_job_spec(compat("sweep-grid.yml"));
  REQUIRE(grid.spec.sweep);
  CHECK(grid.spec.experiment_name == "sweep-examples");
  CHECK(grid.spec.command ==
        "python train.py --lr ${{search_space.lr}} --optimizer ${{search_space.optimizer}}");
  for (const char* name : {"sweep-random-sobol.yml", "sweep-truncation.yml"}) {
    CHECK(spec::load_job_spec(compat(name)).spec.sweep.has_value());
  }
  std::string errors;
  try {
    spec::load_job_spec(compat("sweep-bayesian-azure.yml"));
  } catch (const std::exception& error) {
    errors = error.what();
  }
  CHECK(errors.find("sweep-bayesian-azure.yml:4:10: compute: 'azureml:cpu-cluster'") !=
        std::string::npos);
  CHECK(errors.find(std::filesystem::path(compat("trial.yml")).lexically_normal().string() +
                    ":4:14: environment: 'azureml:AzureML-sklearn-1.5@latest' is an "
                    "Azure ML environment asset") != std::string::npos);
  // Nothing else: two errors.
  CHECK(error_lines(errors).find('\n', error_lines(errors).find('\n') + 1) == std::string::npos);
}

TEST_CASE("a trial's placeholders are checked against the search space", "[sweep]") {
  JobDir dir;
  CHECK(error_lines(
            errors_of(dir,
                      "type: sweep\n"
                      "trial: {command: 'python src/train.py --lr ${{search_space.lrr}} --opt "
                      "${{search_space.optimizer}}'}\n" +
                          k_search)) ==
        "job.yml:2:44: command: ${{search_space.lrr}} refers to a parameter that is not in "
        "search_space (did you mean 'lr'?)");
  CHECK(
      error_lines(errors_of(dir,
                            "type: sweep\n"
                            "trial: {command: 'python src/train.py --lr ${{search_space.lr}}'}\n" +
                                k_search)) ==
      "job.yml:6:3: search_space.optimizer: the parameter is never used: the trial has no "
      "${{search_space.optimizer}}; pass it to the trial (e.g. --optimizer "
      "${{search_space.optimizer}} in its command) or remove it");
  CHECK(error_lines(errors_of(dir, "command: python train.py --lr ${{search_space.lr}}\n")) ==
        "job.yml:1:31: command: ${{search_space.lr}} names a sweep parameter, and this is not a "
        "sweep's trial; write a sweep job (type: sweep, with search_space and trial) or give the "
        "value as an input");
  CHECK(error_lines(errors_of(dir, "type: sweep\n" + k_search)) ==
        "job.yml:1:1: trial: missing: the job each trial runs, as an inline command job (trial: "
        "{code: src, command: python train.py --lr ${{search_space.lr}}}), a trainer job (trial: "
        "{type: train_pytorch_model, ...}) or the path of a command-job file (trial: "
        "./trial.yml)");
}

TEST_CASE("a trainer trial sweeps the worker's settings", "[sweep]") {
  JobDir dir;
  std::filesystem::create_directories(dir.path / "images" / "cat");
  auto loaded = load(dir,
                     "type: sweep\n"
                     "trial:\n"
                     "  type: train_pytorch_model\n"
                     "  train_data: images\n"
                     "  validation_data: images\n"
                     "  model: ${{search_space.model}}\n"
                     "  learning_rate: ${{search_space.lr}}\n"
                     "  epochs: 2\n"
                     "search_space:\n"
                     "  lr: {type: uniform, min_value: 0.001, max_value: 0.1}\n"
                     "  model: {type: choice, values: [resnet18, resnet34]}\n"
                     "sampling_algorithm: random\n"
                     "objective: {goal: maximize, primary_metric: val_accuracy}\n");
  const auto& argv = loaded.spec.argv;
  auto after = [&](const std::string& flag) {
    auto it = std::find(argv.begin(), argv.end(), flag);
    REQUIRE(it != argv.end());
    return *(it + 1);
  };
  CHECK(after("--model") == "${{search_space.model}}");
  CHECK(after("--learning-rate") == "${{search_space.lr}}");
  CHECK(after("--epochs") == "2");
  CHECK(loaded.spec.dialect == spec::Dialect::trainer);
  CHECK(error_lines(errors_of(dir,
                              "type: sweep\n"
                              "trial:\n"
                              "  type: train_pytorch_model\n"
                              "  train_data: images\n"
                              "  validation_data: images\n"
                              "  learning_rate: 0.1 ${{search_space.lr}}\n"
                              "search_space:\n"
                              "  lr: {type: uniform, min_value: 0.001, max_value: 0.1}\n"
                              "sampling_algorithm: random\n"
                              "objective: {goal: maximize, primary_metric: val_accuracy}\n")) ==
        "job.yml:6:18: trial.learning_rate: '0.1 ${{search_space.lr}}' is not a value of "
        "learning_rate; in a sweep's trial the whole value may be ${{search_space.NAME}}");
}
