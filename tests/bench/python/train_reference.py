#!/usr/bin/python3
"""The Python reference for the amlrun-worker benchmarks: the same training
written the way a PyTorch user writes it, with Debian's python3-torch and
python3-torchvision (or, run with another interpreter, that one's torch: the
race against PyPI's current torch, scripts/torch-pip-env.sh). torchvision's
ImageFolder and DataLoader (worker processes decoding with PIL), the same transforms as amlrun-worker
(RandomResizedCrop + horizontal flip; Resize(size*256/224) + CenterCrop;
ImageNet normalisation), torchvision's resnet18, SGD with momentum 0.9, cross
entropy. With --processes N it is DistributedDataParallel over gloo, one
process per rank, with DistributedSampler (torch.multiprocessing.spawn).
With --compile the model (the DDP-wrapped one with --processes N, as
PyTorch's DDP + compile guide does) goes through torch.compile (torch 2.x).
--weight-decay, --lr-schedule cosine (per step, as amlrun-worker) and
--min-crop-scale mirror amlrun-worker's options for the accuracy comparison.
--profile FILE writes torch.profiler's operator table for 30 training steps
of the last epoch (rank 0), for finding where the time goes.

Prints one line per epoch:
  epoch E train_images_per_sec X val_acc A seconds S
where X counts the training images of all processes per second of the
training phase (validation excluded), as amlrun-worker's images_per_sec."""
import argparse
import os
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torchvision
from torchvision import transforms


def parse():
    parser = argparse.ArgumentParser()
    parser.add_argument("--train-data", required=True)
    parser.add_argument("--validation-data", required=True)
    parser.add_argument("--model", default="resnet18")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16, help="per process")
    parser.add_argument("--learning-rate", type=float, default=0.001)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--threads", type=int, required=True, help="torch.set_num_threads per process")
    parser.add_argument("--workers", type=int, required=True, help="DataLoader num_workers per process")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--port", type=int, default=29533)
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (torch 2.x)")
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--lr-schedule", choices=["constant", "cosine"], default="constant")
    parser.add_argument("--min-crop-scale", type=float, default=0.08)
    parser.add_argument("--profile", help="write torch.profiler's table of 30 steps of the last epoch here")
    return parser.parse_args()


def datasets(args):
    normalize = transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    train = torchvision.datasets.ImageFolder(args.train_data, transforms.Compose([
        transforms.RandomResizedCrop(args.image_size, scale=(args.min_crop_scale, 1.0)),
        transforms.RandomHorizontalFlip(), transforms.ToTensor(), normalize]))
    validation = torchvision.datasets.ImageFolder(args.validation_data, transforms.Compose([
        transforms.Resize(round(args.image_size * 256 / 224)), transforms.CenterCrop(args.image_size),
        transforms.ToTensor(), normalize]))
    return train, validation


def run(rank, args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    distributed = args.processes > 1
    if distributed:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{args.port}", rank=rank,
                                world_size=args.processes)
    train, validation = datasets(args)
    model = getattr(torchvision.models, args.model)(num_classes=len(train.classes))
    if distributed:
        model = torch.nn.parallel.DistributedDataParallel(model)
        sampler = torch.utils.data.distributed.DistributedSampler(train, seed=args.seed)
        val_sampler = torch.utils.data.distributed.DistributedSampler(validation, shuffle=False)
    else:
        sampler = torch.utils.data.RandomSampler(train)
        val_sampler = None
    loader = torch.utils.data.DataLoader(train, batch_size=args.batch_size, sampler=sampler,
                                         num_workers=args.workers, persistent_workers=args.workers > 0)
    val_loader = torch.utils.data.DataLoader(validation, batch_size=args.batch_size, sampler=val_sampler,
                                             num_workers=args.workers)
    if args.compile:
        model = torch.compile(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.learning_rate, momentum=0.9,
                                weight_decay=args.weight_decay)
    scheduler = None
    if args.lr_schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs * len(loader))
    criterion = torch.nn.CrossEntropyLoss()
    for epoch in range(args.epochs):
        if distributed:
            sampler.set_epoch(epoch)
        model.train()
        start = time.perf_counter()
        images = 0
        profiler = None
        if args.profile and rank == 0 and epoch == args.epochs - 1:
            profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU],
                                              schedule=torch.profiler.schedule(wait=10, warmup=5, active=30,
                                                                               repeat=1))
            profiler.start()
        for inputs, labels in loader:
            if profiler is not None:
                profiler.step()
            optimizer.zero_grad()
            loss = criterion(model(inputs), labels)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            images += inputs.size(0)
        train_seconds = time.perf_counter() - start
        if profiler is not None:
            profiler.stop()
            with open(args.profile, "w") as f:
                f.write(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=40))
        model.eval()
        correct = torch.zeros(2)
        with torch.no_grad():
            for inputs, labels in val_loader:
                correct[0] += (model(inputs).argmax(1) == labels).sum()
                correct[1] += labels.size(0)
        totals = torch.tensor([float(images), correct[0].item(), correct[1].item()])
        if distributed:
            dist.all_reduce(totals)
        if rank == 0:
            print(f"epoch {epoch + 1} train_images_per_sec {totals[0].item() / train_seconds:.1f} "
                  f"val_acc {totals[1].item() / totals[2].item():.4f} seconds {time.perf_counter() - start:.1f}",
                  flush=True)
    if distributed:
        dist.destroy_process_group()


def main():
    args = parse()
    if args.processes > 1:
        mp.spawn(run, args=(args,), nprocs=args.processes)
    else:
        run(0, args)


if __name__ == "__main__":
    main()
