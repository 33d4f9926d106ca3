// model register/list/show/download/delete: the model registry.
#include <fmt/format.h>
#include <cstdio>

#include "cli/amlrun/commands.hpp"
#include "cli/amlrun/option_checks.hpp"
#include "cli/amlrun/progress.hpp"
#include "cli/amlrun/terminal.hpp"
#include "lib/compute/compute_target.hpp"
#include "lib/compute/sweep/sweep_state.hpp"
#include "lib/registry/model_registry.hpp"
#include "lib/store/run_store.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/tags.hpp"

namespace amlrun::cli {

namespace {

enum class ModelFormat { text, json };

const std::map<std::string, ModelFormat> k_model_formats = {
    {"table", ModelFormat::text}, {"text", ModelFormat::text}, {"json", ModelFormat::json}};

std::string tags_text(const std::vector<util::Tag>& tags) {
  std::vector<std::string> parts;
  for (const auto& [key, value] : tags) parts.push_back(key + "=" + value);
  return util::join(parts, ", ");
}

std::string source_text(const registry::ModelVersion& v) {
  return v.source_run.empty() ? v.source_path
                              : fmt::format("{} of run {}", v.source_path, v.source_run);
}

nlohmann::ordered_json version_json(const registry::ModelVersion& v) {
  return {{"name", v.name},
          {"version", v.version},
          {"created_at", v.created_at},
          {"description", v.description},
          {"tags", util::tags_to_json(v.tags)},
          {"source", {{"run", v.source_run}, {"path", v.source_path}}},
          {"files", v.files},
          {"bytes", v.bytes},
          {"manifest_sha256", v.manifest_sha256}};
}

struct Session {
  workspace::Workspace workspace;
  store::RunStore store;
  registry::ModelRegistry models;
  explicit Session(const GlobalOptions& global)
      : workspace(workspace::open_workspace(workspace_options(global, false))),
        store(workspace),
        models(store) {}
};

Handler model_register(CLI::App& app, GlobalOptions& global) {
  struct Options {
    std::string name;
    std::string run;
    std::string path;
    std::string from;
    std::string version;
    std::vector<std::string> tags;
    std::string description;
    ModelFormat output = ModelFormat::text;
  };
  auto options = std::make_shared<Options>();
  app.add_option("--name", options->name, "The model's name")->required()->check(not_blank());
  app.add_option("--run", options->run, "Register files of this run (with --path)")
      ->check(not_blank());
  app.add_option("--path", options->path, "The run's file or folder, e.g. outputs/model")
      ->check(not_blank());
  app.add_option("--from", options->from, "Register a local folder (or file) instead")
      ->check(not_blank());
  app.add_option("--version", options->version, "The version (default: the next number)")
      ->check(not_blank());
  app.add_option("--tag", options->tags, "A tag, key=value (repeatable)");
  app.add_option("--description", options->description, "What the model is");
  add_choice_option(app, "--output", options->output, k_model_formats, "text (default) or json");
  return [options, &global]() {
    bool from_run = !options->run.empty() || !options->path.empty();
    if (from_run == !options->from.empty()) {
      throw util::InputError("model register: give --run ID --path PATH, or --from DIR");
    }
    if (from_run && (options->run.empty() || options->path.empty())) {
      throw util::InputError(
          options->run.empty() ? "model register: --path needs --run ID (the run to take it from)"
                               : "model register: --run needs --path (e.g. --path outputs/model)");
    }
    registry::RegisterRequest request;
    request.name = options->name;
    if (!options->version.empty()) request.version = options->version;
    for (const auto& tag : options->tags) request.tags.push_back(util::parse_tag(tag));
    request.description = options->description;
    Session session(global);
    if (from_run) {
      request.run_id = session.store.resolve(options->run);
      // A run whose supervisor died is recorded as ended first (as show does).
      auto record = session.store.load(request.run_id);
      record = compute::target_of(session.workspace, record)->refresh(session.store, record);
      if (record.kind == store::RunKind::sweep) {
        // A sweep's model is its best trial's.
        request.run_id = compute::best_trial_of(record);
        std::fprintf(stderr, "amlrun: %s is a sweep; registering from its best trial %s\n",
                     record.id.c_str(), request.run_id.c_str());
      }
      request.run_path = options->path;
    } else {
      request.from = options->from;
    }
    auto model = session.models.register_model(request, [](const artifacts::Skipped& skipped) {
      std::fprintf(stderr, "amlrun: warning: not registered: %s: %s\n",
                   util::escape_control(skipped.relative).c_str(),
                   util::escape_control(skipped.reason).c_str());
    });
    if (options->output == ModelFormat::json) {
      std::printf("%s\n", version_json(model).dump(2).c_str());
    } else {
      std::printf("%s:%s\n", model.name.c_str(), model.version.c_str());
      std::fprintf(stderr, "amlrun: registered model %s version %s (%llu file%s, %s) from %s\n",
                   model.name.c_str(), model.version.c_str(),
                   static_cast<unsigned long long>(model.files), model.files == 1 ? "" : "s",
                   util::format_bytes(model.bytes).c_str(),
                   util::escape_control(source_text(model)).c_str());
    }
    return ExitCode::ok;
  };
}

Handler model_list(CLI::App& app, GlobalOptions& global) {
  struct Options {
    std::string name;
    ModelFormat output = ModelFormat::text;
  };
  auto options = std::make_shared<Options>();
  app.add_option("--name", options->name, "Every version of this model")->check(not_blank());
  add_choice_option(app, "--output", options->output, k_model_formats, "table (default) or json");
  return [options, &global]() {
    Session session(global);
    std::size_t width = static_cast<std::size_t>(terminal_width(1));
    if (!options->name.empty()) {
      auto versions = session.models.versions(options->name);
      if (versions.empty())
        session.models.find({options->name, ""});  // the error, with a suggestion
      if (options->output == ModelFormat::json) {
        nlohmann::ordered_json out = nlohmann::ordered_json::array();
        for (const auto& v : versions) out.push_back(version_json(v));
        std::printf("%s\n", out.dump(2).c_str());
        return ExitCode::ok;
      }
      Table table({"VERSION", "CREATED", "FILES", "SIZE", "SOURCE"});
      table.right_align(2);
      table.right_align(3);
      table.flexible(4);
      for (const auto& v : versions) {
        table.add({v.version, v.created_at.substr(0, 19), std::to_string(v.files),
                   util::format_bytes(v.bytes), source_text(v)});
      }
      std::fputs(table.render(width).c_str(), stdout);
      return ExitCode::ok;
    }
    auto names = session.models.names();
    if (options->output == ModelFormat::json) {
      nlohmann::ordered_json out = nlohmann::ordered_json::array();
      for (const auto& n : names) {
        out.push_back({{"name", n.name},
                       {"latest_version", n.latest_version},
                       {"versions", n.versions},
                       {"updated_at", n.updated_at}});
      }
      std::printf("%s\n", out.dump(2).c_str());
      return ExitCode::ok;
    }
    if (names.empty()) {
      std::fprintf(stderr, "amlrun: no models registered (amlrun model register adds one)\n");
      return ExitCode::ok;
    }
    Table table({"NAME", "LATEST", "VERSIONS", "UPDATED"});
    table.right_align(2);
    table.flexible(0);
    for (const auto& n : names) {
      table.add({n.name, n.latest_version, std::to_string(n.versions), n.updated_at.substr(0, 19)});
    }
    std::fputs(table.render(width).c_str(), stdout);
    return ExitCode::ok;
  };
}

Handler model_show(CLI::App& app, GlobalOptions& global) {
  struct Options {
    std::string ref;
    ModelFormat output = ModelFormat::text;
  };
  auto options = std::make_shared<Options>();
  app.add_option("MODEL", options->ref, "NAME, NAME:VERSION or NAME@latest")->required();
  add_choice_option(app, "--output", options->output, k_model_formats, "text (default) or json");
  return [options, &global]() {
    Session session(global);
    auto model = session.models.find(registry::parse_model_ref(options->ref));
    auto files = session.models.manifest(model);
    if (options->output == ModelFormat::json) {
      auto out = version_json(model);
      out["path"] = session.models.version_dir(model.name, model.version).string();
      out["manifest"] = nlohmann::ordered_json::array();
      for (const auto& file : files) {
        out["manifest"].push_back(
            {{"path", file.path}, {"size", file.size}, {"sha256", file.sha256}});
      }
      std::printf("%s\n", out.dump(2).c_str());
      return ExitCode::ok;
    }
    // Stored text is shown with its control characters escaped.
    auto line = [](const char* key, const std::string& value) {
      if (!value.empty()) std::printf("%-12s %s\n", key, util::escape_control(value).c_str());
    };
    line("model", model.name);
    line("version", model.version);
    line("created", model.created_at);
    line("description", model.description);
    line("tags", tags_text(model.tags));
    line("source", source_text(model));
    line("size", fmt::format("{} file{}, {}", model.files, model.files == 1 ? "" : "s",
                             util::format_bytes(model.bytes)));
    line("manifest", model.manifest_sha256);
    line("stored in", session.models.version_dir(model.name, model.version).string());
    Table table({"FILE", "SIZE", "SHA256"});
    table.right_align(1);
    table.flexible(0);
    for (const auto& file : files) {
      table.add({file.path, util::format_bytes(file.size), file.sha256.substr(0, 16)});
    }
    std::printf("files\n%s", table.render(static_cast<std::size_t>(terminal_width(1)), 2).c_str());
    return ExitCode::ok;
  };
}

Handler model_download(CLI::App& app, GlobalOptions& global) {
  struct Options {
    std::string ref;
    std::string output;
  };
  auto options = std::make_shared<Options>();
  app.add_option("MODEL", options->ref, "NAME, NAME:VERSION or NAME@latest")->required();
  app.add_option("-o,--output", options->output, "The directory to put the model's files in")
      ->required()
      ->check(not_blank());
  return [options, &global]() {
    Session session(global);
    auto model = session.models.find(registry::parse_model_ref(options->ref));
    ProgressPrinter printer("model download", 2);
    auto copied = session.models.download(
        model, options->output,
        [&](const artifacts::CopyProgress& progress) { printer.update(progress); });
    printer.finish();
    std::fprintf(
        stderr,
        "amlrun: downloaded model %s version %s (%zu file%s, %s, checksums verified) to %s\n",
        model.name.c_str(), model.version.c_str(), copied.size(), copied.size() == 1 ? "" : "s",
        util::format_bytes(model.bytes).c_str(), options->output.c_str());
    return ExitCode::ok;
  };
}

Handler model_delete(CLI::App& app, GlobalOptions& global) {
  auto ref = std::make_shared<std::string>();
  app.add_option("MODEL", *ref, "NAME:VERSION (a version is never deleted by default)")->required();
  return [ref, &global]() {
    auto parsed = registry::parse_model_ref(*ref);
    if (parsed.latest()) {
      throw util::InputError(fmt::format(
          "model delete {}: name the version to delete, as NAME:VERSION (amlrun model list --name "
          "{} shows them)",
          *ref, parsed.name));
    }
    Session session(global);
    session.models.remove(parsed.name, parsed.version);
    std::fprintf(stderr, "amlrun: deleted model %s version %s\n", parsed.name.c_str(),
                 parsed.version.c_str());
    return ExitCode::ok;
  };
}

}  // namespace

void add_model(CLI::App& app, GlobalOptions& global, Handler& handler) {
  std::vector<std::pair<CLI::App*, Handler>> commands;
  auto add = [&](const char* name, const char* help, Handler (*make)(CLI::App&, GlobalOptions&)) {
    CLI::App* sub = app.add_subcommand(name, help);
    commands.emplace_back(sub, make(*sub, global));
  };
  add("register", "Register a run's output folder (or a local folder) as a model version",
      model_register);
  add("list", "List models, or the versions of one (--name)", model_list);
  add("show", "Show a model version and its files", model_show);
  add("download", "Copy a model version's files to a directory, verifying checksums",
      model_download);
  add("delete", "Delete one model version", model_delete);
  handler = group_handler(app, "model", commands);
}

}  // namespace amlrun::cli
