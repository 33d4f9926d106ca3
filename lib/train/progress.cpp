#include "lib/train/progress.hpp"

#include <unistd.h>

#include <fmt/format.h>
#include <cmath>

#include "lib/util/time.hpp"

namespace amlrun::train {

namespace fs = std::filesystem;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string display_path(const fs::path& path) {
  std::error_code error;
  fs::path cwd = fs::current_path(error);
  if (error) return path.string();
  fs::path relative = path.lexically_relative(cwd);
  if (relative.empty() || *relative.begin() == "..") return path.string();
  return relative.string();
}

std::string percent(double fraction) {
  return fmt::format("{:.2f}%", fraction * 100);
}

void LiveProgress::update(int epoch, int epochs, std::size_t step, std::size_t steps,
                          const std::function<std::string()>& details) {
  if (!m_enabled || seconds_since(m_last) < 0.5) {
    return;
  }
  m_last = Clock::now();
  std::string line =
      fmt::format("\r\033[Kepoch {}/{}  step {}/{}  {}", epoch, epochs, step, steps, details());
  ssize_t ignored = ::write(1, line.data(), line.size());
  (void)ignored;
  m_shown = true;
}

void LiveProgress::clear() {
  if (m_shown) {
    ssize_t ignored = ::write(1, "\r\033[K", 4);
    (void)ignored;
    m_shown = false;
  }
}

std::string progress_line(const StepFigures& f) {
  const auto done_percent =
      f.steps > 0 ? static_cast<unsigned>(100 * f.step / f.steps) : 100U;  // floor: 100% at the end
  return fmt::format("epoch {}/{}  step {}/{} ({}%)  loss {:.4f}  acc {}  {:.0f} img/s  eta {}",
                     f.epoch, f.epochs, f.step, f.steps, done_percent, f.loss, percent(f.accuracy),
                     f.images_per_second, util::format_duration(f.eta_seconds));
}

ProgressLines::ProgressLines(const ProgressCadence& cadence, bool enabled, std::size_t first_step,
                             std::size_t steps)
    : m_cadence(cadence),
      m_enabled(enabled && cadence.enabled()),
      m_steps(steps),
      m_next_time(Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                     std::chrono::duration<double>(cadence.seconds))) {
  // A run resumed within the epoch continues on the same marks.
  while (m_cadence.percent > 0 && mark(m_next_mark) <= first_step) {
    ++m_next_mark;
  }
}

std::size_t ProgressLines::mark(std::size_t k) const {
  // At least one step apart: 1% of a 20-step epoch is every step.
  const double at =
      std::ceil(static_cast<double>(k) * m_cadence.percent * static_cast<double>(m_steps) / 100.0);
  return std::max(k, static_cast<std::size_t>(at));
}

bool ProgressLines::due(std::size_t step) {
  if (!m_enabled || step >= m_steps) {
    return false;
  }
  if (m_cadence.percent > 0) {
    if (step < mark(m_next_mark)) {
      return false;
    }
    while (mark(m_next_mark) <= step) {
      ++m_next_mark;
    }
    return true;
  }
  const auto now = Clock::now();
  if (now < m_next_time) {
    return false;
  }
  m_next_time = now + std::chrono::duration_cast<Clock::duration>(
                          std::chrono::duration<double>(m_cadence.seconds));
  return true;
}

void print_line(const std::string& text) {
  std::string line = text + "\n";
  ssize_t ignored = ::write(1, line.data(), line.size());
  (void)ignored;
}

}  // namespace amlrun::train
