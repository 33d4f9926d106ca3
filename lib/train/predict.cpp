// `amlrun-worker predict`: labels images with a model folder, the model's own
// preprocessing (image size, mean and std from config.json), and either
// engine: LibTorch on model.pt, or OpenCV's DNN module on model.onnx. Images
// are decoded by the loader's threads as in training; rows are written in
// input order to a temp file that is renamed into place at the end, so a
// failed or interrupted run leaves no half-written output.
#include <torch/nn/functional/activation.h>
#include <torch/types.h>
#include <torch/utils.h>

#include <fmt/format.h>
#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>
#include <numeric>
#include <optional>

#include "lib/train/device.hpp"
#include "lib/train/loader.hpp"
#include "lib/train/messages.hpp"
#include "lib/train/metrics.hpp"
#include "lib/train/model_folder.hpp"
#include "lib/train/models.hpp"
#include "lib/train/onnx_engine.hpp"
#include "lib/train/predictions.hpp"
#include "lib/train/progress.hpp"
#include "lib/train/sampler.hpp"
#include "lib/train/trainer.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"

namespace amlrun::train {

namespace fs = std::filesystem;

namespace {

// The logits of one batch, whichever engine computes them.
using Engine = std::function<std::size_t(const Batch&, std::vector<float>&)>;

Engine torch_engine(const ModelFolder& folder, const DeviceChoice& device) {
  std::shared_ptr<ImageClassifierImpl> model = load_model(folder);
  model->to(device.device);
  return [model, device](const Batch& batch, std::vector<float>& logits) {
    torch::InferenceMode inference;
    torch::Tensor images = torch::from_blob(batch.pixels.get(),
                                            {static_cast<std::int64_t>(batch.count), 3,
                                             batch.image_size, batch.image_size},
                                            torch::kFloat32)
                               .to(device.device);
    torch::Tensor out = model->forward(images).to(torch::kCPU).contiguous();
    const float* p = out.data_ptr<float>();
    logits.assign(p, p + out.numel());
    return static_cast<std::size_t>(out.size(1));
  };
}

Engine onnx_engine(const ModelFolder& folder, int threads) {
  auto engine = std::make_shared<OnnxEngine>(folder.dir / "model.onnx", threads);
  return [engine](const Batch& batch, std::vector<float>& logits) {
    return engine->run(batch.pixels.get(), batch.count, batch.image_size, logits);
  };
}

// The class a row's path names when --data is one labelled folder whose
// sub-folders are the model's classes ("Bag/0001.png" → Bag), else nullopt.
std::optional<std::string> folder_label(const std::string& shown,
                                        const std::vector<std::string>& classes) {
  const fs::path path(shown);
  if (path.is_absolute() || std::distance(path.begin(), path.end()) < 2) return std::nullopt;
  const std::string first = path.begin()->string();
  if (std::find(classes.begin(), classes.end(), first) == classes.end()) return std::nullopt;
  return first;
}

std::string reason_without_path(const std::string& reason, const fs::path& path) {
  const std::string prefix = path.string() + ": ";
  return reason.starts_with(prefix) ? reason.substr(prefix.size()) : reason;
}

}  // namespace

int run_prediction(const PredictOptions& options) {
  const std::vector<std::string> weights = {options.engine == "onnx" ? "model.onnx" : "model.pt"};
  const ModelFolder folder = read_model_folder(options.model_dir, weights);
  if (options.engine == "onnx" && options.device == "cuda") {
    throw util::InputError(
        "--engine onnx runs on the CPU (OpenCV's DNN module); use --engine torch for "
        "--device cuda");
  }
  const PredictFormat format = predict_format(options.output);
  std::vector<PredictInput> inputs = list_predict_inputs(options.data);
  const std::size_t k = std::min(static_cast<std::size_t>(options.top_k), folder.classes.size());

  const int threads = resolve_threads(options.threads, /*processes_on_node=*/1);
  configure_threads(threads);
  const int loader_threads =
      options.loader_threads > 0
          ? options.loader_threads
          : default_loader_threads(available_cores(), /*processes_on_node=*/1);
  Engine engine;
  if (options.engine == "onnx") {
    engine = onnx_engine(folder, threads);
  } else {
    engine = torch_engine(folder, choose_device(options.device, /*local_rank=*/0));
  }

  ImageFolder images;
  images.root = options.data.front();
  for (const PredictInput& input : inputs) images.samples.push_back({input.path, 0});
  ImageDataset dataset(std::move(images), options.strict);
  std::vector<std::size_t> all(dataset.size());
  std::iota(all.begin(), all.end(), 0);
  const std::vector<std::vector<std::size_t>> batches =
      split_batches(all, static_cast<std::size_t>(options.batch_size), /*drop_single_tail=*/false);
  LoaderOptions loader_options;
  loader_options.kind = TransformKind::eval;
  loader_options.image_size = folder.image_size;
  loader_options.normalization = folder.normalization;
  loader_options.threads = loader_threads;
  loader_options.prefetch_batches = 2 * loader_threads + 2;
  BatchLoader loader(dataset, batches, loader_options);

  if (options.output.has_parent_path()) fs::create_directories(options.output.parent_path());
  util::AtomicFile out(options.output);
  out.write(format == PredictFormat::csv ? csv_header(k) : std::string());
  const auto start = std::chrono::steady_clock::now();
  std::size_t predicted = 0;
  std::size_t right = 0;
  std::size_t labelled = 0;
  std::vector<float> logits;
  std::string rows;
  for (std::size_t b = 0; b < batches.size(); ++b) {
    std::shared_ptr<Batch> batch = loader.next();
    std::size_t classes = 0;
    if (batch->count > 0) {
      classes = engine(*batch, logits);
      if (classes != folder.classes.size()) {
        throw std::runtime_error(
            fmt::format("{}: the model gives {} scores per image but labels.json lists {} classes",
                        folder.what, classes, folder.classes.size()));
      }
    }
    rows.clear();
    std::size_t in_batch = 0;
    for (std::size_t index : batches[b]) {
      Prediction prediction;
      prediction.path = inputs[index].shown;
      if (in_batch < batch->count && batch->samples[in_batch] == index) {
        for (auto [c, p] : top_k_probabilities(logits.data() + in_batch * classes, classes, k)) {
          prediction.top.emplace_back(folder.classes[c], p);
        }
        in_batch += 1;
        predicted += 1;
        if (auto label = folder_label(prediction.path, folder.classes)) {
          labelled += 1;
          right += *label == prediction.top.front().first ? 1 : 0;
        }
      } else {
        prediction.error = reason_without_path(dataset.corrupt_reason(index), inputs[index].path);
      }
      rows += format == PredictFormat::csv ? csv_row(prediction, k) : jsonl_row(prediction);
    }
    out.write(rows);
  }
  if (predicted == 0) {
    throw util::InputError(fmt::format("no readable image among the {} of --data ({} skipped)",
                                       inputs.size(), dataset.corrupt_count()));
  }
  out.commit();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const double rate = static_cast<double>(predicted) / std::max(seconds, 1e-9);
  std::string unreadable =
      dataset.corrupt_count() > 0 ? fmt::format(", {} unreadable", dataset.corrupt_count()) : "";
  print_line(
      fmt::format("predicted {} image{}{} in {:.2f} s ({:.1f} images/s, engine {}); wrote {}",
                  predicted, predicted == 1 ? "" : "s", unreadable, seconds, rate, options.engine,
                  options.output.string()));
  // Every image of a labelled folder (sub-folders named as the model's
  // classes): the accuracy evaluate would report.
  if (labelled > 0 && labelled == predicted) {
    print_line(fmt::format("accuracy {} ({}/{}) by the folder names",
                           percent(static_cast<double>(right) / static_cast<double>(labelled)),
                           right, labelled));
  }
  if (const char* file = std::getenv("AMLRUN_METRICS_FILE"); file != nullptr && *file != '\0') {
    MetricsWriter metrics(file);
    metrics.write("images_per_sec", rate, 0);
    metrics.write("predicted_images", static_cast<double>(predicted), 0);
    metrics.write("unreadable_images", static_cast<double>(dataset.corrupt_count()), 0);
  }
  return 0;
}

}  // namespace amlrun::train
