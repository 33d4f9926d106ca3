#pragma once
// Checks on option values that CLI11 does not say clearly, or does not make.
#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cctype>
#include <map>
#include <string>
#include <vector>

#include "lib/util/strings.hpp"

namespace amlrun::cli {

// An option that takes one word of a fixed set (--output text|json). CLI11's
// own check answers a wrong word with its internals ("Check xml value in
// {json->1,text->0} FAILED"); this names the option, the word and the words
// it takes, with a suggestion.
// Adds `name` (e.g. "--output") storing the value of the chosen word in
// `target`, which must outlive parsing. Words match case-insensitively.
template <typename T>
CLI::Option* add_choice_option(CLI::App& app, const std::string& name, T& target,
                               const std::map<std::string, T>& choices, const std::string& help) {
  std::vector<std::string> words;
  for (const auto& choice : choices) words.push_back(choice.first);
  std::string shown = name.substr(name.rfind(',') == std::string::npos ? 0 : name.rfind(',') + 1);
  auto* option = app.add_option_function<std::string>(
      name,
      [&target, choices, words, shown](const std::string& given) {
        std::string lower = given;
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        if (auto found = choices.find(lower); found != choices.end()) {
          target = found->second;
          return;
        }
        throw CLI::ValidationError(
            shown, fmt::format("{} is not one of {}{}", util::printable(given),
                               util::join(words, ", "), util::did_you_mean_suffix(lower, words)));
      },
      help);
  option->type_name(util::join(words, "|"));
  return option;
}

// An empty value would otherwise read as "option not given" and be ignored
// without a word (--prefix '' downloading everything, --plot '' printing the
// table): refuse it.
inline CLI::Validator not_blank() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        if (util::trim(value).empty())
          return "the value is empty; give one or leave the option out";
        return "";
      },
      "");
}

}  // namespace amlrun::cli
