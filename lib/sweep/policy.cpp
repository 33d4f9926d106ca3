#include "lib/sweep/policy.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace amlrun::sweep {

bool is_evaluation_interval(int interval, int evaluation_interval, int delay_evaluation) {
  const int after = interval - delay_evaluation;
  return after >= 1 && evaluation_interval >= 1 && after % evaluation_interval == 0;
}

bool better(Goal goal, double a, double b) {
  if (std::isnan(a)) return false;
  if (std::isnan(b)) return true;
  return goal == Goal::minimize ? a < b : a > b;
}

double best_of(Goal goal, const std::vector<double>& values, std::size_t count) {
  double best = std::numeric_limits<double>::quiet_NaN();
  for (std::size_t i = 0; i < std::min(count, values.size()); ++i) {
    if (better(goal, values[i], best)) {
      best = values[i];
    }
  }
  return best;
}

namespace {

// `{}` of fmt: the shortest text that reads back as the value.
std::string number(double value) {
  return fmt::format("{}", value);
}

// Every trial that reached interval t, with its best within those reports.
struct Standing {
  const TrialReports* trial;
  double best;
};

std::vector<Standing> standings_at(Goal goal, std::size_t t,
                                   const std::vector<TrialReports>& trials) {
  std::vector<Standing> out;
  for (const TrialReports& trial : trials) {
    if (trial.values.size() >= t) {
      out.push_back({&trial, best_of(goal, trial.values, t)});
    }
  }
  return out;
}

std::optional<std::string> bandit(const BanditPolicy& p, Goal goal, const std::string& metric,
                                  double best, const std::vector<Standing>& field, int t) {
  double top = std::numeric_limits<double>::quiet_NaN();
  for (const Standing& s : field) {
    if (better(goal, s.best, top)) top = s.best;
  }
  if (std::isnan(top)) return std::nullopt;
  const bool maximize = goal == Goal::maximize;
  double limit = 0;
  std::string how;
  if (p.slack_factor) {
    limit = maximize ? top / (1 + *p.slack_factor) : top * (1 + *p.slack_factor);
    how = fmt::format("the best trial's {} {} (1 + slack_factor {})", number(top),
                      maximize ? "/" : "×", number(*p.slack_factor));
  } else {
    limit = maximize ? top - p.slack_amount.value_or(0) : top + p.slack_amount.value_or(0);
    how = fmt::format("the best trial's {} {} slack_amount {}", number(top), maximize ? "-" : "+",
                      number(p.slack_amount.value_or(0)));
  }
  if (!std::isnan(best) && !better(goal, limit, best)) return std::nullopt;
  return fmt::format("bandit: best {} {} at interval {} is {} {} ({})", metric, number(best), t,
                     maximize ? "below" : "above", number(limit), how);
}

std::optional<std::string> median(Goal goal, const std::string& metric, double best, std::size_t t,
                                  const std::vector<Standing>& field) {
  std::vector<double> averages;
  for (const Standing& s : field) {
    const auto& v = s.trial->values;
    const double mean =
        std::accumulate(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(t), 0.0) /
        static_cast<double>(t);
    if (!std::isnan(mean)) averages.push_back(mean);
  }
  if (averages.empty()) return std::nullopt;
  std::sort(averages.begin(), averages.end());
  const std::size_t n = averages.size();
  const double middle =
      n % 2 == 1 ? averages[n / 2] : 0.5 * (averages[n / 2 - 1] + averages[n / 2]);
  if (!std::isnan(best) && !better(goal, middle, best)) return std::nullopt;
  return fmt::format(
      "median_stopping: best {} {} at interval {} is worse than the median {} of the running "
      "averages of {} trials",
      metric, number(best), t, number(middle), n);
}

std::optional<std::string> truncation(const TruncationSelectionPolicy& p, Goal goal,
                                      const std::string& metric, const TrialReports& trial,
                                      std::vector<Standing> field, int t) {
  // Worst first; stable, so of equal values the trial listed first is
  // kept as the better one.
  std::stable_sort(field.begin(), field.end(), [&](const Standing& a, const Standing& b) {
    return better(goal, b.best, a.best);
  });
  const std::size_t cut = field.size() * static_cast<std::size_t>(p.truncation_percentage) / 100;
  for (std::size_t i = 0; i < cut; ++i) {
    if (field[i].trial == &trial) {
      return fmt::format(
          "truncation_selection: best {} {} at interval {} is among the worst {}% ({} of {} "
          "trials)",
          metric, number(field[i].best), t, p.truncation_percentage, cut, field.size());
    }
  }
  return std::nullopt;
}

}  // namespace

std::vector<Termination> trials_to_end(const Policy& policy, Goal goal, const std::string& metric,
                                       const std::vector<TrialReports>& trials) {
  const auto [evaluation_interval, delay] = std::visit(
      [](const auto& p) {
        return std::pair{p.evaluation_interval, p.delay_evaluation};
      },
      policy);
  std::vector<Termination> out;
  for (const TrialReports& trial : trials) {
    const int t = static_cast<int>(trial.values.size());
    if (!trial.running || !is_evaluation_interval(t, evaluation_interval, delay)) {
      continue;
    }
    const auto at = static_cast<std::size_t>(t);
    std::vector<Standing> field = standings_at(goal, at, trials);
    const double best = best_of(goal, trial.values, at);
    std::optional<std::string> reason;
    if (const auto* b = std::get_if<BanditPolicy>(&policy)) {
      reason = bandit(*b, goal, metric, best, field, t);
    } else if (std::holds_alternative<MedianStoppingPolicy>(policy)) {
      reason = median(goal, metric, best, at, field);
    } else {
      reason = truncation(std::get<TruncationSelectionPolicy>(policy), goal, metric, trial,
                          std::move(field), t);
    }
    if (reason) {
      out.push_back({trial.trial, t, *reason});
    }
  }
  return out;
}

}  // namespace amlrun::sweep
