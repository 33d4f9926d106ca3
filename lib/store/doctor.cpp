#include "lib/store/doctor.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <optional>
#include <set>

#include "lib/store/metric_ingest.hpp"
#include "lib/store/metrics.hpp"
#include "lib/store/run_listing.hpp"
#include "lib/util/error.hpp"
#include "lib/util/file_lock.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/names.hpp"
#include "lib/util/time.hpp"

namespace amlrun::store {

namespace {

class RunChecker {
 public:
  RunChecker(RunStore& store, bool repair, DoctorReport& report)
      : m_store(store), m_repair(repair), m_report(report) {}

  void run() {
    RunFilter all;
    all.limit = 0;
    auto rows = m_store.list(all);
    std::set<std::string> indexed;
    for (const auto& row : rows) {
      indexed.insert(row.id);
      check_indexed(row);
    }
    std::error_code error;
    std::vector<fs::directory_entry> entries;
    for (fs::directory_iterator it(m_store.workspace().runs_dir(), error), end; !error && it != end;
         it.increment(error)) {
      entries.push_back(*it);
    }
    // Sorted, so a report reads the same every time.
    std::sort(entries.begin(), entries.end());
    std::set<std::string> on_disk;
    for (const auto& entry : entries) {
      std::string name = entry.path().filename().string();
      if (!util::is_valid_name(name) || !entry.is_directory()) {
        add({fmt::format("{} is not a run directory", entry.path().string()),
             "move it out of the workspace", false});
        continue;
      }
      on_disk.insert(name);
      ++m_report.runs_checked;
      check_leftover_temp_files(name);
      if (!indexed.count(name)) check_unindexed(name);
      if (m_report.index_rebuilt && util::is_locked(m_store.lock_path(name))) {
        // Its supervisor opened the index before it was set aside and goes
        // on writing there; its record and sealed metrics are read again
        // once it has ended.
        add({fmt::format("run {} is still going: its supervisor keeps writing to the index that "
                         "was set aside",
                         name),
             "run amlrun doctor --repair again once it has ended", false});
      }
    }
    for (const auto& id : runs_with_metrics(m_store)) {
      if (on_disk.count(id)) continue;
      auto& finding =
          add({fmt::format("the index holds metrics of run {}, which no longer exists", id),
               "drop them from the index", true});
      if (m_repair) {
        delete_run_metrics(m_store, id);
        finding.repaired = true;
      }
    }
  }

 private:
  Finding& add(Finding finding) {
    m_report.findings.push_back(std::move(finding));
    return m_report.findings.back();
  }

  void check_indexed(const IndexRow& row) {
    fs::path record = m_store.record_path(row.id);
    std::error_code error;
    if (!fs::exists(record, error)) {
      auto& finding =
          add({fmt::format("run {} is in the index but {} is missing", row.id, record.string()),
               "drop it (and its metrics) from the index", true});
      if (m_repair) {
        m_store.unindex(row.id);
        delete_run_metrics(m_store, row.id);
        finding.repaired = true;
      }
      return;
    }
    RunRecord loaded;
    try {
      loaded = m_store.load(row.id);
    } catch (const util::Error& e) {
      add({e.what(),
           fmt::format("restore {} from a backup, or remove {}", record.string(),
                       m_store.run_dir(row.id).string()),
           false});
      return;
    }
    if (!row_matches_record_file(m_store, row)) {
      auto& finding = add({fmt::format("the index entry of run {} is out of date", row.id),
                           "re-index it from its run.json", true});
      if (m_repair) {
        m_store.reindex(loaded);
        finding.repaired = true;
      }
    }
    check_metrics(loaded);
  }

