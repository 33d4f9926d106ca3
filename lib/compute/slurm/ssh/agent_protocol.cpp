#include "lib/compute/slurm/ssh/agent_protocol.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcntl.h>
#include <fmt/format.h>
#include <cerrno>
#include <thread>

#include "lib/util/error.hpp"
#include "lib/util/fs.hpp"
#include "lib/util/random.hpp"
#include "lib/util/strings.hpp"
#include "lib/util/time.hpp"

namespace amlrun::compute {

namespace {

// A header is a few KiB at most (a run record, a list of offsets); a frame
// claiming more is not one of ours.
constexpr std::size_t k_max_header = 16 << 20;
constexpr std::size_t k_max_payload = 1ull << 32;

std::int64_t deadline_of(std::int64_t timeout_ms) {
  return timeout_ms < 0 ? -1 : util::monotonic_ms() + timeout_ms;
}

}  // namespace

bool FrameReader::fill(std::int64_t deadline_ms) {
  if (m_start > 0 && m_start == m_buffer.size()) {
    m_buffer.clear();
    m_start = 0;
  }
  for (;;) {
    if (deadline_ms >= 0 || m_cancel) {
      if (m_cancel && *m_cancel) throw util::InfraError("stopped");
      std::int64_t left = deadline_ms < 0 ? 100 : deadline_ms - util::monotonic_ms();
      if (left <= 0) throw util::InfraError("no answer in time");
      struct pollfd fd = {m_fd, POLLIN, 0};
      int ready = ::poll(&fd, 1, static_cast<int>(std::min<std::int64_t>(left, 100)));
      if (ready < 0 && errno != EINTR) util::throw_errno("cannot wait for the ssh session");
      if (ready <= 0) continue;
    }
    char chunk[1 << 16];
    ssize_t got = ::read(m_fd, chunk, sizeof chunk);
    if (got < 0) {
      if (errno == EINTR) continue;
      util::throw_errno("cannot read from the ssh session");
    }
    if (got == 0) return false;
    m_buffer.append(chunk, static_cast<std::size_t>(got));
    return true;
  }
}

bool FrameReader::skip_to_line(std::string_view line, std::size_t max_bytes,
                               std::int64_t timeout_ms) {
  std::int64_t deadline = deadline_of(timeout_ms);
  std::size_t skipped = 0;
  for (;;) {
    auto end = m_buffer.find('\n', m_start);
    while (end != std::string::npos) {
      std::string_view got(m_buffer.data() + m_start, end - m_start);
      m_start = end + 1;
      if (got == line) return true;
      skipped += got.size() + 1;
      if (skipped > max_bytes) return false;
      end = m_buffer.find('\n', m_start);
    }
    if (m_buffer.size() - m_start > max_bytes) return false;
    if (!fill(deadline)) return false;
  }
}

std::optional<Frame> FrameReader::read(std::int64_t timeout_ms) {
  std::int64_t deadline = deadline_of(timeout_ms);
  std::size_t end;
  while ((end = m_buffer.find('\n', m_start)) == std::string::npos) {
    if (m_buffer.size() - m_start > k_max_header) {
      throw util::InfraError("the other side sent a frame header over 16 MiB");
    }
    if (!fill(deadline)) {
      if (m_buffer.size() == m_start) return std::nullopt;
      throw util::InfraError("the ssh session ended in the middle of a frame");
    }
  }
  Frame frame;
  try {
    frame.header = nlohmann::json::parse(m_buffer.begin() + static_cast<std::ptrdiff_t>(m_start),
                                         m_buffer.begin() + static_cast<std::ptrdiff_t>(end));
  } catch (const nlohmann::json::exception&) {
    throw util::InfraError(
        fmt::format("the other side sent something that is not a frame header: {}",
                    m_buffer.substr(m_start, std::min<std::size_t>(end - m_start, 200))));
  }
  m_start = end + 1;
  if (!frame.header.is_object()) throw util::InfraError("a frame header is not a JSON object");
  std::uint64_t bytes = frame.header.value("bytes", std::uint64_t{0});
  if (bytes > k_max_payload) throw util::InfraError("a frame claims a payload over 4 GiB");
  frame.payload.reserve(bytes);
  while (frame.payload.size() < bytes) {
    if (m_start == m_buffer.size() && !fill(deadline)) {
      throw util::InfraError("the ssh session ended in the middle of a frame");
    }
    std::size_t take =
        std::min<std::size_t>(bytes - frame.payload.size(), m_buffer.size() - m_start);
    frame.payload.append(m_buffer, m_start, take);
    m_start += take;
  }
  return frame;
}

void write_frame(int fd, nlohmann::json header, std::string_view payload) {
  if (!payload.empty()) header["bytes"] = payload.size();
  std::string line = header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  util::write_all(fd, line, "the ssh session");
  if (!payload.empty()) util::write_all(fd, payload, "the ssh session");
}

void check_reply(const nlohmann::json& header) {
  if (header.value("ok", false)) return;
  std::string message = header.value("error", std::string("the agent on the login node failed"));
  if (header.value("exit", 3) == 2) throw util::InputError(message);
  throw util::InfraError(message);
}

nlohmann::json error_reply(const std::exception& error) {
  int exit = 3;
  if (const auto* known = dynamic_cast<const util::Error*>(&error)) {
    exit = static_cast<int>(known->code());
  }
  return {{"ok", false}, {"error", error.what()}, {"exit", exit}};
}

AgentSession::AgentSession(SshConnection& connection, const std::string& script)
    : m_connection(connection) {
  int to_agent[2];
  int from_agent[2];
  if (::pipe2(to_agent, O_CLOEXEC) != 0) util::throw_errno("cannot create a pipe");
  if (::pipe2(from_agent, O_CLOEXEC) != 0) {
    ::close(to_agent[0]);
    ::close(to_agent[1]);
    util::throw_errno("cannot create a pipe");
  }
  m_err =
      connection.private_dir() / fmt::format("session-{}-{}.err", ::getpid(), util::random_hex(4));
  util::UniqueFd err(::open(m_err.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  util::SpawnOptions options;
  options.argv = connection.command_argv(script);
  options.stdin_fd = to_agent[0];
  options.stdout_fd = from_agent[1];
  options.stderr_fd = err ? err.get() : util::k_null_fd;
  // Ctrl-C on the terminal is amlrun's to handle (detach), not ssh's.
  options.new_process_group = true;
  try {
    m_pid = util::spawn(options);
  } catch (...) {
    for (int fd : {to_agent[0], to_agent[1], from_agent[0], from_agent[1]}) ::close(fd);
    throw;
  }
  ::close(to_agent[0]);
  ::close(from_agent[1]);
  m_in = to_agent[1];
  m_out = from_agent[0];
  m_reader = std::make_unique<FrameReader>(m_out);
  // A broken session is an error from write(), not a signal that ends amlrun.
  (void)::signal(SIGPIPE, SIG_IGN);
  bool greeted = false;
  try {
    greeted = m_reader->skip_to_line(k_agent_greeting, 64 << 10, 60000);
  } catch (const util::Error& error) {
    fail(error.what());
  }
  if (!greeted) fail("the agent did not start");
}

AgentSession::~AgentSession() {
  if (m_in >= 0) ::close(m_in);  // the agent ends at end of input
  if (m_pid > 0) {
    // Give it a moment to leave on its own, then end the local ssh.
    for (int i = 0; i < 50; ++i) {
      int status = 0;
      if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
        m_pid = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (m_pid > 0) {
      ::kill(m_pid, SIGTERM);
      util::wait_for(m_pid);
    }
  }
  if (m_out >= 0) ::close(m_out);
  std::error_code error;
  std::filesystem::remove(m_err, error);
}

bool AgentSession::alive() {
  // An ssh that ended (its master killed, the link gone) ends the session
  // even before anyone has read from it.
  if (m_alive && m_pid > 0) {
    int status = 0;
    if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
      m_pid = -1;
      m_alive = false;
    }
  }
  return m_alive;
}

void AgentSession::fail(const std::string& what) {
  m_alive = false;
  // What ssh said explains it better than a broken pipe does.
  std::string said;
  try {
    said = util::read_file(m_err);
  } catch (const util::Error&) {
  }
  if (m_pid > 0) {
    int status = 0;
    if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
      m_pid = -1;
      if (util::exit_code_of(status) == 255) {
        throw util::InfraError(explain_ssh_failure(m_connection.who(), said));
      }
    }
  }
  std::string detail = said.empty() ? "" : fmt::format(" (it said: {})", util::trim(said));
  throw util::InfraError(fmt::format("{}: the session with amlrun on the login node broke: {}{}",
                                     m_connection.who(), what, detail));
}

void AgentSession::send(const nlohmann::json& header, std::string_view payload) {
  if (!m_alive) fail("it broke earlier");
  try {
    write_frame(m_in, header, payload);
  } catch (const util::Error& error) {
    // Give ssh a moment to exit, so its status says why.
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    fail(error.what());
  }
}

Frame AgentSession::receive(std::chrono::milliseconds timeout) {
  if (!m_alive) fail("it broke earlier");
  std::optional<Frame> frame;
  try {
    frame = m_reader->read(timeout.count());
  } catch (const util::Error& error) {
    if (m_pid > 0) ::kill(m_pid, SIGTERM);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    fail(error.what());
  }
  if (!frame) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    fail("it ended");
  }
  return std::move(*frame);
}

Frame AgentSession::call(const nlohmann::json& request, std::string_view payload,
                         std::chrono::milliseconds timeout) {
  send(request, payload);
  Frame reply = receive(timeout);
  check_reply(reply.header);
  return reply;
}

}  // namespace amlrun::compute
