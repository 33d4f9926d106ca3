#include "lib/train/comm.hpp"

#include <mpi.h>

#include <fmt/format.h>
#include <cstdlib>
#include <future>

#include "lib/train/messages.hpp"
#include "lib/util/error.hpp"

namespace amlrun::train {

namespace {

const char* env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : nullptr;
}

int env_int(std::initializer_list<const char*> names, int fallback) {
  for (const char* name : names) {
    if (const char* value = env(name)) {
      return std::atoi(value);
    }
  }
  return fallback;
}

std::int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string thread_level_name(int level) {
  switch (level) {
    case MPI_THREAD_SINGLE:
      return "MPI_THREAD_SINGLE";
    case MPI_THREAD_FUNNELED:
      return "MPI_THREAD_FUNNELED";
    case MPI_THREAD_SERIALIZED:
      return "MPI_THREAD_SERIALIZED";
    case MPI_THREAD_MULTIPLE:
      return "MPI_THREAD_MULTIPLE";
    default:
      return fmt::format("thread level {}", level);
  }
}

// MPI counts are ints; larger buffers go in chunks of 1 GiB.
constexpr std::size_t k_max_chunk_bytes = std::size_t{1} << 30;

}  // namespace

bool launched_by_mpi() {
  return env("OMPI_COMM_WORLD_SIZE") != nullptr || env("PMIX_RANK") != nullptr ||
         (env("PMI_RANK") != nullptr && env("PMI_SIZE") != nullptr);
}

int launcher_rank() {
  return launched_by_mpi() ? env_int({"OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"}, 0) : 0;
}

int launcher_world_size() {
  return launched_by_mpi() ? env_int({"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_NTASKS"}, 1) : 1;
}

Communicator::Communicator(double collective_timeout_seconds)
    : m_timeout_seconds(collective_timeout_seconds), m_uses_mpi(launched_by_mpi()) {
  if (!m_uses_mpi) {
    return;
  }
  m_thread = std::thread([this] { thread_main(); });
  std::unique_lock lock(m_mutex);
  m_changed.wait(lock, [this] { return m_ready; });
  lock.unlock();
  if (m_timeout_seconds > 0) {
    m_watchdog = std::thread([this] { watchdog_main(); });
  }
}

Communicator::~Communicator() {
  if (!m_uses_mpi) {
    return;
  }
  {
    std::lock_guard lock(m_watchdog_mutex);
    m_watchdog_stopping = true;
  }
  m_watchdog_wake.notify_all();
  if (m_watchdog.joinable()) {
    m_watchdog.join();
  }
  {
    std::lock_guard lock(m_mutex);
    m_stopping = true;
  }
  m_changed.notify_all();
  m_thread.join();
}

void Communicator::thread_main() {
  int provided = MPI_THREAD_SINGLE;
  MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
  m_thread_level = thread_level_name(provided);
  MPI_Comm_rank(MPI_COMM_WORLD, &m_rank);
  MPI_Comm_size(MPI_COMM_WORLD, &m_world_size);
  MPI_Comm local;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, m_rank, MPI_INFO_NULL, &local);
  MPI_Comm_rank(local, &m_local_rank);
  MPI_Comm_size(local, &m_local_size);
  MPI_Comm_free(&local);
  char version[MPI_MAX_LIBRARY_VERSION_STRING];
  int length = 0;
  MPI_Get_library_version(version, &length);
  m_library_version = std::string(version, static_cast<std::size_t>(length));
  if (auto end = m_library_version.find_first_of(",\n"); end != std::string::npos) {
    m_library_version.resize(end);
  }
  {
    std::lock_guard lock(m_mutex);
    m_ready = true;
  }
  m_changed.notify_all();
  while (true) {
    Task task;
    {
      std::unique_lock lock(m_mutex);
      m_changed.wait(lock, [this] { return m_stopping || !m_tasks.empty(); });
      if (m_tasks.empty()) {
        break;
      }
      task = std::move(m_tasks.front());
      m_tasks.pop_front();
    }
    {
      std::lock_guard lock(m_busy_mutex);
      m_busy_what = task.what;
    }
    std::int64_t start = now_ns();
    m_busy_since_ns = start;
    task.run();
    m_busy_since_ns = 0;
    m_busy_nanoseconds += static_cast<std::uint64_t>(now_ns() - start);
    if (task.counted) {
      {
        std::lock_guard lock(m_mutex);
        m_completed += 1;
      }
      m_changed.notify_all();
    }
  }
  MPI_Finalize();
}

