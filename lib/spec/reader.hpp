#pragma once
// Typed, position-aware access to one YAML map of a job file. Every accessor
// declares its key, so finish() can report the keys nobody asked for as
// "unknown key ... (did you mean ...?)" against exactly the keys this map has.
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/spec/diagnostics.hpp"
#include "lib/spec/yaml_tree.hpp"

namespace amlrun::spec {

// "a.b" joined with "c" → "a.b.c"; "" joined with "c" → "c".
std::string join_key_path(std::string_view base, std::string_view key);

class MapReader {
 public:
  // `map` may be null (absent section): every accessor then returns nothing.
  // A non-map node is reported once as a type error.
  MapReader(NodePtr map, std::string path, Diagnostics& diagnostics);

  const std::string& path() const { return m_path; }
  bool present() const { return m_map != nullptr; }
  bool has(std::string_view key) const;
  Mark mark() const;

  // The raw node of a key (declaring it); nullptr when absent.
  NodePtr node(std::string_view key);
  Mark key_mark(std::string_view key) const;
  // Where a key's value is; for a null value in the file, the key, since
  // yaml-cpp places an empty value at the start of the next line.
  Mark value_mark(std::string_view key) const;
  std::string key_path(std::string_view key) const { return join_key_path(m_path, key); }

  // Scalars of any kind as text; a null value counts as absent.
  std::optional<std::string> string(std::string_view key);
  std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max);
  std::optional<double> number(std::string_view key, double min, double max);
  std::optional<bool> boolean(std::string_view key);
  // A value from a fixed set; anything else is an error with "did you mean".
  std::optional<std::string> choice(std::string_view key, const std::vector<std::string>& allowed);
  std::vector<std::string> string_list(std::string_view key);
  // A list whose entries are checked (and may be rewritten) by `check`,
  // which returns nullopt and sets its error text for a bad entry.
  std::vector<std::string> checked_list(
      std::string_view key,
      const std::function<std::optional<std::string>(std::string_view, std::string&)>& check);
  // A map of scalar values (tags, environment variables), in file order.
  std::vector<std::pair<std::string, std::string>> string_map(std::string_view key);

  // Declares keys handled elsewhere (e.g. "$schema", which is accepted and ignored).
  void accept(std::initializer_list<std::string_view> keys);
  // A key that cannot work outside Azure ML: an error with `message` if present.
  void reject(std::string_view key, const std::string& message);
  // A key amlrun accepts but does not act on: a warning with `message` if present.
  void ignore_with_warning(std::string_view key, const std::string& message);

  // Reports every key that was never declared, with a suggestion.
  void finish();

 private:
  void declare(std::string_view key);
  NodePtr value_of(std::string_view key) const;

  NodePtr m_map;
  std::string m_path;
  Diagnostics& m_diagnostics;
  std::vector<std::string> m_declared;
};

// Free-standing conversions used by the readers and by list items.
std::optional<std::int64_t> as_integer(const Node& node, const std::string& path, std::int64_t min,
                                       std::int64_t max, Diagnostics& diagnostics);
std::optional<std::string> as_string(const Node& node, const std::string& path,
                                     Diagnostics& diagnostics);

}  // namespace amlrun::spec
