#include "lib/compute/slurm/ssh/ssh_target.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <fmt/format.h>
#include <map>

#include "lib/compute/slurm/collection.hpp"
#include "lib/compute/slurm/slurm_state.hpp"
#include "lib/compute/slurm/staging.hpp"
#include "lib/snapshot/error.hpp"
#include "lib/snapshot/snapshot.hpp"
#include "lib/snapshot/transfer.hpp"
#include "lib/store/metric_ingest.hpp"
#include "lib/tracking/tracking_journal.hpp"
#include "lib/util/error.hpp"
#include "lib/util/file_lock.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/hash.hpp"
#include "lib/util/safe_dir.hpp"
#include "lib/util/shell.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/time.hpp"
#include "lib/util/timing.hpp"

namespace amlrun::compute {

namespace fs = std::filesystem;
using nlohmann::json;
using store::RunState;

namespace {

// A follower that lost its session tries again for this long before it
// gives up with the error (sshd restarted, a short network drop); the
// keep-alives decide how soon a dead link counts as lost.
constexpr std::int64_t k_reconnect_window_ms = 30000;

bool before(RunState state, RunState other) {
  return static_cast<int>(state) < static_cast<int>(other);
}

// The run's place on the cluster, in the record beside the Slurm state.
struct SshRunState {
  std::string workspace;  // the agent's workspace (its .amlrun)
  std::string amlrun;     // the staged amlrun that serves it
};

SshRunState ssh_state_of(const json& target) {
  SshRunState state;
  if (target.is_object() && target.contains("ssh") && target["ssh"].is_object()) {
    state.workspace = target["ssh"].value("workspace", "");
    state.amlrun = target["ssh"].value("amlrun", "");
  }
  return state;
}

json with_ssh_state(json target, const SshRunState& state) {
  if (!target.is_object()) target = json::object();
  target["ssh"] = {{"workspace", state.workspace}, {"amlrun", state.amlrun}};
  return target;
}

std::string local_machine() {
  struct utsname name {};
  ::uname(&name);
  return name.machine;
}

// An id for this workspace on the cluster: the same workspace always finds
// its runs there, and two workspaces never share a folder.
std::string workspace_id(const workspace::Workspace& workspace) {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return util::sha256_hex(std::string(host) + "\n" + workspace.root().string()).substr(0, 16);
}

std::uint64_t file_size_or_zero(const fs::path& path) {
  struct stat info {};
  if (::lstat(path.c_str(), &info) != 0 || !S_ISREG(info.st_mode)) return 0;
  return static_cast<std::uint64_t>(info.st_size);
}

// Writes `data` at `offset` of the mirror file `relative` (below root),
// which another process may be writing too: the bytes at an offset are the
// same whoever writes them, so writing them again changes nothing, and a
// gap (someone's earlier bytes missing) is left for the next sync to fill.
void write_at(const util::SafeDir& root, const std::string& relative, std::uint64_t offset,
              std::string_view data, bool reset) {
  auto [parent, name] = util::split_parent(relative);
  auto dir = root.make_dirs(parent);
  util::UniqueFd fd = dir.open_file(name, O_WRONLY | O_CREAT | O_NOFOLLOW, 0644);
  if (reset && ::ftruncate(fd.get(), 0) != 0) util::throw_errno("cannot truncate " + relative);
  struct stat info {};
  ::fstat(fd.get(), &info);
  if (static_cast<std::uint64_t>(info.st_size) < offset) return;
  std::size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::pwrite(fd.get(), data.data() + done, data.size() - done,
                         static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) util::throw_errno("cannot write " + (root.path() / relative).string());
    done += static_cast<std::size_t>(n);
  }
}

std::map<std::string, std::uint64_t> mirror_offsets(const fs::path& mirror) {
  std::map<std::string, std::uint64_t> offsets;
  store::RunTree tree(mirror);
  for (const fs::path& dir : {tree.user_logs(), tree.metrics(), tree.system_logs()}) {
    std::error_code error;
    for (auto it = fs::directory_iterator(dir, error); !error && it != fs::end(it);
         it.increment(error)) {
      std::string relative = it->path().lexically_relative(mirror).string();
      offsets[relative] = file_size_or_zero(it->path());
    }
  }
  return offsets;
}

}  // namespace

