#include <catch2/catch.hpp>

#include "../test_support.hpp"
#include "lib/store/metrics.hpp"
#include "lib/store/run_layout.hpp"
#include "lib/store/run_store.hpp"
#include "lib/tracking/errors.hpp"
#include "lib/tracking/tracking_journal.hpp"
#include "lib/tracking/tracking_service.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/strings.hpp"

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

// A Slurm run as both sides see it: its record in a workspace (the
// submitting side) and a shared run directory whose endpoint writes the
// journal (the driver), with nothing shared between the two but the files.
struct SlurmServed {
  TempDir dir;
  workspace::Workspace ws{workspace::create_workspace(dir.path / ".amlrun"), {}};
  store::RunStore runs{ws};
  store::RunRecord record;
  std::optional<util::FileLock> lock;
  fs::path shared;
  std::unique_ptr<tracking::TrackingService> service;

  SlurmServed() {
    record.id = store::RunStore::new_run_id("exp");
    record.experiment = "exp";
    record.compute = "cluster";
    record.compute_type = "slurm";
    lock = runs.create(record);
    runs.transition(record, store::RunState::running);
    shared = dir.path / "shared" / "runs" / record.id;
    fs::create_directories(shared / "wd" / "outputs");
    store::RunRecord served;
    served.id = record.id;
    served.experiment = "exp";
    served.state = store::RunState::running;
    tracking::TrackingConfig config;
    config.run_id = record.id;
    config.experiment = "exp";
    config.run_dir = shared;
    config.world_size = 2;
    service = std::make_unique<tracking::TrackingService>(
        tracking::journal_run_records(shared, served), config);
  }

  fs::path journal() const { return shared / tracking::tracking_journal_relative(); }

  // What collection does: the shared artifacts become the run's.
  std::vector<std::string> collect_and_merge() {
    fs::path local = runs.run_dir(record.id);
    if (!fs::exists(local / "artifacts")) fs::rename(shared / "artifacts", local / "artifacts");
    return tracking::merge_tracking_journal(runs, runs.load(record.id), local);
  }
};

}  // namespace

TEST_CASE("the journal endpoint answers like the store one and writes one fsynced line a call") {
  SlurmServed s;
  s.service->log_param({{"run_id", s.record.id}, {"key", "lr"}, {"value", "0.1"}});
  s.service->set_tag({{"run_id", s.record.id}, {"key", "team"}, {"value", "vision"}});
  // Once-only params, as MLflow: the same value again is fine, another is refused.
  s.service->log_param({{"run_id", s.record.id}, {"key", "lr"}, {"value", "0.1"}});
  CHECK(code_of([&] {
          s.service->log_param({{"run_id", s.record.id}, {"key", "lr"}, {"value", "0.2"}});
        }) == "400 INVALID_PARAMETER_VALUE");
  auto got = s.service->get_run(s.record.id);
  CHECK(got["run"]["data"]["params"] == json::parse(R"([{"key": "lr", "value": "0.1"}])"));
  auto lines = util::split(unit_test::read(s.journal()), '\n');
  REQUIRE(lines.size() == 4);  // header, param, tag, and the empty rest after the last newline
  CHECK(json::parse(lines[0]) == json{{"amlrun_tracking_journal", 1}, {"run", s.record.id}});
  CHECK(json::parse(lines[1]) == json::parse(R"({"op": "params", "run": ")" + s.record.id +
                                             R"(", "values": [["lr", "0.1"]]})"));
  CHECK(json::parse(lines[2]) == json::parse(R"({"op": "tags", "run": ")" + s.record.id +
                                             R"(", "set": [["team", "vision"]], "remove": []})"));
  // Nothing reached the workspace yet: the driver has none.
  CHECK(s.runs.load(s.record.id).params.empty());
}

TEST_CASE("merging a journal puts params, tags and nested runs with their files into the store") {
  SlurmServed s;
  s.service->log_batch({{"run_id", s.record.id},
                        {"params", {{{"key", "epochs"}, {"value", "3"}}}},
                        {"tags", {{{"key", "team"}, {"value", "vision"}}}},
                        {"metrics", {{{"key", "loss"}, {"value", 0.5}, {"step", 1}}}}},
                       1);
  auto child =
      s.service
          ->create_run({{"tags", {{{"key", "mlflow.parentRunId"}, {"value", s.record.id}}}},
                        {"run_name", "inner"}})["run"]["info"]["run_id"]
          .get<std::string>();
  s.service->log_param({{"run_id", child}, {"key", "depth"}, {"value", "2"}});
  s.service->set_tag({{"run_id", child}, {"key", "kind"}, {"value", "trial"}});
  s.service->log_metric({{"run_id", child}, {"key", "acc"}, {"value", 0.75}, {"step", 0}}, 0);
  s.service->upload_artifact(child + "/outputs/note.txt",
                             [](const tracking::BodySink& sink) { return sink("hi", 2); });
  s.service->update_run({{"run_id", child}, {"status", "FINISHED"}});
  // The served run's metrics are files the collection ingests as before.
  CHECK(fs::exists(store::RunTree(s.shared).tracking_metrics(1)));

  CHECK(s.collect_and_merge().empty());
  auto parent = s.runs.load(s.record.id);
  CHECK(parent.params == std::vector<std::pair<std::string, std::string>>{{"epochs", "3"}});
  CHECK(parent.tags == std::vector<std::pair<std::string, std::string>>{{"team", "vision"}});
  auto nested = s.runs.load(child);
  CHECK(nested.parent_id == s.record.id);
  CHECK(nested.display_name == "inner");
  CHECK(nested.state == store::RunState::completed);
  CHECK(nested.compute_type == "slurm");
  CHECK(nested.params == std::vector<std::pair<std::string, std::string>>{{"depth", "2"}});
  CHECK(nested.tags == std::vector<std::pair<std::string, std::string>>{{"kind", "trial"}});
  auto points = store::metric_points(s.runs, child, "acc");
  REQUIRE(points.size() == 1);
  CHECK(points[0].value == 0.75);
  CHECK(unit_test::read(store::RunTree(s.runs.run_dir(child)).outputs() / "note.txt") == "hi");
  CHECK_FALSE(fs::exists(s.runs.run_dir(s.record.id) / tracking::nested_runs_relative()));
  store::RunFilter children;
  children.parent = s.record.id;
  CHECK(s.runs.list(children).size() == 1);

  // A collection that is repeated (it was interrupted) merges nothing twice.
  CHECK(s.collect_and_merge().empty());
  CHECK(s.runs.load(child).state == store::RunState::completed);
}

