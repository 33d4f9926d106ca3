#include "lib/compute/slurm/ssh/agent.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <atomic>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "lib/compute/slurm/ssh/agent_protocol.hpp"
#include "lib/compute/slurm/target.hpp"
#include "lib/snapshot/transfer.hpp"
#include "lib/store/run_layout.hpp"
#include "lib/store/run_store.hpp"
#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/hash.hpp"
#include "lib/util/safe_dir.hpp"
#include "lib/util/time.hpp"

namespace amlrun::compute {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// A reply's payload of log bytes is cut here; the rest comes with the next.
constexpr std::size_t k_max_sync_bytes = 8 << 20;
// Files travel in pieces of this size, so neither side holds a large one.
constexpr std::size_t k_file_piece = 4 << 20;
// A sync with nothing new waits this long between looks at the logs, and
// asks the Slurm target (status file, squeue at its own pace) this often.
constexpr std::int64_t k_log_poll_ms = 20;
constexpr std::int64_t k_refresh_ms = 500;

const char* const k_log_dirs[] = {"user_logs", "metrics", "system"};

std::string read_range(const fs::path& path, std::uint64_t offset, std::size_t size) {
  util::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd) return {};
  std::string data(size, '\0');
  std::size_t got = 0;
  while (got < size) {
    ssize_t n = ::pread(fd.get(), data.data() + got, size - got, static_cast<off_t>(offset + got));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  data.resize(got);
  return data;
}

// Regular files of a run's log folders, by path relative to the RunTree
// root; the first root that has a file wins (the shared run directory
// while the job runs, the collected artifacts after).
std::map<std::string, std::pair<fs::path, std::uint64_t>> log_files(
    const std::vector<fs::path>& roots) {
  std::map<std::string, std::pair<fs::path, std::uint64_t>> files;
  for (const auto& root : roots) {
    store::RunTree tree(root);
    for (const char* dir : k_log_dirs) {
      fs::path folder = tree.logs() / dir;
      std::error_code error;
      for (auto it = fs::directory_iterator(folder, error); !error && it != fs::end(it);
           it.increment(error)) {
        struct stat info {};
        if (::lstat(it->path().c_str(), &info) != 0 || !S_ISREG(info.st_mode)) continue;
        std::string relative = fmt::format("{}/{}/{}", store::RunTree::relative_logs(), dir,
                                           it->path().filename().string());
        files.try_emplace(relative, it->path(), static_cast<std::uint64_t>(info.st_size));
      }
    }
  }
  return files;
}

// Every entry below `dir`, never following a link, files with their sha256.
void list_tree(const util::SafeDir& dir, const std::string& prefix, json& entries) {
  for (const auto& entry : dir.list()) {
    std::string path = prefix.empty() ? entry.name : prefix + "/" + entry.name;
    if (S_ISDIR(entry.type)) {
      entries.push_back({{"path", path}, {"type", "d"}});
      list_tree(dir.dir(entry.name), path, entries);
    } else if (S_ISREG(entry.type)) {
      util::UniqueFd fd = dir.open_file(entry.name, O_RDONLY);
      struct stat info {};
      ::fstat(fd.get(), &info);
      util::Sha256 hash;
      std::string buffer(1 << 16, '\0');
      for (;;) {
        ssize_t n = ::read(fd.get(), buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) util::throw_errno("cannot read " + (dir.path() / entry.name).string());
        if (n == 0) break;
        hash.update(buffer.data(), static_cast<std::size_t>(n));
      }
      entries.push_back({{"path", path},
                         {"type", "f"},
                         {"size", static_cast<std::uint64_t>(info.st_size)},
                         {"mode", info.st_mode & 0777},
                         {"sha256", hash.hex_digest()}});
    } else if (S_ISLNK(entry.type)) {
      std::string target(4096, '\0');
      ssize_t n = ::readlinkat(dir.fd(), entry.name.c_str(), target.data(), target.size());
      target.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
      entries.push_back({{"path", path}, {"type", "l"}, {"link", target}});
    }
  }
}

class Agent {
 public:
  explicit Agent(AgentOptions options) : m_options(std::move(options)), m_reader(0) {}