SshSlurmTarget::SshSlurmTarget(const workspace::Workspace& workspace, const SlurmSettings& settings)
    : SlurmTarget(workspace, settings),
      m_remote_workspace(
          (settings.shared_dir / "workspaces" / workspace_id(workspace) / ".amlrun").string()) {}

SshSlurmTarget::~SshSlurmTarget() {
  m_stop = true;
  if (m_follower.joinable()) m_follower.join();
}

std::string SshSlurmTarget::stage_binaries() const {
  auto files = amlrun_files_to_stage();
  fs::path staged = settings().shared_dir / "bin" / files.key;
  // One look at the login node: its machine, Slurm, shared_dir, and the
  // hashes of what is staged already.
  std::string check = fmt::format(
      "dir={}\nstaged={}\n"
      "printf 'machine=%s\\n' \"$(uname -m)\"\n"
      "if command -v sbatch >/dev/null 2>&1; then echo sbatch=yes; else echo sbatch=no; fi\n"
      "if [ -d \"$dir\" ]; then echo shared=dir; elif [ -e \"$dir\" ]; then echo shared=other; "
      "else echo shared=missing; fi\n"
      "if [ -w \"$dir\" ]; then echo writable=yes; else echo writable=no; fi\n",
      util::shell_quote(settings().shared_dir.string()), util::shell_quote(staged.string()));
  for (const auto& [name, source] : files.sources) {
    check += fmt::format(
        "if [ -f \"$staged\"/{0} ] && [ ! -L \"$staged\"/{0} ]; then printf 'hash %s %s\\n' "
        "\"$(sha256sum < \"$staged\"/{0} | cut -c1-64)\" {0}; fi\n",
        util::shell_quote(name));
  }
  auto& connection = *m_connection;
  auto answer = connection.run(check, {}, std::chrono::seconds(60));
  std::map<std::string, std::string> facts;
  std::map<std::string, std::string> hashes;
  for (const auto& line : util::split(answer.out, '\n')) {
    if (line.starts_with("hash ")) {
      auto rest = line.substr(5);
      auto space = rest.find(' ');
      if (space != std::string::npos) hashes[rest.substr(space + 1)] = rest.substr(0, space);
    } else if (auto equals = line.find('='); equals != std::string::npos) {
      facts[line.substr(0, equals)] = line.substr(equals + 1);
    }
  }
  std::string who = connection.who();
  if (facts["machine"] != local_machine()) {
    throw util::InfraError(fmt::format(
        "{}: the login node is a {} machine and this amlrun is built for {}; the nodes run the "
        "amlrun binary staged from here, so submit from an amlrun built for {} (or install "
        "amlrun on the cluster and submit from its login node)",
        who, facts["machine"].empty() ? "different" : facts["machine"], local_machine(),
        facts["machine"]));
  }
  if (facts["sbatch"] != "yes") {
    throw util::InfraError(fmt::format(
        "{}: there is no sbatch on the login node's PATH (for a command run over ssh); check "
        "that ssh: names a Slurm login node, and that your login shell's PATH has Slurm's "
        "commands without an interactive start-up",
        who));
  }
  if (facts["shared"] != "dir") {
    throw util::InfraError(fmt::format(
        "{}: shared_dir {} {} on the cluster; create it there on a filesystem every node mounts "
        "(or fix shared_dir in {})",
        who, settings().shared_dir.string(),
        facts["shared"] == "missing" ? "does not exist" : "is not a directory",
        workspace().config_path().string()));
  }
  if (facts["writable"] != "yes") {
    throw util::InfraError(fmt::format("{}: shared_dir {} on the cluster is not writable by you",
                                       who, settings().shared_dir.string()));
  }
  bool complete = true;
  for (const auto& [name, source] : files.sources) {
    if (hashes[name] != staged_source_sha256(source)) complete = false;
  }
  if (!complete) {
    // Filled under a temporary name and renamed whole (staging.cpp's rule),
    // one file per session of the master connection.
    std::string temporary = (settings().shared_dir / "bin" /
                             (".staging-" + util::sha256_hex(files.key + who).substr(0, 8) + "-" +
                              std::to_string(::getpid())))
                                .string();
    connection.run(
        fmt::format("set -e\numask 022\nrm -rf {0}\nmkdir -p {0}\n", util::shell_quote(temporary)));
    for (const auto& [name, source] : files.sources) {
      std::string target = fmt::format("{}/{}", temporary, name);
      auto result = connection.run(
          fmt::format("set -e\numask 022\nmkdir -p \"$(dirname {0})\"\ncat > {0}\nchmod 0755 {0}\n",
                      util::shell_quote(target)),
          util::read_file(source), std::chrono::seconds(600));
      if (result.exit_code != 0) {
        throw util::InfraError(fmt::format("{}: cannot stage {} in {}: {}", who, name,
                                           settings().shared_dir.string(), util::trim(result.err)));
      }
    }
    std::string verify = fmt::format("set -e\ncd {}\n", util::shell_quote(temporary));
    for (const auto& [name, source] : files.sources) {
      verify += fmt::format("[ \"$(sha256sum < {} | cut -c1-64)\" = {} ]\n",
                            util::shell_quote(name), staged_source_sha256(source));
    }
    verify += fmt::format("cd /\nif [ -e {1} ]; then rm -rf {1}; fi\nmv {0} {1}\n",
                          util::shell_quote(temporary), util::shell_quote(staged.string()));
    auto moved = connection.run(verify);
    if (moved.exit_code != 0) {
      throw util::InfraError(fmt::format(
          "{}: the amlrun copied to {} did not arrive intact (its sha256 differs); submit again",
          who, staged.string()));
    }
  }
  // The staged binary must run there: a glibc older than this build's, or
  // missing libraries, are said here rather than as a broken session.
  fs::path amlrun = staged / "amlrun";
  auto version = connection.run(fmt::format("{} --version", util::shell_quote(amlrun.string())));
  if (version.exit_code != 0) {
    throw util::InfraError(fmt::format(
        "{}: the amlrun staged on the login node cannot run there ({}); its C library or "
        "shared libraries are older than this build needs: build amlrun on a system no newer "
        "than the cluster's, or install amlrun's dependencies there",
        who, util::trim(version.err.empty() ? version.out : version.err)));
  }
  return amlrun.string();
}

