// SlurmTarget against a fake Slurm: the commands it runs (exact argv), what
// it writes under shared_dir, the order of "token saved" and "sbatch", and how
// refresh() moves the record along. The real cluster is in tests/e2e.
#include <catch2/catch.hpp>
#include <fstream>

#include "lib/compute/local/supervisor.hpp"
#include "lib/compute/slurm/run_directory.hpp"
#include "lib/compute/slurm/target.hpp"
#include "lib/util/fs.hpp"
#include "tests/unit/test_support.hpp"

using namespace amlrun;
namespace fs = std::filesystem;
using Strings = std::vector<std::string>;
using store::RunState;
using unit_test::message_of;
using unit_test::read;
using unit_test::TempDir;

namespace {

// Answers Slurm commands from a table the test fills; records every call.
struct FakeSlurm {
  std::vector<Strings> calls;
  std::function<util::CaptureResult(const Strings&)> answer;
  compute::CommandRunner runner() {
    return [this](const Strings& argv) {
      calls.push_back(argv);
      if (answer) return answer(argv);
      return util::CaptureResult{0, "", "", false};
    };
  }
  bool called(const std::string& program) const {
    for (const auto& call : calls) {
      if (call[0] == program) return true;
    }
    return false;
  }
};

util::CaptureResult ok(const std::string& out) {
  return {0, out, "", false};
}

struct Fixture {
  TempDir dir;
  fs::path shared = dir.path / "shared";
  workspace::Workspace ws;
  store::RunStore runs;
  FakeSlurm slurm;

  Fixture() : ws(workspace::create_workspace(dir.path / ".amlrun"), {}), runs(ws) {
    fs::create_directories(shared);
  }

  compute::SlurmSettings settings() const {
    compute::SlurmSettings s;
    s.name = "cluster";
    s.shared_dir = shared;
    s.partition = "gpu";
    return s;
  }

  compute::SlurmTarget target() { return compute::SlurmTarget(ws, settings(), slurm.runner()); }

  spec::JobSpec job() {
    spec::JobSpec spec;
    spec.spec_file = dir.path / "job.yml";
    spec.command = "python train.py";
    spec.display_name = "train 'v2' $(whoami)";
    spec.environment_variables = {{"NOTE", "a,b $(touch /tmp/x)\n'quoted'"}};
    spec.instance_count = 2;
    spec.distribution.type = spec::DistributionType::pytorch;
    spec.distribution.process_count_per_instance = 2;
    spec.timeout_seconds = 600;
    spec::OutputSpec model;
    model.name = "model";
    spec.outputs = {model};
    spec::InputSpec lr;
    lr.name = "lr";
    lr.value = "0.1";
    spec::InputSpec outside;
    outside.name = "data";
    outside.kind = spec::InputSpec::Kind::folder;
    outside.path = dir.write("data/a.txt", "A").parent_path().string();
    spec::InputSpec inside;
    inside.name = "big";
    inside.kind = spec::InputSpec::Kind::file;
    inside.path = (shared / "datasets" / "big.bin").string();
    fs::create_directories(shared / "datasets");
    std::ofstream(inside.path) << "B";
    spec.inputs = {lr, outside, inside};
    return spec;
  }

  // A record as submit_job leaves it for the target: Queued, job.json written.
  std::pair<store::RunRecord, util::FileLock> created(const spec::JobSpec& spec) {
    store::RunRecord record;
    record.id = store::RunStore::new_run_id("exp");
    record.experiment = "exp";
    record.compute = "cluster";
    record.compute_type = "slurm";
    auto lock = runs.create(record);
    util::write_file_atomic(runs.run_dir(record.id) / "job.json", spec::to_json(spec).dump(2));
    return {record, std::move(lock)};
  }

  store::RunRecord refreshed(const std::string& id) {
    return target().refresh(runs, runs.load(id));
  }
};

}  // namespace

