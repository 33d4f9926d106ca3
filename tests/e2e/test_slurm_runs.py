"""Slurm runs end to end on the real two-node test cluster: MPI across
nodes, the torch contract, exit codes, streaming, sealed outputs, and the
compute commands."""
import json
import os
import shutil
import subprocess
import time
import unittest

from slurm_e2e import SlurmTest, read_json, read_text, slurm
from tensorflow_e2e import TF_CONFIG_CHECK, read_rank_reports

REPORT = """
import json, os, socket
keys = ["RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "NODE_RANK", "MASTER_ADDR",
        "MASTER_PORT", "AMLRUN_RUN_ID", "AMLRUN_OUTPUTS_DIR", "AMLRUN_LOGS_DIR",
        "AMLRUN_METRICS_FILE", "PMIX_RANK", "SLURM_PROCID", "MY_SETTING"]
report = {k: os.environ.get(k) for k in keys}
report["hostname"] = socket.gethostname()
report["cwd"] = os.getcwd()
rank = os.environ.get("RANK") or os.environ.get("SLURM_PROCID")
with open(os.path.join("outputs", "rank_%s.json" % rank), "w") as f:
    json.dump(report, f)
print("rank", rank, "on", report["hostname"], flush=True)
"""

MPI_HELLO = r"""
#include <mpi.h>
#include <stdio.h>
#include <unistd.h>
int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, size, sum, one;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  one = rank + 1;
  MPI_Allreduce(&one, &sum, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
  char host[256];
  gethostname(host, sizeof host);
  char path[64];
  snprintf(path, sizeof path, "outputs/mpi_%d.txt", rank);
  FILE* f = fopen(path, "w");
  fprintf(f, "%d %d %s %d\n", rank, size, host, sum);
  fclose(f);
  MPI_Finalize();
  return 0;
}
"""

# Rank 0 listens on MASTER_ADDR:MASTER_PORT and rank 1 connects, as torch's
# TCPStore does; with torch installed a gloo all_reduce runs as well.
RENDEZVOUS = """
import json, os, socket, time
rank = int(os.environ["RANK"])
addr, port = os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"])
if rank == 0:
    server = socket.create_server(("0.0.0.0", port))
    conn, _ = server.accept()
    message = conn.recv(100).decode()
else:
    deadline = time.time() + 30
    while True:
        try:
            conn = socket.create_connection((addr, port), timeout=5)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    conn.sendall(("hello from " + socket.gethostname()).encode())
    message = "sent"
conn.close()
result = {"rank": rank, "message": message, "torch": None}
try:
    import torch, torch.distributed as dist
    time.sleep(1)  # the port above is free again
    os.environ["MASTER_PORT"] = str(port + 1)
    dist.init_process_group("gloo")
    t = torch.tensor([rank + 1.0])
    dist.all_reduce(t)
    result["torch"] = t.item()
    dist.destroy_process_group()
except ImportError:
    pass
with open("outputs/rendezvous_%d.json" % rank, "w") as f:
    json.dump(result, f)
print("rendezvous", result, flush=True)
"""