std::unique_ptr<AgentSession> SshSlurmTarget::open_session() const {
  std::unique_lock guard(m_connect_mutex);
  if (!m_connection) m_connection = std::make_unique<SshConnection>(name(), *settings().ssh);
  m_connection->ensure_master();
  // What was staged for these very files (same names, sizes, times and
  // inodes) and checked to run there: hashing amlrun (and the cluster
  // hashing its copy) on every command would cost a second each time.
  std::string identity =
      fmt::format("{}\n{}\n", settings().shared_dir.string(), m_connection->who());
  for (const auto& [file, source] : amlrun_files()) {
    struct stat info {};
    ::stat(source.c_str(), &info);
    identity += fmt::format("{} {} {} {}.{}\n", file, info.st_ino, info.st_size,
                            info.st_mtim.tv_sec, info.st_mtim.tv_nsec);
  }
  fs::path marker =
      workspace().cache_dir() / "ssh" / (util::sha256_hex(identity).substr(0, 16) + ".staged");
  bool remembered = false;
  if (m_remote_amlrun.empty()) {
    std::error_code absent;
    if (fs::exists(marker, absent)) {
      m_remote_amlrun = std::string(util::trim(util::read_file(marker)));
      remembered = !m_remote_amlrun.empty();
    }
    if (!remembered) {
      m_remote_amlrun = stage_binaries();
      std::error_code error;
      fs::create_directories(marker.parent_path(), error);
      util::write_file_atomic(marker, m_remote_amlrun + "\n");
    }
  }
  guard.unlock();
  auto start = [&] {
    std::string script = fmt::format(
        "exec {} _slurm-agent --workspace {} --target {}", util::shell_quote(m_remote_amlrun),
        util::shell_quote(m_remote_workspace), util::shell_quote(name()));
    auto session = std::make_unique<AgentSession>(*m_connection, script);
    session->call({{"op", "hello"}, {"config", util::read_file(workspace().config_path())}});
    return session;
  };
  if (!remembered) return start();
  try {
    return start();
  } catch (const util::InfraError&) {
    // The staged copy went away (or the cluster changed): check and stage
    // again, and say what is wrong if that fails.
    std::error_code error;
    fs::remove(marker, error);
    std::lock_guard again(m_connect_mutex);
    m_remote_amlrun = stage_binaries();
    util::write_file_atomic(marker, m_remote_amlrun + "\n");
  }
  return start();
}

