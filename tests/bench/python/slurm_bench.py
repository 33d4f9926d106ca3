"""What the Slurm benchmarks (bench_slurm.sh, bench_slurm_ssh.sh) share: the
time from `amlrun submit --stream` to the first line of output, the same for
a hand-written script given to sbatch, waiting for the cluster to be idle,
and percentiles."""
import os
import subprocess
import time


def amlrun_first_line(amlrun, cwd, job="first.yml"):
    start = time.perf_counter()
    process = subprocess.Popen([amlrun, "submit", "--stream", job], cwd=cwd,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    elapsed = time.perf_counter() - start
    assert line == "first\n", line
    assert process.wait() == 0
    return elapsed


def sbatch_first_line(plain, script="first.sh"):
    """sbatch of `script` in folder `plain`, its output file polled every 5 ms."""
    start = time.perf_counter()
    out = subprocess.run(["sbatch", "--parsable", "--output=" + plain + "/slurm-%j.out", script],
                         cwd=plain, capture_output=True, text=True, check=True).stdout
    path = os.path.join(plain, "slurm-%s.out" % out.strip().split(";")[0])
    while True:
        try:
            with open(path) as f:
                if f.readline() == "first\n":
                    return time.perf_counter() - start
        except OSError:
            pass
        time.sleep(0.005)


def wait_for_idle():
    while subprocess.run(["squeue", "--noheader", "--states=PENDING,RUNNING,COMPLETING"],
                         capture_output=True, text=True).stdout.strip():
        time.sleep(0.1)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]