class MultiNodeTest(SlurmTest):
    def test_mpi_job_on_two_nodes_reports_different_hostnames(self):
        self.project.write("src/report.py", REPORT)
        command = "python3 report.py"
        mpicc = shutil.which("mpicc")
        if mpicc:
            self.project.write("src/mpi_hello.c", MPI_HELLO)
            subprocess.run([mpicc, "-o", os.path.join(self.project.root, "src", "mpi_hello"),
                            os.path.join(self.project.root, "src", "mpi_hello.c")], check=True)
            command = "./mpi_hello && python3 report.py"
        result = self.submit("""
            code: src
            command: %s
            compute: cluster
            resources:
              instance_count: 2
            distribution:
              type: mpi
              process_count_per_instance: 1
        """ % command, "--all-ranks")
        self.assertEqual(result.returncode, 0, result.stderr)
        run_id = self.last_run()
        outputs = self.project.outputs(run_id)
        reports = [read_json(os.path.join(outputs, "rank_%d.json" % r)) for r in (0, 1)]
        self.assertEqual({r["hostname"] for r in reports}, {"n1", "n2"})
        self.assertEqual([r["RANK"] for r in reports], ["0", "1"])
        self.assertEqual([r["NODE_RANK"] for r in reports], ["0", "1"])
        self.assertEqual([r["LOCAL_RANK"] for r in reports], ["0", "0"])
        self.assertEqual([r["WORLD_SIZE"] for r in reports], ["2", "2"])
        # srun --mpi=pmix started them: PMIx gave each its rank.
        self.assertEqual([r["PMIX_RANK"] for r in reports], ["0", "1"])
        self.assertIn("[rank 0] rank 0 on n1\n", result.stdout)
        self.assertIn("[rank 1] rank 1 on n2\n", result.stdout)
        if mpicc:
            lines = sorted(read_text(os.path.join(outputs, "mpi_%d.txt" % r)) for r in (0, 1))
            self.assertEqual(lines, ["0 2 n1 3\n", "1 2 n2 3\n"])
        record = self.project.show(run_id)
        self.assertEqual(record["state"], "Completed")
        self.assertEqual(record["target"]["nodes"], ["n1", "n2"])
        self.assertEqual([h["state"] for h in record["history"]],
                         ["Queued", "Preparing", "Starting", "Running", "Finalizing", "Completed"])
        # The shared run directory was collected into the workspace and removed.
        self.assertFalse(os.path.exists(os.path.join(self.project.shared, "runs", run_id)))
        system = os.path.join(self.project.logs(run_id), "system")
        self.assertTrue(os.path.exists(os.path.join(system, "slurm-%s.out" % record["target"]["job_id"])))
        self.assertTrue(os.path.exists(os.path.join(system, "srun.txt")))

    def test_pytorch_job_gets_the_torch_contract_across_nodes(self):
        self.project.write("src/report.py", REPORT)
        self.project.write("src/rendezvous.py", RENDEZVOUS)
        result = self.submit("""
            code: src
            command: python3 report.py && python3 rendezvous.py
            compute: cluster
            environment_variables:
              MY_SETTING: "a,b c"
            resources:
              instance_count: 2
            distribution:
              type: pytorch
              process_count_per_instance: 1
        """)
        self.assertEqual(result.returncode, 0, result.stderr)
        run_id = self.last_run()
        record = self.project.show(run_id)
        job_id = record["target"]["job_id"]
        outputs = self.project.outputs(run_id)
        reports = [read_json(os.path.join(outputs, "rank_%d.json" % r)) for r in (0, 1)]
        shared_wd = os.path.join(self.project.shared, "runs", run_id, "wd")
        for rank, report in enumerate(reports):
            self.assertEqual(report["RANK"], str(rank))
            self.assertEqual(report["WORLD_SIZE"], "2")
            self.assertEqual(report["LOCAL_RANK"], "0")
            self.assertEqual(report["LOCAL_WORLD_SIZE"], "1")
            self.assertEqual(report["NODE_RANK"], str(rank))
            self.assertEqual(report["MASTER_ADDR"], "n1")
            self.assertEqual(report["AMLRUN_RUN_ID"], run_id)
            self.assertEqual(report["MY_SETTING"], "a,b c")
            self.assertEqual(report["cwd"], shared_wd)
            # Captured out of the working directory: a job deleting ./logs keeps them.
            self.assertEqual(report["AMLRUN_METRICS_FILE"],
                             os.path.join(os.path.dirname(shared_wd), "artifacts", "logs", "metrics",
                                          "rank_%d.jsonl" % rank))
        self.assertEqual({r["hostname"] for r in reports}, {"n1", "n2"})
        # MASTER_PORT comes from the job id: the same on both nodes.
        self.assertEqual(reports[0]["MASTER_PORT"], reports[1]["MASTER_PORT"])
        rendezvous = read_json(os.path.join(outputs, "rendezvous_0.json"))
        self.assertEqual(rendezvous["message"], "hello from n2")
        if rendezvous["torch"] is not None:
            self.assertEqual(rendezvous["torch"], 3.0)
        self.assertEqual(record["instance_count"], 2)
        self.assertTrue(job_id.isdigit())

    def test_tensorflow_job_gets_tf_config_across_nodes(self):
        # 3 workers and 1 parameter server, 2 processes on each node: every
        # process checks its TF_CONFIG and reaches worker 0 on n1.
        self.project.write("src/check_tf_config.py", TF_CONFIG_CHECK)
        result = self.submit("""
            code: src
            command: python3 check_tf_config.py 3
            compute: cluster
            resources:
              instance_count: 2
            distribution:
              type: tensorflow
              worker_count: 3
              parameter_server_count: 1
        """)
        self.assertEqual(result.returncode, 0, result.stderr)
        run_id = self.last_run()
        reports, configs = read_rank_reports(self, self.project.outputs(run_id), 4)
        cluster = configs[0]["cluster"]
        self.assertEqual([a.rsplit(":", 1)[0] for a in cluster["worker"] + cluster["ps"]],
                         ["n1", "n1", "n2", "n2"])
        self.assertEqual([c["task"] for c in configs],
                         [{"type": "worker", "index": 0}, {"type": "worker", "index": 1},
                          {"type": "worker", "index": 2}, {"type": "ps", "index": 0}])
        # Ports follow MASTER_PORT (from the job id): the ranks on one node
        # differ, and each node uses the same ones.
        master_port = int(reports[0]["MASTER_PORT"])
        ports = [int(a.rsplit(":", 1)[1]) for a in cluster["worker"] + cluster["ps"]]
        self.assertEqual(ports[0:2], ports[2:4])
        self.assertEqual(len(set(ports[0:2])), 2)
        self.assertNotIn(master_port, ports)
        self.assertEqual(sorted(reports[0]["greetings"]), ["ps 0", "worker 1", "worker 2"])

    def test_same_job_file_runs_locally_and_on_slurm(self):
        self.project.write("src/report.py", REPORT)
        job = """
            code: src
            command: python3 report.py
            distribution:
              type: pytorch
              process_count_per_instance: 2
        """
        local = self.submit(job)
        self.assertEqual(local.returncode, 0, local.stderr)
        local_run = self.last_run()
        remote = self.submit(job, "--compute", "cluster")
        self.assertEqual(remote.returncode, 0, remote.stderr)
        remote_run = self.last_run()
        self.assertTrue(local.stdout.startswith("rank 0 on "))
        self.assertEqual(remote.stdout, "rank 0 on n1\n")
        for rank in (0, 1):
            here = read_json(os.path.join(self.project.outputs(local_run), "rank_%d.json" % rank))
            there = read_json(os.path.join(self.project.outputs(remote_run), "rank_%d.json" % rank))
            for key in ["RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "NODE_RANK"]:
                self.assertEqual(here[key], there[key], key)
            self.assertEqual(there["MASTER_ADDR"], "n1")


class EnvironmentTest(SlurmTest):
    def test_a_venv_is_built_once_under_shared_dir_and_used_on_every_node(self):
        from test_environments import tiny_wheel_dir
        with open(os.path.join(self.project.workspace, "config.yml"), "a") as f:
            f.write("environments:\n  python: /usr/bin/python3\n")
        self.project.write("src/use.py", """
            import os, socket, sys, tinypkg
            print(tinypkg.VALUE, socket.gethostname(), sys.prefix.startswith(os.environ["VENV_ROOT"]))
        """)
        job = """
            source_directory: src
            entry_script: use.py
            pip_packages: [tinypkg==0.1]
            compute_target: cluster
            node_count: 2
            process_count_per_node: 1
            distributed_backend: gloo
            environment_variables:
              VENV_ROOT: %s
        """ % os.path.join(self.project.shared, "environments")
        # pip's configuration reaches the nodes with the rest of the environment.
        pip = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": tiny_wheel_dir()}
        first = self.submit(job, "--all-ranks", env=pip, timeout=300)
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertEqual(sorted(first.stdout.splitlines()),
                         ["[rank 0] tiny 0.1 n1 True", "[rank 1] tiny 0.1 n2 True"])
        first_id = self.last_run()
        self.assertEqual(self.project.show(first_id)["environment"]["mode"], "venv")
        build_log = read_text(os.path.join(self.project.logs(first_id), "system", "env_build.txt"))
        self.assertIn("Successfully installed tinypkg-0.1", build_log)
        second = self.submit(job, env=pip, timeout=300)
        self.assertEqual(second.returncode, 0, second.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.project.logs(self.last_run()), "system",
                                                     "env_build.txt")))
        driver_log = [f for f in os.listdir(os.path.join(self.project.logs(self.last_run()), "system"))
                      if f.startswith("slurm-")][0]
        self.assertIn("(cached)", read_text(os.path.join(self.project.logs(self.last_run()),
                                                         "system", driver_log)))


