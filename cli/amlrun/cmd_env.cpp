// amlrun env show|context|build: a job's environment, its canonical form and
// hash, its container build context, and its image.
#include <fmt/format.h>
#include <cstdio>
#include <optional>

#include "cli/amlrun/commands.hpp"
#include "cli/amlrun/option_checks.hpp"
#include "lib/env/context.hpp"
#include "lib/env/environment.hpp"
#include "lib/env/image.hpp"
#include "lib/env/runtime.hpp"
#include "lib/spec/loader.hpp"

namespace amlrun::cli {

namespace {

struct EnvOptions {
  std::string file;
  std::vector<std::string> overrides;
  std::string output_dir;
  std::string runtime;
  std::string format = "text";
};

struct Loaded {
  spec::JobSpec job;
  workspace::Workspace workspace;
  env::Environment environment;
  std::string hash;
};

Loaded load(const EnvOptions& options, const GlobalOptions& global) {
  spec::LoadOptions load_options;
  load_options.overrides = options.overrides;
  auto loaded = spec::load_job_spec(options.file, load_options);
  for (const auto& warning : loaded.warnings) {
    std::fprintf(stderr, "amlrun: %s\n", spec::format_diagnostic(warning).c_str());
  }
  auto workspace =
      workspace::open_workspace(workspace_options(global, /*create_if_missing=*/false));
  auto environment = env::resolve_environment(loaded.spec, workspace.config().environments);
  std::string hash = env::environment_hash(environment);
  return Loaded{loaded.spec, workspace, environment, hash};
}

void add_file_options(CLI::App& app, EnvOptions& options) {
  app.add_option("FILE", options.file, "The job file (YAML)")->required();
  app.add_option("--set", options.overrides, "Override a field: key.path=value (repeatable)");
}

const std::map<std::string, std::string> k_formats = {{"text", "text"}, {"json", "json"}};
const std::map<std::string, std::string> k_runtimes = {
    {"docker", "docker"}, {"podman", "podman"}, {"apptainer", "apptainer"}};

}  // namespace

void add_env(CLI::App& app, GlobalOptions& global, Handler& handler) {
  app.require_subcommand(1);
  auto options = std::make_shared<EnvOptions>();
  auto* show = app.add_subcommand("show", "Print the environment's canonical form and hash");
  add_file_options(*show, *options);
  add_choice_option(*show, "--output", options->format, k_formats, "text or json");
  auto* context = app.add_subcommand("context", "Write the container build context");
  add_file_options(*context, *options);
  context->add_option("-o,--output-dir", options->output_dir, "A new or empty directory")
      ->required()
      ->check(not_blank());
  auto* build = app.add_subcommand("build", "Build the image amlrun-env:<hash>");
  add_file_options(*build, *options);
  add_choice_option(*build, "--runtime", options->runtime, k_runtimes,
                    "docker, podman or apptainer (default: the first that works)");

  handler = [options, show, context, build, &global]() {
    Loaded loaded = load(*options, global);
    const auto& settings = loaded.workspace.config().environments;
    if (show->parsed()) {
      auto mode = env::choose_mode(loaded.environment, settings);
      auto canonical = env::canonical_form(loaded.environment);
      // In container mode: the image a run would use, and whether it is built.
      std::optional<env::ImageStatus> image;
      if (mode == env::Mode::container) {
        image =
            env::image_status(settings.runtime, loaded.hash, loaded.workspace.environments_dir());
      }
      if (options->format == "json") {
        nlohmann::json out = {
            {"hash", loaded.hash}, {"mode", env::to_string(mode)}, {"canonical", canonical}};
        if (image) out["image"] = {{"name", image->image}, {"built", image->built}};
        std::printf("%s\n", out.dump(2).c_str());
      } else {
        std::printf("hash       %s\nmode       %s\n", loaded.hash.c_str(),
                    env::to_string(mode).c_str());
        if (image) {
          std::printf("image      %s (%s)\n", image->image.c_str(),
                      image->built ? "built" : "not built; amlrun env build builds it");
        }
        std::printf("canonical  %s\n", canonical.dump().c_str());
      }
      return ExitCode::ok;
    }
    if (context->parsed()) {
      auto written = env::write_build_context(loaded.environment, loaded.hash, options->output_dir);
      for (const auto& name : written) std::printf("%s\n", name.c_str());
      std::fprintf(stderr, "amlrun: wrote the build context of environment %s to %s\n",
                   loaded.hash.substr(0, 16).c_str(), options->output_dir.c_str());
      return ExitCode::ok;
    }
    std::string runtime =
        env::choose_runtime(options->runtime.empty() ? settings.runtime : options->runtime);
    auto environments = loaded.workspace.environments_dir();
    auto log = environments / ("build-" + loaded.hash.substr(0, 16) + ".log");
    std::fprintf(stderr, "amlrun: building environment %s with %s (log: %s)\n",
                 loaded.hash.substr(0, 16).c_str(), runtime.c_str(), log.c_str());
    auto image = env::ensure_image(runtime, loaded.environment, loaded.hash,
                                   environments / ("context-" + loaded.hash.substr(0, 16)),
                                   environments, log, log.string());
    std::printf("%s\n", image.image.c_str());
    std::fprintf(stderr, "amlrun: %s %s\n", image.image.c_str(),
                 image.cache_hit ? "already exists"
                                 : fmt::format("built in {:.1f} s", image.seconds).c_str());
    return ExitCode::ok;
  };
}

}  // namespace amlrun::cli
