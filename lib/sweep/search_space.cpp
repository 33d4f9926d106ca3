#include "lib/sweep/search_space.hpp"

#include <algorithm>

#include <fmt/format.h>
#include <cmath>
#include <limits>

namespace amlrun::sweep {

Value Value::of_integer(std::int64_t v) {
  Value value;
  value.kind = Kind::integer;
  value.integer = v;
  return value;
}

Value Value::of_real(double v) {
  Value value;
  value.kind = Kind::real;
  value.real = v;
  return value;
}

Value Value::of_text(std::string v) {
  Value value;
  value.kind = Kind::text;
  value.text = std::move(v);
  return value;
}

std::string Value::str() const {
  switch (kind) {
    case Kind::integer:
      return std::to_string(integer);
    case Kind::real:
      // The shortest text that reads back as the same double.
      return fmt::format("{}", real);
    case Kind::text:
      return text;
  }
  return text;
}

std::optional<double> Value::number() const {
  switch (kind) {
    case Kind::integer:
      return static_cast<double>(integer);
    case Kind::real:
      return real;
    case Kind::text:
      return std::nullopt;
  }
  return std::nullopt;
}

bool Value::operator==(const Value& other) const {
  return kind == other.kind && integer == other.integer && text == other.text &&
         (real == other.real || (std::isnan(real) && std::isnan(other.real)));
}

std::string type_name(const Distribution& distribution) {
  static const char* const names[] = {"choice",   "randint",     "uniform", "loguniform",
                                      "quniform", "qloguniform", "normal",  "lognormal",
                                      "qnormal",  "qlognormal"};
  return names[distribution.index()];
}

namespace {

// Both bounds closed: u is in [0, 1) and round-off must not give the
// option past the last.
std::size_t index_at(double u, std::size_t count) {
  auto index = static_cast<std::size_t>(u * static_cast<double>(count));
  return index < count ? index : count - 1;
}

// q-rounded values are integers when q is one (a batch size of 64, not
// 64.0, which Python's int() would refuse).
Value quantised(double x, double q) {
  const double rounded = std::round(x / q) * q;
  if (q == std::floor(q) && std::abs(rounded) < 9e15) {
    return Value::of_integer(static_cast<std::int64_t>(rounded));
  }
  return Value::of_real(rounded);
}

// Keeps u inside (0, 1) for the quantile: a low-discrepancy point may be 0.
double open_unit(double u) {
  constexpr double k_edge = 1.0 / 9007199254740992.0;  // 2^-53
  return std::min(std::max(u, k_edge), 1.0 - k_edge);
}

struct Walker {
  const std::vector<double>& point;
  std::size_t next = 0;
  Assignment out;

  double take() { return next < point.size() ? point[next++] : 0.0; }

  void space(const SearchSpace& s, const std::string& prefix, bool record) {
    for (const Parameter& parameter : s.parameters) {
      distribution(parameter.distribution, prefix + parameter.name, record);
    }
  }

