#include "lib/snapshot/manifest.hpp"

#include <fmt/format.h>

#include <charconv>
#include <unordered_set>

#include "lib/snapshot/error.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::snapshot {

namespace {

constexpr std::string_view k_header = "amlrun-snapshot 1";

bool needs_escape(unsigned char c) {
  return c < 0x20 || c == 0x7f || c == '\\';
}

void append_escaped(std::string& out, std::string_view text) {
  for (char ch : text) {
    auto c = static_cast<unsigned char>(ch);
    if (!needs_escape(c)) {
      out.push_back(ch);
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += fmt::format("\\x{:02x}", c);
    }
  }
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

bool unescape(std::string_view text, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (++i >= text.size()) return false;
    switch (text[i]) {
      case '\\':
        out.push_back('\\');
        break;
      case 't':
        out.push_back('\t');
        break;
      case 'n':
        out.push_back('\n');
        break;
      case 'x': {
        if (i + 2 >= text.size()) return false;
        int high = hex_value(text[i + 1]);
        int low = hex_value(text[i + 2]);
        if (high < 0 || low < 0) return false;
        out.push_back(static_cast<char>(high * 16 + low));
        i += 2;
        break;
      }
      default:
        return false;
    }
  }
  return true;
}

bool is_sha256_hex(std::string_view text) {
  if (text.size() != 64) return false;
  for (char c : text) {
    if (hex_value(c) < 0) return false;
  }
  return true;
}

// The mode as the manifest spells it: only the facts a snapshot keeps.
std::string_view file_mode_field(const Entry& entry) {
  if (entry.owner_only) return entry.executable ? "700" : "600";
  return entry.executable ? "755" : "644";
}

std::vector<std::string_view> split_tabs(std::string_view line) {
  std::vector<std::string_view> fields;
  std::size_t start = 0;
  for (;;) {
    std::size_t tab = line.find('\t', start);
    if (tab == std::string_view::npos) {
      fields.push_back(line.substr(start));
      return fields;
    }
    fields.push_back(line.substr(start, tab - start));
    start = tab + 1;
  }
}

}  // namespace

std::string display_path(std::string_view path) {
  for (char c : path) {
    auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      return util::printable(path, 4096);
    }
  }
  return std::string(path);
}

bool is_safe_relative_path(std::string_view path) {
  if (path.empty() || path.front() == '/' || path.back() == '/' ||
      path.find('\0') != std::string_view::npos) {
    return false;
  }
  std::size_t start = 0;
  for (;;) {
    std::size_t slash = path.find('/', start);
    std::string_view name = path.substr(
        start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (name.empty() || name == "." || name == "..") return false;
    if (slash == std::string_view::npos) return true;
    start = slash + 1;
  }
}

std::string serialize_manifest(const std::vector<Entry>& entries) {
  std::string out;
  out.reserve(64 + entries.size() * 120);
  out += k_header;
  out += '\n';
  for (const Entry& entry : entries) {
    switch (entry.type) {
      case EntryType::directory:
        out += "d\t";
        append_escaped(out, entry.path);
        break;
      case EntryType::file:
        out += "f\t";
        out += file_mode_field(entry);
        out += '\t';
        out += std::to_string(entry.size);
        out += '\t';
        out += entry.sha256;
        out += '\t';
        append_escaped(out, entry.path);
        break;
      case EntryType::symlink:
        out += "l\t";
        append_escaped(out, entry.path);
        out += '\t';
        append_escaped(out, entry.link_target);
        break;
    }
    out += '\n';
  }
  return out;
}

std::vector<Entry> parse_manifest(std::string_view text, std::string_view origin) {
  auto fail = [&](std::size_t line_number, std::string_view why) -> SnapshotError {
    return SnapshotError(fmt::format(
        "{}:{}: corrupt snapshot manifest: {}; take a new snapshot (submit the job again)", origin,
        line_number, why));
  };
  std::vector<Entry> entries;
  std::unordered_set<std::string> directories;
  std::size_t line_number = 0;
  std::size_t start = 0;
  bool header_seen = false;
  std::string previous_path;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) {
      throw fail(line_number + 1, "the last line is not terminated");
    }
    std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (!header_seen) {
      if (line != k_header)
        throw fail(line_number, "unknown format (expected 'amlrun-snapshot 1')");
      header_seen = true;
      continue;
    }
    auto fields = split_tabs(line);
    Entry entry;
    std::string_view raw_path;
    if (fields[0] == "d" && fields.size() == 2) {
      entry.type = EntryType::directory;
      raw_path = fields[1];
    } else if (fields[0] == "f" && fields.size() == 5) {
      entry.type = EntryType::file;
      if (fields[1] != "644" && fields[1] != "755" && fields[1] != "600" && fields[1] != "700") {
        throw fail(line_number, "bad file mode");
      }
      entry.executable = fields[1] == "755" || fields[1] == "700";
      entry.owner_only = fields[1] == "600" || fields[1] == "700";
      auto [ptr, ec] =
          std::from_chars(fields[2].data(), fields[2].data() + fields[2].size(), entry.size);
      if (ec != std::errc() || ptr != fields[2].data() + fields[2].size() || fields[2].empty()) {
        throw fail(line_number, "bad file size");
      }
      if (!is_sha256_hex(fields[3])) throw fail(line_number, "bad sha256");
      entry.sha256 = std::string(fields[3]);
      raw_path = fields[4];
    } else if (fields[0] == "l" && fields.size() == 3) {
      entry.type = EntryType::symlink;
      raw_path = fields[1];
      if (!unescape(fields[2], entry.link_target) || entry.link_target.empty() ||
          entry.link_target.find('\0') != std::string::npos) {
        throw fail(line_number, "bad symlink target");
      }
      entry.size = entry.link_target.size();
    } else {
      throw fail(line_number, "unknown entry");
    }
    if (!unescape(raw_path, entry.path) || !is_safe_relative_path(entry.path)) {
      throw fail(line_number, "unsafe path " + util::printable(raw_path, 4096));
    }
    if (!entries.empty() && entry.path <= previous_path) {
      throw fail(line_number, "entries out of order");
    }
    std::size_t slash = entry.path.rfind('/');
    if (slash != std::string::npos && !directories.contains(entry.path.substr(0, slash))) {
      throw fail(line_number, "parent directory not listed");
    }
    if (entry.type == EntryType::directory) {
      directories.insert(entry.path);
    }
    previous_path = entry.path;
    entries.push_back(std::move(entry));
  }
  if (!header_seen) throw fail(1, "empty file");
  return entries;
}

}  // namespace amlrun::snapshot
