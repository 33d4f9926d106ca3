#pragma once
// MPI for the trainer, behind one communication thread.
//
// Every MPI call of the process runs on that thread, which is also the
// thread that initialises and finalises MPI (the FUNNELED model, with the
// communication thread as MPI's "main" thread). Collectives are blocking
// calls: Open MPI's non-blocking collectives only progress inside MPI calls,
// so MPI_Iallreduce would not overlap with backward; a dedicated thread in a
// blocking MPI_Allreduce does (Horovod's design).
//
// A watchdog thread bounds every collective: when one has waited longer than
// the timeout (a rank died without mpirun noticing, or hangs), it prints what
// was waiting and calls MPI_Abort, which makes mpirun end every rank with a
// non-zero exit. MPI is initialised with MPI_THREAD_MULTIPLE where offered so
// that this one call from another thread is legal.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace amlrun::train {

// True when the environment says mpirun or srun started this process
// (OMPI_COMM_WORLD_SIZE, PMIX_RANK, PMI_RANK/PMI_SIZE). Without a launcher
// the worker runs as a world of one and never initialises MPI.
bool launched_by_mpi();

// The launcher's rank and size before MPI is initialised (0 and 1 when not
// launched by MPI): rank 0 checks its output folder before anything starts.
int launcher_rank();
int launcher_world_size();

class Communicator {
 public:
  // collective_timeout_seconds <= 0 disables the watchdog.
  explicit Communicator(double collective_timeout_seconds);
  ~Communicator();  // MPI_Finalize on the communication thread
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;

  int rank() const { return m_rank; }
  int world_size() const { return m_world_size; }
  int local_rank() const { return m_local_rank; }
  int local_size() const { return m_local_size; }
  bool uses_mpi() const { return m_uses_mpi; }
  // "Open MPI v4.1.4, ..." (first line), "" without MPI.
  const std::string& library_version() const { return m_library_version; }
  // "MPI_THREAD_MULTIPLE" etc.
  const std::string& thread_level() const { return m_thread_level; }

  // Blocking collectives (no-ops in a world of one). `what` names the
  // collective in the watchdog's message.
  void broadcast(void* data, std::size_t bytes, int root, const std::string& what);
  void allreduce_sum(double* data, std::size_t count, const std::string& what);
  void allreduce_sum(float* data, std::size_t count, const std::string& what);

  // Queues an in-place float sum-allreduce and returns at once; queued
  // allreduces run one after another in the order submitted.
  void submit_allreduce(float* data, std::size_t count, const std::string& what);
  // Waits until everything submitted has completed.
  void wait_idle();
  // Number of queued allreduces completed so far (in submission order).
  std::uint64_t completed() const { return m_completed.load(); }
  // Waits until at least `count` queued allreduces have completed.
  void wait_completed(std::uint64_t count);

  // Seconds the communication thread spent inside MPI collectives.
  double busy_seconds() const { return m_busy_nanoseconds.load() * 1e-9; }

  // Ends the whole job: MPI_Abort (mpirun then stops every rank), or exit()
  // when not under MPI.
  [[noreturn]] void abort(int exit_code);

 private:
  struct Task {
    std::function<void()> run;
    std::string what;
    bool counted = false;  // a submit_allreduce task
  };
  void thread_main();
  void watchdog_main();
  void run_blocking(std::function<void()> run, const std::string& what);

  double m_timeout_seconds;
  bool m_uses_mpi = false;
  int m_rank = 0;
  int m_world_size = 1;
  int m_local_rank = 0;
  int m_local_size = 1;
  std::string m_library_version;
  std::string m_thread_level;

  std::mutex m_mutex;
  std::condition_variable m_changed;
  std::deque<Task> m_tasks;
  bool m_ready = false;
  bool m_stopping = false;
  std::uint64_t m_submitted = 0;
  std::atomic<std::uint64_t> m_completed{0};
  std::atomic<std::uint64_t> m_busy_nanoseconds{0};

  // What the communication thread is waiting in, and since when (0: idle).
  std::mutex m_busy_mutex;
  std::string m_busy_what;
  std::atomic<std::int64_t> m_busy_since_ns{0};

  std::thread m_thread;
  std::thread m_watchdog;
  std::mutex m_watchdog_mutex;
  std::condition_variable m_watchdog_wake;
  bool m_watchdog_stopping = false;
};

}  // namespace amlrun::train
