#include "lib/spec/yaml_tree.hpp"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <fmt/format.h>
#include <cstdlib>
#include <map>
#include <optional>
#include <sstream>
#include <unordered_map>

#include "lib/util/utf8.hpp"

namespace amlrun::spec {

NodePtr Node::find(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k->value == key) return v;
  }
  return nullptr;
}

Mark Node::key_mark(std::string_view key) const {
  for (const auto& [k, v] : entries) {
    if (k->value == key) return k->mark;
  }
  return mark;
}

std::string Node::describe() const {
  switch (kind) {
    case Kind::null:
      return "nothing (null)";
    case Kind::sequence:
      return "a list";
    case Kind::map:
      return "a map";
    case Kind::scalar:
      break;
  }
  return "'" + value + "'";
}

namespace {

// Thrown from inside the event handler to abandon a document that must not
// be parsed any further (too deep, alias cycle or bomb).
struct Fatal {
  Mark mark;
  std::string message;
};

constexpr std::string_view k_utf8_bom = "\xEF\xBB\xBF";
constexpr std::size_t k_max_key_length = 1024;  // YAML 1.2, "simple keys"
constexpr const char* k_tab_message = "a tab is used for indentation; YAML indents with spaces";

Mark make_mark(const std::shared_ptr<const Source>& source, const YAML::Mark& mark) {
  return Mark{source, mark.line + 1, mark.column + 1};
}

// Position (1-based line, column in characters) of a byte offset.
Mark mark_of_offset(const std::shared_ptr<const Source>& source, std::size_t offset) {
  int line = 1;
  int column = 1;
  for (std::size_t i = 0; i < offset && i < source->text.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(source->text[i]);
    if (c == '\n') {
      ++line;
      column = 1;
    } else if ((c & 0xC0) != 0x80) {
      ++column;
    }
  }
  return Mark{source, line, column};
}

class TreeBuilder : public YAML::EventHandler {
 public:
  TreeBuilder(std::shared_ptr<const Source> source, Diagnostics& diagnostics,
              const ParseLimits& limits)
      : m_source(std::move(source)), m_diagnostics(diagnostics), m_limits(limits) {}

  NodePtr root() const { return m_root; }

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}