AgentSession& SshSlurmTarget::session() const {
  if (!m_session || !m_session->alive()) {
    m_session.reset();
    m_session = open_session();
  }
  return *m_session;
}

Frame SshSlurmTarget::call_again_if_broken(const json& request,
                                           std::chrono::milliseconds timeout) const {
  for (int attempt = 0;; ++attempt) {
    try {
      return session().call(request, {}, timeout);
    } catch (const util::InfraError&) {
      if (attempt >= 2 || (m_session && m_session->alive())) throw;  // an answer, or no link
      std::this_thread::sleep_for(std::chrono::milliseconds(300 * (attempt + 1)));
    }
  }
}

void SshSlurmTarget::upload_snapshot(const std::string& snapshot_id) const {
  fs::path store_dir = workspace().snapshots_dir();
  std::string text = snapshot::manifest_text(store_dir, snapshot_id);
  // The last snapshot this workspace sent to the cluster's: the manifest
  // goes as an edit of it (a line per changed file), whole when there is none.
  fs::path sent = workspace().cache_dir() / "ssh" /
                  util::sha256_hex(name() + "\n" + m_remote_workspace).substr(0, 16);
  std::optional<json> reply_header;
  std::error_code absent;
  if (fs::exists(sent, absent)) try {
      std::string raw = util::read_file(sent);
      std::string base(util::trim(raw));
      std::string delta = snapshot::manifest_delta(snapshot::manifest_text(store_dir, base), text);
      auto reply =
          session().call({{"op", "missing"}, {"snapshot", snapshot_id}, {"base", base}}, delta);
      if (!reply.header.value("need_full", false)) reply_header = reply.header;
    } catch (const snapshot::SnapshotError&) {
    } catch (const util::InfraError&) {
      if (!m_session || !m_session->alive()) throw;  // the link, not the base
    }
  if (!reply_header) {
    reply_header = session().call({{"op", "missing"}, {"snapshot", snapshot_id}}, text).header;
  }
  const json& reply = *reply_header;
  std::vector<snapshot::ObjectRef> missing;
  for (const auto& item : reply.at("missing")) {
    missing.push_back({item.at("name"), item.at("size")});
  }
  auto remember = [&] {
    std::error_code error;
    fs::create_directories(sent.parent_path(), error);
    util::write_file_atomic(sent, snapshot_id + "\n");
  };
  if (missing.empty()) return remember();
  // One stream: the request, then each object as a frame, then one reply.
  auto& agent = session();
  agent.send({{"op", "put"}, {"count", missing.size()}});
  for (const auto& ref : missing) {
    std::string data = util::read_file(snapshot::object_path(store_dir, ref.name));
    agent.send({{"name", ref.name}, {"size", ref.size}}, data);
  }
  check_reply(agent.receive(std::chrono::seconds(600)).header);
  remember();
}

