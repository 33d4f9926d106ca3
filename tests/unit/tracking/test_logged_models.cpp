#include <catch2/catch.hpp>

#include "../test_support.hpp"
#include "lib/store/run_store.hpp"
#include "lib/tracking/errors.hpp"
#include "lib/tracking/logged_models.hpp"
#include "lib/tracking/mlflow_json.hpp"
#include "lib/tracking/tracking_service.hpp"
#include "lib/util/fs.hpp"

using namespace amlrun;
using nlohmann::json;
using unit_test::TempDir;
namespace fs = std::filesystem;

namespace {

// "<status> <code>: <message>" of the TrackingError `action` throws.
std::string error_of(const std::function<void()>& action) {
  try {
    action();
  } catch (const tracking::TrackingError& error) {
    return std::to_string(error.status()) + " " + error.code() + ": " + error.what();
  }
  return "none";
}

// A workspace with one Running run of experiment "exp", served.
struct Served {
  TempDir dir;
  workspace::Workspace ws{workspace::create_workspace(dir.path / ".amlrun"), {}};
  store::RunStore runs{ws};
  store::RunRecord record;
  std::optional<util::FileLock> lock;
  std::unique_ptr<tracking::TrackingService> service;

  Served() {
    record.id = store::RunStore::new_run_id("exp");
    record.experiment = "exp";
    lock = runs.create(record);
    runs.transition(record, store::RunState::running);
    fs::create_directories(runs.run_dir(record.id) / "wd" / "outputs");
    tracking::TrackingConfig config;
    config.run_id = record.id;
    config.experiment = "exp";
    config.run_dir = runs.run_dir(record.id);
    service = std::make_unique<tracking::TrackingService>(ws, config);
  }

  json model(const std::string& id) {
    return service->with_models([&](tracking::LoggedModels& models) {
      return tracking::logged_model_json(models.get(id));
    });
  }
};

}  // namespace

TEST_CASE("a logged model belongs to the served run, its files below outputs/models/<id>") {
  Served s;
  json created =
      s.service->create_logged_model({{"experiment_id", tracking::experiment_id_of("exp")},
                                      {"name", "model"},
                                      {"source_run_id", s.record.id},
                                      {"tags", {{{"key", "mlflow.user"}, {"value", "me"}}}},
                                      {"params", {{{"key", "alpha"}, {"value", "0.5"}}}}});
  json info = created["model"]["info"];
  std::string id = info["model_id"];
  CHECK(id.size() == 34);
  CHECK(id.starts_with("m-"));
  CHECK(info["name"] == "model");
  CHECK(info["status"] == "LOGGED_MODEL_PENDING");
  CHECK(info["source_run_id"] == s.record.id);
  CHECK(info["artifact_uri"] == "mlflow-artifacts:/" + s.record.id + "/outputs/models/" + id);
  CHECK(info["tags"] == json::parse(R"([{"key": "mlflow.user", "value": "me"}])"));
  CHECK(created["model"]["data"]["params"] == json::parse(R"([{"key": "alpha", "value": "0.5"}])"));
  // Kept in the run record, for `amlrun show`.
  auto models = s.runs.load(s.record.id).models;
  REQUIRE(models.size() == 1);
  CHECK(models[0] == std::pair<std::string, std::string>(id, "model"));
  // The client uploads its files to its artifact_uri: the run's outputs.
  s.service->upload_artifact(s.record.id + "/outputs/models/" + id + "/MLmodel",
                             [](const std::function<bool(const char*, std::size_t)>& sink) {
                               return sink("flavors: {}\n", 12);
                             });
  CHECK(unit_test::read(s.runs.run_dir(s.record.id) / "wd" / "outputs" / "models" / id /
                        "MLmodel") == "flavors: {}\n");
  // Finalized READY, tagged, given more params.
  s.service->with_models([&](tracking::LoggedModels& m) {
    m.finalize(id, {{"model_id", id}, {"status", "LOGGED_MODEL_READY"}});
    m.set_tags(id, {{"tags", {{{"key", "stage"}, {"value", "dev"}}}}});
    m.log_params(id, {{"params", {{{"key", "beta"}, {"value", "2"}}}}});
    m.delete_tag(id, "mlflow.user");
    return json::object();
  });
  json after = s.model(id);
  CHECK(after["info"]["status"] == "LOGGED_MODEL_READY");
  CHECK(after["info"]["tags"] == json::parse(R"([{"key": "stage", "value": "dev"}])"));
  CHECK(after["data"]["params"].size() == 2);
  CHECK(s.service->log_outputs({{"run_id", s.record.id}, {"models", {{{"model_id", id}}}}}) ==
        json::object());
}

