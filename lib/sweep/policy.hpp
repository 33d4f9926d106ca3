#pragma once
// Early termination (Azure ML's bandit, median stopping and truncation
// selection): which running trials to end, given every trial's reports of
// the primary metric. Pure: the controller records each decision before it
// acts on it, and calling this again with the same reports decides the same.
//
// Each time a trial logs the primary metric is one interval (the first is
// interval 1). A trial is judged at interval t when t = delay_evaluation +
// n × evaluation_interval for some n >= 1, against the trials that have
// reached t, each by its best value within its first t reports (NaN counts
// as worst). The formulas are in README ("Sweeps").
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace amlrun::sweep {

enum class Goal { minimize, maximize };

// Ends a trial whose best is outside the slack of the best trial's best at
// the same interval. maximize: best < top / (1 + slack_factor), or best <
// top - slack_amount; minimize: best > top × (1 + slack_factor), or best >
// top + slack_amount. Exactly one of the two slacks is set.
struct BanditPolicy {
  std::optional<double> slack_factor;
  std::optional<double> slack_amount;
  int evaluation_interval = 1;
  int delay_evaluation = 0;
};

// Ends a trial whose best is worse than the median of the running averages
// (mean of the first t reports) of all trials that reached t, itself
// included.
struct MedianStoppingPolicy {
  int evaluation_interval = 1;
  int delay_evaluation = 0;
};

// Ends a trial that is among the worst truncation_percentage % (rounded
// down) of the trials that reached t; ties keep the trial reported first.
struct TruncationSelectionPolicy {
  int truncation_percentage = 0;
  int evaluation_interval = 1;
  int delay_evaluation = 0;
};

using Policy = std::variant<BanditPolicy, MedianStoppingPolicy, TruncationSelectionPolicy>;

// One trial's reports of the primary metric, in order.
struct TrialReports {
  std::string trial;
  std::vector<double> values;
  bool running = false;
};

struct Termination {
  std::string trial;
  int interval = 0;
  // "bandit: best val_loss 0.9 at interval 4 is above 0.744 (the best trial's
  // 0.62 × (1 + slack_factor 0.2))"
  std::string reason;
};

bool is_evaluation_interval(int interval, int evaluation_interval, int delay_evaluation);

// The running trials to end now, each judged at its latest interval.
std::vector<Termination> trials_to_end(const Policy& policy, Goal goal, const std::string& metric,
                                       const std::vector<TrialReports>& trials);

// The better of two values for the goal (NaN loses to any number).
bool better(Goal goal, double a, double b);
// The best of the first `count` values; NaN when there is none.
double best_of(Goal goal, const std::vector<double>& values, std::size_t count);

}  // namespace amlrun::sweep
