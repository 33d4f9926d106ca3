#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "lib/spec/sweep_settings.hpp"
#include "lib/spec/yaml_tree.hpp"

using namespace amlrun;
using namespace amlrun::spec;

namespace {
struct Read {
  std::optional<SweepSettings> settings;
  std::vector<std::string> errors;  // "line:col: key: message"
};

// The sweep keys of a job file's text; the keys the sweep reader does not
// own (type, trial, the common ones) are accepted as the loader will.
Read read(const std::string& text) {
  auto source = std::make_shared<Source>(Source{"sweep.yml", text});
  Diagnostics diagnostics;
  NodePtr root = parse_yaml(source, diagnostics);
  REQUIRE(root);
  MapReader reader(root, "", diagnostics);
  reader.accept({"type", "trial", "$schema", "experiment_name", "display_name", "compute", "inputs",
                 "outputs", "name", "description", "tags"});
  Read out;
  out.settings = read_sweep_settings(reader, diagnostics);
  reader.finish();
  for (const Diagnostic& d : diagnostics.errors_in_file_order()) {
    out.errors.push_back(
        fmt::format("{}:{}: {}: {}", d.mark.line, d.mark.column, d.key_path, d.message));
  }
  return out;
}

std::string file(const std::string& name) {
  std::ifstream in(std::string(AMLRUN_SOURCE_DIR) + "/../shared/compat/azureml-sweep-jobs/" + name);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

const std::string k_rest =
    "objective: {goal: minimize, primary_metric: val_loss}\nlimits: {max_total_trials: 4}\n";
}  // namespace

TEST_CASE("Azure's sweep files give typed settings", "[sweep]") {
  Read grid = read(file("sweep-grid.yml"));
  REQUIRE(grid.errors.empty());
  CHECK(grid.settings->algorithm == SamplingAlgorithm::grid);
  CHECK(sweep::grid_size(grid.settings->search_space) == 6);
  CHECK(grid.settings->primary_metric == "val_loss");
  const auto& median = std::get<sweep::MedianStoppingPolicy>(*grid.settings->early_termination);
  CHECK(median.delay_evaluation == 3);
  CHECK(grid.settings->limits.max_total_trials == 6);
  CHECK(grid.settings->limits.max_concurrent_trials == 3);

  Read sobol = read(file("sweep-random-sobol.yml"));
  REQUIRE(sobol.errors.empty());
  CHECK(sobol.settings->seed == 42U);
  CHECK(sobol.settings->rule == sweep::RandomRule::sobol);
  const auto& bandit = std::get<sweep::BanditPolicy>(*sobol.settings->early_termination);
  CHECK(bandit.slack_amount == 0.2);
  CHECK_FALSE(bandit.slack_factor.has_value());
  CHECK(bandit.delay_evaluation == 2);
  const auto& lr =
      std::get<sweep::LogUniform>(sobol.settings->search_space.parameters[0].distribution);
  CHECK(lr.min_value == -9.2);

  for (const char* name : {"sweep-bayesian-azure.yml", "sweep-truncation.yml"}) {
    Read other = read(file(name));
    CHECK(other.errors == std::vector<std::string>{});
  }
}

TEST_CASE("choice values keep their kind; maps are nested sub-spaces", "[sweep]") {
  Read r = read(
      "sampling_algorithm: random\n"
      "search_space:\n"
      "  batch: {type: choice, values: [16, 0.5, '32', adam]}\n"
      "  optimizer:\n"
      "    type: choice\n"
      "    values:\n"
      "      - {name: sgd, momentum: {type: uniform, min_value: 0.5, max_value: 0.99}}\n"
      "      - {name: adam}\n" +
      k_rest);
  REQUIRE(r.errors.empty());
  const auto& batch = std::get<sweep::Choice>(r.settings->search_space.parameters[0].distribution);
  CHECK(batch.options[0].value == sweep::Value::of_integer(16));
  CHECK(batch.options[1].value == sweep::Value::of_real(0.5));
  CHECK(batch.options[2].value == sweep::Value::of_text("32"));
  CHECK(batch.options[3].value == sweep::Value::of_text("adam"));
  // batch, optimizer, sgd's name and momentum, adam's name
  CHECK(sweep::dimensions(r.settings->search_space) == 5);
}

TEST_CASE("mistakes in the sweep keys are named where they are, all at once", "[sweep]") {
  Read r = read(
      "sampling_algorithm: randm\n"
      "search_space:\n"
      "  lr: {type: unifrom, min_value: 0, max_value: 1}\n"
      "  wd: {type: uniform, min_value: 1, max_value: 0.5}\n"
      "  q: {type: quniform, min_value: 1, max_value: 5}\n"
      "  n: {type: normal, mu: 0, sigma: 0}\n"
      "  bad-name: {type: randint, upper: 3}\n"
      "  c: {type: choice, values: []}\n"
      "  r: {type: randint, uppr: 3}\n"
      "objective: {goal: minimise}\n"
      "early_termination: {type: bandit, slack_factor: 0.1, slack_amount: 0.2, "
      "truncation_percentage: 5}\n"
      "limits: {max_total_trials: 0, max_concurent_trials: 2}\n");
  CHECK(r.errors ==
        std::vector<std::string>{
            "1:21: sampling_algorithm: 'randm' is not one of random, grid, bayesian (did you mean "
            "'random'?)",
            "3:14: search_space.lr.type: 'unifrom' is not one of choice, randint, uniform, "
            "loguniform, quniform, qloguniform, normal, lognormal, qnormal, qlognormal (did you "
            "mean 'uniform'?)",
            "4:48: search_space.wd.max_value: must be greater than min_value (1)",
            "5:6: search_space.q.q: missing: this distribution needs it",
            "6:35: search_space.n.sigma: must be greater than 0",
            "7:3: search_space.bad-name: 'bad-name' is not a parameter name: use letters, digits "
            "and _ (it becomes ${{search_space.NAME}} and AZUREML_SWEEP_NAME)",
            "8:29: search_space.c.values: expected a non-empty list of values, got an empty list",
            "9:6: search_space.r.upper: missing: this distribution needs it",
            "9:22: search_space.r.uppr: unknown key 'uppr' (did you mean 'upper'?)",
            "10:12: objective.primary_metric: missing: give the name of the metric the trials log",
            "10:19: objective.goal: 'minimise' is not one of minimize, maximize (did you mean "
            "'minimize'?)",
            "11:20: early_termination: a bandit policy takes exactly one of slack_factor and "
            "slack_amount",
            "11:73: early_termination.truncation_percentage: only a "
            "truncation_selection policy takes it",
            "12:28: limits.max_total_trials: must be between 1 and 1000000, got 0",
            "12:31: limits.max_concurent_trials: unknown key 'max_concurent_trials' (did you mean "
            "'max_concurrent_trials'?)"});
  CHECK_FALSE(r.settings.has_value());
}

TEST_CASE("combinations that cannot work are refused with what to change", "[sweep]") {
  Read grid = read(
      "sampling_algorithm: grid\n"
      "search_space:\n"
      "  lr: {type: uniform, min_value: 0, max_value: 1}\n"
      "  opt: {type: choice, values: [{name: sgd, m: {type: uniform, min_value: 0, max_value: "
      "1}}]}\n" +
      k_rest);
  CHECK(grid.errors ==
        std::vector<std::string>{
            "1:1: sampling_algorithm: grid sampling takes only choice parameters of fixed values; "
            "search_space.lr is uniform (list its values in a choice, or use random sampling)",
            "1:1: sampling_algorithm: grid sampling takes only choice parameters of fixed values; "
            "search_space.opt.m is uniform (list its values in a choice, or use random "
            "sampling)"});
  Read bayesian = read(
      "sampling_algorithm: bayesian\n"
      "search_space:\n"
      "  lr: {type: loguniform, min_value: -9, max_value: -1}\n"
      "early_termination: {type: median_stopping}\n" +
      k_rest);
  CHECK(bayesian.errors ==
        std::vector<std::string>{
            "1:1: sampling_algorithm: bayesian sampling takes choice, uniform and quniform "
            "parameters; search_space.lr is loguniform (use random sampling)",
            "4:20: early_termination: bayesian sampling does not take an early termination "
            "policy (Azure ML refuses it too): remove early_termination, or use random "
            "sampling"});
  Read seed = read(
      "sampling_algorithm: {type: grid, seed: 3}\nsearch_space: {a: {type: choice, "
      "values: [1]}}\n" +
      k_rest);
  CHECK(seed.errors ==
        std::vector<std::string>{"1:34: sampling_algorithm.seed: only random sampling takes it"});
  Read missing = read("type: sweep\n");
  CHECK(missing.errors.size() == 3);
  CHECK(missing.errors[0] ==
        "1:1: search_space: missing: a sweep needs the parameters to search (search_space: {lr: "
        "{type: uniform, min_value: 0.001, max_value: 0.1}})");
}
