#pragma once
// Shared by the snapshot tests: temp trees, files, and the store options.
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "lib/snapshot/snapshot.hpp"

namespace snapshot_test {

namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    char pattern[] = "/tmp/amlrun-snapshot-XXXXXX";
    path = ::mkdtemp(pattern);
  }
  ~TempDir() {
    // Objects are read-only and a test may leave unreadable modes behind.
    std::error_code error;
    for (auto it = fs::recursive_directory_iterator(
             path, fs::directory_options::skip_permission_denied, error);
         it != fs::recursive_directory_iterator(); it.increment(error)) {
      if (!it->is_symlink()) ::chmod(it->path().c_str(), it->is_directory() ? 0755 : 0644);
    }
    fs::remove_all(path, error);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

inline void write_file(const fs::path& path, const std::string& content, unsigned mode = 0644) {
  fs::create_directories(path.parent_path());
  {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out << content;
  }
  ::chmod(path.c_str(), mode);
}

inline std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A workspace with a source tree and a store beside it, recording warnings.
struct Workspace {
  TempDir temp;
  fs::path source = temp.path / "src";
  fs::path store = temp.path / "store";
  std::vector<std::string> warnings;
  amlrun::snapshot::Options options;

  Workspace() {
    fs::create_directories(source);
    options.store_dir = store;
    options.warn = [this](const std::string& message) { warnings.push_back(message); };
  }

  amlrun::snapshot::Snapshot take() { return amlrun::snapshot::take(source, options); }

  std::vector<std::string> paths(const std::string& id) {
    std::vector<std::string> out;
    for (const auto& entry : amlrun::snapshot::read_manifest(store, id).entries)
      out.push_back(entry.path);
    return out;
  }
};

// Waits until the filesystem clock has moved past every timestamp in `root`,
// so the stat cache treats the files as settled (not racy).
void wait_until_settled(const fs::path& root);

// The message of the exception `action` throws, or "<no error>".
std::string message_of(const std::function<void()>& action);

// Runs `action` in a child process without CAP_DAC_OVERRIDE and
// CAP_DAC_READ_SEARCH, so file permissions apply even to root; returns what
// it returns (or the error it throws, as message_of).
std::string without_dac_override(const std::function<std::string()>& action);

// Runs `action` in a child process that sees an empty /proc (a private mount
// namespace with a tmpfs over it), so take() cannot name O_TMPFILE files and
// writes named temp files instead. Returns what `action` returns, or
// k_no_namespace when this process may not make a mount namespace.
inline const std::string k_no_namespace = "<no mount namespace>";
std::string without_proc(const std::function<std::string()>& action);

// Runs `action` in a child process in its own mount namespace, after
// `mount` (which mounts what the test needs and returns "", or
// k_no_namespace when it cannot); mounts vanish with the child.
std::string in_mount_namespace(const std::function<std::string()>& mount,
                               const std::function<std::string()>& action);

// Files in a store that are not where take() leaves them (objects/xx/<sha>[.x][.p],
// manifests/<id>, cache/<name>.stat): leftover temp files.
std::vector<std::string> stray_files(const fs::path& store);

// Device, inode, mtime and ctime of everything below root, one line each, so
// two listings compare equal only when nothing was created, replaced or
// written.
std::vector<std::string> identities(const fs::path& root);

}  // namespace snapshot_test