void SshSlurmTarget::submit(store::RunStore& store, store::RunRecord& record, util::FileLock lock) {
  store::RunLayout local(store.run_dir(record.id));
  try {
    store.transition(record, RunState::preparing);
    auto job_text = util::read_file(local.job_spec());
    auto spec = spec::job_spec_from_json(nlohmann::ordered_json::parse(job_text));
    for (const auto& input : spec.inputs) {
      if (input.kind == spec::InputSpec::Kind::literal || !input.url.empty()) continue;
      if (util::is_within(settings().shared_dir, input.path)) continue;
      throw util::InputError(fmt::format(
          "input '{}': {} is a path on this machine, which the cluster cannot see; compute "
          "target '{}' is reached over ssh: give a path under shared_dir {} (a path on the "
          "cluster) or a URL",
          input.name, input.path, name(), settings().shared_dir.string()));
    }
    auto& agent = session();
    util::timing_mark("ssh: agent ready");
    if (!record.snapshot_id.empty()) upload_snapshot(record.snapshot_id);
    util::timing_mark("ssh: snapshot uploaded");
    // Saved before the agent creates the run: whatever happens next, a
    // later command knows where to ask.
    record.target = with_ssh_state(json::object(), {m_remote_workspace, m_remote_amlrun});
    store.save(record);
    util::SafeDir::open(local.root())
        .make_dirs(local.ssh_mirror().filename().string() + "/" +
                   store::RunTree::relative_user_logs());
    json request = {{"op", "submit"}, {"record", store::to_json(record)}, {"job", job_text}};
    if (fs::exists(local.environment_record())) {
      request["environment"] = util::read_file(local.environment_record());
    }
    Frame reply;
    try {
      reply = agent.call(request, {}, std::chrono::seconds(600));
    } catch (const util::InfraError& error) {
      if (agent.alive()) throw;  // the agent answered: it refused
      // The link broke with the request sent: the run may be on the
      // cluster. The record stays as it is; refresh asks the agent.
      throw SubmissionOutcomeUnknown(
          fmt::format("{}; the run may still have reached the cluster: 'amlrun show {}' finds "
                      "out once the link is back",
                      error.what(), record.id));
    }
    util::timing_mark("ssh: submitted on the cluster");
    adopt(store, record, reply.header.at("record"));
  } catch (const SubmissionOutcomeUnknown&) {
    throw;
  } catch (const std::exception& error) {
    if (!store::is_terminal(record.state)) {
      record.failure_reason = fmt::format("submitting over ssh: {}", error.what());
      store.transition(record, RunState::failed);
    }
    throw;
  }
  (void)lock;
}

void SshSlurmTarget::adopt(store::RunStore& store, store::RunRecord& record, const json& remote) {
  auto theirs = store::run_record_from_json(remote);
  auto was = store::to_json(record);
  auto ssh = ssh_state_of(record.target);
  // The history up to the hand-over is ours; from there on, theirs.
  std::vector<store::StateChange> history;
  for (const auto& change : record.history) {
    if (!before(RunState::preparing, change.state)) history.push_back(change);
  }
  bool ended = store::is_terminal(theirs.state);
  for (const auto& change : theirs.history) {
    if (!before(RunState::preparing, change.state)) continue;
    if (ended && store::is_terminal(change.state)) continue;  // ours once the files are home
    history.push_back(change);
  }
  record.history = history;
  record.state = history.back().state;
  if (ended && before(record.state, RunState::finalizing)) {
    record.history.push_back({RunState::finalizing, util::utc_iso8601(util::Clock::now())});
    record.state = RunState::finalizing;
  }
  record.started_at = theirs.started_at;
  record.prepared_environment = theirs.prepared_environment;
  record.cancel_requested = record.cancel_requested || theirs.cancel_requested;
  record.target = with_ssh_state(theirs.target, ssh);
  // run.json is written (with fsync) only when something changed.
  if (store::to_json(record) != was) store.save(record);
}

json SshSlurmTarget::sync_request(store::RunStore& store, const std::string& run_id,
                                  const std::string& digest, std::int64_t wait_ms) const {
  json offsets = json::object();
  for (const auto& [path, size] :
       mirror_offsets(store::RunLayout(store.run_dir(run_id)).ssh_mirror())) {
    offsets[path] = size;
  }
  return {{"op", "sync"},
          {"run", run_id},
          {"offsets", offsets},
          {"record_digest", digest},
          {"wait_ms", wait_ms}};
}

void SshSlurmTarget::write_chunks(store::RunStore& store, const std::string& run_id,
                                  const Frame& reply) const {
  const auto& chunks = reply.header.at("chunks");
  if (chunks.empty()) return;
  store::RunLayout local(store.run_dir(run_id));
  // Home already: the mirror is gone and must not come back.
  if (is_collected(local)) return;
  auto root = util::SafeDir::open(local.root()).make_dirs(local.ssh_mirror().filename().string());
  std::size_t at = 0;
  for (const auto& chunk : chunks) {
    std::string path = chunk.at("path");
    std::size_t size = chunk.at("size");
    if (at + size > reply.payload.size()) throw util::InfraError("a sync reply was cut short");
    auto data = std::string_view(reply.payload).substr(at, size);
    at += size;
    // Only the log folders: the agent names paths, and a path is checked
    // like any other (SafeDir refuses '..' and links).
    if (!path.starts_with(store::RunTree::relative_logs() + "/")) continue;
    write_at(root, path, chunk.at("offset"), data, chunk.value("reset", false));
  }
}

