// Benchmark driver for the run store: makes large workspaces quickly and
// times library calls from the outside (tests/bench/bench_*.sh call it).
//   store_driver populate WORKSPACE_DIR N       N finished runs, written directly
//   store_driver ingest WORKSPACE_DIR METRICS_DIR   one run; ingests METRICS_DIR,
//                                               prints points and seconds
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "lib/store/metric_ingest.hpp"
#include "lib/store/run_store.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/time.hpp"

using namespace amlrun;

namespace {

workspace::Workspace open(const std::string& dir) {
  return workspace::Workspace(workspace::create_workspace(std::filesystem::path(dir) / ".amlrun"),
                              {});
}

store::RunRecord finished_run(const std::string& experiment, int i) {
  store::RunRecord record;
  record.experiment = experiment;
  // Distinct, increasing creation times, so the listing has a real order.
  auto created = util::Clock::now() - std::chrono::seconds(100000 - i);
  record.id = experiment + "_" + util::utc_compact(created) + "_" + std::to_string(10000000 + i);
  record.created_at = util::utc_iso8601(created);
  record.started_at = record.created_at;
  record.ended_at = util::utc_iso8601(created + std::chrono::seconds(3));
  record.state = i % 7 == 0 ? store::RunState::failed : store::RunState::completed;
  record.exit_code = i % 7 == 0 ? 1 : 0;
  record.tags = {{"seed", std::to_string(i % 5)}};
  record.history = {{store::RunState::queued, record.created_at}, {record.state, record.ended_at}};
  return record;
}

int populate(const std::string& dir, int count) {
  auto workspace = open(dir);
  store::RunStore store(workspace);
  for (int i = 0; i < count; ++i) {
    auto record = finished_run(i % 2 ? "resnet" : "mlp", i);
    std::filesystem::create_directories(store.run_dir(record.id));
    // Not durable (no fsync): a benchmark workspace, made in seconds.
    util::write_file_replace(store.record_path(record.id), store::to_json(record).dump(2) + "\n");
    store.reindex(record);
  }
  return 0;
}

int ingest(const std::string& dir, const std::string& metrics_dir) {
  auto workspace = open(dir);
  store::RunStore store(workspace);
  auto record = finished_run("ingest", 1);
  record.id = store::RunStore::new_run_id("ingest");
  store.create(record);
  auto start = std::chrono::steady_clock::now();
  store::MetricIngestor ingestor(store, record.id, metrics_dir);
  auto pass = ingestor.ingest(/*final=*/true);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("%lld %lld %.3f %s\n", static_cast<long long>(pass.points),
              static_cast<long long>(pass.skipped), seconds, record.id.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string command = argc > 1 ? argv[1] : "";
  if (command == "populate" && argc == 4) return populate(argv[2], std::atoi(argv[3]));
  if (command == "ingest" && argc == 4) return ingest(argv[2], argv[3]);
  std::fprintf(stderr, "usage: store_driver populate DIR N | ingest DIR METRICS_DIR\n");
  return 2;
}
