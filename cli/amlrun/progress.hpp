#pragma once
// Progress of a copy: a redrawn bar with bytes, rate and ETA on a terminal;
// an occasional plain line otherwise (logs and CI keep readable text).
#include <cstdint>
#include <string>

#include "lib/artifacts/tree_copy.hpp"

namespace amlrun::cli {

class ProgressPrinter {
 public:
  // `what` starts each plain line ("download").
  ProgressPrinter(std::string what, int fd);
  void update(const artifacts::CopyProgress& progress);
  // On a terminal, draws the bar's final state and ends its line (as curl
  // and pip leave theirs); the caller prints the summary.
  void finish();
  double elapsed_seconds() const;

 private:
  std::string m_what;
  int m_fd;
  bool m_terminal;
  std::int64_t m_start_ms;
  std::int64_t m_next_ms = 0;
  artifacts::CopyProgress m_last;
  void draw(const artifacts::CopyProgress& progress, std::int64_t now);
};

// "12.5 MiB/s"
std::string format_rate(double bytes_per_second);

}  // namespace amlrun::cli
