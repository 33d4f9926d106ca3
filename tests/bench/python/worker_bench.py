#!/usr/bin/python3
"""Drives the amlrun-worker benchmarks (tests/bench/bench_worker_*.sh): runs
amlrun-worker and its Python reference side by side, alternating, on the same
data with the same settings, and prints one markdown table row per measured
configuration: | benchmark | ours | baseline | ratio | target | command |.

Figures are medians over --repeats runs of each program; within a run, the
throughput is the mean over the epochs after the first (the first includes
start-up: DataLoader workers, oneDNN kernel generation, torch.compile).

--worker and --python choose the two sides (default: this checkout's build/
and Debian's python3 with its torch 1.13); --baselines eager,compile runs the
Python side also with torch.compile, one row per baseline
(tests/bench/bench_worker_torch_pip.sh: the race against PyPI's torch)."""
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


class Failed(Exception):
    """A benchmarked program failed; the message ends with its last output line."""


def run(command, env=None):
    log(" ".join(shlex.quote(part) for part in command))
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        sys.stderr.write(result.stdout + result.stderr)
        lines = (result.stdout + result.stderr).strip().splitlines()
        raise Failed(f"failed ({result.returncode}): {command[0]}: {lines[-1] if lines else 'no output'}")
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


def python_training(args, processes, baseline="eager", extra=()):
    """Runs train_reference.py; returns (mean images/s of epochs 2.., command, val_acc per epoch)."""
    command = [PYTHON, os.path.join(HERE, "train_reference.py"), "--train-data", args.train, "--validation-data",
               args.test, "--model", args.model, "--image-size", str(args.image_size), "--batch-size",
               str(args.batch_size), "--epochs", str(args.epochs), "--threads", str(args.threads), "--workers",
               str(args.workers), "--learning-rate", str(args.learning_rate), "--processes", str(processes),
               *(["--compile"] if baseline == "compile" else []), *extra]
    out = run(command)
    epochs = [line.split() for line in out.splitlines() if line.startswith("epoch ")]
    rates = [float(e[3]) for e in epochs if int(e[1]) > 1]
    return statistics.mean(rates), command, [float(e[5]) for e in epochs]


def plural(count, noun):
    return f"{count} {noun}" + ("" if count == 1 else "s")


def row(name, ours, baseline, target, command, ours_unit="img/s"):
    ratio = ours / baseline
    print(f"| {name} | {ours:.0f} {ours_unit} | {baseline:.0f} {ours_unit} | {ratio:.2f}× | {target} | "
          f"`{command}` |", flush=True)


def torch_label():
    """' (PyPI torch X, eager)' for a Python other than Debian's; '' for Debian's 1.13 rows."""
    if PYTHON == "/usr/bin/python3":
        return ""
    version = subprocess.run([PYTHON, "-c", "import torch; print(torch.__version__)"], capture_output=True,
                             text=True, check=True).stdout.strip()
    return f" (PyPI torch {version}, {{baseline}})"


def compare_training(args, processes, name, target, script):
    """Runs amlrun-worker and each Python baseline in turn, --repeats times;
    prints one row per baseline (a baseline that fails gets a row saying why)."""
    global WORKER
    ours, waits, also = [], [], []
    python = {baseline: [] for baseline in args.baselines}
    failed = {}
    for repeat in range(args.repeats):
        rate, wait, _ = ours_training(args, processes)
        ours.append(rate)
        if wait is not None:
            waits.append(wait)
        if args.also_worker:
            WORKER, main_worker = args.also_worker, WORKER
            try:
                also.append(ours_training(args, processes)[0])
            finally:
                WORKER = main_worker
            log(f"repeat {repeat + 1}: {args.also_worker}: {also[-1]:.1f} img/s")
        for baseline in args.baselines:
            if baseline in failed:
                continue
            try:
                python[baseline].append(python_training(args, processes, baseline)[0])
            except Failed as error:
                failed[baseline] = str(error)
                log(f"Python {baseline}: {error}")
                continue
        log(f"repeat {repeat + 1}: amlrun-worker {rate:.1f} img/s, " +
            ", ".join(f"Python {b} {python[b][-1]:.1f} img/s" for b in args.baselines if b not in failed)
            + (f", comm wait {wait:.1%}" if wait is not None else ""))
    if waits:
        name += f"; comm wait {statistics.median(waits):.0%} of step time"
    note = f"; in the same run the Debian-LibTorch build: {statistics.median(also):.0f} img/s" if also else ""
    label = torch_label()
    for baseline in args.baselines:
        this = name + label.format(baseline=baseline) + note
        if baseline in failed:
            print(f"| {this} | {statistics.median(ours):.0f} img/s | {failed[baseline]} | — | {target} | "
                  f"`{script}` |", flush=True)
        else:
            row(this, statistics.median(ours), statistics.median(python[baseline]), target, script)


