#pragma once
// Ignore rules with git's semantics (gitignore(5)), so a user's existing
// .gitignore means exactly what it means to git. Written from the documented
// behaviour and checked against real `git ls-files` in the unit tests.
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace amlrun::snapshot {

// Shell-style glob match with git's rules. With `pathname` set (patterns that
// contain a slash), '*', '?' and '[...]' never match '/', and a "**" segment
// ("**/x", "x/**", "x/**/y") matches any number of directories. Without it
// '*' matches anything. Classes: [a-z], [!x], [^x], [[:alpha:]] etc.; '\'
// escapes the next character. A malformed class never matches.
bool glob_match(std::string_view pattern, std::string_view text, bool pathname);

// The patterns of one ignore file. Paths are relative to the snapshot root,
// '/'-separated, without a trailing slash.
class IgnoreFile {
 public:
  // `base` is the directory holding the file, relative to the root ("" for
  // the root itself); its patterns apply only below it.
  IgnoreFile(std::string base, std::string_view text);

  // The verdict of the last pattern of this file that matches `path`: true
  // (ignored), false (re-included by a '!' pattern), or nullopt (no pattern
  // matches, so the decision falls to the files of parent directories).
  std::optional<bool> match(std::string_view path, bool is_dir) const;

  std::size_t pattern_count() const { return m_patterns.size(); }

 private:
  struct Pattern {
    std::string glob;             // without '!', trailing '/' and leading '/'
    bool negated = false;         // "!pattern": re-include
    bool directory_only = false;  // "pattern/": matches directories only
    bool basename_only = false;   // no slash in it: matches a name at any depth
  };
  std::string m_base;  // "" or "dir/sub/" (with the trailing slash)
  std::vector<Pattern> m_patterns;
};

// The ignore files in effect in one directory during a walk: a chain from that
// directory's own file (if any) up to the root's. Shared between siblings, so
// each file is parsed once.
class IgnoreChain {
 public:
  IgnoreChain() = default;
  // The chain for a subdirectory that has its own ignore file.
  IgnoreChain(std::shared_ptr<const IgnoreChain> parent, IgnoreFile file);

  // git's precedence: the deepest file decides first, and within a file the
  // last matching line wins. Parent directories are not consulted here: the
  // walk never descends into an ignored directory, which is also why a file
  // below an ignored directory cannot be re-included (as in git).
  bool is_ignored(std::string_view path, bool is_dir) const;

 private:
  std::shared_ptr<const IgnoreChain> m_parent;
  std::optional<IgnoreFile> m_file;
};

}  // namespace amlrun::snapshot