  int serve() {
    util::write_all(1, std::string(k_agent_greeting) + "\n", "standard output");
    for (;;) {
      std::optional<Frame> request;
      try {
        request = m_reader.read();
      } catch (const std::exception& error) {
        write_frame(1, error_reply(error));
        return 3;
      }
      if (!request) return 0;
      json reply;
      try {
        reply = handle(*request);
      } catch (const std::exception& error) {
        reply = error_reply(error);
      }
      if (!reply.is_null()) write_frame(1, reply, m_payload);
      m_payload.clear();
    }
  }

 private:
  json handle(const Frame& request) {
    std::string op = request.header.value("op", "");
    if (op == "hello") return hello(request);
    if (!m_target) throw util::InfraError("the agent was not greeted first (a bug)");
    if (op == "missing") return missing(request);
    if (op == "put") return put(request);
    if (op == "submit") return submit(request);
    if (op == "sync") return sync(request);
    if (op == "cancel") return cancel(request);
    if (op == "files") return files(request);
    if (op == "get") return get(request);
    if (op == "report") return report();
    if (op == "forget") return forget(request);
    throw util::InfraError(fmt::format("the agent does not know the request '{}'", op));
  }

  json hello(const Frame& request) {
    fs::path root = workspace::create_workspace(m_options.workspace);
    // The submitting workspace's config.yml, so the target here reads the
    // same settings (kill grace, environments) the user wrote.
    std::string config = request.header.at("config").get<std::string>();
    fs::path config_path = root / "config.yml";
    std::string current;
    try {
      current = util::read_file(config_path);
    } catch (const util::Error&) {
    }
    if (current != config) util::write_file_atomic(config_path, config);
    auto loaded = workspace::load_config(config_path);
    const auto* target = loaded.find_target(m_options.target);
    if (!target) {
      throw util::InputError(fmt::format("no compute target '{}' in the config", m_options.target));
    }
    auto settings = read_slurm_settings(*target);
    settings.ssh.reset();  // here, the cluster is local
    m_workspace = std::make_unique<workspace::Workspace>(root, loaded);
    m_store = std::make_unique<store::RunStore>(*m_workspace);
    m_target = std::make_unique<SlurmTarget>(*m_workspace, settings);
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    return {{"ok", true}, {"version", AMLRUN_VERSION}, {"host", host}};
  }

  // The manifest comes whole, or as an edit of one sent before ("base");
  // a store that has it already uses its own.
  json missing(const Frame& request) {
    fs::path store_dir = m_workspace->snapshots_dir();
    std::string id = request.header.at("snapshot");
    std::string text;
    try {
      text = snapshot::manifest_text(store_dir, id);
    } catch (const std::exception&) {
      if (!request.header.contains("base")) {
        text = request.payload;
      } else {
        try {
          text = snapshot::apply_manifest_delta(
              snapshot::manifest_text(store_dir, request.header.at("base")), request.payload);
        } catch (const std::exception&) {
          return {{"ok", true}, {"need_full", true}};
        }
      }
    }
    auto manifest = snapshot::receive_manifest(store_dir, id, text);
    json names = json::array();
    for (const auto& ref :
         snapshot::missing_objects(m_workspace->snapshots_dir(), snapshot::objects_of(manifest))) {
      names.push_back({{"name", ref.name}, {"size", ref.size}});
    }
    return {{"ok", true}, {"missing", names}};
  }

  json put(const Frame& request) {
    std::uint64_t count = request.header.at("count");
    snapshot::ObjectReceiver receiver(m_workspace->snapshots_dir());
    std::optional<std::string> problem;
    for (std::uint64_t i = 0; i < count; ++i) {
      auto frame = m_reader.read();
      if (!frame) throw util::InfraError("the object stream ended early");
      if (problem) continue;  // read the rest, so the conversation stays in step
      try {
        receiver.receive({frame->header.at("name"), frame->header.at("size")}, frame->payload);
      } catch (const std::exception& error) {
        problem = error.what();
      }
    }
    if (problem) throw util::InfraError(*problem);
    return {{"ok", true}, {"stored", count}};
  }

