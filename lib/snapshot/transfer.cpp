#include "lib/snapshot/transfer.hpp"

#include <sys/stat.h>

#include <fmt/format.h>
#include <set>

#include "lib/snapshot/error.hpp"
#include "lib/snapshot/object_store.hpp"
#include "lib/snapshot/snapshot.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/hash.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::snapshot {

namespace fs = std::filesystem;
using detail::FileKind;

namespace {

bool is_hex(std::string_view text) {
  return text.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// "ab/<sha256>[.x][.p]" → sha256 and kind; nothing else is an object name,
// so a name from the other side cannot reach outside objects/.
bool parse_name(std::string_view name, std::string& sha256, FileKind& kind) {
  if (name.size() < 3 + 64 || name[2] != '/') return false;
  sha256 = std::string(name.substr(3, 64));
  if (!is_hex(sha256) || name.substr(0, 2) != sha256.substr(0, 2)) return false;
  std::string_view rest = name.substr(3 + 64);
  kind = {};
  if (rest.starts_with(".x")) {
    kind.executable = true;
    rest.remove_prefix(2);
  }
  if (rest.starts_with(".p")) {
    kind.owner_only = true;
    rest.remove_prefix(2);
  }
  return rest.empty();
}

}  // namespace

std::vector<ObjectRef> objects_of(const Manifest& manifest) {
  std::vector<ObjectRef> refs;
  std::set<std::string> seen;
  for (const auto& entry : manifest.entries) {
    if (entry.type != EntryType::file) continue;
    std::string name = detail::object_name(entry.sha256, detail::kind_of_entry(entry));
    if (seen.insert(name).second) refs.push_back({name, entry.size});
  }
  return refs;
}

std::string manifest_text(const fs::path& store_dir, const std::string& snapshot_id) {
  read_manifest(store_dir, snapshot_id);  // checks the id and the content
  return util::read_file(store_dir / "manifests" / snapshot_id);
}

Manifest receive_manifest(const fs::path& store_dir, const std::string& snapshot_id,
                          std::string_view text) {
  if (snapshot_id.size() != 64 || !is_hex(snapshot_id) || util::sha256_hex(text) != snapshot_id) {
    throw SnapshotError(fmt::format("the manifest received for snapshot {} does not match its id",
                                    util::printable(snapshot_id)));
  }
  Manifest manifest;
  manifest.id = snapshot_id;
  manifest.entries = parse_manifest(text, "the received manifest " + snapshot_id);
  detail::Store(store_dir).write_manifest(snapshot_id, text);
  return manifest;
}

std::string manifest_delta(std::string_view base, std::string_view target) {
  auto base_entries = parse_manifest(base, "the base manifest");
  auto target_entries = parse_manifest(target, "the new manifest");
  // One entry a line, after the header line, in the same order.
  auto base_lines = util::split(base, '\n');
  auto target_lines = util::split(target, '\n');
  std::string script;
  char last = 0;
  std::size_t run = 0;
  auto flush = [&] {
    if (run > 0) script += fmt::format("{}{}\n", last, run);
    run = 0;
  };
  auto step = [&](char op) {
    if (op != last) flush();
    last = op;
    ++run;
  };
  auto add = [&](const std::string& line) {
    flush();
    last = '+';
    script += "+" + line + "\n";
  };
  std::size_t i = 0;
  std::size_t j = 0;
  while (i < base_entries.size() || j < target_entries.size()) {
    if (i < base_entries.size() && j < target_entries.size() &&
        base_entries[i].path == target_entries[j].path) {
      if (base_lines[i + 1] == target_lines[j + 1]) {
        step('=');
      } else {
        step('-');
        add(target_lines[j + 1]);
      }
      ++i;
      ++j;
    } else if (j == target_entries.size() ||
               (i < base_entries.size() && base_entries[i].path < target_entries[j].path)) {
      step('-');
      ++i;
    } else {
      add(target_lines[j + 1]);
      ++j;
    }
  }
  flush();
  return script;
}

std::string apply_manifest_delta(std::string_view base, std::string_view delta) {
  auto base_lines = util::split(base, '\n');
  if (!base_lines.empty() && base_lines.back().empty()) base_lines.pop_back();
  if (base_lines.empty()) throw SnapshotError("the base manifest is empty");
  std::string out = base_lines[0] + "\n";
  std::size_t at = 1;
  auto bad = [] { return SnapshotError("a manifest edit script does not fit its base"); };
  for (const auto& line : util::split(delta, '\n')) {
    if (line.empty()) continue;
    if (line[0] == '+') {
      out += line.substr(1) + "\n";
      continue;
    }
    std::size_t count = 0;
    try {
      count = std::stoull(line.substr(1));
    } catch (const std::exception&) {
      throw bad();
    }
    if (at + count > base_lines.size() || (line[0] != '=' && line[0] != '-')) throw bad();
    if (line[0] == '=') {
      for (std::size_t k = 0; k < count; ++k) out += base_lines[at + k] + "\n";
    }
    at += count;
  }
  if (at != base_lines.size()) throw bad();
  return out;
}

std::vector<ObjectRef> missing_objects(const fs::path& store_dir,
                                       const std::vector<ObjectRef>& wanted) {
  detail::Store store(store_dir);
  std::vector<ObjectRef> missing;
  for (const auto& ref : wanted) {
    std::string sha256;
    FileKind kind;
    if (!parse_name(ref.name, sha256, kind)) {
      throw util::InputError(fmt::format("{} is not an object name", util::printable(ref.name)));
    }
    if (!store.has_intact_object(ref.name, ref.size, kind)) missing.push_back(ref);
  }
  return missing;
}

fs::path object_path(const fs::path& store_dir, const std::string& name) {
  std::string sha256;
  FileKind kind;
  if (!parse_name(name, sha256, kind)) {
    throw util::InputError(fmt::format("{} is not an object name", util::printable(name)));
  }
  return store_dir / "objects" / name;
}

struct ObjectReceiver::Impl {
  explicit Impl(const fs::path& dir) : store(dir) {}
  detail::Store store;
};

ObjectReceiver::ObjectReceiver(const fs::path& store_dir)
    : m_impl(std::make_unique<Impl>(store_dir)) {}
ObjectReceiver::~ObjectReceiver() = default;

void ObjectReceiver::receive(const ObjectRef& ref, std::string_view data) {
  std::string sha256;
  FileKind kind;
  if (!parse_name(ref.name, sha256, kind)) {
    throw util::InputError(fmt::format("{} is not an object name", util::printable(ref.name)));
  }
  if (data.size() != ref.size || util::sha256_hex(data) != sha256) {
    throw util::InfraError(
        fmt::format("object {} arrived damaged ({} bytes, expected {}; its sha256 does not match): "
                    "submit again",
                    ref.name, data.size(), ref.size));
  }
  const detail::Store& store = m_impl->store;
  util::AtomicFile temp = store.create_temp();
  temp.write(data);
  struct timespec times[2] = {{detail::k_object_mtime, 0}, {detail::k_object_mtime, 0}};
  if (::fchmod(temp.fd(), detail::object_mode(kind)) != 0 || ::futimens(temp.fd(), times) != 0) {
    util::throw_errno(fmt::format("cannot finish {}", temp.temp_path().string()));
  }
  store.publish_object(temp, ref.name, ref.size, kind);
}

}  // namespace amlrun::snapshot
