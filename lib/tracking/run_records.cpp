#include "lib/tracking/run_records.hpp"

#include <fmt/format.h>

#include "lib/store/database.hpp"
#include "lib/store/metric_ingest.hpp"
#include "lib/store/metrics.hpp"
#include "lib/store/run_layout.hpp"
#include "lib/store/run_store.hpp"
#include "lib/util/file_lock.hpp"
#include "lib/util/names.hpp"

namespace amlrun::tracking {

namespace {

class StoreRunRecords final : public RunRecords {
 public:
  explicit StoreRunRecords(const workspace::Workspace& workspace) : m_workspace(workspace) {}

  std::set<std::string> experiment_names() override {
    std::set<std::string> names;
    store::Statement query(db().database(), "SELECT DISTINCT experiment FROM runs");
    while (query.step()) names.insert(query.text(0));
    return names;
  }

  std::optional<store::RunRecord> find(const std::string& id) override {
    if (!util::is_valid_name(id) || !fs::exists(db().record_path(id))) return std::nullopt;
    return db().load(id);
  }

  std::vector<std::string> runs_of(const std::string& experiment, int limit) override {
    store::RunFilter filter;
    filter.experiment = experiment;
    filter.limit = limit;
    std::vector<std::string> ids;
    for (const auto& row : db().list(filter)) ids.push_back(row.id);
    return ids;
  }

  std::map<std::string, LastMetric> last_metrics(const std::string& id) override {
    std::map<std::string, LastMetric> last;
    for (const auto& summary : store::metric_summaries(db(), id)) {
      last[summary.name] = {summary.last_value, summary.last_step};
    }
    return last;
  }

  void add_params(const std::string& id, const KeyValues& params) override {
    db().add_params(id, params);
  }

  void update_tags(const std::string& id, const KeyValues& set,
                   const std::vector<std::string>& remove) override {
    db().update_tags(id, set, remove);
  }

  void add_model(const std::string& id, const std::string& model_id,
                 const std::string& name) override {
    db().add_model(id, model_id, name);
  }

  fs::path create_child(store::RunRecord& record) override {
    Child child;
    child.lock = db().create(record);
    db().transition(record, store::RunState::running);
    fs::path dir = db().run_dir(record.id);
    child.ingestor =
        std::make_unique<store::MetricIngestor>(db(), record.id, store::RunTree(dir).metrics());
    m_children[record.id] = std::move(child);
    return dir;
  }

  void child_metrics_appended(const std::string& id) override {
    auto found = m_children.find(id);
    if (found == m_children.end()) return;
    try {
      found->second.ingestor->ingest(/*final=*/false);
    } catch (const std::exception&) {
      // The points are in the file; the final pass stores them.
    }
  }

  void end_child(store::RunRecord& record, store::RunState state,
                 const std::string& reason) override {
    auto found = m_children.find(record.id);
    if (found != m_children.end()) {
      try {
        found->second.ingestor->ingest(/*final=*/true);
      } catch (const std::exception&) {
      }
    }
    if (!store::is_terminal(record.state)) {
      if (state == store::RunState::completed) db().transition(record, store::RunState::finalizing);
      if (!reason.empty()) record.failure_reason = reason;
      db().transition(record, state);
    }
    if (found != m_children.end()) m_children.erase(found);
  }

  std::optional<fs::path> run_dir(const std::string& id) override { return db().run_dir(id); }

 private:
  struct Child {
    std::optional<util::FileLock> lock;               // held while it is open
    std::unique_ptr<store::MetricIngestor> ingestor;  // nobody else ingests a child's metrics
  };

  store::RunStore& db() {
    if (!m_store) m_store.emplace(m_workspace);
    return *m_store;
  }

  workspace::Workspace m_workspace;
  std::optional<store::RunStore> m_store;
  std::map<std::string, Child> m_children;
};

}  // namespace

std::unique_ptr<RunRecords> store_run_records(const workspace::Workspace& workspace) {
  return std::make_unique<StoreRunRecords>(workspace);
}

}  // namespace amlrun::tracking