  json submit(const Frame& request) {
    auto record = store::run_record_from_json(request.header.at("record"));
    auto lock = m_store->create(record);
    store::RunLayout layout(m_store->run_dir(record.id));
    util::write_file_atomic(layout.job_spec(), request.header.at("job").get<std::string>());
    if (request.header.contains("environment")) {
      util::write_file_atomic(layout.environment_record(),
                              request.header.at("environment").get<std::string>());
    }
    m_target->submit(*m_store, record, std::move(lock));
    return {{"ok", true}, {"record", store::to_json(record)}};
  }

  store::RunRecord load(const Frame& request) {
    return m_store->load(request.header.at("run").get<std::string>());
  }

  json sync(const Frame& request) {
    std::string id = request.header.at("run");
    std::error_code error;
    // A submission whose reply was lost before the run was created here.
    if (!fs::exists(store::RunLayout(m_store->run_dir(id)).record(), error)) {
      return {{"ok", true}, {"unknown", true}};
    }
    std::string known = request.header.value("record_digest", "");
    std::int64_t wait_ms = request.header.value("wait_ms", std::int64_t{0});
    std::map<std::string, std::uint64_t> offsets;
    json given = request.header.value("offsets", json::object());
    for (const auto& [path, offset] : given.items()) {
      offsets[path] = offset.get<std::uint64_t>();
    }
    std::int64_t deadline = util::monotonic_ms() + std::min<std::int64_t>(wait_ms, 30000);
    // Slurm is asked (the status file, squeue at its own pace) on a thread
    // of its own, so a slow squeue never holds back a log line.
    struct Latest {
      std::mutex mutex;
      store::RunRecord record;
      std::string text;
      std::exception_ptr failure;
    } latest;
    latest.record = m_target->refresh(*m_store, m_store->load(id));
    latest.text = store::to_json(latest.record).dump();
    std::atomic<bool> stop{false};
    std::thread refresher([&] {
      while (!stop) {
        for (std::int64_t waited = 0; waited < k_refresh_ms && !stop; waited += k_log_poll_ms) {
          std::this_thread::sleep_for(std::chrono::milliseconds(k_log_poll_ms));
        }
        if (stop) break;
        try {
          auto fresh = m_target->refresh(*m_store, m_store->load(id));
          auto text = store::to_json(fresh).dump();
          std::lock_guard guard(latest.mutex);
          latest.record = std::move(fresh);
          latest.text = std::move(text);
        } catch (...) {
          std::lock_guard guard(latest.mutex);
          latest.failure = std::current_exception();
          return;
        }
      }
    });
    struct Joined {
      std::atomic<bool>& stop;
      std::thread& thread;
      ~Joined() {
        stop = true;
        thread.join();
      }
    } joined{stop, refresher};
    for (;;) {
      store::RunRecord record;
      std::string record_text;
      {
        std::lock_guard guard(latest.mutex);
        if (latest.failure) std::rethrow_exception(latest.failure);
        record = latest.record;
        record_text = latest.text;
      }
      json chunks = json::array();
      std::string payload;
      for (const auto& [path, where] : log_files(m_target->log_roots(*m_store, record))) {
        auto [file, size] = where;
        std::uint64_t from = offsets.count(path) ? offsets[path] : 0;
        bool reset = size < from;  // rewritten from the start: send it again
        if (reset) from = 0;
        if (size == from || payload.size() >= k_max_sync_bytes) continue;
        std::size_t take = static_cast<std::size_t>(
            std::min<std::uint64_t>(size - from, k_max_sync_bytes - payload.size()));
        std::string data = read_range(file, from, take);
        if (data.empty()) continue;
        chunks.push_back(
            {{"path", path}, {"offset", from}, {"size", data.size()}, {"reset", reset}});
        payload += data;
      }
      std::string digest = util::sha256_hex(record_text);
      if (!chunks.empty() || digest != known || util::monotonic_ms() >= deadline ||
          store::is_terminal(record.state)) {
        m_payload = std::move(payload);
        return {{"ok", true},
                {"record", json::parse(record_text)},
                {"record_digest", digest},
                {"chunks", chunks}};
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(k_log_poll_ms));
    }
  }

