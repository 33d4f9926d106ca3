// Benchmark 3 of the sweep issue: early termination on a synthetic family of
// learning curves, simulated interval by interval with amlrun's own policy
// code (lib/sweep/policy). Each seed draws TRIALS curves of a loss: some
// plateau high after a quick drop, some keep improving slowly, all with a
// little noise; trials run CONCURRENT at a time in the order drawn, one
// report per interval, up to INTERVALS each. After every interval the
// policy judges the running trials, as the controller does.
//
// Prints one line per seed: "<seed> <intervals run> <best trial> <its value>".
// Usage: sweep_policy_driver POLICY [SEEDS [TRIALS [INTERVALS [CONCURRENT]]]]
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "lib/sweep/policy.hpp"

using namespace amlrun::sweep;

namespace {

struct Curve {
  double start = 0;
  double final_value = 0;
  double tau = 1;  // intervals to close 63% of the gap
};

std::vector<Curve> draw_curves(std::mt19937_64& rng, int trials) {
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<Curve> curves;
  for (int i = 0; i < trials; ++i) {
    Curve c;
    c.start = 2.0 + 0.5 * u(rng);
    if (u(rng) < 0.4) {
      // Plateaus high: a fast drop to a poor value.
      c.final_value = 0.9 + 0.6 * u(rng);
      c.tau = 1.0 + u(rng);
    } else {
      // Keeps improving: a slow approach to a good value.
      c.final_value = 0.1 + 0.6 * u(rng);
      c.tau = 4.0 + 8.0 * u(rng);
    }
    curves.push_back(c);
  }
  return curves;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s none|bandit|median [SEEDS [TRIALS [INTERVALS [CONCURRENT]]]]\n",
                 argv[0]);
    return 2;
  }
  const std::string which = argv[1];
  const int seeds = argc > 2 ? std::atoi(argv[2]) : 10;
  const int trials = argc > 3 ? std::atoi(argv[3]) : 40;
  const int intervals = argc > 4 ? std::atoi(argv[4]) : 20;
  const int concurrent = argc > 5 ? std::atoi(argv[5]) : 4;
  // POLICY is none, bandit[:SLACK_FACTOR[:DELAY]] or median[:DELAY];
  // evaluated every interval. Defaults: Azure ML's documented examples
  // (bandit slack_factor 0.1, delay 5; median stopping, delay 5).
  std::optional<Policy> policy;
  auto field = [&](std::size_t index, double fallback) {
    std::size_t start = 0;
    for (std::size_t i = 0; i < index; ++i) {
      start = which.find(':', start);
      if (start == std::string::npos) return fallback;
      ++start;
    }
    return std::atof(which.substr(start, which.find(':', start) - start).c_str());
  };
  if (which.starts_with("bandit")) {
    policy = BanditPolicy{field(1, 0.1), std::nullopt, 1, static_cast<int>(field(2, 5))};
  }
  if (which.starts_with("median")) policy = MedianStoppingPolicy{1, static_cast<int>(field(1, 5))};
  if (which != "none" && !policy) {
    std::fprintf(stderr, "unknown policy %s\n", which.c_str());
    return 2;
  }
  for (int seed = 1; seed <= seeds; ++seed) {
    std::mt19937_64 rng(static_cast<std::uint64_t>(seed));
    auto curves = draw_curves(rng, trials);
    // Each trial's noise comes from its own stream, so a curve is the same
    // whichever policy cut it short.
    std::normal_distribution<double> noise(0, 0.01);
    std::vector<std::mt19937_64> streams;
    for (int i = 0; i < trials; ++i) {
      streams.emplace_back(static_cast<std::uint64_t>(seed) * 1000003u +
                           static_cast<std::uint64_t>(i));
    }
    std::vector<TrialReports> reports(static_cast<std::size_t>(trials));
    for (int i = 0; i < trials; ++i) reports[static_cast<std::size_t>(i)].trial = std::to_string(i);
    int next = 0;
    long long work = 0;
    auto running_count = [&] {
      int n = 0;
      for (const auto& r : reports) n += r.running ? 1 : 0;
      return n;
    };
    while (true) {
      while (running_count() < concurrent && next < trials) {
        reports[static_cast<std::size_t>(next++)].running = true;
      }
      if (running_count() == 0) break;
      for (std::size_t i = 0; i < reports.size(); ++i) {
        if (!reports[i].running) continue;
        const Curve& c = curves[i];
        const double t = static_cast<double>(reports[i].values.size() + 1);
        reports[i].values.push_back(
            c.final_value + (c.start - c.final_value) * std::exp(-t / c.tau) + noise(streams[i]));
        ++work;
        if (static_cast<int>(reports[i].values.size()) == intervals) reports[i].running = false;
      }
      if (policy) {
        for (const auto& end : trials_to_end(*policy, Goal::minimize, "loss", reports)) {
          reports[static_cast<std::size_t>(std::stoi(end.trial))].running = false;
        }
      }
    }
    std::size_t best = 0;
    double best_value = NAN;
    for (std::size_t i = 0; i < reports.size(); ++i) {
      const double value = best_of(Goal::minimize, reports[i].values, reports[i].values.size());
      if (better(Goal::minimize, value, best_value)) {
        best_value = value;
        best = i;
      }
    }
    std::printf("%d %lld %zu %.4f\n", seed, work, best, best_value);
  }
  return 0;
}
