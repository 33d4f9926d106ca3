// doctor: check the workspace's index against its files, and repair it.
#include <fmt/format.h>
#include <cstdio>

#include "cli/amlrun/commands.hpp"
#include "lib/compute/local/stale_containers.hpp"
#include "lib/compute/unsealed_runs.hpp"
#include "lib/registry/registry_doctor.hpp"
#include "lib/store/doctor.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::cli {

void add_doctor(CLI::App& app, GlobalOptions& global, Handler& handler) {
  auto repair = std::make_shared<bool>(false);
  app.add_flag("--repair", *repair,
               "Bring the index in line with the run folders and model manifests");
  handler = [repair, &global]() {
    auto workspace = workspace::open_workspace(workspace_options(global, false));
    store::DoctorReport report;
    // The index file first: a damaged one is set aside (with --repair)
    // before anything opens it, and the checks below refill a fresh one.
    if (store::check_index(workspace, *repair, report)) {
      store::RunStore store(workspace);
      registry::ModelRegistry models(store);
      store::check_runs(store, *repair, report);
      compute::check_unsealed_runs(store, *repair, report);
      compute::check_run_containers(store, *repair, report);
      registry::check_models(models, store, *repair, report);
    }
    for (const auto& finding : report.findings) {
      // Findings quote file contents and names: shown escaped.
      std::string problem = util::escape_control(finding.problem);
      std::string action = util::escape_control(finding.action);
      if (finding.repaired) {
        std::printf("repaired: %s (%s)\n", problem.c_str(), action.c_str());
      } else {
        std::printf("problem: %s; %s%s\n", problem.c_str(),
                    finding.repairable && !*repair ? "amlrun doctor --repair will " : "",
                    action.c_str());
      }
    }
    std::size_t repairable = 0;
    for (const auto& finding : report.findings)
      repairable += finding.repairable && !finding.repaired;
    std::size_t left = report.unresolved();
    std::string checked =
        fmt::format("{} run{} and {} model version{} in {}", report.runs_checked,
                    report.runs_checked == 1 ? "" : "s", report.models_checked,
                    report.models_checked == 1 ? "" : "s", workspace.root().string());
    if (report.findings.empty()) {
      std::fprintf(stderr, "amlrun: doctor: checked %s: no problems\n", checked.c_str());
      return ExitCode::ok;
    }
    if (left == 0) {
      std::fprintf(stderr, "amlrun: doctor: checked %s: repaired %zu problem%s\n", checked.c_str(),
                   report.findings.size(), report.findings.size() == 1 ? "" : "s");
      return ExitCode::ok;
    }
    std::fprintf(stderr, "amlrun: doctor: checked %s: %zu problem%s%s\n", checked.c_str(), left,
                 left == 1 ? "" : "s",
                 repairable
                     ? fmt::format("; amlrun doctor --repair fixes {} of them", repairable).c_str()
                     : "");
    return ExitCode::infrastructure;
  };
}

}  // namespace amlrun::cli