  void OnAnchor(const YAML::Mark&, const std::string& name) override { m_pending_anchor = name; }

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto node = std::make_shared<Node>();
    node->kind = Node::Kind::null;
    node->mark = make_mark(m_source, mark);
    complete(node, anchor, 1);
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    auto node = std::make_shared<Node>();
    node->kind = Node::Kind::scalar;
    node->mark = make_mark(m_source, mark);
    node->value = value;
    // yaml-cpp tags plain scalars "?" and quoted/block scalars "!"; an
    // explicit tag such as !!str also makes the scalar a string.
    node->quoted = tag != "?";
    if (node->quoted) check_closed_quote(mark);
    complete(node, anchor, 1);
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    m_saw_alias = true;
    auto found = m_anchors.find(anchor);
    Mark here = make_mark(m_source, mark);
    if (found == m_anchors.end()) {
      throw Fatal{here, "alias refers to an unknown anchor"};
    }
    Anchored& target = found->second;
    if (!target.complete) {
      throw Fatal{here, fmt::format("alias '*{}' refers to a node that contains it (a cycle)",
                                    target.name)};
    }
    // A shallow copy carries the alias's own position; children stay shared,
    // so expansion is only ever counted, never performed.
    auto node = std::make_shared<Node>(*target.node);
    node->mark = here;
    complete(node, 0, target.expanded);
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(mark, anchor, Node::Kind::sequence);
  }
  void OnSequenceEnd() override { close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    open(mark, anchor, Node::Kind::map);
  }
  void OnMapEnd() override {
    finish_map(*m_stack.back().node);
    close();
  }

 private:
  struct Frame {
    NodePtr node;
    YAML::anchor_t anchor = 0;
    std::uint64_t expanded = 1;
    NodePtr pending_key;  // maps: the key waiting for its value
  };
  struct Anchored {
    NodePtr node;
    std::string name;
    std::uint64_t expanded = 1;
    bool complete = false;
  };

  void remember_anchor(YAML::anchor_t anchor, const NodePtr& node, bool complete,
                       std::uint64_t expanded) {
    if (anchor == 0) return;
    Anchored& entry = m_anchors[anchor];
    entry.node = node;
    if (entry.name.empty()) entry.name = m_pending_anchor;
    entry.complete = complete;
    entry.expanded = expanded;
  }

  void open(const YAML::Mark& mark, YAML::anchor_t anchor, Node::Kind kind) {
    Mark here = make_mark(m_source, mark);
    if (static_cast<int>(m_stack.size()) >= m_limits.max_depth) {
      throw Fatal{here, fmt::format("nesting is deeper than {} levels; a job file needs only a few",
                                    m_limits.max_depth)};
    }
    auto node = std::make_shared<Node>();
    node->kind = kind;
    node->mark = here;
    remember_anchor(anchor, node, /*complete=*/false, 1);
    m_pending_anchor.clear();
    m_stack.push_back(Frame{node, anchor, 1, nullptr});
  }

  void close() {
    Frame frame = std::move(m_stack.back());
    m_stack.pop_back();
    if (frame.anchor != 0) {
      Anchored& entry = m_anchors[frame.anchor];
      entry.complete = true;
      entry.expanded = frame.expanded;
    }
    attach(frame.node, frame.expanded);
  }

  void complete(const NodePtr& node, YAML::anchor_t anchor, std::uint64_t expanded) {
    remember_anchor(anchor, node, /*complete=*/true, expanded);
    m_pending_anchor.clear();
    attach(node, expanded);
  }

  void attach(const NodePtr& node, std::uint64_t expanded) {
    if (m_stack.empty()) {
      m_root = node;
      check_expansion(node->mark, expanded);
      return;
    }
    Frame& parent = m_stack.back();
    parent.expanded = saturating_add(parent.expanded, expanded);
    check_expansion(node->mark, parent.expanded);
    if (parent.node->kind == Node::Kind::sequence) {
      parent.node->items.push_back(node);
      return;
    }
    if (!parent.pending_key) {
      if (node->kind != Node::Kind::scalar) {
        m_diagnostics.error(node->mark, "",
                            "a key must be a plain string, not " + node->describe());
        auto placeholder = std::make_shared<Node>();
        placeholder->kind = Node::Kind::scalar;
        placeholder->mark = node->mark;
        placeholder->value = "?";
        parent.pending_key = placeholder;
        return;
      }
      parent.pending_key = node;
      return;
    }
    parent.node->entries.emplace_back(std::move(parent.pending_key), node);
    parent.pending_key = nullptr;
  }

  void check_expansion(const Mark& mark, std::uint64_t expanded) {
    if (expanded <= m_limits.max_expanded) return;
    if (m_saw_alias) {
      throw Fatal{mark, fmt::format("the document expands to more than {} nodes (are aliases "
                                    "multiplying each other?); refusing to expand it",
                                    m_limits.max_expanded)};
    }
    throw Fatal{mark, fmt::format("the document holds more than {} values (keys, list entries "
                                  "and scalars); a job file needs far fewer",
                                  m_limits.max_expanded)};
  }

  // yaml-cpp ends a quoted scalar that is never closed at the end of the
  // file without complaint, so `command: "echo hi` would silently swallow
  // every line after it. A quoted scalar's mark is its opening quote: look
  // for the closing one.
  void check_closed_quote(const YAML::Mark& mark) {
    const std::string& text = m_source->text;
    // yaml-cpp's positions do not count a UTF-8 byte order mark.
    std::size_t start = static_cast<std::size_t>(mark.pos) + (text.starts_with(k_utf8_bom) ? 3 : 0);
    if (start >= text.size()) return;
    char quote = text[start];
    if (quote != '"' && quote != '\'') return;  // a block scalar or an explicit tag
    if (find_closing_quote(text, start) != std::string_view::npos) return;
    Mark here = make_mark(m_source, mark);
    throw Fatal{here, fmt::format("unterminated string starting at {}:{}: the closing {} is "
                                  "missing, so the rest of the file would be read as part of it",
                                  here.line, here.column, quote)};
  }

  static std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
  }

  // Applies YAML merge keys ("<<: *base") and reports duplicate keys, naming
  // both lines.
  void finish_map(Node& map) {
    std::vector<std::pair<NodePtr, NodePtr>> explicit_entries;
    std::vector<NodePtr> merges;
    for (auto& entry : map.entries) {
      if (entry.first->value == "<<" && !entry.first->quoted) {
        merges.push_back(entry.second);
      } else {
        explicit_entries.push_back(entry);
      }
    }
    std::map<std::string, NodePtr> first_seen;
    for (const auto& [key, value] : explicit_entries) {
      auto [it, inserted] = first_seen.emplace(key->value, key);
      if (!inserted) {
        m_diagnostics.error(key->mark, "",
                            fmt::format("duplicate key '{}' (first defined at line {})", key->value,
                                        it->second->mark.line));
      }
    }
    if (merges.empty()) return;
    map.entries = explicit_entries;
    for (const auto& merge : merges) {
      std::vector<NodePtr> sources;
      if (merge->is_map()) {
        sources.push_back(merge);
      } else if (merge->is_sequence()) {
        sources = merge->items;
      }
      for (const auto& source : sources) {
        if (!source->is_map()) {
          m_diagnostics.error(merge->mark, "", "a merge key '<<' takes a map or a list of maps");
          continue;
        }
        for (const auto& entry : source->entries) {
          if (first_seen.emplace(entry.first->value, entry.first).second) {
            map.entries.push_back(entry);
          }
        }
      }
    }
  }

  std::shared_ptr<const Source> m_source;
  Diagnostics& m_diagnostics;
  ParseLimits m_limits;
  std::vector<Frame> m_stack;
  std::unordered_map<YAML::anchor_t, Anchored> m_anchors;
  std::string m_pending_anchor;
  NodePtr m_root;
  bool m_saw_alias = false;
};

