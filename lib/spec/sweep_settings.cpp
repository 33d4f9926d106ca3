#include "lib/spec/sweep_settings.hpp"

#include <fmt/format.h>
#include <limits>
#include <type_traits>
#include <variant>

#include "lib/spec/yaml_tree.hpp"
#include "lib/sweep/sobol.hpp"
#include "lib/util/error.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::spec {

namespace {

constexpr double k_huge = std::numeric_limits<double>::max();
const std::vector<std::string> k_types = {"choice",   "randint",     "uniform", "loguniform",
                                          "quniform", "qloguniform", "normal",  "lognormal",
                                          "qnormal",  "qlognormal"};

// A parameter's name reaches the trial as ${{search_space.NAME}} and as
// AZUREML_SWEEP_NAME, so it must be a valid variable name.
bool is_parameter_name(const std::string& name) {
  if (name.empty() || !(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) {
    return false;
  }
  for (char c : name) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  }
  return true;
}

// An unquoted decimal number (not hex, inf or nan, which YAML writers do
// not mean as numbers here).
std::optional<double> plain_number(const Node& node) {
  if (!node.is_scalar() || node.quoted || node.value.empty() ||
      node.value.find_first_of("xXnNiI") != std::string::npos) {
    return std::nullopt;
  }
  char* end = nullptr;
  const double value = std::strtod(node.value.c_str(), &end);
  if (end != node.value.c_str() + node.value.size()) return std::nullopt;
  return value;
}

bool is_plain_integer(const std::string& text) {
  std::size_t i = (!text.empty() && (text[0] == '-' || text[0] == '+')) ? 1 : 0;
  if (i >= text.size()) return false;
  for (; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
  }
  return text.size() < 19;
}

class SearchSpaceReader {
 public:
  explicit SearchSpaceReader(Diagnostics& diagnostics) : m_diagnostics(diagnostics) {}

  // A map of NAME: {type: ..., ...}; `nested` inside a choice's option.
  std::optional<sweep::SearchSpace> space(const Node& node, const std::string& path, bool nested) {
    if (!node.is_map()) {
      m_diagnostics.error(node.mark, path,
                          "expected a map of parameters (NAME: {type: choice, values: [...]}), "
                          "got " +
                              node.describe());
      return std::nullopt;
    }
    sweep::SearchSpace out;
    bool ok = true;
    for (const auto& [key, value] : node.entries) {
      const std::string name = key->value;
      const std::string item_path = join_key_path(path, name);
      if (!is_parameter_name(name)) {
        m_diagnostics.error(key->mark, item_path,
                            fmt::format("{} is not a parameter name: use letters, digits and _ "
                                        "(it becomes ${{{{search_space.NAME}}}} and "
                                        "AZUREML_SWEEP_NAME)",
                                        util::printable(name)));
        ok = false;
        continue;
      }
      // Inside an option a plain value is fixed: a choice of one.
      if (nested && !value->is_map()) {
        if (auto fixed = literal(*value, item_path)) {
          out.parameters.push_back({name, sweep::Choice{{{*fixed, nullptr}}}});
        } else {
          ok = false;
        }
        continue;
      }
      if (auto distribution = parameter(value, item_path)) {
        out.parameters.push_back({name, std::move(*distribution)});
      } else {
        ok = false;
      }
    }
    if (!nested && ok && out.parameters.empty()) {
      m_diagnostics.error(node.mark, path, "no parameters: a sweep needs at least one");
      return std::nullopt;
    }
    return ok ? std::optional(std::move(out)) : std::nullopt;
  }

 private:
  std::optional<sweep::Value> literal(const Node& node, const std::string& path) {
    if (!node.is_scalar()) {
      m_diagnostics.error(node.mark, path, "expected a number or a string, got " + node.describe());
      return std::nullopt;
    }
    if (!node.quoted && is_plain_integer(node.value)) {
      return sweep::Value::of_integer(std::stoll(node.value));
    }
    if (auto number = plain_number(node)) {
      return sweep::Value::of_real(*number);
    }
    return sweep::Value::of_text(node.value);
  }

