// The settings of a `type: slurm` target, read from config.yml with errors
// that name file:line:column and the key.
#include <catch2/catch.hpp>

#include "lib/compute/compute_target.hpp"
#include "lib/compute/slurm/settings.hpp"
#include "lib/compute/slurm/target.hpp"
#include "tests/unit/test_support.hpp"

using namespace amlrun;
using unit_test::message_of;
using unit_test::TempDir;

namespace {

compute::SlurmSettings settings_from(const TempDir& dir, const std::string& yaml) {
  auto config = workspace::load_config(dir.write("config.yml", yaml));
  REQUIRE(config.compute.size() == 1);
  return compute::read_slurm_settings(config.compute[0]);
}

std::string error_of(const TempDir& dir, const std::string& yaml) {
  return message_of([&] { settings_from(dir, yaml); });
}

}  // namespace

TEST_CASE("every key of a slurm target is read") {
  TempDir dir;
  auto settings =
      settings_from(dir,
                    "compute:\n"
                    "  gpu-cluster:\n"
                    "    type: slurm\n"
                    "    shared_dir: /shared/amlrun/\n"
                    "    partition: gpu\n"
                    "    account: ml\n"
                    "    qos: high\n"
                    "    constraint: a100&ib\n"
                    "    gpus_per_node: 4\n"
                    "    extra_sbatch_args: [--mem=64G, --exclusive, -x, --no-requeue]\n"
                    "    container: {runtime: pyxis, image: nvcr.io/nvidia/pytorch:24.01-py3}\n");
  CHECK(settings.name == "gpu-cluster");
  CHECK(settings.shared_dir == "/shared/amlrun");
  CHECK(settings.partition == "gpu");
  CHECK(settings.account == "ml");
  CHECK(settings.qos == "high");
  CHECK(settings.constraint == "a100&ib");
  CHECK(settings.gpus_per_node == 4);
  CHECK(settings.extra_sbatch_args ==
        std::vector<std::string>{"--mem=64G", "--exclusive", "-x", "--no-requeue"});
  REQUIRE(settings.container);
  CHECK(settings.container->runtime == "pyxis");
  CHECK(settings.container->image == "nvcr.io/nvidia/pytorch:24.01-py3");
}

TEST_CASE("a slurm target without shared_dir is refused, saying what it is for") {
  TempDir dir;
  auto file = (dir.path / "config.yml").string();
  CHECK(error_of(dir, "compute:\n  c: {type: slurm, partition: gpu}\n") ==
        file +
            ":2:6: compute.c: missing 'shared_dir': a directory on a filesystem every node of "
            "the cluster mounts at the same path (run directories live there)\n"
            "    2 |   c: {type: slurm, partition: gpu}\n"
            "      |      ^\n"
            "1 error in " +
            file);
}