TEST_CASE("submit saves the token before sbatch runs, then the job id") {
  Fixture f;
  auto [record, lock] = f.created(f.job());
  std::string id = record.id;
  fs::path run_dir = f.shared / "runs" / id;
  f.slurm.answer = [&](const Strings& argv) {
    if (argv[0] != "sbatch") return ok("");
    // At this moment the record already names the job's comment.
    auto saved = f.runs.load(id);
    CHECK(saved.target.value("submission", "") == "submitting");
    std::string comment = saved.target.value("comment", "");
    CHECK(comment.starts_with("amlrun:" + id + ":"));
    CHECK(argv[3] == "--comment=" + comment);
    return ok("77\n");
  };
  std::vector<std::string> notices;
  auto target = f.target();
  target.set_notice([&](const std::string& text) { notices.push_back(text); });
  target.submit(f.runs, record, std::move(lock));

  REQUIRE(f.slurm.calls.size() == 1);
  auto comment = record.target["comment"].get<std::string>();
  CHECK(f.slurm.calls[0] == Strings{"sbatch", "--parsable", "--job-name=train_v2_whoami",
                                    "--comment=" + comment, "--nodes=2", "--ntasks-per-node=2",
                                    "--output=" + (run_dir / "slurm-%j.out").string(),
                                    "--open-mode=append", "--chdir=" + run_dir.string(),
                                    "--time=12", "--partition=gpu",
                                    (run_dir / "job.sbatch").string()});
  CHECK(record.state == RunState::starting);
  CHECK(record.target["job_id"] == "77");
  CHECK(record.target["submission"] == "submitted");
  CHECK(f.runs.load(id).state == RunState::starting);

  // Everything the nodes need is under shared_dir.
  for (const char* file : {"job.json", "launch.json", "job.env", "job.sbatch"}) {
    CHECK(fs::exists(run_dir / file));
  }
  for (const char* dir : {"wd/outputs/model", "wd/logs", "artifacts/logs/user_logs",
                          "artifacts/logs/system", "artifacts/logs/metrics"}) {
    CHECK(fs::is_directory(run_dir / dir));
  }
  CHECK(
      compute::decode_environment_file(read(run_dir / "job.env"), "job.env") ==
      std::vector<std::pair<std::string, std::string>>{{"NOTE", "a,b $(touch /tmp/x)\n'quoted'"}});
  auto plan = compute::slurm_launch_plan_from_json(read(run_dir / "launch.json"));
  CHECK(plan.run_id == id);
  CHECK(plan.timeout_seconds == 600);
  CHECK(fs::exists(plan.amlrun));
  CHECK(util::is_within(f.shared / "bin", plan.amlrun));
  // An input the nodes may not see is copied; one under shared_dir is used in place.
  CHECK(plan.inputs == std::vector<std::pair<std::string, std::string>>{
                           {"lr", "0.1"},
                           {"data", (run_dir / "inputs" / "data").string()},
                           {"big", (f.shared / "datasets" / "big.bin").string()}});
  CHECK(read(run_dir / "inputs" / "data" / "a.txt") == "A");
  REQUIRE(notices.size() == 1);
  CHECK_THAT(notices[0], Catch::StartsWith("input 'data': copied "));
}

TEST_CASE("a refused submission is recorded as Failed with sbatch's words") {
  Fixture f;
  auto [record, lock] = f.created(f.job());
  f.slurm.answer = [](const Strings&) {
    return util::CaptureResult{1, "", "sbatch: error: invalid partition specified: gpu\n", false};
  };
  auto target = f.target();
  CHECK(message_of([&] { target.submit(f.runs, record, std::move(lock)); }) ==
        "sbatch refused the job (exit code 1): sbatch: error: invalid partition specified: gpu");
  auto saved = f.runs.load(record.id);
  CHECK(saved.state == RunState::failed);
  CHECK(saved.failure_reason ==
        "sbatch refused the job (exit code 1): sbatch: error: invalid partition specified: gpu");
  CHECK_FALSE(fs::exists(f.shared / "runs" / record.id));
}

