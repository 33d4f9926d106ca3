#include "lib/env/environment.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <set>

#include "lib/spec/package_specs.hpp"
#include "lib/spec/reader.hpp"
#include "lib/spec/yaml_tree.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/hash.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::env {

namespace {

constexpr std::uint64_t k_max_file_bytes = 1ull << 20;

std::vector<std::string> sorted_unique(std::vector<std::string> items) {
  std::sort(items.begin(), items.end());
  items.erase(std::unique(items.begin(), items.end()), items.end());
  return items;
}

// requirements.txt: requirements are normalised; pip options (an index URL,
// --find-links) are kept in order; references to other files cannot work in
// a build context and are refused.
void read_requirements_file(const fs::path& path, Environment& environment) {
  std::string text = util::read_user_file(path, k_max_file_bytes);
  int number = 0;
  for (const auto& raw : util::split(text, '\n')) {
    ++number;
    std::string line(util::trim(raw));
    if (auto hash = line.find(" #"); hash != std::string::npos)
      line = std::string(util::trim(line.substr(0, hash)));
    if (line.empty() || line[0] == '#') continue;
    std::string where = fmt::format("{}:{}", path.string(), number);
    if (line[0] == '-') {
      static const std::vector<std::string> file_options = {
          "-r", "--requirement", "-c", "--constraint", "-e", "--editable"};
      for (const auto& option : file_options) {
        if (line == option || line.starts_with(option + " ") || line.starts_with(option + "=")) {
          throw util::InputError(fmt::format(
              "{}: '{}' refers to another file or a local path, which the environment cannot "
              "include; list those requirements in this file",
              where, line));
        }
      }
      environment.pip_options.push_back(line);
      continue;
    }
    std::string error;
    auto normalised = spec::normalise_pip_requirement(line, error);
    if (!normalised) {
      throw util::InputError(fmt::format("{}: {} {}", where, util::printable(line), error));
    }
    environment.pip_requirements.push_back(*normalised);
  }
}

// conda.yml: channels keep their order (it is priority); dependencies are a
// set; `name` and `prefix` only name the environment.
void read_conda_file(const fs::path& path, Environment& environment) {
  auto source = std::make_shared<spec::Source>();
  source->name = path.string();
  source->text = util::read_user_file(path, k_max_file_bytes);
  spec::Diagnostics diagnostics;
  auto root = spec::parse_yaml(source, diagnostics);
  if (root && !diagnostics.has_errors()) {
    spec::MapReader conda(root, "", diagnostics);
    conda.accept({"name", "prefix"});
    environment.conda_channels = conda.string_list("channels");
    auto dependencies = conda.node("dependencies");
    if (dependencies && dependencies->is_sequence()) {
      for (std::size_t i = 0; i < dependencies->items.size(); ++i) {
        const auto& item = dependencies->items[i];
        std::string key = fmt::format("dependencies[{}]", i);
        std::string error;
        if (item->is_scalar()) {
          if (auto n = spec::normalise_conda_spec(item->value, error)) {
            environment.conda_dependencies.push_back(*n);
          } else {
            diagnostics.error(item->mark, key,
                              fmt::format("{} {}", util::printable(item->value), error));
          }
        } else if (item->is_map()) {
          spec::MapReader pip(item, key, diagnostics);
          environment.conda_pip = pip.checked_list("pip", spec::normalise_pip_requirement);
          pip.finish();
        } else {
          diagnostics.error(item->mark, key, "expected a package or {pip: [...]}");
        }
      }
    } else if (dependencies && !dependencies->is_null()) {
      diagnostics.error(dependencies->mark, "dependencies", "expected a list");
    }
    conda.accept({"variables"});
    conda.finish();
  }
  if (diagnostics.has_errors()) {
    throw spec::SpecError(source->name, diagnostics.errors_in_file_order());
  }
  environment.has_conda = true;
}

// sha256 over the context's files: relative path, executable bit, content,
// in path order, so the hash follows the content and not the timestamps.
std::string digest_directory(const fs::path& root) {
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator();
       ++it) {
    if (it->is_regular_file(/*no follow:*/) && !it->is_symlink()) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  util::Sha256 hash;
  for (const auto& file : files) {
    auto relative = file.lexically_relative(root).string();
    bool executable = (fs::status(file).permissions() & fs::perms::owner_exec) != fs::perms::none;
    hash.update(
        fmt::format("{}\n{}\n{}\n", relative, executable ? "x" : "-", util::sha256_file(file)));
  }
  return hash.hex_digest();
}

}  // namespace

Mode mode_from_string(const std::string& text) {
  if (text == "venv") return Mode::venv;
  if (text == "container") return Mode::container;
  return Mode::host;
}

