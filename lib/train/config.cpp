#include "lib/train/config.hpp"

#include <sched.h>

#include <fmt/format.h>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <limits>
#include <thread>

#include "lib/train/option_ranges.hpp"
#include "lib/util/error.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::train {

namespace fs = std::filesystem;

std::int64_t parse_integer(const std::string& option, const std::string& text, std::int64_t min,
                           std::int64_t max) {
  std::int64_t value = 0;
  const char* begin = text.data();
  const char* end = text.data() + text.size();
  auto [pointer, error] = std::from_chars(begin, end, value);
  if (text.empty() || error == std::errc::invalid_argument || pointer != end) {
    throw util::InputError(fmt::format("{} {}: not a whole number", option, util::printable(text)));
  }
  if (error == std::errc::result_out_of_range || value > max) {
    throw util::InputError(fmt::format("{} {}: must be at most {}", option, text, max));
  }
  if (value < min) {
    throw util::InputError(fmt::format("{} {}: must be at least {}", option, text, min));
  }
  return value;
}

double parse_number(const std::string& option, const std::string& text) {
  double value = 0;
  const char* end = text.data() + text.size();
  auto [pointer, error] = std::from_chars(text.data(), end, value);
  if (text.empty() || error != std::errc() || pointer != end || !std::isfinite(value)) {
    throw util::InputError(fmt::format("{} {}: not a number", option, util::printable(text)));
  }
  return value;
}

double parse_positive(const std::string& option, const std::string& text) {
  double value = parse_number(option, text);
  if (value <= 0) {
    throw util::InputError(fmt::format("{} {}: must be greater than 0", option, text));
  }
  return value;
}

double parse_non_negative(const std::string& option, const std::string& text) {
  double value = parse_number(option, text);
  if (value < 0) {
    throw util::InputError(fmt::format("{} {}: must be at least 0", option, text));
  }
  return value;
}

std::string parse_choice(const std::string& option, const std::string& text,
                         const std::vector<std::string>& choices, const std::string& what) {
  for (const std::string& choice : choices) {
    if (text == choice) {
      return text;
    }
  }
  throw util::InputError(
      fmt::format("{} {}: not a known {}{}; choose one of {}", option, util::printable(text), what,
                  util::did_you_mean_suffix(text, choices), util::join(choices, ", ")));
}

ProgressCadence parse_progress_cadence(const std::string& option, const std::string& text) {
  const bool is_percent = !text.empty() && text.back() == '%';
  const std::string number = is_percent ? text.substr(0, text.size() - 1) : text;
  double value = 0;
  const char* end = number.data() + number.size();
  auto [pointer, error] = std::from_chars(number.data(), end, value);
  if (number.empty() || error != std::errc() || pointer != end || !std::isfinite(value)) {
    throw util::InputError(
        fmt::format("{} {}: not a number of seconds or a percentage (e.g. 30 or 10%)", option,
                    util::printable(text)));
  }
  if (value < 0) {
    throw util::InputError(fmt::format("{} {}: must be at least 0", option, text));
  }
  if (is_percent && value > 100) {
    throw util::InputError(fmt::format("{} {}: must be at most 100%", option, text));
  }
  return is_percent ? ProgressCadence{0, value} : ProgressCadence{value, 0};
}

std::string cadence_text(const ProgressCadence& cadence) {
  if (cadence.percent > 0) {
    return fmt::format("{}%", cadence.percent);
  }
  return fmt::format("{}", cadence.seconds);
}

namespace {

std::string number_text(double value) {
  return fmt::format("{}", value);
}

int to_int(std::int64_t value) {
  return static_cast<int>(value);
}

std::int64_t parse_in_range(const std::string& option, const std::string& text,
                            const option_ranges::IntegerRange& range) {
  return parse_integer(option, text, range.min, range.max);
}

double parse_in_range(const std::string& option, const std::string& text,
                      const option_ranges::NumberRange& range) {
  double value = parse_number(option, text);
  if (value <= range.greater_than) {
    throw util::InputError(
        fmt::format("{} {}: must be greater than {}", option, text, range.greater_than));
  }
  if (value > range.max) {
    throw util::InputError(fmt::format("{} {}: must be at most {}", option, text, range.max));
  }
  return value;
}

}  // namespace