  std::optional<sweep::Distribution> parameter(const NodePtr& node, const std::string& path) {
    if (!node->is_map()) {
      m_diagnostics.error(node->mark, path,
                          "expected a distribution such as {type: choice, values: [...]} or "
                          "{type: uniform, min_value: 0, max_value: 1}, got " +
                              node->describe());
      return std::nullopt;
    }
    MapReader map(node, path, m_diagnostics);
    const std::size_t errors = m_diagnostics.error_count();
    auto type = map.choice("type", k_types);
    if (!type) {
      if (!map.has("type")) {
        m_diagnostics.error(
            node->mark, map.key_path("type"),
            "missing: give the distribution's type (" + util::join(k_types, ", ") + ")");
      }
      return std::nullopt;
    }
    std::optional<sweep::Distribution> out;
    if (*type == "choice") {
      out = choice(map);
    } else if (*type == "randint") {
      auto upper = map.integer("upper", 1, std::numeric_limits<std::int64_t>::max());
      require(map, "upper", upper.has_value());
      if (upper) out = sweep::RandInt{*upper};
    } else if (*type == "uniform" || *type == "loguniform" || *type == "quniform" ||
               *type == "qloguniform") {
      auto low = map.number("min_value", -k_huge, k_huge);
      auto high = map.number("max_value", -k_huge, k_huge);
      require(map, "min_value", low.has_value());
      require(map, "max_value", high.has_value());
      std::optional<double> q;
      if (type->front() == 'q') {
        q = positive(map, "q");
      }
      if (low && high && *low >= *high) {
        m_diagnostics.error(map.value_mark("max_value"), map.key_path("max_value"),
                            fmt::format("must be greater than min_value ({})", *low));
      } else if (low && high && (type->front() != 'q' || q)) {
        if (*type == "uniform") out = sweep::Uniform{*low, *high};
        if (*type == "loguniform") out = sweep::LogUniform{*low, *high};
        if (*type == "quniform") out = sweep::QUniform{*low, *high, *q};
        if (*type == "qloguniform") out = sweep::QLogUniform{*low, *high, *q};
      }
    } else {
      auto mu = map.number("mu", -k_huge, k_huge);
      require(map, "mu", mu.has_value());
      auto sigma = positive(map, "sigma");
      std::optional<double> q;
      if (type->front() == 'q') {
        q = positive(map, "q");
      }
      if (mu && sigma && (type->front() != 'q' || q)) {
        if (*type == "normal") out = sweep::Normal{*mu, *sigma};
        if (*type == "lognormal") out = sweep::LogNormal{*mu, *sigma};
        if (*type == "qnormal") out = sweep::QNormal{*mu, *sigma, *q};
        if (*type == "qlognormal") out = sweep::QLogNormal{*mu, *sigma, *q};
      }
    }
    map.finish();
    if (m_diagnostics.error_count() != errors) return std::nullopt;
    return out;
  }

  std::optional<sweep::Distribution> choice(MapReader& map) {
    NodePtr values = map.node("values");
    const std::string path = map.key_path("values");
    if (!values || values->is_null()) {
      m_diagnostics.error(map.mark(), path, "missing: give the list of values to choose from");
      return std::nullopt;
    }
    if (!values->is_sequence() || values->items.empty()) {
      m_diagnostics.error(
          values->mark, path,
          "expected a non-empty list of values, got " +
              (values->is_sequence() ? std::string("an empty list") : values->describe()));
      return std::nullopt;
    }
    sweep::Choice out;
    bool ok = true;
    for (std::size_t i = 0; i < values->items.size(); ++i) {
      const Node& item = *values->items[i];
      const std::string item_path = fmt::format("{}[{}]", path, i);
      if (item.is_map()) {
        auto nested = space(item, item_path, /*nested=*/true);
        if (nested) {
          out.options.push_back(
              {std::nullopt, std::make_shared<const sweep::SearchSpace>(std::move(*nested))});
        }
        ok = ok && nested.has_value();
      } else if (auto value = literal(item, item_path)) {
        out.options.push_back({*value, nullptr});
      } else {
        ok = false;
      }
    }
    return ok ? std::optional<sweep::Distribution>(std::move(out)) : std::nullopt;
  }

