#pragma once
// A YAML document as a tree that remembers where every node came from, built
// from yaml-cpp's event parser so that hostile input is refused with a clear
// message instead of a crash or hang: nesting depth, alias cycles, alias
// bombs (expansion is counted, never materialised), duplicate keys, NUL
// bytes, invalid UTF-8 and more than one document.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lib/spec/diagnostics.hpp"

namespace amlrun::spec {

struct Node;
using NodePtr = std::shared_ptr<Node>;

struct Node {
  enum class Kind { null, scalar, sequence, map };
  Kind kind = Kind::null;
  Mark mark;
  std::string value;    // scalars: the text as written (after YAML unescaping)
  bool quoted = false;  // scalars: written in quotes or as a block, so never a number/bool/null
  std::vector<NodePtr> items;                        // sequences
  std::vector<std::pair<NodePtr, NodePtr>> entries;  // maps, in file order; keys are scalars

  bool is_null() const { return kind == Kind::null; }
  bool is_scalar() const { return kind == Kind::scalar; }
  bool is_sequence() const { return kind == Kind::sequence; }
  bool is_map() const { return kind == Kind::map; }
  // Map lookup by key text; nullptr when absent.
  NodePtr find(std::string_view key) const;
  // Position of a map key (the key itself, not its value); the map's own
  // position when the key is absent.
  Mark key_mark(std::string_view key) const;
  // "a string", "a number", "a map", ... for messages.
  std::string describe() const;
};

struct ParseLimits {
  int max_depth = 64;                   // job files nest a handful of levels
  std::uint64_t max_expanded = 100000;  // nodes after expanding every alias
};

// Where the YAML quoted scalar whose opening quote (' or ") is at
// text[open] ends: the offset of its closing quote, or npos if it has none.
std::size_t find_closing_quote(std::string_view text, std::size_t open);

// Parses one YAML document. Problems are added to `diagnostics` (with the
// source's name and positions); the result is nullptr when the text could not
// be parsed at all. An empty document yields a null node.
NodePtr parse_yaml(const std::shared_ptr<const Source>& source, Diagnostics& diagnostics,
                   const ParseLimits& limits = {});

}  // namespace amlrun::spec
