#include "lib/launch/command_script.hpp"

#include <vector>

#include "lib/spec/placeholders.hpp"
#include "lib/sweep/search_space.hpp"

namespace amlrun::launch {

std::string input_variable(const std::string& name) {
  return "AMLRUN_INPUT_" + name;
}
std::string output_variable(const std::string& name) {
  return "AMLRUN_OUTPUT_" + name;
}

namespace {

enum class Context { plain, single, double_quoted, ansi_c, backtick };

struct Frame {
  Context context;
  int parentheses = 0;  // open '(' inside this plain frame, to find the ')' of $(...)
};

std::string reference_for(Context context, const std::string& variable) {
  switch (context) {
    case Context::double_quoted:
      return "${" + variable + "}";
    case Context::single:
      return "'\"${" + variable + "}\"'";
    case Context::ansi_c:
      return "'\"${" + variable + "}\"$'";
    case Context::plain:
    case Context::backtick:
      break;
  }
  return "\"${" + variable + "}\"";
}

}  // namespace

std::string render_command_script(const std::string& command) {
  std::string out;
  out.reserve(command.size() + 64);
  std::vector<Frame> stack{{Context::plain}};
  std::size_t i = 0;
  while (i < command.size()) {
    Context context = stack.back().context;
    if (command.compare(i, 3, "${{") == 0) {
      std::size_t close = command.find("}}", i + 3);
      if (close != std::string::npos) {
        auto placeholders =
            spec::find_placeholders(std::string_view(command).substr(i, close + 2 - i));
        if (!placeholders.empty() &&
            (placeholders[0].scope == "inputs" || placeholders[0].scope == "outputs" ||
             placeholders[0].scope == "search_space")) {
          const auto& p = placeholders[0];
          std::string variable = p.scope == "inputs"    ? input_variable(p.name)
                                 : p.scope == "outputs" ? output_variable(p.name)
                                                        : sweep::environment_variable(p.name);
          out += reference_for(context, variable);
          i = close + 2;
          continue;
        }
      }
    }
    char c = command[i];
    auto starts = [&](const char* text) {
      return command.compare(i, std::char_traits<char>::length(text), text) == 0;
    };
    switch (context) {
      case Context::single:
        if (c == '\'') stack.pop_back();
        break;
      case Context::ansi_c:
        if (c == '\\' && i + 1 < command.size()) {
          out.push_back(c);
          ++i;
          c = command[i];
        } else if (c == '\'') {
          stack.pop_back();
        }
        break;
      case Context::double_quoted:
        if (c == '\\' && i + 1 < command.size()) {
          out.push_back(c);
          ++i;
          c = command[i];
        } else if (c == '"') {
          stack.pop_back();
        } else if (starts("$(")) {
          out += "$(";
          i += 2;
          stack.push_back({Context::plain});
          continue;
        } else if (c == '`') {
          stack.push_back({Context::backtick});
        }
        break;
      case Context::plain:
      case Context::backtick:
        if (c == '\\' && i + 1 < command.size()) {
          out.push_back(c);
          ++i;
          c = command[i];
        } else if (c == '\'') {
          stack.push_back({Context::single});
        } else if (c == '"') {
          stack.push_back({Context::double_quoted});
        } else if (starts("$'")) {
          out += "$'";
          i += 2;
          stack.push_back({Context::ansi_c});
          continue;
        } else if (starts("$(")) {
          out += "$(";
          i += 2;
          stack.push_back({Context::plain});
          continue;
        } else if (c == '`') {
          if (context == Context::backtick) {
            stack.pop_back();
          } else {
            stack.push_back({Context::backtick});
          }
        } else if (c == '(' && context == Context::plain) {
          ++stack.back().parentheses;
        } else if (c == ')' && context == Context::plain) {
          if (stack.back().parentheses > 0) {
            --stack.back().parentheses;
          } else if (stack.size() > 1) {
            stack.pop_back();
          }
        }
        break;
    }
    out.push_back(c);
    ++i;
  }
  return out;
}

}  // namespace amlrun::launch