  // Every distribution takes its coordinate, recorded or not, so the layout
  // does not depend on the options taken.
  void distribution(const Distribution& d, const std::string& name, bool record) {
    const double u = take();
    std::optional<Value> value;
    if (const auto* choice = std::get_if<Choice>(&d)) {
      const std::size_t chosen = index_at(u, choice->options.size());
      for (std::size_t i = 0; i < choice->options.size(); ++i) {
        const ChoiceOption& option = choice->options[i];
        const bool taken = record && i == chosen;
        if (option.space) {
          space(*option.space, name + ".", taken);
        } else if (taken) {
          value = option.value;
        }
      }
    } else if (const auto* r = std::get_if<RandInt>(&d)) {
      value = Value::of_integer(
          static_cast<std::int64_t>(index_at(u, static_cast<std::size_t>(r->upper))));
    } else if (const auto* uniform = std::get_if<Uniform>(&d)) {
      value = Value::of_real(uniform->min_value + u * (uniform->max_value - uniform->min_value));
    } else if (const auto* log_uniform = std::get_if<LogUniform>(&d)) {
      value = Value::of_real(
          std::exp(log_uniform->min_value + u * (log_uniform->max_value - log_uniform->min_value)));
    } else if (const auto* q_uniform = std::get_if<QUniform>(&d)) {
      value = quantised(q_uniform->min_value + u * (q_uniform->max_value - q_uniform->min_value),
                        q_uniform->q);
    } else if (const auto* q_log = std::get_if<QLogUniform>(&d)) {
      value = quantised(std::exp(q_log->min_value + u * (q_log->max_value - q_log->min_value)),
                        q_log->q);
    } else if (const auto* normal = std::get_if<Normal>(&d)) {
      value = Value::of_real(normal->mu + normal->sigma * normal_quantile(open_unit(u)));
    } else if (const auto* log_normal = std::get_if<LogNormal>(&d)) {
      value = Value::of_real(
          std::exp(log_normal->mu + log_normal->sigma * normal_quantile(open_unit(u))));
    } else if (const auto* q_normal = std::get_if<QNormal>(&d)) {
      value =
          quantised(q_normal->mu + q_normal->sigma * normal_quantile(open_unit(u)), q_normal->q);
    } else if (const auto* q_log_normal = std::get_if<QLogNormal>(&d)) {
      value = quantised(
          std::exp(q_log_normal->mu + q_log_normal->sigma * normal_quantile(open_unit(u))),
          q_log_normal->q);
    }
    if (record && value) {
      out.emplace_back(name, *value);
    }
  }
};

std::size_t count_dimensions(const SearchSpace& space);

std::size_t count_dimensions(const Distribution& d) {
  std::size_t count = 1;
  if (const auto* choice = std::get_if<Choice>(&d)) {
    for (const ChoiceOption& option : choice->options) {
      if (option.space) {
        count += count_dimensions(*option.space);
      }
    }
  }
  return count;
}

std::size_t count_dimensions(const SearchSpace& space) {
  std::size_t count = 0;
  for (const Parameter& parameter : space.parameters) {
    count += count_dimensions(parameter.distribution);
  }
  return count;
}

void collect_options(const SearchSpace& space, std::vector<std::size_t>& out) {
  for (const Parameter& parameter : space.parameters) {
    const auto* choice = std::get_if<Choice>(&parameter.distribution);
    out.push_back(choice != nullptr ? choice->options.size() : 0);
    if (choice != nullptr) {
      for (const ChoiceOption& option : choice->options) {
        if (option.space) collect_options(*option.space, out);
      }
    }
  }
}

void collect_names(const SearchSpace& space, const std::string& prefix,
                   std::vector<std::string>& out) {
  for (const Parameter& parameter : space.parameters) {
    const std::string name = prefix + parameter.name;
    const auto* choice = std::get_if<Choice>(&parameter.distribution);
    bool nested = false;
    if (choice != nullptr) {
      for (const ChoiceOption& option : choice->options) {
        if (!option.space) continue;
        nested = true;
        collect_names(*option.space, name + ".", out);
      }
    }
    // A choice mixing plain values and maps has a value of its own too.
    const bool plain_value =
        choice == nullptr || std::any_of(choice->options.begin(), choice->options.end(),
                                         [](const ChoiceOption& o) { return !o.space; });
    if ((!nested || plain_value) && std::find(out.begin(), out.end(), name) == out.end()) {
      out.push_back(name);
    }
  }
}

}  // namespace

std::vector<std::string> parameter_names(const SearchSpace& space) {
  std::vector<std::string> out;
  collect_names(space, "", out);
  return out;
}

std::string environment_variable(const std::string& name) {
  std::string variable = "AZUREML_SWEEP_" + name;
  std::replace(variable.begin(), variable.end(), '.', '_');
  return variable;
}

std::vector<std::size_t> dimension_options(const SearchSpace& space) {
  std::vector<std::size_t> out;
  collect_options(space, out);
  return out;
}

std::size_t dimensions(const SearchSpace& space) {
  return count_dimensions(space);
}

Assignment assignment_at(const SearchSpace& space, const std::vector<double>& point) {
  Walker walker{point, 0, {}};
  walker.space(space, "", true);
  return std::move(walker.out);
}

double normal_quantile(double u) {
  // Bisection on the distribution function, 0.5·erfc(-x/√2): exact to the
  // last bits in ~70 halvings, and samplers call it a few times per trial.
  double low = -40;
  double high = 40;
  for (int i = 0; i < 200 && high - low > 1e-15 * std::max(1.0, std::abs(low)); ++i) {
    const double mid = 0.5 * (low + high);
    if (0.5 * std::erfc(-mid / std::sqrt(2.0)) < u) {
      low = mid;
    } else {
      high = mid;
    }
  }
  return 0.5 * (low + high);
}

}  // namespace amlrun::sweep
