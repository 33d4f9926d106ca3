#include "lib/train/schedule.hpp"

#include <algorithm>
#include <cmath>
#include <numbers>

#include "lib/train/config.hpp"

namespace amlrun::train {

double learning_rate_at_step(const TrainConfig& config, int epoch, std::size_t step,
                             std::size_t steps_per_epoch) {
  double learning_rate = config.learning_rate;
  if (config.lr_schedule == "cosine") {
    const double total = static_cast<double>(config.epochs) * static_cast<double>(steps_per_epoch);
    const double progress = (epoch * static_cast<double>(steps_per_epoch) + step) / total;
    learning_rate *= 0.5 * (1.0 + std::cos(std::numbers::pi * std::min(progress, 1.0)));
  }
  return learning_rate;
}

bool LossScale::update(bool gradients_finite) {
  if (!gradients_finite) {
    m_scale *= 0.5;
    m_good_steps = 0;
  } else if (++m_good_steps == k_growth_interval) {
    m_scale *= 2.0;
    m_good_steps = 0;
  }
  return gradients_finite;
}

}  // namespace amlrun::train
