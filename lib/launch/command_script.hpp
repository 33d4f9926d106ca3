#pragma once
// Turns a command job's `command` into the bash script that runs. Values of
// ${{inputs.x}}, ${{outputs.y}} and a sweep trial's ${{search_space.z}}
// (AZUREML_SWEEP_z) are never pasted into the script: each
// placeholder becomes a reference to an environment variable holding the
// value, quoted for the place it stands in, so the value reaches the program
// as one word, verbatim (spaces, quotes, $(), backticks, newlines).
#include <string>

namespace amlrun::launch {

std::string input_variable(const std::string& name);   // AMLRUN_INPUT_<name>
std::string output_variable(const std::string& name);  // AMLRUN_OUTPUT_<name>

// The quoting context is tracked through '...', "...", $'...', `...` and
// $(...); a placeholder outside quotes becomes "${VAR}", inside double quotes
// ${VAR}, inside single quotes '"${VAR}"' (close, insert, reopen).
std::string render_command_script(const std::string& command);

}  // namespace amlrun::launch
