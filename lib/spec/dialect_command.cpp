// The command-job dialect (Azure ML CLI v2 command-job schema).
#include <fmt/format.h>
#include <cctype>

#include "lib/spec/dialects.hpp"
#include "lib/spec/placeholders.hpp"
#include "lib/spec/yaml_tree.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/names.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::spec::detail {

namespace {

namespace fs = std::filesystem;

// Environment files are a few lines; anything near this is a mistake.
constexpr std::uint64_t k_max_environment_file_bytes = 1ull << 20;

const std::vector<std::string> k_data_input_types = {"uri_file",     "uri_folder",   "mlflow_model",
                                                     "custom_model", "triton_model", "mltable"};
const std::vector<std::string> k_literal_types = {"string", "integer", "number", "boolean"};
const std::vector<std::string> k_input_modes = {"ro_mount", "download", "direct", "eval_mount",
                                                "eval_download"};
const std::vector<std::string> k_output_types = {"uri_folder", "uri_file", "mlflow_model",
                                                 "custom_model", "triton_model"};
const std::vector<std::string> k_output_modes = {"rw_mount", "upload", "direct"};

bool is_identifier(const std::string& name) {
  if (name.empty() || !(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) {
    return false;
  }
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return name.size() <= 128;
}

// The position of `needle` in the source, searching from the node's line;
// falls back to the node's own position.
Mark locate(const Node& node, const std::string& needle) {
  if (!node.mark.source || node.mark.source->is_override || node.mark.line < 1) return node.mark;
  const std::string& text = node.mark.source->text;
  std::size_t start = 0;
  for (int line = 1; line < node.mark.line && start != std::string::npos; ++line) {
    start = text.find('\n', start);
    if (start != std::string::npos) ++start;
  }
  if (start == std::string::npos) return node.mark;
  std::size_t found = text.find(needle, start);
  if (found == std::string::npos) return node.mark;
  Mark mark = node.mark;
  mark.line = 1;
  mark.column = 1;
  for (std::size_t i = 0; i < found; ++i) {
    if (text[i] == '\n') {
      ++mark.line;
      mark.column = 1;
    } else if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) {
      ++mark.column;
    }
  }
  return mark;
}

bool is_http_url(const std::string& text) {
  return text.compare(0, 7, "http://") == 0 || text.compare(0, 8, "https://") == 0;
}

bool is_datastore_uri(const std::string& text) {
  return text.compare(0, 21, "azureml://datastores/") == 0 ||
         (text.compare(0, 24, "azureml://subscriptions/") == 0 &&
          text.find("/datastores/") != std::string::npos);
}

// Azure ML's data access modes: inputs take ro_mount, download, direct,
// eval_mount and eval_download; outputs take rw_mount, upload and direct.
// A mode of the other direction is a mistake Azure ML refuses too, so it
// gets its own message rather than a bare list.
std::optional<std::string> read_mode(MapReader& reader, const std::string& path,
                                     const std::vector<std::string>& modes,
                                     const std::vector<std::string>& other_direction,
                                     const std::string& direction, LoadContext& context) {
  auto node = reader.node("mode");
  if (node && node->is_scalar() && !node->quoted &&
      std::find(modes.begin(), modes.end(), node->value) == modes.end() &&
      std::find(other_direction.begin(), other_direction.end(), node->value) !=
          other_direction.end()) {
    context.diagnostics.error(node->mark, join_key_path(path, "mode"),
                              fmt::format("{} is a mode for {}, not {}s; an {} takes one of {}",
                                          node->value, direction == "input" ? "outputs" : "inputs",
                                          direction, direction, util::join(modes, ", ")));
    return std::nullopt;
  }
  return reader.choice("mode", modes);
}

// An output's path names where Azure ML uploads it: a datastore URI is the
// only form its schema takes. amlrun keeps every output in the run, so a
// datastore path does not stop the job (a warning says where the output is
// instead); a local or file:// path is not Azure ML's schema and would have
// amlrun write outside the workspace, so it is refused.
void read_output_path(MapReader& reader, const std::string& path, const std::string& name,
                      LoadContext& context) {
  auto node = reader.node("path");
  if (!node || node->is_null()) return;
  const std::string key_path = join_key_path(path, "path");
  if (node->is_scalar() && is_datastore_uri(node->value)) {
    context.diagnostics.warning(
        node->mark, key_path,
        fmt::format("{} is an Azure ML datastore, which amlrun does not upload to; the output "
                    "stays in the run (outputs/{}) and amlrun download fetches it",
                    util::printable(node->value), name));
    return;
  }
  if (node->is_scalar() &&
      refuse_remote_reference(*node, key_path,
                              fmt::format("remove path: amlrun keeps every output in the run "
                                          "(outputs/{}) and amlrun download fetches it",
                                          name),
                              context)) {
    return;
  }
  context.diagnostics.error(
      node->mark, key_path,
      fmt::format("an output path names an Azure ML datastore (azureml://datastores/...); "
                  "amlrun keeps every output in the run (outputs/{}) and writes nowhere else: "
                  "remove path and copy the output with amlrun download RUN_ID --prefix "
                  "outputs/{} -o DIR",
                  name, name));
}

void read_input(const NodePtr& key, const NodePtr& value, LoadContext& context, JobSpec& spec) {
  const std::string name = key->value;
  const std::string path = join_key_path("inputs", name);
  if (!is_identifier(name)) {
    context.diagnostics.error(key->mark, path,
                              fmt::format("{} is not a valid input name (letters, digits and '_', "
                                          "not starting with a digit)",
                                          util::printable(name)));
    return;
  }
  InputSpec input;
  input.name = name;
  if (value->is_null()) {
    context.diagnostics.error(key->mark, path,
                              "the input has no value; give a literal (epochs: 10) or a map with "
                              "type and path");
    return;
  }
  if (value->is_scalar()) {
    input.kind = InputSpec::Kind::literal;
    input.type = "string";
    input.value = value->value;
    spec.inputs.push_back(input);
    return;
  }
  if (!value->is_map()) {
    context.diagnostics.error(
        value->mark, path,
        "expected a literal value or a map with type and path, got " + value->describe());
    return;
  }
  MapReader reader(value, path, context.diagnostics);
  std::vector<std::string> all_types = k_data_input_types;
  all_types.insert(all_types.end(), k_literal_types.begin(), k_literal_types.end());
  input.type = reader.choice("type", all_types).value_or("uri_folder");
  if (std::find(k_literal_types.begin(), k_literal_types.end(), input.type) !=
      k_literal_types.end()) {
    context.diagnostics.error(reader.node("type")->mark, join_key_path(path, "type"),
                              fmt::format("a literal input is written as {}: <value> (for example "
                                          "{}: 10), not as a map",
                                          name, name));
    reader.accept({"default", "value", "path", "mode", "optional", "description"});
    reader.finish();
    return;
  }
  input.kind = input.type == "uri_file" ? InputSpec::Kind::file : InputSpec::Kind::folder;
  input.mode =
      read_mode(reader, path, k_input_modes, k_output_modes, "input", context).value_or("ro_mount");
  if (auto optional = reader.boolean("optional")) input.optional = *optional;
  reader.accept({"description"});
  reader.reject("datastore",
                "datastores exist only in an Azure ML workspace; give path as a local path, a "
                "file:// URI or an http(s) URL");
  reader.accept({"path_on_compute"});
  auto path_node = reader.node("path");
  if (!path_node || path_node->is_null()) {
    context.diagnostics.error(value->mark, path, "missing 'path' (a local path or an http(s) URL)");
  } else if (path_node->is_scalar() && is_http_url(path_node->value)) {
    if (input.kind != InputSpec::Kind::file) {
      context.diagnostics.error(path_node->mark, join_key_path(path, "path"),
                                "an http(s) input is downloaded as one file: declare it with "
                                "type: uri_file");
    } else {
      input.url = path_node->value;
    }
  } else {
    auto kind = input.kind == InputSpec::Kind::file ? PathKind::file : PathKind::directory;
    if (auto resolved = resolve_local_path(*path_node, join_key_path(path, "path"), kind,
                                           fmt::format("input '{}'", name), context)) {
      input.path = resolved->string();
    }
  }
  reader.finish();
  spec.inputs.push_back(input);
}

void read_output(const NodePtr& key, const NodePtr& value, LoadContext& context, JobSpec& spec) {
  const std::string name = key->value;
  const std::string path = join_key_path("outputs", name);
  if (!is_identifier(name)) {
    context.diagnostics.error(key->mark, path,
                              fmt::format("{} is not a valid output name (letters, digits and "
                                          "'_', not starting with a digit)",
                                          util::printable(name)));
    return;
  }
  OutputSpec output;
  output.name = name;
  if (value && !value->is_null()) {
    MapReader reader(value, path, context.diagnostics);
    output.type = reader.choice("type", k_output_types).value_or("uri_folder");
    output.mode = read_mode(reader, path, k_output_modes, k_input_modes, "output", context)
                      .value_or("rw_mount");
    reader.accept({"description"});
    read_output_path(reader, path, name, context);
    reader.ignore_with_warning("name",
                               "registering outputs as data assets is an Azure ML feature; "
                               "ignored (use amlrun model register)");
    reader.ignore_with_warning("version", "ignored, as is name");
    reader.finish();
  }
  spec.outputs.push_back(output);
}

// The keys of an Azure ML environment, inline under `environment:` (key
// paths start with "environment.") or as the top level of an environment
// file (`prefix` ""). Paths are relative to the file they are written in.
void read_environment_map(MapReader& environment, const std::string& prefix, LoadContext& context,
                          JobSpec& spec) {
  auto key = [&](std::string_view name) { return join_key_path(prefix, name); };
  if (auto image = environment.string("image")) {
    if (image->empty()) {
      context.diagnostics.error(environment.node("image")->mark, key("image"),
                                "the image name is empty");
    } else if (image->compare(0, 8, "azureml:") == 0) {
      refuse_remote_reference(*environment.node("image"), key("image"),
                              "give a container image name such as python:3.11", context);
    } else {
      spec.environment.image = *image;
    }
  }
  if (auto conda = environment.node("conda_file"); conda && !conda->is_null()) {
    if (auto path = resolve_local_path(*conda, key("conda_file"), PathKind::file, "conda file",
                                       context, "give a local conda file")) {
      spec.environment.conda_file = path->string();
    }
  }
  MapReader build(environment.node("build"), key("build"), context.diagnostics);
  if (auto context_node = build.node("path"); context_node && !context_node->is_null()) {
    if (auto path = resolve_local_path(*context_node, key("build.path"), PathKind::directory,
                                       "build context", context,
                                       "give a local directory holding a Dockerfile")) {
      spec.environment.build_context = path->string();
    }
  } else if (build.present()) {
    context.diagnostics.error(build.mark(), key("build"),
                              "missing 'path' (the directory holding the Dockerfile)");
  }
  if (auto dockerfile = build.string("dockerfile_path"))
    spec.environment.dockerfile_path = *dockerfile;
  build.finish();
  if (!spec.environment.image.empty() && !spec.environment.build_context.empty()) {
    context.diagnostics.error(
        environment.key_mark("build"), key("build"),
        fmt::format("give either {} or {}, not both", key("image"), key("build")));
  }
  if (auto name = environment.string("name")) spec.environment.name = *name;
  if (auto version = environment.string("version")) spec.environment.version = *version;
  environment.accept({"description", "tags"});
  if (auto os = environment.choice("os_type", {"linux", "windows"}); os == "windows") {
    context.diagnostics.error(environment.node("os_type")->mark, key("os_type"),
                              "Windows environments are not supported; amlrun runs Linux jobs");
  }
  // An environment asset is shared by jobs and online deployments; the
  // deployment part means nothing for a job, so it does not stop one.
  environment.ignore_with_warning("inference_config",
                                  "inference_config is for Azure ML online deployments; ignored "
                                  "for a job");
  environment.finish();
}

bool looks_like_yaml_file(const std::string& text) {
  auto ends_with = [&](std::string_view suffix) {
    return text.size() >= suffix.size() &&
           text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
  };
  return ends_with(".yml") || ends_with(".yaml");
}

// `environment: file:./env.yml` or `environment: ./env.yml`: an Azure ML
// environment file, read like the inline form, its paths relative to it and
// its errors pointing into it.
void read_environment_file(const Node& node, LoadContext& context, JobSpec& spec) {
  Node path_node = node;
  if (node.value.compare(0, 5, "file:") == 0 && node.value.compare(0, 7, "file://") != 0) {
    path_node.value = node.value.substr(5);
  }
  auto resolved = resolve_local_path(path_node, "environment", PathKind::file, "environment file",
                                     context, "give a local environment file");
  if (!resolved) return;
  auto source = std::make_shared<Source>();
  // Named as the user would reach it from where the job file was named.
  fs::path written(path_node.value.compare(0, 7, "file://") == 0 ? resolved->string()
                                                                 : path_node.value);
  if (written.is_absolute() || !node.mark.source || node.mark.source->is_override) {
    source->name = resolved->string();
  } else {
    source->name =
        (fs::path(node.mark.source->name).parent_path() / written).lexically_normal().string();
  }
  try {
    source->text = util::read_user_file(*resolved, k_max_environment_file_bytes);
  } catch (const util::Error& error) {
    context.diagnostics.error(node.mark, "environment", error.what());
    return;
  }
  NodePtr root = parse_yaml(source, context.diagnostics);
  if (!root) return;
  if (!root->is_map()) {
    context.diagnostics.error(root->mark, "",
                              "an environment file is a YAML map with image, conda_file or build; "
                              "got " +
                                  root->describe());
    return;
  }
  LoadContext file_context{context.diagnostics, resolved->parent_path()};
  MapReader environment(root, "", context.diagnostics);
  environment.accept({"$schema"});
  read_environment_map(environment, "", file_context, spec);
}

void read_environment(MapReader& root, LoadContext& context, JobSpec& spec) {
  auto node = root.node("environment");
  if (!node || node->is_null()) return;
  if (node->is_scalar()) {
    const std::string& text = node->value;
    if (text.compare(0, 8, "azureml:") == 0) {
      context.diagnostics.error(
          node->mark, "environment",
          fmt::format("{} is an Azure ML environment asset, which exists only in an Azure ML "
                      "workspace; describe the environment instead (environment.image and/or "
                      "environment.conda_file), or remove environment to use the host environment",
                      util::printable(text)));
    } else if (text.compare(0, 5, "file:") == 0 || looks_like_yaml_file(text)) {
      read_environment_file(*node, context, spec);
    } else {
      context.diagnostics.error(
          node->mark, "environment",
          fmt::format("{} is not an environment; write a map with image and/or conda_file (or "
                      "build.path), name an environment file (file:./env.yml), or remove "
                      "environment to use the host environment",
                      util::printable(text)));
    }
    return;
  }
  MapReader environment(node, "environment", context.diagnostics);
  read_environment_map(environment, "environment", context, spec);
}

void check_command_placeholders(const NodePtr& command_node, LoadContext& context,
                                const JobSpec& spec) {
  std::vector<std::string> input_names, output_names;
  for (const auto& i : spec.inputs) input_names.push_back(i.name);
  for (const auto& o : spec.outputs) output_names.push_back(o.name);
  for (const auto& placeholder : find_placeholders(spec.command)) {
    std::string written = spec.command.substr(placeholder.offset, placeholder.length);
    Mark mark = locate(*command_node, written.substr(0, std::min<std::size_t>(written.size(), 60)));
    if (placeholder.scope.empty()) {
      context.diagnostics.error(mark, "command", "'${{' is not closed with '}}'");
    } else if (placeholder.scope == "inputs") {
      if (std::find(input_names.begin(), input_names.end(), placeholder.name) ==
          input_names.end()) {
        context.diagnostics.error(
            mark, "command",
            fmt::format("{} refers to an input that is not declared under inputs{}", written,
                        util::did_you_mean_suffix(placeholder.name, input_names)));
      }
    } else if (placeholder.scope == "outputs") {
      if (std::find(output_names.begin(), output_names.end(), placeholder.name) ==
          output_names.end()) {
        context.diagnostics.error(
            mark, "command",
            fmt::format("{} refers to an output that is not declared under outputs{}", written,
                        util::did_you_mean_suffix(placeholder.name, output_names)));
      }
    } else if (placeholder.scope == "search_space") {
      check_search_space_reference(mark, "command", written, placeholder.name, context);
    } else {
      context.diagnostics.error(
          mark, "command",
          fmt::format("{} is not a placeholder amlrun knows; use "
                      "${{{{inputs.NAME}}}}, ${{{{outputs.NAME}}}} or (in a sweep's trial) "
                      "${{{{search_space.NAME}}}}",
                      written));
    }
  }
}

}  // namespace

