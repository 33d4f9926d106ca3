#pragma once
// Errors and warnings about a job file: each names file:line:column and the
// key path, shows the offending line with a caret, and all of a file's errors
// are collected before anything stops (mold's "collect, then checkpoint").
#include <memory>
#include <string>
#include <vector>

#include "lib/util/error.hpp"

namespace amlrun::spec {

// Where YAML text came from: a file (display name as the user typed it) or a
// command-line override ("--set resources.instance_count=2").
struct Source {
  std::string name;
  std::string text;
  bool is_override = false;
  // The 1-based line of text, without its newline; "" when out of range.
  std::string line(int number) const;
};

struct Mark {
  std::shared_ptr<const Source> source;
  int line = 0;    // 1-based; 0 when unknown
  int column = 0;  // 1-based
};

struct Diagnostic {
  enum class Severity { error, warning };
  Severity severity = Severity::error;
  Mark mark;
  std::string key_path;  // "distribution.process_count_per_instance", "" for the document
  std::string message;
};

class Diagnostics {
 public:
  void error(const Mark& mark, std::string key_path, std::string message);
  void warning(const Mark& mark, std::string key_path, std::string message);
  bool has_errors() const;
  std::size_t error_count() const;
  const std::vector<Diagnostic>& all() const { return m_items; }
  std::vector<Diagnostic> warnings() const;
  // The errors in reading order: by position in the file, overrides last;
  // with several files (a job and its environment file), the job file's
  // first, then each other file's in the order they were reported on.
  std::vector<Diagnostic> errors_in_file_order() const;
  // The file whose errors come first (the job file).
  void set_primary_source(std::shared_ptr<const Source> source) { m_primary = std::move(source); }

 private:
  std::vector<Diagnostic> m_items;
  std::shared_ptr<const Source> m_primary;
};

// "job.yml:12:5: distribution.proces_count: unknown key ..." followed by the
// source line and a caret under the column.
std::string format_diagnostic(const Diagnostic& diagnostic);

// Thrown once a file's errors are collected; what() holds every error,
// formatted, and a closing count line.
class SpecError : public util::InputError {
 public:
  // Warnings are shown too: a user fixing errors wants the whole picture.
  SpecError(const std::string& file_name, std::vector<Diagnostic> errors,
            std::vector<Diagnostic> warnings = {});
  const std::vector<Diagnostic>& errors() const { return m_errors; }
  const std::vector<Diagnostic>& warnings() const { return m_warnings; }

 private:
  std::vector<Diagnostic> m_errors;
  std::vector<Diagnostic> m_warnings;
};

}  // namespace amlrun::spec
