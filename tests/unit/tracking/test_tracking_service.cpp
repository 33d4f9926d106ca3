#include <catch2/catch.hpp>

#include "../test_support.hpp"
#include "lib/store/metric_ingest.hpp"
#include "lib/store/metrics.hpp"
#include "lib/store/run_layout.hpp"
#include "lib/store/run_store.hpp"
#include "lib/tracking/errors.hpp"
#include "lib/tracking/tracking_endpoint.hpp"
#include "lib/tracking/tracking_service.hpp"
#include "lib/util/fs.hpp"

using namespace amlrun;
using nlohmann::json;
using unit_test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string code_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const tracking::TrackingError& error) {
    return std::to_string(error.status()) + " " + error.code();
  }
  return "none";
}

// A workspace with one Running run, served by a TrackingService.
struct Served {
  TempDir dir;
  workspace::Workspace ws{workspace::create_workspace(dir.path / ".amlrun"), {}};
  store::RunStore runs{ws};
  store::RunRecord record;
  std::optional<util::FileLock> lock;
  int notified = 0;
  std::unique_ptr<tracking::TrackingService> service;

  Served(int world_size = 1) {
    record.id = store::RunStore::new_run_id("exp");
    record.experiment = "exp";
    lock = runs.create(record);
    runs.transition(record, store::RunState::running);
    fs::create_directories(runs.run_dir(record.id) / "wd" / "outputs");
    tracking::TrackingConfig config;
    config.run_id = record.id;
    config.experiment = "exp";
    config.run_dir = runs.run_dir(record.id);
    config.world_size = world_size;
    config.on_metrics = [this] { ++notified; };
    service = std::make_unique<tracking::TrackingService>(ws, config);
  }

  std::string metrics_file(int rank) const {
    return unit_test::read(store::RunTree(runs.run_dir(record.id)).tracking_metrics(rank));
  }
};

}  // namespace

TEST_CASE("log-metric appends a metrics-protocol line to the rank's mlflow file and notifies") {
  Served s(2);
  s.service->log_metric({{"run_id", s.record.id}, {"key", "loss"}, {"value", 0.5}, {"step", "3"}},
                        1);
  s.service->log_metric({{"run_id", s.record.id}, {"key", "loss"}, {"value", "NaN"}, {"step", 4}},
                        1);
  CHECK(s.metrics_file(1) ==
        "{\"name\":\"loss\",\"value\":0.5,\"step\":3}\n{\"name\":\"loss\",\"value\":\"NaN\","
        "\"step\":4}\n");
  CHECK(s.notified == 2);
  // The ingestor reads it as rank 1's.
  store::MetricIngestor ingestor(s.runs, s.record.id,
                                 store::RunTree(s.runs.run_dir(s.record.id)).metrics());
  CHECK(ingestor.ingest(true).points == 2);
  auto points = store::metric_points(s.runs, s.record.id, "loss");
  REQUIRE(points.size() == 2);
  CHECK(points[0].rank == 1);
  CHECK(points[0].step == 3);
}

TEST_CASE("a rank outside the run, a bad name or a negative step stores nothing") {
  Served s(1);
  CHECK(code_of([&] {
          s.service->log_metric({{"run_id", s.record.id}, {"key", "loss"}, {"value", 1}}, 1);
        }) == "400 INVALID_PARAMETER_VALUE");
  CHECK(code_of([&] {
          s.service->log_metric({{"run_id", s.record.id}, {"key", "a..b"}, {"value", 1}}, 0);
        }) == "400 INVALID_PARAMETER_VALUE");
  CHECK(code_of([&] {
          s.service->log_metric(
              {{"run_id", s.record.id}, {"key", "loss"}, {"value", 1}, {"step", -1}}, 0);
        }) == "400 INVALID_PARAMETER_VALUE");
  CHECK_FALSE(fs::exists(store::RunTree(s.runs.run_dir(s.record.id)).tracking_metrics(0)));
  CHECK(s.notified == 0);
}

TEST_CASE("unknown runs are 404, other existing runs are not written (403)") {
  Served s;
  CHECK(code_of([&] {
          s.service->log_param({{"run_id", "nosuchrun"}, {"key", "a"}, {"value", "1"}});
        }) == "404 RESOURCE_DOES_NOT_EXIST");
  store::RunRecord other;
  other.id = store::RunStore::new_run_id("exp");
  other.experiment = "exp";
  s.runs.create(other);
  CHECK(code_of([&] {
          s.service->log_param({{"run_id", other.id}, {"key", "a"}, {"value", "1"}});
        }) == "403 PERMISSION_DENIED");
  CHECK(s.runs.load(other.id).params.empty());
  CHECK(code_of([&] { s.service->get_run("nosuchrun"); }) == "404 RESOURCE_DOES_NOT_EXIST");
  CHECK(code_of([&] { s.service->get_experiment("0"); }) == "404 RESOURCE_DOES_NOT_EXIST");
}

