#pragma once
// What amlrun-worker shows people while it trains: the live progress line on
// a terminal, lines on stdout, percentages and paths as they should read.
// No LibTorch here.
#include <chrono>
#include <cstddef>
#include <filesystem>
#include <functional>
#include <string>

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

// One line on stdout with one write(), so lines of several writers do not mix.
void print_line(const std::string& text);

}  // namespace amlrun::train