void read_inputs_outputs(MapReader& root, LoadContext& context, JobSpec& spec) {
  // A trial's own input of a name the sweep gives already: the sweep's wins.
  auto declared = [&](const std::string& name, bool input) {
    if (input) return spec.find_input(name) != nullptr;
    return std::any_of(spec.outputs.begin(), spec.outputs.end(),
                       [&](const OutputSpec& o) { return o.name == name; });
  };
  if (auto inputs = root.node("inputs"); inputs && !inputs->is_null()) {
    if (!inputs->is_map()) {
      context.diagnostics.error(inputs->mark, "inputs",
                                "expected a map, got " + inputs->describe());
    } else {
      for (const auto& [key, value] : inputs->entries) {
        if (!declared(key->value, true)) read_input(key, value, context, spec);
      }
    }
  }
  if (auto outputs = root.node("outputs"); outputs && !outputs->is_null()) {
    if (!outputs->is_map()) {
      context.diagnostics.error(outputs->mark, "outputs",
                                "expected a map, got " + outputs->describe());
    } else {
      for (const auto& [key, value] : outputs->entries) {
        if (!declared(key->value, false)) read_output(key, value, context, spec);
      }
    }
  }
}

bool check_search_space_reference(const Mark& mark, const std::string& key_path,
                                  const std::string& written, const std::string& name,
                                  LoadContext& context) {
  if (context.search_space == nullptr && context.in_sweep_trial) return true;
  if (context.search_space == nullptr) {
    context.diagnostics.error(mark, key_path,
                              fmt::format("{} names a sweep parameter, and this is not a sweep's "
                                          "trial; write a sweep job (type: sweep, with "
                                          "search_space and trial) or give the value as an input",
                                          written));
    return false;
  }
  const auto names = sweep::parameter_names(*context.search_space);
  if (std::find(names.begin(), names.end(), name) == names.end()) {
    context.diagnostics.error(mark, key_path,
                              fmt::format("{} refers to a parameter that is not in search_space{}",
                                          written, util::did_you_mean_suffix(name, names)));
    if (context.used_parameters != nullptr) context.used_parameters->push_back(name);
    return false;
  }
  if (context.used_parameters != nullptr) context.used_parameters->push_back(name);
  return true;
}

