#include "lib/stream/log_stream.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <fmt/format.h>
#include <cerrno>
#include <map>
#include <optional>
#include <set>

#include "lib/store/run_layout.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/safe_dir.hpp"
#include "lib/util/time.hpp"

namespace amlrun::stream {

namespace fs = std::filesystem;

namespace {

constexpr int k_poll_ms = 250;  // fallback when inotify says nothing
constexpr int k_refresh_interval_ms = 1000;

struct RankLog {
  util::UniqueFd fd;
};

class Streamer {
 public:
  Streamer(store::RunStore& store, const std::string& run_id, const StreamOptions& options)
      : m_store(store), m_options(options), m_run_dir(store.run_dir(run_id)), m_run_id(run_id) {
    m_renderer = options.renderer;
    if (!m_renderer) {
      m_renderer = std::make_shared<LogRenderer>(RenderOptions{false, options.all_ranks, 80});
    }
    m_log_roots = options.log_roots;
    if (m_log_roots.empty()) m_log_roots = {m_run_dir};
    for (const auto& root : m_log_roots) m_log_dirs.push_back(store::RunTree(root).user_logs());
    m_inotify = util::UniqueFd(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (m_inotify) {
      ::inotify_add_watch(m_inotify.get(), m_run_dir.c_str(), IN_MOVED_TO | IN_CREATE);
      for (const auto& dir : options.state_dirs) {
        int watch = ::inotify_add_watch(m_inotify.get(), dir.c_str(), IN_MOVED_TO | IN_CREATE);
        if (watch >= 0) m_state_watches.push_back(watch);
      }
    }
  }

  StreamResult run() {
    StreamResult result;
    store::RunRecord record = m_store.load(m_run_id);
    // The first refresh comes at once: a target may know more than run.json.
    if (m_options.refresh) record = m_options.refresh(record);
    report_state(record);
    std::int64_t last_refresh = util::monotonic_ms();
    for (;;) {
      watch_log_directory();
      open_logs(record);
      pump();
      if (store::is_terminal(record.state)) break;
      struct pollfd fds[2];
      int count = 0;
      if (m_inotify) fds[count++] = {m_inotify.get(), POLLIN, 0};
      if (m_options.interrupt_fd >= 0) fds[count++] = {m_options.interrupt_fd, POLLIN, 0};
      ::poll(fds, static_cast<nfds_t>(count), k_poll_ms);
      if (m_options.interrupt_fd >= 0 && (fds[count - 1].revents & POLLIN)) {
        pump();
        flush_partials();
        result.interrupted = true;
        result.record = record;
        return result;
      }
      bool state_changed = drain_inotify();
      record = reload(record);
      if (m_options.refresh &&
          (state_changed || util::monotonic_ms() - last_refresh >= k_refresh_interval_ms)) {
        record = m_options.refresh(record);
        last_refresh = util::monotonic_ms();
      }
      report_state(record);
    }
    // The run ended: everything it wrote is sealed under artifacts/logs.
    open_logs(record);
    pump();
    flush_partials();
    result.record = record;
    return result;
  }

 private:
  void watch_log_directory() {
    if (m_watching_logs || !m_inotify) return;
    // Directory watches report writes to the files inside; the watch follows
    // the directory when it is renamed into artifacts/ at the end. (Shared
    // filesystems such as NFS may report nothing: the poll timeout covers.)
    for (const fs::path& dir : m_log_dirs) {
      if (::inotify_add_watch(m_inotify.get(), dir.c_str(), IN_MODIFY | IN_CREATE) >= 0) {
        m_watching_logs = true;
        return;
      }
    }
    // Not there yet: watch the directories on the way so we hear of it.
    const fs::path& live = m_log_dirs.front();
    for (const fs::path& dir : {live.parent_path().parent_path(), live.parent_path()}) {
      ::inotify_add_watch(m_inotify.get(), dir.c_str(), IN_CREATE | IN_MOVED_TO);
    }
  }

  std::vector<int> wanted_ranks(const store::RunRecord& record) const {
    std::vector<int> ranks;
    int count = m_options.all_ranks ? std::max(1, record.process_count) : 1;
    ranks.reserve(static_cast<std::size_t>(count));
    for (int r = 0; r < count; ++r) ranks.push_back(r);
    return ranks;
  }

  void open_logs(const store::RunRecord& record) {
    if (m_options.extra_logs) {
      for (const auto& extra : m_options.extra_logs()) {
        if (m_logs.count(extra.source) && m_logs[extra.source].fd) continue;
        for (const fs::path& root : extra.roots) {
          if (auto fd = open_log(root, store::RunTree::rank_log_name(extra.rank))) {
            m_logs[extra.source].fd = std::move(*fd);
            m_extra_sources.insert(extra.source);
            break;
          }
        }
      }
    }
    for (int rank : wanted_ranks(record)) {
      if (m_logs.count(rank) && m_logs[rank].fd) continue;
      std::string name = store::RunTree::rank_log_name(rank);
      for (const fs::path& root : m_log_roots) {
        if (auto fd = open_log(root, name)) {
          m_logs[rank].fd = std::move(*fd);
          break;
        }
      }
    }
  }

  // The log below `root`, reached without following a link (the job can
  // put one where its log was); nullopt when it is not there (yet).
  std::optional<util::UniqueFd> open_log(const fs::path& root, const std::string& name) {
    try {
      auto dir = util::SafeDir::open(root).find_dir(store::RunTree::relative_user_logs());
      if (!dir) return std::nullopt;
      util::UniqueFd fd = dir->try_open_file(name, O_RDONLY);
      if (!fd) return std::nullopt;
      return fd;
    } catch (const util::PathInTheWay& error) {
      if (m_warned.insert(error.where().string()).second && m_options.on_warning) {
        m_options.on_warning(fmt::format(
            "{} is {}, not the log amlrun captured; it is not followed", error.where().string(),
            error.is_link() ? "a symbolic link" : "not a directory"));
      }
      return std::nullopt;
    } catch (const util::Error&) {
      return std::nullopt;  // the root is not there (yet, or any more)
    }
  }

  void emit(std::string_view data) {
    try {
      util::write_all(m_options.output_fd, data, "cannot write the log");
    } catch (const util::Error&) {
      // A closed pipe (| head) must not stop us from following the run.
    }
  }

  void pump() {
    char buffer[65536];
    // Extra logs first: a sweep's line about a trial ending then follows
    // what the trial wrote, and its last lines close the stream.
    std::vector<std::pair<int, RankLog*>> order;
    for (auto& [source, log] : m_logs) {
      if (m_extra_sources.count(source)) order.emplace_back(source, &log);
    }
    for (auto& [source, log] : m_logs) {
      if (!m_extra_sources.count(source)) order.emplace_back(source, &log);
    }
    for (auto [rank, log_pointer] : order) {
      RankLog& log = *log_pointer;
      if (!log.fd) continue;
      for (;;) {
        ssize_t n = ::read(log.fd.get(), buffer, sizeof buffer);
        if (n <= 0) break;
        std::string out =
            m_renderer->add(rank, std::string_view(buffer, static_cast<std::size_t>(n)));
        if (!out.empty()) emit(out);
      }
    }
  }

  void flush_partials() {
    std::string out = m_renderer->finish();
    if (!out.empty()) emit(out);
  }

  // True when an event came from one of the state directories.
  bool drain_inotify() {
    if (!m_inotify) return false;
    bool state_changed = false;
    alignas(inotify_event) char buffer[4096];
    ssize_t n;
    while ((n = ::read(m_inotify.get(), buffer, sizeof buffer)) > 0) {
      for (ssize_t at = 0; at < n;) {
        const auto* event = reinterpret_cast<const inotify_event*>(buffer + at);
        for (int watch : m_state_watches) state_changed |= event->wd == watch;
        at += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      }
    }
    return state_changed;
  }

  store::RunRecord reload(const store::RunRecord& previous) {
    try {
      return m_store.load(m_run_id);
    } catch (const util::Error&) {
      return previous;  // mid-rename on a filesystem without atomic rename visibility
    }
  }

  void report_state(const store::RunRecord& record) {
    if (m_options.on_record) m_options.on_record(record);
    if (m_reported && record.state == m_last_state) return;
    m_reported = true;
    m_last_state = record.state;
    if (m_options.on_state) m_options.on_state(record);
  }

  store::RunStore& m_store;
  const StreamOptions& m_options;
  fs::path m_run_dir;
  std::string m_run_id;
  std::vector<fs::path> m_log_roots;
  std::vector<fs::path> m_log_dirs;
  std::set<std::string> m_warned;
  util::UniqueFd m_inotify;
  std::vector<int> m_state_watches;
  bool m_watching_logs = false;
  std::map<int, RankLog> m_logs;
  std::set<int> m_extra_sources;
  std::shared_ptr<LogRenderer> m_renderer;
  bool m_reported = false;
  store::RunState m_last_state = store::RunState::queued;
};

}  // namespace

StreamResult stream_run(store::RunStore& store, const std::string& run_id,
                        const StreamOptions& options) {
  Streamer streamer(store, run_id, options);
  return streamer.run();
}

}  // namespace amlrun::stream
