#include "lib/snapshot/limits.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <map>
#include <string>

#include "lib/snapshot/error.hpp"
#include "lib/snapshot/manifest.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::snapshot::detail {

namespace {

constexpr std::size_t k_listed_largest = 3;

std::string with_commas(std::uint64_t value) {
  std::string digits = std::to_string(value);
  std::string out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

}  // namespace

void check_limits(const fs::path& source_dir, const std::vector<Found>& found, const Limits& limits,
                  bool stopped) {
  Totals total;
  std::map<std::string, Totals> directories;  // recursive totals, root excluded
  for (const Found& entry : found) {
    if (entry.type == EntryType::directory) {
      directories.try_emplace(entry.path);
      continue;
    }
    std::uint64_t bytes = entry.type == EntryType::file ? entry.stat.size : 0;
    total.files += 1;
    total.bytes += bytes;
    for (std::size_t slash = entry.path.find('/'); slash != std::string::npos;
         slash = entry.path.find('/', slash + 1)) {
      Totals& totals = directories[entry.path.substr(0, slash)];
      totals.files += 1;
      totals.bytes += bytes;
    }
  }
  bool too_many = total.files > limits.max_files;
  bool too_big = total.bytes > limits.max_bytes;
  if (!too_many && !too_big) return;

  // Rank by what is over the limit. A directory is listed only when no single
  // subdirectory holds most of it, so the list points at where the files
  // really are (data/train/ rather than data/ and data/train/ both).
  auto metric = [&](const Totals& totals) { return too_many ? totals.files : totals.bytes; };
  std::map<std::string, std::uint64_t> largest_child;
  for (const auto& [path, totals] : directories) {
    std::size_t slash = path.rfind('/');
    if (slash == std::string::npos) continue;
    auto& child = largest_child[path.substr(0, slash)];
    child = std::max(child, metric(totals));
  }
  std::vector<std::pair<std::string, Totals>> candidates;
  for (const auto& [path, totals] : directories) {
    auto it = largest_child.find(path);
    std::uint64_t child = it == largest_child.end() ? 0 : it->second;
    if (metric(totals) > 0 && child * 10 < metric(totals) * 8)
      candidates.emplace_back(path, totals);
  }
  std::stable_sort(candidates.begin(), candidates.end(), [&](const auto& a, const auto& b) {
    return metric(a.second) > metric(b.second);
  });
  std::vector<std::string> listed_directories;
  for (std::size_t i = 0; i < candidates.size() && i < k_listed_largest; ++i) {
    listed_directories.push_back(fmt::format("{}/ ({} {}, {})", display_path(candidates[i].first),
                                             with_commas(candidates[i].second.files),
                                             candidates[i].second.files == 1 ? "file" : "files",
                                             util::format_bytes(candidates[i].second.bytes)));
  }

  std::string message = fmt::format("snapshot of {}: ", display_path(source_dir.string()));
  std::vector<std::string> keys;
  if (too_many && too_big) {
    message += fmt::format("{} files and {}, more than the limits of {} files and {}",
                           with_commas(total.files), util::format_bytes(total.bytes),
                           with_commas(limits.max_files), util::format_bytes(limits.max_bytes));
    keys = {"snapshot.max_files", "snapshot.max_bytes"};
  } else if (too_many) {
    message += fmt::format("{} files, more than the limit of {}", with_commas(total.files),
                           with_commas(limits.max_files));
    keys = {"snapshot.max_files"};
  } else {
    message +=
        fmt::format("{} in {} files, more than the limit of {}", util::format_bytes(total.bytes),
                    with_commas(total.files), util::format_bytes(limits.max_bytes));
    keys = {"snapshot.max_bytes"};
  }
  if (stopped) message += " (the walk stopped there, past twice the limit)";
  const char* so_far = stopped ? " so far" : "";
  if (too_big) {
    std::vector<const Found*> files;
    for (const Found& entry : found) {
      if (entry.type == EntryType::file) files.push_back(&entry);
    }
    std::size_t count = std::min(files.size(), k_listed_largest);
    std::partial_sort(files.begin(), files.begin() + static_cast<std::ptrdiff_t>(count),
                      files.end(), [](const Found* a, const Found* b) {
                        return a->stat.size != b->stat.size ? a->stat.size > b->stat.size
                                                            : a->path < b->path;
                      });
    std::vector<std::string> listed_files;
    for (std::size_t i = 0; i < count; ++i) {
      listed_files.push_back(fmt::format("{} ({})", display_path(files[i]->path),
                                         util::format_bytes(files[i]->stat.size)));
    }
    message += fmt::format("; largest files{}: {}", so_far, util::join(listed_files, ", "));
  }
  if (!listed_directories.empty()) {
    message +=
        fmt::format("; largest directories{}: {}", so_far, util::join(listed_directories, ", "));
  }
  message += fmt::format(" — add them to .amlignore or raise {} in .amlrun/config.yml",
                         util::join(keys, " and "));
  throw SnapshotError(message);
}

}  // namespace amlrun::snapshot::detail
