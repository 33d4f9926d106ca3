#pragma once
// The one internal job description that all three dialects normalise into
// (DESIGN.md "Job spec dialects"). Paths in it are absolute and resolved
// relative to the job file's directory.
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "lib/spec/sweep_settings.hpp"

namespace amlrun::spec {

enum class Dialect { command, estimator, trainer, score };
enum class DistributionType { none, mpi, pytorch, tensorflow };

std::string to_string(Dialect dialect);
std::string to_string(DistributionType type);

struct InputSpec {
  enum class Kind { literal, file, folder };
  std::string name;
  Kind kind = Kind::literal;
  std::string type;   // as declared: "string", "uri_file", "uri_folder", "mlflow_model", ...
  std::string value;  // literal: the text as written (e.g. "0.1", "hello world")
  std::string path;   // file/folder on this machine: absolute path
  std::string url;    // file/folder over http(s): the URL, downloaded at Preparing
  std::string mode;   // ro_mount (default), download, direct, ...
  bool optional = false;
};

struct OutputSpec {
  std::string name;
  std::string type = "uri_folder";
  std::string mode = "rw_mount";
};

struct EnvironmentSpec {
  std::string image;  // base image (command: environment.image, estimator: custom_docker_image)
  std::string conda_file;       // absolute path
  std::string build_context;    // absolute path of a Dockerfile context (environment.build.path)
  std::string dockerfile_path;  // relative to build_context
  std::vector<std::string> conda_packages;
  std::vector<std::string> pip_packages;
  std::string pip_requirements_file;  // absolute path
  std::optional<bool> use_gpu;
  std::string name;
  std::string version;
};

struct DistributionSpec {
  DistributionType type = DistributionType::none;
  int process_count_per_instance = 1;
  std::string backend;  // estimator: mpi, nccl or gloo (as written)
  // tensorflow: the first worker_count ranks are workers, the rest parameter
  // servers; their sum is the run's process count.
  int worker_count = 0;
  int parameter_server_count = 0;
};

// The "Train PyTorch Model" settings of a trainer job (type: train_pytorch_model).
struct TrainerSpec {
  std::string model = "resnet18";
  int epochs = 5;
  int batch_size = 16;
  double learning_rate = 0.001;
  std::int64_t random_seed = 1;
  int patience = 3;
  std::optional<int> image_size;
  std::optional<int> threads;
  std::string device;     // auto|cpu|cuda, "" = worker default
  std::string precision;  // fp32|bf16|fp16, "" = worker default
  bool freeze_backbone = false;
  bool onnx = true;  // false: --no-onnx (no model/model.onnx)
};

// The "Score Image Model" settings of a scoring job (type: score_image_model):
// amlrun-worker predict over `data` with a model folder, the result in
// outputs/<output>.
struct ScoreSpec {
  std::string model;           // as written: a folder, NAME:VERSION, NAME@latest, runs:/ID/PATH
  std::string model_resolved;  // what it named when submitted ("resnet:3", "run R outputs/model")
  std::string output = "predictions.csv";  // below outputs/
  int top_k = 5;
  int batch_size = 64;
  std::string engine = "torch";  // torch | onnx
  bool strict = false;
  std::optional<int> threads;
  std::string device;  // auto|cpu|cuda, "" = worker default
};

struct JobSpec {
  std::filesystem::path spec_file;  // absolute
  Dialect dialect = Dialect::command;
  std::string experiment_name;  // "" = default (the source directory's name)
  std::string display_name;
  std::string description;
  std::vector<std::pair<std::string, std::string>> tags;

  std::optional<std::filesystem::path> code_dir;  // absolute; nullopt = no code

  // What runs. A command job has `command` (a bash script); the estimator and
  // trainer dialects have `argv` (run directly, no shell).
  std::string command;
  std::vector<std::string> argv;

  std::vector<InputSpec> inputs;
  std::vector<OutputSpec> outputs;
  EnvironmentSpec environment;
  std::vector<std::pair<std::string, std::string>> environment_variables;

  std::string compute = "local";
  int instance_count = 1;
  DistributionSpec distribution;
  std::optional<std::int64_t> timeout_seconds;
  std::string shm_size;
  std::string instance_type;
  std::optional<TrainerSpec> trainer;
  std::optional<ScoreSpec> score;
  // A sweep (type: sweep): the fields above are the job each trial runs, with
  // ${{search_space.NAME}} where a trial's values go; this is the search.
  std::optional<SweepSettings> sweep;

  int total_processes() const { return instance_count * distribution.process_count_per_instance; }
  const InputSpec* find_input(const std::string& name) const;
};

// Key order follows the struct, so printed specs read naturally.
nlohmann::ordered_json to_json(const JobSpec& spec);
// A JobSpec as stored in a run directory and read back by the supervisor.
JobSpec job_spec_from_json(const nlohmann::ordered_json& json);
// The normalised spec as YAML text (amlrun validate --output yaml).
std::string to_yaml(const JobSpec& spec);

// Any JSON value as block YAML, keys in their order (--output yaml).
std::string json_to_yaml(const nlohmann::ordered_json& value);

}  // namespace amlrun::spec
