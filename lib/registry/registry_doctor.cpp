#include "lib/registry/registry_doctor.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <set>

#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/hash.hpp"
#include "lib/util/names.hpp"

namespace amlrun::registry {

namespace {

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code error;
  for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    names.push_back(it->path().filename().string());
  }
  std::sort(names.begin(), names.end());  // reports read the same every time
  return names;
}

}  // namespace

void check_models(ModelRegistry& registry, const store::RunStore& store, bool repair,
                  store::DoctorReport& report) {
  auto add = [&](store::Finding finding) -> store::Finding& {
    report.findings.push_back(std::move(finding));
    return report.findings.back();
  };
  std::set<std::pair<std::string, std::string>> indexed;
  for (const auto& name : registry.names()) {
    for (const auto& version : registry.versions(name.name)) {
      ++report.models_checked;
      indexed.insert({version.name, version.version});
      fs::path dir = registry.version_dir(version.name, version.version);
      std::error_code error;
      if (!fs::exists(dir / "manifest.json", error)) {
        auto& finding =
            add({fmt::format("model {}:{} is in the index but {} is missing", version.name,
                             version.version, (dir / "manifest.json").string()),
                 "drop the version from the index", true});
        if (repair) {
          registry.unindex(version.name, version.version);
          finding.repaired = true;
        }
        continue;
      }
      try {
        registry.check_files(version);  // the manifest, then each file's place, type and size
      } catch (const util::Error& e) {
        add({e.what(),
             fmt::format("delete it (amlrun model delete {}:{}) and register it again",
                         version.name, version.version),
             false});
      }
    }
  }
  fs::path root = registry.models_dir();
  std::vector<std::pair<std::string, std::string>> to_index;
  std::vector<std::size_t> to_index_findings;
  for (const auto& name : entries(root)) {
    if (name == ".staging") continue;
    if (!util::is_valid_name(name)) {
      add({fmt::format("{} is not a model folder", (root / name).string()),
           "move it out of the workspace", false});
      continue;
    }
    for (const auto& version : entries(root / name)) {
      if (indexed.count({name, version})) continue;
      fs::path dir = root / name / version;
      if (!util::is_valid_name(version)) {
        add({fmt::format("{} is not a model version folder", dir.string()),
             "move it out of the workspace", false});
        continue;
      }
      std::error_code error;
      if (fs::exists(dir / "manifest.json", error)) {
        add({fmt::format("model {}:{} is not in the index", name, version),
             "index it from its manifest", true});
        to_index.emplace_back(name, version);
        to_index_findings.push_back(report.findings.size() - 1);
      } else {
        auto& finding =
            add({fmt::format("{} has no manifest.json (an interrupted registration)", dir.string()),
                 "remove it", true});
        if (repair) {
          fs::remove_all(dir, error);
          finding.repaired = !error;
        }
      }
    }
  }
  if (repair && !to_index.empty()) {
    std::set<std::pair<std::string, std::string>> failed;
    registry.reindex_from_manifests(
        to_index,
        [&](const std::string& name, const std::string& version, const std::string& message) {
          failed.insert({name, version});
          for (std::size_t i = 0; i < to_index.size(); ++i) {
            if (to_index[i] == std::make_pair(name, version)) {
              report.findings[to_index_findings[i]].action = "cannot index it: " + message;
            }
          }
        });
    for (std::size_t i = 0; i < to_index.size(); ++i) {
      report.findings[to_index_findings[i]].repaired = !failed.count(to_index[i]);
    }
  }
  // Staging folders belong to registrations in progress until they are old.
  for (const auto& name : entries(root / ".staging")) {
    fs::path dir = root / ".staging" / name;
    if (!util::older_than(dir, 3600)) continue;
    auto& finding = add(
        {fmt::format("{} is left over from an interrupted registration or deletion", dir.string()),
         "remove it", true});
    if (repair) {
      std::error_code error;
      fs::remove_all(dir, error);
      finding.repaired = !error;
    }
  }
  (void)store;
}

}  // namespace amlrun::registry