class ExitCodeTest(SlurmTest):
    def test_a_failing_job_reports_its_exit_code(self):
        result = self.submit("""
            code: src
            command: echo "before the failure, RANK=${RANK-unset}"; exit 3
            compute: cluster
        """)
        self.assertEqual(result.returncode, 1, result.stderr)
        # A single-process job gets no torch contract, as locally.
        self.assertEqual(result.stdout, "before the failure, RANK=unset\n")
        record = self.project.show(self.last_run())
        self.assertEqual(record["state"], "Failed")
        self.assertEqual(record["exit_code"], 3)
        self.assertEqual(record["failure_reason"], "rank 0 exited with code 3")

    def test_one_failed_rank_ends_the_others_and_is_named(self):
        start = time.time()
        result = self.submit("""
            code: src
            command: if [ "$RANK" = 1 ]; then exit 7; fi; sleep 60
            compute: cluster
            resources:
              instance_count: 2
            distribution:
              type: pytorch
              process_count_per_instance: 1
        """, timeout=60)
        self.assertEqual(result.returncode, 1, result.stderr)
        record = self.project.show(self.last_run())
        self.assertEqual(record["exit_code"], 7)
        self.assertEqual(record["failure_reason"], "rank 1 exited with code 7")
        self.assertLess(time.time() - start, 45)  # rank 0's sleep 60 was cut short


