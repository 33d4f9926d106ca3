#include "lib/train/progress.hpp"

#include <unistd.h>

#include <fmt/format.h>

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

void print_line(const std::string& text) {
  std::string line = text + "\n";
  ssize_t ignored = ::write(1, line.data(), line.size());
  (void)ignored;
}

}  // namespace amlrun::train