  std::optional<double> positive(MapReader& map, std::string_view key) {
    auto value = map.number(key, 0, k_huge);
    require(map, key, value.has_value());
    if (value && *value == 0) {
      m_diagnostics.error(map.value_mark(key), map.key_path(key), "must be greater than 0");
      return std::nullopt;
    }
    return value;
  }

  void require(MapReader& map, std::string_view key, bool present) {
    if (!present && !map.has(key)) {
      m_diagnostics.error(map.mark(), map.key_path(key), "missing: this distribution needs it");
    }
  }

  Diagnostics& m_diagnostics;
};

// Any distribution at any depth other than those `allowed`: its path and type.
void disallowed(const sweep::SearchSpace& space, const std::string& prefix,
                const std::vector<std::string>& allowed, bool allow_nested_distributions,
                std::vector<std::pair<std::string, std::string>>& out) {
  for (const sweep::Parameter& parameter : space.parameters) {
    const std::string name = prefix + parameter.name;
    const std::string type = sweep::type_name(parameter.distribution);
    const auto* choice = std::get_if<sweep::Choice>(&parameter.distribution);
    const bool fixed = choice != nullptr && choice->options.size() == 1 && !prefix.empty();
    if (std::find(allowed.begin(), allowed.end(), type) == allowed.end() ||
        (!prefix.empty() && !allow_nested_distributions && !fixed)) {
      out.emplace_back(name, type);
    }
    if (choice != nullptr) {
      for (const sweep::ChoiceOption& option : choice->options) {
        if (option.space) {
          disallowed(*option.space, name + ".", allowed, allow_nested_distributions, out);
        }
      }
    }
  }
}

}  // namespace

