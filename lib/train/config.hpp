#pragma once
// The trainer's configuration: what `amlrun-worker train` accepts, how each
// value is checked, and its JSON form (stored in checkpoints, so `continue`
// resumes with exactly the configuration of the run it continues, and in
// outputs/model/config.json). No LibTorch here.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace amlrun::train {

// How often `train` prints a progress line within an epoch when its output
// is not a terminal (a log file under amlrun, mpirun, a pipe): every
// `seconds`, or every `percent` of the epoch's steps. Exactly one is set;
// both 0 turns the lines off. Time is the default because a step-based
// cadence says nothing for an hour on a large dataset's epoch; a percentage
// gives the same lines on every machine (tests, comparing runs).
struct ProgressCadence {
  double seconds = 30;
  double percent = 0;
  bool enabled() const { return seconds > 0 || percent > 0; }
};

struct TrainConfig {
  std::string model = "resnet18";
  std::string train_data;       // absolute after resolve_paths
  std::string validation_data;  // absolute after resolve_paths
  int epochs = 5;
  int batch_size = 16;  // per process: the global batch is batch_size × processes
  double learning_rate = 0.001;
  std::uint64_t seed = 1;
  int patience = 3;  // epochs without a better validation loss before stopping; 0: never
  std::string output_dir = "outputs";
  int image_size = 224;
  std::string init_weights;  // a state dict file or a model folder; "" for random
  bool freeze_backbone = false;
  bool freeze_batch_norm = false;
  int threads = 0;         // intra-op threads per process; 0: cores / processes on the node
  int loader_threads = 0;  // 0: chosen from the cores
  std::string device = "auto";
  std::string precision = "fp32";
  bool strict = false;
  double momentum = 0.9;
  double weight_decay = 0.0;
  double min_crop_scale = 0.08;
  std::string lr_schedule = "constant";  // or "cosine": annealed to 0 over all epochs
  double bucket_size_mb = 25.0;
  int checkpoint_every = 1000;      // steps; 0: only at the end of each epoch
  double collective_timeout = 300;  // seconds; 0: no watchdog
  double cache_size_mb = 4096;      // decoded images kept in memory up to this size
  ProgressCadence progress;         // --progress-interval
  bool onnx = true;                 // also write model/model.onnx (--no-onnx turns it off)
};

inline const std::vector<std::string>& model_names() {
  static const std::vector<std::string> names = {"resnet18", "resnet34", "resnet50", "densenet121"};
  return names;
}

// One option of `amlrun-worker train`: the CLI registers them from this
// table, so names, help and checks live in one place.
struct TrainOption {
  std::string name;        // "--epochs"
  std::string value_name;  // "N"; empty for a flag
  std::string help;
  std::function<std::string(const TrainConfig&)> current;     // the default, as text
  std::function<void(TrainConfig&, const std::string&)> set;  // parses and checks
};
const std::vector<TrainOption>& train_options();

// Checks that cannot be done one option at a time (required folders).
void check_required(const TrainConfig& config);

// Makes the folders and files absolute, so the configuration stored in a
// checkpoint still means the same from another working directory.
void resolve_paths(TrainConfig& config);

nlohmann::json config_to_json(const TrainConfig& config);
// Throws util::InputError when a stored configuration misses a field or a
// value is no longer valid ("checkpoint configuration: ...").
TrainConfig config_from_json(const nlohmann::json& json);

// Parsers with the exact error texts the CLI shows (all util::InputError):
//   "--epochs 'abc': not a whole number", "--epochs -1: must be at least 0",
//   "--learning-rate 'x': not a number", "--learning-rate 0: must be greater than 0",
//   "--model 'resnet19': not a known model (did you mean 'resnet18'?); choose one of ..."
std::int64_t parse_integer(const std::string& option, const std::string& text, std::int64_t min,
                           std::int64_t max);
double parse_number(const std::string& option, const std::string& text);
double parse_positive(const std::string& option, const std::string& text);
double parse_non_negative(const std::string& option, const std::string& text);
std::string parse_choice(const std::string& option, const std::string& text,
                         const std::vector<std::string>& choices, const std::string& what);

// --progress-interval: "30" (seconds), "10%" (of the epoch's steps), "0" (off).
//   "--progress-interval 'x': not a number of seconds or a percentage (e.g. 30 or 10%)"
//   "--progress-interval 150%: must be at most 100%"
ProgressCadence parse_progress_cadence(const std::string& option, const std::string& text);
// The inverse: "30", "2.5", "10%", "0".
std::string cadence_text(const ProgressCadence& cadence);

// Default thread counts for a process that shares `cores` with
// `processes_on_node` processes.
int default_threads(int cores, int processes_on_node);
int default_loader_threads(int cores, int processes_on_node);
// CPUs this process may run on (sched_getaffinity).
int available_cores();

}  // namespace amlrun::train
