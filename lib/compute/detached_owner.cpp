#include "lib/compute/detached_owner.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "lib/launch/program.hpp"
#include "lib/store/run_layout.hpp"
#include "lib/util/process.hpp"
#include "lib/util/safe_dir.hpp"
#include "lib/util/time.hpp"

namespace amlrun::compute {

void start_detached_owner(const store::RunStore& store, const store::RunRecord& record,
                          const util::FileLock& lock, const std::string& command,
                          const std::string& log_name) {
  store::RunLayout layout(store.run_dir(record.id));
  // amlrun's captures live outside the job's working directory from the
  // start (store/run_layout.hpp); the owner's own log is one of them.
  auto root = util::SafeDir::open(layout.root());
  for (const auto& dir : {store::RunTree::relative_user_logs(), store::RunTree::relative_metrics(),
                          store::RunTree::relative_system_logs()}) {
    root.make_dirs(dir);
  }
  util::UniqueFd log = root.dir(store::RunTree::relative_system_logs())
                           .open_file(log_name, O_WRONLY | O_CREAT | O_APPEND);
  util::SpawnOptions options;
  options.argv = {launch::amlrun_executable().string(),
                  command,
                  "--root",
                  store.workspace().root().string(),
                  "--run",
                  record.id,
                  "--lock-fd",
                  std::to_string(lock.fd())};
  options.stdout_fd = log.get();
  options.stderr_fd = log.get();
  options.new_session = true;
  options.inherit_fds = {lock.fd()};
  util::spawn(options);
}

void request_owner_cancel(const store::RunStore& store, const store::RunRecord& record,
                          std::optional<pid_t> pid) {
  store::RunLayout layout(store.run_dir(record.id));
  util::SafeDir::open(layout.root()).write_file(store::k_cancel_request_file, "canceled by user\n");
  if (util::is_locked(layout.owner_lock()) && pid) ::kill(*pid, SIGUSR1);
}

void wait_for_owner_exit(const store::RunStore& store, const store::RunRecord& record) {
  store::RunLayout layout(store.run_dir(record.id));
  const std::int64_t deadline = util::monotonic_ms() + 10000;
  while (util::is_locked(layout.owner_lock()) && util::monotonic_ms() < deadline) {
    ::usleep(1000);
  }
}

}  // namespace amlrun::compute