void Communicator::watchdog_main() {
  const auto period = std::chrono::milliseconds(std::clamp(
      static_cast<std::int64_t>(m_timeout_seconds * 250), std::int64_t{50}, std::int64_t{1000}));
  std::unique_lock lock(m_watchdog_mutex);
  while (!m_watchdog_wake.wait_for(lock, period, [this] { return m_watchdog_stopping; })) {
    std::int64_t since = m_busy_since_ns.load();
    if (since == 0) {
      continue;
    }
    double waited = (now_ns() - since) * 1e-9;
    if (waited < m_timeout_seconds) {
      continue;
    }
    std::string what;
    {
      std::lock_guard busy_lock(m_busy_mutex);
      what = m_busy_what;
    }
    worker_error(fmt::format(
        "{} has waited {:.0f} s for the other ranks (--collective-timeout {}): a rank has died "
        "or hangs; ending the job",
        what, waited, m_timeout_seconds));
    MPI_Abort(MPI_COMM_WORLD, 1);
    std::_Exit(1);
  }
}

void Communicator::run_blocking(std::function<void()> run, const std::string& what) {
  std::promise<void> done;
  std::future<void> finished = done.get_future();
  {
    std::lock_guard lock(m_mutex);
    m_tasks.push_back(Task{[&run, &done] {
                             run();
                             done.set_value();
                           },
                           what, false});
  }
  m_changed.notify_all();
  finished.wait();
}

void Communicator::broadcast(void* data, std::size_t bytes, int root, const std::string& what) {
  if (m_world_size == 1) {
    return;
  }
  run_blocking(
      [=] {
        auto* pointer = static_cast<char*>(data);
        for (std::size_t offset = 0; offset < bytes; offset += k_max_chunk_bytes) {
          auto chunk = static_cast<int>(std::min(k_max_chunk_bytes, bytes - offset));
          MPI_Bcast(pointer + offset, chunk, MPI_BYTE, root, MPI_COMM_WORLD);
        }
      },
      what);
}

void Communicator::allreduce_sum(double* data, std::size_t count, const std::string& what) {
  if (m_world_size == 1) {
    return;
  }
  run_blocking(
      [=] {
        const std::size_t chunk_count = k_max_chunk_bytes / sizeof(double);
        for (std::size_t offset = 0; offset < count; offset += chunk_count) {
          auto chunk = static_cast<int>(std::min(chunk_count, count - offset));
          MPI_Allreduce(MPI_IN_PLACE, data + offset, chunk, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
        }
      },
      what);
}

void Communicator::allreduce_sum(float* data, std::size_t count, const std::string& what) {
  if (m_world_size == 1) {
    return;
  }
  run_blocking(
      [=] {
        const std::size_t chunk_count = k_max_chunk_bytes / sizeof(float);
        for (std::size_t offset = 0; offset < count; offset += chunk_count) {
          auto chunk = static_cast<int>(std::min(chunk_count, count - offset));
          MPI_Allreduce(MPI_IN_PLACE, data + offset, chunk, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
        }
      },
      what);
}

void Communicator::submit_allreduce(float* data, std::size_t count, const std::string& what) {
  {
    std::lock_guard lock(m_mutex);
    m_submitted += 1;
    if (m_world_size == 1) {
      m_completed += 1;
      return;
    }
    m_tasks.push_back(Task{[=] {
                             const std::size_t chunk_count = k_max_chunk_bytes / sizeof(float);
                             for (std::size_t offset = 0; offset < count; offset += chunk_count) {
                               auto chunk = static_cast<int>(std::min(chunk_count, count - offset));
                               MPI_Allreduce(MPI_IN_PLACE, data + offset, chunk, MPI_FLOAT, MPI_SUM,
                                             MPI_COMM_WORLD);
                             }
                           },
                           what, true});
  }
  m_changed.notify_all();
}

void Communicator::wait_completed(std::uint64_t count) {
  std::unique_lock lock(m_mutex);
  m_changed.wait(lock, [&] { return m_completed.load() >= count; });
}

void Communicator::wait_idle() {
  std::uint64_t submitted;
  {
    std::lock_guard lock(m_mutex);
    submitted = m_submitted;
  }
  wait_completed(submitted);
}

void Communicator::abort(int exit_code) {
  if (m_uses_mpi) {
    MPI_Abort(MPI_COMM_WORLD, exit_code);
  }
  std::_Exit(exit_code);
}

}  // namespace amlrun::train