void SshSlurmTarget::start_following(store::RunStore& store, const store::RunRecord& record) {
  if (store::is_terminal(record.state) || m_follower.joinable()) return;
  // The session a submit used goes on as the follower's (no new agent).
  m_follower = std::thread([this, &store, id = record.id, own = std::move(m_session)]() mutable {
    follow_loop(&store, id, std::move(own));
  });
}

void SshSlurmTarget::follow_loop(store::RunStore* store, const std::string& run_id,
                                 std::unique_ptr<AgentSession> own) {
  if (own) own->set_cancel(&m_stop);
  std::string digest;
  std::int64_t failing_since = -1;
  while (!m_stop) {
    try {
      if (!own || !own->alive()) {
        own = open_session();
        own->set_cancel(&m_stop);
      }
      auto reply =
          own->call(sync_request(*store, run_id, digest, 1000), {}, std::chrono::seconds(45));
      failing_since = -1;
      if (reply.header.value("unknown", false)) break;  // refresh() says what that means
      {
        auto lock =
            util::FileLock::acquire(store::RunLayout(store->run_dir(run_id)).slurm_refresh_lock());
        write_chunks(*store, run_id, reply);
      }
      digest = reply.header.value("record_digest", "");
      auto remote = reply.header.at("record");
      std::lock_guard guard(m_mutex);
      m_followed = remote;
      m_follow_error.clear();
      auto state = store::run_state_from_string(remote.value("state", ""));
      if (state && store::is_terminal(*state)) break;
    } catch (const std::exception& error) {
      own.reset();
      std::int64_t now = util::monotonic_ms();
      if (failing_since < 0) failing_since = now;
      if (now - failing_since > k_reconnect_window_ms) {
        std::lock_guard guard(m_mutex);
        m_follow_error = error.what();
        break;
      }
      for (int i = 0; i < 10 && !m_stop; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
      }
    }
  }
  m_follower_done = true;
}

store::RunRecord SshSlurmTarget::refresh(store::RunStore& store, store::RunRecord record) {
  if (store::is_terminal(record.state)) return record;
  store::RunLayout local(store.run_dir(record.id));
  std::optional<json> remote;
  {
    std::lock_guard guard(m_mutex);
    if (!m_follow_error.empty()) {
      throw util::InfraError(fmt::format(
          "{}; the job itself goes on: 'amlrun stream {}' collects everything once the link "
          "is back",
          m_follow_error, record.id));
    }
    if (m_follower.joinable() && !m_follower_done) {
      // The follower brings the record with the logs; until its first
      // answer there is nothing new to say.
      if (!m_followed) return record;
    }
    remote = m_followed;
  }
  auto lock = util::FileLock::acquire(local.slurm_refresh_lock());
  record = store.load(record.id);
  if (store::is_terminal(record.state)) return record;
  auto ssh = ssh_state_of(record.target);
  if (ssh.workspace.empty()) {
    // The submitter holds the run's lock until the agent has the run.
    if (util::is_locked(store.lock_path(record.id))) return record;
    record.failure_reason =
        "the submission was interrupted before the run reached the cluster; nothing runs: "
        "submit the job again";
    store.transition(record, RunState::failed);
    return record;
  }
  if (ssh.workspace != m_remote_workspace) {
    // Submitted from this workspace when it was elsewhere: ask that one.
    m_remote_workspace = ssh.workspace;
    m_session.reset();
  }
  if (!remote) {
    auto reply = call_again_if_broken(sync_request(store, record.id, "", 0));
    if (reply.header.value("unknown", false)) {
      if (before(record.state, RunState::starting)) {
        record.failure_reason =
            "the submission was interrupted before the run reached the cluster; nothing runs: "
            "submit the job again";
        store.transition(record, RunState::failed);
        return record;
      }
      throw util::InfraError(
          fmt::format("{}: the cluster has no record of run {} (in {}); was that folder removed?",
                      m_connection->who(), record.id, m_remote_workspace));
    }
    write_chunks(store, record.id, reply);
    remote = reply.header.at("record");
  }
  adopt(store, record, *remote);
  // Metrics as they arrive, from the mirror (the local index is ours).
  try {
    store::MetricIngestor(store, record.id, store::RunTree(local.ssh_mirror()).metrics())
        .ingest(false, 16 << 20);
  } catch (const std::exception&) {
  }
  auto theirs = store::run_record_from_json(*remote);
  if (store::is_terminal(theirs.state)) {
    try {
      bring_home(store, record, theirs);
    } catch (const util::InfraError&) {
      // What came home stays in artifacts.collecting; a new session picks
      // up from there, once.
      if (!m_session || m_session->alive()) throw;
      bring_home(store, record, theirs);
    }
  }
  return record;
}

