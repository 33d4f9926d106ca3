#pragma once
// The training loop of `amlrun-worker train` and `continue`, on every rank:
// the model built and synchronised, the epochs of train steps, validation,
// early stopping, checkpoints, metrics and the exported model.
#include <optional>
#include <string>

#include "lib/train/checkpoint.hpp"
#include "lib/train/comm.hpp"
#include "lib/train/config.hpp"
#include "lib/train/dataset.hpp"
#include "lib/train/state_dict.hpp"

namespace amlrun::train {

// Everything checked before MPI starts (trainer.cpp's prepare_run).
struct PreparedRun {
  TrainConfig config;
  ImageFolder train_folder;
  ImageFolder validation_folder;
  StateDict init_weights;  // empty unless --init-weights
  std::string init_weights_what;
  std::optional<Checkpoint> resume;
};

// Trains on this rank; every rank of the job calls it. Returns the exit code
// (0); throws util::Error subclasses for problems found on the way.
int run_trainer(PreparedRun run, Communicator& comm);

}  // namespace amlrun::train
