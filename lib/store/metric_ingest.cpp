#include "lib/store/metric_ingest.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lib/store/database.hpp"
#include "lib/store/metric_line.hpp"
#include "lib/store/metrics.hpp"
#include "lib/store/run_layout.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/strings.hpp"

namespace amlrun::store {

namespace fs = std::filesystem;

namespace {

constexpr std::int64_t k_no_step = std::numeric_limits<std::int64_t>::min();
// Bytes read per pread; a pass commits (and lets other writers in) after
// about this many points.
constexpr std::size_t k_chunk_bytes = 4 << 20;
constexpr std::int64_t k_points_per_commit = 250000;

// rank_<r>.jsonl → r; -1 for any other name.
int rank_of_file(std::string_view name) {
  constexpr std::string_view prefix = "rank_", suffix = ".jsonl";
  if (name.size() <= prefix.size() + suffix.size() || !name.starts_with(prefix) ||
      !name.ends_with(suffix)) {
    return -1;
  }
  std::string_view digits = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  int rank = -1;
  auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), rank);
  if (error != std::errc() || end != digits.data() + digits.size() || rank < 0 || rank > 999999 ||
      (digits.size() > 1 && digits[0] == '0')) {
    return -1;
  }
  return rank;
}

bool is_blank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

}  // namespace

int metric_source_of_file(std::string_view name) {
  constexpr std::string_view tracking = "mlflow_";
  if (name.starts_with(tracking)) {
    int rank = rank_of_file(name.substr(tracking.size()));
    return rank < 0 ? -1 : k_tracking_source_base + rank;
  }
  return rank_of_file(name);
}

// Arithmetic on what a rank writes: a step is read as a non-negative
// int64 (metric_line.hpp refuses anything larger), and the only sum on it
// is the implicit next step, checked above. Offsets, line numbers and the
// counters grow by at most one per byte of a file, so they stay below the
// file's size (an int64), and per-run sums below the sum of file sizes.
struct MetricIngestor::State {
  struct Series {
    std::int64_t id = 0;
    std::string name;
    std::int64_t count = 0;
    std::int64_t non_finite = 0;
    std::int64_t last_step = 0;
    double last_value = 0;
    double min = std::numeric_limits<double>::quiet_NaN();  // NaN: no finite value yet
    double max = std::numeric_limits<double>::quiet_NaN();
    bool dirty = false;
  };
  struct Source {
    int key = 0;              // metric_source_of_file
    int rank = 0;             // the rank its points count for
    std::int64_t offset = 0;  // bytes consumed: everything before is stored
    std::int64_t line = 0;    // lines consumed
    bool in_long_line = false;
    std::int64_t malformed = 0;
    std::int64_t bad_name = 0;
    std::int64_t backwards = 0;
    std::string first_problem;
    bool dirty = false;
    bool unreadable_reported = false;  // counted once per ingestor, not per pass
    // The rank's last step per series (index into `series`), for "going
    // backwards"; k_no_step before its first point.
    std::vector<std::int64_t> last_steps;
  };

  const RunStore& store;
  std::string run_id;
  fs::path dir;
  std::vector<Series> series;
  std::unordered_map<std::string, std::size_t> series_by_name;
  std::map<int, Source> sources;
  std::unique_ptr<Statement> insert_point;
  std::int64_t points_uncommitted = 0;
  IngestPass pass;
  std::int64_t budget = 0;  // bytes this pass may still read
  MetricLine parsed_line;   // reused: its name keeps its buffer between lines

  State(const RunStore& s, std::string id, fs::path d)
      : store(s), run_id(std::move(id)), dir(std::move(d)) {}