TEST_CASE("a param is logged once: the same value again is fine, another is refused") {
  Served s;
  s.service->log_param({{"run_id", s.record.id}, {"key", "lr"}, {"value", "0.1"}});
  s.service->log_param({{"run_id", s.record.id}, {"key", "lr"}, {"value", "0.1"}});
  try {
    s.service->log_param({{"run_id", s.record.id}, {"key", "lr"}, {"value", "0.2"}});
    FAIL("no error");
  } catch (const tracking::TrackingError& error) {
    CHECK(error.status() == 400);
    CHECK(error.code() == "INVALID_PARAMETER_VALUE");
    CHECK(std::string(error.what()) ==
          "parameter 'lr' of run " + s.record.id +
              " is already '0.1'; a parameter is logged once and cannot be changed to '0.2' (log "
              "it under another name)");
  }
  auto record = s.runs.load(s.record.id);
  CHECK(record.params == std::vector<std::pair<std::string, std::string>>{{"lr", "0.1"}});
}

TEST_CASE("a log-batch with one bad entry stores nothing of it") {
  Served s;
  json batch = {{"run_id", s.record.id},
                {"params", {{{"key", "a"}, {"value", "1"}}}},
                {"tags", {{{"key", "team"}, {"value", "x"}}}},
                {"metrics",
                 {{{"key", "loss"}, {"value", 1}, {"timestamp", 0}, {"step", 0}},
                  {{"key", "bad name"}, {"value", 1}, {"timestamp", 0}, {"step", 0}}}}};
  CHECK(code_of([&] { s.service->log_batch(batch, 0); }) == "400 INVALID_PARAMETER_VALUE");
  auto record = s.runs.load(s.record.id);
  CHECK(record.params.empty());
  CHECK(record.tags.empty());
  CHECK_FALSE(fs::exists(store::RunTree(s.runs.run_dir(s.record.id)).tracking_metrics(0)));
  batch["metrics"].erase(1);
  s.service->log_batch(batch, 0);
  record = s.runs.load(s.record.id);
  CHECK(record.params.size() == 1);
  CHECK(record.tags == std::vector<std::pair<std::string, std::string>>{{"team", "x"}});
}

TEST_CASE("over 1000 metrics in one batch is refused as MLflow refuses it") {
  Served s;
  json metrics = json::array();
  for (int i = 0; i < 1001; ++i) metrics.push_back({{"key", "m"}, {"value", i}, {"step", i}});
  CHECK(code_of([&] {
          s.service->log_batch({{"run_id", s.record.id}, {"metrics", metrics}}, 0);
        }) == "400 INVALID_PARAMETER_VALUE");
}

TEST_CASE("mlflow.* tags are answered by runs/get but not stored as the run's tags") {
  Served s;
  s.service->set_tag({{"run_id", s.record.id}, {"key", "mlflow.source.name"}, {"value", "t.py"}});
  s.service->set_tag({{"run_id", s.record.id}, {"key", "team"}, {"value", "vision"}});
  CHECK(s.runs.load(s.record.id).tags ==
        std::vector<std::pair<std::string, std::string>>{{"team", "vision"}});
  json run = s.service->get_run(s.record.id)["run"];
  CHECK(run["info"]["status"] == "RUNNING");
  CHECK(run["info"]["artifact_uri"] == "mlflow-artifacts:/" + s.record.id + "/outputs");
  bool found = false;
  for (const auto& tag : run["data"]["tags"]) found |= tag["key"] == "mlflow.source.name";
  CHECK(found);
  s.service->delete_tag({{"run_id", s.record.id}, {"key", "team"}});
  CHECK(s.runs.load(s.record.id).tags.empty());
  CHECK(code_of([&] {
          s.service->delete_tag({{"run_id", s.record.id}, {"key", "team"}});
        }) == "404 RESOURCE_DOES_NOT_EXIST");
}