std::optional<SweepSettings> read_sweep_settings(MapReader& root, Diagnostics& diagnostics) {
  const std::size_t errors = diagnostics.error_count();
  SweepSettings out;

  NodePtr space_node = root.node("search_space");
  if (!space_node || space_node->is_null()) {
    diagnostics.error(root.mark(), "search_space",
                      "missing: a sweep needs the parameters to search (search_space: {lr: "
                      "{type: uniform, min_value: 0.001, max_value: 0.1}})");
  } else if (auto space =
                 SearchSpaceReader(diagnostics).space(*space_node, "search_space", false)) {
    out.search_space = std::move(*space);
  }

  // sampling_algorithm: a name, or {type, seed, rule}.
  const std::vector<std::string> algorithms = {"random", "grid", "bayesian"};
  NodePtr sampling = root.node("sampling_algorithm");
  std::optional<std::string> algorithm;
  Mark algorithm_mark = root.key_mark("sampling_algorithm");
  if (sampling && sampling->is_map()) {
    MapReader map(sampling, "sampling_algorithm", diagnostics);
    algorithm = map.choice("type", algorithms);
    if (algorithm == "random") {
      if (auto seed = map.integer("seed", 0, std::numeric_limits<std::int64_t>::max())) {
        out.seed = static_cast<std::uint64_t>(*seed);
      }
      if (map.choice("rule", {"random", "sobol"}) == "sobol") out.rule = sweep::RandomRule::sobol;
    } else {
      map.reject("seed", "only random sampling takes it");
      map.reject("rule", "only random sampling takes it");
    }
    if (!map.has("type")) {
      diagnostics.error(sampling->mark, "sampling_algorithm.type",
                        "missing: give random, grid or bayesian");
    }
    map.finish();
  } else {
    algorithm = root.choice("sampling_algorithm", algorithms);
    if (!sampling || sampling->is_null()) {
      diagnostics.error(root.mark(), "sampling_algorithm",
                        "missing: give random, grid or bayesian");
    }
  }
  if (algorithm == "grid") out.algorithm = SamplingAlgorithm::grid;
  if (algorithm == "bayesian") out.algorithm = SamplingAlgorithm::bayesian;

  MapReader objective(root.node("objective"), "objective", diagnostics);
  if (!objective.present()) {
    diagnostics.error(root.mark(), "objective",
                      "missing: say what to optimise (objective: {goal: minimize, "
                      "primary_metric: val_loss})");
  } else {
    auto goal = objective.choice("goal", {"minimize", "maximize"});
    if (goal == "maximize") out.goal = sweep::Goal::maximize;
    out.primary_metric = objective.string("primary_metric").value_or("");
    if (!objective.has("goal")) {
      diagnostics.error(objective.mark(), "objective.goal", "missing: give minimize or maximize");
    }
    if (!objective.has("primary_metric")) {
      diagnostics.error(objective.mark(), "objective.primary_metric",
                        "missing: give the name of the metric the trials log");
    }
    objective.finish();
  }

  MapReader policy(root.node("early_termination"), "early_termination", diagnostics);
  if (policy.present()) {
    auto type = policy.choice("type", {"bandit", "median_stopping", "truncation_selection"});
    const auto interval = policy.integer("evaluation_interval", 1, 1'000'000).value_or(1);
    const auto delay = policy.integer("delay_evaluation", 0, 1'000'000).value_or(0);
    if (type == "bandit") {
      sweep::BanditPolicy bandit;
      bandit.slack_factor = policy.number("slack_factor", 0, k_huge);
      bandit.slack_amount = policy.number("slack_amount", 0, k_huge);
      if (policy.has("slack_factor") == policy.has("slack_amount")) {
        diagnostics.error(policy.mark(), "early_termination",
                          "a bandit policy takes exactly one of slack_factor and slack_amount");
      }
      bandit.evaluation_interval = static_cast<int>(interval);
      bandit.delay_evaluation = static_cast<int>(delay);
      out.early_termination = bandit;
    } else if (type == "median_stopping") {
      out.early_termination =
          sweep::MedianStoppingPolicy{static_cast<int>(interval), static_cast<int>(delay)};
    } else if (type == "truncation_selection") {
      sweep::TruncationSelectionPolicy truncation;
      auto percentage = policy.integer("truncation_percentage", 1, 99);
      if (!policy.has("truncation_percentage")) {
        diagnostics.error(policy.mark(), "early_termination.truncation_percentage",
                          "missing: the share of trials to end at each evaluation (1-99)");
      }
      truncation.truncation_percentage = static_cast<int>(percentage.value_or(0));
      truncation.evaluation_interval = static_cast<int>(interval);
      truncation.delay_evaluation = static_cast<int>(delay);
      out.early_termination = truncation;
    }
    if (!policy.has("type")) {
      diagnostics.error(policy.mark(), "early_termination.type",
                        "missing: give bandit, median_stopping or truncation_selection");
    }
    // Each policy's own keys; another policy's key is an error, not ignored.
    if (type != "bandit") {
      policy.reject("slack_factor", "only a bandit policy takes it");
      policy.reject("slack_amount", "only a bandit policy takes it");
    }
    if (type != "truncation_selection") {
      policy.reject("truncation_percentage", "only a truncation_selection policy takes it");
    }
    policy.finish();
  }

  MapReader limits(root.node("limits"), "limits", diagnostics);
  if (auto total = limits.integer("max_total_trials", 1, 1'000'000)) {
    out.limits.max_total_trials = *total;
  }
  out.limits.max_concurrent_trials = limits.integer("max_concurrent_trials", 1, 100'000);
  out.limits.timeout = limits.number("timeout", 0, k_huge);
  out.limits.trial_timeout = limits.number("trial_timeout", 0, k_huge);
  limits.finish();

  // Combinations that cannot work, named where the user must change them.
  if (!out.search_space.parameters.empty()) {
    std::vector<std::pair<std::string, std::string>> bad;
    if (out.algorithm == SamplingAlgorithm::grid) {
      disallowed(out.search_space, "", {"choice"}, false, bad);
      for (const auto& [name, type] : bad) {
        diagnostics.error(algorithm_mark, "sampling_algorithm",
                          fmt::format("grid sampling takes only choice parameters of fixed "
                                      "values; search_space.{} is {} (list its values in a "
                                      "choice, or use random sampling)",
                                      name, type));
      }
    } else if (out.algorithm == SamplingAlgorithm::bayesian) {
      disallowed(out.search_space, "", {"choice", "uniform", "quniform"}, true, bad);
      for (const auto& [name, type] : bad) {
        diagnostics.error(algorithm_mark, "sampling_algorithm",
                          fmt::format("bayesian sampling takes choice, uniform and quniform "
                                      "parameters; search_space.{} is {} (use random sampling)",
                                      name, type));
      }
    } else if (out.rule == sweep::RandomRule::sobol &&
               sweep::dimensions(out.search_space) > sweep::k_sobol_max_dimensions) {
      diagnostics.error(
          algorithm_mark, "sampling_algorithm.rule",
          fmt::format("sobol sampling takes at most {} distributions; the search "
                      "space has {} (use rule: random)",
                      sweep::k_sobol_max_dimensions, sweep::dimensions(out.search_space)));
    }
  }
  if (out.algorithm == SamplingAlgorithm::bayesian && policy.present()) {
    diagnostics.error(policy.mark(), "early_termination",
                      "bayesian sampling does not take an early termination policy (Azure ML "
                      "refuses it too): remove early_termination, or use random sampling");
  }
  if (diagnostics.error_count() != errors) return std::nullopt;
  return out;
}

}  // namespace amlrun::spec