  // Reads where earlier passes stopped; also after a failed pass, whose
  // rolled-back writes the in-memory state no longer matches.
  void load() {
    series.clear();
    series_by_name.clear();
    sources.clear();
    const Database& db = store.database();
    Statement query(db,
                    "SELECT series_id, name, count, non_finite, last_step, last_value, min_value, "
                    "max_value FROM metric_series WHERE run_id = ?1");
    query.bind(1, run_id);
    std::unordered_map<std::int64_t, std::size_t> index_of_id;
    while (query.step()) {
      Series s;
      s.id = query.integer(0);
      s.name = query.text(1);
      s.count = query.integer(2);
      s.non_finite = query.integer(3);
      s.last_step = query.integer(4);
      s.last_value = query.is_null(5) ? std::numeric_limits<double>::quiet_NaN() : query.real(5);
      if (!query.is_null(6)) s.min = query.real(6);
      if (!query.is_null(7)) s.max = query.real(7);
      index_of_id[s.id] = series.size();
      series_by_name[s.name] = series.size();
      series.push_back(std::move(s));
    }
    Statement files(db,
                    "SELECT rank, offset, line, in_long_line, malformed, bad_name, backwards, "
                    "first_problem FROM metric_sources WHERE run_id = ?1");
    files.bind(1, run_id);
    while (files.step()) {
      Source source;
      source.key = static_cast<int>(files.integer(0));
      source.rank = rank_of_source(source.key);
      source.offset = files.integer(1);
      source.line = files.integer(2);
      source.in_long_line = files.integer(3) != 0;
      source.malformed = files.integer(4);
      source.bad_name = files.integer(5);
      source.backwards = files.integer(6);
      source.first_problem = files.text(7);
      sources[source.key] = std::move(source);
    }
    if (series.empty()) return;
    Statement steps(db,
                    "SELECT p.series_id, p.rank, MAX(p.step) FROM metric_points p JOIN "
                    "metric_series s ON s.series_id = p.series_id WHERE s.run_id = ?1 "
                    "GROUP BY p.series_id, p.rank");
    steps.bind(1, run_id);
    while (steps.step()) {
      auto found = sources.find(static_cast<int>(steps.integer(1)));
      if (found == sources.end()) continue;
      auto& last_steps = found->second.last_steps;
      std::size_t index = index_of_id.at(steps.integer(0));
      if (last_steps.size() <= index) last_steps.resize(index + 1, k_no_step);
      last_steps[index] = steps.integer(2);
    }
  }

  std::size_t series_index(const std::string& name) {
    auto found = series_by_name.find(name);
    if (found != series_by_name.end()) return found->second;
    Statement insert(store.database(),
                     "INSERT INTO metric_series (run_id, name, count, non_finite, last_step) "
                     "VALUES (?1, ?2, 0, 0, 0)");
    insert.bind(1, run_id);
    insert.bind(2, name);
    insert.step();
    Series s;
    s.id = store.database().last_insert_rowid();
    s.name = name;
    series_by_name[name] = series.size();
    series.push_back(std::move(s));
    return series.size() - 1;
  }

  // A skipped line (or file, with line 0), counted and remembered if first.
  void problem(Source& source, std::int64_t& counter, std::string_view what, std::int64_t line) {
    ++counter;
    ++pass.skipped;
    source.dirty = true;
    if (source.first_problem.empty()) {
      std::string file = source.key >= k_tracking_source_base
                             ? RunTree::tracking_metrics_name(source.rank)
                             : RunTree::rank_metrics_name(source.rank);
      source.first_problem =
          line > 0 ? fmt::format("{}:{}: {}", file, line, what) : fmt::format("{}: {}", file, what);
    }
  }