std::vector<store::RunRecord> SshSlurmTarget::refresh_all(store::RunStore& store,
                                                          std::vector<store::RunRecord> records) {
  // One run at a time, each through the agent (not the one squeue of a
  // login-node target).
  for (auto& record : records) record = refresh(store, std::move(record));
  return records;
}

void SshSlurmTarget::bring_home(store::RunStore& store, store::RunRecord& record,
                                const store::RunRecord& remote) {
  store::RunLayout local(store.run_dir(record.id));
  auto listing = call_again_if_broken({{"op", "files"}, {"run", record.id}}).header.at("entries");
  auto& agent = session();
  auto root = util::SafeDir::open(local.root());
  auto staging = root.make_dirs(local.collecting().filename().string());
  std::optional<util::SafeDir> mirror = root.find_dir(local.ssh_mirror().filename().string());
  std::map<std::string, json> wanted;
  for (const auto& entry : listing) {
    std::string path = entry.at("path");
    std::string type = entry.at("type");
    if (type == "d") {
      staging.make_dirs(path);
    } else if (type == "l") {
      auto [parent, name] = util::split_parent(path);
      auto dir = staging.make_dirs(parent);
      std::string target = entry.at("link");
      if (dir.type_of(name) == 0 && ::symlinkat(target.c_str(), dir.fd(), name.c_str()) != 0) {
        util::throw_errno("cannot create the link " + (staging.path() / path).string());
      }
    } else if (type == "f") {
      auto [parent, name] = util::split_parent(path);
      auto dir = staging.make_dirs(parent);
      std::uint64_t size = entry.at("size");
      std::string sha256 = entry.at("sha256");
      auto matches = [&](const util::SafeDir& in, const std::string& relative) {
        auto fd = in.try_open_file(relative, O_RDONLY | O_NOFOLLOW);
        if (!fd) return false;
        struct stat info {};
        if (::fstat(fd.get(), &info) != 0 || static_cast<std::uint64_t>(info.st_size) != size) {
          return false;
        }
        return util::sha256_hex(util::read_fd(fd.get(), in.path() / relative)) == sha256;
      };
      if (matches(staging, path)) continue;  // brought before an interruption
      // The mirror holds the logs already: moved, not sent again.
      std::string mirrored = std::string(store::k_artifacts_dir) + "/" + path;
      if (mirror && matches(*mirror, mirrored)) {
        auto [mirror_parent, mirror_name] = util::split_parent(mirrored);
        if (::renameat(mirror->dir(mirror_parent).fd(), mirror_name.c_str(), dir.fd(),
                       name.c_str()) == 0) {
          continue;
        }
      }
      wanted[path] = entry;
    }
  }
  if (!wanted.empty()) {
    json paths = json::array();
    for (const auto& [path, entry] : wanted) paths.push_back(path);
    agent.send({{"op", "get"}, {"run", record.id}, {"paths", paths}});
    util::UniqueFd out;
    std::string current;
    std::unique_ptr<util::Sha256> hash;
    for (;;) {
      Frame frame = agent.receive(std::chrono::seconds(120));
      if (!frame.header.contains("path")) {
        check_reply(frame.header);
        break;
      }
      std::string path = frame.header.at("path");
      auto it = wanted.find(path);
      if (it == wanted.end()) throw util::InfraError("the agent sent a file not asked for");
      if (path != current) {
        auto [parent, name] = util::split_parent(path);
        out = staging.make_dirs(parent).open_file(name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW,
                                                  0600);
        hash = std::make_unique<util::Sha256>();
        current = path;
      }
      util::write_all(out.get(), frame.payload, (staging.path() / path).string());
      hash->update(frame.payload);
      if (frame.header.value("last", false)) {
        if (hash->hex_digest() != it->second.at("sha256").get<std::string>()) {
          throw util::InfraError(fmt::format(
              "{} arrived damaged (its sha256 differs from the cluster's copy); 'amlrun show "
              "{}' tries again",
              path, record.id));
        }
        ::fchmod(out.get(), static_cast<mode_t>(it->second.value("mode", 0644)) & 0755);
        out = util::UniqueFd();
        current.clear();
      }
    }
  }
  // The artifacts take their place in one step, as a collection does.
  put_collected_artifacts_in_place(root, local);
  std::error_code error;
  fs::remove_all(local.ssh_mirror(), error);
  std::vector<std::string> warnings;
  // Home and complete: the cluster's copy would only fill the shared
  // filesystem twice.
  try {
    call_again_if_broken({{"op", "forget"}, {"run", record.id}});
  } catch (const util::Error& problem) {
    warnings.push_back(
        fmt::format("the run's copy on the cluster could not be removed: {}", problem.what()));
  }
  for (auto& problem : tracking::merge_tracking_journal(store, record, local.root())) {
    warnings.push_back(std::move(problem));
  }
  // The journal's params and tags are in the stored record now.
  record = store.load(record.id);
  for (auto& warning : warnings) record.warnings.push_back(std::move(warning));
  try {
    store::MetricIngestor(store, record.id, local.metrics())
        .ingest(true, store::MetricIngestor::k_unlimited);
  } catch (const std::exception& problem) {
    record.warnings.push_back(fmt::format("metrics: {}", problem.what()));
  }
  for (const auto& warning : remote.warnings) record.warnings.push_back(warning);
  record.exit_code = remote.exit_code;
  record.failure_reason = remote.failure_reason;
  record.infrastructure_failure = remote.infrastructure_failure;
  std::optional<util::TimePoint> ended_at;
  try {
    if (!remote.ended_at.empty()) ended_at = util::parse_utc_iso8601(remote.ended_at);
  } catch (const std::exception&) {
  }
  store.transition(record, remote.state, ended_at);
}