class StreamingTest(SlurmTest):
    def test_lines_arrive_while_the_job_runs(self):
        self.project.write("src/ticks.py", """
            import time
            for i in range(8):
                print("tick", i, flush=True)
                time.sleep(0.4)
        """)
        self.project.write("job.yml", """
            code: src
            command: python3 ticks.py
            compute: cluster
        """)
        process = self.project.start("submit", "job.yml")
        arrivals = []
        for line in process.stdout:
            arrivals.append((time.time(), line))
        end = time.time()
        errors = process.stderr.read()
        process.stdout.close()
        process.stderr.close()
        self.assertEqual(process.wait(), 0, errors)
        self.assertEqual([line for _, line in arrivals], ["tick %d\n" % i for i in range(8)])
        # The first line came while the job still ran (it runs about 3 s).
        self.assertLess(arrivals[0][0], end - 2.0)
        self.assertGreater(arrivals[-1][0] - arrivals[0][0], 2.0)

    def test_all_ranks_are_streamed_with_prefixes(self):
        result = self.submit("""
            code: src
            command: echo "hello from $RANK"; echo "bye from $RANK"
            compute: cluster
            distribution:
              type: pytorch
              process_count_per_instance: 2
        """, "--all-ranks")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(sorted(result.stdout.splitlines()),
                         ["[rank 0] bye from 0", "[rank 0] hello from 0",
                          "[rank 1] bye from 1", "[rank 1] hello from 1"])
        run_id = self.last_run()
        self.assertEqual(self.project.rank_log(run_id, 1), "hello from 1\nbye from 1\n")
        # stream reattaches to a finished run and replays it.
        again = self.project.amlrun("stream", run_id)
        self.assertEqual(again.returncode, 0)
        self.assertEqual(again.stdout, "hello from 0\nbye from 0\n")

    def test_outputs_and_logs_are_sealed_into_the_workspace(self):
        self.project.write("src/make.py", """
            import os
            os.makedirs("outputs/model", exist_ok=True)
            with open("outputs/model/weights.txt", "w") as f:
                f.write("w")
            with open(os.environ["AMLRUN_OUTPUT_model"] + "/card.txt", "w") as f:
                f.write("card")
            with open("logs/notes.txt", "w") as f:
                f.write("notes")
        """)
        result = self.submit("""
            code: src
            command: python3 make.py
            outputs:
              model:
                type: uri_folder
            compute: cluster
        """)
        self.assertEqual(result.returncode, 0, result.stderr)
        run_id = self.last_run()
        outputs = self.project.outputs(run_id)
        self.assertEqual(read_text(os.path.join(outputs, "model", "weights.txt")), "w")
        self.assertEqual(read_text(os.path.join(outputs, "model", "card.txt")), "card")
        self.assertEqual(read_text(os.path.join(self.project.logs(run_id), "notes.txt")), "notes")
        self.assertIn("amlrun: outputs: " + outputs, result.stderr)


    def test_metrics_from_every_rank_reach_the_index(self):
        self.project.write("src/metrics.py", """
            import json, os
            rank = int(os.environ["RANK"])
            with open(os.environ["AMLRUN_METRICS_FILE"], "a") as f:
                for step in range(3):
                    f.write(json.dumps({"name": "loss", "value": 1.0 / (step + 1 + rank), "step": step}) + "\\n")
        """)
        result = self.submit("""
            code: src
            command: python3 metrics.py
            distribution:
              type: pytorch
            resources:
              instance_count: 2
            compute: cluster
        """)
        self.assertEqual(result.returncode, 0, result.stderr)
        run_id = self.last_run()
        out = json.loads(self.project.amlrun("metrics", run_id, "--output", "json").stdout)
        points = sorted((p["rank"], p["step"], p["value"]) for p in out["runs"][0]["metrics"]["loss"])
        self.assertEqual(points, [(0, 0, 1.0), (0, 1, 0.5), (0, 2, 1.0 / 3),
                                  (1, 0, 0.5), (1, 1, 1.0 / 3), (1, 2, 0.25)])


