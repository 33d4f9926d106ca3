#include "lib/spec/reader.hpp"

#include <fmt/format.h>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "lib/util/strings.hpp"

namespace amlrun::spec {

std::string join_key_path(std::string_view base, std::string_view key) {
  if (base.empty()) return std::string(key);
  return fmt::format("{}.{}", base, key);
}

MapReader::MapReader(NodePtr map, std::string path, Diagnostics& diagnostics)
    : m_map(std::move(map)), m_path(std::move(path)), m_diagnostics(diagnostics) {
  if (m_map && m_map->is_null()) {
    m_map = nullptr;
  } else if (m_map && !m_map->is_map()) {
    m_diagnostics.error(m_map->mark, m_path, "expected a map, got " + m_map->describe());
    m_map = nullptr;
  }
}

bool MapReader::has(std::string_view key) const {
  return m_map && m_map->find(key) != nullptr;
}

Mark MapReader::mark() const {
  return m_map ? m_map->mark : Mark{};
}

void MapReader::declare(std::string_view key) {
  for (const auto& k : m_declared) {
    if (k == key) return;
  }
  m_declared.emplace_back(key);
}

NodePtr MapReader::value_of(std::string_view key) const {
  if (!m_map) return nullptr;
  return m_map->find(key);
}

NodePtr MapReader::node(std::string_view key) {
  declare(key);
  return value_of(key);
}

Mark MapReader::key_mark(std::string_view key) const {
  return m_map ? m_map->key_mark(key) : Mark{};
}

Mark MapReader::value_mark(std::string_view key) const {
  NodePtr value = value_of(key);
  if (!value) return key_mark(key);
  bool from_override = value->mark.source && value->mark.source->is_override;
  return value->is_null() && !from_override ? key_mark(key) : value->mark;
}

std::optional<std::string> as_string(const Node& node, const std::string& path,
                                     Diagnostics& diagnostics) {
  if (node.is_null()) return std::nullopt;
  if (!node.is_scalar()) {
    diagnostics.error(node.mark, path, "expected a string, got " + node.describe());
    return std::nullopt;
  }
  return node.value;
}

std::optional<std::string> MapReader::string(std::string_view key) {
  auto value = node(key);
  if (!value) return std::nullopt;
  return as_string(*value, key_path(key), m_diagnostics);
}

static bool is_plain_integer(const std::string& text) {
  std::size_t i = (text.size() > 0 && (text[0] == '-' || text[0] == '+')) ? 1 : 0;
  if (i >= text.size()) return false;
  for (; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
  }
  return true;
}

std::optional<std::int64_t> as_integer(const Node& node, const std::string& path, std::int64_t min,
                                       std::int64_t max, Diagnostics& diagnostics) {
  if (node.is_null()) return std::nullopt;
  if (!node.is_scalar()) {
    diagnostics.error(node.mark, path, "expected an integer, got " + node.describe());
    return std::nullopt;
  }
  if (!is_plain_integer(node.value)) {
    diagnostics.error(node.mark, path, "expected an integer, got " + util::printable(node.value));
    return std::nullopt;
  }
  if (node.quoted) {
    diagnostics.error(
        node.mark, path,
        fmt::format("expected an integer, got the string \"{}\" (remove the quotes)", node.value));
    return std::nullopt;
  }
  errno = 0;
  long long parsed = std::strtoll(node.value.c_str(), nullptr, 10);
  if (errno == ERANGE || parsed < min || parsed > max) {
    diagnostics.error(node.mark, path,
                      fmt::format("must be between {} and {}, got {}", min, max, node.value));
    return std::nullopt;
  }
  return parsed;
}

std::optional<std::int64_t> MapReader::integer(std::string_view key, std::int64_t min,
                                               std::int64_t max) {
  auto value = node(key);
  if (!value) return std::nullopt;
  return as_integer(*value, key_path(key), min, max, m_diagnostics);
}

std::optional<double> MapReader::number(std::string_view key, double min, double max) {
  auto value = node(key);
  if (!value || value->is_null()) return std::nullopt;
  std::string path = key_path(key);
  if (!value->is_scalar() || value->quoted) {
    m_diagnostics.error(
        value->mark, path,
        "expected a number, got " +
            (value->is_scalar() ? "the string \"" + value->value + "\"" : value->describe()));
    return std::nullopt;
  }
  const std::string& text = value->value;
  char* end = nullptr;
  errno = 0;
  double parsed = std::strtod(text.c_str(), &end);
  bool hex_or_special = text.find_first_of("xXnNiI") != std::string::npos;
  if (text.empty() || end != text.c_str() + text.size() || hex_or_special) {
    m_diagnostics.error(value->mark, path, "expected a number, got " + util::printable(text));
    return std::nullopt;
  }
  if (errno == ERANGE || !std::isfinite(parsed) || parsed < min || parsed > max) {
    m_diagnostics.error(value->mark, path,
                        fmt::format("must be between {} and {}, got {}", min, max, text));
    return std::nullopt;
  }
  return parsed;
}

std::optional<bool> MapReader::boolean(std::string_view key) {
  auto value = node(key);
  if (!value || value->is_null()) return std::nullopt;
  std::string path = key_path(key);
  if (value->is_scalar() && !value->quoted) {
    const std::string& t = value->value;
    if (t == "true" || t == "True" || t == "TRUE") return true;
    if (t == "false" || t == "False" || t == "FALSE") return false;
  }
  m_diagnostics.error(value->mark, path,
                      "expected true or false, got " +
                          (value->is_scalar() ? util::printable(value->value) : value->describe()));
  return std::nullopt;
}

std::optional<std::string> MapReader::choice(std::string_view key,
                                             const std::vector<std::string>& allowed) {
  auto text = string(key);
  if (!text) return std::nullopt;
  for (const auto& a : allowed) {
    if (*text == a) return text;
  }
  m_diagnostics.error(
      value_of(key)->mark, key_path(key),
      fmt::format("{} is not one of {}{}", util::printable(*text), util::join(allowed, ", "),
                  util::did_you_mean_suffix(*text, allowed)));
  return std::nullopt;
}

std::vector<std::string> MapReader::string_list(std::string_view key) {
  std::vector<std::string> out;
  auto value = node(key);
  if (!value || value->is_null()) return out;
  std::string path = key_path(key);
  if (!value->is_sequence()) {
    m_diagnostics.error(value->mark, path, "expected a list, got " + value->describe());
    return out;
  }
  for (std::size_t i = 0; i < value->items.size(); ++i) {
    const auto& item = value->items[i];
    std::string item_path = fmt::format("{}[{}]", path, i);
    if (item->is_null()) {
      m_diagnostics.error(item->mark, item_path, "empty list entry");
      continue;
    }
    if (auto text = as_string(*item, item_path, m_diagnostics)) out.push_back(*text);
  }
  return out;
}

std::vector<std::string> MapReader::checked_list(
    std::string_view key,
    const std::function<std::optional<std::string>(std::string_view, std::string&)>& check) {
  std::vector<std::string> out;
  auto value = node(key);
  auto raw = string_list(key);
  if (!value || !value->is_sequence()) return out;
  for (std::size_t i = 0; i < value->items.size(); ++i) {
    const auto& item = value->items[i];
    if (!item->is_scalar()) continue;  // string_list reported it
    std::string error;
    if (auto normalised = check(item->value, error)) {
      out.push_back(*normalised);
    } else {
      m_diagnostics.error(item->mark, fmt::format("{}[{}]", key_path(key), i),
                          fmt::format("{} {}", util::printable(item->value), error));
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> MapReader::string_map(std::string_view key) {
  std::vector<std::pair<std::string, std::string>> out;
  auto value = node(key);
  if (!value || value->is_null()) return out;
  std::string path = key_path(key);
  if (!value->is_map()) {
    m_diagnostics.error(value->mark, path, "expected a map, got " + value->describe());
    return out;
  }
  for (const auto& [k, v] : value->entries) {
    std::string entry_path = join_key_path(path, k->value);
    if (v->is_null()) {
      out.emplace_back(k->value, "");
    } else if (auto text = as_string(*v, entry_path, m_diagnostics)) {
      out.emplace_back(k->value, *text);
    }
  }
  return out;
}

void MapReader::accept(std::initializer_list<std::string_view> keys) {
  for (auto key : keys) declare(key);
}

void MapReader::reject(std::string_view key, const std::string& message) {
  declare(key);
  if (has(key)) m_diagnostics.error(key_mark(key), key_path(key), message);
}

void MapReader::ignore_with_warning(std::string_view key, const std::string& message) {
  declare(key);
  if (has(key)) m_diagnostics.warning(key_mark(key), key_path(key), message);
}

void MapReader::finish() {
  if (!m_map) return;
  for (const auto& [k, v] : m_map->entries) {
    bool known = false;
    for (const auto& d : m_declared) {
      if (d == k->value) {
        known = true;
        break;
      }
    }
    if (!known) {
      m_diagnostics.error(k->mark, key_path(k->value),
                          fmt::format("unknown key '{}'{}", k->value,
                                      util::did_you_mean_suffix(k->value, m_declared)));
    }
  }
}

}  // namespace amlrun::spec