TEST_CASE("a missing shared_dir is named, with what to do") {
  Fixture f;
  auto [record, lock] = f.created(f.job());
  fs::remove_all(f.shared);
  auto target = f.target();
  CHECK(message_of([&] { target.submit(f.runs, record, std::move(lock)); }) ==
        "shared_dir " + f.shared.string() +
            " of compute target 'cluster' does not exist here; create it on a filesystem that "
            "every node of the cluster mounts at the same path (or fix shared_dir in " +
            f.ws.config_path().string() + ")");
  CHECK(f.runs.load(record.id).state == RunState::failed);
  CHECK_FALSE(f.slurm.called("sbatch"));
}

TEST_CASE("refresh follows the status file and collects the sealed artifacts") {
  Fixture f;
  auto [record, lock] = f.created(f.job());
  f.slurm.answer = [](const Strings& argv) { return ok(argv[0] == "sbatch" ? "77\n" : ""); };
  f.target().submit(f.runs, record, std::move(lock));
  fs::path run_dir = f.shared / "runs" / record.id;

  // squeue shows the job with this run's token as its comment.
  std::string token = f.runs.load(record.id).target["comment"];
  f.slurm.answer = [&](const Strings&) { return ok("77|PENDING|Resources|0|0||" + token + "\n"); };
  auto r = f.refreshed(record.id);
  CHECK(r.state == RunState::starting);
  CHECK(r.target["slurm_state"] == "PENDING");
  CHECK(r.target["slurm_reason"] == "Resources");
  CHECK(f.slurm.calls.back() ==
        Strings{"squeue", "--noheader", "--states=all", "--jobs=77",
                "--Format=JobID:|,State:|,Reason:|,RestartCnt:|,exit_code:|,NodeList:|,Comment:"});

  compute::SlurmJobStatus status;
  status.state = compute::DriverState::running;
  status.job_id = "77";
  status.nodes = {"n1", "n2"};
  status.started = true;
  compute::write_slurm_status(run_dir, status);
  f.slurm.answer = [&](const Strings&) { return ok("77|RUNNING|None|0|0|n[1-2]|" + token + "\n"); };
  r = f.refreshed(record.id);
  CHECK(r.state == RunState::running);
  CHECK(r.target["nodes"] == Strings{"n1", "n2"});

  // The driver sealed and ended; slurmctld has forgotten the job already.
  fs::create_directories(run_dir / "artifacts" / "outputs" / "model");
  std::ofstream(run_dir / "artifacts" / "outputs" / "model" / "w.bin") << "weights";
  fs::create_directories(run_dir / "artifacts" / "logs" / "user_logs");
  std::ofstream(run_dir / "artifacts" / "logs" / "user_logs" / "std_log_rank_0.txt") << "hi\n";
  std::ofstream(run_dir / "slurm-77.out") << "driver log\n";
  status.state = compute::DriverState::ended;
  status.result = RunState::completed;
  status.exit_code = 0;
  compute::write_slurm_status(run_dir, status);
  f.slurm.calls.clear();
  r = f.refreshed(record.id);
  CHECK_FALSE(f.slurm.called("squeue"));  // the status file said it all
  CHECK(r.state == RunState::completed);
  CHECK(r.exit_code == 0);
  CHECK(r.failure_reason.empty());
  CHECK_FALSE(r.target.contains("slurm_state"));
  auto artifacts = f.runs.run_dir(record.id) / "artifacts";
  CHECK(read(artifacts / "outputs" / "model" / "w.bin") == "weights");
  CHECK(read(artifacts / "logs" / "user_logs" / "std_log_rank_0.txt") == "hi\n");
  CHECK(read(artifacts / "logs" / "system" / "slurm-77.out") == "driver log\n");
  CHECK(fs::exists(artifacts / "logs" / "system" / "job.sbatch"));
  CHECK_FALSE(fs::exists(run_dir));
  std::vector<std::string> history;
  for (const auto& change : r.history) history.push_back(store::to_string(change.state));
  CHECK(history ==
        Strings{"Queued", "Preparing", "Starting", "Running", "Finalizing", "Completed"});
}

