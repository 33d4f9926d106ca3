#include "lib/spec/overrides.hpp"

#include <fmt/format.h>

#include "lib/util/strings.hpp"
#include "lib/util/utf8.hpp"

namespace amlrun::spec {

namespace {

NodePtr make_scalar(const Mark& mark, const std::string& text) {
  auto node = std::make_shared<Node>();
  node->kind = Node::Kind::scalar;
  node->mark = mark;
  node->value = text;
  node->quoted = true;
  return node;
}

NodePtr make_map(const Mark& mark) {
  auto node = std::make_shared<Node>();
  node->kind = Node::Kind::map;
  node->mark = mark;
  return node;
}

bool is_index(const std::string& text) {
  return !text.empty() && text.size() < 7 &&
         text.find_first_not_of("0123456789") == std::string::npos;
}

// Read as YAML, a value would lose text without a word: "a #b" becomes "a"
// (a comment), a newline folds into a space, and "x\n#SBATCH y" keeps only
// its first line. So a value is taken as written, except for the forms that
// can only mean YAML: one whole quoted string ("a b", 'it''s') and one whole
// flow list or map ([a, b], {k: v}). A value taken as written is a plain
// scalar, so 2 and true still fill number and boolean fields; an empty value
// is null, like a key with nothing after it in a file.
NodePtr parse_value(const std::shared_ptr<Source>& source, const Mark& mark,
                    Diagnostics& diagnostics) {
  const std::string& text = source->text;
  if (text.empty()) {
    auto null = std::make_shared<Node>();
    null->mark = mark;
    return null;
  }
  if (auto bad = util::first_invalid_utf8(text); bad != std::string_view::npos) {
    diagnostics.error(
        mark, "",
        fmt::format("the value is not valid UTF-8 (at byte {}); give UTF-8 text", bad + 1));
    return nullptr;
  }
  bool whole_quoted =
      (text[0] == '"' || text[0] == '\'') && find_closing_quote(text, 0) == text.size() - 1;
  bool whole_flow =
      (text.front() == '[' && text.back() == ']') || (text.front() == '{' && text.back() == '}');
  if (whole_quoted || whole_flow) return parse_yaml(source, diagnostics);
  auto node = make_scalar(mark, text);
  node->quoted = false;
  return node;
}

}  // namespace

void apply_override(NodePtr& root, const std::string& assignment, Diagnostics& diagnostics) {
  auto source = std::make_shared<Source>();
  source->name = "--set " + util::printable(assignment, 200).substr(1);
  source->name.pop_back();  // printable() quotes; keep the escaping, drop the quotes
  source->is_override = true;
  Mark mark{source, 1, 1};

  std::size_t equals = assignment.find('=');
  if (equals == std::string::npos) {
    diagnostics.error(mark, "", "expected key.path=value (for example resources.instance_count=2)");
    return;
  }
  std::string key_path = assignment.substr(0, equals);
  std::vector<std::string> segments = util::split(key_path, '.');
  for (const auto& segment : segments) {
    if (segment.empty()) {
      diagnostics.error(
          mark, "", fmt::format("the key path {} has an empty part", util::printable(key_path)));
      return;
    }
  }
  source->text = assignment.substr(equals + 1);
  NodePtr value = parse_value(source, mark, diagnostics);
  if (!value) return;

  if (!root || root->is_null()) root = make_map(mark);
  // Copy-on-write from the root down to the parent of the changed entry.
  root = std::make_shared<Node>(*root);
  Node* current = root.get();
  std::string walked;
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const std::string& segment = segments[i];
    bool last = i + 1 == segments.size();
    std::string here = walked;
    if (!here.empty()) here += '.';
    here += segment;
    if (current->is_sequence()) {
      if (!is_index(segment) || std::stoul(segment) > current->items.size()) {
        diagnostics.error(mark, here,
                          fmt::format("{} is a list of {} entries; use an index from 0 to {}",
                                      walked.empty() ? "the document" : walked,
                                      current->items.size(), current->items.size()));
        return;
      }
      std::size_t index = std::stoul(segment);
      if (index == current->items.size()) {  // one past the end appends
        current->items.push_back(last ? value : make_map(mark));
        if (last) return;
      } else if (last) {
        current->items[index] = value;
        return;
      } else {
        current->items[index] = std::make_shared<Node>(*current->items[index]);
      }
      current = current->items[index].get();
    } else if (current->is_map()) {
      std::pair<NodePtr, NodePtr>* entry = nullptr;
      for (auto& e : current->entries) {
        if (e.first->value == segment) entry = &e;
      }
      if (!entry) {
        current->entries.emplace_back(make_scalar(mark, segment), last ? value : make_map(mark));
        if (last) return;
        entry = &current->entries.back();
      } else if (last) {
        entry->second = value;
        return;
      } else if (entry->second->is_null()) {
        entry->second = make_map(mark);
      } else {
        entry->second = std::make_shared<Node>(*entry->second);
      }
      current = entry->second.get();
    } else {
      diagnostics.error(mark, here,
                        fmt::format("cannot set a key inside {}: it is {}, not a map", walked,
                                    current->describe()));
      return;
    }
    walked = here;
  }
}

}  // namespace amlrun::spec