  json cancel(const Frame& request) {
    m_target->request_cancel(*m_store, load(request));
    return {{"ok", true}};
  }

  json files(const Frame& request) {
    auto record = load(request);
    store::RunLayout layout(m_store->run_dir(record.id));
    json entries = json::array();
    std::error_code error;
    if (fs::is_directory(fs::symlink_status(layout.artifacts(), error))) {
      list_tree(util::SafeDir::open(layout.artifacts()), "", entries);
    }
    return {{"ok", true}, {"entries", entries}};
  }

  // Streams the files asked for, each in pieces ({"path", "offset", "last"}
  // and its bytes), then the reply.
  json get(const Frame& request) {
    auto record = load(request);
    auto artifacts = util::SafeDir::open(store::RunLayout(m_store->run_dir(record.id)).artifacts());
    for (const auto& item : request.header.at("paths")) {
      std::string path = item.get<std::string>();
      // SafeDir refuses '..', absolute paths and links on the way.
      util::UniqueFd fd = artifacts.open_file(path, O_RDONLY | O_NOFOLLOW);
      std::uint64_t offset = 0;
      std::string piece(k_file_piece, '\0');
      for (;;) {
        std::size_t got = 0;
        while (got < piece.size()) {
          ssize_t n = ::read(fd.get(), piece.data() + got, piece.size() - got);
          if (n < 0 && errno == EINTR) continue;
          if (n < 0) util::throw_errno("cannot read " + path);
          if (n == 0) break;
          got += static_cast<std::size_t>(n);
        }
        bool last = got < piece.size();
        write_frame(1, {{"path", path}, {"offset", offset}, {"last", last}},
                    std::string_view(piece.data(), got));
        offset += got;
        if (last) break;
      }
    }
    return {{"ok", true}, {"done", true}};
  }

  // The submitting side has the run's files and record: this copy goes.
  json forget(const Frame& request) {
    auto record = load(request);
    if (!store::is_terminal(record.state)) {
      throw util::InputError(fmt::format("run {} has not ended; it is not forgotten", record.id));
    }
    m_store->unindex(record.id);
    fs::remove_all(m_store->run_dir(record.id));
    return {{"ok", true}};
  }

  json report() {
    auto report = m_target->report();
    json partitions = json::array();
    for (const auto& partition : report.partitions) {
      partitions.push_back({{"name", partition.name},
                            {"default", partition.is_default},
                            {"availability", partition.availability},
                            {"time_limit", partition.time_limit},
                            {"allocated", partition.allocated},
                            {"idle", partition.idle},
                            {"other", partition.other},
                            {"total", partition.total},
                            {"nodes", partition.nodes}});
    }
    return {{"ok", true},
            {"reachable", report.reachable},
            {"error", report.error},
            {"partitions", partitions},
            {"shared_dir_problem", report.shared_dir_problem},
            {"partition_problem", report.partition_problem}};
  }

  AgentOptions m_options;
  FrameReader m_reader;
  std::string m_payload;  // the payload of the reply being sent
  std::unique_ptr<workspace::Workspace> m_workspace;
  std::unique_ptr<store::RunStore> m_store;
  std::unique_ptr<SlurmTarget> m_target;
};

}  // namespace

int serve_slurm_agent(const AgentOptions& options) {
  // Anything else that writes to standard output would break the frames.
  return Agent(options).serve();
}

}  // namespace amlrun::compute
