#pragma once
// Syntax checks for package specifications, so nothing a job lists can add
// lines or options to the files an environment is built from (a newline in a
// pip requirement would add a line such as --index-url to requirements.txt).
#include <optional>
#include <string>
#include <string_view>

namespace amlrun::spec {

// A PEP 508 requirement ("torch==1.13.1", "requests[security]>=2; python_version<'3.12'",
// "pkg @ https://host/pkg.whl"). Returns the normalised form (the name
// lower-cased with runs of -_. folded to '-', as PEP 503 compares names;
// spaces around operators dropped), or nullopt with `error` set.
std::optional<std::string> normalise_pip_requirement(std::string_view text, std::string& error);

// A conda match spec ("numpy", "numpy=1.24", "conda-forge::numpy>=1.24,<2",
// "numpy 1.24.* py311_0"). Returns it with runs of spaces folded, or nullopt
// with `error` set.
std::optional<std::string> normalise_conda_spec(std::string_view text, std::string& error);

}  // namespace amlrun::spec
