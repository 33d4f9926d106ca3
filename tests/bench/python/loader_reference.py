#!/usr/bin/python3
"""The Python reference of the data loading benchmark: torchvision's
ImageFolder with the training transforms amlrun-worker applies
(RandomResizedCrop + horizontal flip + ToTensor + ImageNet normalisation),
through a DataLoader with --workers worker processes, every batch consumed
and nothing else done. Prints `images_per_sec X` over all epochs."""
import argparse
import time

import torch
import torchvision
from torchvision import transforms


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    dataset = torchvision.datasets.ImageFolder(args.data, transforms.Compose([
        transforms.RandomResizedCrop(args.image_size), transforms.RandomHorizontalFlip(), transforms.ToTensor(),
        transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])]))
    loader = torch.utils.data.DataLoader(dataset, batch_size=args.batch_size, shuffle=True,
                                         num_workers=args.workers, persistent_workers=args.workers > 0)
    images = 0
    start = time.perf_counter()
    for _ in range(args.epochs):
        for batch, _labels in loader:
            images += batch.size(0)
    seconds = time.perf_counter() - start
    print(f"{images} images in {seconds:.2f} s with {args.workers} DataLoader workers")
    print(f"images_per_sec {images / seconds:.1f}")


if __name__ == "__main__":
    main()