class ComputeCommandTest(SlurmTest):
    extra_targets = ("  missing-dir:\n"
                     "    type: slurm\n"
                     "    shared_dir: SHARED/not-there\n"
                     "    partition: debug\n")

    def test_compute_list_names_every_target(self):
        result = self.project.amlrun("compute", "list")
        self.assertEqual(result.returncode, 0, result.stderr)
        lines = result.stdout.splitlines()
        self.assertTrue(lines[0].startswith("NAME"))
        self.assertTrue(lines[1].startswith("local "))
        self.assertIn("cluster      slurm  shared_dir " + self.project.shared, lines[2])
        self.assertIn("missing-dir  slurm  partition debug, shared_dir", lines[3])

    def test_compute_show_reports_partitions_and_idle_nodes(self):
        result = self.project.amlrun("compute", "show", "cluster", "--output", "json")
        self.assertEqual(result.returncode, 0, result.stderr)
        report = json.loads(result.stdout)
        self.assertTrue(report["reachable"])
        debug = [p for p in report["partitions"] if p["name"] == "debug"][0]
        self.assertTrue(debug["default"])
        self.assertEqual(debug["nodes"], 2)
        self.assertEqual(debug["node_list"], "n[1-2]")
        text = self.project.amlrun("compute", "show", "cluster")
        self.assertIn("slurm              reachable", text.stdout)
        self.assertIn("debug*", text.stdout)

    def test_compute_show_fails_with_3_when_shared_dir_is_missing(self):
        result = self.project.amlrun("compute", "show", "missing-dir")
        self.assertEqual(result.returncode, 3)
        self.assertIn("amlrun: error: shared_dir %s/not-there of compute target 'missing-dir' does "
                      "not exist here" % self.project.shared, result.stderr)
        submit = self.submit("command: echo x\ncompute: missing-dir\n")
        self.assertEqual(submit.returncode, 3)
        self.assertIn("does not exist here; create it on a filesystem", submit.stderr)


if __name__ == "__main__":
    unittest.main()