TEST_CASE("all problems of a slurm target are reported at once, at their positions") {
  TempDir dir;
  auto file = (dir.path / "config.yml").string();
  CHECK(error_of(dir,
                 "compute:\n"
                 "  c:\n"
                 "    type: slurm\n"
                 "    shared_dir: shared/amlrun\n"
                 "    partiton: gpu\n"
                 "    qos: two words\n"
                 "    gpus_per_node: -1\n"
                 "    extra_sbatch_args: [--output=/tmp/x, '-Jname', --part=evil, 64G, "
                 "\"--mem=1\\n#SBATCH -p x\"]\n"
                 "    container: {runtime: docker}\n") ==
        file +
            ":4:17: compute.c.shared_dir: 'shared/amlrun' is not an absolute path; nodes "
            "see neither this directory nor its relative paths\n"
            "    4 |     shared_dir: shared/amlrun\n"
            "      |                 ^\n" +
            file +
            ":5:5: compute.c.partiton: unknown key 'partiton' (did you mean 'partition'?)\n"
            "    5 |     partiton: gpu\n"
            "      |     ^\n" +
            file +
            ":6:10: compute.c.qos: 'two words' must be one word without spaces or control "
            "characters\n"
            "    6 |     qos: two words\n"
            "      |          ^\n" +
            file +
            ":7:20: compute.c.gpus_per_node: must be between 0 and 1024, got -1\n"
            "    7 |     gpus_per_node: -1\n"
            "      |                    ^\n" +
            file +
            ":8:25: compute.c.extra_sbatch_args[0]: '--output=/tmp/x' cannot be given here "
            "('--output': amlrun writes the batch output into the run directory)\n"
            "    8 |     extra_sbatch_args: [--output=/tmp/x, '-Jname', --part=evil, 64G, "
            "\"--mem=1\\n#SBATCH -p x\"]\n"
            "      |                         ^\n" +
            file +
            ":8:42: compute.c.extra_sbatch_args[1]: '-Jname' cannot be given here ('-J' is "
            "'--job-name': amlrun names the job after the run (display_name or experiment))\n"
            "    8 |     extra_sbatch_args: [--output=/tmp/x, '-Jname', --part=evil, 64G, "
            "\"--mem=1\\n#SBATCH -p x\"]\n"
            "      |                                          ^\n" +
            file +
            ":8:52: compute.c.extra_sbatch_args[2]: '--part=evil' cannot be given here "
            "('--partition': use the target's 'partition' key)\n"
            "    8 |     extra_sbatch_args: [--output=/tmp/x, '-Jname', --part=evil, 64G, "
            "\"--mem=1\\n#SBATCH -p x\"]\n"
            "      |                                                    ^\n" +
            file +
            ":8:65: compute.c.extra_sbatch_args[3]: '64G' is not an option; give each option "
            "with its value in one entry, e.g. --mem=64G\n"
            "    8 |     extra_sbatch_args: [--output=/tmp/x, '-Jname', --part=evil, 64G, "
            "\"--mem=1\\n#SBATCH -p x\"]\n"
            "      |                                                                 ^\n" +
            file +
            ":8:70: compute.c.extra_sbatch_args[4]: '--mem=1\\n#SBATCH -p x' contains a line "
            "break\n"
            "    8 |     extra_sbatch_args: [--output=/tmp/x, '-Jname', --part=evil, 64G, "
            "\"--mem=1\\n#SBATCH -p x\"]\n"
            "      |                                                                      ^\n" +
            file +
            ":9:16: compute.c.container: missing 'image' (e.g. docker://pytorch/pytorch:latest)\n"
            "    9 |     container: {runtime: docker}\n"
            "      |                ^\n" +
            file +
            ":9:26: compute.c.container.runtime: 'docker' is not one of pyxis, apptainer\n"
            "    9 |     container: {runtime: docker}\n"
            "      |                          ^\n"
            "11 errors in " +
            file);
}

TEST_CASE("shared_dir may not hold what Slurm or a container runtime would misread") {
  TempDir dir;
  CHECK_THAT(error_of(dir, "compute:\n  c: {type: slurm, shared_dir: /data/100%/x}\n"),
             Catch::Contains("compute.c.shared_dir: contains '%', which Slurm reads as a file "
                             "name pattern (%j, %u, ...); choose a directory without it"));
  CHECK_THAT(error_of(dir,
                      "compute:\n  c: {type: slurm, shared_dir: '/a,b',"
                      " container: {runtime: apptainer, image: x.sif}}\n"),
             Catch::Contains("compute.c.shared_dir: contains ',' or ':', which separate the "
                             "container runtime's bind mounts; choose a directory without them"));
  // Spaces are fine: every path is an argv word or quoted.
  CHECK(settings_from(dir, "compute:\n  c: {type: slurm, shared_dir: /my shared}\n").shared_dir ==
        "/my shared");
}

TEST_CASE("make_target builds a slurm target, and reports its settings' errors") {
  TempDir dir;
  auto root = workspace::create_workspace(dir.path / ".amlrun");
  unit_test::TempDir unused;
  std::ofstream(root / "config.yml") << "compute:\n  c: {type: slurm, shared_dir: /shared}\n"
                                        "  d: {type: slurm}\n";
  workspace::Workspace ws(root, workspace::load_config(root / "config.yml"));
  auto target = compute::make_target(ws, "c");
  CHECK(target->type() == "slurm");
  CHECK(target->name() == "c");
  CHECK_THAT(message_of([&] { compute::make_target(ws, "d"); }),
             Catch::Contains("compute.d: missing 'shared_dir'"));
}
