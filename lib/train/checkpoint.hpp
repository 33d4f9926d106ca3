#pragma once
// Checkpoints: everything `continue` needs, in a file Python can torch.load.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <ATen/Tensor.h>
#include <nlohmann/json.hpp>

#include "lib/train/state_dict.hpp"

namespace amlrun::train {

// Everything `continue` needs to go on exactly where a run stopped.
struct Checkpoint {
  static constexpr int k_format_version = 1;
  nlohmann::json config;  // config_to_json of the run
  std::vector<std::string> classes;
  int world_size = 1;
  int epochs_done = 0;             // completed epochs
  std::int64_t step_in_epoch = 0;  // steps done in the current epoch
  std::int64_t global_step = 0;    // optimizer steps since the start
  double best_val_loss = 0;        // +inf before the first validation
  double best_val_acc = 0;
  int best_epoch = 0;  // 0: none yet
  int epochs_without_improvement = 0;
  // Sums of the current epoch's training so far (for its train_loss/acc).
  double epoch_loss_sum = 0;
  double epoch_correct = 0;
  double epoch_samples = 0;
  double loss_scale = 1;  // fp16's dynamic loss scale
  StateDict model;
  StateDict momentum;    // SGD momentum buffers, by parameter name
  at::Tensor rng_state;  // LibTorch's CPU generator
};

// Written atomically (temp file, fsync, rename, fsync of the folder): a kill
// at any moment leaves the previous checkpoint or the new one.
void save_checkpoint(const std::filesystem::path& path, const Checkpoint& checkpoint);
// Throws util::InputError for a missing or foreign file or another format version.
Checkpoint load_checkpoint(const std::filesystem::path& path);

}  // namespace amlrun::train
