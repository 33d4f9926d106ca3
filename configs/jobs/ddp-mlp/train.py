"""A small data-parallel training job: an MLP on synthetic data, trained with
torch.distributed (gloo) by every process amlrun starts. Uses the torch
contract amlrun provides (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE) and
writes metrics in amlrun's protocol and the model to ./outputs."""
import argparse
import json
import os

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel


def log_metric(name, value, step):
    path = os.environ.get("AMLRUN_METRICS_FILE")
    if path:
        with open(path, "a") as f:
            f.write(json.dumps({"name": name, "value": value, "step": step}) + "\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=0.05)
    args = parser.parse_args()

    distributed = "WORLD_SIZE" in os.environ
    if distributed:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    torch.manual_seed(1)

    # Synthetic classification data, the same on every rank; each rank takes its shard.
    inputs = torch.randn(4096, 32)
    labels = (inputs[:, :4].sum(dim=1) > 0).long()
    shard = slice(rank, None, world)
    inputs, labels = inputs[shard], labels[shard]

    model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 2))
    if distributed:
        model = DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    for epoch in range(1, args.epochs + 1):
        total, correct, loss_sum = 0, 0, 0.0
        for start in range(0, len(inputs), 64):
            x, y = inputs[start:start + 64], labels[start:start + 64]
            optimizer.zero_grad()
            out = model(x)
            loss = loss_fn(out, y)
            loss.backward()
            optimizer.step()
            loss_sum += loss.item() * len(y)
            correct += (out.argmax(dim=1) == y).sum().item()
            total += len(y)
        stats = torch.tensor([loss_sum, correct, total], dtype=torch.float64)
        if distributed:
            dist.all_reduce(stats)
        loss_value, accuracy = stats[0].item() / stats[2].item(), stats[1].item() / stats[2].item()
        if rank == 0:
            print("epoch %d/%d  loss %.4f  accuracy %.3f  (%d processes)"
                  % (epoch, args.epochs, loss_value, accuracy, world), flush=True)
            log_metric("train_loss", loss_value, epoch)
            log_metric("train_acc", accuracy, epoch)

    if rank == 0:
        state = (model.module if distributed else model).state_dict()
        torch.save(state, os.path.join("outputs", "model.pt"))
        print("saved outputs/model.pt")
    if distributed:
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
