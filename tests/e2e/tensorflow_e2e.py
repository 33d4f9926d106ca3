"""What the TensorFlow-distribution tests share: a stdlib-only job script
that reads and checks TF_CONFIG in every process, and the checks of what the
processes wrote."""
import json
import os

# argv: the expected worker count. Every process checks its TF_CONFIG against
# the rank variables, listens on its own address (so the port is usable
# there), and every process but worker 0 connects to worker 0's address, so
# the addresses are the same and reachable everywhere. A mismatch exits 3.
TF_CONFIG_CHECK = r"""
import json, os, socket, sys, time
workers_expected = int(sys.argv[1])
config = json.loads(os.environ["TF_CONFIG"])
rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
cluster, task = config["cluster"], config["task"]
workers, servers = cluster["worker"], cluster.get("ps", [])
problems = []
if sorted(config) != ["cluster", "task"]:
    problems.append("keys %s" % sorted(config))
if len(workers) != workers_expected:
    problems.append("%d workers, expected %d" % (len(workers), workers_expected))
if "ps" in cluster and not servers:
    problems.append("an empty ps list")
if len(workers) + len(servers) != world:
    problems.append("%d addresses for %d processes" % (len(workers) + len(servers), world))
expected_task = ({"type": "worker", "index": rank} if rank < workers_expected
                 else {"type": "ps", "index": rank - workers_expected})
if task != expected_task:
    problems.append("task %s, expected %s" % (task, expected_task))
addresses = workers + servers
if len(set(addresses)) != len(addresses):
    problems.append("addresses repeat: %s" % addresses)
if problems:
    print("TF_CONFIG problems:", problems, flush=True)
    sys.exit(3)
host, port = addresses[rank].rsplit(":", 1)
server = socket.create_server(("0.0.0.0", int(port)))
chief_host, chief_port = workers[0].rsplit(":", 1)
if rank == 0:
    server.settimeout(60)
    greetings = []
    for _ in range(world - 1):
        conn, _ = server.accept()
        greetings.append(conn.recv(100).decode())
        conn.close()
else:
    deadline = time.time() + 60
    while True:
        try:
            conn = socket.create_connection((chief_host, int(chief_port)), timeout=5)
            break
        except OSError:
            if time.time() > deadline:
                raise
            time.sleep(0.2)
    conn.sendall(("%s %d" % (task["type"], task["index"])).encode())
    conn.close()
    greetings = None
server.close()
with open(os.path.join("outputs", "tf_rank_%d.json" % rank), "w") as f:
    json.dump({"TF_CONFIG": os.environ["TF_CONFIG"], "MASTER_PORT": os.environ["MASTER_PORT"],
               "greetings": greetings}, f)
print("rank", rank, task["type"], task["index"], "of", world, flush=True)
"""


def read_rank_reports(test, outputs, world):
    """The processes' reports, checked to agree on one cluster."""
    reports = []
    for rank in range(world):
        with open(os.path.join(outputs, "tf_rank_%d.json" % rank)) as f:
            reports.append(json.load(f))
    configs = [json.loads(r["TF_CONFIG"]) for r in reports]
    for config in configs:
        test.assertEqual(config["cluster"], configs[0]["cluster"])
    return reports, configs

# A real TensorFlow job: MultiWorkerMirroredStrategy reads TF_CONFIG, the
# workers form a collective group and all-reduce (worker i contributes i + 1).
MULTI_WORKER_MIRRORED = r"""
import json, os
import tensorflow as tf
task = json.loads(os.environ["TF_CONFIG"])["task"]
strategy = tf.distribute.MultiWorkerMirroredStrategy()
def contribute():
    context = tf.distribute.get_replica_context()
    return context.all_reduce(tf.distribute.ReduceOp.SUM, tf.constant(float(task["index"] + 1)))
total = strategy.experimental_local_results(strategy.run(contribute))[0].numpy()
with open(os.path.join("outputs", "mwms_worker_%d.json" % task["index"]), "w") as f:
    json.dump({"sum": float(total), "replicas": strategy.num_replicas_in_sync}, f)
print("worker", task["index"], "sum", float(total), flush=True)
"""

TENSORFLOW_VERSION = "2.21.0"


def tensorflow_python():
    """The python of a venv with tensorflow-cpu from PyPI, made once and kept
    (it is large) under AMLRUN_TENSORFLOW_VENV or /tmp; None when the
    tests were not asked for (AMLRUN_TENSORFLOW_TESTS unset)."""
    import subprocess
    if not os.environ.get("AMLRUN_TENSORFLOW_TESTS"):
        return None
    venv = os.environ.get("AMLRUN_TENSORFLOW_VENV",
                          "/tmp/amlrun-e2e-tensorflow-%s" % TENSORFLOW_VERSION)
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(os.path.join(venv, "ready")):
        subprocess.run(["/usr/bin/python3", "-m", "venv", "--clear", venv], check=True)
        subprocess.run([python, "-m", "pip", "install", "--disable-pip-version-check", "-q",
                        "tensorflow-cpu==%s" % TENSORFLOW_VERSION], check=True, timeout=900)
        open(os.path.join(venv, "ready"), "w").close()
    return python