// Counts further documents without keeping them.
class DiscardHandler : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { start = mark; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
  YAML::Mark start;
};

// yaml-cpp's messages are terse; these say what to do.
std::string explain_parser_message(const std::string& message) {
  if (message == "end of map not found") return "a map is not closed (missing '}'?)";
  if (message == "end of sequence not found") return "a list is not closed (missing ']'?)";
  if (message == "end of sequence flow not found") return "a list is not closed (missing ']'?)";
  if (message == "end of map flow not found") return "a map is not closed (missing '}'?)";
  if (message == "illegal map value") {
    return "unexpected ':' (a value containing ': ' must be quoted)";
  }
  if (message == "the referenced anchor is not defined") return message;
  if (message.rfind("invalid unicode: ", 0) == 0) {
    unsigned long code = std::strtoul(message.c_str() + 17, nullptr, 10);
    if (code >= 0xD800 && code <= 0xDFFF) {
      return fmt::format(
          "\\u{:04X} is half of a UTF-16 surrogate pair, which YAML does not "
          "accept; write the character itself or one \\U escape (8 hex digits)",
          code);
    }
    return fmt::format("invalid unicode escape (code point {})", code);
  }
  if (message == "illegal tab when looking for indentation") return k_tab_message;
  return "invalid YAML: " + message;
}

// yaml-cpp reports where it gave up, which is often after the real mistake;
// the text around that place tells what the mistake was.
std::string explain_parser_error(const Source& source, const YAML::Mark& mark,
                                 const std::string& message, Mark& where) {
  const std::string& text = source.text;
  std::size_t offset = static_cast<std::size_t>(mark.pos) + (text.starts_with(k_utf8_bom) ? 3 : 0);
  if (mark.is_null() || offset > text.size()) return explain_parser_message(message);
  std::size_t line_start = text.rfind('\n', offset == 0 ? 0 : offset - 1);
  line_start = line_start == std::string::npos || line_start >= offset ? 0 : line_start + 1;
  std::string_view before(text.data() + line_start, offset - line_start);
  std::size_t indent_end = before.find_first_not_of(" \t");
  std::string_view indent =
      before.substr(0, indent_end == std::string_view::npos ? before.size() : indent_end);
  // A tab in the indentation confuses yaml-cpp into many different errors.
  if (auto tab = indent.find('\t'); tab != std::string_view::npos) {
    where.column = static_cast<int>(tab) + 1;
    return k_tab_message;
  }
  if (message == "illegal map value") {
    // YAML lets a key without '?' be at most 1024 characters long; a longer
    // one is not a key, so its ':' is "unexpected".
    std::string_view key = before.substr(indent.size());
    while (key.starts_with("- ")) {
      std::size_t next = key.find_first_not_of(' ', 1);
      key = next == std::string_view::npos ? std::string_view() : key.substr(next);
    }
    if (key.size() > k_max_key_length) {
      where.column = static_cast<int>(before.size() - key.size()) + 1;
      return fmt::format(
          "this key is {} characters long; YAML allows at most {} in a key (job "
          "file keys are short names)",
          key.size(), k_max_key_length);
    }
  }
  bool not_closed = message.starts_with("end of ") && message.ends_with(" not found");
  std::size_t last = before.find_last_not_of(" \t");
  if (not_closed && last != std::string_view::npos && last >= indent.size()) {
    char previous = before[last];
    if (previous == '"' || previous == '\'') {
      return "unexpected text after the closing quote (a quoted value ends at its closing "
             "quote; quote the whole value)";
    }
    if (previous == ']' || previous == '}') {
      return fmt::format("unexpected text after the closing '{}'", previous);
    }
  }
  return explain_parser_message(message);
}

