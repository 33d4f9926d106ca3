#pragma once
// --set key.path=value: overrides applied to the parsed YAML tree before the
// dialect reads it, so an override is validated exactly like the file.
#include <string>

#include "lib/spec/diagnostics.hpp"
#include "lib/spec/yaml_tree.hpp"

namespace amlrun::spec {

// The value is taken as written (a plain scalar, so numbers and booleans
// still fill such fields), except one whole quoted string or one whole flow
// list or map, which is read as YAML; an empty value is null.
// Path segments are map keys; a numeric segment indexes a list. Nodes on the
// path are copied before they change, since aliases share nodes.
void apply_override(NodePtr& root, const std::string& assignment, Diagnostics& diagnostics);

}  // namespace amlrun::spec