void SshSlurmTarget::request_cancel(store::RunStore& store, const store::RunRecord& given) {
  auto record = store.load(given.id);
  if (store::is_terminal(record.state)) return;
  record.cancel_requested = true;
  store.save(record);
  if (ssh_state_of(record.target).workspace.empty()) return;  // the submitter fails it
  call_again_if_broken({{"op", "cancel"}, {"run", record.id}});
}

std::vector<fs::path> SshSlurmTarget::log_roots(const store::RunStore& store,
                                                const store::RunRecord& record) const {
  store::RunLayout local(store.run_dir(record.id));
  return {local.ssh_mirror(), local.root()};
}

std::vector<fs::path> SshSlurmTarget::state_directories(const store::RunStore&,
                                                        const store::RunRecord&) const {
  return {};
}

SlurmTargetReport SshSlurmTarget::report() const {
  SlurmTargetReport report;
  try {
    auto reply = call_again_if_broken({{"op", "report"}});
    const auto& header = reply.header;
    report.reachable = header.value("reachable", false);
    report.error = header.value("error", "");
    report.shared_dir_problem = header.value("shared_dir_problem", "");
    report.partition_problem = header.value("partition_problem", "");
    for (const auto& item : header.at("partitions")) {
      SlurmPartition partition;
      partition.name = item.value("name", "");
      partition.is_default = item.value("default", false);
      partition.availability = item.value("availability", "");
      partition.time_limit = item.value("time_limit", "");
      partition.allocated = item.value("allocated", 0);
      partition.idle = item.value("idle", 0);
      partition.other = item.value("other", 0);
      partition.total = item.value("total", 0);
      partition.nodes = item.value("nodes", "");
      report.partitions.push_back(partition);
    }
  } catch (const util::Error& error) {
    report.error = error.what();
    report.shared_dir_problem =
        fmt::format("shared_dir {} was not checked: the login node was not reached",
                    settings().shared_dir.string());
  }
  return report;
}

}  // namespace amlrun::compute
