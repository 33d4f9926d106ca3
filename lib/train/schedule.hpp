#pragma once
// The rules that change from one optimizer step to the next: the learning
// rate of a step and fp16's dynamic loss scale. No LibTorch: both are plain
// functions of their inputs, unit-tested on their own.
#include <cstddef>

namespace amlrun::train {

struct TrainConfig;

// The learning rate of step `step` (0-based, within the epoch) of epoch
// `epoch` (0-based) when an epoch has `steps_per_epoch` steps:
// --learning-rate, or with --lr-schedule cosine that rate annealed to 0 over
// all --epochs, per step (cos from 0 to π; past the end it stays 0). It
// depends on the step counter alone, so a continued run follows the same
// schedule.
double learning_rate_at_step(const TrainConfig& config, int epoch, std::size_t step,
                             std::size_t steps_per_epoch);

// fp16's dynamic loss scale, torch.cuda.amp.GradScaler's rule: the loss is
// multiplied by the scale before backward so small gradients survive in
// half precision; a step whose gradients came out inf or NaN is skipped and
// halves the scale, and every 2000 good steps in a row double it.
class LossScale {
 public:
  static constexpr double k_initial = 65536.0;  // GradScaler's init_scale
  static constexpr int k_growth_interval = 2000;

  explicit LossScale(double scale = 1) : m_scale(scale) {}

  double value() const { return m_scale; }

  // After a step's gradients were checked; returns whether to apply the
  // step. Every rank checks the same reduced gradients, so every rank takes
  // the same decision.
  bool update(bool gradients_finite);

 private:
  double m_scale;
  int m_good_steps = 0;
};

}  // namespace amlrun::train
