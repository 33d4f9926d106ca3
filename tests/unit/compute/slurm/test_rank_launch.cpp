// The node side of Slurm runs: the exact launch argv for each distribution
// and container runtime (neither pyxis nor apptainer runs on the test
// machines, so their argv is all that can be checked here), and the files
// that carry a run from the submitter to the nodes.
#include <catch2/catch.hpp>
#include <string>

#include "lib/compute/slurm/rank_launch.hpp"
#include "lib/compute/slurm/run_directory.hpp"
#include "lib/util/process.hpp"
#include "tests/unit/test_support.hpp"

using namespace amlrun;
using namespace std::string_literals;
using Strings = std::vector<std::string>;
using unit_test::message_of;
using unit_test::TempDir;

namespace {

compute::SlurmRankLaunch plan(spec::DistributionType type, int nodes, int per_node) {
  compute::SlurmRankLaunch l;
  l.distribution = type;
  l.nodes = nodes;
  l.tasks_per_node = per_node;
  l.amlrun = "/shared/bin/v1/amlrun";
  l.run_dir = "/shared/runs/r";
  l.working_dir = "/shared/runs/r/wd";
  l.shared_dir = "/shared";
  l.program = {"bash", "-c", "python train.py \"${AMLRUN_INPUT_lr}\"", "amlrun-command"};
  return l;
}

const Strings k_program = {"bash", "-c", "python train.py \"${AMLRUN_INPUT_lr}\"",
                           "amlrun-command"};

Strings concat(Strings a, const Strings& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

}  // namespace

TEST_CASE("a pytorch job is one srun task per process, wrapped by _rank-exec") {
  CHECK(compute::slurm_rank_command(plan(spec::DistributionType::pytorch, 2, 4)) ==
        concat({"srun", "--mpi=none", "--nodes=2", "--ntasks=8", "--ntasks-per-node=4",
                "--kill-on-bad-exit=1", "/shared/bin/v1/amlrun", "_rank-exec", "--run-dir",
                "/shared/runs/r", "--processes-per-node", "4", "--"},
               k_program));
}

TEST_CASE("a single-process job gets no torch contract, as locally") {
  CHECK(compute::slurm_rank_command(plan(spec::DistributionType::none, 1, 1)) ==
        concat({"srun", "--mpi=none", "--nodes=1", "--ntasks=1", "--ntasks-per-node=1",
                "--kill-on-bad-exit=1", "/shared/bin/v1/amlrun", "_rank-exec", "--run-dir",
                "/shared/runs/r", "--processes-per-node", "1", "--no-torch-contract", "--"},
               k_program));
}

TEST_CASE("an mpi job uses srun --mpi=pmix, or mpirun with a hostfile without PMIx") {
  auto with_pmix = plan(spec::DistributionType::mpi, 2, 1);
  CHECK(compute::slurm_rank_command(with_pmix) ==
        concat({"srun", "--mpi=pmix", "--nodes=2", "--ntasks=2", "--ntasks-per-node=1",
                "--kill-on-bad-exit=1", "/shared/bin/v1/amlrun", "_rank-exec", "--run-dir",
                "/shared/runs/r", "--processes-per-node", "1", "--"},
               k_program));

  auto without = plan(spec::DistributionType::mpi, 2, 3);
  without.pmix = false;
  without.mpirun = "/usr/bin/mpirun";
  without.hostfile = "/shared/runs/r/hostfile";
  without.as_root = true;
  CHECK(compute::slurm_rank_command(without) ==
        concat({"/usr/bin/mpirun", "--allow-run-as-root", "--hostfile", "/shared/runs/r/hostfile",
                "-np", "6", "--map-by", "ppr:3:node", "--bind-to", "none", "/shared/bin/v1/amlrun",
                "_rank-exec", "--run-dir", "/shared/runs/r", "--processes-per-node", "3", "--"},
               k_program));
  CHECK(compute::mpirun_hostfile({"n1", "n2"}, 3) == "n1 slots=3\nn2 slots=3\n");
}

TEST_CASE("pyxis: srun starts each task in the image and writes its log itself") {
  auto pyxis = plan(spec::DistributionType::pytorch, 2, 2);
  pyxis.container = compute::ContainerLaunch{"pyxis", "nvcr.io/nvidia/pytorch:24.01-py3"};
  CHECK(compute::slurm_rank_command(pyxis) ==
        concat({"srun", "--mpi=none", "--nodes=2", "--ntasks=4", "--ntasks-per-node=2",
                "--kill-on-bad-exit=1", "--container-image=nvcr.io/nvidia/pytorch:24.01-py3",
                "--container-mounts=/shared:/shared", "--container-workdir=/shared/runs/r/wd",
                "--output=/shared/runs/r/artifacts/logs/user_logs/std_log_rank_%t.txt",
                "--error=/shared/runs/r/artifacts/logs/user_logs/std_log_rank_%t.txt",
                "--open-mode=append", "bash", "-c",
                "export AMLRUN_METRICS_FILE=\"$AMLRUN_METRICS_DIR/rank_$SLURM_PROCID.jsonl\"; "
                "if [ -n \"$AMLRUN_TRACKING_URI\" ]; then export "
                "MLFLOW_TRACKING_URI=\"$AMLRUN_TRACKING_URI/rank/$SLURM_PROCID\"; fi; "
                "export RANK=\"$SLURM_PROCID\" WORLD_SIZE=\"$SLURM_NTASKS\" "
                "LOCAL_RANK=\"$SLURM_LOCALID\" LOCAL_WORLD_SIZE=2 NODE_RANK=\"$SLURM_NODEID\" "
                "GROUP_RANK=\"$SLURM_NODEID\"; exec \"$@\"",
                "amlrun-rank"},
               k_program));

  auto mpi = plan(spec::DistributionType::mpi, 2, 1);
  mpi.container = pyxis.container;
  mpi.pmix = false;
  CHECK_THAT(message_of([&] { compute::slurm_rank_command(mpi); }),
             Catch::StartsWith("this Slurm has no PMIx plugin"));
}

TEST_CASE("apptainer: _rank-exec on the node runs apptainer exec with the shared dir bound") {
  auto apptainer = plan(spec::DistributionType::mpi, 2, 1);
  apptainer.container = compute::ContainerLaunch{"apptainer", "docker://pytorch/pytorch:latest"};
  apptainer.gpus = true;
  CHECK(compute::slurm_rank_command(apptainer) == concat({"srun",
                                                          "--mpi=pmix",
                                                          "--nodes=2",
                                                          "--ntasks=2",
                                                          "--ntasks-per-node=1",
                                                          "--kill-on-bad-exit=1",
                                                          "/shared/bin/v1/amlrun",
                                                          "_rank-exec",
                                                          "--run-dir",
                                                          "/shared/runs/r",
                                                          "--processes-per-node",
                                                          "1",
                                                          "--",
                                                          "apptainer",
                                                          "exec",
                                                          "--bind",
                                                          "/shared",
                                                          "--pwd",
                                                          "/shared/runs/r/wd",
                                                          "--nv",
                                                          "docker://pytorch/pytorch:latest"},
                                                         k_program));
}

TEST_CASE("srun --mpi=list output is read for pmix") {
  CHECK(compute::srun_offers_pmix("MPI plugin types are...\n\tpmix\n\tnone\n\tpmi2\n"));
  CHECK(compute::srun_offers_pmix("srun: MPI types are...\nsrun: none\nsrun: pmix_v3\n"));
  CHECK_FALSE(compute::srun_offers_pmix("MPI plugin types are...\n\tnone\n\tpmi2\n"));
}

TEST_CASE("the environment file carries any value verbatim and is read back exactly") {
  std::vector<std::pair<std::string, std::string>> variables = {
      {"QUOTES", "it's \"quoted\""},
      {"SUBSTITUTION", "$(touch /tmp/pwned) `id` ${HOME}"},
      {"NEWLINES", "line 1\nline 2\n#SBATCH --partition=evil\n"},
      {"COMMAS", "a=1,b=2,--export=ALL"},
      {"EMPTY", ""},
      {"EQUALS", "x=y=z"},
  };
  std::string encoded = compute::encode_environment_file(variables);
  CHECK(compute::decode_environment_file(encoded, "job.env") == variables);
  CHECK(message_of([&] { compute::decode_environment_file("A=1\0B"s, "job.env"); }) ==
        "job.env: the last entry is not NUL-terminated (a truncated file?)");
  CHECK(message_of([&] {
          compute::decode_environment_file(std::string("1A=x\0", 5), "job.env");
        }) == "job.env: malformed entry '1A=x'");
}

TEST_CASE("the launch plan and the status file round-trip") {
  compute::SlurmLaunchPlan plan;
  plan.run_id = "exp_20261122T010600_0a1b2c3d";
  plan.experiment = "exp";
  plan.workspace_root = "/home/u/project/.amlrun";
  plan.amlrun = "/shared/bin/v/amlrun";
  plan.inputs = {{"lr", "0.1 $(x)"}, {"data", "/shared/runs/r/inputs/data"}};
  plan.outputs = {{"model", "/shared/runs/r/wd/outputs/model"}};
  plan.timeout_seconds = 3600;
  plan.kill_grace_seconds = 5;
  plan.gpus_per_node = 4;
  plan.container = compute::ContainerLaunch{"apptainer", "img.sif"};
  plan.shared_dir = "/shared";
  auto back = compute::slurm_launch_plan_from_json(compute::to_json_text(plan));
  CHECK(back.run_id == plan.run_id);
  CHECK(back.inputs == plan.inputs);
  CHECK(back.outputs == plan.outputs);
  CHECK(back.timeout_seconds == 3600);
  CHECK(back.gpus_per_node == 4);
  REQUIRE(back.container);
  CHECK(back.container->image == "img.sif");

  TempDir dir;
  CHECK_FALSE(compute::read_slurm_status(dir.path));
  compute::SlurmJobStatus status;
  status.state = compute::DriverState::ended;
  status.attempt = 2;
  status.job_id = "17";
  status.nodes = {"n1", "n2"};
  status.started = true;
  status.result = store::RunState::failed;
  status.exit_code = 3;
  status.failure_reason = "rank 1 exited with code 3";
  compute::write_slurm_status(dir.path, status);
  auto read = compute::read_slurm_status(dir.path);
  REQUIRE(read);
  CHECK(read->state == compute::DriverState::ended);
  CHECK(read->result == store::RunState::failed);
  CHECK(read->attempt == 2);
  CHECK(read->nodes == Strings{"n1", "n2"});
  CHECK(read->started);
  CHECK(read->exit_code == 3);
  CHECK(read->failure_reason == "rank 1 exited with code 3");
}

TEST_CASE("MASTER_PORT of a Slurm job depends on the job id only") {
  CHECK(compute::slurm_master_port("1234") == compute::slurm_master_port("1234"));
  CHECK(compute::slurm_master_port("1234") != compute::slurm_master_port("1235"));
  for (const char* id : {"1", "99", "123456"}) {
    int port = compute::slurm_master_port(id);
    CHECK(port >= 20000);
    CHECK(port < 60000);
  }
}

TEST_CASE("tensorflow on Slurm: the cluster follows srun's block layout over the nodes") {
  int master = compute::slurm_master_port("4242");
  auto cluster = compute::slurm_tensorflow_cluster({"node-a", "node-b"}, 2, master, 3);
  auto port = [&](int local_rank) {
    return std::to_string(20000 + (master + 1 + local_rank - 20000) % 40000);
  };
  CHECK(cluster.workers ==
        std::vector<std::string>{"node-a:" + port(0), "node-a:" + port(1), "node-b:" + port(0)});
  CHECK(cluster.parameter_servers == std::vector<std::string>{"node-b:" + port(1)});
  // The same srun line as pytorch: the rank makes TF_CONFIG itself.
  auto tensorflow = plan(spec::DistributionType::tensorflow, 2, 2);
  auto pytorch = plan(spec::DistributionType::pytorch, 2, 2);
  CHECK(compute::slurm_rank_command(tensorflow) == compute::slurm_rank_command(pytorch));
}

TEST_CASE("tensorflow in a pyxis container: the rank script makes TF_CONFIG from the cluster") {
  auto pyxis = plan(spec::DistributionType::tensorflow, 2, 2);
  pyxis.tensorflow_workers = 3;
  pyxis.container = compute::ContainerLaunch{"pyxis", "nvcr.io/nvidia/tensorflow:24.01-tf2-py3"};
  auto argv = compute::slurm_rank_command(pyxis);
  auto script = std::find(argv.begin(), argv.end(), "-c");
  REQUIRE(script != argv.end());
  auto cluster = compute::slurm_tensorflow_cluster({"node-a", "node-b"}, 2, 20000, 3);
  // Run the script as srun would in the container, for a worker and a ps.
  for (auto [procid, expected] : std::vector<std::pair<std::string, std::string>>{
           {"2", "\"task\": {\"type\": \"worker\", \"index\": 2}"},
           {"3", "\"task\": {\"type\": \"ps\", \"index\": 0}"}}) {
    util::SpawnOptions options;
    options.argv = {
        "bash",
        "-c",
        *(script + 1),
        "amlrun-rank",
        "bash",
        "-c",
        "printf %s \"$TF_CONFIG\"; printf '|%s' \"${AMLRUN_TENSORFLOW_CLUSTER-unset}\""};
    options.environment = {"PATH=/usr/bin:/bin",
                           "SLURM_PROCID=" + procid,
                           "SLURM_NTASKS=4",
                           "SLURM_LOCALID=1",
                           "SLURM_NODEID=1",
                           "AMLRUN_METRICS_DIR=/m",
                           "AMLRUN_TENSORFLOW_CLUSTER=" + launch::tensorflow_cluster_json(cluster)};
    auto result = util::run_capture(options);
    CHECK(result.out == "{\"cluster\": " + launch::tensorflow_cluster_json(cluster) + ", " +
                            expected + "}|unset");
  }
}
