#pragma once
// The commands of amlrun-worker. This header has no LibTorch in it, so
// cli/worker compiles in a second. train and continue are in trainer.cpp
// (their loop in training.cpp), evaluate in evaluate.cpp, predict in
// predict.cpp, loader-benchmark in loader_benchmark.cpp.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "lib/train/config.hpp"

namespace amlrun::train {

// `amlrun-worker train`: a checked configuration (check_required done).
// Returns the process exit code; throws util::Error subclasses for problems
// found before MPI is initialised (exit 2 for input errors). After MPI is up,
// a failure on one rank ends the whole job (MPI_Abort) with the error's code.
int run_training(TrainConfig config);

// `amlrun-worker continue DIR`: the configuration stored in
// DIR/checkpoints/last.pt, optionally with a new epoch count.
int continue_training(const std::filesystem::path& output_dir, std::optional<int> epochs);

struct EvaluateOptions {
  std::filesystem::path model_dir;
  std::filesystem::path data;
  int batch_size = 64;
  int threads = 0;
  int loader_threads = 0;
  std::string device = "auto";
  double cache_size_mb = 4096;
};

// `amlrun-worker evaluate`: accuracy and confusion matrix on stdout.
int run_evaluation(const EvaluateOptions& options);

struct PredictOptions {
  std::filesystem::path model_dir;
  std::vector<std::filesystem::path> data;  // image files and folders
  std::filesystem::path output;             // .csv or .jsonl
  int top_k = 5;                            // at most the class count
  int batch_size = 64;
  std::string engine = "torch";  // torch (model.pt) or onnx (model.onnx, OpenCV DNN)
  bool strict = false;           // an unreadable image is an error
  int threads = 0;
  int loader_threads = 0;
  std::string device = "auto";
};

// `amlrun-worker predict`: labels images, one output row per image.
int run_prediction(const PredictOptions& options);

struct LoaderBenchmarkOptions {
  std::filesystem::path data;
  int image_size = 224;
  int batch_size = 16;
  int loader_threads = 2;
  int epochs = 3;
  bool cache = true;
  bool eval_transform = false;
};

// `amlrun-worker loader-benchmark`: the input pipeline alone, images/s.
int run_loader_benchmark(const LoaderBenchmarkOptions& options);

struct ExportOptions {
  std::filesystem::path model_dir;
  std::string format = "onnx";
  int opset = 17;                // k_onnx_default_opset
  std::filesystem::path output;  // "": model_dir/model.onnx
};

// `amlrun-worker export`: a model folder's model.pt as ONNX (onnx_export.cpp).
int run_export(const ExportOptions& options);

}  // namespace amlrun::train