TEST_CASE("runs/create makes a child run of the served run, ended by runs/update") {
  Served s;
  std::string experiment_id = tracking::experiment_id_of("exp");
  json child = s.service->create_run(
      {{"experiment_id", experiment_id},
       {"run_name", "fold-1"},
       {"tags", {{{"key", "mlflow.parentRunId"}, {"value", s.record.id}}}}})["run"];
  std::string id = child["info"]["run_id"];
  auto record = s.runs.load(id);
  CHECK(record.parent_id == s.record.id);
  CHECK(record.display_name == "fold-1");
  CHECK(record.state == store::RunState::running);
  store::RunFilter filter;
  filter.parent = s.record.id;
  auto rows = s.runs.list(filter);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].id == id);
  s.service->log_metric({{"run_id", id}, {"key", "acc"}, {"value", 0.9}}, 0);
  s.service->update_run({{"run_id", id}, {"status", "FINISHED"}});
  record = s.runs.load(id);
  CHECK(record.state == store::RunState::completed);
  CHECK(store::metric_summaries(s.runs, id).size() == 1);
  // The served run itself is not ended by the client.
  s.service->update_run({{"run_id", s.record.id}, {"status", "FINISHED"}});
  CHECK(s.runs.load(s.record.id).state == store::RunState::running);
}

TEST_CASE("artifacts are stored below the outputs, never through a planted link") {
  Served s;
  auto body = [](std::string text) {
    return [text](const std::function<bool(const char*, std::size_t)>& sink) {
      return sink(text.data(), text.size());
    };
  };
  s.service->upload_artifact(s.record.id + "/outputs/model/weights.bin", body("W"));
  fs::path outputs = s.runs.run_dir(s.record.id) / "wd" / "outputs";
  CHECK(unit_test::read(outputs / "model" / "weights.bin") == "W");
  json listing = s.service->list_artifacts(s.record.id + "/outputs");
  CHECK(listing["files"] == json::parse(R"([{"path": "model", "is_dir": true}])"));
  util::UniqueFd fd = s.service->open_artifact(s.record.id + "/outputs/model/weights.bin");
  CHECK(fd);
  TempDir elsewhere;
  fs::create_directory_symlink(elsewhere.path, outputs / "link");
  CHECK(code_of([&] { s.service->upload_artifact(s.record.id + "/outputs/link/x", body("X")); }) ==
        "400 INVALID_PARAMETER_VALUE");
  CHECK(fs::is_empty(elsewhere.path));
  for (const char* bad : {"/outputs/../x", "/outputs//etc/passwd", "/outputs/a/../../x", "/x"}) {
    CHECK(code_of([&] { s.service->upload_artifact(s.record.id + bad, body("X")); }) ==
          "400 INVALID_PARAMETER_VALUE");
  }
  CHECK(code_of([&] { s.service->open_artifact(s.record.id + "/outputs/missing"); }) ==
        "404 RESOURCE_DOES_NOT_EXIST");
}

TEST_CASE("experiments: the run's own is found by id and name; create refuses a taken name") {
  Served s;
  std::string id = tracking::experiment_id_of("exp");
  CHECK(s.service->get_experiment(id)["experiment"]["name"] == "exp");
  CHECK(s.service->get_experiment_by_name("exp")["experiment"]["experiment_id"] == id);
  CHECK(code_of([&] {
          s.service->create_experiment({{"name", "exp"}});
        }) == "400 RESOURCE_ALREADY_EXISTS");
  json created = s.service->create_experiment({{"name", "other"}});
  CHECK(created["experiment_id"] == tracking::experiment_id_of("other"));
  CHECK(s.service->search_experiments(json::object())["experiments"].size() == 2);
  CHECK(code_of([&] {
          s.service->create_experiment({{"name", "a/b"}});
        }) == "400 INVALID_PARAMETER_VALUE");
}

TEST_CASE("the azureml shim's notice becomes one escaped system log line; other bodies are 400") {
  CHECK(tracking::python_shim_notice({{"real_azureml_core", "/venv/lib/azureml/core"}}, 1) ==
        "azureml: rank 1 uses the azureml-core installed in its environment "
        "('/venv/lib/azureml/core'), not amlrun's azureml shim");
  CHECK(
      tracking::python_shim_notice({{"real_azureml_core", "/x\n2026 forged line"}}, 0).find('\n') ==
      std::string::npos);
  for (const auto& body : {nlohmann::json::object(), nlohmann::json{{"real_azureml_core", 3}},
                           nlohmann::json{{"real_azureml_core", "/a"}, {"more", "b"}}}) {
    try {
      tracking::python_shim_notice(body, 0);
      FAIL("no error for " << body.dump());
    } catch (const tracking::TrackingError& error) {
      CHECK(error.status() == 400);
      CHECK(std::string(error.what()) ==
            "a python-shim notice is {\"real_azureml_core\": \"<folder>\"}");
    }
  }
}
