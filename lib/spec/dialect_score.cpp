// The scoring dialect: `type: score_image_model`, the designer's "Score Image
// Model" module. It becomes a run of `amlrun-worker predict` with a model
// folder, the images of `data`, and the result in outputs/.
#include <fmt/format.h>
#include <regex>

#include "lib/spec/dialects.hpp"
#include "lib/util/error.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::spec::detail {

namespace fs = std::filesystem;

namespace {

constexpr const char* k_model_hint =
    "give the model/ folder of a training run (e.g. outputs/model after amlrun download), a "
    "registered model NAME:VERSION or NAME@latest, or runs:/RUN_ID/outputs/model";

// NAME:VERSION or NAME@latest, with the registry's name characters; the
// registry checks the rest when it looks the model up.
bool looks_registered(const std::string& text) {
  static const std::regex pattern(
      R"(^[A-Za-z0-9][A-Za-z0-9._-]*(:[A-Za-z0-9][A-Za-z0-9._-]*|@latest)$)");
  return std::regex_match(text, pattern);
}

void add_folder_input(JobSpec& spec, const std::string& name, const fs::path& path) {
  InputSpec input;
  input.name = name;
  input.kind = InputSpec::Kind::folder;
  input.type = "uri_folder";
  input.path = path.string();
  input.mode = "ro_mount";
  spec.inputs.push_back(input);
}

// A local model folder: the files predict needs, checked here so the
// mistake points at the job file rather than at the run's copy.
bool check_model_folder(const Node& node, const fs::path& folder, const std::string& engine,
                        LoadContext& context) {
  const std::string weights = engine == "onnx" ? "model.onnx" : "model.pt";
  for (const std::string& name :
       {weights, std::string("config.json"), std::string("labels.json")}) {
    std::error_code error;
    if (!fs::is_regular_file(folder / name, error)) {
      std::string fix = name == "model.onnx"
                            ? fmt::format(
                                  "'amlrun-worker export --model-dir {}' writes it, or "
                                  "use engine: torch",
                                  folder.string())
                            : k_model_hint;
      context.diagnostics.error(node.mark, "model",
                                fmt::format("{} is not a model folder ({} is missing); {}",
                                            util::printable(node.value), name, fix));
      return false;
    }
  }
  return true;
}

void read_model(MapReader& root, LoadContext& context, JobSpec& spec, ScoreSpec& score) {
  NodePtr node = root.node("model");
  if (!node || node->is_null()) {
    context.diagnostics.error(root.mark(), "", fmt::format("missing 'model' ({})", k_model_hint));
    return;
  }
  node = path_value(node, "model", context);
  if (!node) return;
  if (!node->is_scalar()) {
    context.diagnostics.error(
        node->mark, "model",
        fmt::format("expected a model, got {}; {}", node->describe(), k_model_hint));
    return;
  }
  score.model = node->value;
  std::optional<ModelReference> reference;
  std::string text = node->value;
  if (text.starts_with("runs:/")) {
    std::string rest = text.substr(6);
    std::size_t slash = rest.find('/');
    ModelReference run;
    run.kind = ModelReference::Kind::run;
    run.text = text;
    run.run_id = rest.substr(0, slash);
    run.path = slash == std::string::npos ? "" : rest.substr(slash + 1);
    if (run.path.empty()) run.path = "outputs/model";
    if (run.run_id.empty()) {
      context.diagnostics.error(
          node->mark, "model",
          fmt::format("{} names no run; write runs:/RUN_ID/outputs/model", util::printable(text)));
      return;
    }
    reference = run;
  } else {
    std::string name = text.starts_with("azureml:") ? text.substr(8) : text;
    if (looks_registered(name)) {
      ModelReference registered;
      registered.kind = ModelReference::Kind::registered;
      registered.text = name;
      reference = registered;
    }
  }
  if (reference) {
    if (context.resolve_model == nullptr || !*context.resolve_model) {
      context.diagnostics.error(
          node->mark, "model",
          fmt::format("{} is looked up in a workspace, and there is none here; run inside a "
                      "workspace (amlrun init), or give the model's folder",
                      util::printable(text)));
      return;
    }
    try {
      ResolvedModel resolved = (*context.resolve_model)(*reference);
      if (!check_model_folder(*node, resolved.folder, score.engine, context)) return;
      score.model_resolved = resolved.description;
      add_folder_input(spec, "model", resolved.folder);
    } catch (const util::InputError& error) {
      // A damaged registry copy (InfraError) is not the job file's mistake:
      // it propagates, exit 3, with the message naming the file.
      context.diagnostics.error(node->mark, "model", error.what());
    }
    return;
  }
  if (auto path = resolve_local_path(*node, "model", PathKind::directory, "model folder", context,
                                     k_model_hint)) {
    if (!check_model_folder(*node, *path, score.engine, context)) return;
    score.model_resolved = path->string();
    add_folder_input(spec, "model", *path);
  }
}

void read_images(MapReader& root, LoadContext& context, JobSpec& spec) {
  NodePtr node = root.node("data");
  if (!node || node->is_null()) {
    context.diagnostics.error(root.mark(), "",
                              "missing 'data' (a folder of images, searched recursively, or an "
                              "image file)");
    return;
  }
  node = path_value(node, "data", context);
  if (!node) return;
  if (auto path = resolve_local_path(*node, "data", PathKind::either, "images", context)) {
    InputSpec input;
    input.name = "data";
    std::error_code error;
    input.kind = fs::is_directory(*path, error) ? InputSpec::Kind::folder : InputSpec::Kind::file;
    input.type = input.kind == InputSpec::Kind::folder ? "uri_folder" : "uri_file";
    input.path = path->string();
    input.mode = "ro_mount";
    spec.inputs.push_back(input);
  }
}

// outputs/<output>: a relative file name that stays below outputs/.
void read_output(MapReader& root, LoadContext& context, ScoreSpec& score) {
  auto text = root.string("output");
  if (!text) return;
  const Mark mark = root.node("output")->mark;
  const fs::path path(*text);
  bool inside = !text->empty() && path.is_relative() && text->find('\0') == std::string::npos &&
                text->find('\n') == std::string::npos;
  for (const fs::path& part : path) {
    inside = inside && part != ".." && part != "." && !part.empty();
  }
  if (!inside || text->back() == '/') {
    context.diagnostics.error(mark, "output",
                              fmt::format("{} must be a file name below outputs/, such as "
                                          "predictions.csv or scores/run.jsonl",
                                          util::printable(*text)));
    return;
  }
  const std::string extension = path.extension().string();
  if (extension != ".csv" && extension != ".jsonl") {
    context.diagnostics.error(mark, "output",
                              fmt::format("{} must end in .csv or .jsonl (the format follows the "
                                          "name)",
                                          util::printable(*text)));
    return;
  }
  score.output = path.lexically_normal().string();
}

}  // namespace