// Editors on Windows save "Unicode" as UTF-16: every other byte is NUL, and
// "contains a NUL byte" would not say what to do. Known by its byte order
// mark, or by the NUL pattern of ASCII text.
std::optional<std::string> utf16_or_32(std::string_view text) {
  if (text.starts_with(std::string_view("\xFF\xFE\0\0", 4)) ||
      text.starts_with(std::string_view("\0\0\xFE\xFF", 4))) {
    return "UTF-32";
  }
  if (text.starts_with("\xFF\xFE") || text.starts_with("\xFE\xFF")) return "UTF-16";
  if (text.size() >= 4) {
    bool little = text[0] != '\0' && text[1] == '\0' && text[2] != '\0' && text[3] == '\0';
    bool big = text[0] == '\0' && text[1] != '\0' && text[2] == '\0' && text[3] != '\0';
    if (little || big) return "UTF-16";
  }
  return std::nullopt;
}

}  // namespace

std::size_t find_closing_quote(std::string_view text, std::size_t open) {
  char quote = text[open];
  for (std::size_t i = open + 1; i < text.size(); ++i) {
    if (quote == '"' && text[i] == '\\') {
      ++i;  // an escape; \" does not close
    } else if (text[i] == quote) {
      if (quote == '"' || i + 1 == text.size() || text[i + 1] != '\'') return i;
      ++i;  // '' is a quote inside a single-quoted string
    }
  }
  return std::string_view::npos;
}

NodePtr parse_yaml(const std::shared_ptr<const Source>& source, Diagnostics& diagnostics,
                   const ParseLimits& limits) {
  const std::string& text = source->text;
  if (auto encoding = utf16_or_32(text)) {
    // No line or column: the line would print as garbage.
    diagnostics.error(Mark{source, 0, 0}, "",
                      fmt::format("is {} text; save the file as UTF-8", *encoding));
    return nullptr;
  }
  if (auto nul = text.find('\0'); nul != std::string::npos) {
    diagnostics.error(mark_of_offset(source, nul), "",
                      "contains a NUL byte; a job file must be text");
    return nullptr;
  }
  if (auto bad = util::first_invalid_utf8(text); bad != std::string_view::npos) {
    diagnostics.error(mark_of_offset(source, bad), "",
                      "is not valid UTF-8; save the file as UTF-8 text");
    return nullptr;
  }
  std::istringstream stream(text);
  try {
    YAML::Parser parser(stream);
    TreeBuilder builder(source, diagnostics, limits);
    if (!parser.HandleNextDocument(builder)) {
      auto empty = std::make_shared<Node>();
      empty->mark = Mark{source, 1, 1};
      return empty;
    }
    NodePtr root = builder.root();
    if (!root) {
      root = std::make_shared<Node>();
      root->mark = Mark{source, 1, 1};
    }
    DiscardHandler rest;
    if (parser.HandleNextDocument(rest)) {
      diagnostics.error(make_mark(source, rest.start), "",
                        "a second YAML document starts here; a job file holds exactly one");
    }
    return root;
  } catch (const Fatal& fatal) {
    diagnostics.error(fatal.mark, "", fatal.message);
  } catch (const YAML::Exception& error) {
    Mark mark = error.mark.is_null() ? Mark{source, 0, 0} : make_mark(source, error.mark);
    std::string explained = explain_parser_error(*source, error.mark, error.msg, mark);
    diagnostics.error(mark, "", explained);
  }
  return nullptr;
}

}  // namespace amlrun::spec