def throughput(args):
    args.train, args.test = fashion_mnist(args.train_per_class, args.test_per_class)
    name = (f"1. train throughput: {args.model} {args.image_size}px, batch {args.batch_size}, {args.threads} "
            f"threads, {plural(args.workers, 'loader worker')}, vs Python + DataLoader")
    compare_training(args, 1, name, args.target_ratio or "≥ 1.25×",
                     args.script or "tests/bench/bench_worker_throughput.sh")


def ddp(args):
    args.train, args.test = fashion_mnist(args.train_per_class, args.test_per_class)
    name = (f"2. two processes: {args.model} {args.image_size}px, batch {args.batch_size}/process, "
            f"{plural(args.threads, 'thread')}, {plural(args.workers, 'loader worker')} each; mpirun vs DDP gloo")
    compare_training(args, 2, name, args.target_ratio or "≥ 1.2×", args.script or "tests/bench/bench_worker_ddp.sh")


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


def accuracy_race(args):
    """The accuracy comparison of the race: amlrun-worker and the Python
    reference (each --baselines entry) with the same recipe (ResNet-18 from
    scratch, --image-size, batch, lr, cosine, weight decay, crop scale,
    epochs, threads) on the same Fashion-MNIST folders (--train-per-class,
    --test-per-class; 0: all); one run each, final and best validation
    accuracy and the training wall time."""
    args.train, args.test = fashion_mnist(args.train_per_class, args.test_per_class)
    recipe = ["--weight-decay", str(args.weight_decay), "--lr-schedule", args.lr_schedule, "--min-crop-scale",
              str(args.min_crop_scale)]
    start = time.monotonic()
    work = tempfile.mkdtemp(prefix="amlrun-bench-accuracy-")
    try:
        metrics = os.path.join(work, "metrics.jsonl")
        run([WORKER, "train", "--train-data", args.train, "--validation-data", args.test, "--model", args.model,
             "--image-size", str(args.image_size), "--batch-size", str(args.batch_size), "--epochs",
             str(args.epochs), "--threads", str(args.threads), "--loader-threads", str(args.workers),
             "--learning-rate", str(args.learning_rate), "--patience", "0", "--output-dir",
             os.path.join(work, "out"), *recipe], env=dict(os.environ, AMLRUN_METRICS_FILE=metrics))
        with open(metrics) as f:
            ours = [m["value"] for m in map(json.loads, f) if m["name"] == "val_acc"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    ours_seconds = time.monotonic() - start
    size = "all" if args.train_per_class == 0 else f"{args.train_per_class}/class"
    test = "all" if args.test_per_class == 0 else f"{args.test_per_class}/class"
    name = (f"3. accuracy, same recipe both sides: {args.model} from scratch, Fashion-MNIST train {size}, "
            f"validation {test}, {args.image_size}px, batch {args.batch_size}, lr {args.learning_rate} "
            f"{args.lr_schedule}, wd {args.weight_decay}, {args.epochs} epochs, {args.threads} threads")
    for baseline in args.baselines:
        start = time.monotonic()
        try:
            _, _, python = python_training(args, 1, baseline, recipe)
        except Failed as error:
            print(f"| {name}{torch_label().format(baseline=baseline)} | {ours[-1]:.2%} (best {max(ours):.2%}), "
                  f"{ours_seconds / 60:.1f} min | {error} | — | equal | `{args.script}` |", flush=True)
            continue
        seconds = time.monotonic() - start
        print(f"| {name}{torch_label().format(baseline=baseline)} | {ours[-1]:.2%} (best {max(ours):.2%}), "
              f"{ours_seconds / 60:.1f} min | {python[-1]:.2%} (best {max(python):.2%}), {seconds / 60:.1f} min | "
              f"{(ours[-1] - python[-1]) * 100:+.2f} points | equal | `{args.script}` |", flush=True)


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
    global WORKER, PYTHON
    parser = argparse.ArgumentParser()
    parser.add_argument("benchmark", choices=["throughput", "ddp", "accuracy", "accuracy-race", "loader"])
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
    parser.add_argument("--worker", default=WORKER, help="the amlrun-worker binary")
    parser.add_argument("--python", default=PYTHON, help="the Python whose torch is the baseline")
    parser.add_argument("--baselines", default="eager", help="Python sides: eager, compile (comma-separated)")
    parser.add_argument("--also-worker", help="a second amlrun-worker binary measured in the same run, for reference")
    parser.add_argument("--target-ratio", help="the target column of the rows")
    parser.add_argument("--script", help="the command column of the rows")
    args = parser.parse_args()
    WORKER, PYTHON = args.worker, args.python
    args.baselines = args.baselines.split(",")
    if not os.access(WORKER, os.X_OK):
        raise SystemExit(f"{WORKER} is missing: build first (scripts/common.sh build build)")
    {"throughput": throughput, "ddp": ddp, "accuracy": accuracy, "accuracy-race": accuracy_race,
     "loader": loader}[args.benchmark](args)


if __name__ == "__main__":
    main()
