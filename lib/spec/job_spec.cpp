#include "lib/spec/job_spec.hpp"

#include <yaml-cpp/emitter.h>

namespace amlrun::spec {

using ordered_json = nlohmann::ordered_json;

std::string to_string(Dialect dialect) {
  switch (dialect) {
    case Dialect::command:
      return "command";
    case Dialect::estimator:
      return "estimator";
    case Dialect::trainer:
      return "train_pytorch_model";
    case Dialect::score:
      return "score_image_model";
  }
  return "command";
}

std::string to_string(DistributionType type) {
  switch (type) {
    case DistributionType::none:
      return "none";
    case DistributionType::mpi:
      return "mpi";
    case DistributionType::pytorch:
      return "pytorch";
    case DistributionType::tensorflow:
      return "tensorflow";
  }
  return "none";
}

static Dialect dialect_from_string(const std::string& text) {
  if (text == "estimator") return Dialect::estimator;
  if (text == "train_pytorch_model") return Dialect::trainer;
  if (text == "score_image_model") return Dialect::score;
  return Dialect::command;
}

static DistributionType distribution_from_string(const std::string& text) {
  if (text == "mpi") return DistributionType::mpi;
  if (text == "pytorch") return DistributionType::pytorch;
  if (text == "tensorflow") return DistributionType::tensorflow;
  return DistributionType::none;
}

static std::string kind_name(InputSpec::Kind kind) {
  switch (kind) {
    case InputSpec::Kind::literal:
      return "literal";
    case InputSpec::Kind::file:
      return "file";
    case InputSpec::Kind::folder:
      return "folder";
  }
  return "literal";
}

const InputSpec* JobSpec::find_input(const std::string& name) const {
  for (const auto& input : inputs) {
    if (input.name == name) return &input;
  }
  return nullptr;
}

static ordered_json pairs_to_json(const std::vector<std::pair<std::string, std::string>>& pairs) {
  ordered_json out = ordered_json::object();
  for (const auto& [k, v] : pairs) out[k] = v;
  return out;
}

static std::vector<std::pair<std::string, std::string>> pairs_from_json(
    const nlohmann::ordered_json& j) {
  std::vector<std::pair<std::string, std::string>> out;
  if (!j.is_object()) return out;
  for (auto it = j.begin(); it != j.end(); ++it)
    out.emplace_back(it.key(), it.value().get<std::string>());
  return out;
}

nlohmann::ordered_json to_json(const JobSpec& spec) {
  ordered_json j;
  j["spec_file"] = spec.spec_file.string();
  j["dialect"] = to_string(spec.dialect);
  j["experiment_name"] = spec.experiment_name;
  j["display_name"] = spec.display_name;
  j["description"] = spec.description;
  j["tags"] = pairs_to_json(spec.tags);
  j["code"] = spec.code_dir ? ordered_json(spec.code_dir->string()) : ordered_json(nullptr);
  if (!spec.command.empty()) j["command"] = spec.command;
  if (!spec.argv.empty()) j["argv"] = spec.argv;
  ordered_json inputs = ordered_json::object();
  for (const auto& input : spec.inputs) {
    ordered_json i;
    i["kind"] = kind_name(input.kind);
    i["type"] = input.type;
    if (input.kind == InputSpec::Kind::literal) {
      i["value"] = input.value;
    } else {
      if (!input.path.empty()) i["path"] = input.path;
      if (!input.url.empty()) i["url"] = input.url;
      i["mode"] = input.mode;
      if (input.optional) i["optional"] = true;
    }
    inputs[input.name] = i;
  }
  j["inputs"] = inputs;
  ordered_json outputs = ordered_json::object();
  for (const auto& output : spec.outputs) {
    outputs[output.name] = ordered_json{{"type", output.type}, {"mode", output.mode}};
  }
  j["outputs"] = outputs;
  const auto& e = spec.environment;
  ordered_json environment;
  environment["image"] = e.image;
  environment["conda_file"] = e.conda_file;
  environment["build_context"] = e.build_context;
  environment["dockerfile_path"] = e.dockerfile_path;
  environment["conda_packages"] = e.conda_packages;
  environment["pip_packages"] = e.pip_packages;
  environment["pip_requirements_file"] = e.pip_requirements_file;
  environment["use_gpu"] = e.use_gpu ? ordered_json(*e.use_gpu) : ordered_json(nullptr);
  environment["name"] = e.name;
  environment["version"] = e.version;
  j["environment"] = environment;
  j["environment_variables"] = pairs_to_json(spec.environment_variables);
  j["compute"] = spec.compute;
  j["instance_count"] = spec.instance_count;
  j["distribution"] =
      ordered_json{{"type", to_string(spec.distribution.type)},
                   {"process_count_per_instance", spec.distribution.process_count_per_instance},
                   {"backend", spec.distribution.backend}};
  if (spec.distribution.type == DistributionType::tensorflow) {
    j["distribution"]["worker_count"] = spec.distribution.worker_count;
    j["distribution"]["parameter_server_count"] = spec.distribution.parameter_server_count;
  }
  j["timeout_seconds"] =
      spec.timeout_seconds ? ordered_json(*spec.timeout_seconds) : ordered_json(nullptr);
  j["shm_size"] = spec.shm_size;
  j["instance_type"] = spec.instance_type;
  if (spec.trainer) {
    const auto& t = *spec.trainer;
    ordered_json trainer;
    trainer["model"] = t.model;
    trainer["epochs"] = t.epochs;
    trainer["batch_size"] = t.batch_size;
    trainer["learning_rate"] = t.learning_rate;
    trainer["random_seed"] = t.random_seed;
    trainer["patience"] = t.patience;
    trainer["image_size"] = t.image_size ? ordered_json(*t.image_size) : ordered_json(nullptr);
    trainer["threads"] = t.threads ? ordered_json(*t.threads) : ordered_json(nullptr);
    trainer["device"] = t.device;
    trainer["precision"] = t.precision;
    trainer["freeze_backbone"] = t.freeze_backbone;
    trainer["onnx"] = t.onnx;
    j["trainer"] = trainer;
  }
  if (spec.score) {
    const auto& c = *spec.score;
    ordered_json score;
    score["model"] = c.model;
    score["model_resolved"] = c.model_resolved;
    score["output"] = c.output;
    score["top_k"] = c.top_k;
    score["batch_size"] = c.batch_size;
    score["engine"] = c.engine;
    score["strict"] = c.strict;
    score["threads"] = c.threads ? ordered_json(*c.threads) : ordered_json(nullptr);
    score["device"] = c.device;
    j["score"] = score;
  }
  if (spec.sweep) j["sweep"] = to_json(*spec.sweep);
  return j;
}

JobSpec job_spec_from_json(const nlohmann::ordered_json& j) {
  JobSpec spec;
  spec.spec_file = j.value("spec_file", "");
  spec.dialect = dialect_from_string(j.value("dialect", "command"));
  spec.experiment_name = j.value("experiment_name", "");
  spec.display_name = j.value("display_name", "");
  spec.description = j.value("description", "");
  spec.tags = pairs_from_json(j.value("tags", nlohmann::ordered_json::object()));
  if (j.contains("code") && j["code"].is_string()) spec.code_dir = j["code"].get<std::string>();
  spec.command = j.value("command", "");
  spec.argv = j.value("argv", std::vector<std::string>{});
  if (j.contains("inputs")) {
    for (auto it = j["inputs"].begin(); it != j["inputs"].end(); ++it) {
      InputSpec input;
      input.name = it.key();
      const auto& i = it.value();
      std::string kind = i.value("kind", "literal");
      input.kind = kind == "file"     ? InputSpec::Kind::file
                   : kind == "folder" ? InputSpec::Kind::folder
                                      : InputSpec::Kind::literal;
      input.type = i.value("type", "");
      input.value = i.value("value", "");
      input.path = i.value("path", "");
      input.url = i.value("url", "");
      input.mode = i.value("mode", "");
      input.optional = i.value("optional", false);
      spec.inputs.push_back(input);
    }
  }
  if (j.contains("outputs")) {
    for (auto it = j["outputs"].begin(); it != j["outputs"].end(); ++it) {
      spec.outputs.push_back(OutputSpec{it.key(), it.value().value("type", "uri_folder"),
                                        it.value().value("mode", "rw_mount")});
    }
  }
  if (j.contains("environment")) {
    const auto& e = j["environment"];
    spec.environment.image = e.value("image", "");
    spec.environment.conda_file = e.value("conda_file", "");
    spec.environment.build_context = e.value("build_context", "");
    spec.environment.dockerfile_path = e.value("dockerfile_path", "");
    spec.environment.conda_packages = e.value("conda_packages", std::vector<std::string>{});
    spec.environment.pip_packages = e.value("pip_packages", std::vector<std::string>{});
    spec.environment.pip_requirements_file = e.value("pip_requirements_file", "");
    if (e.contains("use_gpu") && e["use_gpu"].is_boolean())
      spec.environment.use_gpu = e["use_gpu"].get<bool>();
    spec.environment.name = e.value("name", "");
    spec.environment.version = e.value("version", "");
  }
  spec.environment_variables =
      pairs_from_json(j.value("environment_variables", nlohmann::ordered_json::object()));
  spec.compute = j.value("compute", "local");
  spec.instance_count = j.value("instance_count", 1);
  if (j.contains("distribution")) {
    const auto& d = j["distribution"];
    spec.distribution.type = distribution_from_string(d.value("type", "none"));
    spec.distribution.process_count_per_instance = d.value("process_count_per_instance", 1);
    spec.distribution.backend = d.value("backend", "");
    spec.distribution.worker_count = d.value("worker_count", 0);
    spec.distribution.parameter_server_count = d.value("parameter_server_count", 0);
  }
  if (j.contains("timeout_seconds") && j["timeout_seconds"].is_number()) {
    spec.timeout_seconds = j["timeout_seconds"].get<std::int64_t>();
  }
  spec.shm_size = j.value("shm_size", "");
  spec.instance_type = j.value("instance_type", "");
  if (j.contains("trainer") && j["trainer"].is_object()) {
    const auto& t = j["trainer"];
    TrainerSpec trainer;
    trainer.model = t.value("model", "resnet18");
    trainer.epochs = t.value("epochs", 5);
    trainer.batch_size = t.value("batch_size", 16);
    trainer.learning_rate = t.value("learning_rate", 0.001);
    trainer.random_seed = t.value("random_seed", std::int64_t{1});
    trainer.patience = t.value("patience", 3);
    if (t.contains("image_size") && t["image_size"].is_number())
      trainer.image_size = t["image_size"].get<int>();
    if (t.contains("threads") && t["threads"].is_number())
      trainer.threads = t["threads"].get<int>();
    trainer.device = t.value("device", "");
    trainer.precision = t.value("precision", "");
    trainer.freeze_backbone = t.value("freeze_backbone", false);
    trainer.onnx = t.value("onnx", true);
    spec.trainer = trainer;
  }
  if (j.contains("score") && j["score"].is_object()) {
    const auto& c = j["score"];
    ScoreSpec score;
    score.model = c.value("model", "");
    score.model_resolved = c.value("model_resolved", "");
    score.output = c.value("output", "predictions.csv");
    score.top_k = c.value("top_k", 5);
    score.batch_size = c.value("batch_size", 64);
    score.engine = c.value("engine", "torch");
    score.strict = c.value("strict", false);
    if (c.contains("threads") && c["threads"].is_number()) score.threads = c["threads"].get<int>();
    score.device = c.value("device", "");
    spec.score = score;
  }
  if (j.contains("sweep") && !j["sweep"].is_null()) {
    spec.sweep = sweep_settings_from_json(j["sweep"], "job.json's sweep");
  }
  return spec;
}

static void emit_json(YAML::Emitter& out, const nlohmann::ordered_json& j) {
  if (j.is_object()) {
    out << YAML::BeginMap;
    for (auto it = j.begin(); it != j.end(); ++it) {
      out << YAML::Key << it.key() << YAML::Value;
      emit_json(out, it.value());
    }
    out << YAML::EndMap;
  } else if (j.is_array()) {
    out << YAML::BeginSeq;
    for (const auto& item : j) emit_json(out, item);
    out << YAML::EndSeq;
  } else if (j.is_string()) {
    const std::string& text = j.get_ref<const std::string&>();
    if (text.find('\n') != std::string::npos) {
      out << YAML::Literal << text;
    } else {
      out << YAML::DoubleQuoted << text;
    }
  } else if (j.is_null()) {
    out << YAML::Null;
  } else if (j.is_boolean()) {
    out << (j.get<bool>() ? "true" : "false");
  } else {
    out << j.dump();
  }
}

std::string json_to_yaml(const nlohmann::ordered_json& value) {
  YAML::Emitter out;
  emit_json(out, value);
  return std::string(out.c_str()) + "\n";
}

std::string to_yaml(const JobSpec& spec) {
  return json_to_yaml(to_json(spec));
}

}  // namespace amlrun::spec
