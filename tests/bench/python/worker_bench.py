#!/usr/bin/python3
"""Drives the amlrun-worker benchmarks (tests/bench/bench_worker_*.sh): runs
amlrun-worker and its Python reference side by side, alternating, on the same
data with the same settings, and prints one markdown table row per measured
configuration: | benchmark | ours | baseline | ratio | target | command |.

Figures are medians over --repeats runs of each program; within a run, the
throughput is the mean over the epochs after the first (the first includes
start-up: DataLoader workers, oneDNN kernel generation)."""
import argparse
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
WORKER = os.path.join(ROOT, "build", "bin", "amlrun-worker")
PYTHON = "/usr/bin/python3"
DATA = os.environ.get("AMLRUN_BENCH_DATA", "/tmp/amlrun-bench-data")


def log(message):
    print(f"==> {message}", file=sys.stderr, flush=True)


def fashion_mnist(train_per_class, test_per_class):
    """Class folders of PNGs from Debian's dataset-fashion-mnist (0: all)."""
    dest = os.path.join(DATA, f"fashion-mnist-{train_per_class}-{test_per_class}")
    subprocess.run([os.path.join(ROOT, "scripts", "fashion-mnist-to-folders.sh"), dest, "--per-class",
                    str(train_per_class), "--test-per-class", str(test_per_class)], check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(dest, "train"), os.path.join(dest, "test")


def jpeg_photos(per_class):
    """Colour 256×256 JPEGs (quality 90) made from Fashion-MNIST with PIL: a
    stand-in for photos, so decoding costs what a JPEG of that size costs."""
    dest = os.path.join(DATA, f"jpeg-256-{per_class}")
    if os.path.exists(os.path.join(dest, ".complete")):
        return dest
    source, _ = fashion_mnist(per_class, 1)
    from PIL import Image, ImageOps
    tmp = dest + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    for index, name in enumerate(sorted(os.listdir(source))):
        os.makedirs(os.path.join(tmp, name))
        tint = ((index * 70) % 256, (index * 130 + 60) % 256, (index * 200 + 120) % 256)
        for file in sorted(os.listdir(os.path.join(source, name))):
            grey = Image.open(os.path.join(source, name, file)).resize((256, 256), Image.BICUBIC)
            ImageOps.colorize(grey, black=(0, 0, 0), white=tint).save(
                os.path.join(tmp, name, file.replace(".png", ".jpg")), quality=90)
    os.rename(tmp, dest)
    open(os.path.join(dest, ".complete"), "w").close()
    return dest


def run(command, env=None):
    log(" ".join(shlex.quote(part) for part in command))
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        raise SystemExit(f"failed ({result.returncode}): {command[0]}")
    return result.stdout


def mpirun(ranks):
    command = ["mpirun", "-np", str(ranks)]
    if os.geteuid() == 0:
        command.append("--allow-run-as-root")
    return command


def ours_training(args, processes, extra=()):
    """Runs amlrun-worker train; returns (mean images/s of epochs 2.., mean comm wait share)."""
    work = tempfile.mkdtemp(prefix="amlrun-bench-worker-")
    try:
        metrics = os.path.join(work, "metrics.jsonl")
        command = ["train", "--train-data", args.train, "--validation-data", args.test, "--model", args.model,
                   "--image-size", str(args.image_size), "--batch-size", str(args.batch_size), "--epochs",
                   str(args.epochs), "--threads", str(args.threads), "--loader-threads", str(args.workers),
                   "--learning-rate", str(args.learning_rate), "--patience", "0", "--output-dir",
                   os.path.join(work, "out"), *extra]
        full = ([*mpirun(processes), WORKER] if processes > 1 else [WORKER]) + command
        env = dict(os.environ, AMLRUN_METRICS_FILE=metrics)
        run(full, env=env)
        with open(metrics) as f:
            values = [json.loads(line) for line in f]
        rate = [m["value"] for m in values if m["name"] == "images_per_sec" and m["step"] > 1]
        wait = [m["value"] for m in values if m["name"] == "comm_wait_share" and m["step"] > 1]
        return statistics.mean(rate), (statistics.mean(wait) if wait else None), full
    finally:
        shutil.rmtree(work, ignore_errors=True)


def python_training(args, processes):
    command = [PYTHON, os.path.join(HERE, "train_reference.py"), "--train-data", args.train, "--validation-data",
               args.test, "--model", args.model, "--image-size", str(args.image_size), "--batch-size",
               str(args.batch_size), "--epochs", str(args.epochs), "--threads", str(args.threads), "--workers",
               str(args.workers), "--learning-rate", str(args.learning_rate), "--processes", str(processes)]
    out = run(command)
    rates = [float(line.split()[3]) for line in out.splitlines() if line.startswith("epoch ") and
             int(line.split()[1]) > 1]
    return statistics.mean(rates), command


def plural(count, noun):
    return f"{count} {noun}" + ("" if count == 1 else "s")


def row(name, ours, baseline, target, command, ours_unit="img/s"):
    ratio = ours / baseline
    print(f"| {name} | {ours:.0f} {ours_unit} | {baseline:.0f} {ours_unit} | {ratio:.2f}× | {target} | "
          f"`{command}` |", flush=True)


def compare_training(args, processes, name, target, script):
    ours, python, waits = [], [], []
    for repeat in range(args.repeats):
        rate, wait, _ = ours_training(args, processes)
        ours.append(rate)
        if wait is not None:
            waits.append(wait)
        python.append(python_training(args, processes)[0])
        log(f"repeat {repeat + 1}: amlrun-worker {rate:.1f} img/s, Python {python[-1]:.1f} img/s"
            + (f", comm wait {wait:.1%}" if wait is not None else ""))
    if waits:
        name += f"; comm wait {statistics.median(waits):.0%} of step time"
    row(name, statistics.median(ours), statistics.median(python), target, script)


def throughput(args):
    args.train, args.test = fashion_mnist(args.train_per_class, args.test_per_class)
    name = (f"1. train throughput: {args.model} {args.image_size}px, batch {args.batch_size}, {args.threads} "
            f"threads, {plural(args.workers, 'loader worker')}, vs Python + DataLoader")
    compare_training(args, 1, name, "≥ 1.25×", "tests/bench/bench_worker_throughput.sh")


def ddp(args):
    args.train, args.test = fashion_mnist(args.train_per_class, args.test_per_class)
    name = (f"2. two processes: {args.model} {args.image_size}px, batch {args.batch_size}/process, "
            f"{plural(args.threads, 'thread')}, {plural(args.workers, 'loader worker')} each; mpirun vs DDP gloo")
    compare_training(args, 2, name, "≥ 1.2×", "tests/bench/bench_worker_ddp.sh")


def accuracy(args):
    """One run of amlrun-worker on all of Fashion-MNIST; reports the wall time
    from start to the end of the first epoch whose validation accuracy reaches
    the target, read from the live output."""
    train, test = fashion_mnist(0, 0)
    work = tempfile.mkdtemp(prefix="amlrun-bench-accuracy-")
    metrics = os.path.join(work, "metrics.jsonl")
    command = [WORKER, "train", "--train-data", train, "--validation-data", test, "--model", "resnet18",
               "--image-size", str(args.image_size), "--batch-size", str(args.batch_size), "--epochs",
               str(args.epochs), "--learning-rate", str(args.learning_rate), "--weight-decay",
               str(args.weight_decay), "--min-crop-scale", str(args.min_crop_scale), "--lr-schedule",
               args.lr_schedule, "--patience",
               str(args.patience), "--threads", str(args.threads), "--output-dir", os.path.join(work, "out")]
    log(" ".join(command))
    start = time.monotonic()
    reached = None
    best = 0.0
    epochs_run = 0
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True,
                          env=dict(os.environ, AMLRUN_METRICS_FILE=metrics)) as process:
        for line in process.stdout:
            sys.stderr.write(line)
            if not line.startswith("epoch "):
                continue
            epochs_run += 1
            with open(metrics) as f:
                acc = [json.loads(l)["value"] for l in f if json.loads(l)["name"] == "val_acc"][-1]
            best = max(best, acc)
            if reached is None and acc >= args.target:
                reached = (time.monotonic() - start, epochs_run, acc)
                if args.stop_at_target:
                    process.terminate()
                    break
    shutil.rmtree(work, ignore_errors=True)
    if reached is None:
        print(f"| 3. accuracy: ResNet-18 from scratch, Fashion-MNIST {args.image_size}px | best {best:.2%} after "
              f"{epochs_run} epochs ({time.monotonic() - start:.0f} s): target not reached | — | — | "
              f"≥ {args.target:.0%} | `tests/bench/bench_worker_accuracy.sh` |", flush=True)
        return
    seconds, epoch, acc = reached
    print(f"| 3. accuracy: ResNet-18 from scratch, Fashion-MNIST 60k/10k, {args.image_size}px, batch "
          f"{args.batch_size}, lr {args.learning_rate} ({args.lr_schedule} over {args.epochs} epochs), "
          f"{args.threads} threads | {acc:.2%} after epoch {epoch}, "
          f"{seconds / 60:.1f} min | — | — | ≥ {args.target:.0%} | `tests/bench/bench_worker_accuracy.sh` |",
          flush=True)


