#pragma once
// The confusion matrix `amlrun-worker evaluate` prints. No LibTorch here, so
// its layout is unit-tested without a model.
#include <cstdint>
#include <string>
#include <vector>

namespace amlrun::train {

class ConfusionMatrix {
 public:
  explicit ConfusionMatrix(std::vector<std::string> classes);

  void add(std::size_t true_class, std::size_t predicted_class);
  std::int64_t count(std::size_t true_class, std::size_t predicted_class) const;
  std::int64_t total() const;
  std::int64_t correct() const;

  // The printed table: a title, a header of predicted-class numbers, one row
  // per true class ("number name counts..."). Class names are folder names,
  // which may hold any byte but '/': control characters are shown escaped
  // (util::escape_control), so a name never splits a row or sends the
  // terminal a command.
  std::vector<std::string> lines() const;

 private:
  std::vector<std::string> m_classes;
  std::vector<std::int64_t> m_counts;  // row-major: true class, predicted class
};

}  // namespace amlrun::train
