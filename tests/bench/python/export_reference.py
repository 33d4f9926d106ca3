#!/usr/bin/python3
"""The Python side of the export benchmark: torch.onnx.export of the same
model (torchvision's, from state_dict.pt), opset 17, dynamic batch, in
evaluation mode, as PyTorch's own guides do it. Prints "export_seconds N"
for the export call alone (imports and loading excluded: the most
favourable figure for Python)."""
import argparse
import json
import os
import time

import torch
import torchvision


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--opset", type=int, default=17)
    args = parser.parse_args()
    with open(os.path.join(args.model_dir, "config.json")) as f:
        config = json.load(f)["model"]
    model = getattr(torchvision.models, config["name"])(num_classes=config["classes"])
    model.load_state_dict(torch.load(os.path.join(args.model_dir, "state_dict.pt")))
    model.eval()
    size = config["image_size"]
    start = time.monotonic()
    torch.onnx.export(model, torch.zeros(1, 3, size, size), args.output, opset_version=args.opset,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    print(f"export_seconds {time.monotonic() - start:.4f}")


if __name__ == "__main__":
    main()
