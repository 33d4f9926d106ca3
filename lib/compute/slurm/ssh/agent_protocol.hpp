#pragma once
// The conversation between the submitting amlrun and `amlrun _slurm-agent`
// on the login node, over one ssh session's standard input and output.
//
// A frame is one line of JSON (the header) and, when the header has
// "bytes": N, exactly N bytes of payload after it: logs and files travel as
// they are, without encoding. The agent first writes the greeting line
// below; what a login shell's start-up files print before it (a banner, an
// echo in .bashrc) is skipped, up to a limit.
//
// Requests are {"op": ..., ...}; each gets one reply {"ok": true, ...} or
// {"ok": false, "error": "...", "exit": 2|3}, except where an op says it
// streams several frames (files).
#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "lib/compute/slurm/ssh/ssh_connection.hpp"

namespace amlrun::compute {

inline constexpr std::string_view k_agent_greeting = "AMLRUN-SLURM-AGENT 1";

// Its implicit noexcept move runs nlohmann::json's, whose invariant check
// clang-tidy counts as a possible throw.
// NOLINTNEXTLINE(bugprone-exception-escape)
struct Frame {
  nlohmann::json header;
  std::string payload;
};

// Reads frames from a descriptor, with a deadline per frame.
class FrameReader {
 public:
  explicit FrameReader(int fd) : m_fd(fd) {}
  // Once *cancel is true, a read waiting for input throws within 100 ms.
  void set_cancel(const std::atomic<bool>* cancel) { m_cancel = cancel; }
  // nullopt at end of input (before a frame starts). Throws util::InfraError
  // on a malformed frame, a cut one, or (timeout_ms >= 0) no frame in time.
  std::optional<Frame> read(std::int64_t timeout_ms = -1);
  // Skips input up to and including the line `line` (at most max_bytes);
  // false at end of input or beyond the limit.
  bool skip_to_line(std::string_view line, std::size_t max_bytes, std::int64_t timeout_ms);

 private:
  bool fill(std::int64_t deadline_ms);  // false at end of input
  int m_fd;
  const std::atomic<bool>* m_cancel = nullptr;
  std::string m_buffer;
  std::size_t m_start = 0;
};

// Writes one frame (header and payload) in full.
void write_frame(int fd, nlohmann::json header, std::string_view payload = {});

// The client's end: an ssh session running the agent on the login node.
class AgentSession {
 public:
  // Starts `script` (which execs the agent) through the connection's master.
  AgentSession(SshConnection& connection, const std::string& script);
  ~AgentSession();
  AgentSession(const AgentSession&) = delete;
  AgentSession& operator=(const AgentSession&) = delete;

  // Sends a request and returns its reply's header and payload; a reply
  // with "ok": false throws (InputError for exit 2, else InfraError), as
  // does a session that ended or did not answer within `timeout`.
  Frame call(const nlohmann::json& request, std::string_view payload = {},
             std::chrono::milliseconds timeout = std::chrono::seconds(120));
  void send(const nlohmann::json& header, std::string_view payload = {});
  Frame receive(std::chrono::milliseconds timeout);
  // False once the session broke (ssh ended, a timeout): make a new one.
  bool alive();
  // A waiting receive() gives up (util::InfraError) soon after *cancel turns
  // true: a follower told to stop does not wait out a long poll.
  void set_cancel(const std::atomic<bool>* cancel) { m_reader->set_cancel(cancel); }

 private:
  [[noreturn]] void fail(const std::string& what);
  SshConnection& m_connection;
  pid_t m_pid = -1;
  int m_in = -1;                // the agent's standard input
  int m_out = -1;               // its standard output
  std::filesystem::path m_err;  // ssh's and the agent's standard error
  std::unique_ptr<FrameReader> m_reader;
  bool m_alive = true;
};

// Throws the error a reply carries ({"ok": false, ...}), if it does.
void check_reply(const nlohmann::json& header);
// The reply to send for an exception caught while serving a request.
nlohmann::json error_reply(const std::exception& error);

}  // namespace amlrun::compute
