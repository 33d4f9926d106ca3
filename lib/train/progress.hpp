#pragma once
// What amlrun-worker shows people while it trains: the live progress line on
// a terminal, lines on stdout, percentages and paths as they should read.
// No LibTorch here.
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>

#include "lib/train/config.hpp"

namespace amlrun::train {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start);

// The model folder as the user should look for it: relative to the working
// directory when it lies inside it. Under amlrun the run's working directory
// is gone once its outputs are sealed, so an absolute path there would
// point nowhere; amlrun prints where the sealed outputs are.
std::string display_path(const std::filesystem::path& path);

// "12.34%".
std::string percent(double fraction);

// The "epoch 1/5  step 30/100  loss ..." line, redrawn in place at most
// twice a second; only on a plain terminal (enabled).
class LiveProgress {
 public:
  explicit LiveProgress(bool enabled) : m_enabled(enabled) {}

  void update(int epoch, int epochs, std::size_t step, std::size_t steps,
              const std::function<std::string()>& details);

  void clear();

 private:
  bool m_enabled;
  bool m_shown = false;
  // The first update is shown at once: even a short epoch shows its line.
  Clock::time_point m_last = Clock::now() - std::chrono::seconds(1);
};

// Where training stands within an epoch, for a progress line. Loss and
// accuracy are rank 0's running figures over the epoch so far (reducing them
// over the ranks would cost a collective per line); images/s is the whole
// job's estimate (rank 0's rate × processes).
struct StepFigures {
  int epoch = 0;  // 1-based
  int epochs = 0;
  std::size_t step = 0;  // steps done in this epoch
  std::size_t steps = 0;
  double loss = 0;
  double accuracy = 0;  // 0..1
  double images_per_second = 0;
  double eta_seconds = 0;  // the rest of this epoch's train steps
};

// "epoch 1/5  step 300/1875 (16%)  loss 0.6123  acc 78.12%  412 img/s  eta 3m 05s"
std::string progress_line(const StepFigures& figures);

// When a plain progress line is due within one epoch (ProgressCadence):
// by time, the first one `seconds` after the epoch's first step started;
// by percentage, at steps ceil(k × percent × steps / 100). Never after the
// last step: the epoch's own summary line follows at once.
class ProgressLines {
 public:
  ProgressLines(const ProgressCadence& cadence, bool enabled, std::size_t first_step,
                std::size_t steps);

  // After `step` steps of the epoch are done; true at most once per mark.
  bool due(std::size_t step);

 private:
  std::size_t mark(std::size_t k) const;

  ProgressCadence m_cadence;
  bool m_enabled;
  std::size_t m_steps;
  std::size_t m_next_mark = 1;  // k of the next percentage mark
  Clock::time_point m_next_time;
};

// One line on stdout with one write(), so lines of several writers do not mix.
void print_line(const std::string& text);

}  // namespace amlrun::train
