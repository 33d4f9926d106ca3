// The rendered command script must hand every input value to the program as
// one verbatim word, whatever quoting context the placeholder stands in.
// Checked with a real bash, not by reading the text.
#include <catch2/catch.hpp>

#include "lib/launch/command_script.hpp"
#include "lib/util/process.hpp"

using amlrun::launch::render_command_script;

namespace {

// Runs the rendered script with AMLRUN_INPUT_x=value; the script prints its
// arguments NUL-separated, so word boundaries are visible.
std::string run(const std::string& command, const std::string& value) {
  amlrun::util::SpawnOptions options;
  options.argv = {"/bin/bash", "-c", render_command_script(command)};
  auto environment = amlrun::util::current_environment();
  amlrun::util::set_env(environment, "AMLRUN_INPUT_x", value);
  amlrun::util::set_env(environment, "AMLRUN_OUTPUT_out", "/tmp/out dir");
  options.environment = environment;
  auto result = amlrun::util::run_capture(options);
  REQUIRE(result.exit_code == 0);
  return result.out;
}

const char* const k_print = "printf '%s\\0' ";

}  // namespace

TEST_CASE("placeholders become quoted variable references") {
  CHECK(render_command_script("python a.py --x ${{inputs.x}}") ==
        "python a.py --x \"${AMLRUN_INPUT_x}\"");
  CHECK(render_command_script("echo \"x=${{inputs.x}}\"") == "echo \"x=${AMLRUN_INPUT_x}\"");
  CHECK(render_command_script("echo 'x=${{inputs.x}}'") == "echo 'x='\"${AMLRUN_INPUT_x}\"''");
  CHECK(render_command_script("cp a ${{ outputs.out }}/a") == "cp a \"${AMLRUN_OUTPUT_out}\"/a");
  // A sweep trial's value is its AZUREML_SWEEP_ variable (Azure's name).
  CHECK(render_command_script("echo ${{search_space.lr}}") == "echo \"${AZUREML_SWEEP_lr}\"");
  CHECK(render_command_script("echo ${{other.lr}}") == "echo ${{other.lr}}");
}

TEST_CASE("hostile values arrive as one verbatim argument in every context") {
  const std::vector<std::string> values = {"plain",
                                           "two words",
                                           "it's",
                                           "\"double\"",
                                           "$(touch /tmp/amlrun-pwned)",
                                           "`id`",
                                           "$HOME ${PATH}",
                                           "line1\nline2",
                                           "tab\there",
                                           "back\\slash",
                                           "émoji 🚀 ü",
                                           "*",
                                           "-n",
                                           "",
                                           "a'b\"c$d`e\\f"};
  for (const auto& value : values) {
    INFO("value: " << value);
    std::string nul(1, '\0');
    CHECK(run(std::string(k_print) + "${{inputs.x}}", value) == value + nul);
    CHECK(run(std::string(k_print) + "\"[${{inputs.x}}]\"", value) == "[" + value + "]" + nul);
    CHECK(run(std::string(k_print) + "'[${{inputs.x}}]'", value) == "[" + value + "]" + nul);
    CHECK(run(std::string(k_print) + "$'[\\t${{inputs.x}}]'", value) == "[\t" + value + "]" + nul);
    CHECK(run(std::string(k_print) + "\"$(printf %s ${{inputs.x}})\"", value) == value + nul);
    CHECK(run(std::string(k_print) + "`printf %s ${{inputs.x}}`x", value).size() > 0);
    CHECK(run(std::string(k_print) + "--opt=${{inputs.x}}", value) == "--opt=" + value + nul);
  }
}

TEST_CASE("multi-line commands keep their structure") {
  std::string command = "echo first\nprintf '%s\\0' ${{inputs.x}} \"(${{inputs.x}})\"\n";
  std::string nul(1, '\0');
  CHECK(run(command, "a b") == "first\na b" + nul + "(a b)" + nul);
}