TEST_CASE(
    "logged models: unknown ids are 404, bad input 400, other runs 403, with MLflow's words") {
  Served s;
  CHECK(error_of([&] { s.model("m-0123"); }) ==
        "404 RESOURCE_DOES_NOT_EXIST: Logged model with ID 'm-0123' not found.");
  CHECK(error_of([&] {
          s.service->log_outputs({{"run_id", s.record.id}, {"models", {{{"model_id", "m-9"}}}}});
        }) == "404 RESOURCE_DOES_NOT_EXIST: Logged model with ID 'm-9' not found.");
  CHECK(error_of([&] {
          s.service->create_logged_model({{"experiment_id", "0"}});
        }) == "404 RESOURCE_DOES_NOT_EXIST: No Experiment with id=0 exists");
  CHECK(error_of([&] {
          s.service->create_logged_model({{"source_run_id", "nosuchrun"}});
        }) == "404 RESOURCE_DOES_NOT_EXIST: Run with id=nosuchrun not found");
  store::RunRecord other;
  other.id = store::RunStore::new_run_id("exp");
  other.experiment = "exp";
  s.runs.create(other);
  CHECK(error_of([&] {
          s.service->create_logged_model({{"source_run_id", other.id}});
        }).starts_with("403 PERMISSION_DENIED: run " + other.id + " is not written through"));
  CHECK(error_of([&] {
          s.service->create_logged_model({{"name", "a\nb"}});
        }) ==
        "400 INVALID_PARAMETER_VALUE: Invalid model name 'a\\nb': use at most 256 characters "
        "and no control characters");
  std::string id = s.service->create_logged_model({{"name", "m"}})["model"]["info"]["model_id"];
  CHECK(s.model(id)["info"]["source_run_id"] == s.record.id);  // the served run by default
  CHECK(error_of([&] {
          s.service->with_models([&](tracking::LoggedModels& m) {
            m.finalize(id, {{"status", "DONE"}});
            return json::object();
          });
        }) ==
        "400 INVALID_PARAMETER_VALUE: Invalid value 'DONE' for parameter 'status' supplied: use "
        "LOGGED_MODEL_READY or LOGGED_MODEL_UPLOAD_FAILED");
  CHECK(error_of([&] {
          s.service->with_models([&](tracking::LoggedModels& m) {
            m.delete_tag(id, "nope");
            return json::object();
          });
        }) ==
        "404 RESOURCE_DOES_NOT_EXIST: No tag with key 'nope' found for logged model with ID '" +
            id + "'.");
  // A model's files are artifacts of its run: the same path rules hold.
  for (std::string bad :
       {"/outputs/models/" + id + "/../../../x", std::string("/outputs/models/../../x")}) {
    CHECK(error_of([&] {
            s.service->upload_artifact(
                s.record.id + bad, [](const std::function<bool(const char*, std::size_t)>& sink) {
                  return sink("X", 1);
                });
          }).starts_with("400 INVALID_PARAMETER_VALUE: "));
  }
  CHECK(!fs::exists(s.runs.run_dir(s.record.id) / "wd" / "x"));
}

TEST_CASE("search_logged_models filters by name and source run, newest first, in pages") {
  Served s;
  std::string exp = tracking::experiment_id_of("exp");
  std::vector<std::string> ids;
  for (const char* name : {"a", "b", "a"}) {
    ids.push_back(s.service->create_logged_model({{"name", name}})["model"]["info"]["model_id"]);
  }
  auto search = [&](json body) {
    return s.service->with_models([&](tracking::LoggedModels& m) { return m.search(body); });
  };
  json named = search({{"experiment_ids", {exp}},
                       {"filter", "name = 'a' AND source_run_id = '" + s.record.id + "'"}});
  REQUIRE(named["models"].size() == 2);
  CHECK(!named.contains("next_page_token"));
  json page = search({{"experiment_ids", {exp}}, {"max_results", 2}});
  CHECK(page["models"].size() == 2);
  CHECK(page["next_page_token"] == "2");
  json rest = search({{"experiment_ids", {exp}}, {"max_results", 2}, {"page_token", "2"}});
  CHECK(rest["models"].size() == 1);
  CHECK(search({{"experiment_ids", {"other"}}})["models"].empty());
  CHECK(error_of([&] {
          search({{"experiment_ids", {exp}}, {"filter", "metrics.acc > 1"}});
        }) ==
        "400 INVALID_PARAMETER_VALUE: Invalid filter 'metrics.acc > 1': amlrun's endpoint "
        "filters logged models by name, source_run_id, model_type and status, as \"name = "
        "'model' AND source_run_id = '...'\"");
}
