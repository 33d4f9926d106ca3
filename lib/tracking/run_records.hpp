#pragma once
// Where the tracking endpoint's record-side reads and writes go: params,
// tags, nested runs and what it answers about runs. Two kinds of owner
// serve the endpoint: the local supervisor, which has the workspace and
// writes into the run store (StoreRunRecords), and the Slurm driver on a
// node, which has only the shared run directory and writes a journal there
// that the submitting side merges at collection (JournalRunRecords,
// tracking_journal.hpp). Metrics and artifacts are files below a run
// directory in both cases; only where that directory is differs.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "lib/store/run_record.hpp"
#include "lib/workspace/workspace.hpp"

namespace amlrun::tracking {

namespace fs = std::filesystem;

using KeyValues = std::vector<std::pair<std::string, std::string>>;

struct LastMetric {
  double value = 0;
  std::int64_t step = 0;
};

class RunRecords {
 public:
  virtual ~RunRecords() = default;

  // Experiment names that have runs (the served run's included).
  virtual std::set<std::string> experiment_names() = 0;
  // nullopt: no such run; util::Error: it exists but cannot be read.
  virtual std::optional<store::RunRecord> find(const std::string& id) = 0;
  // Ids of the runs of an experiment, at most `limit`.
  virtual std::vector<std::string> runs_of(const std::string& experiment, int limit) = 0;
  // Stored latest values (what the endpoint itself has not seen logged).
  virtual std::map<std::string, LastMetric> last_metrics(const std::string& id) = 0;

  // util::InputError when a param would change (MLflow's once-only rule) or
  // a tag breaks amlrun's tag rule; anything else: it could not be stored.
  virtual void add_params(const std::string& id, const KeyValues& params) = 0;
  virtual void update_tags(const std::string& id, const KeyValues& set,
                           const std::vector<std::string>& remove) = 0;
  // A logged model of the run (MLflow 3), its files below outputs/models/<model_id>/.
  virtual void add_model(const std::string& id, const std::string& model_id,
                         const std::string& name) = 0;

  // Records a nested run (id, experiment, names, parent and tags filled in)
  // as Running and returns the directory its files go below (a
  // store::RunTree: metrics, artifacts/outputs).
  virtual fs::path create_child(store::RunRecord& record) = 0;
  // Metrics of a nested run were appended below its directory.
  virtual void child_metrics_appended(const std::string& id) = 0;
  // Ends a nested run (completed, failed or canceled).
  virtual void end_child(store::RunRecord& record, store::RunState state,
                         const std::string& reason) = 0;

  // The directory of a run this endpoint does not write, for reading its
  // artifacts; nullopt when it has none here.
  virtual std::optional<fs::path> run_dir(const std::string& id) = 0;
};

// The workspace's run store: what the local supervisor serves through.
// Opens the store on first use, so a run that logs nothing through MLflow
// pays nothing for it.
std::unique_ptr<RunRecords> store_run_records(const workspace::Workspace& workspace);

}  // namespace amlrun::tracking
