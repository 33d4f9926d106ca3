#!/usr/bin/python3
"""Drives the inference benchmarks (tests/bench/bench_worker_export.sh,
bench_worker_predict.sh): amlrun-worker's export and predict against the
same work in Python with torchvision, alternated, medians over --repeats,
one markdown table row per configuration like worker_bench.py's.

The models are trained for one epoch on a few Fashion-MNIST images first:
speed does not depend on the weights, only on the architecture and the
image size, and real BatchNorm statistics keep both sides honest."""
import argparse
import os
import shutil
import statistics
import tempfile
import time

from worker_bench import HERE, PYTHON, WORKER, fashion_mnist, jpeg_photos, log, run

WORK = None


def trained_model(architecture, image_size):
    """A model folder of `architecture` at `image_size` (trained once per run)."""
    out = os.path.join(WORK, f"{architecture}-{image_size}")
    if not os.path.isdir(out):
        train, test = fashion_mnist(4, 2)
        run([WORKER, "train", "--train-data", train, "--validation-data", test, "--model", architecture,
             "--image-size", str(image_size), "--epochs", "1", "--batch-size", "8", "--patience", "0",
             "--output-dir", out])
    return os.path.join(out, "model")


def export(args):
    for architecture in args.architectures.split(","):
        model = trained_model(architecture, args.image_size)
        ours, ours_wall, python = [], [], []
        for repeat in range(args.repeats):
            target = os.path.join(WORK, "ours.onnx")
            start = time.monotonic()
            out = run([WORKER, "export", "--model-dir", model, "--output", target])
            ours_wall.append(time.monotonic() - start)
            # "wrote FILE (resnet18, opset 17, 44.7 MB) in 0.27 s"
            ours.append(float(out.split(" in ")[-1].split()[0]))
            out = run([PYTHON, os.path.join(HERE, "export_reference.py"), "--model-dir", model, "--output",
                       os.path.join(WORK, "python.onnx")])
            python.append(float(out.split()[-1]))
            log(f"repeat {repeat + 1}: amlrun-worker {ours[-1]:.3f} s ({ours_wall[-1]:.2f} s with start-up), "
                f"torch.onnx.export {python[-1]:.3f} s")
        o, p = statistics.median(ours), statistics.median(python)
        print(f"| 5. ONNX export: {architecture} {args.image_size}px, opset 17, dynamic batch, checked | "
              f"{o:.2f} s ({statistics.median(ours_wall):.2f} s for the whole command) | "
              f"torch.onnx.export (python3-torch 1.13): {p:.2f} s | {p / o:.2f}× faster | (none) | "
              f"`tests/bench/bench_worker_export.sh` |", flush=True)


def predict(args):
    if args.dataset == "png":
        data, _ = fashion_mnist(args.per_class, 1)
        what = f"Fashion-MNIST PNG 28px → {args.image_size}px"
    else:
        data = jpeg_photos(args.per_class)
        what = f"colour JPEG 256px → {args.image_size}px"
    model = trained_model(args.model, args.image_size)
    rates = {"torch": [], "onnx": [], "python": []}
    for repeat in range(args.repeats):
        for engine in ("torch", "onnx"):
            out = run([WORKER, "predict", "--model-dir", model, "--data", data, "--engine", engine, "--threads",
                       str(args.threads), "--loader-threads", str(args.workers), "--batch-size",
                       str(args.batch_size), "--output", os.path.join(WORK, f"{engine}.csv")])
            # "predicted N images in S s (R images/s, engine E); wrote ..."
            rates[engine].append(float(out.split(" images/s")[0].split("(")[-1]))
        out = run([PYTHON, os.path.join(HERE, "predict_reference.py"), "--model-dir", model, "--data", data,
                   "--threads", str(args.threads), "--workers", str(args.workers), "--batch-size",
                   str(args.batch_size), "--output", os.path.join(WORK, "python.csv")])
        rates["python"].append(float(out.split()[-1]))
        log(f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.0f} img/s" for k, v in rates.items()))
    baseline = statistics.median(rates["python"])
    for engine, label in (("torch", "LibTorch, model.pt"), ("onnx", "OpenCV DNN, model.onnx")):
        ours = statistics.median(rates[engine])
        print(f"| 6. predict: {args.model}, {what}, batch {args.batch_size}, {args.threads} threads, "
              f"{args.workers} loader workers, top-5 CSV; --engine {engine} ({label}) vs torchvision + "
              f"DataLoader | {ours:.0f} img/s | {baseline:.0f} img/s | {ours / baseline:.2f}× | (none) | "
              f"`tests/bench/bench_worker_predict.sh` |", flush=True)


def main():
    global WORK
    parser = argparse.ArgumentParser()
    parser.add_argument("benchmark", choices=["export", "predict"])
    parser.add_argument("--architectures", default="resnet18,resnet34,resnet50,densenet121")
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--dataset", choices=["png", "jpeg"], default="png")
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if not os.access(WORKER, os.X_OK):
        raise SystemExit(f"{WORKER} is missing: build first (scripts/common.sh build build)")
    WORK = tempfile.mkdtemp(prefix="amlrun-bench-inference-")
    try:
        {"export": export, "predict": predict}[args.benchmark](args)
    finally:
        shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
