#!/usr/bin/python3
"""The Python side of the predict benchmark: what a user writes to label a
folder of images with torchvision — the model from state_dict.pt, PIL
decoding and torchvision's evaluation transforms in a DataLoader, softmax
and top-k, one CSV row per image. Prints "images_per_sec N" for the loop
(from the first batch requested to the last row written; imports and model
loading excluded, as amlrun-worker's own figure excludes its start-up)."""
import argparse
import csv
import json
import os
import time

import torch
import torchvision
from PIL import Image


class Images(torch.utils.data.Dataset):
    def __init__(self, paths, transform):
        self.paths, self.transform = paths, transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, index):
        with Image.open(self.paths[index]) as image:
            return self.transform(image.convert("RGB")), index


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--data", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--top-k", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with open(os.path.join(args.model_dir, "config.json")) as f:
        config = json.load(f)["model"]
    with open(os.path.join(args.model_dir, "labels.json")) as f:
        classes = json.load(f)["classes"]
    model = getattr(torchvision.models, config["name"])(num_classes=len(classes))
    model.load_state_dict(torch.load(os.path.join(args.model_dir, "state_dict.pt")))
    model.eval()
    size = config["image_size"]
    transform = torchvision.transforms.Compose([
        torchvision.transforms.Resize(round(size * 256 / 224)),
        torchvision.transforms.CenterCrop(size),
        torchvision.transforms.ToTensor(),
        torchvision.transforms.Normalize(config["normalization"]["mean"], config["normalization"]["std"]),
    ])
    paths = sorted(os.path.join(root, name) for root, _, names in os.walk(args.data) for name in names
                   if name.lower().endswith((".png", ".jpg", ".jpeg")))
    loader = torch.utils.data.DataLoader(Images(paths, transform), batch_size=args.batch_size,
                                         num_workers=args.workers)
    k = min(args.top_k, len(classes))
    start = time.monotonic()
    with open(args.output, "w", newline="") as f, torch.inference_mode():
        out = csv.writer(f)
        for images, indices in loader:
            probabilities, labels = torch.softmax(model(images), dim=1).topk(k, dim=1)
            for index, p, c in zip(indices.tolist(), probabilities.tolist(), labels.tolist()):
                row = [os.path.relpath(paths[index], args.data)]
                for label, probability in zip(c, p):
                    row += [classes[label], f"{probability:.6f}"]
                out.writerow(row)
    seconds = time.monotonic() - start
    print(f"images_per_sec {len(paths) / seconds:.2f}")


if __name__ == "__main__":
    main()