std::string to_string(Mode mode) {
  switch (mode) {
    case Mode::host:
      return "host";
    case Mode::venv:
      return "venv";
    case Mode::container:
      return "container";
  }
  return "host";
}

Environment resolve_environment(const spec::JobSpec& job,
                                const workspace::EnvironmentSettings& settings) {
  const auto& e = job.environment;
  Environment environment;
  environment.gpu = e.use_gpu.value_or(false);
  if (!e.build_context.empty()) {
    if (!e.conda_file.empty() || !e.pip_packages.empty() || !e.conda_packages.empty()) {
      throw util::InputError(
          "environment.build brings its own Dockerfile: install packages there "
          "instead of listing them beside it");
    }
    environment.build_context = e.build_context;
    environment.dockerfile_path = e.dockerfile_path.empty() ? "Dockerfile" : e.dockerfile_path;
    fs::path dockerfile = util::safe_join(e.build_context, environment.dockerfile_path,
                                          "environment.build.dockerfile_path");
    if (!fs::is_regular_file(dockerfile)) {
      throw util::InputError(fmt::format("environment.build: no {} in the build context {}",
                                         environment.dockerfile_path, e.build_context));
    }
    environment.build_context_sha256 = digest_directory(e.build_context);
  } else {
    environment.base_image = !e.image.empty()  ? e.image
                             : environment.gpu ? settings.gpu_image
                                               : settings.cpu_image;
  }
  environment.pip_requirements = e.pip_packages;
  if (!e.pip_requirements_file.empty())
    read_requirements_file(e.pip_requirements_file, environment);
  environment.pip_requirements = sorted_unique(environment.pip_requirements);
  if (!e.conda_file.empty()) read_conda_file(e.conda_file, environment);
  if (!e.conda_packages.empty()) {
    environment.has_conda = true;
    environment.conda_dependencies.insert(environment.conda_dependencies.end(),
                                          e.conda_packages.begin(), e.conda_packages.end());
  }
  environment.conda_dependencies = sorted_unique(environment.conda_dependencies);
  environment.conda_pip = sorted_unique(environment.conda_pip);
  environment.variables = job.environment_variables;
  std::sort(environment.variables.begin(), environment.variables.end());
  if (!job.shm_size.empty()) environment.shm_size = job.shm_size;
  return environment;
}

nlohmann::json canonical_form(const Environment& e) {
  // nlohmann::json keeps object keys sorted: the dump is canonical.
  nlohmann::json j;
  j["format"] = 1;
  j["base_image"] = e.base_image;
  if (!e.build_context.empty()) {
    j["build"] = {{"context_sha256", e.build_context_sha256}, {"dockerfile", e.dockerfile_path}};
  } else {
    j["build"] = nullptr;
  }
  j["pip"] = e.pip_requirements;
  j["pip_options"] = e.pip_options;
  if (e.has_conda) {
    j["conda"] = {{"channels", e.conda_channels},
                  {"dependencies", e.conda_dependencies},
                  {"pip", e.conda_pip}};
  } else {
    j["conda"] = nullptr;
  }
  nlohmann::json variables = nlohmann::json::object();
  for (const auto& [k, v] : e.variables) variables[k] = v;
  j["variables"] = variables;
  j["shm_size"] = e.shm_size;
  j["gpu"] = e.gpu;
  return j;
}

std::string environment_hash(const Environment& environment) {
  return util::sha256_hex(canonical_form(environment).dump());
}

Environment environment_from_canonical(const nlohmann::json& j) {
  Environment e;
  e.base_image = j.value("base_image", "");
  if (j.contains("build") && j["build"].is_object()) {
    e.build_context_sha256 = j["build"].value("context_sha256", "");
    e.dockerfile_path = j["build"].value("dockerfile", "Dockerfile");
  }
  e.pip_requirements = j.value("pip", std::vector<std::string>{});
  e.pip_options = j.value("pip_options", std::vector<std::string>{});
  if (j.contains("conda") && j["conda"].is_object()) {
    e.has_conda = true;
    e.conda_channels = j["conda"].value("channels", std::vector<std::string>{});
    e.conda_dependencies = j["conda"].value("dependencies", std::vector<std::string>{});
    e.conda_pip = j["conda"].value("pip", std::vector<std::string>{});
  }
  for (auto it = j["variables"].begin(); it != j["variables"].end(); ++it) {
    e.variables.emplace_back(it.key(), it.value().get<std::string>());
  }
  e.shm_size = j.value("shm_size", "2g");
  e.gpu = j.value("gpu", false);
  return e;
}

Mode choose_mode(const Environment& environment, const workspace::EnvironmentSettings& settings) {
  if (!settings.runtime.empty()) return Mode::container;
  if (!environment.pip_requirements.empty() || environment.has_conda) return Mode::venv;
  return Mode::host;
}

}  // namespace amlrun::env
