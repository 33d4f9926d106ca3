#include "lib/compute/compute_target.hpp"

#include <fmt/format.h>

#include "lib/compute/local_target.hpp"
#include "lib/util/error.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::compute {

std::unique_ptr<ComputeTarget> make_target(const workspace::Workspace& workspace,
                                           const std::string& name) {
  if (name == "local") return std::make_unique<LocalTarget>(workspace);
  std::vector<std::string> known = {"local"};
  for (const auto& target : workspace.config().compute) known.push_back(target.name);
  if (const auto* target = workspace.config().find_target(name)) {
    throw util::InputError(fmt::format("compute target '{}' has type {}, which this amlrun cannot "
                                       "run yet",
                                       name, target->type));
  }
  throw util::InputError(fmt::format("no compute target '{}' in {} (known: {}){}", name,
                                     workspace.config_path().string(), util::join(known, ", "),
                                     util::did_you_mean_suffix(name, known)));
}

}  // namespace amlrun::compute
