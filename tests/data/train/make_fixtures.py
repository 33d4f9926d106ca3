#!/usr/bin/python3
"""Writes the fixtures of tests/unit/train from Debian's python3-torch and
python3-torchvision (run with /usr/bin/python3 from this folder). The files
are committed; rerun only to change them.

- model_names.json: every state_dict entry (name, shape) of torchvision's
  resnet18/34/50 and densenet121 with 10 classes.
- model_forward.json: logits of each model in eval mode for weights and an
  input filled by a formula that tests/unit/train/test_models.cpp repeats.
- state_dict_*.pt: files torch.save writes in the forms users hand us.
"""
import collections
import json
import math
import os

import torch
import torchvision

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = ["resnet18", "resnet34", "resnet50", "densenet121"]


def fill(name, shape, index):
    """The formula of fill_like() in test_models.cpp."""
    n = math.prod(shape)
    base = torch.sin(torch.arange(n, dtype=torch.float64) * 0.37 + index * 1.3)
    if name.endswith("num_batches_tracked"):
        return torch.zeros(shape, dtype=torch.int64)
    if name.endswith("running_var"):
        value = 1.0 + 0.5 * base * base
    elif name.endswith("running_mean") or name.endswith("bias"):
        value = 0.1 * base
    elif len(shape) >= 2:
        value = base / math.sqrt(math.prod(shape[1:]))
    else:  # BatchNorm weight
        value = 1.0 + 0.1 * base
    return value.reshape(shape).to(torch.float32)


def forward_input(batch, size):
    n = batch * 3 * size * size
    return torch.sin(torch.arange(n, dtype=torch.float64) * 0.01).reshape(batch, 3, size, size).float()


def main():
    names = {}
    forward = {}
    for model_name in MODELS:
        model = getattr(torchvision.models, model_name)(num_classes=10)
        state = model.state_dict()
        names[model_name] = [[k, list(v.shape)] for k, v in state.items()]
        filled = collections.OrderedDict(
            (k, fill(k, list(v.shape), i)) for i, (k, v) in enumerate(state.items()))
        model.load_state_dict(filled)
        model.eval()
        with torch.no_grad():
            logits = model(forward_input(2, 32))
        forward[model_name] = logits.tolist()
    with open(os.path.join(HERE, "model_names.json"), "w") as f:
        json.dump(names, f, indent=0)
    with open(os.path.join(HERE, "model_forward.json"), "w") as f:
        json.dump(forward, f, indent=1)

    torch.manual_seed(0)
    small = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(2, 3))
    state = small.state_dict()  # an OrderedDict with a _metadata attribute
    torch.save(state, os.path.join(HERE, "state_dict_ordered.pt"))
    torch.save(dict(state), os.path.join(HERE, "state_dict_plain.pt"))
    torch.save({"state_dict": state, "epoch": 3}, os.path.join(HERE, "state_dict_wrapped.pt"))
    torch.save(collections.OrderedDict(("module." + k, v) for k, v in state.items()),
               os.path.join(HERE, "state_dict_ddp.pt"))
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    torch.save({"transposed": base.t(), "row": base[1], "half": torch.tensor([1.5, -2.0], dtype=torch.float16),
                "bf16": torch.tensor([0.25], dtype=torch.bfloat16), "long": torch.tensor([7, -9]),
                "flag": torch.tensor([True, False])},
               os.path.join(HERE, "state_dict_dtypes.pt"))
    torch.save(state, os.path.join(HERE, "state_dict_legacy.pt"), _use_new_zipfile_serialization=False)
    torch.jit.save(torch.jit.script(torch.nn.Linear(2, 3)), os.path.join(HERE, "torchscript.pt"))
    torch.save({"weight": torch.zeros(2), "note": "not a tensor"}, os.path.join(HERE, "state_dict_mixed.pt"))


if __name__ == "__main__":
    main()
