#include "lib/train/confusion.hpp"

#include <fmt/format.h>
#include <algorithm>

#include "lib/util/strings.hpp"

namespace amlrun::train {

ConfusionMatrix::ConfusionMatrix(std::vector<std::string> classes)
    : m_classes(std::move(classes)), m_counts(m_classes.size() * m_classes.size(), 0) {}

void ConfusionMatrix::add(std::size_t true_class, std::size_t predicted_class) {
  m_counts[true_class * m_classes.size() + predicted_class] += 1;
}

std::int64_t ConfusionMatrix::count(std::size_t true_class, std::size_t predicted_class) const {
  return m_counts[true_class * m_classes.size() + predicted_class];
}

std::int64_t ConfusionMatrix::total() const {
  std::int64_t sum = 0;
  for (std::int64_t value : m_counts) {
    sum += value;
  }
  return sum;
}

std::int64_t ConfusionMatrix::correct() const {
  std::int64_t sum = 0;
  for (std::size_t c = 0; c < m_classes.size(); ++c) {
    sum += count(c, c);
  }
  return sum;
}

std::vector<std::string> ConfusionMatrix::lines() const {
  const std::size_t n = m_classes.size();
  std::vector<std::string> names;
  std::size_t name_width = 0;
  for (const std::string& name : m_classes) {
    names.push_back(util::escape_control(name));
    name_width = std::max(name_width, names.back().size());
  }
  const std::size_t number_width = std::to_string(n).size();
  const std::size_t cell = std::max(std::to_string(total()).size(), number_width) + 1;
  std::vector<std::string> out = {"confusion matrix (rows: true class, columns: predicted class)"};
  std::string header(name_width + number_width + 2, ' ');
  for (std::size_t q = 0; q < n; ++q) {
    header += fmt::format("{:>{}}", q, cell);
  }
  out.push_back(header);
  for (std::size_t t = 0; t < n; ++t) {
    std::string row = fmt::format("{:>{}} {:<{}} ", t, number_width, names[t], name_width);
    for (std::size_t q = 0; q < n; ++q) {
      row += fmt::format("{:>{}}", count(t, q), cell);
    }
    out.push_back(row);
  }
  return out;
}

}  // namespace amlrun::train
