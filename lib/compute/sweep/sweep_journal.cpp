#include "lib/compute/sweep/sweep_journal.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "lib/spec/sweep_settings.hpp"
#include "lib/util/error.hpp"

namespace amlrun::compute {

namespace {

using json = nlohmann::ordered_json;

// Journals are a line per decision; a sweep of 100,000 trials is ~20 MB.
constexpr std::uint64_t k_max_journal_bytes = std::uint64_t{1} << 30;

sweep::Value value_from_json(const json& j) {
  if (j.is_number_integer()) return sweep::Value::of_integer(j.get<std::int64_t>());
  if (j.is_number()) return sweep::Value::of_real(j.get<double>());
  if (j.is_string()) return sweep::Value::of_text(j.get<std::string>());
  throw std::invalid_argument("a parameter value is not a number or a string");
}

}  // namespace

SweepJournalContents read_sweep_journal(const std::filesystem::path& file) {
  SweepJournalContents out;
  std::error_code error;
  if (!std::filesystem::exists(std::filesystem::symlink_status(file, error))) return out;
  const std::string text = util::read_user_file(file, k_max_journal_bytes);
  std::size_t start = 0;
  int line_number = 0;
  while (start < text.size()) {
    const std::size_t end = text.find('\n', start);
    if (end == std::string::npos) break;  // cut short by a crash: never acted on
    ++line_number;
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    try {
      const json entry = json::parse(line);
      const std::string op = entry.at("op").get<std::string>();
      if (op == "seed") {
        out.seed = entry.at("seed").get<std::uint64_t>();
      } else if (op == "trial") {
        JournaledTrial trial;
        trial.k = entry.at("k").get<std::uint64_t>();
        trial.id = entry.at("id").get<std::string>();
        for (const auto& [name, value] : entry.at("params").items()) {
          trial.params.emplace_back(name, value_from_json(value));
        }
        trial.point = entry.value("point", std::vector<double>{});
        if (trial.k != out.trials.size()) {
          throw std::invalid_argument(
              fmt::format("trial {} follows trial {}", trial.k, out.trials.size()));
        }
        out.trials.push_back(std::move(trial));
      } else if (op == "stop") {
        out.stops.push_back(
            {entry.at("id").get<std::string>(), entry.at("reason").get<std::string>()});
      } else if (op == "end") {
        out.end_reason = entry.at("reason").get<std::string>();
      } else {
        throw std::invalid_argument(fmt::format("unknown op '{}'", op));
      }
    } catch (const std::exception& problem) {
      throw util::InfraError(
          fmt::format("{}:{}: damaged sweep journal entry ({}); the sweep "
                      "cannot tell what it decided there",
                      file.string(), line_number, problem.what()));
    }
  }
  return out;
}

SweepJournal::SweepJournal(const std::filesystem::path& file) : m_file(file) {
  m_fd = util::UniqueFd(
      ::open(file.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644));
  if (!m_fd) util::throw_errno(fmt::format("cannot open {}", file.string()));
  // Cut a torn last line so the next entry starts on a line of its own.
  const off_t size = ::lseek(m_fd.get(), 0, SEEK_END);
  off_t keep = size;
  char c = 0;
  while (keep > 0 && ::pread(m_fd.get(), &c, 1, keep - 1) == 1 && c != '\n') --keep;
  if (keep != size && ::ftruncate(m_fd.get(), keep) != 0) {
    util::throw_errno(fmt::format("cannot repair {}", file.string()));
  }
}

void SweepJournal::append(const std::string& line) {
  const off_t before = ::lseek(m_fd.get(), 0, SEEK_END);
  try {
    util::write_all(m_fd.get(), line + "\n", "cannot append to the sweep journal");
    if (::fdatasync(m_fd.get()) != 0) util::throw_errno("cannot sync the sweep journal");
  } catch (...) {
    // A decision not recorded is not acted on; leave no half of it.
    if (before >= 0) (void)::ftruncate(m_fd.get(), before);
    throw;
  }
}

void SweepJournal::seed(std::uint64_t seed) {
  append(json({{"op", "seed"}, {"seed", seed}}).dump());
}

void SweepJournal::trial(const JournaledTrial& trial) {
  json params = json::object();
  for (const auto& [name, value] : trial.params) params[name] = spec::to_json(value);
  json entry = {{"op", "trial"}, {"k", trial.k}, {"id", trial.id}, {"params", params}};
  if (!trial.point.empty()) entry["point"] = trial.point;
  append(entry.dump());
}

void SweepJournal::stop(const JournaledStop& stop) {
  append(json({{"op", "stop"}, {"id", stop.id}, {"reason", stop.reason}}).dump());
}

void SweepJournal::end(const std::string& reason) {
  append(json({{"op", "end"}, {"reason", reason}}).dump());
}

}  // namespace amlrun::compute
