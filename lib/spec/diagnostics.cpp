#include "lib/spec/diagnostics.hpp"

#include <fmt/format.h>
#include <algorithm>

namespace amlrun::spec {

std::string Source::line(int number) const {
  if (number < 1) return "";
  std::size_t start = 0;
  for (int i = 1; i < number; ++i) {
    start = text.find('\n', start);
    if (start == std::string::npos) return "";
    ++start;
  }
  std::size_t end = text.find('\n', start);
  std::string out = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
  if (!out.empty() && out.back() == '\r') out.pop_back();
  return out;
}

void Diagnostics::error(const Mark& mark, std::string key_path, std::string message) {
  m_items.push_back({Diagnostic::Severity::error, mark, std::move(key_path), std::move(message)});
}

void Diagnostics::warning(const Mark& mark, std::string key_path, std::string message) {
  m_items.push_back({Diagnostic::Severity::warning, mark, std::move(key_path), std::move(message)});
}

bool Diagnostics::has_errors() const {
  return error_count() > 0;
}

std::size_t Diagnostics::error_count() const {
  std::size_t count = 0;
  for (const auto& item : m_items) {
    if (item.severity == Diagnostic::Severity::error) ++count;
  }
  return count;
}

std::vector<Diagnostic> Diagnostics::warnings() const {
  std::vector<Diagnostic> out;
  for (const auto& item : m_items) {
    if (item.severity == Diagnostic::Severity::warning) out.push_back(item);
  }
  return out;
}

std::vector<Diagnostic> Diagnostics::errors_in_file_order() const {
  std::vector<Diagnostic> errors;
  for (const auto& d : m_items) {
    if (d.severity == Diagnostic::Severity::error) errors.push_back(d);
  }
  // A job can pull in a second file (an environment file): each file's
  // errors stay together.
  std::vector<const Source*> sources;
  if (m_primary) sources.push_back(m_primary.get());
  auto source_order = [&](const Diagnostic& d) {
    auto at = std::find(sources.begin(), sources.end(), d.mark.source.get());
    return static_cast<std::size_t>(at - sources.begin());
  };
  for (const auto& d : errors) {
    if (std::find(sources.begin(), sources.end(), d.mark.source.get()) == sources.end()) {
      sources.push_back(d.mark.source.get());
    }
  }
  std::stable_sort(errors.begin(), errors.end(), [&](const Diagnostic& a, const Diagnostic& b) {
    bool a_override = a.mark.source && a.mark.source->is_override;
    bool b_override = b.mark.source && b.mark.source->is_override;
    if (a_override != b_override) return b_override;
    if (a.mark.source != b.mark.source && !a_override) return source_order(a) < source_order(b);
    if (a.mark.line != b.mark.line) return a.mark.line < b.mark.line;
    return a.mark.column < b.mark.column;
  });
  return errors;
}

// Control characters in a quoted source line would garble the terminal.
static std::string visible_line(const std::string& line) {
  std::string out;
  for (unsigned char c : line) {
    if (c == '\t')
      out += ' ';
    else if (c < 0x20 || c == 0x7f)
      out += '?';
    else
      out.push_back(static_cast<char>(c));
  }
  return out;
}

std::string format_diagnostic(const Diagnostic& d) {
  std::string out;
  const Source* source = d.mark.source.get();
  // An override (--set) has no line of its own; nor has a whole-file problem.
  if (source && d.mark.line > 0 && !source->is_override) {
    out = fmt::format("{}:{}:{}: ", source->name, d.mark.line, d.mark.column);
  } else if (source) {
    out = fmt::format("{}: ", source->name);
  }
  if (d.severity == Diagnostic::Severity::warning) out += "warning: ";
  if (!d.key_path.empty()) out += d.key_path + ": ";
  out += d.message;
  if (source && !source->is_override && d.mark.line > 0) {
    std::string line = source->line(d.mark.line);
    if (!line.empty() && line.size() <= 200) {
      std::string gutter = fmt::format("{:>5} | ", d.mark.line);
      out += "\n" + gutter + visible_line(line);
      out += "\n" + std::string(gutter.size() - 2, ' ') + "| " +
             std::string(static_cast<std::size_t>(std::max(0, d.mark.column - 1)), ' ') + "^";
    }
  }
  return out;
}

static std::string format_all(const std::string& file, const std::vector<Diagnostic>& errors,
                              const std::vector<Diagnostic>& warnings) {
  std::string out;
  for (const auto& d : errors) {
    out += format_diagnostic(d);
    out += '\n';
  }
  for (const auto& d : warnings) {
    out += format_diagnostic(d);
    out += '\n';
  }
  if (errors.size() == 1) {
    out += fmt::format("1 error in {}", file);
  } else {
    out += fmt::format("{} errors in {}", errors.size(), file);
  }
  return out;
}

SpecError::SpecError(const std::string& file_name, std::vector<Diagnostic> errors,
                     std::vector<Diagnostic> warnings)
    : util::InputError(format_all(file_name, errors, warnings)),
      m_errors(std::move(errors)),
      m_warnings(std::move(warnings)) {}

}  // namespace amlrun::spec