namespace amlrun::spec {

namespace {

using nlohmann::ordered_json;

ordered_json space_json(const sweep::SearchSpace& space, bool nested);

ordered_json distribution_json(const sweep::Distribution& d) {
  ordered_json j;
  j["type"] = sweep::type_name(d);
  std::visit(
      [&](const auto& x) {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, sweep::Choice>) {
          ordered_json values = ordered_json::array();
          for (const auto& option : x.options) {
            values.push_back(option.space ? space_json(*option.space, true)
                                          : to_json(*option.value));
          }
          j["values"] = values;
        } else if constexpr (std::is_same_v<T, sweep::RandInt>) {
          j["upper"] = x.upper;
        } else if constexpr (std::is_same_v<T, sweep::Uniform> ||
                             std::is_same_v<T, sweep::LogUniform>) {
          j["min_value"] = x.min_value;
          j["max_value"] = x.max_value;
        } else if constexpr (std::is_same_v<T, sweep::QUniform> ||
                             std::is_same_v<T, sweep::QLogUniform>) {
          j["min_value"] = x.min_value;
          j["max_value"] = x.max_value;
          j["q"] = x.q;
        } else if constexpr (std::is_same_v<T, sweep::Normal> ||
                             std::is_same_v<T, sweep::LogNormal>) {
          j["mu"] = x.mu;
          j["sigma"] = x.sigma;
        } else {
          j["mu"] = x.mu;
          j["sigma"] = x.sigma;
          j["q"] = x.q;
        }
      },
      d);
  return j;
}

ordered_json space_json(const sweep::SearchSpace& space, bool nested) {
  ordered_json j = ordered_json::object();
  for (const auto& parameter : space.parameters) {
    const auto* choice = std::get_if<sweep::Choice>(&parameter.distribution);
    // Inside an option a fixed value is written as the value itself.
    if (nested && choice != nullptr && choice->options.size() == 1 && choice->options[0].value) {
      j[parameter.name] = to_json(*choice->options[0].value);
    } else {
      j[parameter.name] = distribution_json(parameter.distribution);
    }
  }
  return j;
}

}  // namespace

