// download: a run's outputs and logs copied to a local directory.
#include <fmt/format.h>
#include <cstdio>

#include "cli/amlrun/commands.hpp"
#include "cli/amlrun/option_checks.hpp"
#include "cli/amlrun/progress.hpp"
#include "lib/artifacts/download.hpp"
#include "lib/compute/compute_target.hpp"
#include "lib/store/run_store.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/time.hpp"

namespace amlrun::cli {

void add_download(CLI::App& app, GlobalOptions& global, Handler& handler) {
  struct Options {
    std::string id;
    std::string output = ".";
    std::string prefix;
    bool all = false;
    bool partial = false;
  };
  auto options = std::make_shared<Options>();
  app.add_option("ID", options->id, "The run id (or a unique prefix)")->required();
  app.add_option("-o,--output", options->output,
                 "Download into DIR/artifacts/... (default: the current directory)")
      ->check(not_blank());
  app.add_option("--prefix", options->prefix,
                 "Only this file or folder of the artifacts (outputs/model, logs/user_logs)")
      ->check(not_blank());
  app.add_flag("--all", options->all, "Outputs and logs (default: outputs only)");
  app.add_flag("--partial", options->partial,
               "Allow a run that has not ended: download what is there now");
  handler = [options, &global]() {
    auto workspace = workspace::open_workspace(workspace_options(global, false));
    store::RunStore store(workspace);
    artifacts::DownloadRequest request;
    request.run_id = store.resolve(options->id);
    // A run whose supervisor died is recorded as ended first (as show does).
    auto record = store.load(request.run_id);
    compute::target_of(workspace, record)->refresh(store, record);
    request.destination = options->output;
    request.prefix = options->prefix;
    request.all = options->all;
    request.partial = options->partial;
    auto plan = artifacts::plan_download(store, request);
    for (const auto& skipped : plan.skipped) {
      std::fprintf(stderr, "amlrun: warning: skipped %s: %s\n",
                   util::escape_control(skipped.relative).c_str(),
                   util::escape_control(skipped.reason).c_str());
    }
    if (plan.files.empty()) {
      std::fprintf(stderr, "amlrun: run %s has no %s to download\n", request.run_id.c_str(),
                   request.prefix.empty() ? (request.all ? "outputs or logs" : "outputs")
                                          : fmt::format("files under {}", request.prefix).c_str());
      return ExitCode::ok;
    }
    ProgressPrinter printer("download", 2);
    artifacts::CopyOptions copy;
    copy.progress = [&](const artifacts::CopyProgress& progress) { printer.update(progress); };
    auto copied = artifacts::copy_tree(plan, request.destination, copy);
    printer.finish();
    std::uint64_t bytes = 0;
    for (const auto& file : copied) bytes += file.size;
    double seconds = printer.elapsed_seconds();
    std::fprintf(stderr, "amlrun: downloaded %zu file%s (%s) from %s to %s in %s (%s)\n",
                 copied.size(), copied.size() == 1 ? "" : "s", util::format_bytes(bytes).c_str(),
                 request.run_id.c_str(), (request.destination / "artifacts").c_str(),
                 util::format_duration(seconds).c_str(),
                 format_rate(static_cast<double>(bytes) / std::max(seconds, 0.001)).c_str());
    return ExitCode::ok;
  };
}

}  // namespace amlrun::cli