def loader(args):
    if args.dataset == "png":
        data, _ = fashion_mnist(args.train_per_class, 1)
        what = f"Fashion-MNIST PNG 28px → {args.image_size}px"
    else:
        data = jpeg_photos(args.train_per_class)
        what = f"colour JPEG 256px → {args.image_size}px"
    ours, python = [], []
    for repeat in range(args.repeats):
        out = run([WORKER, "loader-benchmark", "--data", data, "--image-size", str(args.image_size),
                   "--batch-size", str(args.batch_size), "--loader-threads", str(args.workers), "--epochs",
                   str(args.epochs), "--no-cache"])
        ours.append(float(out.splitlines()[-1].split()[1]))
        out = run([PYTHON, os.path.join(HERE, "loader_reference.py"), "--data", data, "--image-size",
                   str(args.image_size), "--batch-size", str(args.batch_size), "--workers", str(args.workers),
                   "--epochs", str(args.epochs)])
        python.append(float(out.splitlines()[-1].split()[1]))
        log(f"repeat {repeat + 1}: amlrun-worker {ours[-1]:.0f} img/s, torchvision {python[-1]:.0f} img/s")
    row(f"4. data loading ({what}, decoded every epoch, training transforms, {plural(args.workers, 'worker')}), "
        f"vs ImageFolder + DataLoader", statistics.median(ours), statistics.median(python), "(none)",
        "tests/bench/bench_worker_loader.sh")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("benchmark", choices=["throughput", "ddp", "accuracy", "loader"])
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--learning-rate", type=float, default=0.01)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--min-crop-scale", type=float, default=0.08)
    parser.add_argument("--lr-schedule", default="constant")
    parser.add_argument("--patience", type=int, default=0)
    parser.add_argument("--train-per-class", type=int, default=300)
    parser.add_argument("--test-per-class", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dataset", choices=["png", "jpeg"], default="png")
    parser.add_argument("--target", type=float, default=0.92)
    parser.add_argument("--stop-at-target", action="store_true")
    args = parser.parse_args()
    if not os.access(WORKER, os.X_OK):
        raise SystemExit(f"{WORKER} is missing: build first (scripts/common.sh build build)")
    {"throughput": throughput, "ddp": ddp, "accuracy": accuracy, "loader": loader}[args.benchmark](args)


if __name__ == "__main__":
    main()
