#pragma once
// A sweep's search space (the `search_space` of Azure ML's sweep job): each
// parameter and its distribution, typed; the values a trial gets; and how a
// point of the unit cube becomes a trial's values, which every sampler
// (random, sobol, grid, bayesian) shares.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

namespace amlrun::sweep {

// A parameter's value in one trial. Integers stay integers, so a batch size
// reaches the command as "64", which int() and float() both read.
struct Value {
  enum class Kind { integer, real, text };
  Kind kind = Kind::integer;
  std::int64_t integer = 0;
  double real = 0;
  std::string text;

  static Value of_integer(std::int64_t v);
  static Value of_real(double v);
  static Value of_text(std::string v);
  // As substituted for ${{search_space.NAME}}: "64", "0.001", "1e-05", "adam".
  std::string str() const;
  // integer or real as a number; text has none.
  std::optional<double> number() const;
  bool operator==(const Value& other) const;
};

struct SearchSpace;

// One option of a `choice`: a value, or a map whose entries are values or
// distributions of their own (a nested sub-space).
struct ChoiceOption {
  std::optional<Value> value;
  std::shared_ptr<const SearchSpace> space;
};

struct Choice {
  std::vector<ChoiceOption> options;
};
struct RandInt {
  std::int64_t upper = 1;  // values 0 .. upper-1
};
// min + u(max - min)
struct Uniform {
  double min_value = 0;
  double max_value = 1;
};
// exp(uniform(min, max)): the bounds are exponents (Azure's definition).
struct LogUniform {
  double min_value = 0;
  double max_value = 1;
};
// round(x / q) × q of the distribution without q.
struct QUniform {
  double min_value = 0;
  double max_value = 1;
  double q = 1;
};
struct QLogUniform {
  double min_value = 0;
  double max_value = 1;
  double q = 1;
};
struct Normal {
  double mu = 0;
  double sigma = 1;
};
// exp(normal(mu, sigma))
struct LogNormal {
  double mu = 0;
  double sigma = 1;
};
struct QNormal {
  double mu = 0;
  double sigma = 1;
  double q = 1;
};
struct QLogNormal {
  double mu = 0;
  double sigma = 1;
  double q = 1;
};

using Distribution = std::variant<Choice, RandInt, Uniform, LogUniform, QUniform, QLogUniform,
                                  Normal, LogNormal, QNormal, QLogNormal>;

// The `type:` of each distribution, as the job file spells it.
std::string type_name(const Distribution& distribution);

struct Parameter {
  std::string name;
  Distribution distribution;
};

struct SearchSpace {
  std::vector<Parameter> parameters;  // file order
};

// A trial's parameters, flattened in file order: an entry of a nested
// sub-space is named "outer.inner".
using Assignment = std::vector<std::pair<std::string, Value>>;

// How many coordinates of the unit cube a space takes: one per distribution
// anywhere in it, the ones inside every option of a choice included, so each
// distribution keeps its own coordinate whichever option a trial takes.
std::size_t dimensions(const SearchSpace& space);

// What each coordinate is, in dimensions() order: the option count of a
// choice (its coordinate picks one of that many equal bins), or 0 for a
// continuous distribution.
std::vector<std::size_t> dimension_options(const SearchSpace& space);

// The trial at a point of [0, 1)^dimensions(space).
Assignment assignment_at(const SearchSpace& space, const std::vector<double>& point);

// Every name a trial's parameters can have, in file order: each parameter
// of the space and, for a choice of maps, "outer.inner" for every key of
// every option (a trial that takes another option lacks it).
std::vector<std::string> parameter_names(const SearchSpace& space);

// The environment variable each trial gets for a parameter, as Azure ML
// sets it: AZUREML_SWEEP_<name>, with '.' of a nested name written '_'.
std::string environment_variable(const std::string& name);

// The standard normal's inverse distribution function, for u in (0, 1).
double normal_quantile(double u);

}  // namespace amlrun::sweep
