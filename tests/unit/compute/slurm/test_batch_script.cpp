// What reaches sbatch: options as argv (never #SBATCH lines), a batch script
// whose every word is quoted, sanitised job names. The hostile values below
// are the ones the issue names: quotes, $(), newlines and commas.
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "lib/compute/slurm/batch_script.hpp"
#include "lib/util/process.hpp"
#include "tests/unit/test_support.hpp"

using namespace amlrun;
using Strings = std::vector<std::string>;
using unit_test::TempDir;

namespace {

const std::string k_hostile =
    "x'; touch /tmp/amlrun-pwned; echo '$(touch /tmp/amlrun-pwned)`id`\n"
    "#SBATCH --partition=evil,--time=1";

compute::SbatchRequest request() {
  compute::SbatchRequest r;
  r.job_name = "train";
  r.comment = "amlrun:exp_20261122T010600_0a1b2c3d:00112233";
  r.nodes = 2;
  r.tasks_per_node = 4;
  r.run_dir = "/shared/runs/exp_20261122T010600_0a1b2c3d";
  r.script = r.run_dir / "job.sbatch";
  return r;
}

}  // namespace

TEST_CASE("sbatch gets every option as one argv word") {
  compute::SlurmSettings settings;
  settings.shared_dir = "/shared";
  CHECK(compute::sbatch_command(request(), settings) ==
        Strings{"sbatch", "--parsable", "--job-name=train",
                "--comment=amlrun:exp_20261122T010600_0a1b2c3d:00112233", "--nodes=2",
                "--ntasks-per-node=4",
                "--output=/shared/runs/exp_20261122T010600_0a1b2c3d/slurm-%j.out",
                "--open-mode=append", "--chdir=/shared/runs/exp_20261122T010600_0a1b2c3d",
                "/shared/runs/exp_20261122T010600_0a1b2c3d/job.sbatch"});

  settings.partition = "gpu";
  settings.account = "ml";
  settings.qos = "high";
  settings.constraint = "a100";
  settings.extra_sbatch_args = {"--mem=64G", "--exclusive"};
  auto r = request();
  r.timeout_seconds = 3600;
  r.kill_grace_seconds = 10;
  r.gpus_per_node = 4;
  CHECK(compute::sbatch_command(r, settings) ==
        Strings{"sbatch", "--parsable", "--job-name=train",
                "--comment=amlrun:exp_20261122T010600_0a1b2c3d:00112233", "--nodes=2",
                "--ntasks-per-node=4",
                "--output=/shared/runs/exp_20261122T010600_0a1b2c3d/slurm-%j.out",
                "--open-mode=append", "--chdir=/shared/runs/exp_20261122T010600_0a1b2c3d",
                "--time=62", "--partition=gpu", "--account=ml", "--qos=high", "--constraint=a100",
                "--gpus-per-node=4", "--mem=64G", "--exclusive",
                "/shared/runs/exp_20261122T010600_0a1b2c3d/job.sbatch"});
}

TEST_CASE("a hostile job name becomes one safe word and drops no option") {
  compute::SlurmSettings settings;
  auto r = request();
  r.job_name = k_hostile;
  r.timeout_seconds = 60;
  auto argv = compute::sbatch_command(r, settings);
  CHECK(argv.size() == 11);
  CHECK(argv[2] == "--job-name=x_touch_tmp_amlrun-pwned_echo_touch_tmp_amlrun-pwned_id_SBATCH_-");
  CHECK(argv[9] == "--time=3");
  CHECK(argv.back() == "/shared/runs/exp_20261122T010600_0a1b2c3d/job.sbatch");
  CHECK(compute::slurm_job_name("résumé run #2") == "r_sum_run_2");
  CHECK(compute::slurm_job_name("\n$()") == "amlrun");
  CHECK(compute::slurm_job_name("train.v2-final") == "train.v2-final");
  CHECK(compute::slurm_job_name(std::string(100, 'a')) == std::string(64, 'a'));
}

TEST_CASE("the Slurm time limit backs up amlrun's timeout with room to end") {
  CHECK(compute::slurm_time_limit_minutes(1, 10) == 2);
  CHECK(compute::slurm_time_limit_minutes(60, 0) == 2);
  CHECK(compute::slurm_time_limit_minutes(3600, 10) == 62);
}

TEST_CASE("the batch script is one quoted exec of the driver") {
  CHECK(compute::batch_script("/shared/bin/0.1.0-ab/amlrun", "/shared/runs/r") ==
        "#!/bin/sh\n"
        "# Written by amlrun. Scheduler options were given to sbatch as arguments, the\n"
        "# job's environment variables are in job.env (read by amlrun, never by a\n"
        "# shell), and every word below is quoted: nothing a job file says can change\n"
        "# what this script does.\n"
        "exec /shared/bin/0.1.0-ab/amlrun _slurm-run --run-dir /shared/runs/r\n");
}

TEST_CASE("the batch script passes hostile paths to the driver verbatim, through a real shell") {
  // A shared_dir holding quotes, $(), backticks, a newline and commas: the
  // script must hand exactly these bytes to the program and run nothing else.
  TempDir dir;
  std::string weird = "sh'ared $(touch pwned) `touch pwned2`\n#SBATCH -p evil,x";
  auto root = dir.path / weird;
  std::filesystem::create_directories(root);
  auto fake_amlrun = root / "amlrun";
  std::string printer = "#!/bin/sh\nfor a in \"$@\"; do printf '[%s]' \"$a\"; done\n";
  { std::ofstream(fake_amlrun) << printer; }
  ::chmod(fake_amlrun.c_str(), 0755);
  auto run_dir = root / "runs" / "r";
  auto script = dir.write("job.sbatch", compute::batch_script(fake_amlrun, run_dir));
  util::SpawnOptions options;
  options.argv = {"/bin/sh", script.string()};
  options.cwd = dir.path;
  auto result = util::run_capture(options);
  CHECK(result.exit_code == 0);
  CHECK(result.out == "[_slurm-run][--run-dir][" + run_dir.string() + "]");
  CHECK_FALSE(std::filesystem::exists(dir.path / "pwned"));
  CHECK_FALSE(std::filesystem::exists(dir.path / "pwned2"));
}
