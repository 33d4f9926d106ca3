#include "lib/compute/unsealed_runs.hpp"

#include <fmt/format.h>

#include "lib/compute/compute_target.hpp"
#include "lib/launch/seal.hpp"
#include "lib/store/run_layout.hpp"
#include "lib/util/error.hpp"
#include "lib/util/file_lock.hpp"
#include "lib/util/fs.hpp"

namespace amlrun::compute {

namespace {

// A run whose working directory is still there although nothing owns it any
// more. A run that was just created has its directory before its supervisor
// holds the lock: young ones are left alone, as doctor does with leftovers.
bool is_unsealed(const store::RunStore& store, const std::string& id) {
  store::RunLayout layout(store.run_dir(id));
  if (!launch::has_unsealed_working_directory(layout)) return false;
  if (util::is_locked(layout.owner_lock())) return false;
  return util::older_than(layout.working_dir(), store::k_leftover_age_seconds);
}

}  // namespace

void check_unsealed_runs(store::RunStore& store, bool repair, store::DoctorReport& report) {
  store::RunFilter all;
  all.limit = 0;
  for (const auto& row : store.list(all)) {
    if (!is_unsealed(store, row.id)) continue;
    store::RunLayout layout(store.run_dir(row.id));
    store::Finding finding{
        fmt::format("run {} was not sealed: its outputs and logs are still in {}", row.id,
                    layout.working_dir().string()),
        "seal them into its artifacts and record how the run ended", true};
    if (repair) {
      try {
        auto record = store.load(row.id);
        if (store::is_terminal(record.state)) {
          // Its owner recorded the end and died while sealing: finish that,
          // holding the owner's lock so that no other command seals too.
          auto lock = util::FileLock::try_acquire(layout.owner_lock());
          if (!lock) continue;
          auto sealed = launch::seal_working_directory(layout, [](const std::string&) {});
          if (!sealed.warnings.empty()) {
            for (auto& warning : sealed.warnings) record.warnings.push_back(std::move(warning));
            store.save(record);
          }
        } else {
          refresh_runs(store, {row.id});
        }
        finding.repaired = !launch::has_unsealed_working_directory(layout);
        if (!finding.repaired) {
          finding.action =
              fmt::format("sealing did not finish; see {}", layout.owner_log().string());
        }
      } catch (const util::Error& error) {
        finding.action = fmt::format("sealing failed: {}", error.what());
      }
    }
    report.findings.push_back(std::move(finding));
  }
}

}  // namespace amlrun::compute