  void check_unindexed(const std::string& id) {
    fs::path record = m_store.record_path(id);
    std::error_code error;
    if (!fs::exists(record, error)) {
      // create() makes the directory and takes the lock before the record
      // exists: a held lock means a submission in progress.
      bool busy = util::is_locked(m_store.lock_path(id)) ||
                  !util::older_than(m_store.run_dir(id), k_leftover_age_seconds);
      if (busy) return;
      auto& finding = add({fmt::format("{} has no run.json (a submission interrupted before it "
                                       "was recorded)",
                                       m_store.run_dir(id).string()),
                           "remove the directory", true});
      if (m_repair) {
        fs::remove_all(m_store.run_dir(id), error);
        finding.repaired = !error;
      }
      return;
    }
    RunRecord loaded;
    try {
      loaded = m_store.load(id);
    } catch (const util::Error& e) {
      add({e.what(),
           fmt::format("restore {} from a backup, or remove {}", record.string(),
                       m_store.run_dir(id).string()),
           false});
      return;
    }
    auto& finding =
        add({fmt::format("run {} is not in the index", id), "index it from its run.json", true});
    if (m_repair) {
      m_store.reindex(loaded);
      finding.repaired = true;
    }
    check_metrics(loaded);
  }

  // A kill between writing a temp file and renaming it leaves the temp file.
  void check_leftover_temp_files(const std::string& id) {
    std::error_code error;
    for (fs::directory_iterator it(m_store.run_dir(id), error), end; !error && it != end;
         it.increment(error)) {
      std::string name = it->path().filename().string();
      if (name.find(".tmp.") == std::string::npos ||
          !util::older_than(it->path(), k_leftover_age_seconds)) {
        continue;
      }
      auto& finding =
          add({fmt::format("{} is left over from an interrupted write", it->path().string()),
               "remove it", true});
      if (m_repair) {
        std::error_code removed;
        fs::remove(it->path(), removed);
        finding.repaired = !removed;
      }
    }
  }

  // A finished run's sealed metrics files should be fully in the index (a
  // rebuilt index, or a supervisor killed before its last pass).
  void check_metrics(const RunRecord& record) {
    if (!is_terminal(record.state)) return;
    fs::path dir = m_store.run_dir(record.id) / "artifacts" / "logs" / "metrics";
    auto offsets = ingested_offsets(m_store, record.id);
    bool behind = false;
    std::error_code error;
    for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
      std::string name = it->path().filename().string();
      int source = metric_source_of_file(name);
      if (source < 0) continue;
      auto size = static_cast<std::int64_t>(it->file_size(error));
      auto found = offsets.find(source);
      if (found == offsets.end() || found->second < size) behind = true;
    }
    if (!behind) return;
    auto& finding = add({fmt::format("metrics of run {} are not all in the index", record.id),
                         "ingest its sealed metrics files", true});
    if (m_repair) {
      MetricIngestor ingestor(m_store, record.id, dir);
      ingestor.ingest(/*final=*/true);
      finding.repaired = true;
    }
  }

  RunStore& m_store;
  bool m_repair;
  DoctorReport& m_report;
};

}  // namespace

bool check_index(const workspace::Workspace& workspace, bool repair, DoctorReport& report) {
  fs::path path = workspace.index_path();
  std::optional<std::string> damage;
  try {
    Database db(path);
    damage = db.damage();
  } catch (const DamagedIndexError& error) {
    damage = error.detail();
  }
  if (!damage) return true;
  Finding finding{fmt::format("the index {} is damaged ({})", path.string(), *damage),
                  "set it aside (renamed, kept) and rebuild the index from the run folders and "
                  "model manifests",
                  true};
  if (repair) {
    fs::path aside = set_aside_damaged_index(path);
    finding.action = fmt::format(
        "set it aside as {}; the index is rebuilt from the run folders and model manifests",
        aside.string());
    finding.repaired = true;
    report.index_rebuilt = true;
  }
  report.findings.push_back(std::move(finding));
  return repair;
}

void check_runs(RunStore& store, bool repair, DoctorReport& report) {
  RunChecker(store, repair, report).run();
}

}  // namespace amlrun::store