void read_score(MapReader& root, LoadContext& context, JobSpec& spec) {
  spec.dialect = Dialect::score;
  root.accept({"type"});
  read_common(root, context, spec);
  ScoreSpec score;
  score.engine = root.choice("engine", {"torch", "onnx"}).value_or("torch");
  read_model(root, context, spec, score);
  read_images(root, context, spec);
  read_output(root, context, score);
  if (auto v = root.integer("top_k", 1, 1000)) score.top_k = static_cast<int>(*v);
  if (auto v = root.integer("batch_size", 1, 65536)) score.batch_size = static_cast<int>(*v);
  if (auto v = root.boolean("strict")) score.strict = *v;
  if (auto v = root.integer("threads", 0, 1024)) score.threads = static_cast<int>(*v);
  score.device = root.choice("device", {"auto", "cpu", "cuda"}).value_or("");
  if (score.engine == "onnx" && score.device == "cuda") {
    context.diagnostics.error(root.node("device")->mark, "device",
                              "engine: onnx runs on the CPU (OpenCV's DNN module); use engine: "
                              "torch for device: cuda");
  }
  read_compute(root, "compute", context, spec);
  read_resources_distribution_limits(root, context, spec);
  if (spec.total_processes() > 1 || spec.distribution.type != DistributionType::none) {
    context.diagnostics.error(
        root.has("distribution") ? root.key_mark("distribution") : root.key_mark("resources"),
        root.has("distribution") ? "distribution" : "resources",
        "a score_image_model job runs one process; remove distribution "
        "and instance_count (split the images into several jobs to "
        "score them in parallel)");
  }
  spec.argv = {"amlrun-worker", "predict",
               "--model-dir",   "${{inputs.model}}",
               "--data",        "${{inputs.data}}",
               "--output",      "outputs/" + score.output,
               "--top-k",       std::to_string(score.top_k),
               "--batch-size",  std::to_string(score.batch_size),
               "--engine",      score.engine};
  if (score.strict) spec.argv.push_back("--strict");
  if (score.threads)
    spec.argv.insert(spec.argv.end(), {"--threads", std::to_string(*score.threads)});
  if (!score.device.empty()) spec.argv.insert(spec.argv.end(), {"--device", score.device});
  spec.score = score;
}

}  // namespace amlrun::spec::detail