const std::vector<TrainOption>& train_options() {
  static const std::vector<TrainOption> options = {
      {"--model", "NAME", "resnet18, resnet34, resnet50 or densenet121",
       [](const TrainConfig& c) { return c.model; },
       [](TrainConfig& c, const std::string& v) {
         c.model = parse_choice("--model", v, model_names(), "model");
       }},
      {"--train-data", "DIR", "labelled image folder to train on (one sub-folder per class)",
       [](const TrainConfig& c) { return c.train_data; },
       [](TrainConfig& c, const std::string& v) { c.train_data = v; }},
      {"--validation-data", "DIR", "labelled image folder to validate on, same classes",
       [](const TrainConfig& c) { return c.validation_data; },
       [](TrainConfig& c, const std::string& v) { c.validation_data = v; }},
      {"--epochs", "N", "passes over the training data (0: only export the initial model)",
       [](const TrainConfig& c) { return std::to_string(c.epochs); },
       [](TrainConfig& c, const std::string& v) {
         c.epochs = to_int(parse_in_range("--epochs", v, option_ranges::k_epochs));
       }},
      {"--batch-size", "N", "images per step and process (global batch = N × processes)",
       [](const TrainConfig& c) { return std::to_string(c.batch_size); },
       [](TrainConfig& c, const std::string& v) {
         c.batch_size = to_int(parse_in_range("--batch-size", v, option_ranges::k_batch_size));
       }},
      {"--learning-rate", "X", "SGD learning rate",
       [](const TrainConfig& c) { return number_text(c.learning_rate); },
       [](TrainConfig& c, const std::string& v) {
         c.learning_rate = parse_in_range("--learning-rate", v, option_ranges::k_learning_rate);
       }},
      {"--seed", "N", "seed of the initial weights, the data order and the augmentation",
       [](const TrainConfig& c) { return std::to_string(c.seed); },
       [](TrainConfig& c, const std::string& v) {
         c.seed = static_cast<std::uint64_t>(parse_in_range("--seed", v, option_ranges::k_seed));
       }},
      {"--patience", "N",
       "stop after N epochs without a lower validation loss (0: never stop early)",
       [](const TrainConfig& c) { return std::to_string(c.patience); },
       [](TrainConfig& c, const std::string& v) {
         c.patience = to_int(parse_in_range("--patience", v, option_ranges::k_patience));
       }},
      {"--output-dir", "DIR", "where checkpoints/ and model/ are written",
       [](const TrainConfig& c) { return c.output_dir; },
       [](TrainConfig& c, const std::string& v) {
         if (v.empty()) {
           throw util::InputError("--output-dir: must not be empty");
         }
         c.output_dir = v;
       }},
      {"--image-size", "N", "side of the square images the model sees",
       [](const TrainConfig& c) { return std::to_string(c.image_size); },
       [](TrainConfig& c, const std::string& v) {
         c.image_size = to_int(parse_in_range("--image-size", v, option_ranges::k_image_size));
       }},
      {"--init-weights", "PATH",
       "start from a state dict (torch.save of state_dict()) or a model folder",
       [](const TrainConfig& c) { return c.init_weights; },
       [](TrainConfig& c, const std::string& v) {
         if (v.empty()) {
           throw util::InputError("--init-weights: must not be empty");
         }
         c.init_weights = v;
       }},
      {"--freeze-backbone", "", "train only the final layer (BatchNorm statistics stay fixed)",
       nullptr, [](TrainConfig& c, const std::string&) { c.freeze_backbone = true; }},
      {"--freeze-batch-norm", "",
       "BatchNorm uses its stored statistics instead of batch statistics (results then do "
       "not depend on how the global batch is split across processes)",
       nullptr, [](TrainConfig& c, const std::string&) { c.freeze_batch_norm = true; }},
      {"--threads", "N", "compute threads per process (0: cores / processes on the node)",
       [](const TrainConfig& c) { return std::to_string(c.threads); },
       [](TrainConfig& c, const std::string& v) {
         c.threads = to_int(parse_in_range("--threads", v, option_ranges::k_threads));
       }},
      {"--loader-threads", "N", "image loading threads per process (0: chosen from the cores)",
       [](const TrainConfig& c) { return std::to_string(c.loader_threads); },
       [](TrainConfig& c, const std::string& v) {
         c.loader_threads =
             to_int(parse_in_range("--loader-threads", v, option_ranges::k_loader_threads));
       }},
      {"--device", "auto|cpu|cuda", "where to train (auto: CUDA when available)",
       [](const TrainConfig& c) { return c.device; },
       [](TrainConfig& c, const std::string& v) {
         c.device = parse_choice("--device", v, {"auto", "cpu", "cuda"}, "device");
       }},
      {"--precision", "fp32|bf16|fp16", "arithmetic of forward and backward (autocast)",
       [](const TrainConfig& c) { return c.precision; },
       [](TrainConfig& c, const std::string& v) {
         c.precision = parse_choice("--precision", v, {"fp32", "bf16", "fp16"}, "precision");
       }},
      {"--strict", "", "stop at the first corrupt image instead of skipping it", nullptr,
       [](TrainConfig& c, const std::string&) { c.strict = true; }},
      {"--no-onnx", "", "do not write model/model.onnx beside model.pt", nullptr,
       [](TrainConfig& c, const std::string&) { c.onnx = false; }},
      {"--momentum", "X", "SGD momentum",
       [](const TrainConfig& c) { return number_text(c.momentum); },
       [](TrainConfig& c, const std::string& v) {
         c.momentum = parse_non_negative("--momentum", v);
         if (c.momentum >= 1) {
           throw util::InputError(fmt::format("--momentum {}: must be less than 1", v));
         }
       }},
      {"--weight-decay", "X", "SGD weight decay (L2)",
       [](const TrainConfig& c) { return number_text(c.weight_decay); },
       [](TrainConfig& c, const std::string& v) {
         c.weight_decay = parse_non_negative("--weight-decay", v);
       }},
      {"--min-crop-scale", "X", "smallest area fraction of the random resized crop",
       [](const TrainConfig& c) { return number_text(c.min_crop_scale); },
       [](TrainConfig& c, const std::string& v) {
         c.min_crop_scale = parse_positive("--min-crop-scale", v);
         if (c.min_crop_scale > 1) {
           throw util::InputError(fmt::format("--min-crop-scale {}: must be at most 1", v));
         }
       }},
      {"--lr-schedule", "constant|cosine",
       "learning rate over the run: constant, or cosine-annealed to 0 at the last epoch",
       [](const TrainConfig& c) { return c.lr_schedule; },
       [](TrainConfig& c, const std::string& v) {
         c.lr_schedule =
             parse_choice("--lr-schedule", v, {"constant", "cosine"}, "learning rate schedule");
       }},
      {"--bucket-size-mb", "X", "gradients per allreduce, in MB",
       [](const TrainConfig& c) { return number_text(c.bucket_size_mb); },
       [](TrainConfig& c, const std::string& v) {
         c.bucket_size_mb = parse_positive("--bucket-size-mb", v);
       }},
      {"--checkpoint-every", "N",
       "also write checkpoints/last.pt every N steps (0: only at the end of each epoch)",
       [](const TrainConfig& c) { return std::to_string(c.checkpoint_every); },
       [](TrainConfig& c, const std::string& v) {
         c.checkpoint_every =
             to_int(parse_in_range("--checkpoint-every", v, option_ranges::k_checkpoint_every));
       }},
      {"--collective-timeout", "SECONDS",
       "end the job when a collective waits longer than this for the other ranks (0: never)",
       [](const TrainConfig& c) { return number_text(c.collective_timeout); },
       [](TrainConfig& c, const std::string& v) {
         c.collective_timeout = parse_non_negative("--collective-timeout", v);
       }},
      {"--cache-size-mb", "X", "keep decoded images in memory when they fit in X MB (0: never)",
       [](const TrainConfig& c) { return number_text(c.cache_size_mb); },
       [](TrainConfig& c, const std::string& v) {
         c.cache_size_mb = parse_non_negative("--cache-size-mb", v);
       }},
      {"--progress-interval", "SECONDS|N%",
       "when the output is not a terminal, a progress line every SECONDS or every N% of an epoch "
       "(0: none)",
       [](const TrainConfig& c) { return cadence_text(c.progress); },
       [](TrainConfig& c, const std::string& v) {
         c.progress = parse_progress_cadence("--progress-interval", v);
       }},
  };
  return options;
}