TEST_CASE("a model logged on Slurm is in the run's record after the merge") {
  SlurmServed s;
  json made = s.service->create_logged_model({{"name", "clf"}});
  const std::string model_id = made["model"]["info"]["model_id"];
  CHECK(s.collect_and_merge().empty());
  CHECK(s.runs.load(s.record.id).models ==
        std::vector<std::pair<std::string, std::string>>{{model_id, "clf"}});
  // Repeated (an interrupted collection): recorded once.
  CHECK(s.collect_and_merge().empty());
  CHECK(s.runs.load(s.record.id).models.size() == 1);
}

TEST_CASE("a nested run left open ends Failed at the merge, saying why") {
  SlurmServed s;
  auto child = s.service->create_run(json::object())["run"]["info"]["run_id"].get<std::string>();
  s.service->end_open_runs();
  s.service.reset();
  CHECK(s.collect_and_merge().empty());
  auto nested = s.runs.load(child);
  CHECK(nested.state == store::RunState::failed);
  CHECK(nested.failure_reason == "the nested run was still open when its parent run ended");
}

TEST_CASE("a damaged journal line is reported by number and skipped; the rest is merged") {
  SlurmServed s;
  s.service->log_param({{"run_id", s.record.id}, {"key", "a"}, {"value", "1"}});
  s.service->log_param({{"run_id", s.record.id}, {"key", "b"}, {"value", "2"}});
  std::string text = unit_test::read(s.journal());
  auto lines = util::split(text, '\n');
  // Line 2 damaged, an entry of an unknown kind, and a tail cut mid-write.
  std::string damaged = lines[0] + "\n{\"op\": \"params\", \"run\n" + lines[2] +
                        "\n{\"op\":\"rename\",\"run\":\"x\"}\n{\"op\":\"tags\",\"ru";
  util::write_file_atomic(s.journal(), damaged);
  auto problems = s.collect_and_merge();
  CHECK(problems ==
        std::vector<std::string>{
            "tracking: logs/system/tracking_journal.jsonl:2: not a JSON object; this entry is "
            "skipped, the rest is merged",
            "tracking: logs/system/tracking_journal.jsonl:4: not a tracking journal entry: "
            "'{\"op\":\"rename\",\"run\":\"x\"}'; it is skipped, the rest is merged",
            "tracking: logs/system/tracking_journal.jsonl:5: the last entry is incomplete (the "
            "run ended while it was being written); it is skipped"});
  CHECK(s.runs.load(s.record.id).params ==
        std::vector<std::pair<std::string, std::string>>{{"b", "2"}});
}

TEST_CASE("a journal without its header, or of another run, merges nothing and says so") {
  auto contents = tracking::read_tracking_journal("{\"op\":\"params\"}\n", "j");
  CHECK(contents.entries.empty());
  CHECK(contents.problems ==
        std::vector<std::string>{"j:1: not an amlrun tracking journal of version 1 (its first "
                                 "line is '{\"op\":\"params\"}'); nothing in it was merged"});

  SlurmServed s;
  s.service->log_param({{"run_id", s.record.id}, {"key", "a"}, {"value", "1"}});
  std::string text = unit_test::read(s.journal());
  std::string other = text;
  other.replace(other.find(s.record.id), s.record.id.size(), "exp_20260101T000000_00000000");
  util::write_file_atomic(s.journal(), other);
  CHECK(
      s.collect_and_merge() ==
      std::vector<std::string>{"tracking: logs/system/tracking_journal.jsonl is the journal of run "
                               "exp_20260101T000000_00000000, not of " +
                               s.record.id + "; nothing in it was merged"});
  CHECK(s.runs.load(s.record.id).params.empty());
}

TEST_CASE("a param the record already has with another value is reported, the record kept") {
  SlurmServed s;
  s.runs.add_params(s.record.id, {{"lr", "0.5"}});
  s.service->log_param({{"run_id", s.record.id}, {"key", "lr"}, {"value", "0.1"}});
  s.service->log_param({{"run_id", s.record.id}, {"key", "seed"}, {"value", "7"}});
  CHECK(s.collect_and_merge() ==
        std::vector<std::string>{"tracking: a param of run " + s.record.id +
                                 " was not merged: parameter 'lr' of run " + s.record.id +
                                 " is already '0.5'; a parameter is logged once and cannot be "
                                 "changed to '0.1' (log it under another name)"});
  CHECK(s.runs.load(s.record.id).params ==
        std::vector<std::pair<std::string, std::string>>{{"lr", "0.5"}, {"seed", "7"}});
}

TEST_CASE("run ids never hold a '.', so MLflow's client takes them as MLFLOW_RUN_ID") {
  std::string id = store::RunStore::new_run_id("cifar.resnet-18");
  CHECK(id.starts_with("cifar-resnet-18_"));
  CHECK(id.find('.') == std::string::npos);
}