  // One complete line (source.line already counts it).
  void take_line(Source& source, std::string_view line) {
    if (is_blank(line)) return;
    if (line.size() > k_max_line_bytes) {
      problem(source, source.malformed,
              fmt::format("a line longer than {} bytes", k_max_line_bytes), source.line);
      return;
    }
    LineVerdict verdict = read_metric_line(line, parsed_line);
    if (verdict != LineVerdict::ok) {
      problem(source, source.malformed, describe(verdict), source.line);
      return;
    }
    if (!is_valid_metric_name(parsed_line.name)) {
      problem(source, source.bad_name,
              fmt::format("bad metric name {} (use 1-128 characters from [A-Za-z0-9_.:/-], "
                          "starting with a letter, digit or underscore)",
                          util::printable(parsed_line.name, 40)),
              source.line);
      return;
    }
    std::size_t index = series_index(parsed_line.name);
    if (source.last_steps.size() <= index) source.last_steps.resize(index + 1, k_no_step);
    std::int64_t& last_step = source.last_steps[index];
    std::int64_t step = 0;
    if (parsed_line.has_step) {
      step = parsed_line.step;
    } else if (last_step == std::numeric_limits<std::int64_t>::max()) {
      // Counting on would overflow: the line has no step to be stored at.
      problem(source, source.malformed,
              fmt::format("no \"step\" after step {} of '{}', the largest there is; give the "
                          "step explicitly",
                          last_step, parsed_line.name),
              source.line);
      return;
    } else if (last_step != k_no_step) {
      step = last_step + 1;
    }
    if (last_step != k_no_step && step < last_step) {
      problem(source, source.backwards,
              fmt::format("step {} of '{}' comes after step {}", step, parsed_line.name, last_step),
              source.line);
      return;
    }
    last_step = step;
    Series& s = series[index];
    double value = parsed_line.value;
    insert_point->reset();
    insert_point->bind(1, s.id);
    insert_point->bind(2, s.count);
    insert_point->bind(3, static_cast<std::int64_t>(source.rank));
    insert_point->bind(4, step);
    insert_point->bind(5, value);
    insert_point->step();
    ++s.count;
    s.last_step = step;
    s.last_value = value;
    if (std::isfinite(value)) {
      if (std::isnan(s.min) || value < s.min) s.min = value;
      if (std::isnan(s.max) || value > s.max) s.max = value;
    } else {
      ++s.non_finite;
    }
    s.dirty = true;
    ++pass.points;
    ++points_uncommitted;
  }