TEST_CASE("a node failure is reported as such, with what the ranks had written") {
  Fixture f;
  auto [record, lock] = f.created(f.job());
  f.slurm.answer = [](const Strings& argv) { return ok(argv[0] == "sbatch" ? "77\n" : ""); };
  f.target().submit(f.runs, record, std::move(lock));
  fs::path run_dir = f.shared / "runs" / record.id;
  compute::SlurmJobStatus status;
  status.state = compute::DriverState::running;
  status.job_id = "77";
  status.started = true;
  compute::write_slurm_status(run_dir, status);
  std::ofstream(run_dir / "wd" / "outputs" / "model" / "checkpoint") << "step 100";
  std::string token = f.runs.load(record.id).target["comment"];
  f.slurm.answer = [&](const Strings&) {
    return ok("77|NODE_FAIL|NodeDown|0|0|n[1-2]|" + token + "\n");
  };
  auto r = f.refreshed(record.id);
  CHECK(r.state == RunState::failed);
  CHECK(r.failure_reason ==
        "node failure: a node of Slurm job 77 failed (not a failure of the code)");
  CHECK(r.infrastructure_failure);
  CHECK(r.target["slurm_state"] == "NODE_FAIL");
  CHECK(read(f.runs.run_dir(record.id) / "artifacts" / "outputs" / "model" / "checkpoint") ==
        "step 100");
}

TEST_CASE("after an interrupted submission the job is found by its token, not submitted again") {
  Fixture f;
  auto [record, lock] = f.created(f.job());
  std::string id = record.id;
  {
    auto unlocked = std::move(lock);  // the submitter "dies" after saving its token
    record.target["comment"] = "amlrun:" + id + ":feed";
    record.target["shared_run_dir"] = (f.shared / "runs" / id).string();
    f.runs.transition(record, RunState::preparing);
  }
  f.slurm.answer = [&](const Strings& argv) {
    if (argv[0] == "squeue" && argv[3] == "--me") {
      return ok("90|PENDING|Priority|0|0||amlrun:other:1\n91|RUNNING|None|0|0|n1|amlrun:" + id +
                ":feed\n");
    }
    return ok("91|RUNNING|None|0|0|n1|amlrun:" + id + ":feed\n");
  };
  auto r = f.refreshed(id);
  CHECK(r.target["job_id"] == "91");
  CHECK(r.target["submission"] == "recovered by its token");
  CHECK(r.state == RunState::starting);
  CHECK_FALSE(f.slurm.called("sbatch"));
}

TEST_CASE("an interrupted submission that reached no job is Failed, saying so") {
  Fixture f;
  auto [record, lock] = f.created(f.job());
  std::string id = record.id;
  // While the submitter lives (holds the lock), nothing is decided.
  record.target["comment"] = "amlrun:" + id + ":feed";
  f.runs.save(record);
  CHECK(f.refreshed(id).state == RunState::queued);
  CHECK(f.slurm.calls.empty());
  { auto released = std::move(lock); }
  f.slurm.answer = [](const Strings&) { return ok("90|PENDING|Priority|0|0||amlrun:other:1\n"); };
  auto r = f.refreshed(id);
  CHECK(r.state == RunState::failed);
  CHECK(r.failure_reason ==
        "the submission was interrupted before Slurm accepted the job (no Slurm job carries its "
        "token amlrun:" +
            id + ":feed); nothing runs: submit the job again");
}

TEST_CASE("cancel writes the request the driver reads, then calls scancel") {
  Fixture f;
  auto [record, lock] = f.created(f.job());
  f.slurm.answer = [](const Strings& argv) { return ok(argv[0] == "sbatch" ? "77\n" : ""); };
  f.target().submit(f.runs, record, std::move(lock));
  f.slurm.calls.clear();
  std::string token = f.runs.load(record.id).target["comment"];
  f.slurm.answer = [&](const Strings& argv) {
    return ok(argv[0] == "squeue" ? "77|RUNNING|None|0|0|n1|" + token + "\n" : "");
  };
  f.target().request_cancel(f.runs, f.runs.load(record.id));
  // scancel only after squeue showed that job 77 is still this run's.
  REQUIRE(f.slurm.calls.size() == 2);
  CHECK(f.slurm.calls[0][0] == "squeue");
  CHECK(f.slurm.calls[1] == Strings{"scancel", "77"});
  CHECK(fs::exists(f.shared / "runs" / record.id / store::k_cancel_request_file));
  CHECK(f.runs.load(record.id).cancel_requested);

  f.slurm.answer = [&](const Strings&) { return ok("77|CANCELLED|None|0|0||" + token + "\n"); };
  auto r = f.refreshed(record.id);
  CHECK(r.state == RunState::canceled);
  CHECK(r.failure_reason == "canceled by user (amlrun cancel) before it started");
}

