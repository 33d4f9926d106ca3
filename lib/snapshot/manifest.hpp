#pragma once
// The manifest: the canonical list of what a snapshot holds. Its sha256 is the
// snapshot id, so it contains only what defines the tree (paths, types, the
// executable bit, whether only the owner may read a file, sizes, content
// hashes, link targets) and never times,
// owners or inode numbers: the same tree always gets the same id.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace amlrun::snapshot {

enum class EntryType { directory, file, symlink };

struct Entry {
  std::string path;  // relative, '/'-separated; any bytes but '/' and NUL in a name
  EntryType type = EntryType::file;
  bool executable = false;  // files only: the owner's x bit, as git keeps it
  // Files only: group and others could not both read the source file, so the
  // store and every run keep it readable by its owner alone.
  bool owner_only = false;
  std::uint64_t size = 0;   // files: bytes; symlinks: length of the target
  std::string sha256;       // files only: lower-case hex of the content
  std::string link_target;  // symlinks only: the target text, never resolved

  bool operator==(const Entry&) const = default;
};

struct Manifest {
  std::string id;              // sha256 of the serialized text
  std::vector<Entry> entries;  // sorted by path, byte-wise
};

// The canonical text, one entry per line, fields separated by tabs:
//   amlrun-snapshot 1
//   d<TAB>path
//   f<TAB>644|755|600|700<TAB>size<TAB>sha256<TAB>path   (600, 700: owner_only)
//   l<TAB>path<TAB>target
// Paths and targets escape '\\', tab, newline and other control bytes as
// \\, \t, \n and \xNN, so any name round-trips and a line is one entry.
// Entries must already be sorted by path.
std::string serialize_manifest(const std::vector<Entry>& entries);

// Parses and validates a manifest: every path is relative, free of "." and
// ".." components, empty names and NUL bytes, and sorted without duplicates,
// every parent directory is listed, so materializing it cannot write outside
// its target. Throws SnapshotError naming `origin` on any defect.
std::vector<Entry> parse_manifest(std::string_view text, std::string_view origin);

// True when a path is safe to create below a target directory (see above).
bool is_safe_relative_path(std::string_view path);

// A path as it appears in messages: unchanged when it has no control bytes,
// else quoted with them escaped, so a message stays on one line.
std::string display_path(std::string_view path);

}  // namespace amlrun::snapshot
