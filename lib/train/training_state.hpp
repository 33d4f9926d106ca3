#pragma once
// The counters of a training run: where it stands, its best epoch, and the
// sums behind an epoch's training metrics. Checkpoints carry all three, so a
// continued run goes on with the same numbers. No LibTorch here.
#include <cstdint>
#include <limits>
#include <string>

#include "lib/train/comm.hpp"

namespace amlrun::train {

// Sums over an epoch's training batches so far. Reduced over the ranks they
// give the epoch's train_loss and train_acc.
struct EpochSums {
  double loss = 0;     // sum of the images' losses
  double correct = 0;  // images classified right
  double samples = 0;  // images
};

// Each sum over all ranks, in one collective named `what`.
EpochSums reduce_over_ranks(Communicator& comm, const EpochSums& sums, const std::string& what);

// One epoch's training as every rank reports it.
struct EpochTotals {
  EpochSums sums;
  double session_samples = 0;  // images trained by this process (a continued epoch: its rest)
  double wait_seconds = 0;     // waiting for allreduces after backward
};

// All ranks' totals summed, in one collective.
EpochTotals reduce_over_ranks(Communicator& comm, const EpochTotals& totals);

// Where the run stands: what a checkpoint records to go on from.
struct RunPosition {
  int epochs_done = 0;
  std::int64_t step_in_epoch = 0;  // steps done in the current epoch
  std::int64_t global_step = 0;    // optimizer steps since the start
};

// The epoch with the lowest validation loss so far (its model is exported)
// and how many epochs have passed without a better one (early stopping).
struct BestEpoch {
  double val_loss = std::numeric_limits<double>::infinity();
  double val_acc = 0;
  int epoch = 0;  // 1-based; 0: none yet
  int epochs_without_improvement = 0;

  // Records epoch `epoch`'s (1-based) validation; returns whether it is the
  // new best (a NaN loss never is).
  bool record(int epoch, double val_loss, double val_acc);
  // --patience epochs in a row without a lower validation loss; never with 0.
  bool stop_early(int patience) const;
};

}  // namespace amlrun::train
