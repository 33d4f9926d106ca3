#pragma once
// A Slurm target reached over SSH, from a machine with no Slurm and no
// shared filesystem (a laptop, a CI runner): the same target and the same
// record as on a login node, with the login node's half done by
// `amlrun _slurm-agent` (agent.hpp) there.
//
// What travels:
//   - the amlrun binaries, staged once per version under <shared_dir>/bin by
//     a plain sh script (the agent is one of them, so it cannot stage itself);
//   - the snapshot by content: the agent names the objects its store lacks,
//     and only those go, in one stream, each checked by hash on arrival;
//   - the record and the logs back while the job runs: a sync request names
//     how far each log file has come (the sizes of the local mirror, so a
//     dropped connection resumes at the last byte, nothing lost or twice);
//     the agent answers when something is new (long polling), over a session
//     of the one master connection, not an ssh process per poll;
//   - at the end, the artifacts the agent collected, file by file with their
//     hashes; what the mirror already holds is moved, not copied again.
//
// The record's target part is the Slurm state as the agent's record has it,
// plus "ssh": where the run lives on the cluster (ssh_state.hpp).
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "lib/compute/slurm/ssh/agent_protocol.hpp"
#include "lib/compute/slurm/ssh/ssh_connection.hpp"
#include "lib/compute/slurm/target.hpp"

namespace amlrun::compute {

class SshSlurmTarget : public SlurmTarget {
 public:
  SshSlurmTarget(const workspace::Workspace& workspace, const SlurmSettings& settings);
  ~SshSlurmTarget() override;

  void submit(store::RunStore& store, store::RunRecord& record, util::FileLock lock) override;
  void request_cancel(store::RunStore& store, const store::RunRecord& record) override;
  store::RunRecord refresh(store::RunStore& store, store::RunRecord record) override;
  std::vector<store::RunRecord> refresh_all(store::RunStore& store,
                                            std::vector<store::RunRecord> records) override;
  std::vector<std::filesystem::path> log_roots(const store::RunStore& store,
                                               const store::RunRecord& record) const override;
  std::vector<std::filesystem::path> state_directories(
      const store::RunStore& store, const store::RunRecord& record) const override;
  void start_following(store::RunStore& store, const store::RunRecord& record) override;
  SlurmTargetReport report() const override;

 private:
  // The agent session, started (master, staging, agent, hello) on first use
  // and again after it broke.
  AgentSession& session() const;
  std::unique_ptr<AgentSession> open_session() const;
  // A request that may be asked again (sync, files, cancel, ...): a session
  // that broke under it (the master connection killed, sshd restarted) is
  // replaced and the request sent once more.
  Frame call_again_if_broken(const nlohmann::json& request,
                             std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;
  std::string stage_binaries() const;
  void upload_snapshot(const std::string& snapshot_id) const;
  // Writes a sync reply's log bytes into the run's mirror.
  void write_chunks(store::RunStore& store, const std::string& run_id, const Frame& reply) const;
  nlohmann::json sync_request(store::RunStore& store, const std::string& run_id,
                              const std::string& digest, std::int64_t wait_ms) const;
  // Takes what the agent's record says into ours (not the end, until the
  // artifacts are home).
  void adopt(store::RunStore& store, store::RunRecord& record, const nlohmann::json& remote);
  void bring_home(store::RunStore& store, store::RunRecord& record, const store::RunRecord& remote);
  void follow_loop(store::RunStore* store, const std::string& run_id,
                   std::unique_ptr<AgentSession> own);

  std::string m_remote_workspace;  // <shared_dir>/workspaces/<id>/.amlrun
  // Guards the connection's lazy start: the follower and the caller's
  // thread may both open a session first.
  mutable std::mutex m_connect_mutex;
  mutable std::unique_ptr<SshConnection> m_connection;
  mutable std::unique_ptr<AgentSession> m_session;
  mutable std::string m_remote_amlrun;

  // The follower (while streaming): its own session, its latest record.
  std::thread m_follower;
  std::atomic<bool> m_stop{false};
  std::atomic<bool> m_follower_done{false};  // it left its loop (end, error, unknown run)
  std::mutex m_mutex;
  std::optional<nlohmann::json> m_followed;  // the latest record it got
  std::string m_follow_error;                // why it gave up
};

}  // namespace amlrun::compute