  // Writes summaries and offsets: with the points of this transaction they
  // form one atomic step.
  void flush() {
    const Database& db = store.database();
    Statement update(db,
                     "UPDATE metric_series SET count = ?2, non_finite = ?3, last_step = ?4, "
                     "last_value = ?5, min_value = ?6, max_value = ?7 WHERE series_id = ?1");
    for (auto& s : series) {
      if (!s.dirty) continue;
      update.reset();
      update.bind(1, s.id);
      update.bind(2, s.count);
      update.bind(3, s.non_finite);
      update.bind(4, s.last_step);
      update.bind(5, s.last_value);
      update.bind(6, s.min);
      update.bind(7, s.max);
      update.step();
      s.dirty = false;
    }
    Statement upsert(db,
                     "INSERT OR REPLACE INTO metric_sources (run_id, rank, offset, line, "
                     "in_long_line, malformed, bad_name, backwards, first_problem) VALUES "
                     "(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
    for (auto& [key, source] : sources) {
      if (!source.dirty) continue;
      upsert.reset();
      upsert.bind(1, run_id);
      upsert.bind(2, static_cast<std::int64_t>(key));
      upsert.bind(3, source.offset);
      upsert.bind(4, source.line);
      upsert.bind(5, static_cast<std::int64_t>(source.in_long_line));
      upsert.bind(6, source.malformed);
      upsert.bind(7, source.bad_name);
      upsert.bind(8, source.backwards);
      upsert.bind(9, source.first_problem);
      upsert.step();
      source.dirty = false;
    }
  }

  // The metrics files present now, by source.
  std::map<int, fs::path> list_files() const {
    std::map<int, fs::path> files;
    std::error_code error;
    for (fs::directory_iterator it(dir, error), end; !error && it != end; it.increment(error)) {
      int source = metric_source_of_file(it->path().filename().string());
      if (source >= 0) files[source] = it->path();
    }
    return files;
  }

  void ingest_file(Source& source, const fs::path& path, bool final, Transaction*& transaction,
                   std::unique_ptr<Transaction>& holder) {
    // Not following links and not blocking on a FIFO: the file is the
    // rank's to replace with anything.
    util::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK));
    struct stat file {};
    if (!fd || ::fstat(fd.get(), &file) != 0 || !S_ISREG(file.st_mode)) {
      if (!source.unreadable_reported) {
        problem(source, source.malformed, "not a regular file; not read", 0);
        source.unreadable_reported = true;
      }
      return;
    }
    std::int64_t size = file.st_size;
    if (size < source.offset) {
      problem(source, source.malformed,
              fmt::format("the file shrank from {} to {} bytes; earlier points are kept",
                          source.offset, size),
              0);
      source.offset = size;
    }
    std::string buffer;
    while (source.offset < size && budget > 0) {
      if (!transaction) begin(transaction, holder);
      // A budget smaller than a chunk shrinks it, but never below a line.
      std::int64_t chunk_bytes = std::min<std::int64_t>(
          static_cast<std::int64_t>(k_chunk_bytes),
          std::max<std::int64_t>(budget, static_cast<std::int64_t>(k_max_line_bytes) + 1));
      std::size_t want =
          static_cast<std::size_t>(std::min<std::int64_t>(size - source.offset, chunk_bytes));
      buffer.resize(want);
      ssize_t got = ::pread(fd.get(), buffer.data(), want, source.offset);
      if (got <= 0) break;
      std::string_view chunk(buffer.data(), static_cast<std::size_t>(got));
      std::size_t start = 0;
      for (;;) {
        std::size_t newline = chunk.find('\n', start);
        if (newline == std::string_view::npos) break;
        ++source.line;
        if (source.in_long_line) {
          source.in_long_line = false;  // the end of a line already counted
        } else {
          take_line(source, chunk.substr(start, newline - start));
        }
        start = newline + 1;
      }
      std::string_view rest = chunk.substr(start);
      bool at_end = source.offset + got >= size;
      if (final && at_end && !rest.empty()) {
        ++source.line;
        if (!source.in_long_line) take_line(source, rest);
        source.in_long_line = false;
        start = chunk.size();
      } else if (source.in_long_line || rest.size() >= k_max_line_bytes) {
        // Too long to be a metric: skip to its newline, whenever it comes.
        if (!source.in_long_line) {
          problem(source, source.malformed,
                  fmt::format("a line longer than {} bytes", k_max_line_bytes), source.line + 1);
          source.in_long_line = true;
        }
        start = chunk.size();
      }
      source.offset += static_cast<std::int64_t>(start);
      budget -= static_cast<std::int64_t>(start);
      source.dirty = true;
      if (start == 0) break;  // an unfinished line: the rank is still writing it
      if (points_uncommitted >= k_points_per_commit) commit(transaction, holder);
    }
  }

  void begin(Transaction*& transaction, std::unique_ptr<Transaction>& holder) {
    holder = std::make_unique<Transaction>(store.database());
    transaction = holder.get();
    insert_point = std::make_unique<Statement>(store.database(),
                                               "INSERT INTO metric_points (series_id, seq, rank, "
                                               "step, value) VALUES (?1, ?2, ?3, ?4, ?5)");
  }

  void commit(Transaction*& transaction, std::unique_ptr<Transaction>& holder) {
    flush();
    insert_point.reset();
    transaction->commit();
    holder.reset();
    transaction = nullptr;
    points_uncommitted = 0;
  }
};

MetricIngestor::MetricIngestor(const RunStore& store, std::string run_id, fs::path metrics_dir)
    : m_state(std::make_unique<State>(store, std::move(run_id), std::move(metrics_dir))) {
  m_state->load();
}

MetricIngestor::~MetricIngestor() = default;

IngestPass MetricIngestor::ingest(bool final, std::int64_t max_bytes) {
  State& state = *m_state;
  state.pass = {};
  state.budget = final ? k_unlimited : max_bytes;
  Transaction* transaction = nullptr;
  std::unique_ptr<Transaction> holder;
  try {
    for (const auto& [key, path] : state.list_files()) {
      auto [entry, first_seen] = state.sources.try_emplace(key);
      if (first_seen) {
        entry->second.key = key;
        entry->second.rank = rank_of_source(key);
        entry->second.dirty = true;
      }
      state.ingest_file(entry->second, path, final, transaction, holder);
    }
    bool pending = false;
    for (const auto& [rank, source] : state.sources) pending |= source.dirty;
    if (pending && !transaction) state.begin(transaction, holder);
    if (transaction) state.commit(transaction, holder);
  } catch (...) {
    state.insert_point.reset();
    holder.reset();  // rolls back
    state.load();
    throw;
  }
  return state.pass;
}

}  // namespace amlrun::store