TEST_CASE("the logs are looked for in the shared run directory, then in the workspace") {
  Fixture f;
  store::RunRecord record;
  record.id = "exp_20261122T010600_0a1b2c3d";
  auto roots = f.target().log_roots(f.runs, record);
  CHECK(roots == std::vector<fs::path>{f.shared / "runs" / record.id, f.runs.run_dir(record.id)});
}

TEST_CASE("an sbatch that does not answer leaves the run for its token to settle") {
  Fixture f;
  auto [record, lock] = f.created(f.job());
  f.slurm.answer = [](const Strings&) { return util::CaptureResult{-1, "", "", true}; };
  auto target = f.target();
  CHECK_THROWS_AS(target.submit(f.runs, record, std::move(lock)),
                  compute::SubmissionOutcomeUnknown);
  auto saved = f.runs.load(record.id);
  CHECK(saved.state == RunState::preparing);
  CHECK(saved.target["submission"] == "submitting");
  CHECK(fs::exists(f.shared / "runs" / record.id / "job.sbatch"));
}

TEST_CASE("a job image that needs a container runtime the nodes lack is refused") {
  Fixture f;
  auto [record, lock] = f.created(f.job());
  record.environment_mode = "container";
  f.runs.save(record);
  auto target = f.target();
  std::string expected =
      "the job's environment would run in a container (environments.runtime in " +
      f.ws.config_path().string() +
      "), which compute target 'cluster' cannot start on its nodes; give the target a "
      "container: {runtime: pyxis|apptainer, image: ...}, or leave out the job's image and build";
  CHECK(message_of([&] { target.submit(f.runs, record, std::move(lock)); }) == expected);
  auto saved = f.runs.load(record.id);
  CHECK(saved.state == RunState::failed);
  CHECK(saved.failure_reason == "preparing: " + expected);
  CHECK_FALSE(f.slurm.called("sbatch"));
}

TEST_CASE("a job that reused the run's job id is not this run's: never followed, never canceled") {
  // After slurmctld loses its state, job ids start again: job 77 may now be
  // someone else's. Its comment is not this run's token.
  Fixture f;
  auto [record, lock] = f.created(f.job());
  f.slurm.answer = [](const Strings& argv) { return ok(argv[0] == "sbatch" ? "77\n" : ""); };
  f.target().submit(f.runs, record, std::move(lock));
  f.slurm.answer = [](const Strings&) {
    return ok("77|RUNNING|None|0|0|n1|amlrun:other_20261122T010600_00000000:beef\n");
  };
  f.slurm.calls.clear();
  f.target().request_cancel(f.runs, f.runs.load(record.id));
  CHECK_FALSE(f.slurm.called("scancel"));
  auto r = f.refreshed(record.id);
  CHECK(r.state == RunState::canceled);
  CHECK(r.failure_reason == "canceled by user (amlrun cancel)");
  CHECK_FALSE(f.slurm.called("scancel"));

  Fixture g;
  auto [other, other_lock] = g.created(g.job());
  g.slurm.answer = [](const Strings& argv) { return ok(argv[0] == "sbatch" ? "77\n" : ""); };
  g.target().submit(g.runs, other, std::move(other_lock));
  g.slurm.answer = [](const Strings&) {
    return ok("77|RUNNING|None|0|0|n1|amlrun:other_20261122T010600_00000000:beef\n");
  };
  auto lost = g.refreshed(other.id);
  CHECK(lost.state == RunState::failed);
  CHECK(lost.failure_reason ==
        "Slurm no longer knows job 77 and it left no result (it was purged, or slurmctld lost its "
        "state)");
}
