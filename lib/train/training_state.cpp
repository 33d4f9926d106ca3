#include "lib/train/training_state.hpp"

namespace amlrun::train {

EpochSums reduce_over_ranks(Communicator& comm, const EpochSums& sums, const std::string& what) {
  double values[3] = {sums.loss, sums.correct, sums.samples};
  comm.allreduce_sum(values, 3, what);
  return {values[0], values[1], values[2]};
}

EpochTotals reduce_over_ranks(Communicator& comm, const EpochTotals& totals) {
  double values[5] = {totals.sums.loss, totals.sums.correct, totals.sums.samples,
                      totals.session_samples, totals.wait_seconds};
  comm.allreduce_sum(values, 5, "training metrics reduction");
  return {{values[0], values[1], values[2]}, values[3], values[4]};
}

bool BestEpoch::record(int epoch_number, double loss, double accuracy) {
  if (loss < val_loss) {
    *this = {loss, accuracy, epoch_number, 0};
    return true;
  }
  epochs_without_improvement += 1;
  return false;
}

bool BestEpoch::stop_early(int patience) const {
  return patience > 0 && epochs_without_improvement >= patience;
}

}  // namespace amlrun::train
