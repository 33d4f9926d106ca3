// validate and init: commands that need no run.
#include <fmt/format.h>
#include <cstdio>

#include "cli/amlrun/commands.hpp"
#include "cli/amlrun/follow.hpp"
#include "cli/amlrun/option_checks.hpp"
#include "lib/spec/loader.hpp"
#include "lib/submit/model_source.hpp"
#include "lib/workspace/workspace.hpp"

namespace amlrun::cli {

void add_validate(CLI::App& app, GlobalOptions& global, Handler& handler) {
  struct Options {
    std::string file;
    std::vector<std::string> overrides;
    OutputFormat output = OutputFormat::yaml;
  };
  auto options = std::make_shared<Options>();
  app.add_option("FILE", options->file, "The job file (YAML)")->required();
  app.add_option("--set", options->overrides, "Override a field: key.path=value (repeatable)");
  const std::map<std::string, OutputFormat> formats = {{"json", OutputFormat::json},
                                                       {"yaml", OutputFormat::yaml}};
  add_choice_option(app, "--output", options->output, formats, "yaml (default) or json");
  handler = [options, &global]() {
    spec::LoadOptions load_options;
    load_options.overrides = options->overrides;
    // A registered model or a run a scoring job names is looked up as
    // submit would (no workspace is created for it).
    load_options.resolve_model =
        submit::workspace_model_resolver(workspace_options(global, /*create_if_missing=*/false));
    auto loaded = spec::load_job_spec(options->file, load_options);
    for (const auto& warning : loaded.warnings) {
      std::fprintf(stderr, "amlrun: %s\n", spec::format_diagnostic(warning).c_str());
    }
    if (options->output == OutputFormat::json) {
      std::printf("%s\n", spec::to_json(loaded.spec).dump(2).c_str());
    } else {
      std::printf("%s", spec::to_yaml(loaded.spec).c_str());
    }
    return ExitCode::ok;
  };
}

void add_init(CLI::App& app, GlobalOptions& global, Handler& handler) {
  auto directory = std::make_shared<std::string>(".");
  app.add_option("DIR", *directory, "Where to create .amlrun/ (default: here)");
  handler = [directory, &global]() {
    std::filesystem::path root =
        global.workspace ? std::filesystem::path(*global.workspace)
                         : std::filesystem::path(*directory) / workspace::k_directory_name;
    root = std::filesystem::absolute(root).lexically_normal();
    bool existed = std::filesystem::exists(root / "config.yml");
    workspace::create_workspace(root);
    workspace::load_config(root / "config.yml");  // a broken config is reported now
    std::fprintf(stderr, "amlrun: %s workspace %s\n", existed ? "reinitialised" : "created",
                 root.c_str());
    return ExitCode::ok;
  };
}

}  // namespace amlrun::cli
