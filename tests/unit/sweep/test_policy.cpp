#include <catch2/catch.hpp>

#include <cmath>

#include "lib/sweep/policy.hpp"

using namespace amlrun::sweep;

namespace {
TrialReports running(std::string id, std::vector<double> values) {
  return {std::move(id), std::move(values), true};
}
TrialReports ended(std::string id, std::vector<double> values) {
  return {std::move(id), std::move(values), false};
}
std::vector<std::string> reasons(const std::vector<Termination>& ends) {
  std::vector<std::string> out;
  for (const Termination& end : ends) {
    out.push_back(end.trial + "@" + std::to_string(end.interval) + ": " + end.reason);
  }
  return out;
}
}  // namespace

TEST_CASE("policies judge at delay + n × interval", "[policy]") {
  CHECK(is_evaluation_interval(1, 1, 0));
  CHECK_FALSE(is_evaluation_interval(0, 1, 0));
  CHECK_FALSE(is_evaluation_interval(2, 1, 2));
  CHECK(is_evaluation_interval(3, 1, 2));
  CHECK(is_evaluation_interval(2, 2, 0));
  CHECK_FALSE(is_evaluation_interval(3, 2, 0));
  CHECK(is_evaluation_interval(5, 2, 1));
  CHECK_FALSE(is_evaluation_interval(4, 2, 1));
}

TEST_CASE("bandit with a slack factor, minimizing", "[policy]") {
  BanditPolicy bandit;
  bandit.slack_factor = 0.2;
  // At interval 2 the best trial is B (0.5): the limit is 0.5 × 1.2 = 0.6.
  // At interval 1 C's 0.7 is compared with B's first report, 0.5.
  std::vector<TrialReports> trials = {running("A", {1.0, 0.8}), running("B", {0.5, 0.6}),
                                      running("C", {0.7})};
  CHECK(reasons(trials_to_end(bandit, Goal::minimize, "val_loss", trials)) ==
        std::vector<std::string>{
            "A@2: bandit: best val_loss 0.8 at interval 2 is above 0.6 (the best trial's 0.5 × (1 "
            "+ slack_factor 0.2))",
            "C@1: bandit: best val_loss 0.7 at interval 1 is above 0.6 (the best trial's 0.5 × (1 "
            "+ slack_factor 0.2))"});
  // A trial that is no longer running is never ended; a delay postpones.
  trials[0].running = false;
  bandit.delay_evaluation = 1;
  CHECK(reasons(trials_to_end(bandit, Goal::minimize, "val_loss", trials)).empty());
}

TEST_CASE("bandit with a slack amount, maximizing", "[policy]") {
  BanditPolicy bandit;
  bandit.slack_amount = 0.1;
  std::vector<TrialReports> trials = {running("A", {0.6, 0.7}), running("B", {0.9}),
                                      running("C", {0.75}), running("D", {0.85})};
  CHECK(reasons(trials_to_end(bandit, Goal::maximize, "acc", trials)) ==
        std::vector<std::string>{"C@1: bandit: best acc 0.75 at interval 1 is below 0.8 (the best "
                                 "trial's 0.9 - slack_amount 0.1)"});
  // The same numbers minimized: A's and C's, then D's, bests are far below
  // B... and B is the one above the best (0.6) + 0.1.
  CHECK(reasons(trials_to_end(bandit, Goal::minimize, "loss", trials)) ==
        std::vector<std::string>{"B@1: bandit: best loss 0.9 at interval 1 is above 0.7 (the best "
                                 "trial's 0.6 + slack_amount 0.1)",
                                 "C@1: bandit: best loss 0.75 at interval 1 is above 0.7 (the best "
                                 "trial's 0.6 + slack_amount 0.1)",
                                 "D@1: bandit: best loss 0.85 at interval 1 is above 0.7 (the best "
                                 "trial's 0.6 + slack_amount 0.1)"});
}

TEST_CASE("bandit with a slack factor, maximizing, divides", "[policy]") {
  BanditPolicy bandit;
  bandit.slack_factor = 0.25;
  // 0.9 / 1.25 = 0.72: 0.7 is below it, 0.75 is not.
  std::vector<TrialReports> trials = {ended("A", {0.9}), running("B", {0.7}), running("C", {0.75})};
  CHECK(reasons(trials_to_end(bandit, Goal::maximize, "acc", trials)) ==
        std::vector<std::string>{"B@1: bandit: best acc 0.7 at interval 1 is below 0.72 (the best "
                                 "trial's 0.9 / (1 + slack_factor 0.25))"});
}

TEST_CASE("median stopping compares a trial's best with the median of running averages",
          "[policy]") {
  // Averages at interval 2: A 0.95, B 0.45, C 0.65, D 0.4 → median (0.45 + 0.65) / 2 = 0.55.
  std::vector<TrialReports> trials = {running("A", {1.0, 0.9}), ended("B", {0.5, 0.4}),
                                      ended("C", {0.5, 0.8}), running("D", {0.3, 0.5})};
  CHECK(reasons(trials_to_end(MedianStoppingPolicy{}, Goal::minimize, "loss", trials)) ==
        std::vector<std::string>{"A@2: median_stopping: best loss 0.9 at interval 2 is worse than "
                                 "the median 0.55 of the running averages of 4 trials"});
  // Maximizing the same numbers: A's best 1.0 beats the median; D's 0.5 does not.
  CHECK(reasons(trials_to_end(MedianStoppingPolicy{}, Goal::maximize, "acc", trials)) ==
        std::vector<std::string>{"D@2: median_stopping: best acc 0.5 at interval 2 is worse than "
                                 "the median 0.55 of the running averages of 4 trials"});
}

TEST_CASE("truncation selection ends the worst share at equal intervals", "[policy]") {
  TruncationSelectionPolicy truncation;
  truncation.truncation_percentage = 50;
  std::vector<TrialReports> trials = {running("A", {0.1}), running("B", {0.9}), running("C", {0.5}),
                                      running("D", {0.7}), running("E", {0.2, 0.95})};
  // At interval 1 five trials: 50% of 5 rounded down is 2 (A 0.1, E 0.2);
  // E has moved on to interval 2, where it is alone.
  CHECK(reasons(trials_to_end(truncation, Goal::maximize, "acc", trials)) ==
        std::vector<std::string>{"A@1: truncation_selection: best acc 0.1 at interval 1 is among "
                                 "the worst 50% (2 of 5 trials)"});
  CHECK(reasons(trials_to_end(truncation, Goal::minimize, "loss", trials)) ==
        std::vector<std::string>{"B@1: truncation_selection: best loss 0.9 at interval 1 is among "
                                 "the worst 50% (2 of 5 trials)",
                                 "D@1: truncation_selection: best loss 0.7 at interval 1 is among "
                                 "the worst 50% (2 of 5 trials)"});
}

TEST_CASE("NaN is the worst value", "[policy]") {
  const double nan = std::nan("");
  CHECK(better(Goal::minimize, 5.0, nan));
  CHECK_FALSE(better(Goal::maximize, nan, -5.0));
  CHECK(best_of(Goal::minimize, {nan, 3.0, 2.0}, 2) == 3.0);
  CHECK(std::isnan(best_of(Goal::minimize, {nan}, 1)));
}
