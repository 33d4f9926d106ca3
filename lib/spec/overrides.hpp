#pragma once
// --set key.path=value: overrides applied to the parsed YAML tree before the
// dialect reads it, so an override is validated exactly like the file.
#include <string>

#include "lib/spec/diagnostics.hpp"
#include "lib/spec/yaml_tree.hpp"

namespace amlrun::spec {

// The value is parsed as YAML (numbers stay numbers, "[a, b]" is a list).
// Path segments are map keys; a numeric segment indexes a list. Nodes on the
// path are copied before they change, since aliases share nodes.
void apply_override(NodePtr& root, const std::string& assignment, Diagnostics& diagnostics);

}  // namespace amlrun::spec