constexpr const char* k_empty_command =
    "the command is empty; give what to run, e.g. python train.py";

void read_command_job(MapReader& root, LoadContext& context, JobSpec& spec) {
  spec.dialect = Dialect::command;
  root.choice("type", {"command"});
  read_common(root, context, spec);

  if (auto code = root.node("code"); code && !code->is_null()) {
    if (auto path = resolve_local_path(*code, "code", PathKind::directory, "source directory",
                                       context, "give the source directory as a local path")) {
      spec.code_dir = *path;
    }
  }

  // `command:` with no value, "" and "  " all run nothing: each is an error,
  // not a run that "completes" having done nothing.
  auto command_node = root.node("command");
  if (command_node && command_node->is_null()) {
    context.diagnostics.error(root.value_mark("command"), "command", k_empty_command);
  } else if (auto command = root.string("command")) {
    if (util::trim(*command).empty()) {
      context.diagnostics.error(command_node->mark, "command", k_empty_command);
    } else {
      spec.command = *command;
    }
  } else if (!command_node) {
    context.diagnostics.error(root.mark(), "",
                              "missing 'command' (what to run, e.g. python train.py)");
  }

  read_inputs_outputs(root, context, spec);
  read_environment(root, context, spec);
  read_compute(root, "compute", context, spec);
  read_resources_distribution_limits(root, context, spec);

  read_job_name(root, context, spec);
  root.ignore_with_warning("services",
                           "interactive services (VS Code, Jupyter, TensorBoard, SSH) run only on "
                           "Azure ML; ignored");
  root.ignore_with_warning("identity",
                           "identity is an Azure ML credential setting; ignored (the job runs "
                           "with the credentials of the compute target)");
  root.ignore_with_warning("queue_settings",
                           "queue_settings (job tier and priority) is an Azure ML setting; "
                           "ignored");
  root.accept({"properties", "is_deterministic"});

  if (command_node && !spec.command.empty())
    check_command_placeholders(command_node, context, spec);
  if (auto resources = root.node("resources"); resources && resources->is_map()) {
    check_distribution_needed(resources->key_mark("instance_count"), "resources.instance_count",
                              context, spec);
  }
}

}  // namespace amlrun::spec::detail