ordered_json to_json(const sweep::Value& value) {
  switch (value.kind) {
    case sweep::Value::Kind::integer:
      return value.integer;
    case sweep::Value::Kind::real:
      return value.real;
    case sweep::Value::Kind::text:
      break;
  }
  return value.text;
}

ordered_json to_json(const SweepSettings& settings) {
  ordered_json j;
  j["search_space"] = space_json(settings.search_space, false);
  ordered_json sampling;
  switch (settings.algorithm) {
    case SamplingAlgorithm::random:
      sampling["type"] = "random";
      if (settings.seed) sampling["seed"] = *settings.seed;
      sampling["rule"] = settings.rule == sweep::RandomRule::sobol ? "sobol" : "random";
      break;
    case SamplingAlgorithm::grid:
      sampling["type"] = "grid";
      break;
    case SamplingAlgorithm::bayesian:
      sampling["type"] = "bayesian";
      break;
  }
  j["sampling_algorithm"] = sampling;
  j["objective"] = {{"goal", settings.goal == sweep::Goal::maximize ? "maximize" : "minimize"},
                    {"primary_metric", settings.primary_metric}};
  if (settings.early_termination) {
    ordered_json policy;
    std::visit(
        [&](const auto& p) {
          using T = std::decay_t<decltype(p)>;
          if constexpr (std::is_same_v<T, sweep::BanditPolicy>) {
            policy["type"] = "bandit";
            if (p.slack_factor) policy["slack_factor"] = *p.slack_factor;
            if (p.slack_amount) policy["slack_amount"] = *p.slack_amount;
          } else if constexpr (std::is_same_v<T, sweep::MedianStoppingPolicy>) {
            policy["type"] = "median_stopping";
          } else {
            policy["type"] = "truncation_selection";
            policy["truncation_percentage"] = p.truncation_percentage;
          }
          policy["evaluation_interval"] = p.evaluation_interval;
          policy["delay_evaluation"] = p.delay_evaluation;
        },
        *settings.early_termination);
    j["early_termination"] = policy;
  }
  ordered_json limits;
  limits["max_total_trials"] = settings.limits.max_total_trials;
  if (settings.limits.max_concurrent_trials) {
    limits["max_concurrent_trials"] = *settings.limits.max_concurrent_trials;
  }
  if (settings.limits.timeout) limits["timeout"] = *settings.limits.timeout;
  if (settings.limits.trial_timeout) limits["trial_timeout"] = *settings.limits.trial_timeout;
  j["limits"] = limits;
  return j;
}

SweepSettings sweep_settings_from_json(const nlohmann::ordered_json& json,
                                       const std::string& origin) {
  // The JSON is Azure's shape, and JSON is YAML: it goes back through the
  // reader that checked it, so the two can never disagree.
  auto source = std::make_shared<Source>();
  source->name = origin;
  source->text = json.dump();
  Diagnostics diagnostics;
  diagnostics.set_primary_source(source);
  NodePtr root = parse_yaml(source, diagnostics);
  std::optional<SweepSettings> settings;
  if (root && root->is_map()) {
    MapReader reader(root, "", diagnostics);
    settings = read_sweep_settings(reader, diagnostics);
    reader.finish();
  }
  if (!settings || diagnostics.has_errors()) {
    std::string problem = diagnostics.errors_in_file_order().empty()
                              ? "not a map"
                              : format_diagnostic(diagnostics.errors_in_file_order().front());
    throw util::InfraError(
        fmt::format("the sweep settings in {} are damaged: {}", origin, problem));
  }
  return std::move(*settings);
}

}  // namespace amlrun::spec