void check_required(const TrainConfig& config) {
  if (config.train_data.empty()) {
    throw util::InputError("--train-data is required (a labelled image folder)");
  }
  if (config.validation_data.empty()) {
    throw util::InputError("--validation-data is required (a labelled image folder)");
  }
}

void resolve_paths(TrainConfig& config) {
  auto absolute = [](std::string& path) {
    if (!path.empty()) {
      path = fs::absolute(path).lexically_normal().string();
      // lexically_normal keeps a trailing separator of "dir/"; drop it so
      // messages and the stored configuration read the same.
      while (path.size() > 1 && path.back() == '/') {
        path.pop_back();
      }
    }
  };
  absolute(config.train_data);
  absolute(config.validation_data);
  absolute(config.output_dir);
  absolute(config.init_weights);
}

nlohmann::json config_to_json(const TrainConfig& c) {
  return nlohmann::json{
      {"model", c.model},
      {"train_data", c.train_data},
      {"validation_data", c.validation_data},
      {"epochs", c.epochs},
      {"batch_size", c.batch_size},
      {"learning_rate", c.learning_rate},
      {"seed", c.seed},
      {"patience", c.patience},
      {"output_dir", c.output_dir},
      {"image_size", c.image_size},
      {"init_weights", c.init_weights},
      {"freeze_backbone", c.freeze_backbone},
      {"freeze_batch_norm", c.freeze_batch_norm},
      {"threads", c.threads},
      {"loader_threads", c.loader_threads},
      {"device", c.device},
      {"precision", c.precision},
      {"strict", c.strict},
      {"momentum", c.momentum},
      {"weight_decay", c.weight_decay},
      {"min_crop_scale", c.min_crop_scale},
      {"lr_schedule", c.lr_schedule},
      {"bucket_size_mb", c.bucket_size_mb},
      {"checkpoint_every", c.checkpoint_every},
      {"collective_timeout", c.collective_timeout},
      {"cache_size_mb", c.cache_size_mb},
      {"progress_interval", cadence_text(c.progress)},
      {"onnx", c.onnx},
  };
}

TrainConfig config_from_json(const nlohmann::json& json) {
  TrainConfig c;
  auto get = [&](const char* key, auto& field) {
    if (!json.contains(key)) {
      throw util::InputError(fmt::format("checkpoint configuration: '{}' is missing", key));
    }
    try {
      json.at(key).get_to(field);
    } catch (const nlohmann::json::exception&) {
      throw util::InputError(fmt::format("checkpoint configuration: '{}' has the wrong type", key));
    }
  };
  get("model", c.model);
  get("train_data", c.train_data);
  get("validation_data", c.validation_data);
  get("epochs", c.epochs);
  get("batch_size", c.batch_size);
  get("learning_rate", c.learning_rate);
  get("seed", c.seed);
  get("patience", c.patience);
  get("output_dir", c.output_dir);
  get("image_size", c.image_size);
  get("init_weights", c.init_weights);
  get("freeze_backbone", c.freeze_backbone);
  get("freeze_batch_norm", c.freeze_batch_norm);
  get("threads", c.threads);
  get("loader_threads", c.loader_threads);
  get("device", c.device);
  get("precision", c.precision);
  get("strict", c.strict);
  get("momentum", c.momentum);
  get("weight_decay", c.weight_decay);
  get("min_crop_scale", c.min_crop_scale);
  get("lr_schedule", c.lr_schedule);
  get("bucket_size_mb", c.bucket_size_mb);
  get("checkpoint_every", c.checkpoint_every);
  get("collective_timeout", c.collective_timeout);
  get("cache_size_mb", c.cache_size_mb);
  // Checkpoints written before --progress-interval existed lack it.
  if (json.contains("progress_interval")) {
    std::string text;
    get("progress_interval", text);
    c.progress = parse_progress_cadence("checkpoint configuration: progress_interval", text);
  }
  // Checkpoints written before the ONNX export existed lack it; they get
  // the default (write it).
  if (json.contains("onnx")) {
    get("onnx", c.onnx);
  }
  parse_choice("checkpoint configuration: model", c.model, model_names(), "model");
  return c;
}

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    return std::max(1, CPU_COUNT(&set));
  }
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

int default_threads(int cores, int processes_on_node) {
  return std::max(1, cores / std::max(1, processes_on_node));
}

int default_loader_threads(int cores, int processes_on_node) {
  // Decoding and augmenting are cheap next to a training step, and decoded
  // images are cached for small datasets; a quarter of the process's cores
  // keeps the model fed without taking cores from it.
  return std::clamp(cores / std::max(1, processes_on_node) / 4, 1, 8);
}

}  // namespace amlrun::train
